import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testPorts } from '../support/ports.js'
import { Containers, dockerAt, etcdClient, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { dig, haproxyUpServers, httpGet, spawnProcess, unixCommand, type Spawned } from '../support/dns-tools.js'
import { testEnv } from '../support/env.js'
import { docker } from '../support/tmux.js'

/**
 * The DNS interface of a real agent (`watch --dns-addr`), end to end: real web containers
 * registered from Docker, their HTTP checks run by the agent, and real clients — HAProxy 2.6
 * following `_<service>._tcp.service.discovery` with `server-template`, and dig. Timings are
 * measured and printed; assertions use generous bounds.
 */
const exec = promisify(execFile)
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const short = tag.replace(/[^a-z0-9]/g, '').slice(-10)
const pool = new Containers(dockerAt(env.dockerHost), `dnsa-${tag}`)
const prefix = uniquePrefix('dnsagent')
const node = `dnsa-${tag}`
const processes: Spawned[] = []
const dirs: string[] = []
let agent: AgentProcess | undefined
let dnsPort: number

/** A web container that names itself in its index page, registered as `service`. */
function webOptions(service: string, name: string, labels: Record<string, string> = {}) {
  return {
    env: { SERVICE_NAME: service },
    labels,
    stopTimeout: 2,
    cmd: ['sh', '-c', `echo ${name} > /www/index.html && exec httpd -f -p 80 -h /www`],
  }
}

/** An HTTP check every second that turns critical after one failure. */
const fastCheck = { 'discovery.check.http': '/health', 'discovery.check.interval': '1s', 'discovery.check.failures': '1' }

/** The ports in the SRV answer for `name` (every container here is published on 127.0.0.1). */
async function srvPorts(name: string): Promise<number[]> {
  const result = await dig(['@127.0.0.1', '-p', String(dnsPort), '+tries=1', '+time=2', name, 'SRV'])
  return result.answer.filter((r) => r.type === 'SRV').map((r) => Number(r.data.split(' ')[2])).sort((a, b) => a - b)
}

/** Polls `fn` every `everyMs` from now; resolves with the milliseconds until it held. */
async function msUntil(fn: () => Promise<boolean>, timeoutMs: number, what: string, startedAt = performance.now(), everyMs = 50): Promise<number> {
  await waitFor(fn, timeoutMs, what, everyMs)
  return Math.round(performance.now() - startedAt)
}

beforeAll(async () => {
  ;[dnsPort] = await testPorts(1)
  agent = await startAgent({ prefix, node, args: ['--dns-addr', `127.0.0.1:${dnsPort}`] })
  await waitFor(async () => (await dig(['@127.0.0.1', '-p', String(dnsPort), 'discovery', 'SOA'])).status === 'NOERROR', 30_000, 'the agent to answer DNS', 250)
})

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()))
  await agent?.stop().catch(() => undefined)
  await pool.removeAll()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('HAProxy 2.6 follows the agent over SRV (server-template)', () => {
  const service = `hx${short}`
  let front: string
  let socketPath: string
  let haproxy: Spawned

  beforeAll(async () => {
    const [frontPort] = await testPorts(1)
    front = `http://127.0.0.1:${frontPort}/`
    const dir = mkdtempSync(path.join(os.tmpdir(), `dns-agent-haproxy-${tag}-`))
    dirs.push(dir)
    socketPath = path.join(dir, 'admin.sock')
    const config = path.join(dir, 'haproxy.cfg')
    // No `check` on the servers: HAProxy learns of a stopped or failing instance from DNS alone,
    // so the times below are the agent's (event or check → registry → DNS) plus HAProxy's
    // resolution cycle (`timeout resolve` 1 s, `hold obsolete` 1 s). retries + redispatch keep
    // clients whole while a dead server is still listed.
    writeFileSync(config, [
      'global',
      `  stats socket ${socketPath} mode 600 level admin`,
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 10s',
      '  timeout server 10s',
      '  retries 3',
      '  option redispatch',
      'resolvers agent',
      `  nameserver disc 127.0.0.1:${dnsPort}`,
      '  accepted_payload_size 4096',
      '  resolve_retries 3',
      '  timeout resolve 1s',
      '  timeout retry 1s',
      '  hold valid 1s',
      '  hold obsolete 1s',
      '  hold nx 1s',
      '  hold other 1s',
      '  hold refused 1s',
      '  hold timeout 1s',
      'frontend fe',
      `  bind 127.0.0.1:${frontPort}`,
      '  default_backend be',
      'backend be',
      '  balance roundrobin',
      // allow-dup-ip: every container here is published on 127.0.0.1, so all SRV targets are the
      // same name and address. HAProxy 2.6 ties one additional-section record to one SRV record
      // and, for the others, refuses an address another server of the backend already has unless
      // allow-dup-ip is set: without it a third instance on the same host address never gets an
      // address (the same happens on any Docker host publishing several containers on its IP).
      `  server-template web 1-10 _${service}._tcp.service.discovery resolvers agent resolve-prefer ipv4 resolve-opts allow-dup-ip init-addr none`,
      '',
    ].join('\n'))
    const check = await exec('haproxy', ['-c', '-f', config]).catch((error: Error & { stderr?: string }) => ({ stdout: '', stderr: error.stderr ?? error.message }))
    expect(check.stderr + check.stdout).not.toMatch(/ALERT/)
    haproxy = spawnProcess('haproxy', ['-db', '-f', config], 'haproxy')
    processes.push(haproxy)
    await waitFor(async () => !haproxy.running || (await unixCommand(socketPath, 'show info\n').then((t) => t.includes('Name: HAProxy'), () => false)), 30_000, 'haproxy stats socket', 250)
    if (!haproxy.running) throw new Error(`haproxy exited: ${haproxy.text()}`)
  })


  /** Sends `count` requests through HAProxy; resolves with how many each container answered. */
  async function spread(count: number): Promise<{ by: Record<string, number>; failed: number }> {
    const by: Record<string, number> = {}
    let failed = 0
    for (let i = 0; i < count; i += 1) {
      const response = await httpGet(front, 3_000)
      if (response.status !== 200) failed += 1
      else by[response.body.trim()] = (by[response.body.trim()] ?? 0) + 1
    }
    return { by, failed }
  }

  const same = (a: string[], b: string[]): boolean => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort())

  it('Given three web containers, When one stops, one fails its check and a new one starts, Then HAProxy follows each within seconds', async () => {
    // Given three containers of the service, one of them checked every second
    const a = await pool.run('hx-a', webOptions(service, 'hx-a'))
    const b = await pool.run('hx-b', webOptions(service, 'hx-b'))
    const c = await pool.run('hx-c', webOptions(service, 'hx-c', fastCheck))
    const addr = async (name: string): Promise<string> => `127.0.0.1:${await pool.hostPort(name)}`
    const [addrA, addrB, addrC] = [await addr(a.name), await addr(b.name), await addr(c.name)]
    let seen: string[] = []
    const startedAt = performance.now()
    await waitFor(async () => same((seen = await haproxyUpServers(socketPath)), [addrA, addrB, addrC]), 60_000, 'HAProxy to have all three UP', 100).catch(async (error: Error) => {
      throw new Error(`${error.message}; it has ${JSON.stringify(seen)}; SRV: ${JSON.stringify(await srvPorts(`_${service}._tcp.service.discovery`))}; state: ${await unixCommand(socketPath, 'show servers state be\n')}; haproxy: ${haproxy.text().slice(-3000)}`)
    })
    console.log(`dns-agent: HAProxy has all 3 containers UP ${Math.round(performance.now() - startedAt)} ms after the last docker start`)
    const first = await spread(30)
    expect(first.failed).toBe(0)
    expect(Object.keys(first.by).sort()).toEqual(['hx-a', 'hx-b', 'hx-c'])

    // When a is stopped (docker stop: SIGTERM, which httpd as PID 1 ignores, then SIGKILL after 2 s)
    const stopAt = performance.now()
    const stopping = a.container.stop({ t: 2 })
    const stopMs = await msUntil(async () => !(await haproxyUpServers(socketPath)).includes(addrA), 60_000, 'the stopped container out of rotation', stopAt)
    await stopping
    console.log(`dns-agent: docker stop → out of HAProxy's rotation: ${stopMs} ms`)
    // Then it gets no traffic and no request fails
    const afterStop = await spread(20)
    expect(afterStop.failed).toBe(0)
    expect(Object.keys(afterStop.by).sort()).toEqual(['hx-b', 'hx-c'])
    expect(stopMs).toBeLessThan(30_000)

    // When c's check starts failing (its /health goes away; httpd still serves /)
    const failAt = performance.now()
    await docker(['exec', c.name, 'mv', '/www/health', '/www/health.off'])
    const failMs = await msUntil(async () => same(await haproxyUpServers(socketPath), [addrB]), 60_000, 'the failing container out of rotation', failAt)
    console.log(`dns-agent: check failing (interval 1s, failures 1) → out of HAProxy's rotation: ${failMs} ms`)
    // Then only b gets traffic
    const onlyB = await spread(10)
    expect(onlyB).toEqual({ by: { 'hx-b': 10 }, failed: 0 })
    expect(failMs).toBeLessThan(30_000)

    // When c passes again and a new container d starts
    await docker(['exec', c.name, 'mv', '/www/health.off', '/www/health'])
    const startAt = performance.now()
    const d = await pool.run('hx-d', webOptions(service, 'hx-d'))
    const addrD = await addr(d.name)
    const newMs = await msUntil(async () => (await haproxyUpServers(socketPath)).includes(addrD), 60_000, 'the new container in rotation', startAt)
    console.log(`dns-agent: docker start → in HAProxy's rotation: ${newMs} ms`)
    await waitFor(async () => same(await haproxyUpServers(socketPath), [addrB, addrC, addrD]), 60_000, 'b, c and d UP', 100)
    // Then the new one gets its share of the traffic, and c is back
    const last = await spread(30)
    expect(last.failed).toBe(0)
    expect(Object.keys(last.by).sort()).toEqual(['hx-b', 'hx-c', 'hx-d'])
    expect(newMs).toBeLessThan(30_000)
  })
})

describe('dig against the agent', () => {
  it('Given an instance checked every second, When its check fails, Then it leaves the answers within one interval plus slack, and comes back when it passes', async () => {
    // Given two instances, one with a 1 s check that turns critical after one failure
    const service = `ck${short}`
    const name = `${service}.service.discovery`
    const steady = await pool.run('ck-steady', webOptions(service, 'ck-steady'))
    const checked = await pool.run('ck-checked', webOptions(service, 'ck-checked', fastCheck))
    const [steadyPort, checkedPort] = [await pool.hostPort(steady.name), await pool.hostPort(checked.name)]
    const both = [steadyPort, checkedPort].sort((x, y) => x - y)
    await waitFor(async () => JSON.stringify(await srvPorts(name)) === JSON.stringify(both), 30_000, 'both instances in SRV', 100)

    // When its /health goes away
    const failAt = performance.now()
    await docker(['exec', checked.name, 'mv', '/www/health', '/www/health.off'])
    const goneMs = await msUntil(async () => JSON.stringify(await srvPorts(name)) === JSON.stringify([steadyPort]), 30_000, 'the failing instance out of SRV', failAt)
    console.log(`dns-agent: check failing → out of dig's answers: ${goneMs} ms (check interval 1000 ms)`)
    // Then it is gone within one interval plus slack (the next check, the etcd write, the watch)
    expect(goneMs).toBeLessThan(1_000 + 9_000)
    // and A answers keep the other (both share 127.0.0.1, so one A record)
    expect((await dig(['@127.0.0.1', '-p', String(dnsPort), name, 'A'])).answer.map((r) => r.data)).toEqual(['127.0.0.1'])

    // When it passes again
    const backAt = performance.now()
    await docker(['exec', checked.name, 'mv', '/www/health.off', '/www/health'])
    const backMs = await msUntil(async () => JSON.stringify(await srvPorts(name)) === JSON.stringify(both), 30_000, 'the instance back in SRV', backAt)
    console.log(`dns-agent: check passing again → back in dig's answers: ${backMs} ms`)
    expect(backMs).toBeLessThan(1_000 + 9_000)
  })

  it('Given 600 instances of one service, When A is asked over UDP, Then TC is set; over TCP all 600 come back', async () => {
    // Given 600 manual records (as `register` writes them), each on its own address
    const service = `big${short}`
    const name = `${service}.service.discovery`
    const seeded = await exec(process.execPath, [path.resolve('test/support/bench-seed.js'), env.etcdEndpoints.join(','), prefix, service, '600', '10.77', '9000'], { timeout: 120_000 })
    console.log(`dns-agent: 600 records registered: ${seeded.stdout.trim()}`)
    const at = ['@127.0.0.1', '-p', String(dnsPort)]
    await waitFor(async () => (await dig([...at, '+tcp', name, 'A'])).answer.length === 600, 60_000, 'all 600 in the view', 250)

    // When asked over UDP (with EDNS's 1232 bytes, and without EDNS's 512), not retrying over TCP
    for (const edns of ['+edns=0', '+noedns']) {
      const udp = await dig([...at, edns, '+ignore', name, 'A'])
      // Then the answer is truncated: TC, and only what fits
      expect(udp.status).toBe('NOERROR')
      expect(udp.flags).toContain('tc')
      expect(udp.answer.length).toBeGreaterThan(0)
      expect(udp.answer.length).toBeLessThan(600)
    }
    // When asked over TCP, Then every instance's address is there, once
    const tcp = await dig([...at, '+tcp', name, 'A'])
    expect(tcp.flags).not.toContain('tc')
    const addresses = new Set(tcp.answer.map((r) => r.data))
    expect(addresses.size).toBe(600)
    expect(addresses.has('10.77.0.1') && addresses.has('10.77.2.88')).toBe(true)
    // and SRV over TCP, whose 600 records and 600 additional A records (~72 KB uncompressed)
    // don't fit a DNS message's 65,535 bytes, is truncated with TC, each SRV kept with its A
    const srv = await dig([...at, '+tcp', name, 'SRV'])
    expect(srv.flags).toContain('tc')
    expect(srv.answer.length).toBeGreaterThan(400)
    expect(srv.answer.length).toBeLessThan(600)
    const glue = new Set(srv.additional.filter((r) => r.type === 'A').map((r) => r.name))
    expect(srv.answer.every((r) => glue.has(r.data.split(' ')[3]))).toBe(true)
    console.log(`dns-agent: 600 instances: SRV over TCP carries ${srv.answer.length} records (TC, 64 KiB message limit)`)
    // And dig left to itself (UDP, then TCP on TC) gets all 600
    expect((await dig([...at, name, 'A'])).answer).toHaveLength(600)
  })
})
