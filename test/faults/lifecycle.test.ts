import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt, etcdClient, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, startFaultAgent } from '../support/faults.js'
import { checkOracle, expectConverged, type OracleInput, type OracleReport } from '../support/oracle.js'

/**
 * Container lifecycle under one running agent: pause/unpause, Docker health flips, rename,
 * network disconnect/connect, kill, a restart-policy restart and an `--rm` container that
 * exits. After each step the oracle must pass within 10 s.
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const prefix = uniquePrefix('f-life')
const node = `f-life-${tag}`
const input: OracleInput = { etcd, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns }
let agent: AgentProcess

beforeAll(async () => {
  agent = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
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
  const e = await docker.getContainer(pool.name(short)).exec({ Cmd: cmd, AttachStdout: false, AttachStderr: false })
  await e.start({ Detach: true })
}

describe('faults: container lifecycle', () => {
  it('Given a registered container, When it is paused and then unpaused, Then the oracle passes within 10 s after each: critical (or absent) while paused, passing again after', async () => {
    await pool.run('pause')
    await converged()
    await docker.getContainer(pool.name('pause')).pause()
    const paused = await converged()
    const record = recordOf(paused, 'pause')
    console.log(`[lifecycle] paused: ${record ? `kept as ${record.value?.health?.status}` : 'removed'}`)
    await docker.getContainer(pool.name('pause')).unpause()
    const back = await converged()
    expect(recordOf(back, 'pause')?.value?.health?.status).toBe('passing')
  })

  it('Given a container with a Docker HEALTHCHECK, When it turns healthy, unhealthy and healthy again, Then the oracle passes within 10 s after each flip (passing, critical, passing)', async () => {
    await pool.run('health', { healthcheck: { test: ['CMD-SHELL', 'test -f /www/health'], intervalMs: 1_000, retries: 1 } })
    const statusIs = async (want: string) => waitFor(async () => (await docker.getContainer(pool.name('health')).inspect()).State.Health?.Status === want, 20_000, `docker health ${want}`)
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
    await docker.getContainer(pool.name('name-old')).rename({ name: pool.name('name-new') })
    const after = await converged()
    expect(after.records.some((r) => r.key === oldKey)).toBe(false)
    expect(recordOf(after, 'name-new')?.key).toContain(`${node}:${pool.name('name-new')}:80`)
  })

  it('Given a registered container, When it is disconnected from its network and connected again, Then the oracle passes within 10 s after each', async () => {
    await pool.run('net')
    await converged()
    const bridge = docker.getNetwork('bridge')
    await bridge.disconnect({ Container: pool.name('net') })
    const off = await converged()
    console.log(`[lifecycle] disconnected: ${recordOf(off, 'net') ? 'still registered' : 'removed'} (Docker reports ${JSON.stringify((await docker.getContainer(pool.name('net')).inspect()).NetworkSettings.Ports)})`)
    await bridge.connect({ Container: pool.name('net') })
    const on = await converged()
    console.log(`[lifecycle] connected again: ${recordOf(on, 'net') ? `registered at ${recordOf(on, 'net')!.value?.address}:${recordOf(on, 'net')!.value?.port}` : 'not registered'}`)
  })

  it('Given a registered container, When it is killed (docker kill), Then its record is gone within 10 s (oracle passes)', async () => {
    await pool.run('kill')
    expect(recordOf(await converged(), 'kill')).toBeDefined()
    await docker.getContainer(pool.name('kill')).kill()
    expect(recordOf(await converged(), 'kill')).toBeUndefined()
  })

  it('Given a restart=on-failure container whose first run exits 1, When Docker restarts it, Then within 10 s of the restart it is registered at its current port (oracle passes)', async () => {
    const script = 'if test -f /tmp/ran; then exec httpd -f -p 80 -h /www; else touch /tmp/ran; httpd -p 80 -h /www; sleep 3; exit 1; fi'
    await pool.run('restart', { restart: 'on-failure', cmd: ['sh', '-c', script] })
    const t0 = Date.now()
    const first = await converged()
    console.log(`[lifecycle] restart: first converged after ${Date.now() - t0} ms`)
    const firstPort = recordOf(first, 'restart')?.value?.port
    await waitFor(async () => {
      const info = await docker.getContainer(pool.name('restart')).inspect()
      return info.RestartCount >= 1 && info.State.Running
    }, 30_000, 'Docker to restart the container')
    console.log(`[lifecycle] restart: restarted after ${Date.now() - t0} ms`)
    // Running comes a moment before the new run's port bindings do: until they show, Docker and
    // etcd agree on "absent". Wait for the converged state that has the container registered.
    const again = await waitFor(async () => {
      const report = await converged()
      return recordOf(report, 'restart') ? report : undefined
    }, 10_000, 'the restarted container registered, with the oracle passing')
    console.log(`[lifecycle] restart policy (${Date.now() - t0} ms): port ${firstPort} → ${recordOf(again, 'restart')?.value?.port}`)
    expect(recordOf(again, 'restart')).toBeDefined()
  })

  it('Given an --rm container that exits by itself, When Docker removes it, Then its record is gone within 10 s (oracle passes)', async () => {
    await pool.run('rm', { autoRemove: true, cmd: ['sh', '-c', 'httpd -p 80 -h /www; sleep 4'] })
    expect(recordOf(await converged(), 'rm')).toBeDefined()
    await waitFor(async () => docker.getContainer(pool.name('rm')).inspect().then(() => false, () => true), 30_000, 'the --rm container to be removed')
    expect(recordOf(await converged(), 'rm')).toBeUndefined()
    expect((await checkOracle(input)).ok).toBe(true)
    expect(agent.proc.child.exitCode).toBeNull()
  })
})
