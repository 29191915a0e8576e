import { readdir, readFile, readlink } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import type { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../../src/core/model.js'
import { etcdctl, etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { etcdClient, quietAgentArgs, readElectionLeader, TestAgent } from '../support/election.js'

// An external service registered with an HTTP check (Consul ESM style): the leader alone
// probes it. Which agent sent each probe is read from the kernel: the owner of the client
// end of each connection (/proc/net/tcp inode → /proc/<pid>/fd).
const prefix = uniquePrefix('elchk')
const nodes = ['ck-a', 'ck-b', 'ck-c'].map((n) => `${n}-${process.pid}`)
const allAgents: TestAgent[] = []
const current = new Map<string, TestAgent>()
let client: Etcd3

interface Probe {
  at: number
  pid: number | undefined
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The pid among `pids` holding the client end 127.0.0.1:<clientPort> → 127.0.0.1:<serverPort>. */
async function ownerOf(clientPort: number, serverPort: number, pids: number[]): Promise<number | undefined> {
  const hex = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0')
  const table = await readFile('/proc/net/tcp', 'utf8')
  const row = table
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((cols) => cols[1] === `0100007F:${hex(clientPort)}` && cols[2] === `0100007F:${hex(serverPort)}`)
  const inode = row?.[9]
  if (!inode || inode === '0') return undefined
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === `socket:[${inode}]`) return pid
    }
  }
  return undefined
}

/** An HTTP server that answers 200 and records when each request came and from which agent process. */
async function countingServer(): Promise<{ port: number; probes: Probe[]; close: () => Promise<void> }> {
  const probes: Probe[] = []
  const owners = new WeakMap<net.Socket, Promise<number | undefined>>()
  const server = http.createServer((req, res) => {
    const at = Date.now()
    const owner = owners.get(req.socket) ?? Promise.resolve(undefined)
    void owner.then((pid) => probes.push({ at, pid }))
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  server.on('connection', (socket) => {
    const pids = allAgents.filter((a) => a.running).map((a) => a.pid)
    owners.set(socket, ownerOf(socket.remotePort!, (server.address() as net.AddressInfo).port, pids))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  let closed = false
  return {
    port,
    probes,
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve()
        closed = true
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function startAgent(node: string): TestAgent {
  const agent = new TestAgent(node, prefix, quietAgentArgs('3s', ['--no-exposed-by-default']))
  allAgents.push(agent)
  current.set(node, agent)
  return agent
}

async function actingLeader(exclude?: string): Promise<TestAgent> {
  return waitFor(async () => {
    const leader = await readElectionLeader(client, prefix)
    if (!leader || leader.node === exclude) return undefined
    const agent = current.get(leader.node)
    const last = agent?.eventsOf('leader.acting').at(-1)
    return agent?.running && last?.acting === true && last.term === leader.term ? agent : undefined
  }, 20_000, 'an agent to lead and act', 50)
}

async function listExt(): Promise<InstanceRecord | undefined> {
  const result = await runCli(['list', 'ext', '--json', ...etcdFlags(prefix)])
  if (result.code !== 0) throw new Error(`list exited ${result.code}: ${result.stderr}`)
  return (JSON.parse(result.stdout) as InstanceRecord[])[0]
}

/** Probes in [from, from + ms), grouped by the agent process that sent them. */
function probesIn(probes: Probe[], from: number, ms: number): { total: number; byPid: Map<number | undefined, number> } {
  const byPid = new Map<number | undefined, number>()
  let total = 0
  for (const p of probes) {
    if (p.at < from || p.at >= from + ms) continue
    total++
    byPid.set(p.pid, (byPid.get(p.pid) ?? 0) + 1)
  }
  return { total, byPid }
}

describe('checks of external services: run by the leader only', () => {
  let server: Awaited<ReturnType<typeof countingServer>>

  beforeAll(async () => {
    client = etcdClient()
    server = await countingServer()
    for (const node of nodes) startAgent(node)
    await Promise.all([...current.values()].map((a) => a.waitStarted()))
    await actingLeader()
  })

  afterAll(async () => {
    await Promise.all(allAgents.map((a) => a.shutdown()))
    await server?.close()
    await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
    client?.close()
  })

  it('Given three agents and an external service with a 1 s HTTP check, When it is observed for 8 s, Then only the leader probes it, about once a second, and it is passing', async () => {
    // Given
    const leader = await actingLeader()
    const url = `http://127.0.0.1:${server.port}/`
    const reg = await runCli(['register', 'ext', '--address', '127.0.0.1', '--port', String(server.port), '--check-http', url, '--check-interval', '1s', ...etcdFlags(prefix)])
    expect(reg.code, reg.stderr).toBe(0)
    await waitFor(() => server.probes.length >= 2, 15_000, 'the first probes')
    await waitFor(async () => (await listExt())?.health.status === 'passing', 15_000, 'ext to be passing')
    // When
    const from = Date.now()
    await sleep(8_000)
    await sleep(200) // owners resolve asynchronously
    // Then: ≈ 8 probes (1/interval), not 24 (one per agent), every one from the leader's process.
    const seen = probesIn(server.probes, from, 8_000)
    console.log(`[checks] 8 s window: ${seen.total} probes; by pid ${JSON.stringify([...seen.byPid])}; leader pid ${leader.pid}`)
    expect(seen.total).toBeGreaterThanOrEqual(6)
    expect(seen.total).toBeLessThanOrEqual(11)
    expect([...seen.byPid.keys()]).toEqual([leader.pid])
    expect(await listExt()).toMatchObject({ source: 'manual', health: { status: 'passing' }, check: { kind: 'http', target: url, interval: 1_000 } })
  })

  it('Given the checking leader, When it is SIGKILLed, Then the new leader takes the check over at the same rate and no one else probes', async () => {
    // Given
    const old = await actingLeader()
    // When
    old.sigkill()
    await old.live.exited
    const next = await actingLeader(old.node)
    await waitFor(() => server.probes.some((p) => p.pid === next.pid), 15_000, 'the new leader to probe')
    await sleep(1_500)
    const from = Date.now()
    await sleep(6_000)
    await sleep(200)
    // Then
    const seen = probesIn(server.probes, from, 6_000)
    console.log(`[checks] after failover, 6 s window: ${seen.total} probes; by pid ${JSON.stringify([...seen.byPid])}; new leader pid ${next.pid}`)
    expect(seen.total).toBeGreaterThanOrEqual(4)
    expect(seen.total).toBeLessThanOrEqual(9)
    expect([...seen.byPid.keys()]).toEqual([next.pid])
    expect((await listExt())?.health.status).toBe('passing')
  })

  it('Given the checked service, When it stops answering, Then the new leader marks it critical', async () => {
    // Given
    const leader = await actingLeader()
    expect((await listExt())?.health.status).toBe('passing')
    // When
    await server.close()
    // Then
    const critical = await waitFor(async () => {
      const record = await listExt()
      return record?.health.status === 'critical' ? record : undefined
    }, 30_000, 'ext to turn critical')
    expect(critical.health.output).not.toBe('')
    // (printed once the leader's write returns: possibly after the registry already shows it)
    await waitFor(() => leader.eventsOf('health.changed').some((e) => e.service === 'ext' && e.to === 'critical'), 10_000, 'the leader to report the change')
  })
})
