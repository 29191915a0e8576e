import { readFileSync } from 'node:fs'
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testPorts } from '../support/ports.js'
import { Containers, dockerAt, etcdClient, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { PrometheusServer, type PrometheusTarget } from '../support/consul-consumers.js'
import { testEnv } from '../support/env.js'

/**
 * The Consul HTTP API of a real agent (`watch --http-addr`), fed by real containers: blocking
 * queries woken by `docker stop` (and only by their own service), 200 of them at once against
 * the agent's memory, and the Prometheus server discovering the containers through http_sd.
 * Timings and memory are measured and printed; assertions use generous bounds.
 */
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const short = tag.replace(/[^a-z0-9]/g, '').slice(-10)
const pool = new Containers(dockerAt(env.dockerHost), `cnsa-${tag}`)
const prefix = uniquePrefix('consulagent')
const node = `cnsa-${tag}`
const prometheusServers: PrometheusServer[] = []
const openRequests = new Set<http.ClientRequest>()
let agent: AgentProcess | undefined
let base: string
let prometheusPort: number

/** A busybox web container (SIGTERM is ignored by httpd as PID 1: docker stop kills after `stopTimeout`). */
const web = (service: string) => ({ env: { SERVICE_NAME: service }, stopTimeout: 2 })

interface Answer {
  status: number
  index: number
  body: unknown
  /** performance.now() when the response ended. */
  at: number
}

/** GET over a connection of its own (no pooling: 200 blocking queries need 200 sockets). */
function get(path: string, timeoutMs = 120_000): { request: http.ClientRequest; answer: Promise<Answer>; connected: Promise<void> } {
  let onConnect: () => void = () => undefined
  const connected = new Promise<void>((resolve) => (onConnect = resolve))
  let request!: http.ClientRequest
  const answer = new Promise<Answer>((resolve, reject) => {
    request = http.get(`${base}${path}`, { agent: false, timeout: timeoutMs }, (response) => {
      let text = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
      response.on('end', () => {
        openRequests.delete(request)
        try {
          resolve({ status: response.statusCode ?? 0, index: Number(response.headers['x-consul-index']), body: JSON.parse(text), at: performance.now() })
        } catch (error) {
          reject(error)
        }
      })
    })
    openRequests.add(request)
    request.on('socket', (socket) => (socket.connecting ? socket.once('connect', onConnect) : onConnect()))
    request.on('timeout', () => request.destroy(new Error(`no answer to ${path} within ${timeoutMs} ms`)))
    request.on('error', (error) => {
      openRequests.delete(request)
      reject(error)
    })
  })
  return { request, answer, connected }
}

const health = async (service: string): Promise<Answer> => get(`/v1/health/service/${service}`).answer

/** Resident memory of a process in KiB, from /proc/<pid>/status. */
function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1])
}

beforeAll(async () => {
  const [httpPort, promPort] = await testPorts(2)
  prometheusPort = promPort
  base = `http://127.0.0.1:${httpPort}`
  agent = await startAgent({ prefix, node, args: ['--http-addr', `127.0.0.1:${httpPort}`] })
  await waitFor(async () => (await fetch(`${base}/healthz`)).status === 200, 30_000, 'the agent to serve HTTP', 250)
})

afterAll(async () => {
  for (const request of openRequests) request.destroy()
  for (const server of prometheusServers) await server.stop()
  await agent?.stop().catch(() => undefined)
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('blocking queries against the agent', () => {
  it('Given a blocking query on a service, When another service changes, Then it keeps waiting; When a container of its service is stopped, Then it returns within a second', async () => {
    // Given two containers of the watched service and one of another service
    const watched = `bq${short}`
    const other = `ot${short}`
    const a1 = await pool.run('bq-a1', web(watched))
    await pool.run('bq-a2', web(watched))
    const o1 = await pool.run('ot-1', web(other))
    await waitFor(async () => ((await health(watched)).body as unknown[]).length === 2 && ((await health(other)).body as unknown[]).length === 1, 30_000, 'all three registered', 100)
    const before = await health(watched)
    expect(before.index).toBeGreaterThan(0)

    // When a blocking query waits on the watched service
    let returnedAt: number | undefined
    const blocking = get(`/v1/health/service/${watched}?index=${before.index}&wait=30s`)
    blocking.answer.then((answer) => (returnedAt = answer.at), () => undefined)
    await blocking.connected
    // and the other service changes (its container stops and leaves the registry)
    await o1.container.stop({ t: 2 })
    await waitFor(async () => ((await health(other)).body as unknown[]).length === 0, 30_000, 'the other service emptied', 100)
    const otherIndex = (await health(other)).index
    expect(otherIndex).toBeGreaterThan(before.index)
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    // Then the blocking query is still waiting
    expect(returnedAt).toBeUndefined()

    // When a container of the watched service is stopped
    const stopAt = performance.now()
    const stopping = a1.container.stop({ t: 2 })
    const answer = await blocking.answer
    await stopping
    const ms = Math.round(answer.at - stopAt)
    console.log(`consul-agent: docker stop → blocking query returned in ${ms} ms`)
    // Then it returned within a second, with the one instance left and a higher index
    expect(ms).toBeLessThan(1_000)
    expect(answer.status).toBe(200)
    expect(answer.index).toBeGreaterThan(before.index)
    expect((answer.body as Array<{ Service: { ID: string } }>).map((entry) => entry.Service.ID)).toEqual([`${node}:${pool.name('bq-a2')}:80`])
  })

  it('Given 200 concurrent blocking queries on one service, When the service changes, Then all 200 wake, and the agent’s memory stays within 64 MiB of its idle size', async () => {
    // Given a service with one container, and the agent warmed up by a few plain reads
    const service = `mc${short}`
    await pool.run('mc-1', web(service))
    await waitFor(async () => ((await health(service)).body as unknown[]).length === 1, 30_000, 'mc-1 registered', 100)
    for (let i = 0; i < 20; i += 1) await health(service)
    const { index } = await health(service)
    const pid = agent!.pid
    const idle = rssKiB(pid)

    // When 200 blocking queries wait on it, each on its own connection
    const COUNT = 200
    const queries = Array.from({ length: COUNT }, () => get(`/v1/health/service/${service}?index=${index}&wait=60s`))
    await Promise.all(queries.map((query) => query.connected))
    let returned = 0
    for (const query of queries) query.answer.then(() => (returned += 1), () => undefined)
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const waiting = rssKiB(pid)
    expect(returned).toBe(0)

    // and the service changes (a second container starts)
    const changeAt = performance.now()
    await pool.run('mc-2', web(service))
    const answers = await Promise.all(queries.map((query) => query.answer))
    const lastMs = Math.round(Math.max(...answers.map((answer) => answer.at)) - changeAt)
    const firstMs = Math.round(Math.min(...answers.map((answer) => answer.at)) - changeAt)
    const after = rssKiB(pid)
    console.log(
      `consul-agent: 200 blocking queries: agent VmRSS idle ${Math.round(idle / 1024)} MiB, with 200 waiting ${Math.round(waiting / 1024)} MiB (+${Math.round((waiting - idle) / 1024)}), ` +
        `after all woke ${Math.round(after / 1024)} MiB (+${Math.round((after - idle) / 1024)}); woke ${firstMs}–${lastMs} ms after docker start was called`,
    )
    // Then every one of them woke with the new instance and a higher index
    expect(answers.every((answer) => answer.status === 200 && answer.index > index && (answer.body as unknown[]).length === 2)).toBe(true)
    // and memory stayed bounded: 64 MiB over idle at most (measured growth is printed above)
    expect(waiting - idle).toBeLessThan(64 * 1024)
    expect(after - idle).toBeLessThan(64 * 1024)
  })
})

describe('Prometheus discovers the containers through http_sd', () => {
  it('Given running containers, When Prometheus discovers, Then it lists their published addresses; When one is stopped, Then its target goes', async () => {
    // Given two containers of the service
    const service = `pr${short}`
    const p1 = await pool.run('pr-1', web(service))
    const p2 = await pool.run('pr-2', web(service))
    const published = async (name: string): Promise<string> => `127.0.0.1:${await pool.hostPort(name)}`
    const [addr1, addr2] = [await published(p1.name), await published(p2.name)]
    await waitFor(async () => ((await health(service)).body as unknown[]).length === 2, 30_000, 'both registered', 100)

    // When Prometheus (Debian's 2.42: no consul_sd, so http_sd) discovers every second;
    // scrapes are hourly: the test reads discovery, not scrapes
    const prometheus = PrometheusServer.start(
      [
        'global:',
        '  scrape_interval: 1h',
        'scrape_configs:',
        '  - job_name: containers',
        '    http_sd_configs:',
        `      - url: ${base}/v1/prometheus/http_sd?service=${service}`,
        '        refresh_interval: 1s',
        '',
      ].join('\n'),
      prometheusPort,
    )
    prometheusServers.push(prometheus)
    const addresses = async (): Promise<string[]> =>
      (await prometheus.targets())
        .filter((target: PrometheusTarget) => target.scrapePool === 'containers')
        .map((target) => target.discoveredLabels.__address__)
        .sort()
    const diagnostics = (): string => `\nprometheus log tail:\n${prometheus.process.stderr.split('\n').filter((line) => /http_sd|discovery|error/i.test(line)).slice(-15).join('\n')}`
    const startedAt = performance.now()
    // Then its targets are the containers' published addresses
    await waitFor(async () => JSON.stringify(await addresses()) === JSON.stringify([addr1, addr2].sort()), 90_000, 'Prometheus to list both containers', 250).catch((error: Error) => {
      throw new Error(error.message + diagnostics())
    })
    console.log(`consul-agent: Prometheus listed both containers ${Math.round(performance.now() - startedAt)} ms after it started`)
    const first = (await prometheus.targets()).find((target) => target.discoveredLabels.__address__ === addr1)
    expect(first?.discoveredLabels).toMatchObject({ __meta_discovery_service: service, __meta_discovery_node: node, __meta_discovery_source: 'docker' })

    // When one container is stopped
    const stopAt = performance.now()
    const stopping = p1.container.stop({ t: 2 })
    await waitFor(async () => JSON.stringify(await addresses()) === JSON.stringify([addr2]), 90_000, 'the stopped container to leave the targets', 100).catch((error: Error) => {
      throw new Error(error.message + diagnostics())
    })
    const ms = Math.round(performance.now() - stopAt)
    await stopping
    // Then its target is gone within the bound (refresh 1 s, plus Prometheus's own 5 s batching of discovery updates)
    console.log(`consul-agent: docker stop → target gone from Prometheus in ${ms} ms (http_sd refresh_interval 1s)`)
    expect(ms).toBeLessThan(30_000)
  })
})
