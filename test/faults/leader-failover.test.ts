import type { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt } from '../support/agent-harness.js'
import { currentRevision, etcdClient, quietAgentArgs, recordLeaderInfo, termRegressions, TestAgent, waitForActingLeader, type LeaderInfoWrite } from '../support/election.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, sleep } from '../support/faults.js'
import { expectConverged, type OracleInput } from '../support/oracle.js'

/**
 * Leader failover under SIGKILL and under SIGSTOP/SIGCONT, with three agents on the test host
 * (each registers this file's containers under its own node name). Every fenced write of
 * `<prefix>/leader/info` is recorded from etcd's watch history; each carries {node, term}, and
 * once a higher term has been written no lower one may follow.
 */
const TTL_MS = 3_000
const env = testEnv()
const docker2 = dockerAt(env.docker2Host)
const tag = faultTag()
const pool = new FaultContainers(docker2, tag)
const prefix = uniquePrefix('f-leader')
const nodes = ['la', 'lb', 'lc'].map((n) => `f-${n}-${tag}`)
const all: TestAgent[] = []
const current = new Map<string, TestAgent>()
let client: Etcd3
let info: { writes: LeaderInfoWrite[]; close: () => Promise<void> }

function start(node: string): TestAgent {
  const agent = new TestAgent(node, prefix, quietAgentArgs('3s', ['--no-exposed-by-default', '--resync', '5s']))
  all.push(agent)
  current.set(node, agent)
  return agent
}

function oracle(): OracleInput {
  const live = [...current.values()].filter((a) => a.running && !a.pauses.some((p) => p.to === undefined))
  return { etcd: client, prefix, hosts: live.map((a) => ({ node: a.node, docker: docker2 })), labels: pool.labels, scope: pool.owns }
}

function actingLeader(exclude?: string, boundMs = 20_000): Promise<TestAgent> {
  return waitForActingLeader(client, prefix, current, { exclude, boundMs })
}

/** The leader/info history as `node@term` runs, in etcd's order. */
function termRuns(writes: LeaderInfoWrite[]): string[] {
  const runs: string[] = []
  for (const w of [...writes].sort((a, b) => (BigInt(a.modRevision) < BigInt(b.modRevision) ? -1 : 1))) {
    const run = `${w.node}@${w.term}`
    if (runs.at(-1) !== run) runs.push(run)
  }
  return runs
}

beforeAll(async () => {
  client = etcdClient()
  info = await recordLeaderInfo(client, prefix, await currentRevision(client))
  await Promise.all([pool.run('l1'), pool.run('l2')])
  for (const node of nodes) start(node)
  await Promise.all(all.map((a) => a.waitStarted()))
  await actingLeader()
  await expectConverged(oracle(), { withinMs: 15_000 })
})

afterAll(async () => {
  await Promise.all(all.map((a) => a.shutdown()))
  await info?.close()
  await pool.removeAll()
  await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
  client?.close()
})

describe('faults: leader failover', () => {
  it('Given three agents, When the leader is SIGKILLed, Then another leads within 20 s, the killed node rejoins under its name, and the oracle passes for all three within 15 s', async () => {
    const old = await actingLeader()
    const killedAt = old.sigkill()
    const next = await actingLeader(old.node)
    console.log(`[leader] SIGKILL ${old.node} → ${next.node} acting after ${Date.now() - killedAt} ms`)
    await old.live.exited
    const again = start(old.node)
    await again.waitStarted()
    const report = await expectConverged(oracle(), { withinMs: 15_000 })
    expect(report.expected).toHaveLength(6)
    expect(termRegressions(info.writes)).toEqual([])
  })

  it(`Given three agents, When the leader is SIGSTOPped for 3×TTL (${(3 * TTL_MS) / 1000} s) and then SIGCONTed, Then another leads, the old leader stops acting and rejoins as a follower, and the oracle passes for all three within 15 s`, async () => {
    const old = await actingLeader()
    const oldTerm = String(old.eventsOf('leader.acting').at(-1)!.term)
    const stoppedAt = old.sigstop()
    const next = await actingLeader(old.node)
    const nextTerm = String(next.eventsOf('leader.acting').at(-1)!.term)
    await waitFor(() => info.writes.some((w) => w.term === nextTerm), 10_000, 'the new leader to write leader/info')
    await sleep(Math.max(0, stoppedAt + 3 * TTL_MS - Date.now()))
    const contAt = old.sigcont()
    console.log(`[leader] SIGSTOP ${old.node} (term ${oldTerm}) → ${next.node} (term ${nextTerm}); SIGCONT after ${contAt - stoppedAt} ms`)

    // Then the old leader stops acting, follows, and its records come back
    await waitFor(() => old.eventsOf('leader.acting').some((e) => Date.parse(e.ts) >= contAt - 5 && e.acting === false), 15_000, 'the continued agent to stop acting')
    await waitFor(() => old.eventsOf('leader.changed').at(-1)?.leader === next.node, 15_000, 'the continued agent to follow the new leader')
    const report = await expectConverged(oracle(), { withinMs: 15_000 })
    expect(report.expected).toHaveLength(6)
    // A stale heartbeat timer of the woken leader would fire now: give it a TTL
    await sleep(TTL_MS)
    const firstNew = info.writes.find((w) => w.term === nextTerm)!.modRevision
    expect(info.writes.filter((w) => w.term === oldTerm && BigInt(w.modRevision) > BigInt(firstNew))).toEqual([])
    expect((await actingLeader()).node).toBe(next.node)
  })

  it('Given the failovers above, When the fenced leader/info writes are read back from etcd\'s history, Then they form one run per term with terms only rising: no interleaving of two terms', async () => {
    await sleep(500)
    const runs = termRuns(info.writes)
    console.log(`[leader] leader/info writes (${info.writes.length}) by term: ${runs.join(' → ')}`)
    expect(termRegressions(info.writes)).toEqual([])
    const terms = runs.map((r) => BigInt(r.split('@')[1]))
    expect(new Set(terms).size).toBe(terms.length) // a term never comes back after another
    expect(terms.length).toBeGreaterThanOrEqual(3) // first leader, after SIGKILL, after SIGSTOP
  })
})
