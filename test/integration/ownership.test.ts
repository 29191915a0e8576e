import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../../src/core/model.js'
import { etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, instancesUnder, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * Ownership, as users of Registrator and Consul meet it: ids that repeat across hosts, kills
 * that don't stop, health that comes back by any route, manual records beside containers.
 * Two dockerd stand for two hosts, each with its own agent, sharing one prefix.
 */
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const host1 = new Containers(dockerAt(env.dockerHost), `own1-${tag}`)
const host2 = new Containers(dockerAt(env.docker2Host), `own2-${tag}`)
const prefix = uniquePrefix('ownership')
const node1 = `own1-${tag}`
const node2 = `own2-${tag}`
const agents: AgentProcess[] = []
let agent1: AgentProcess
let agent2: AgentProcess

const withId = (records: { record: InstanceRecord }[], id: string): InstanceRecord[] => records.map((r) => r.record).filter((r) => r.id === id)

async function healthyIds(service: string): Promise<{ node: string; id: string }[]> {
  const result = await runCli(['list', service, '--healthy', '--json', ...etcdFlags(prefix)])
  expect(result.code, result.stderr).toBe(0)
  return (JSON.parse(result.stdout) as InstanceRecord[]).map((r) => ({ node: r.node, id: r.id }))
}

beforeAll(async () => {
  await host1.docker.getImage(env.image).inspect()
  await host2.docker.getImage(env.image).inspect()
  agent1 = await startAgent({ prefix, node: node1, dockerHost: env.dockerHost, args: ['--resync', '2s', '--ttl', '3s', '--deregister-critical-after', '2s'] })
  agent2 = await startAgent({ prefix, node: node2, dockerHost: env.docker2Host, args: ['--resync', '2s', '--ttl', '3s'] })
  agents.push(agent1, agent2)
}, 120_000)

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))
  await Promise.all([host1.removeAll(), host2.removeAll()])
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('ownership across hosts', () => {
  it('Given the same SERVICE_ID on two hosts, When both run, Then there are two routable records, and stopping one leaves the other', async () => {
    // Given one explicit id on both hosts (Registrator ids are unique per agent, not per cluster)
    const id = `shared-${tag}`
    const env1 = { SERVICE_ID: id, SERVICE_NAME: 'shared' }
    const [, second] = await Promise.all([host1.run('same', { env: env1 }), host2.run('same', { env: env1 })])
    // Then both are registered, each under its own node, and both are served
    await waitFor(async () => withId(await instancesUnder(etcd, prefix), id).length === 2, 20_000, 'both hosts registered the shared id')
    const both = withId(await instancesUnder(etcd, prefix), id)
    expect(both.map((r) => r.node).sort()).toEqual([node1, node2].sort())
    expect((await healthyIds('shared')).filter((r) => r.id === id)).toHaveLength(2)
    // When the container on host 2 stops
    await second.container.stop({ t: 0 })
    // Then host 2's record goes, host 1's stays, through two resyncs of both agents
    await waitFor(async () => withId(await instancesUnder(etcd, prefix), id).length === 1, 20_000, "host 2's record removed")
    await Promise.all([agent1.waitForResyncs(2), agent2.waitForResyncs(2)])
    const left = withId(await instancesUnder(etcd, prefix), id)
    expect(left.map((r) => r.node)).toEqual([node1])
    expect(await healthyIds('shared')).toEqual([{ node: node1, id }])
  })

  it('Given a manual record with the id a container also carries, When the container and then its agent stop, Then the manual record survives both', async () => {
    // Given `register` of an external instance with id X, and a container with SERVICE_ID X
    const id = `collide-${tag}`
    const registered = await runCli(['register', 'collide', '--address', '10.9.8.7', '--port', '8080', '--id', id, ...etcdFlags(prefix)])
    expect(registered.code, registered.stderr).toBe(0)
    const extra = await startAgent({ prefix, node: `own3-${tag}`, dockerHost: env.dockerHost, args: ['--resync', '1s'] })
    agents.push(extra)
    const box = await host1.run('collide', { env: { SERVICE_ID: id, SERVICE_NAME: 'collide' } })
    // Then both exist: the manual one untouched, the container's under its node
    await waitFor(async () => withId(await instancesUnder(etcd, prefix), id).length >= 2, 20_000, 'container record beside the manual one')
    const manual = () => instancesUnder(etcd, prefix).then((all) => withId(all, id).filter((r) => r.source === 'manual'))
    expect((await manual())[0]).toMatchObject({ address: '10.9.8.7', port: 8080 })
    // When the container stops, and then the agent that registered it
    await box.container.stop({ t: 0 })
    await extra.waitForResyncs(2)
    expect(await extra.stop()).toBe(0)
    await agent1.waitForResyncs(1)
    // Then the manual record is still there, as written
    expect(await manual()).toHaveLength(1)
    expect((await manual())[0]).toMatchObject({ address: '10.9.8.7', port: 8080, source: 'manual' })
  })
})

describe('drain and withdrawal that end', () => {
  it('Given a container whose PID 1 ignores TERM, When `docker kill -s TERM` does not stop it, Then its instance is withdrawn and back within the stop timeout', async () => {
    const box = await host1.run('stubborn', { cmd: ['sh', '-c', 'trap "" TERM; httpd -f -p 80 -h /www'], stopTimeout: 3 })
    const byName = async (): Promise<InstanceRecord | undefined> => (await instancesUnder(etcd, prefix, node1)).map((r) => r.record).find((r) => r.container?.name === box.name)
    await waitFor(byName, 20_000, 'the stubborn container registered')
    // When TERM is sent and ignored
    await box.container.kill({ signal: 'TERM' })
    // Then the instance is withdrawn at once…
    await waitFor(async () => !(await byName()), 10_000, 'instance withdrawn by the drain')
    // …and comes back after the grace period (3 s stop timeout), the container still running
    const back = performance.now()
    await waitFor(byName, 20_000, 'instance back after the grace period')
    console.log(`[ownership] drained instance back ${Math.round(performance.now() - back)} ms after the withdrawal was seen (stop timeout 3 s)`)
    expect((await box.container.inspect()).State.Running).toBe(true)
  })

  it('Given --deregister-critical-after 2s and a Docker HEALTHCHECK, When it turns unhealthy, Then the instance is removed, and back once healthy again', async () => {
    const box = await host1.run('hc', { healthcheck: { command: 'test -f /www/health', intervalMs: 500 } })
    const byName = async (): Promise<InstanceRecord | undefined> => (await instancesUnder(etcd, prefix, node1)).map((r) => r.record).find((r) => r.container?.name === box.name)
    await waitFor(async () => (await byName())?.health.status === 'passing', 30_000, 'HEALTHCHECK passing')
    const exec = async (command: string): Promise<void> => {
      const e = await box.container.exec({ Cmd: ['sh', '-c', command], AttachStdout: false, AttachStderr: false })
      await e.start({ Detach: true })
    }
    // When it turns unhealthy: critical, then removed after 2 s
    await exec('mv /www/health /www/health.off')
    await waitFor(async () => (await byName())?.health.status === 'critical', 20_000, 'critical from HEALTHCHECK')
    await waitFor(async () => !(await byName()), 20_000, 'removed after --deregister-critical-after')
    // When it is healthy again (no discovery check ran: Docker's status brings it back)
    await exec('mv /www/health.off /www/health')
    await waitFor(async () => (await byName())?.health.status === 'passing', 30_000, 'back when HEALTHCHECK is healthy')
  })

  it('Given a withdrawn critical container, When it is removed, Then nothing of it remains and a new container on its address is registered from its own data', async () => {
    const box = await host1.run('gone', { healthcheck: { command: 'test -f /www/health', intervalMs: 500 }, env: { SERVICE_NAME: `gone-${tag}` } })
    const ofService = async (): Promise<InstanceRecord[]> => (await instancesUnder(etcd, prefix, node1)).map((r) => r.record).filter((r) => r.service === `gone-${tag}`)
    await waitFor(async () => (await ofService()).length === 1, 20_000, 'registered')
    const e = await box.container.exec({ Cmd: ['sh', '-c', 'mv /www/health /www/health.off'], AttachStdout: false, AttachStderr: false })
    await e.start({ Detach: true })
    await waitFor(async () => (await ofService()).length === 0, 30_000, 'withdrawn while critical')
    await box.container.remove({ force: true })
    // A new container with the same service name and no HEALTHCHECK: its own record, passing at once
    const next = await host1.run('gone2', { env: { SERVICE_NAME: `gone-${tag}` } })
    await waitFor(async () => (await ofService()).some((r) => r.container?.id === next.id && r.health.status === 'passing'), 20_000, 'new container registered from its own data')
    expect((await ofService()).every((r) => r.container?.id === next.id)).toBe(true)
  })
})
