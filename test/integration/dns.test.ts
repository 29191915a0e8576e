import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDnsServer, type DnsServer } from '../../src/core/dns/server.js'
import type { HealthStatus, InstanceRecord, NodeRecord } from '../../src/core/model.js'
import { testPorts } from '../support/ports.js'
import { ViewState } from '../../src/core/view/view-state.js'
import { waitFor } from '../support/cli.js'
import { countingBackend, dig, haproxyUpServers, httpGet, putRecords, spawnProcess, whoHoldsPort, type CountingBackend, type Spawned } from '../support/dns-tools.js'
import { testEnv } from '../support/env.js'
import { instanceRecord } from '../support/instance-fixtures.js'
import { docker } from '../support/tmux.js'

/**
 * The DNS interface against real clients: dig (every name form, UDP truncation and TCP,
 * forwarding to a real dnsmasq), HAProxy following an SRV name through its resolvers, and a
 * container whose own resolver is our server on the docker0 bridge. The servers are fed by a
 * ViewState, the same read side the agent's registry view fills from etcd.
 */
const env = testEnv()
const tag = randomBytes(3).toString('hex')
const label = `discovery-test-dns=${tag}`
const processes: Spawned[] = []
const servers: DnsServer[] = []
const backends: CountingBackend[] = []
const dirs: string[] = []

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()))
  await Promise.all(servers.map((s) => s.close()))
  await Promise.all(backends.map((b) => b.close()))
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  const ids = await docker(['ps', '-aq', '--filter', `label=${label}`]).catch(() => '')
  if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined)
})

function inst(id: string, service: string, address: string, port: number, status: HealthStatus = 'passing', tags: string[] = []): InstanceRecord {
  return instanceRecord({ id, service, address, port, status, tags, node: 'node-a' })
}

const nodeA: NodeRecord = { schema: 1, node: 'node-a', version: '0.1.0', pid: 1, hostname: 'node-a', startedAt: '2024-05-01T12:00:00.000Z', ttl: 10, lease: '1', address: '192.168.50.1' }

describe('DNS with dig', () => {
  const state = new ViewState()
  let at: string[]
  let forwarding: string[]

  beforeAll(async () => {
    putRecords(
      state,
      [
        inst('web-1', 'web', '10.10.0.1', 8080, 'passing', ['primary']),
        inst('web-2', 'web', '10.10.0.2', 8081, 'warning'),
        inst('web-3', 'web', '10.10.0.3', 8082, 'critical', ['primary']),
        inst('web6-1', 'web6', 'fd00::10', 80),
        inst('down-1', 'down', '10.10.1.1', 80, 'critical'),
        ...Array.from({ length: 60 }, (_, i) => inst(`big-${i}`, 'big', `10.11.0.${i + 1}`, 9000 + i)),
      ],
      [nodeA],
    )
    const plain = await startDnsServer(state, { host: '127.0.0.1', port: 0 })
    servers.push(plain)
    at = ['@127.0.0.1', '-p', String(plain.udpPort)]

    // dnsmasq as the recursor: authoritative for example.test only, no upstream, no files read
    const [dnsmasqPort] = await testPorts(1)
    const dnsmasq = spawnProcess('dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', `--port=${dnsmasqPort}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--pid-file=', '--log-facility=-', '--address=/example.test/192.0.2.7',
    ], 'dnsmasq')
    processes.push(dnsmasq)
    await waitFor(async () => (await dig(['@127.0.0.1', '-p', String(dnsmasqPort), 'example.test', 'A'])).answer.length > 0, 30_000, `dnsmasq to answer (${dnsmasq.text()})`, 250)
    const withRecursor = await startDnsServer(state, { host: '127.0.0.1', port: 0, recursors: [`127.0.0.1:${dnsmasqPort}`] })
    servers.push(withRecursor)
    forwarding = ['@127.0.0.1', '-p', String(withRecursor.udpPort)]
  })

  it('Given passing, warning and critical instances, When A is asked, Then the routable addresses come back, authoritative', async () => {
    const result = await dig([...at, 'web.service.discovery', 'A'])
    expect(result.status).toBe('NOERROR')
    expect(result.flags).toContain('aa')
    expect(result.answer.map((r) => r.data).sort()).toEqual(['10.10.0.1', '10.10.0.2'])
    expect(result.answer.every((r) => r.ttl === 5 && r.type === 'A')).toBe(true)
    // Same with the datacenter in the name, and in upper case
    expect((await dig([...at, 'WEB.service.DC1.discovery', 'A'])).answer.map((r) => r.data).sort()).toEqual(['10.10.0.1', '10.10.0.2'])
  })

  it('Given an IPv6 instance, When AAAA is asked, Then its address comes back', async () => {
    expect((await dig([...at, 'web6.service.discovery', 'AAAA'])).answer.map((r) => r.data)).toEqual(['fd00::10'])
  })

  it('Given instances, When SRV is asked, Then each has port, priority 1, weight 1 and a target whose A is in the additional section and resolves on its own', async () => {
    const result = await dig([...at, 'web.service.discovery', 'SRV'])
    expect(result.status).toBe('NOERROR')
    const srv = result.answer.map((r) => r.data.split(' ')).sort((a, b) => Number(a[2]) - Number(b[2]))
    expect(srv).toEqual([
      ['1', '1', '8080', '0a0a0001.addr.dc1.discovery.'],
      ['1', '1', '8081', '0a0a0002.addr.dc1.discovery.'],
    ])
    expect(result.additional.map((r) => [r.name, r.type, r.data]).sort()).toEqual([
      ['0a0a0001.addr.dc1.discovery.', 'A', '10.10.0.1'],
      ['0a0a0002.addr.dc1.discovery.', 'A', '10.10.0.2'],
    ])
    expect((await dig([...at, '0a0a0001.addr.dc1.discovery', 'A'])).answer.map((r) => r.data)).toEqual(['10.10.0.1'])
  })

  it.each([
    ['primary.web.service.discovery', 'A', ['10.10.0.1']],
    ['_web._primary.service.discovery', 'SRV', ['1 1 8080 0a0a0001.addr.dc1.discovery.']],
    ['_web._tcp.service.discovery', 'SRV', ['1 1 8080 0a0a0001.addr.dc1.discovery.', '1 1 8081 0a0a0002.addr.dc1.discovery.']],
    ['node-a.node.discovery', 'A', ['192.168.50.1']],
  ])('Given the registry, When %s %s is asked, Then %j', async (name, type, expected) => {
    const result = await dig([...at, name, type])
    expect(result.status).toBe('NOERROR')
    expect(result.answer.map((r) => r.data).sort()).toEqual(expected)
  })

  it('Given an unknown service, When asked, Then NXDOMAIN with the SOA (minimum = negative TTL) in authority', async () => {
    const result = await dig([...at, 'nosuch.service.discovery', 'A'])
    expect(result.status).toBe('NXDOMAIN')
    expect(result.answer).toEqual([])
    expect(result.authority).toHaveLength(1)
    expect(result.authority[0]).toMatchObject({ name: 'discovery.', type: 'SOA', ttl: 5 })
    expect(result.authority[0].data.split(' ')).toEqual(['ns.discovery.', 'hostmaster.discovery.', expect.any(String), '3600', '600', '86400', '5'])
  })

  it('Given a service whose only instance is critical, When asked, Then NOERROR, no answers, SOA in authority', async () => {
    const result = await dig([...at, 'down.service.discovery', 'A'])
    expect(result.status).toBe('NOERROR')
    expect(result.answer).toEqual([])
    expect(result.authority.map((r) => r.type)).toEqual(['SOA'])
  })

  it('Given the same query over TCP, When asked with +tcp, Then the same answers come back', async () => {
    const result = await dig([...at, '+tcp', 'web.service.discovery', 'SRV'])
    expect(result.status).toBe('NOERROR')
    expect(result.answer).toHaveLength(2)
    expect(result.additional).toHaveLength(2)
  })

  it('Given 60 instances, When A is asked over UDP without EDNS, Then TC is set and the answer is partial; over TCP it is complete', async () => {
    const udp = await dig([...at, '+noedns', '+ignore', 'big.service.discovery', 'A'])
    expect(udp.flags).toContain('tc')
    expect(udp.answer.length).toBeGreaterThan(0)
    expect(udp.answer.length).toBeLessThan(60)
    const tcp = await dig([...at, '+tcp', 'big.service.discovery', 'A'])
    expect(tcp.flags).not.toContain('tc')
    expect(new Set(tcp.answer.map((r) => r.data)).size).toBe(60)
    // Without +ignore dig retries over TCP itself on TC, as stub resolvers do
    expect((await dig([...at, '+noedns', 'big.service.discovery', 'A'])).answer).toHaveLength(60)
  })

  it('Given no recursor, When a name outside the domain is asked, Then REFUSED', async () => {
    const result = await dig([...at, 'example.test', 'A'])
    expect(result.status).toBe('REFUSED')
    expect(result.flags).not.toContain('ra')
  })

  it('Given dnsmasq as the recursor, When a name outside the domain is asked, Then dnsmasq answers it through us, and our names are still ours', async () => {
    const outside = await dig([...forwarding, 'www.example.test', 'A'])
    expect(outside.status).toBe('NOERROR')
    expect(outside.flags).toContain('ra')
    expect(outside.answer.map((r) => r.data)).toEqual(['192.0.2.7'])
    const ours = await dig([...forwarding, 'web.service.discovery', 'A'])
    expect(ours.flags).toContain('aa')
    expect(ours.answer).toHaveLength(2)
  })
})

describe('DNS with HAProxy: server-template over SRV', () => {
  const state = new ViewState()
  let front: string
  let stats: string
  let socketPath: string
  let a: CountingBackend
  let b: CountingBackend

  beforeAll(async () => {
    a = await countingBackend('a')
    b = await countingBackend('b')
    backends.push(a, b)
    putRecords(state, [inst('hx-a', 'web', '127.0.0.1', a.port), inst('hx-b', 'web', '127.0.0.1', b.port)])
    const server = await startDnsServer(state, { host: '127.0.0.1', port: 0 })
    servers.push(server)
    const [frontPort, statsPort] = await testPorts(2)
    front = `http://127.0.0.1:${frontPort}/`
    stats = `http://127.0.0.1:${statsPort}/stats;csv`
    const dir = mkdtempSync(path.join(os.tmpdir(), `dns-haproxy-${tag}-`))
    dirs.push(dir)
    const config = path.join(dir, 'haproxy.cfg')
    socketPath = path.join(dir, 'admin.sock')
    // Short holds so a change in DNS shows within seconds: HAProxy re-resolves every `hold valid`
    // and drops a server that left the SRV answer after `hold obsolete`.
    writeFileSync(config, [
      'global',
      `  stats socket ${socketPath} mode 600 level admin`,
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 10s',
      '  timeout server 10s',
      'resolvers disc',
      `  nameserver ours 127.0.0.1:${server.udpPort}`,
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
      '  server-template srv 5 _web._tcp.service.discovery resolvers disc resolve-prefer ipv4 check inter 1s',
      'listen stats',
      `  bind 127.0.0.1:${statsPort}`,
      '  stats enable',
      '  stats uri /stats',
      '',
    ].join('\n'))
    const haproxy = spawnProcess('haproxy', ['-db', '-f', config], 'haproxy')
    processes.push(haproxy)
    await waitFor(async () => (await httpGet(stats)).status === 200 || !haproxy.running, 30_000, 'haproxy stats page', 250)
    if (!haproxy.running) throw new Error(`haproxy exited: ${haproxy.text()}`)
  })


  /** Sends `count` requests through HAProxy's frontend; resolves with how many each backend got. */
  async function spread(count: number): Promise<{ a: number; b: number; failed: number }> {
    const before = { a: a.hits, b: b.hits }
    let failed = 0
    for (let i = 0; i < count; i += 1) if ((await httpGet(front)).status !== 200) failed += 1
    return { a: a.hits - before.a, b: b.hits - before.b, failed }
  }

  it('Given two instances in DNS, When requests go through HAProxy, Then both backends get traffic; When one turns critical, Then HAProxy stops sending it any', async () => {
    const both = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort()
    let seen: string[] = []
    await waitFor(async () => JSON.stringify((seen = await haproxyUpServers(socketPath))) === JSON.stringify(both), 60_000, `HAProxy to have ${both.join(' and ')} UP`, 500).catch((error: Error) => {
      throw new Error(`${error.message}; it has ${JSON.stringify(seen)}`)
    })
    const first = await spread(20)
    expect(first.failed).toBe(0)
    expect(first.a).toBeGreaterThan(0)
    expect(first.b).toBeGreaterThan(0)

    putRecords(state, [inst('hx-b', 'web', '127.0.0.1', b.port, 'critical')])
    // HAProxy re-resolves every second or so; allow a generous bound on a loaded machine
    await waitFor(async () => {
      const round = await spread(10)
      return round.b === 0 && round.a === 10 && round.failed === 0
    }, 90_000, 'HAProxy to send nothing to the critical instance', 500)
    expect(await haproxyUpServers(socketPath)).toEqual([`127.0.0.1:${a.port}`])
  })
})

describe("DNS as a container's own resolver", () => {
  const state = new ViewState()
  let server: DnsServer | undefined

  beforeAll(async () => {
    putRecords(state, [inst('ctr-1', 'web', '10.20.30.40', 80)])
    try {
      server = await startDnsServer(state, { host: '172.17.0.1', port: 53 })
      servers.push(server)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const holder = code === 'EADDRINUSE' ? ` — held by: ${await whoHoldsPort(53)}` : ''
      throw new Error(`cannot bind 172.17.0.1:53 (${code ?? (error as Error).message})${holder}`)
    }
  })

  it('Given our server on the docker0 address, When a container started with --dns looks up web.service.discovery, Then it gets the instance address', async () => {
    const out = await docker([
      'run', '--rm', '--pull', 'never', '--name', `dns-${tag}`, '-l', label, '--dns', '172.17.0.1',
      env.image, 'busybox', 'nslookup', 'web.service.discovery',
    ])
    expect(out).toMatch(/Address:\s+10\.20\.30\.40/)
  })
})
