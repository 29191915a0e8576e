import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, startCli, uniquePrefix, waitFor, type LiveProcess } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { docker } from '../support/tmux.js'
import { testPorts } from '../support/ports.js'

/**
 * `watch --metrics-port`: /metrics is valid Prometheus text (promtool) with every documented
 * family, and /healthz follows etcd. The shared 3-member cluster is never stopped (other tests
 * use it): the /healthz test runs against a private single-member etcd that it kills and
 * restarts on the same ports and data dir.
 */
const env = testEnv()
const tag = randomBytes(3).toString('hex')
const label = `discovery-test-metrics=${tag}`
const agents: LiveProcess[] = []
const etcds: ChildProcess[] = []
const dirs: string[] = []

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGTERM', 10_000)))
  for (const etcd of etcds) etcd.kill('SIGKILL')
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  const ids = await docker(['ps', '-aq', '--filter', `label=${label}`]).catch(() => '')
  if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined)
})

const DOCUMENTED = [
  'discovery_instances',
  'discovery_registration_latency_seconds',
  'discovery_check_duration_seconds',
  'discovery_is_leader',
  'discovery_docker_events_total',
  'discovery_etcd_errors_total',
  'discovery_reconnects_total',
  'discovery_build_info',
  // prom-client's standard runtime metrics (the README names these)
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_gc_duration_seconds',
]

describe('watch --metrics-port: /metrics', () => {
  const prefix = uniquePrefix('metrics')
  const node = `metrics-${tag}`
  let agent: LiveProcess
  let base: string
  let container: string

  beforeAll(async () => {
    const [port] = await testPorts(1)
    base = `http://127.0.0.1:${port}`
    agent = startAgent(['--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', node, '--metrics-port', String(port)])
    await waitFor(() => agent.lines().some((l) => JSON.parse(l).type === 'agent.started'), 60_000, 'the agent to start')
    // A container started while the agent runs: a Docker event, a registration with its latency, and health checks
    container = `m-${tag}`
    await docker(['run', '-d', '--pull', 'never', '--name', container, '-l', label, '-p', '127.0.0.1::80', '--stop-timeout', '1', '-l', 'discovery.check.http=/health', '-l', 'discovery.check.interval=1s', env.image])
  })

  afterAll(async () => {
    await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
  })

  it('Given a container registered and checked, When /metrics is scraped, Then promtool accepts it and every documented family has samples', async () => {
    // Wait until the instance, its registration latency and a check have been counted
    const text = await waitFor(
      async () => {
        const body = (await get(`${base}/metrics`)).body
        return /^discovery_instances\{service="busybox",health="passing"\} [1-9]/m.test(body) &&
          /^discovery_registration_latency_seconds_count [1-9]/m.test(body) &&
          /^discovery_check_duration_seconds_count\{status="passing"\} [1-9]/m.test(body) &&
          /^discovery_docker_events_total\{action="start"\} [1-9]/m.test(body)
          ? body
          : undefined
      },
      60_000,
      'instances, latency, checks and docker events in /metrics',
      500,
    )
    // Then promtool (the Prometheus project's own linter) accepts it
    const check = await promtool(text)
    expect(check, check.output).toMatchObject({ code: 0 })
    expect(check.output.trim()).toBe('')
    // and every documented family is there with HELP, TYPE and at least one sample
    for (const name of DOCUMENTED) {
      expect(text, name).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'))
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, 'm'))
      expect(text, name).toMatch(new RegExp(`^${name}(_bucket|_count|_sum)?(\\{[^}]*\\})? \\S+$`, 'm'))
    }
    // with the documented labels
    expect(text).toMatch(/^discovery_instances\{service="busybox",health="passing"\} \d+$/m)
    expect(text).toMatch(/^discovery_reconnects_total\{target="etcd"\} \d+$/m)
    expect(text).toMatch(/^discovery_reconnects_total\{target="docker"\} \d+$/m)
    expect(text).toMatch(/^discovery_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m)
    expect(text).toMatch(/^discovery_is_leader 1$/m) // alone in its prefix, it leads
    expect(text).toMatch(/^discovery_etcd_errors_total 0$/m)
    // and no label carries an instance id, container or node name (bounded cardinality)
    const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1])
    for (const value of labelValues) {
      expect(value).not.toContain(container)
      expect(value).not.toContain(node)
      expect(value).not.toContain(':')
    }
  })

  it('Given the metrics server, When an unknown path is asked, Then 404 names the two that exist', async () => {
    const response = await get(`${base}/nope`)
    expect(response.status).toBe(404)
    expect(response.body).toContain('/metrics')
  })
})

describe('watch --metrics-port: /healthz follows etcd', () => {
  it('Given an agent on a private etcd, When etcd is frozen, killed and restarted on the same ports and data, Then /healthz goes 503 and back to 200', async () => {
    // Given a private single-member etcd (the shared cluster is never stopped)
    const etcd = await PrivateEtcd.start()
    const [port] = await testPorts(1)
    const healthz = `http://127.0.0.1:${port}/healthz`
    const agent = startAgent(['--etcd-endpoints', etcd.endpoint, '--prefix', uniquePrefix('healthz'), '--node', `healthz-${tag}`, '--metrics-port', String(port), '--ttl', '3s'])
    await waitFor(async () => (await get(healthz)).status === 200, 60_000, '/healthz 200 with etcd up', 250)
    expect((await get(healthz)).body).toBe('ok\n')

    // When etcd is frozen (SIGSTOP: connections hang, nothing is refused)
    etcd.signal('SIGSTOP')
    const frozen = await waitFor(async () => {
      const r = await get(healthz)
      return r.status === 503 ? r : undefined
    }, 60_000, '/healthz 503 while etcd is frozen', 250)
    // Then it says what is wrong
    expect(frozen.body).toMatch(/^etcd: /m)
    expect(frozen.body).not.toMatch(/^docker: /m)
    // When it resumes
    etcd.signal('SIGCONT')
    await waitFor(async () => (await get(healthz)).status === 200, 60_000, '/healthz 200 after etcd resumed', 250)

    // When etcd is killed
    etcd.signal('SIGKILL')
    await etcd.exited()
    await waitFor(async () => (await get(healthz)).status === 503, 60_000, '/healthz 503 with etcd killed', 250)
    // When it is restarted on the same ports and data dir
    await etcd.restart()
    await waitFor(async () => (await get(healthz)).status === 200, 90_000, '/healthz 200 after etcd restarted', 250)

    // And /metrics counted the outages and the reconnections
    const metrics = (await get(`http://127.0.0.1:${port}/metrics`)).body
    expect(Number(/^discovery_etcd_errors_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2)
    expect(Number(/^discovery_reconnects_total\{target="etcd"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2)
    // and --json printed NDJSON all along: every stdout line parses
    for (const line of agent.lines()) expect(() => JSON.parse(line), line).not.toThrow()
    expect(agent.lines().map((l) => JSON.parse(l).type)).toEqual(expect.arrayContaining(['etcd.disconnected', 'etcd.connected']))
  })
})

function startAgent(args: string[]): LiveProcess {
  const agent = startCli(['watch', '--json', '--docker-host', env.dockerHost, ...args])
  agents.push(agent)
  return agent
}

/** A single-member etcd on free loopback ports with a temp data dir, which can be killed and started again as it was. */
class PrivateEtcd {
  private child!: ChildProcess
  private gone!: Promise<void>

  private constructor(
    private readonly dataDir: string,
    private readonly clientPort: number,
    private readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`
  }

  static async start(): Promise<PrivateEtcd> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'discovery-metrics-etcd-'))
    dirs.push(dataDir)
    const [clientPort, peerPort] = await testPorts(2)
    const etcd = new PrivateEtcd(dataDir, clientPort, peerPort)
    await etcd.restart()
    return etcd
  }

  async restart(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`
    // prettier-ignore
    this.child = spawn('etcd', [
      '--name', 'm', '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `m=${peer}`, '--initial-cluster-state', 'new',
    ], { stdio: 'ignore', env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD'))) })
    etcds.push(this.child)
    this.gone = new Promise((resolve) => this.child.once('exit', () => resolve()))
    await waitFor(async () => (await get(`${this.endpoint}/health`)).body.includes('"health":"true"'), 30_000, 'the private etcd to answer', 200)
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal)
  }

  exited(): Promise<void> {
    return this.gone
  }
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: 3_000 }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
      response.on('error', () => resolve({ status: 0, body: '' }))
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve({ status: 0, body: '' }))
  })
}

function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('exit', (code) => resolve({ code, output }))
    child.stdin.end(text)
  })
}

