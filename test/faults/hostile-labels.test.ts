import type { IKeyValue, Watcher } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt, etcdClient, type AgentEventLine, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, startFaultAgent } from '../support/faults.js'
import { checkOracle, expectConverged, type OracleInput } from '../support/oracle.js'

/**
 * Hostile labels: path tricks, bad names and ports, 100 KiB values, and two containers
 * claiming the same instance id. Each hostile container is reported, valid containers are
 * registered as if nothing happened, and no key is ever written outside the prefix.
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const prefix = uniquePrefix('f-hostile')
const node = `f-hostile-${tag}`
const big = 'x'.repeat(100 * 1024)
const dupId = `dup-${tag}`
let agent: AgentProcess
let everything: Watcher
const written: { key: string; revision: string; container?: string }[] = []
let keysBefore: Set<string>

/** Hostile containers: the label set, and whether the container must still be registered (with defaults). */
const HOSTILE: { short: string; labels?: Record<string, string>; env?: Record<string, string>; registered: boolean }[] = [
  { short: 'dotdot', labels: { 'discovery.service': '../../etc' }, registered: false },
  { short: 'slash', labels: { 'discovery.service': 'a/b' }, registered: false },
  { short: 'upper', labels: { 'discovery.service': 'Bad_Name' }, registered: false },
  { short: 'bigname', labels: { 'discovery.service': big }, registered: false },
  { short: 'perport', labels: { 'discovery.80.service': '../x' }, registered: false },
  { short: 'bigtags', labels: { 'discovery.tags': big }, registered: true },
  { short: 'badport', labels: { 'discovery.port': '99999' }, registered: true },
  { short: 'badid', env: { SERVICE_ID: '../../../etc/passwd' }, registered: true },
  { short: 'meta', labels: { 'discovery.meta./etc/passwd': 'x' }, registered: true },
]

beforeAll(async () => {
  keysBefore = new Set(await etcd.getAll().prefix('').keys())
  // Every put anywhere in etcd from now on
  everything = await etcd.watch().prefix('').create()
  everything.on('put', (kv: IKeyValue) => {
    const key = kv.key.toString()
    let container: string | undefined
    if (key.startsWith(`${prefix}/services/`)) {
      try {
        container = (JSON.parse(kv.value.toString()) as { container?: { name?: string } }).container?.name
      } catch {
        // not a record
      }
    }
    written.push({ key, revision: kv.mod_revision, container })
  })
  await Promise.all([
    pool.run('valid1'),
    pool.run('valid2', { publish: ['80/tcp', '8080/tcp'] }),
    ...HOSTILE.map((h) => pool.run(h.short, { labels: h.labels, env: h.env })),
  ])
  // Two containers claiming the same instance id; the second starts once the first is registered
  await pool.run('dup-a', { env: { SERVICE_ID: dupId } })
  agent = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '5s'] })
  await pool.run('dup-b', { env: { SERVICE_ID: dupId } })
})

afterAll(async () => {
  await agent?.stop('SIGKILL')
  await everything?.cancel().catch(() => undefined)
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

function problemsOf(short: string): AgentEventLine[] {
  return agent.eventsOf('container.problem').filter((e) => e.container === pool.name(short))
}

describe('faults: hostile labels', () => {
  it('Given valid and hostile containers, When the agent runs, Then the oracle passes within 15 s: valid ones and hostile ones usable with defaults registered, the rest absent, the agent still running', async () => {
    const input: OracleInput = { etcd, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns }
    const report = await expectConverged(input, { withinMs: 15_000 })
    const registered = new Set(report.records.map((r) => r.value?.container?.name))
    expect(registered.has(pool.name('valid1'))).toBe(true)
    expect(registered.has(pool.name('valid2'))).toBe(true)
    for (const h of HOSTILE) expect(registered.has(pool.name(h.short)), h.short).toBe(h.registered)
    expect(agent.proc.child.exitCode).toBeNull()
  })

  it('Given the hostile containers, When two full resyncs have run, Then each hostile container is reported by exactly one container.problem (clipped, never the 100 KiB value) and valid ones by none', async () => {
    await agent.waitForResyncs(2, 30_000)
    const counts = Object.fromEntries([...HOSTILE.map((h) => h.short), 'dup-a', 'dup-b', 'valid1', 'valid2'].map((s) => [s, problemsOf(s).length]))
    console.log(`[hostile] container.problem reports per container after ${agent.eventsOf('resync').length} resyncs: ${JSON.stringify(counts)}`)
    for (const h of HOSTILE) {
      const reports = problemsOf(h.short)
      expect(reports.length, `${h.short}: ${JSON.stringify(reports.map((r) => [r.label, r.reason]))}`).toBe(1)
    }
    expect(problemsOf('valid1')).toEqual([])
    expect(problemsOf('valid2')).toEqual([])
    for (const line of agent.proc.lines()) expect(line.length).toBeLessThan(16 * 1024)
  })

  it('Given two containers with the same SERVICE_ID, When both run, Then one holds the key without flapping across resyncs and the other is reported by one container.problem', async () => {
    const key = `${prefix}/services/busybox/${node}/${dupId}`
    await waitFor(async () => (await etcd.get(key).exec()).kvs.length === 1, 15_000, 'the duplicate id registered')
    const before = (await etcd.get(key).exec()).kvs[0]
    await agent.waitForResyncs(2, 30_000)
    const after = (await etcd.get(key).exec()).kvs[0]
    const puts = written.filter((w) => w.key === key && BigInt(w.revision) > BigInt(before.mod_revision))
    console.log(`[hostile] duplicate id ${dupId}: ${puts.length} puts over two resyncs after it was first registered (holders in order: ${puts.map((p) => p.container?.replace(`-${tag}`, '')).join(', ')}); reports dup-a ${problemsOf('dup-a').length}, dup-b ${problemsOf('dup-b').length}`)
    expect(after.mod_revision).toBe(before.mod_revision)
    expect(problemsOf('dup-a').length + problemsOf('dup-b').length).toBe(1)
  })

  it('Given everything written to etcd during this file, When every key put is compared with the prefix, Then no key of this agent (its node id) lies outside it and no key anywhere holds a hostile path', async () => {
    // Other developers' agents on the same daemon register these containers under their own
    // prefixes (with their own node ids): only this agent's node id and the hostile strings count.
    const hostile = (key: string): boolean => key.includes('/../') || key.includes('../') || key.includes('etc/passwd')
    const outside = written.filter((w) => !w.key.startsWith(`${prefix}/`) && (w.key.includes(node) || hostile(w.key)))
    expect(outside).toEqual([])
    const keysAfter = (await etcd.getAll().prefix('').keys()).filter((k) => (k.includes(node) || hostile(k)) && !keysBefore.has(k))
    expect(keysAfter.filter((k) => !k.startsWith(`${prefix}/`))).toEqual([])
    // And what is inside is only the schema-2 layout: services/<service>/<node>/<id> (Docker), nodes/<node>, election/…, leader/…
    const mine = written.filter((w) => w.key.startsWith(`${prefix}/`)).map((w) => w.key.slice(prefix.length + 1))
    for (const key of mine) expect(key).toMatch(/^(services\/[a-z0-9.-]+\/[A-Za-z0-9_.:-]+\/[A-Za-z0-9_.:-]+|nodes\/[A-Za-z0-9_.:-]+|config\/status\/[A-Za-z0-9_.:-]+|election\/[0-9a-f]+|leader\/info)$/)
    expect((await checkOracle({ etcd, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns })).phantom).toEqual([])
  })
})
