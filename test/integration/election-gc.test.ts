import { randomBytes } from 'node:crypto'
import type { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InstanceRecord, NodeRecord } from '../../src/core/model.js'
import { etcdctl, etcdFlags, keysUnder, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { currentRevision, etcdClient, quietAgentArgs, readElectionLeader, TestAgent } from '../support/election.js'
import { testPorts } from '../support/ports.js'

// Garbage collection by the leader: one agent (so it leads), TTL 3 s,
// --deregister-critical-after 3s. Records are seeded with etcdctl as valid schema-1 JSON.
const TTL_MS = 3_000
const prefix = uniquePrefix('elgc')
const tag = randomBytes(3).toString('hex')
let client: Etcd3
let agent: TestAgent
const history: { type: 'put' | 'delete'; key: string; record?: InstanceRecord; at: number }[] = []
let closeHistory: () => Promise<void> = async () => undefined

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function dockerRecord(node: string, service: string, name: string): InstanceRecord {
  const now = new Date().toISOString()
  return {
    schema: 1,
    id: `${node}:${name}:80`,
    service,
    address: '10.1.2.3',
    port: 32768,
    tags: [],
    meta: {},
    node,
    source: 'docker',
    container: { id: randomBytes(32).toString('hex'), name, image: 'example/web:1', port: 80, protocol: 'tcp' },
    health: { status: 'passing', output: 'no check', updatedAt: now, since: now },
    registeredAt: now,
    updatedAt: now,
  }
}

function nodeRecord(node: string): NodeRecord {
  return { schema: 1, node, version: '0.1.0', pid: 1, hostname: 'elsewhere', startedAt: new Date().toISOString(), ttl: 3, lease: '0' }
}

const keyOf = (r: Pick<InstanceRecord, 'service' | 'id'>): string => `${prefix}/services/${r.service}/${r.id}`

async function closedPort(): Promise<number> {
  return (await testPorts(1))[0]
}

describe('leader garbage collection', () => {
  beforeAll(async () => {
    client = etcdClient()
    const watcher = await client.watch().prefix(`${prefix}/services/`).startRevision(await currentRevision(client)).create()
    watcher.on('put', (kv) => history.push({ type: 'put', key: kv.key.toString(), record: JSON.parse(kv.value.toString()) as InstanceRecord, at: Date.now() }))
    watcher.on('delete', (kv) => history.push({ type: 'delete', key: kv.key.toString(), at: Date.now() }))
    closeHistory = () => watcher.cancel().catch(() => undefined)
    agent = new TestAgent(`gc-${process.pid}`, prefix, quietAgentArgs('3s', ['--no-exposed-by-default', '--deregister-critical-after', '3s']))
    await agent.waitStarted()
    await waitFor(async () => (await readElectionLeader(client, prefix))?.node === agent.node && agent.acting, 20_000, 'the agent to lead')
  })

  afterAll(async () => {
    await agent?.shutdown()
    await closeHistory()
    await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
    client?.close()
  })

  it('Given a docker record whose node has no node record, When a TTL passes, Then the leader removes it, and keeps the one of a node that is alive', async () => {
    // Given: a ghost node's record, and a control whose node record exists
    const ghost = dockerRecord(`ghost-${tag}`, 'gc-web', 'web')
    const alive = dockerRecord(`alive-${tag}`, 'gc-web', 'web')
    await etcdctl(['put', `${prefix}/nodes/alive-${tag}`, JSON.stringify(nodeRecord(`alive-${tag}`))])
    await etcdctl(['put', keyOf(alive), JSON.stringify(alive)])
    const seededAt = Date.now()
    await etcdctl(['put', keyOf(ghost), JSON.stringify(ghost)])
    // When
    await waitFor(async () => !(await keysUnder(keyOf(ghost))).includes(keyOf(ghost)), 30_000, 'the ghost record to be collected', 50)
    const removedAfter = Date.now() - seededAt
    console.log(`[gc] orphaned docker record removed ${removedAfter} ms after it was written (TTL ${TTL_MS} ms)`)
    // Then: not before the node had a TTL to come back, by the leader, and the live node's record stays
    expect(removedAfter).toBeGreaterThanOrEqual(TTL_MS - 100)
    await waitFor(() => agent.eventsOf('instance.removed').some((e) => e.id === ghost.id && /^leader: node ghost-.* has no live agent/.test(String(e.reason))), 5_000, 'the leader to report the removal')
    await sleep(2 * TTL_MS)
    expect(await keysUnder(keyOf(alive))).toEqual([keyOf(alive)])
  })

  it('Given a persistent manual registration without a check and one whose check fails, When they are left alone, Then the critical one is removed after --deregister-critical-after and the other never is', async () => {
    // Given: both attributed to a node no agent runs as (manual records belong to whoever registered them)
    const port = await closedPort()
    const keep = await runCli(['register', 'gc-keep', '--address', '127.0.0.1', '--port', '7001', '--id', 'keep-1', '--node', `ghost-${tag}`, ...etcdFlags(prefix)])
    expect(keep.code, keep.stderr).toBe(0)
    const bad = await runCli(['register', 'gc-bad', '--address', '127.0.0.1', '--port', String(port), '--id', 'bad-1', '--check-tcp', '--check-interval', '1s', '--check-timeout', '500ms', ...etcdFlags(prefix)])
    expect(bad.code, bad.stderr).toBe(0)
    const badKey = `${prefix}/services/gc-bad/bad-1`
    const keepKey = `${prefix}/services/gc-keep/keep-1`
    // When: the leader checks it, marks it critical, and later removes it
    await waitFor(() => history.some((h) => h.key === badKey && h.type === 'delete'), 40_000, 'the critical record to be removed')
    // Then: it was critical first, and removed no sooner than 3 s after it turned critical
    const lastPut = history.filter((h) => h.key === badKey && h.type === 'put').at(-1)!
    expect(lastPut.record?.health.status).toBe('critical')
    const removedAt = history.find((h) => h.key === badKey && h.type === 'delete')!.at
    const criticalFor = removedAt - Date.parse(lastPut.record!.health.since)
    console.log(`[gc] manual record removed after ${criticalFor} ms critical (--deregister-critical-after 3s)`)
    expect(criticalFor).toBeGreaterThanOrEqual(3_000 - 100)
    // (the agent prints its event once its transaction returns: possibly after the test's watch saw the delete)
    await waitFor(() => agent.eventsOf('instance.removed').some((e) => e.id === 'bad-1' && /critical for longer than 3s/.test(String(e.reason))), 10_000, 'the removal reported by the leader')
    // … and the unchecked one is still there after several more collection passes.
    await sleep(3 * TTL_MS)
    expect(await keysUnder(keepKey)).toEqual([keepKey])
    expect(history.filter((h) => h.key === keepKey).map((h) => h.type)).toEqual(['put'])
  })
})
