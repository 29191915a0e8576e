import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt, etcdClient, type AgentProcess } from '../support/agent-harness.js'
import { podmanHost } from '../support/env.js'
import { FaultContainers, faultTag, startFaultAgent } from '../support/faults.js'
import { checkOracle, expectConverged, type OracleInput, type OracleReport } from '../support/oracle.js'

/**
 * The convergence oracle against a real Podman (4.3, rootful, Docker-compatible API from
 * scripts/testenv.sh): the lifecycle steps of lifecycle.test.ts and a burst, each followed by
 * the oracle passing within 10 s. HEALTHCHECKs run from testenv's loop (Podman's own runner is
 * a systemd timer, and this machine kind has no systemd).
 */
const host = podmanHost()
const etcd = etcdClient()
const podman = dockerAt(host)
const tag = faultTag()
const pool = new FaultContainers(podman, tag)
const prefix = uniquePrefix('f-podman')
const node = `f-podman-${tag}`

const input: OracleInput = { etcd, prefix, hosts: [{ node, docker: podman }], labels: pool.labels, scope: pool.owns }
let agent: AgentProcess

beforeAll(async () => {
  agent = await startFaultAgent({ prefix, node, dockerHost: host, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
})

afterAll(async () => {
  await agent?.stop('SIGKILL')
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

const converged = (): Promise<OracleReport & { tookMs: number }> => expectConverged(input, { withinMs: 10_000 })
const recordOf = (report: OracleReport, short: string) => report.records.find((r) => r.value?.container?.name === pool.name(short))

async function exec(short: string, cmd: string[]): Promise<void> {
  const e = await podman.getContainer(pool.name(short)).exec({ Cmd: cmd, AttachStdout: false, AttachStderr: false })
  await e.start({ Detach: true })
}

describe('faults: the oracle against Podman', () => {
  it('Given a plain container (Podman reports an empty Health object), When it runs, Then it is registered passing and the oracle passes', async () => {
    await pool.run('plain')
    const report = await converged()
    expect(recordOf(report, 'plain')?.value?.health?.status).toBe('passing')
    expect(recordOf(report, 'plain')?.value?.address).toBe('127.0.0.1')
  })

  it('Given a burst of 12 containers started at once and 6 of them removed at once, When the agent follows, Then the oracle passes within 10 s after each', async () => {
    const shorts = Array.from({ length: 12 }, (_, i) => `burst${i}`)
    await Promise.all(shorts.map((s) => pool.run(s)))
    const up = await converged()
    expect(shorts.every((s) => recordOf(up, s))).toBe(true)
    await Promise.all(shorts.slice(0, 6).map((s) => pool.remove(s)))
    const down = await converged()
    expect(shorts.filter((s) => recordOf(down, s)).length).toBe(6)
  })

  it('Given a registered container, When it is paused and then unpaused, Then the oracle passes within 10 s after each: critical (or absent) while paused, passing again after', async () => {
    await pool.run('pause')
    await converged()
    await podman.getContainer(pool.name('pause')).pause()
    const paused = await converged()
    const record = recordOf(paused, 'pause')
    console.log(`[podman-oracle] paused: ${record ? `kept as ${record.value?.health?.status}` : 'removed'}`)
    await podman.getContainer(pool.name('pause')).unpause()
    const back = await converged()
    expect(recordOf(back, 'pause')?.value?.health?.status).toBe('passing')
  })

  it('Given a container with a HEALTHCHECK, When it turns healthy, unhealthy and healthy again, Then the oracle passes within 10 s after each flip (passing, critical, passing)', async () => {
    await pool.run('health', { healthcheck: { test: ['CMD-SHELL', 'test -f /www/health'], intervalMs: 1_000, retries: 1 } })
    const statusIs = async (want: string) => waitFor(async () => (await podman.getContainer(pool.name('health')).inspect()).State.Health?.Status === want, 20_000, `podman health ${want}`)
    await statusIs('healthy')
    expect(recordOf(await converged(), 'health')?.value?.health?.status).toBe('passing')
    await exec('health', ['rm', '/www/health'])
    await statusIs('unhealthy')
    expect(recordOf(await converged(), 'health')?.value?.health?.status).toBe('critical')
    await exec('health', ['touch', '/www/health'])
    await statusIs('healthy')
    expect(recordOf(await converged(), 'health')?.value?.health?.status).toBe('passing')
  })

  it('Given a registered container, When it is renamed, Then within 10 s the old id is gone and the new one registered (oracle passes)', async () => {
    await pool.run('name-old')
    const before = await converged()
    const oldKey = recordOf(before, 'name-old')!.key
    await podman.getContainer(pool.name('name-old')).rename({ name: pool.name('name-new') })
    const after = await converged()
    expect(after.records.some((r) => r.key === oldKey)).toBe(false)
    expect(recordOf(after, 'name-new')?.key).toContain(`${node}:${pool.name('name-new')}:80`)
  })

  it('Given a registered container, When it is killed, Then its record is gone within 10 s (oracle passes)', async () => {
    await pool.run('kill')
    expect(recordOf(await converged(), 'kill')).toBeDefined()
    await podman.getContainer(pool.name('kill')).kill()
    expect(recordOf(await converged(), 'kill')).toBeUndefined()
  })

  it('Given a registered container, When it is stopped and started again, Then the oracle passes after each (absent, then registered at its current port)', async () => {
    await pool.run('stop')
    expect(recordOf(await converged(), 'stop')).toBeDefined()
    await podman.getContainer(pool.name('stop')).stop({ t: 1 })
    expect(recordOf(await converged(), 'stop')).toBeUndefined()
    await podman.getContainer(pool.name('stop')).start()
    const again = await waitFor(async () => {
      const report = await converged()
      return recordOf(report, 'stop') ? report : undefined
    }, 10_000, 'the restarted container registered, with the oracle passing')
    expect(recordOf(again, 'stop')).toBeDefined()
  })

  it('Given a restart=on-failure container whose first run exits 1, When Podman restarts it, Then within 10 s of the restart it is registered at its current port (oracle passes)', async () => {
    const script = 'if test -f /tmp/ran; then exec httpd -f -p 80 -h /www; else touch /tmp/ran; httpd -p 80 -h /www; sleep 3; exit 1; fi'
    await pool.run('restart', { restart: 'on-failure', cmd: ['sh', '-c', script] })
    await converged()
    await waitFor(async () => {
      const info = await podman.getContainer(pool.name('restart')).inspect()
      return info.RestartCount >= 1 && info.State.Running
    }, 30_000, 'Podman to restart the container')
    const again = await waitFor(async () => {
      const report = await converged()
      return recordOf(report, 'restart') ? report : undefined
    }, 10_000, 'the restarted container registered, with the oracle passing')
    expect(recordOf(again, 'restart')).toBeDefined()
  })

  it('Given every step above, When the oracle runs once more, Then it passes and the agent is still running', async () => {
    expect((await checkOracle(input)).ok).toBe(true)
    expect(agent.proc.child.exitCode).toBeNull()
  })
})
