import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../../src/core/model.js'
import { etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt, etcdClient, instancesUnder, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, sleep, startFaultAgent } from '../support/faults.js'

/**
 * A wall-clock step under a running agent (NTP correcting a drifted clock, a VM restored from
 * a snapshot): the agent runs under libfaketime, whose offset file the test rewrites from +0
 * to +2h while the monotonic clock runs on. Critical age (--deregister-critical-after) for the
 * agent's own instances and for the leader's manual records must not jump with it.
 */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1'
const env = testEnv()
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const prefix = uniquePrefix('f-clock')
const node = `f-clock-${tag}`
const etcd = etcdClient()
const dir = mkdtempSync(path.join(os.tmpdir(), 'clock-jump-'))
const offsetFile = path.join(dir, 'offset')
let agent: AgentProcess

beforeAll(() => {
  // The test environment installs faketime; without it the suite must fail, not skip.
  if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} missing: scripts/testenv.sh installs Debian's faketime`)
  writeFileSync(offsetFile, '+0\n')
})

afterAll(async () => {
  await agent?.stop('SIGKILL')
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('faults: the wall clock steps forward', () => {
  it('Given critical instances and --deregister-critical-after 30s, When the wall clock jumps 2 h ahead, Then neither the agent nor the leader removes them early', async () => {
    // Given a container whose check fails at once, and a manual record whose check fails
    await pool.run('crit', { labels: { 'discovery.check.http': '/nope', 'discovery.check.interval': '1s', 'discovery.check.failures': '1' } })
    const registered = await runCli(['register', 'ext', '--address', '127.0.0.1', '--port', '9', '--id', `ext-${tag}`, '--check-tcp', '--check-interval', '1s', ...etcdFlags(prefix)])
    expect(registered.code, registered.stderr).toBe(0)
    agent = await startFaultAgent({
      prefix,
      node,
      dockerHost: env.dockerHost,
      args: ['--no-exposed-by-default', '--deregister-critical-after', '30s', '--ttl', '5s'],
      env: { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: offsetFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    })
    // (Other fault files' containers carry discovery.enable=true too: judge only this file's two.)
    const mine = (r: InstanceRecord): boolean => r.container?.name === pool.name('crit') || r.id === `ext-${tag}`
    const critical = async (): Promise<InstanceRecord[]> => (await instancesUnder(etcd, prefix)).map((r) => r.record).filter((r) => mine(r) && r.health.status === 'critical')
    await waitFor(async () => (await critical()).length === 2, 30_000, `both critical; agent stderr: ${agent.proc.stderr.slice(-1000)}`)
    // When the wall clock steps 2 h forward
    writeFileSync(offsetFile, '+2h\n')
    // Then, well past the agent's 1 s withdrawal tick and the leader's GC period, both are still there
    await sleep(8_000)
    const still = await critical()
    expect(still.map((r) => r.source).sort()).toEqual(['docker', 'manual'])
    const removed = agent.eventsOf('instance.removed').filter((e) => e.id === `ext-${tag}` || String(e.id).includes(pool.name('crit')))
    expect(removed, JSON.stringify(removed)).toEqual([])
    expect(agent.eventsOf('agent.started')).toHaveLength(1)
    // (and the agent's wall clock did jump: an event it logs now is stamped ~2 h ahead)
    agent.proc.kill('SIGHUP')
    const hup = await agent.waitForEvent((e) => e.type === 'config.applied' && e.trigger === 'SIGHUP', 'SIGHUP logged', 10_000)
    expect(Date.parse(hup.ts) - Date.now()).toBeGreaterThan(1.9 * 3_600_000)
  })
})
