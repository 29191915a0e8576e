import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import type { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt, etcdClient, instancesUnder, nodeRecord, startAgent, type AgentProcess, type StoredInstance } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { SwarmSource, swarmRole, type SwarmSnapshot } from '../../src/core/docker/swarm-source.js'

/**
 * Docker Swarm for real: the second test dockerd (never the host's, other tests use it) is made
 * a one-node Swarm manager with `swarm init --advertise-addr 127.0.0.1` for this file and leaves
 * the swarm afterwards (only if this file made it one). One file, so no other file's
 * `swarm leave` can pull the swarm from under it.
 *
 * The source: for a service with a HEALTHCHECK and a host-mode published port, its running
 * tasks become instances at the node address and their published ports (which answer HTTP), a
 * scale-up adds one, a start-first rolling update swaps every task without a snapshot that has
 * none, and removal empties it.
 *
 * `watch --swarm`: the only agent leads, so it registers the service's tasks under node `swarm`
 * on its campaign lease, fenced by its term, and its container side leaves the task containers
 * alone; a second agent takes over when the leader is killed.
 *
 * Not tried here because this machine kind cannot: the routing mesh (ingress-published ports,
 * VIP load balancing) needs IPVS, which this kernel lacks ("Could not get ipvs family
 * information from the kernel" in the daemon log; connections to an ingress port are refused).
 */
const run = promisify(execFile)
const env = testEnv()
const docker2 = dockerAt(env.docker2Host)
const suffix = randomBytes(3).toString('hex')
const service = `swtest-${suffix}`
let initialised = false
let source: SwarmSource
const snapshots: SwarmSnapshot[] = []

const d2 = (...args: string[]) => run('docker', ['-H', env.docker2Host, ...args], { timeout: 120_000 })
const instancesOf = (s: SwarmSnapshot | undefined) => (s?.instances ?? []).filter((i) => i.meta['swarm.service'] === service)
const latest = () => instancesOf(snapshots.at(-1))

beforeAll(async () => {
  if ((await swarmRole(docker2)) === 'inactive') {
    await d2('swarm', 'init', '--advertise-addr', '127.0.0.1')
    initialised = true
  }
  expect(await swarmRole(docker2)).toBe('manager')
  source = new SwarmSource(docker2, { exposedByDefault: true, pollMs: 1_000 })
  source.on('snapshot', (s) => snapshots.push(s))
  await source.start()
})

afterAll(async () => {
  source?.stop()
  await d2('service', 'rm', service).catch(() => undefined)
  if (initialised) {
    await waitFor(async () => (await d2('ps', '-q', '--filter', `label=com.docker.swarm.service.name=${service}`)).stdout.trim() === '', 30_000, 'task containers gone').catch(() => undefined)
    await d2('swarm', 'leave', '--force').catch(() => undefined)
    await d2('network', 'rm', 'docker_gwbridge').catch(() => undefined)
  }
})

const agentService = `swagent-${suffix}`
const name = `swagent-${suffix}`
const prefix = uniquePrefix('swarm')
const node = `swhost-${suffix}`
let agent: AgentProcess
let second: AgentProcess
let etcd: Etcd3

const swarmRecords = async (): Promise<StoredInstance[]> => (await instancesUnder(etcd, prefix, 'swarm')).filter((i) => i.record.service === name)

/** A service of the test image on the second dockerd's Swarm: a host-mode port 80, a 1 s HEALTHCHECK, start-first rolling updates. */
function createService(serviceName: string, replicas: number, labels: string[]): ReturnType<typeof d2> {
  return d2(
    'service', 'create', '-d', '--name', serviceName, '--replicas', String(replicas),
    '--publish', 'mode=host,target=80',
    '--health-cmd', 'test -f /www/health', '--health-interval', '1s',
    '--update-order', 'start-first', '--update-parallelism', '1', '--update-delay', '1s',
    ...labels.flatMap((label) => ['--label', label]),
    env.image,
  )
}

describe('SwarmSource on a real Swarm manager', () => {
  it('Given a service with 2 replicas, a HEALTHCHECK and a host-mode port, When its tasks run, Then there is one instance per task at the node address and its published port, and each answers HTTP', async () => {
    // Given
    await createService(service, 2, ['discovery.service=swtest', 'discovery.tags=swarm'])
    // Then
    await waitFor(() => latest().length === 2, 60_000, `2 instances of ${service}; last snapshot: ${JSON.stringify(snapshots.at(-1)?.skipped)}`)
    for (const instance of latest()) {
      expect(instance).toMatchObject({ service: 'swtest', address: '127.0.0.1', tags: ['swarm'] })
      expect(instance.id).toMatch(/^swarm:[a-z0-9]{25}:80$/)
      const body = await (await fetch(`http://${instance.address}:${instance.port}/health`)).text()
      expect(body.trim()).toBe('ok')
    }
  })

  it('Given the service, When it is scaled to 3, Then a third instance appears', async () => {
    await d2('service', 'scale', '-d', `${service}=3`)
    await waitFor(() => latest().length === 3, 60_000, '3 instances')
  })

  it('Given 3 healthy tasks, When a start-first rolling update replaces them all, Then every snapshot during it has at least one instance and afterwards all ids are new', async () => {
    // Given
    const before = new Set(latest().map((i) => i.id))
    const from = snapshots.length
    // When
    await d2('service', 'update', '-d', '--force', service)
    await waitFor(() => {
      const ids = latest().map((i) => i.id)
      return ids.length === 3 && ids.every((id) => !before.has(id))
    }, 90_000, 'every task replaced')
    // Then
    const during = snapshots.slice(from).map((s) => instancesOf(s).length)
    console.log(`[swarm] instance counts through the rolling update: ${during.join(' ')}`)
    expect(Math.min(...during)).toBeGreaterThanOrEqual(1)
    expect(during.length).toBeGreaterThanOrEqual(3)
  })

  it('Given the service, When it is removed, Then its instances are gone', async () => {
    await d2('service', 'rm', service)
    await waitFor(() => latest().length === 0, 30_000, 'no instance')
  })
})

describe('watch --swarm on a Swarm manager', () => {
  beforeAll(async () => {
    etcd = etcdClient()
    agent = await startAgent({ prefix, node, dockerHost: env.docker2Host, args: ['--swarm', '--ttl', '4s'] })
  })

  afterAll(async () => {
    await agent?.stop('SIGKILL')
    await second?.stop('SIGKILL')
    await d2('service', 'rm', agentService).catch(() => undefined)
    await waitFor(async () => (await d2('ps', '-q', '--filter', `label=com.docker.swarm.service.name=${agentService}`)).stdout.trim() === '', 30_000, 'task containers gone').catch(() => undefined)
    await etcd?.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
    etcd?.close()
  })

  it('Given a service with 3 replicas and a host-mode port, When its tasks are healthy, Then the leader registers 3 passing instances under node swarm on its campaign lease, and none of the task containers under its own node', async () => {
    // Given
    await createService(agentService, 3, [`discovery.service=${name}`])
    // Then
    const records = await waitFor(async () => {
      const now = await swarmRecords()
      return now.length === 3 && now.every((r) => r.record.health.status === 'passing') ? now : undefined
    }, 90_000, `3 passing instances of ${name} under node swarm; agent said: ${agent.events().filter((e) => e.type === 'error' || e.type === 'container.problem').map((e) => JSON.stringify(e)).slice(-5).join(' ')}`)
    for (const r of records) {
      expect(r.key).toBe(`${prefix}/services/${name}/swarm/${r.record.id}`)
      expect(r.record).toMatchObject({ node: 'swarm', source: 'docker', address: '127.0.0.1' })
      expect(r.record.id).toMatch(/^swarm:[a-z0-9]{25}:80$/)
      expect(r.record.meta['swarm.service']).toBe(agentService)
    }
    // …bound to the campaign lease, with a live `swarm` node record on it
    const leases = new Set(records.map((r) => r.lease))
    expect(leases.size).toBe(1)
    const swarmNode = await nodeRecord(etcd, prefix, 'swarm')
    expect(swarmNode?.lease).toBe([...leases][0])
    const campaign = (await etcd.getAll().prefix(`${prefix}/swarm/election/`).exec()).kvs
    expect(campaign.map((kv) => kv.lease)).toContain([...leases][0])
    expect([...leases][0]).not.toBe(agent.lease)
    // …and the container side registered no task container
    const own = await instancesUnder(etcd, prefix, node)
    expect(own.filter((i) => i.record.container?.name.startsWith(`${agentService}.`))).toEqual([])
  })

  it('Given 3 instances, When the service is scaled to 1, Then two are removed within 30 s', async () => {
    const started = performance.now()
    await d2('service', 'scale', '-d', `${agentService}=1`)
    await waitFor(async () => (await swarmRecords()).length === 1, 30_000, '1 instance left')
    console.log(`[swarm-agent] scaled 3 → 1: registry down to 1 instance ${Math.round(performance.now() - started)} ms after \`docker service scale\``)
  })

  it('Given 3 passing instances, When a start-first rolling update replaces every task, Then at every sample at least one passing instance is registered, and afterwards all 3 ids are new', async () => {
    // Given
    await d2('service', 'scale', '-d', `${agentService}=3`)
    const before = new Set((await waitFor(async () => {
      const now = await swarmRecords()
      return now.length === 3 && now.every((r) => r.record.health.status === 'passing') ? now : undefined
    }, 90_000, '3 passing instances again')).map((r) => r.record.id))
    // When
    await d2('service', 'update', '-d', '--force', agentService)
    const samples: number[] = []
    await waitFor(async () => {
      const now = await swarmRecords()
      samples.push(now.filter((r) => r.record.health.status === 'passing').length)
      return now.length === 3 && now.every((r) => !before.has(r.record.id))
    }, 120_000, 'every task replaced', 200)
    // Then
    console.log(`[swarm-agent] passing instances through the rolling update (${samples.length} samples every 200 ms): min ${Math.min(...samples)}, max ${Math.max(...samples)}`)
    expect(samples.length).toBeGreaterThan(5)
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(1)
  })

  it('Given a second --swarm agent following, When the leader is killed, Then the follower leads and the same 3 keys come back on its campaign lease, never more than 3', async () => {
    // Given
    const before = await swarmRecords()
    const keys = new Set(before.map((r) => r.key))
    const oldLease = before[0].lease
    expect(keys.size).toBe(3)
    second = await startAgent({ prefix, node: `${node}-b`, dockerHost: env.docker2Host, args: ['--swarm', '--ttl', '4s'] })
    // When
    await agent.stop('SIGKILL')
    const killedAt = performance.now()
    const counts: number[] = []
    const back = await waitFor(async () => {
      const now = await swarmRecords()
      counts.push(now.length)
      return now.length === 3 && now.every((r) => r.record.health.status === 'passing' && r.lease !== oldLease) ? now : undefined
    }, 60_000, 'the Swarm records back under the new leader', 100)
    // Then
    console.log(`[swarm-agent] leader killed: records on the new leader's lease ${Math.round(performance.now() - killedAt)} ms after the kill (TTL 4 s); fewest seen meanwhile: ${Math.min(...counts)}`)
    expect(new Set(back.map((r) => r.key))).toEqual(keys)
    expect(Math.max(...counts)).toBeLessThanOrEqual(3)
    const campaign = (await etcd.getAll().prefix(`${prefix}/swarm/election/`).exec()).kvs
    expect(campaign.map((kv) => kv.lease)).toContain(back[0].lease)
    expect(new Set(back.map((r) => r.lease)).size).toBe(1)
    expect(second.eventsOf('swarm.acting').some((e) => e.acting === true)).toBe(true)
  })

  it('Given --swarm on an engine in no swarm, When the agent runs, Then it says so and does not campaign for Swarm registration', async () => {
    const other = uniquePrefix('swarm-none')
    const lone = await startAgent({ prefix: other, node: `${node}-c`, dockerHost: env.dockerHost, args: ['--swarm', '--no-exposed-by-default'] })
    try {
      await lone.waitForEvent((e) => e.type === 'error' && String(e.message).includes('not in a Swarm; only managers register Swarm services'), 'the not-a-manager line', 20_000)
      expect((await etcd.getAll().prefix(`${other}/swarm/election/`).keys()).length).toBe(0)
      expect(lone.eventsOf('swarm.acting')).toEqual([])
    } finally {
      await lone.stop()
      await etcd.delete().prefix(`${other}/`).exec().catch(() => undefined)
    }
  })

  it('Given the leader, When it stops, Then its Swarm instances and the swarm node go with its campaign lease at once', async () => {
    expect((await swarmRecords()).length).toBe(3)
    expect(await second.stop('SIGTERM')).toBe(0)
    expect(await swarmRecords()).toEqual([])
    expect(await nodeRecord(etcd, prefix, 'swarm')).toBeUndefined()
  })
})
