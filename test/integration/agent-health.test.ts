import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, instanceOf, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import type { HealthStatus, InstanceRecord } from '../../src/core/model.js'

/**
 * The agent's health checks on real containers (the host's dockerd, the 3-member etcd):
 * checks from labels and from Docker's HEALTHCHECK decide `health.status` in the registry,
 * critical instances leave `list --healthy`, and --deregister-critical-after removes them
 * until they pass again. Bounds are generous: interval × failures plus a margin.
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = uniqueSuffix()
const pool = new Containers(docker, tag)
const prefix = uniquePrefix('agent-health')
const node = `health-${tag}`
let agent: AgentProcess

const fastCheck = { 'discovery.check.interval': '500ms', 'discovery.check.timeout': '400ms', 'discovery.check.failures': '2', 'discovery.check.successes': '1' }

async function statusOf(short: string): Promise<HealthStatus | undefined> {
  return (await instanceOf(etcd, prefix, pool.name(short)))?.record.health.status
}

function waitForStatus(short: string, status: HealthStatus, timeoutMs = 20_000): Promise<unknown> {
  return waitFor(async () => (await statusOf(short)) === status, timeoutMs, `${short} to be ${status}`)
}

async function exec(short: string, command: string): Promise<void> {
  const e = await docker.getContainer(pool.name(short)).exec({ Cmd: ['sh', '-c', command], AttachStdout: false, AttachStderr: false })
  await e.start({ Detach: true })
}

beforeAll(async () => {
  await Promise.all([
    pool.run('http', { labels: { ...fastCheck, 'discovery.check.http': '/health' } }),
    // httpd in the background and sh as PID 1, so the server can stop while the container runs
    pool.run('tcp', { labels: { ...fastCheck, 'discovery.check.tcp': 'true' }, cmd: ['sh', '-c', 'httpd -p 80 -h /www; exec sleep 3600'] }),
    pool.run('exec', { labels: { ...fastCheck, 'discovery.check.exec': 'test -f /www/health' } }),
    pool.run('docker', { healthcheck: { command: 'test -f /www/health', intervalMs: 500 } }),
    pool.run('gone', { labels: { ...fastCheck, 'discovery.check.http': '/health' } }),
    pool.run('paused'),
  ])
  agent = await startAgent({ prefix, node, args: ['--deregister-critical-after', '2s'] })
})

afterAll(async () => {
  await agent?.stop()
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec()
  etcd.close()
})

describe('watch: health checks decide health.status', () => {
  it('Given an http check label, When the served file is removed, Then the instance turns critical, and passing again when it is restored', async () => {
    // Given a passing http check
    await waitForStatus('http', 'passing')
    // When /www/health is removed (HTTP 404)
    await exec('http', 'mv /www/health /www/health.off')
    // Then, after 2 failures at 500 ms, the record says critical with the check's output
    await waitForStatus('http', 'critical')
    const critical = (await instanceOf(etcd, prefix, pool.name('http')))!.record
    expect(critical.health.output).toMatch(/404/)
    // When it is restored, Then one success makes it passing again
    await exec('http', 'mv /www/health.off /www/health')
    await waitForStatus('http', 'passing')
  })

  it('Given a tcp check label, When the server stops listening, Then the instance turns critical', async () => {
    await waitForStatus('tcp', 'passing')
    await exec('tcp', 'for p in /proc/[0-9]*; do read c < $p/comm; [ "$c" = httpd ] && kill ${p#/proc/}; done')
    await waitForStatus('tcp', 'critical')
  })

  it('Given an exec check label, When its command starts failing, Then the instance turns critical, and passing when it succeeds again', async () => {
    await waitForStatus('exec', 'passing')
    await exec('exec', 'mv /www/health /www/health.off')
    await waitForStatus('exec', 'critical')
    await exec('exec', 'mv /www/health.off /www/health')
    await waitForStatus('exec', 'passing')
  })

  it('Given a Docker HEALTHCHECK and no discovery check, When Docker reports unhealthy and then healthy, Then the record follows both ways', async () => {
    await waitForStatus('docker', 'passing')
    const record = (await instanceOf(etcd, prefix, pool.name('docker')))!.record
    expect(record.check?.kind).toBe('docker')
    await exec('docker', 'mv /www/health /www/health.off')
    await waitForStatus('docker', 'critical')
    await exec('docker', 'mv /www/health.off /www/health')
    await waitForStatus('docker', 'passing')
  })

  it('Given a paused container, When it is paused, Then it is critical at once, and passing after unpause', async () => {
    await waitForStatus('paused', 'passing')
    await docker.getContainer(pool.name('paused')).pause()
    await waitForStatus('paused', 'critical', 10_000)
    await docker.getContainer(pool.name('paused')).unpause()
    await waitForStatus('paused', 'passing', 10_000)
  })

  it('Given a critical instance, When `list --healthy` runs, Then it is excluded while `list` still shows it', async () => {
    await exec('exec', 'mv /www/health /www/health.off')
    await waitForStatus('exec', 'critical')
    const all = await runCli(['list', '--json', ...etcdFlags(prefix)])
    const healthy = await runCli(['list', '--json', '--healthy', ...etcdFlags(prefix)])
    expect(all.code).toBe(0)
    expect(healthy.code).toBe(0)
    const name = pool.name('exec')
    const names = (out: string) => (JSON.parse(out) as InstanceRecord[]).map((r) => r.container?.name)
    expect(names(all.stdout)).toContain(name)
    expect(names(healthy.stdout)).not.toContain(name)
    expect((JSON.parse(healthy.stdout) as InstanceRecord[]).every((r) => r.health.status === 'passing')).toBe(true)
    await exec('exec', 'mv /www/health.off /www/health')
  })

  it('Given --deregister-critical-after 2s, When an instance stays critical, Then it is removed, and registered again once it passes', async () => {
    await waitForStatus('gone', 'passing')
    await exec('gone', 'mv /www/health /www/health.off')
    await waitForStatus('gone', 'critical')
    // Then after 2 s more it is gone from the registry (the container still runs)
    await waitFor(async () => (await instanceOf(etcd, prefix, pool.name('gone'))) === undefined, 15_000, 'the long-critical instance removed')
    await agent.waitForEvent((e) => e.type === 'instance.removed' && String(e.reason).includes('critical for longer'), 'the removal event', 5_000)
    // When it passes again, Then it comes back
    await exec('gone', 'mv /www/health.off /www/health')
    await waitForStatus('gone', 'passing')
  })
})
