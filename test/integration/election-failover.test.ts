import { execFile } from 'node:child_process'
import type { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatus } from '../../src/services/status.js'
import { etcdFlags, etcdctl, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import {
  actingAt,
  actingOverlaps,
  currentRevision,
  etcdClient,
  quietAgentArgs,
  readCampaigns,
  readElectionLeader,
  recordLeaderInfo,
  termRegressions,
  TestAgent,
  waitForActingLeader,
  type LeaderInfoWrite,
} from '../support/election.js'
import { testEnv } from '../support/env.js'
import { testPorts } from '../support/ports.js'

// Three agents on one machine, each its own --node, on the second dockerd with
// --no-exposed-by-default (so nothing of anyone's containers is registered), TTL 5 s: long
// enough that killing etcd's raft leader (a new raft election, ~1-2 s, longer on a loaded
// 2-core machine) does not by itself outlast a lease, which is what the member-kill test assumes.
const TTL_MS = 5_000
const prefix = uniquePrefix('elect')
const nodes = ['el-a', 'el-b', 'el-c'].map((n) => `${n}-${process.pid}`)
const allAgents: TestAgent[] = []
const current = new Map<string, TestAgent>()
let client: Etcd3
let info: { writes: LeaderInfoWrite[]; close: () => Promise<void> }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function startAgent(node: string): TestAgent {
  const agent = new TestAgent(node, prefix, quietAgentArgs(`${TTL_MS / 1000}s`, ['--no-exposed-by-default']))
  allAgents.push(agent)
  current.set(node, agent)
  return agent
}

function actingLeader(exclude?: string, boundMs = 20_000, everyMs = 50): Promise<TestAgent> {
  return waitForActingLeader(client, prefix, current, { exclude, boundMs, everyMs })
}

async function status(args: string[] = ['--json']): Promise<ClusterStatus> {
  const result = await runCli(['status', ...args, ...etcdFlags(prefix)])
  if (result.code !== 0) throw new Error(`status exited ${result.code}: ${result.stderr}`)
  return JSON.parse(result.stdout) as ClusterStatus
}

function termOf(agent: TestAgent): string {
  const last = agent.eventsOf('leader.acting').at(-1)
  if (last?.acting !== true) throw new Error(`${agent.node} is not acting`)
  return String(last.term)
}

/** The etcd client ports (23791…) a process holds established connections to. */
function etcdPortsOf(pid: number): Promise<number[]> {
  const clientPorts = testEnv().etcdEndpoints.map((e) => Number(new URL(e).port))
  return new Promise((resolve, reject) => {
    execFile('ss', ['-tnpH', 'state', 'established'], (error, stdout) => {
      if (error) return reject(error)
      const ports = new Set<number>()
      for (const line of stdout.split('\n')) {
        if (!line.includes(`pid=${pid},`)) continue
        const peer = line.trim().split(/\s+/)[3] ?? ''
        const port = Number(peer.slice(peer.lastIndexOf(':') + 1))
        if (clientPorts.includes(port)) ports.add(port)
      }
      resolve([...ports].sort())
    })
  })
}

/** 1-based index of the etcd member that is raft leader now. */
async function raftLeaderMember(): Promise<number> {
  const out = JSON.parse(await etcdctl(['endpoint', 'status', '-w', 'json'])) as { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }[]
  const leader = out.find((s) => String(s.Status.header.member_id) === String(s.Status.leader))
  if (!leader) throw new Error('no etcd raft leader')
  return testEnv().etcdEndpoints.indexOf(leader.Endpoint) + 1
}

function testenv(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [testEnv().script, ...args], (error, _stdout, stderr) => (error ? reject(new Error(`testenv ${args.join(' ')}: ${stderr}`)) : resolve()))
  })
}

/** Collapses consecutive repeats: [a, a, b, b, a] → [a, b, a]. */
function changes<T>(values: T[]): T[] {
  return values.filter((v, i) => i === 0 || v !== values[i - 1])
}

describe('leader election: three agents on the real 3-member etcd', () => {
  beforeAll(async () => {
    client = etcdClient()
    // The leader/info history from before any agent started: every fenced write is seen.
    info = await recordLeaderInfo(client, prefix, await currentRevision(client))
    for (const node of nodes) startAgent(node)
    await Promise.all([...current.values()].map((a) => a.waitStarted()))
    await actingLeader()
  })

  afterAll(async () => {
    await Promise.all(allAgents.map((a) => a.shutdown()))
    await info?.close()
    await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
    client?.close()
  })

  it('Given three agents, When etcd and the agents are sampled for 6 s or more, Then there is exactly one leader at every sample, the one etcd names', async () => {
    // Given
    const leader = await actingLeader()
    // When: sample the election prefix every ~150 ms and `status --json` alongside.
    const samples: { t: number; leader: string | undefined }[] = []
    const statuses: ClusterStatus[] = []
    // At least 6 s and three status runs (a CLI start can take seconds on a loaded machine).
    const until = Date.now() + 6_000
    const statusLoop = (async () => {
      while (Date.now() < until || statuses.length < 3) statuses.push(await status())
    })()
    let statusDone = false
    void statusLoop.finally(() => (statusDone = true))
    while (Date.now() < until || !statusDone) {
      const t = Date.now()
      samples.push({ t, leader: (await readElectionLeader(client, prefix))?.node })
      await sleep(150)
    }
    await statusLoop
    // Then: at every sample exactly one agent acts (by its own leader.acting events), and it is etcd's leader.
    expect(samples.length).toBeGreaterThan(20)
    const now = Date.now()
    for (const sample of samples) {
      expect(sample.leader).toBe(leader.node)
      expect(actingAt(allAgents, sample.t, now)).toEqual([leader.node])
    }
    expect(statuses.length).toBeGreaterThanOrEqual(3)
    for (const s of statuses) {
      expect(s.leader?.node).toBe(leader.node)
      expect(s.nodes.filter((n) => n.leader).map((n) => n.node)).toEqual([leader.node])
      expect(s.nodes.map((n) => n.node)).toEqual([...nodes].sort())
    }
  })

  it('Given instances on two nodes, When status runs, Then it shows the leader (node, term, since) and every node with version, start, TTL, counts by health and the leader flag', async () => {
    // Given: one passing instance attributed to the first node, one whose check fails on the second.
    const closed = await closedPort()
    const [first, second, third] = [...nodes].sort()
    expect((await runCli(['register', 'st-web', '--address', '127.0.0.1', '--port', '1001', '--node', first, ...etcdFlags(prefix)])).code).toBe(0)
    const db = await runCli(['register', 'st-db', '--address', '127.0.0.1', '--port', String(closed), '--check-tcp', '--check-interval', '1s', '--node', second, ...etcdFlags(prefix)])
    expect(db.code).toBe(0)
    const leader = await actingLeader()
    const term = termOf(leader)

    // When: the leader's check has made the second one critical
    const json = await waitFor(async () => {
      const s = await status()
      return s.nodes.find((n) => n.node === second)?.instances.critical === 1 ? s : undefined
    }, 30_000, 'the leader to mark st-db critical')

    // Then: --json
    expect(json.leader).toEqual({ node: leader.node, term, since: expect.any(String) })
    const since = Date.parse(json.leader!.since!)
    const leaderProcess = current.get(leader.node)!
    expect(since).toBeGreaterThanOrEqual(leaderProcess.spawnedAt)
    expect(since).toBeLessThanOrEqual(Date.now())
    expect(json.nodes.map((n) => n.node)).toEqual([first, second, third])
    for (const n of json.nodes) {
      const agent = current.get(n.node)!
      expect(n).toMatchObject({ leader: n.node === leader.node, version: expect.stringMatching(/^\d+\.\d+\.\d+/), ttl: TTL_MS / 1000, pid: agent.pid })
      expect(Date.parse(n.startedAt)).toBeGreaterThanOrEqual(agent.spawnedAt - 1_000)
    }
    expect(json.nodes[0].instances).toEqual({ passing: 1, warning: 0, critical: 0, unknown: 0, maintenance: 0, total: 1 })
    expect(json.nodes[1].instances).toEqual({ passing: 0, warning: 0, critical: 1, unknown: 0, maintenance: 0, total: 1 })
    expect(json.nodes[2].instances).toEqual({ passing: 0, warning: 0, critical: 0, unknown: 0, maintenance: 0, total: 0 })
    expect(json).toMatchObject({ services: 2, instances: { total: 2, passing: 1, critical: 1, healthy: 1 }, orphans: 0 })

    // Then: the human view says the same
    const human = await runCli(['status', ...etcdFlags(prefix)])
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(`Leader: ${leader.node} (term ${term}, since ${json.leader!.since}`)
    expect(human.stdout).toMatch(/Instances: 2 in 2 services: 1 passing, 0 warning, 1 critical, 0 unknown \(1 healthy\)/)
    const rows = human.stdout.split('\n')
    expect(rows.some((r) => /^NODE\s+VERSION\s+HOST:PID\s+UP\s+TTL\s+INSTANCES$/.test(r))).toBe(true)
    for (const n of json.nodes) {
      const row = rows.find((r) => r.startsWith(`${n.node}${n.leader ? ' ★' : ' '}`))
      expect(row, `row for ${n.node} in:\n${human.stdout}`).toBeDefined()
      expect(row).toContain(`:${n.pid}`)
      expect(row).toMatch(new RegExp(`\\s${TTL_MS / 1000}s\\s`))
    }
    expect(rows.find((r) => r.startsWith(first))).toContain('1 (1✓ 0✗ 0?)')
    expect(rows.find((r) => r.startsWith(second))).toContain('1 (0✓ 1✗ 0?)')

    // And with no agent at all: leader null, no nodes
    const empty = await runCli(['status', '--json', ...etcdFlags(uniquePrefix('empty'))])
    expect(empty.code).toBe(0)
    expect(JSON.parse(empty.stdout)).toMatchObject({ leader: null, nodes: [], services: 0 })
    const emptyHuman = await runCli(['status', ...etcdFlags(uniquePrefix('empty'))])
    expect(emptyHuman.stdout).toMatch(/Leader: none/)

    await etcdctl(['del', '--prefix', `${prefix}/services/`])
  })

  it('Given a leader, When it gets SIGTERM, Then another agent leads and acts within 1 s (bound 5 s here; time recorded)', async () => {
    // Given
    const old = await actingLeader()
    // When
    const signalAt = old.sigterm()
    const next = await actingLeader(old.node, 5_000, 10)
    const seenAfter = Date.now() - signalAt
    // Then
    const actingTs = Date.parse(String(next.eventsOf('leader.acting').at(-1)!.ts))
    console.log(`[election] SIGTERM → new leader ${next.node} seen by the test after ${seenAfter} ms; its leader.acting at +${actingTs - signalAt} ms`)
    expect(await old.live.exited).toBe(0)
    // The old leader said it stopped acting before anyone else started.
    const stoppedActing = old.eventsOf('leader.acting').at(-1)!
    expect(stoppedActing.acting).toBe(false)
    expect(Date.parse(stoppedActing.ts)).toBeLessThanOrEqual(actingTs)
    // And it rejoins the cluster under the same name, as a follower.
    const again = startAgent(old.node)
    await again.waitStarted()
    await waitFor(() => again.eventsOf('leader.changed').some((e) => e.leader === next.node && e.self === false), 15_000, 'the restarted agent to follow')
  })

  it('Given a leader, When it gets SIGKILL, Then another agent leads within TTL + 1 s (bound 20 s here; time recorded)', async () => {
    // Given
    const old = await actingLeader()
    // When
    const signalAt = old.sigkill()
    const next = await actingLeader(old.node, 20_000, 10)
    const seenAfter = Date.now() - signalAt
    // Then
    const actingTs = Date.parse(String(next.eventsOf('leader.acting').at(-1)!.ts))
    console.log(`[election] SIGKILL (TTL ${TTL_MS} ms) → new leader ${next.node} seen after ${seenAfter} ms; its leader.acting at +${actingTs - signalAt} ms`)
    // A new leader can't start before the dead one's lease could have expired (renewed every TTL/3).
    expect(actingTs - signalAt).toBeGreaterThanOrEqual((TTL_MS * 2) / 3 - 100)
    await old.live.exited
    // The killed node restarts under its name (taking over its own records) and follows.
    const again = startAgent(old.node)
    await again.waitStarted()
    await waitFor(() => again.eventsOf('leader.changed').some((e) => e.leader === next.node && e.self === false), 15_000, 'the restarted agent to follow')
  })

  it('Given a leader, When it is SIGSTOPped past its TTL and then continued, Then another leads, the old one never writes as leader again and rejoins as a follower', async () => {
    // Given
    const old = await actingLeader()
    const oldTerm = termOf(old)
    // When: frozen for longer than the TTL
    const stoppedAt = old.sigstop()
    const next = await actingLeader(old.node, 20_000, 20)
    const nextTerm = termOf(next)
    console.log(`[election] SIGSTOP → new leader ${next.node} (term ${nextTerm}) after ${Date.now() - stoppedAt} ms`)
    await waitFor(() => info.writes.some((w) => w.term === nextTerm), 10_000, 'the new leader to write leader/info')
    // Stay frozen over several of the old leader's heartbeat intervals (TTL/3) after the new term began.
    await sleep(Math.max(0, stoppedAt + 2 * TTL_MS - Date.now()))
    const firstNewTermRev = info.writes.find((w) => w.term === nextTerm)!.modRevision
    const contAt = old.sigcont()

    // Then: the old one says it stopped acting …
    await waitFor(
      () => old.eventsOf('leader.acting').some((e) => Date.parse(e.ts) >= contAt - 5 && e.acting === false),
      15_000,
      'the continued agent to stop acting',
    )
    // … campaigns again behind the new leader …
    await waitFor(async () => (await readCampaigns(client, prefix)).some((c) => c.node === old.node && BigInt(c.term) > BigInt(nextTerm)), 15_000, 'the old leader to campaign again')
    await waitFor(async () => {
      const s = await status()
      return s.leader?.node === next.node && s.nodes.some((n) => n.node === old.node && !n.leader)
    }, 15_000, 'status to show the old leader as a follower')
    // … and, given time for any stale timer to fire, never wrote leader/info after the new term appeared.
    await sleep(TTL_MS)
    expect(termRegressions(info.writes)).toEqual([])
    const staleWrites = info.writes.filter((w) => w.term === oldTerm && BigInt(w.modRevision) > BigInt(firstNewTermRev))
    expect(staleWrites).toEqual([])
    expect(old.running).toBe(true)
    expect(old.eventsOf('leader.acting').filter((e) => Date.parse(e.ts) >= contAt - 5 && e.acting === true)).toEqual([])
    expect(old.eventsOf('leader.changed').at(-1)).toMatchObject({ leader: next.node, self: false })
    expect((await actingLeader()).node).toBe(next.node)
  })

  it('Given a leader, When the etcd member it is connected to is killed, Then the leadership changes at most once', async () => {
    // Given
    const leader = await actingLeader()
    const ports = await etcdPortsOf(leader.pid)
    expect(ports.length).toBeGreaterThan(0)
    const clientPorts = testEnv().etcdEndpoints.map((e) => Number(new URL(e).port))
    // The raft leader if the agent talks to it (the harsher case: etcd elects anew), else any it talks to.
    const raftLeader = await raftLeaderMember()
    const member = ports.includes(clientPorts[raftLeader - 1]) ? raftLeader : clientPorts.indexOf(ports[0]) + 1
    const windowStart = Date.now()
    const sampled: string[] = []
    // When
    await testenv('etcd-kill', String(member))
    try {
      const until = Date.now() + 4 * TTL_MS
      while (Date.now() < until) {
        const now = (await readElectionLeader(client, prefix).catch(() => undefined))?.node
        if (now) sampled.push(now)
        await sleep(100)
      }
    } finally {
      await testenv('etcd-start', String(member))
      await testenv('etcd-wait', '60')
    }
    const after = await actingLeader(undefined, 30_000)
    // Then: etcd's view of the leader changed at most once, and so did who acted.
    const electionChanges = changes([leader.node, ...sampled, after.node])
    const actingStarts = allAgents
      .flatMap((a) => a.actingWindows().filter((w) => w.from >= windowStart).map((w) => ({ node: a.node, from: w.from })))
      .sort((a, b) => a.from - b.from)
      .map((w) => w.node)
    const actingChanges = changes([leader.node, ...actingStarts])
    console.log(`[election] etcd member m${member} killed (leader ${leader.node} was connected to ports ${ports.join(',')}): election leaders ${electionChanges.join(' → ')}; acting ${actingChanges.join(' → ')}`)
    if (actingChanges.length > 1) {
      const told = leader.events().filter((e) => Date.parse(e.ts) >= windowStart && /leader|lease|etcd|election/.test(e.type))
      console.log(`[election] what ${leader.node} said meanwhile:\n${told.map((e) => JSON.stringify(e)).join('\n')}`)
    }
    expect(electionChanges.length).toBeLessThanOrEqual(2)
    expect(actingChanges.length).toBeLessThanOrEqual(2)
  })

  it('Given everything above, When the acting windows and the leader/info history are compared, Then no two agents ever acted at once and terms never went backwards', async () => {
    // Then: from the agents' own NDJSON timestamps
    expect(actingOverlaps(allAgents)).toEqual([])
    // Then: from etcd's history of the fenced leader/info writes (every term that led wrote it)
    await sleep(500)
    expect(info.writes.length).toBeGreaterThan(0)
    expect(termRegressions(info.writes)).toEqual([])
    const terms = new Set(info.writes.map((w) => w.term))
    expect(terms.size).toBeGreaterThanOrEqual(4) // first leader + SIGTERM + SIGKILL + SIGSTOP failovers
  })
})

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  return (await testPorts(1))[0]
}
