import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../support/cli.js'
import { dockerAt } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { SwarmSource, swarmRole, type SwarmSnapshot } from '../../src/core/docker/swarm-source.js'

/**
 * The Swarm source against a real one-node Swarm: the second test dockerd (never the host's,
 * other tests use it) is made a manager with `swarm init --advertise-addr 127.0.0.1` for this
 * file and leaves the swarm afterwards (only if this file made it one). A service with a
 * HEALTHCHECK and a host-mode published port: its running tasks become instances at the node
 * address and their published ports (which answer HTTP), a scale-up adds one, a start-first
 * rolling update swaps every task without a snapshot that has none, and removal empties it.
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

describe('SwarmSource on a real Swarm manager', () => {
  it('Given a service with 2 replicas, a HEALTHCHECK and a host-mode port, When its tasks run, Then there is one instance per task at the node address and its published port, and each answers HTTP', async () => {
    // Given
    await d2(
      'service', 'create', '-d', '--name', service, '--replicas', '2',
      '--publish', 'mode=host,target=80',
      '--health-cmd', 'test -f /www/health', '--health-interval', '1s',
      '--update-order', 'start-first', '--update-parallelism', '1', '--update-delay', '1s',
      '--label', 'discovery.service=swtest', '--label', 'discovery.tags=swarm',
      env.image,
    )
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
