import type { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli, uniquePrefix, waitFor, type LiveProcess } from '../support/cli.js'
import { dockerAt, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, PrivateEtcd, connectedPorts, ctl, faultTag, sleep, startFaultAgent } from '../support/faults.js'
import { checkOracle, expectConverged, type OracleInput } from '../support/oracle.js'

/**
 * etcd faults, on a private 3-member cluster of this file's own (the shared cluster's other
 * users are not disturbed by quorum loss or compaction): members killed one at a time (the one
 * the agent talks to among them), the raft leader killed, quorum lost for longer than 2×TTL,
 * and the revision history compacted under a disconnected `list --watch`.
 */
const TTL_MS = 3_000
const env = testEnv()
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const prefix = uniquePrefix('f-etcd')
const node = `f-etcd-${tag}`
let cluster: PrivateEtcd
let client: Etcd3
let agent: AgentProcess
let input: OracleInput
const processes: LiveProcess[] = []

beforeAll(async () => {
  cluster = await PrivateEtcd.start()
  client = cluster.client()
  input = { etcd: client, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns }
  await Promise.all([pool.run('e1'), pool.run('e2')])
  agent = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, etcdEndpoints: cluster.endpoints, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
  await expectConverged(input, { withinMs: 15_000 })
})

afterAll(async () => {
  for (const p of processes) p.kill('SIGCONT')
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  await agent?.stop('SIGKILL')
  await pool.removeAll()
  client?.close()
  await cluster?.stop()
})

/** What the agent said about etcd, its lease and errors since `since` (for failure reports). */
function etcdStory(a: AgentProcess, since: number): string {
  return a
    .events()
    .filter((e) => Date.parse(e.ts) >= since - 1_000 && /^(etcd|lease|error|election|leader)/.test(e.type))
    .map((e) => JSON.stringify(e))
    .join('\n')
}

/** Waits until the agent's last word on etcd is that it is connected (what its TUI header and /healthz show). */
async function expectReportsConnected(a: AgentProcess, since: number): Promise<void> {
  const last = (): string | undefined => a.events().filter((e) => e.type === 'etcd.connected' || e.type === 'etcd.disconnected').at(-1)?.type
  await waitFor(() => last() === 'etcd.connected', 10_000, `the agent to report etcd connected again (last: ${last()}); its story:\n${etcdStory(a, since)}`)
}

describe('faults: etcd members fail (private 3-member cluster)', () => {
  it('Given an agent on the cluster, When each member in turn is SIGKILLed as a follower (those it is connected to included) and containers change meanwhile, Then the oracle passes within 10 s while the member is down, the agent keeps its lease and reports etcd connected at the end', async () => {
    const lease = agent.lease
    const startedAt = Date.now()
    for (const n of [1, 2, 3]) {
      // A follower's loss: the raft leader's is the next test (etcd elects anew, which may outlast a 3 s TTL)
      await cluster.moveLeaderAwayFrom(n)
      const ports = await connectedPorts(agent.pid, cluster.clientPorts)
      // When
      const killedAt = Date.now()
      await cluster.kill(n)
      try {
        await pool.run(`m${n}`)
        await pool.remove(n === 1 ? 'e1' : `m${n - 1}`)
        // Then the agent writes through the other members
        const report = await expectConverged(input, { withinMs: 10_000 })
        console.log(`[etcd] ${new Date(killedAt).toISOString()} member ${n} killed (agent connected to ports ${ports.join(',') || 'none'}${ports.includes(cluster.clientPorts[n - 1]) ? ', including this one' : ''}): converged in ${report.tookMs} ms`)
      } finally {
        const restartAt = Date.now()
        cluster.startMember(n)
        await cluster.waitHealthy()
        console.log(`[etcd] member ${n} healthy again ${Date.now() - restartAt} ms after its restart`)
      }
    }
    await expectReportsConnected(agent, startedAt)
    if (agent.eventsOf('lease.lost').length > 0) console.log(`[etcd] the agent's story:\n${etcdStory(agent, startedAt)}`)
    expect(agent.eventsOf('lease.lost')).toEqual([])
    expect((await checkOracle(input)).records.every((r) => r.lease === lease)).toBe(true)
  })

  it('Given an agent on the cluster, When the raft leader is SIGKILLed and a container starts meanwhile, Then the oracle passes within 10 s while it is down and within 10 s after it rejoins, and the agent reports etcd connected again', async () => {
    const leader = await cluster.leader()
    const lostBefore = agent.eventsOf('lease.lost').length
    const killedAt = Date.now()
    await cluster.kill(leader)
    try {
      await pool.run('after-leader')
      const report = await expectConverged(input, { withinMs: 10_000 })
      console.log(`[etcd] raft leader (member ${leader}) killed: converged ${Date.now() - killedAt} ms after the kill (oracle wait ${report.tookMs} ms); lease lost ${agent.eventsOf('lease.lost').length - lostBefore} time(s)`)
    } finally {
      cluster.startMember(leader)
      await cluster.waitHealthy()
    }
    await expectConverged(input, { withinMs: 10_000 })
    await expectReportsConnected(agent, killedAt)
  })

  it('Given an agent on the cluster, When a follower member is frozen (SIGSTOP) for 5 s while containers change and then resumed, Then the oracle passes within 15 s of the freeze and the agent reports etcd connected at the end', async () => {
    await cluster.moveLeaderAwayFrom(2)
    const frozenAt = Date.now()
    cluster.pause(2)
    try {
      await Promise.all([pool.run('frozen-1'), pool.run('frozen-2')])
      const report = await expectConverged(input, { withinMs: 15_000 })
      console.log(`[etcd] member 2 frozen: converged ${Date.now() - frozenAt} ms after the freeze (oracle wait ${report.tookMs} ms)`)
      await sleep(Math.max(0, frozenAt + 5_000 - Date.now()))
    } finally {
      cluster.resume(2)
    }
    await cluster.waitHealthy()
    await expectConverged(input, { withinMs: 10_000 })
    await expectReportsConnected(agent, frozenAt)
  })

  it(`Given an agent on the cluster, When quorum is lost for 8 s (> 2×TTL of ${TTL_MS / 1000} s) while containers change and then restored, Then the agent stays up, reports etcd trouble and then connected, and the oracle passes within 20 s of quorum returning`, async () => {
    const leader = await cluster.leader()
    const other = [1, 2, 3].find((n) => n !== leader)!
    const troubleBefore = agent.eventsOf('etcd.disconnected').length + agent.eventsOf('lease.lost').length
    // When: two of three members gone
    await cluster.kill(leader)
    await cluster.kill(other)
    const lostAt = Date.now()
    let restoredAt = 0
    try {
      await pool.run('during-quorum-loss')
      await pool.remove('e2')
      await sleep(Math.max(0, lostAt + 8_000 - Date.now()))
    } finally {
      cluster.startMember(leader)
      cluster.startMember(other)
      await cluster.waitHealthy()
      restoredAt = Date.now()
    }
    // Then
    const report = await expectConverged(input, { withinMs: 20_000 }).catch((error: Error) => {
      const told = agent.events().filter((e) => Date.parse(e.ts) >= lostAt - 1_000 && e.type !== 'docker.event' && e.type !== 'check.result' && e.type !== 'leader.write')
      throw new Error(`${error.message}\nwhat the agent said since quorum was lost:\n${told.map((e) => JSON.stringify(e).slice(0, 300)).join('\n')}`)
    })
    console.log(`[etcd] quorum lost ${restoredAt - lostAt} ms; converged ${Date.now() - restoredAt} ms after it returned (oracle wait ${report.tookMs} ms); lease lost ${agent.eventsOf('lease.lost').length}×, renewed ${agent.eventsOf('lease.renewed').length}×`)
    expect(agent.proc.child.exitCode).toBeNull()
    expect(agent.eventsOf('etcd.disconnected').length + agent.eventsOf('lease.lost').length).toBeGreaterThan(troubleBefore)
    await expectReportsConnected(agent, lostAt)
    // And it holds over a later resync
    await agent.waitForResyncs(1, 20_000)
    expect((await checkOracle(input)).ok).toBe(true)
  })

  it('Given a `list --watch --json` on one member, When it is SIGSTOPped, its member killed, containers change, the history is compacted past what it saw, and member and process resume, Then its view converges to exactly what etcd holds within 20 s', async () => {
    // Given a consumer that follows the registry through member 1 only
    const watcher = startCli(['list', '--watch', '--json', '--etcd-endpoints', cluster.endpoint(1), '--prefix', prefix])
    processes.push(watcher)
    await waitFor(() => watcher.lines().some((l) => l.includes('"type":"ready"')), 15_000, `list --watch ready: ${watcher.stderr}`)
    const view = (): Map<string, string> => {
      const seen = new Map<string, string>()
      for (const line of watcher.lines()) {
        let change: { type: string; instance?: { service: string; id: string; address: string; port: number; health: { status: string } } }
        try {
          change = JSON.parse(line)
        } catch {
          continue
        }
        const i = change.instance
        if (!i) continue
        const key = `${i.service}/${i.id}`
        if (change.type === 'removed') seen.delete(key)
        else seen.set(key, `${i.address}:${i.port} ${i.health.status}`)
      }
      return seen
    }
    const truth = async (): Promise<Map<string, string>> => {
      const response = await client.getAll().prefix(`${prefix}/services/`).exec()
      return new Map(
        response.kvs.map((kv) => {
          const r = JSON.parse(kv.value.toString()) as { service: string; id: string; address: string; port: number; health: { status: string } }
          return [`${r.service}/${r.id}`, `${r.address}:${r.port} ${r.health.status}`]
        }),
      )
    }
    const same = (a: Map<string, string>, b: Map<string, string>): boolean => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v)
    await waitFor(async () => same(view(), await truth()), 10_000, 'list --watch to show the registry')

    // When: frozen, its member killed, the registry changes (removals and additions) …
    watcher.kill('SIGSTOP')
    await cluster.kill(1)
    const compactedAt = await (async () => {
      try {
        await Promise.all([pool.remove('during-quorum-loss'), pool.run('while-frozen-1'), pool.run('while-frozen-2')])
        await expectConverged(input, { withinMs: 10_000 })
        // … and the history it would resume from is compacted away
        const revision = await ctl([cluster.endpoint(2), cluster.endpoint(3)], ['get', '/', '-w', 'json']).then((o) => String(JSON.parse(o).header.revision))
        await ctl([cluster.endpoint(2), cluster.endpoint(3)], ['compact', revision, '--physical'])
        return revision
      } finally {
        cluster.startMember(1)
        await cluster.waitHealthy()
        watcher.kill('SIGCONT')
      }
    })()

    // Then its view converges to etcd's state
    await waitFor(async () => same(view(), await truth()), 20_000, `list --watch to converge after compaction at ${compactedAt}; view ${JSON.stringify([...view()])}; stderr ${watcher.stderr.slice(-500)}`)
    const kinds = watcher.lines().map((l) => (JSON.parse(l) as { type: string }).type)
    console.log(`[etcd] list --watch after compaction at revision ${compactedAt}: ${kinds.filter((k) => k === 'disconnected').length} disconnected, ${kinds.filter((k) => k === 'resynced').length} resynced; view = etcd (${view().size} instances)`)
    expect(watcher.child.exitCode).toBeNull()
    expect((await checkOracle(input)).ok).toBe(true)
  })
})
