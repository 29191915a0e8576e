import { afterAll, describe, expect, it } from 'vitest'
import { etcdctl, uniquePrefix, waitFor } from '../support/cli.js'
import { PrefixRecorder, dockerAt, etcdClient, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { DockerSocketProxy, FaultContainers, faultTag, startFaultAgent } from '../support/faults.js'
import { checkOracle, expectConverged, formatReport, type OracleInput } from '../support/oracle.js'

/**
 * Cold start with drift, and the proof that the oracle can fail: an agent whose only repair
 * (the resync) is an hour away and whose Docker events are silently lost must leave the
 * registry wrong, and the oracle must say so; the same fault with a 5 s resync is repaired.
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const agents: AgentProcess[] = []
const prefixes: string[] = []
const proxies: DockerSocketProxy[] = []
const leases: string[] = []

function oracle(prefix: string, node: string): OracleInput {
  return { etcd, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns }
}

function freshPrefix(label: string): string {
  const prefix = uniquePrefix(label)
  prefixes.push(prefix)
  return prefix
}

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')))
  await Promise.all(proxies.map((p) => p.close()))
  await pool.removeAll()
  for (const lease of leases) await etcd.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined)
  await Promise.all(prefixes.map((p) => etcd.delete().prefix(`${p}/`).exec().catch(() => undefined)))
  etcd.close()
})

describe('faults: cold start with drift', () => {
  it('Given containers started, stopped, paused and removed while the agent was down and stale keys of this node on an old lease, When the agent starts, Then the oracle passes within 15 s, nothing that stayed up is deleted and the old leases are gone', async () => {
    const prefix = freshPrefix('f-drift')
    const node = `f-drift-${tag}`
    const input = oracle(prefix, node)
    // Given a first run (long TTL so its keys outlive it) that registered four containers
    await Promise.all([pool.run('stay'), pool.run('gone'), pool.run('stopped'), pool.run('multi', { publish: ['80/tcp', '8080/tcp'] }), pool.run('paused')])
    const first = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args: ['--no-exposed-by-default', '--ttl', '30s'] })
    agents.push(first)
    await expectConverged(input, { withinMs: 15_000 })
    const stayKeys = (await checkOracle(input)).records.filter((r) => /f-(stay|multi)-/.test(r.value?.container?.name ?? '')).map((r) => r.key)
    expect(stayKeys).toHaveLength(3)

    // …that crashed
    await first.stop('SIGKILL')
    // While it was down: one removed, one stopped, one paused, two new; and a stale key of this
    // node for a container that never existed here, on a lease of its own
    await pool.remove('gone')
    await docker.getContainer(pool.name('stopped')).stop({ t: 0 })
    await docker.getContainer(pool.name('paused')).pause()
    await Promise.all([pool.run('new1'), pool.run('new2', { publish: ['80/tcp', '8080/tcp'] })])
    const stale = etcd.lease(120, { autoKeepAlive: false })
    const staleLease = await stale.grant()
    leases.push(staleLease)
    const now = new Date().toISOString()
    const ghostId = `${node}:${pool.name('ghost')}:80`
    const ghostKey = `${prefix}/services/busybox/${ghostId}`
    await etcd
      .put(ghostKey)
      .value(JSON.stringify({
        schema: 1, id: ghostId, service: 'busybox', address: '127.0.0.1', port: 1, tags: [], meta: {}, node, source: 'docker',
        container: { id: 'e'.repeat(64), name: pool.name('ghost'), image: env.image, port: 80, protocol: 'tcp' },
        health: { status: 'passing', output: 'no check', updatedAt: now, since: now }, registeredAt: now, updatedAt: now,
      }))
      .lease(staleLease)
      .exec()
    expect((await checkOracle(input)).ok).toBe(false)
    const recorder = await new PrefixRecorder(etcd, `${prefix}/`).start()

    // When the agent starts again
    const second = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
    agents.push(second)

    // Then the registry equals Docker's truth (the paused one critical or absent)
    const report = await expectConverged(input, { withinMs: 15_000 })
    console.log(`[drift] cold start converged ${report.tookMs} ms after the first resync: ${report.expected.length} instances`)
    // And the containers that stayed up were moved to the new lease by puts, never deleted
    expect(recorder.deletesOf(stayKeys)).toEqual([])
    // And the ghost is gone, and the first run's lease was revoked
    expect((await etcd.get(ghostKey).exec()).kvs).toHaveLength(0)
    await waitFor(async () => JSON.parse(await etcdctl(['lease', 'timetolive', BigInt(first.lease).toString(16), '-w', 'json'])).ttl === -1, 15_000, 'the old lease revoked')
    // And it stays converged over a later resync
    await second.waitForResyncs(1, 20_000)
    expect(formatReport(await checkOracle(input))).toMatch(/PASS/)
    await recorder.stop()
  })
})

describe('faults: the oracle can fail', () => {
  it('Given a deliberately broken agent (--resync 1h, its Docker event stream silently swallowed), When containers start and stop, Then the oracle FAILS and names the missing and the phantom record', async () => {
    const prefix = freshPrefix('f-broken')
    const node = `f-broken-${tag}`
    const input = oracle(prefix, node)
    const proxy = await new DockerSocketProxy(env.dockerHost.slice('unix://'.length)).start()
    proxies.push(proxy)
    await pool.run('old')
    const agent = await startFaultAgent({ prefix, node, dockerHost: proxy.host, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '1h'] })
    agents.push(agent)
    await expectConverged(input, { withinMs: 15_000 })
    // The proxy carries the event stream: with events flowing, a new container is registered
    await pool.run('seen')
    await expectConverged(input, { withinMs: 15_000 })
    expect(proxy.eventStreams).toBeGreaterThan(0)

    // When events are lost without any sign of trouble, and containers change
    proxy.swallowEvents()
    await pool.remove('old')
    await pool.run('unseen')

    // Then the oracle does not pass: it reports the missing and the phantom record
    const failure = await expectConverged(input, { withinMs: 8_000 }).then(
      () => undefined,
      (error: Error) => error.message,
    )
    expect(failure, 'the oracle passed although the agent missed the changes').toBeDefined()
    console.log(`[oracle-can-fail] ${failure}`)
    const report = await checkOracle(input)
    expect(report.ok).toBe(false)
    expect(report.missing.join('\n')).toContain(pool.name('unseen'))
    expect(report.phantom.join('\n')).toContain(pool.name('old'))
    expect(report.missing).toHaveLength(1)
    expect(report.phantom).toHaveLength(1)
    await agent.stop('SIGKILL')
  })

  it('Given the same silently swallowed event stream but --resync 5s, When containers start and stop, Then the oracle passes within one resync (bound 15 s)', async () => {
    const prefix = freshPrefix('f-resync')
    const node = `f-resync-${tag}`
    const input = oracle(prefix, node)
    const proxy = await new DockerSocketProxy(env.dockerHost.slice('unix://'.length)).start()
    proxies.push(proxy)
    await pool.run('r-old')
    const agent = await startFaultAgent({ prefix, node, dockerHost: proxy.host, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
    agents.push(agent)
    await expectConverged(input, { withinMs: 15_000 })

    // When events are lost and containers change
    proxy.swallowEvents()
    await pool.remove('r-old')
    await pool.run('r-new')

    // Then the periodic resync repairs the registry
    const report = await expectConverged(input, { withinMs: 15_000 })
    console.log(`[drift] events swallowed: repaired by the resync after ${report.tookMs} ms`)
    expect(agent.eventsOf('docker.event').filter((e) => String(e.container).includes('r-new'))).toEqual([])
    await agent.stop('SIGKILL')
  })
})
