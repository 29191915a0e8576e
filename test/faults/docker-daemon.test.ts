import { afterAll, describe, expect, it } from 'vitest'
import { uniquePrefix } from '../support/cli.js'
import { dockerAt, etcdClient, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, startFaultAgent, testenv } from '../support/faults.js'
import { checkOracle, expectConverged, type OracleInput } from '../support/oracle.js'

/**
 * The Docker daemon restarts under running agents (the second dockerd, the "test host"; never
 * the host's, which other tests use). Two agents watch it: one registers published host ports,
 * one container IPs, so a container that comes back with a new port or IP must be re-registered.
 */
const env = testEnv()
const etcd = etcdClient()
const docker2 = dockerAt(env.docker2Host)
const tag = faultTag()
const pool = new FaultContainers(docker2, tag)
const prefix = uniquePrefix('f-dockerd')
const agents: AgentProcess[] = []

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')))
  // Whatever happened, the daemon must be up for the next file and for other developers.
  await testenv('docker2-start').catch(() => undefined)
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('faults: dockerd restarts', () => {
  it('Given restart=always and plain containers on the test host, When its dockerd is stopped and started under running agents, Then both agents (published and container addresses) converge to the oracle within 30 s of the daemon\'s return, with the new ports and IPs, and neither loses its lease', async () => {
    const published = `f-d2pub-${tag}`
    const container = `f-d2ctr-${tag}`
    const input: OracleInput = {
      etcd,
      prefix,
      hosts: [
        { node: published, docker: docker2 },
        { node: container, docker: docker2, addressMode: 'container' },
      ],
      labels: pool.labels,
      scope: pool.owns,
    }
    // Given
    await Promise.all([
      pool.run('always1', { restart: 'always', stopTimeout: 1 }),
      pool.run('always2', { restart: 'always', stopTimeout: 1, publish: ['80/tcp', '8080/tcp'] }),
      pool.run('always3', { restart: 'always', stopTimeout: 1 }),
      pool.run('plain', { stopTimeout: 1 }),
    ])
    const common = ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s']
    agents.push(
      ...(await Promise.all([
        startFaultAgent({ prefix, node: published, dockerHost: env.docker2Host, args: common }),
        startFaultAgent({ prefix, node: container, dockerHost: env.docker2Host, args: [...common, '--address-mode', 'container'] }),
      ])),
    )
    const before = await expectConverged(input, { withinMs: 15_000 })
    expect(before.expected).toHaveLength(10)
    const where = (r: { records: { key: string; value?: { address?: string; port?: number } }[] }): Map<string, string> =>
      new Map(r.records.map((x) => [x.key, `${x.value?.address}:${x.value?.port}`]))
    const addressesBefore = where(before)

    // When the daemon stops (its containers stop with it) and starts again
    let back = 0
    try {
      await testenv('docker2-stop')
      await Promise.all(agents.map((a) => a.waitForEvent((e) => e.type === 'docker.disconnected', `${a.node} to notice the daemon is gone`, 15_000)))
    } finally {
      await testenv('docker2-start')
      back = Date.now()
    }

    // Then both agents reconnect and converge: restart=always containers registered where they are now, the plain one gone
    await Promise.all(agents.map((a) => a.waitForEvent((e) => e.type === 'docker.connected' && e.reconnect === true, `${a.node} to reconnect`, 30_000)))
    const after = await expectConverged(input, { withinMs: 30_000 })
    const addressesAfter = where(after)
    const moved = [...addressesAfter].filter(([key, at]) => addressesBefore.has(key) && addressesBefore.get(key) !== at)
    console.log(`[dockerd] converged ${Date.now() - back} ms after the daemon was back; ${moved.length} of ${addressesAfter.size} instances came back at a new address: ${moved.map(([k, at]) => `${k.split('/').at(-1)} ${addressesBefore.get(k)} → ${at}`).join(', ')}`)
    expect(after.expected).toHaveLength(8)
    expect(after.records.some((r) => r.value?.container?.name === pool.name('plain'))).toBe(false)
    // And it holds over a later resync, with both agents alive on their first lease
    await Promise.all(agents.map((a) => a.waitForResyncs(1, 20_000)))
    expect((await checkOracle(input)).ok).toBe(true)
    for (const a of agents) {
      expect(a.proc.child.exitCode).toBeNull()
      expect(a.eventsOf('lease.lost')).toEqual([])
    }
  })
})
