import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, instanceOf, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { podmanHost, testEnv } from '../support/env.js'
import { testPorts } from '../support/ports.js'
import type { HealthStatus } from '../../src/core/model.js'

/**
 * The agent against a real Podman (Debian's podman 4.3, rootful, `podman system service` on its
 * own socket, brought up by scripts/testenv.sh) with no special flags: containers started,
 * stopped, health-checked and removed there are reflected in etcd as they are with Docker.
 * HEALTHCHECKs run from testenv's loop, standing in for the systemd timers Podman relies on.
 */
const env = testEnv()
const host = podmanHost()
const etcd = etcdClient()
const podman = dockerAt(host)
const tag = uniqueSuffix()
const pool = new Containers(podman, tag)
const prefix = uniquePrefix('podman')
const node = `podman-${tag}`
let agent: AgentProcess
let metricsPort: number


/** The agent's discovery_docker_events_total by action: the events it was handed by its Docker source. */
async function dockerEvents(): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  const counts: Record<string, number> = {}
  for (const m of text.matchAll(/^discovery_docker_events_total\{action="([^"]+)"\} (\d+)/gm)) counts[m[1]] = Number(m[2])
  return counts
}

async function record(short: string) {
  return (await instanceOf(etcd, prefix, pool.name(short)))?.record
}

function waitForStatus(short: string, status: HealthStatus | 'absent', timeoutMs = 20_000): Promise<unknown> {
  return waitFor(
    async () => {
      const r = await record(short)
      return status === 'absent' ? r === undefined : r?.health.status === status
    },
    timeoutMs,
    `${pool.name(short)} to be ${status} (agent stderr: ${agent?.proc.stderr.slice(-500)})`,
  )
}

async function exec(short: string, command: string): Promise<void> {
  const e = await podman.getContainer(pool.name(short)).exec({ Cmd: ['sh', '-c', command], AttachStdout: false, AttachStderr: false })
  await e.start({ Detach: true })
}

beforeAll(async () => {
  // Given a Podman engine answering the Docker API, and one container already running
  const version = (await podman.version()) as unknown as { Components?: { Name: string }[] }
  expect(version.Components?.map((c) => c.Name)).toContain('Podman Engine')
  await pool.run('before')
  ;[metricsPort] = await testPorts(1)
  agent = await startAgent({ prefix, node, dockerHost: host, args: ['--metrics-port', String(metricsPort)] })
})

afterAll(async () => {
  await agent?.stop()
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec()
  etcd.close()
})

describe('watch against Podman', () => {
  it('Given a container running before the agent, When the agent starts, Then it is registered at its published 127.0.0.1 port, passing (no HEALTHCHECK: not "unknown")', async () => {
    // Then
    const r = await waitFor(() => record('before'), 15_000, 'the container running before the agent')
    expect(r.address).toBe('127.0.0.1')
    expect(r.port).toBe(await pool.hostPort(pool.name('before')))
    expect(r.id).toBe(`${node}:${pool.name('before')}:80`)
    expect(r.service).toBe('busybox')
    await waitForStatus('before', 'passing')
  })

  it('Given the agent running, When a container starts, is stopped and started again, Then it is registered, withdrawn and registered again within seconds', async () => {
    // When it starts
    const { container } = await pool.run('cycle')
    await waitForStatus('cycle', 'passing', 10_000)
    // When it is stopped (Podman: no signal in its kill event, the instance goes at exit)
    const stoppedAt = Date.now()
    await container.stop({ t: 1 })
    await waitForStatus('cycle', 'absent', 10_000)
    console.log(`[podman] withdrawn ${Date.now() - stoppedAt} ms after docker stop was called`)
    // When it starts again (a new port may be chosen)
    await container.start()
    await waitForStatus('cycle', 'passing', 10_000)
    expect((await record('cycle'))?.port).toBe(await pool.hostPort(pool.name('cycle')))
    // And the agent was handed Podman's events in Docker's words (Podman's filter knows `die` as
    // `died`). Waited for: the record may come back before the second `start` arrives, since any
    // event of the container (a late `stop`) has the agent look at it, and Podman's event stream
    // can lag behind the container.
    let counts: Record<string, number> = {}
    await waitFor(
      async () => {
        counts = await dockerEvents()
        return (counts.start ?? 0) >= 2 && (counts.die ?? 0) >= 1
      },
      10_000,
      'two start events and a die event',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; counted: ${JSON.stringify(counts)}`)
    })
  })

  it('Given a container with a HEALTHCHECK, When it turns healthy, unhealthy and healthy again, Then the instance follows: passing, critical, passing', async () => {
    // Given
    const healthEventsBefore = (await dockerEvents()).health_status ?? 0
    const startedAt = Date.now()
    await pool.run('health', { healthcheck: { command: 'test -f /www/health', intervalMs: 1_000 } })
    const dockerStatus = async () => (await podman.getContainer(pool.name('health')).inspect()).State.Health?.Status
    await waitFor(async () => (await dockerStatus()) === 'healthy', 20_000, 'podman health healthy (is the testenv health loop running?)')
    await waitForStatus('health', 'passing')
    // When the check starts failing
    await exec('health', 'rm /www/health')
    await waitFor(async () => (await dockerStatus()) === 'unhealthy', 20_000, 'podman health unhealthy')
    const flippedAt = Date.now()
    // Then
    await waitForStatus('health', 'critical', 10_000)
    console.log(`[podman] critical ${Date.now() - flippedAt} ms after Podman said unhealthy`)
    // When it recovers
    await exec('health', 'touch /www/health')
    await waitForStatus('health', 'passing')
    // (and keeps passing long enough for a per-run event stream to exceed the bound below)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 9_000 - (Date.now() - startedAt))))
    // And about one health event per change reached the agent (starting, healthy, unhealthy,
    // healthy), not one per check run (Podman sends one each second here)
    const seconds = (Date.now() - startedAt) / 1000
    const handed = ((await dockerEvents()).health_status ?? 0) - healthEventsBefore
    // (what the agent made of them: its health changes, for a run that exceeds the bound)
    const sequence = agent.eventsOf('health.changed').map((e) => `${String(e.from)}→${String(e.to)}`)
    console.log(`[podman] ${handed} health events handed to the agent over ${seconds.toFixed(1)} s of 1 s checks; health changes: ${sequence.join(' ')}`)
    expect(handed).toBeGreaterThanOrEqual(3)
    expect(handed).toBeLessThanOrEqual(5)
      })

  it('Given a registered container, When it is removed with force, Then its instance is withdrawn', async () => {
    await pool.run('gone')
    await waitForStatus('gone', 'passing', 10_000)
    await podman.getContainer(pool.name('gone')).remove({ force: true })
    await waitForStatus('gone', 'absent', 10_000)
    // Podman's `remove` reached the agent as Docker's `destroy`
    await waitFor(async () => ((await dockerEvents()).destroy ?? 0) >= 1, 5_000, 'a destroy event')
  })

  it('Given Podman, When doctor runs against it, Then it says Podman and warns about what differs, and still passes', async () => {
    // When
    const result = await runCli(['doctor', '--json', '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', `${node}-doctor`, '--docker-host', host])
    // Then
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { name: string; ok: boolean; warning?: boolean; detail: string }[] }
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(report.checks.find((c) => c.name === 'docker API version')?.detail).toMatch(/^Podman 4\.\d+\.\d+ through its Docker-compatible API 1\.\d+/)
    const events = report.checks.find((c) => c.name === 'podman events')
    expect(events).toMatchObject({ ok: true, warning: true })
    // Rootful here: no rootless warning; the health loop runs the checks: no stalled-health warning
    expect(report.checks.map((c) => c.name)).not.toContain('podman rootless networking')
    expect(report.checks.map((c) => c.name)).not.toContain('podman health checks')
  })

  it('Given the host’s dockerd, When doctor runs against it, Then no Podman check appears', async () => {
    const result = await runCli(['doctor', '--json', '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', `${node}-doctor2`, '--docker-host', env.dockerHost])
    const report = JSON.parse(result.stdout) as { checks: { name: string; detail: string }[] }
    expect(report.checks.find((c) => c.name === 'docker API version')?.detail).toMatch(/^engine /)
    expect(report.checks.some((c) => c.name.startsWith('podman'))).toBe(false)
  })
})
