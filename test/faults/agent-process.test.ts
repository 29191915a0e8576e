import { afterAll, describe, expect, it } from 'vitest'
import { etcdctl, uniquePrefix, waitFor } from '../support/cli.js'
import { PrefixRecorder, dockerAt, etcdClient, nodeRecord, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, sleep, startFaultAgent } from '../support/faults.js'
import { checkOracle, expectConverged, type OracleInput } from '../support/oracle.js'

/** The agent process itself fails: killed and restarted at once, or frozen for longer than its TTL. */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const agents: AgentProcess[] = []
const prefixes: string[] = []

function oracle(prefix: string, node: string): OracleInput {
  return { etcd, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns }
}

afterAll(async () => {
  for (const a of agents) a.proc.kill('SIGCONT')
  await Promise.all(agents.map((a) => a.stop('SIGKILL')))
  await pool.removeAll()
  await Promise.all(prefixes.map((p) => etcd.delete().prefix(`${p}/`).exec().catch(() => undefined)))
  etcd.close()
})

describe('faults: the agent process', () => {
  it('Given registered containers, When the agent is SIGKILLed and restarted at once, Then the oracle passes within 10 s and etcd sees no DELETE of any container that stayed up (not even when the old lease ends)', async () => {
    const prefix = uniquePrefix('f-kill')
    prefixes.push(prefix)
    const node = `f-kill-${tag}`
    const input = oracle(prefix, node)
    await Promise.all([pool.run('k1'), pool.run('k2'), pool.run('k3', { publish: ['80/tcp', '8080/tcp'] })])
    const args = ['--no-exposed-by-default', '--ttl', '10s', '--resync', '5s']
    const first = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args })
    agents.push(first)
    const before = await expectConverged(input, { withinMs: 15_000 })
    const keys = before.records.map((r) => r.key)
    expect(keys).toHaveLength(4)
    const recorder = await new PrefixRecorder(etcd, `${prefix}/`).start()

    // When: SIGKILL, and a restart at once (well within the 10 s TTL)
    await first.stop('SIGKILL')
    const restartedAt = Date.now()
    const second = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args })
    agents.push(second)

    // Then
    const after = await expectConverged(input, { withinMs: 10_000 })
    console.log(`[agent-kill] restart took ${Date.now() - restartedAt} ms to converge (oracle wait ${after.tookMs} ms)`)
    expect((await nodeRecord(etcd, prefix, node))?.record.pid).toBe(second.pid)
    // The old lease is revoked once every key moved; still no delete, and the oracle still passes
    await waitFor(async () => JSON.parse(await etcdctl(['lease', 'timetolive', BigInt(first.lease).toString(16), '-w', 'json'])).ttl === -1, 15_000, 'the old lease revoked')
    await sleep(1_000)
    expect(recorder.deletesOf(keys)).toEqual([])
    expect(recorder.changes.filter((c) => c.type === 'delete')).toEqual([])
    const final = await checkOracle(input)
    expect(final.ok).toBe(true)
    for (const r of final.records) expect(r.lease).toBe(second.lease)
    await recorder.stop()
    await second.stop()
  })

  it('Given an agent with --ttl 3s, When it is SIGSTOPped for 9 s (3 TTLs) while containers change and then SIGCONTed, Then it reports lease.lost, re-registers on a new lease and the oracle passes within 15 s', async () => {
    const prefix = uniquePrefix('f-stop')
    prefixes.push(prefix)
    const node = `f-stop-${tag}`
    const input = oracle(prefix, node)
    await Promise.all([pool.run('s1'), pool.run('s2')])
    const agent = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
    agents.push(agent)
    await expectConverged(input, { withinMs: 15_000 })
    const oldLease = agent.lease

    // When frozen past its TTL…
    agent.proc.kill('SIGSTOP')
    const stoppedAt = Date.now()
    // …etcd expires the lease and every record of the node goes with it (leader/info is persistent)
    const leased = async (): Promise<number> => (await etcd.getAll().prefix(`${prefix}/services/`).keys()).length + (await etcd.getAll().prefix(`${prefix}/nodes/`).keys()).length
    await waitFor(async () => (await leased()) === 0, 15_000, 'the frozen agent\'s records to expire')
    // …while containers change
    await pool.remove('s2')
    await pool.run('s3')
    await sleep(Math.max(0, stoppedAt + 9_000 - Date.now()))
    const contAt = Date.now()
    agent.proc.kill('SIGCONT')

    // Then it notices the lost lease and registers everything again on a new one
    await agent.waitForEvent((e) => e.type === 'lease.lost', 'lease.lost after SIGCONT', 15_000)
    const report = await expectConverged(input, { withinMs: 15_000 })
    console.log(`[agent-stop] converged ${Date.now() - contAt} ms after SIGCONT`)
    const node2 = await nodeRecord(etcd, prefix, node)
    expect(node2?.lease).not.toBe(oldLease)
    expect(node2?.record.pid).toBe(agent.pid)
    expect(report.records.every((r) => r.lease === node2?.lease)).toBe(true)
    expect(agent.proc.child.exitCode).toBeNull()
    await agent.stop()
  })
})
