import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, nodeRecord, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * Hot configuration on real agents: the YAML file re-read on SIGHUP and by `reload`, the etcd
 * layer set with `config set` reaching every agent, bad values refused whole while the
 * configuration in force keeps running — with the same lease and no instance removed.
 */
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const pool = new Containers(dockerAt(env.dockerHost), `hot-${tag}`)
const dir = mkdtempSync(path.join(os.tmpdir(), 'hot-config-'))
const agents: AgentProcess[] = []

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))
  await pool.removeAll()
  await etcd.delete().prefix('/hot-').exec().catch(() => undefined)
  etcd.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Milliseconds between the last two resync events at or after `from`. */
function resyncGap(agent: AgentProcess, from: number): number | undefined {
  const times = agent.eventsOf('resync').map((e) => Date.parse(e.ts)).filter((t) => t >= from)
  return times.length >= 2 ? times.at(-1)! - times.at(-2)! : undefined
}

describe('hot configuration', () => {
  it('Given an agent with a YAML file, When the file changes and SIGHUP or reload follows, Then the new resync interval applies with the same lease and nothing removed; a bad file is refused and the old config keeps running', async () => {
    const prefix = uniquePrefix('hot-file')
    const node = `hot-file-${tag}`
    const file = path.join(dir, 'agent.yaml')
    writeFileSync(file, 'resync: 30s\n')
    await pool.run('web', { labels: { 'discovery.enable': 'true' } })
    // Only its own container (other files' containers come and go on the same daemon meanwhile)
    const agent = await startAgent({ prefix, node, args: ['--config', file, '--no-exposed-by-default'] })
    agents.push(agent)
    const lease = (await nodeRecord(etcd, prefix, node))!.lease
    // When the file says 1s and the agent gets SIGHUP
    writeFileSync(file, 'resync: 1s\n')
    agent.proc.kill('SIGHUP')
    const applied = await agent.waitForEvent((e) => e.type === 'config.applied' && e.trigger === 'SIGHUP', 'SIGHUP applied', 10_000)
    expect(applied.changed).toEqual(['resync'])
    // Then resyncs come about a second apart
    const from = Date.parse(applied.ts)
    await waitFor(() => (resyncGap(agent, from) ?? 0) > 0, 10_000, 'two resyncs after the change')
    expect(resyncGap(agent, from)).toBeLessThan(5_000)
    // When the file changes again and `reload` asks (exit 0, the change named)
    writeFileSync(file, 'resync: 2s\n')
    const reloaded = await runCli(['reload', '--node', node, ...etcdFlags(prefix)])
    expect(reloaded.code, reloaded.stderr).toBe(0)
    expect(reloaded.stdout).toContain(`${node}: applied (resync changed)`)
    // When the file holds a bad value, Then reload exits 2 naming it, and the agent keeps 2s
    writeFileSync(file, 'resync: soon\n')
    const refused = await runCli(['reload', '--node', node, ...etcdFlags(prefix)])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/resync.*'soon' is not a duration/)
    await agent.waitForEvent((e) => e.type === 'config.rejected', 'rejection logged', 5_000)
    const after = Date.now()
    await waitFor(() => resyncGap(agent, after) !== undefined, 10_000, 'resyncs go on')
    expect(resyncGap(agent, after)).toBeGreaterThan(1_500)
    // …with the same lease, and no instance removed along the way
    expect((await nodeRecord(etcd, prefix, node))!.lease).toBe(lease)
    expect(agent.eventsOf('instance.removed')).toEqual([])
  })

  it('Given three agents, When config set changes a setting for all of them, Then each applies it within 1 s; a bad value or a setting that needs a restart exits 2 and writes nothing', async () => {
    const prefix = uniquePrefix('hot-etcd')
    const three = await Promise.all(['a', 'b', 'c'].map((n) => startAgent({ prefix, node: `hot-${n}-${tag}`, dockerHost: env.docker2Host, args: ['--no-exposed-by-default'] })))
    agents.push(...three)
    const before = Date.now()
    const set = await runCli(['config', 'set', 'resync', '7s', ...etcdFlags(prefix)])
    expect(set.code, set.stderr).toBe(0)
    const setAt = Date.now()
    for (const agent of three) {
      const applied = await agent.waitForEvent((e) => e.type === 'config.applied' && e.trigger === 'etcd' && Date.parse(e.ts) >= before, `${agent.node} applied`, 10_000)
      expect(applied.changed).toEqual(['resync'])
      console.log(`[hot-config] ${agent.node} applied ${Date.parse(applied.ts) - before} ms after config set started (its process returned after ${setAt - before} ms)`)
      expect(Date.parse(applied.ts) - setAt).toBeLessThan(1_000)
    }
    const bad = await runCli(['config', 'set', 'resync', 'soon', ...etcdFlags(prefix)])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/'soon' is not a duration/)
    const restart = await runCli(['config', 'set', 'ttl', '20s', ...etcdFlags(prefix)])
    expect(restart.code).toBe(2)
    expect(restart.stderr).toMatch(/'ttl' cannot be set in etcd/)
    const layer = JSON.parse((await runCli(['config', 'get', '--json', ...etcdFlags(prefix)])).stdout) as { values: Record<string, unknown> }
    expect(layer.values).toEqual({ resync: '7s' })
    const unset = await runCli(['config', 'unset', 'resync', ...etcdFlags(prefix)])
    expect(unset.code, unset.stderr).toBe(0)
    for (const agent of three) await agent.waitForEvent((e) => e.type === 'config.applied' && Date.parse(e.ts) >= setAt && (e.changed as string[]).includes('resync'), `${agent.node} back to the default`, 10_000)
  })
})
