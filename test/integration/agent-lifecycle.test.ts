import os from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import {
  Containers,
  PrefixRecorder,
  dockerAt,
  etcdClient,
  instanceOf,
  instancesUnder,
  nodeRecord,
  startAgent,
  uniqueSuffix,
  type AgentProcess,
} from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * The agent's lease and lifecycle against real etcd: graceful stop, crash, restart and
 * takeover, leftovers of an earlier run, and a second agent claiming a name in use.
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = uniqueSuffix()
const pool = new Containers(docker, tag)
const agents: AgentProcess[] = []
const prefixes: string[] = []

function freshPrefix(label: string): string {
  const prefix = uniquePrefix(label)
  prefixes.push(prefix)
  return prefix
}

beforeAll(async () => {
  await docker.getImage(env.image).inspect()
})

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')))
  await pool.removeAll()
  await Promise.all(prefixes.map((p) => etcd.delete().prefix(`${p}/`).exec().catch(() => undefined)))
  etcd.close()
})

/** Keys of this file's containers under a prefix. */
async function ownKeys(prefix: string, names: string[]): Promise<string[]> {
  const all = await instancesUnder(etcd, prefix)
  return all.filter((i) => names.includes(i.record.container?.name ?? '')).map((i) => i.key)
}

describe('watch: lease and lifecycle', () => {
  it('Given registered containers, When the agent gets SIGTERM, Then it exits 0 and every record of it vanishes at once (one revision)', async () => {
    const prefix = freshPrefix('agent-term')
    const node = `term-${tag}`
    const names = [(await pool.run('term-a')).name, (await pool.run('term-b')).name]
    const agent = await startAgent({ prefix, node })
    agents.push(agent)
    await waitFor(async () => (await ownKeys(prefix, names)).length === 2, 15_000, 'both registered')
    const keys = [...(await ownKeys(prefix, names)), `${prefix}/nodes/${node}`]
    const recorder = await new PrefixRecorder(etcd, `${prefix}/`).start()

    // When SIGTERM
    const code = await agent.stop('SIGTERM')

    // Then exit 0, and by the time the process has exited nothing of it is left
    expect(code).toBe(0)
    expect(await ownKeys(prefix, names)).toEqual([])
    expect(await nodeRecord(etcd, prefix, node)).toBeUndefined()
    // And they went in one revision: the lease was revoked, not the keys deleted one by one
    await waitFor(() => recorder.deletesOf(keys).length === keys.length, 10_000, 'the watcher to see every delete')
    const revisions = new Set(recorder.deletesOf(keys).map((c) => c.modRevision))
    expect(revisions.size).toBe(1)
    expect(agent.eventsOf('agent.stopped')).toHaveLength(1)
    await recorder.stop()
  })

  it('Given an agent with --ttl 3s, When it is killed with SIGKILL, Then its records stay until the lease expires and are gone within the TTL', async () => {
    const prefix = freshPrefix('agent-kill')
    const node = `kill-${tag}`
    const names = [(await pool.run('kill-a')).name]
    const agent = await startAgent({ prefix, node, args: ['--ttl', '3s'] })
    agents.push(agent)
    await waitFor(async () => (await ownKeys(prefix, names)).length === 1, 15_000, 'registered')
    // The records are bound to a lease granted with the 3 s TTL
    const lease = (await instancesUnder(etcd, prefix, node))[0].lease
    const ttl = await etcdctl(['lease', 'timetolive', BigInt(lease).toString(16), '--write-out', 'json'])
    expect(JSON.parse(ttl)['granted-ttl']).toBe(3)

    // When SIGKILL (no chance to revoke)
    await agent.stop('SIGKILL')
    const killedAt = Date.now()
    // Then the records are still there right after the crash…
    expect(await ownKeys(prefix, names)).toHaveLength(1)
    // …and etcd removes them when the lease expires (3 s; the bound allows for a loaded machine)
    await waitFor(async () => (await ownKeys(prefix, names)).length === 0 && !(await nodeRecord(etcd, prefix, node)), 10_000, 'the records to expire')
    expect(Date.now() - killedAt).toBeLessThan(10_000)
  })

  it('Given an agent killed with SIGKILL, When it is restarted at once, Then it takes over the live records without deleting or re-adding them', async () => {
    const prefix = freshPrefix('agent-takeover')
    const node = `take-${tag}`
    const stay = [(await pool.run('take-a')).name, (await pool.run('take-b')).name]
    const leaving = await pool.run('take-gone')
    const first = await startAgent({ prefix, node })
    agents.push(first)
    await waitFor(async () => (await ownKeys(prefix, [...stay, leaving.name])).length === 3, 15_000, 'all registered')
    const stayKeys = await ownKeys(prefix, stay)
    const goneKey = (await ownKeys(prefix, [leaving.name]))[0]
    const recorder = await new PrefixRecorder(etcd, `${prefix}/`).start()

    // Given a crash, and a container that stops while no agent runs
    await first.stop('SIGKILL')
    await leaving.container.kill()

    // When the agent is restarted at once under the same node name
    const second = await startAgent({ prefix, node })
    agents.push(second)

    // Then the node record is the new agent's, on its new lease
    const claimed = await nodeRecord(etcd, prefix, node)
    expect(claimed?.record.pid).toBe(second.pid)
    expect(claimed?.lease).toBe(second.lease)
    // And the live containers' records were moved to the new lease by puts, never deleted
    await waitFor(async () => (await instancesUnder(etcd, prefix, node)).filter((i) => stayKeys.includes(i.key) && i.lease === second.lease).length === 2, 15_000, 'records on the new lease')
    // And the old lease is revoked once the records are moved (nothing left bound to it)
    const oldLease = await etcdctl(['lease', 'timetolive', BigInt(first.lease).toString(16), '--write-out', 'json'])
    expect(JSON.parse(oldLease).ttl).toBe(-1)
    // And the stopped container's record is removed
    await waitFor(async () => !(await instanceOf(etcd, prefix, leaving.name)), 15_000, 'the stale record removed')
    expect(recorder.deletesOf([goneKey])).toHaveLength(1)
    expect(recorder.deletesOf(stayKeys)).toEqual([])
    // And registeredAt survives the takeover (the record is the same instance)
    for (const key of stayKeys) {
      const now = (await instancesUnder(etcd, prefix, node)).find((i) => i.key === key)!
      const before = first.events().find((e) => e.type === 'instance.registered' && (e.instance as { id: string }).id === now.record.id)
      expect((before?.instance as { registeredAt: string }).registeredAt).toBe(now.record.registeredAt)
    }
    // Still no delete after the first agent's TTL (10 s) has passed
    await new Promise((r) => setTimeout(r, 10_500))
    expect(recorder.deletesOf(stayKeys)).toEqual([])
    expect(await ownKeys(prefix, stay)).toHaveLength(2)
    await recorder.stop()
    await second.stop()
  })

  it('Given records of this node left by an earlier run and no live agent, When the agent starts, Then the stale ones are removed and others are untouched', async () => {
    const prefix = freshPrefix('agent-stale')
    const node = `stale-${tag}`
    const live = await pool.run('stale-live')
    // Given leftovers seeded with etcdctl (no lease): a dead node record of this host, a record
    // for a container that no longer exists, and a record of another node
    const now = new Date().toISOString()
    const record = (id: string, recordNode: string, container: string) =>
      JSON.stringify({
        schema: 1, id, service: 'ghost', address: '127.0.0.1', port: 1, tags: [], meta: {}, node: recordNode, source: 'docker',
        container: { id: 'f'.repeat(64), name: container, image: env.image, port: 80, protocol: 'tcp' },
        health: { status: 'passing', output: 'no check', updatedAt: now, since: now }, registeredAt: now, updatedAt: now,
      })
    const staleKey = `${prefix}/services/ghost/${node}:agent-ghost-${tag}:80`
    const otherKey = `${prefix}/services/ghost/other-${tag}:agent-ghost-${tag}:80`
    await etcdctl(['put', staleKey, record(`${node}:agent-ghost-${tag}:80`, node, `agent-ghost-${tag}`)])
    await etcdctl(['put', otherKey, record(`other-${tag}:agent-ghost-${tag}:80`, `other-${tag}`, `agent-ghost-${tag}`)])
    const deadNode = { schema: 1, node, version: '0.0.0', pid: 2 ** 22 + 12345, hostname: os.hostname(), startedAt: now, ttl: 10, lease: '0' }
    await etcdctl(['put', `${prefix}/nodes/${node}`, JSON.stringify(deadNode)])
    // (the other node has a node record, so the leader's garbage collection leaves its record alone)
    const otherNode = { ...deadNode, node: `other-${tag}`, hostname: 'elsewhere', pid: 1 }
    await etcdctl(['put', `${prefix}/nodes/other-${tag}`, JSON.stringify(otherNode)])

    // When the agent starts
    const agent = await startAgent({ prefix, node })
    agents.push(agent)

    // Then the stale record of this node is gone, the running container is registered,
    // the other node's record is untouched, and the node record is the live agent's
    await waitFor(async () => (await etcd.get(staleKey).exec()).kvs.length === 0, 15_000, 'the stale record removed')
    await waitFor(() => instanceOf(etcd, prefix, live.name), 15_000, 'the live container registered')
    expect((await etcd.get(otherKey).string())).toBeTruthy()
    expect((await nodeRecord(etcd, prefix, node))?.record.pid).toBe(agent.pid)
    const removal = agent.events().find((e) => e.type === 'instance.removed' && e.id === `${node}:agent-ghost-${tag}:80`)
    expect(removal?.reason).toMatch(/no running container/)
    await agent.stop()
  })

  it('Given a running agent, When a second agent starts with the same --node, Then it exits 2 naming the first and changes nothing', async () => {
    const prefix = freshPrefix('agent-dup')
    const node = `dup-${tag}`
    const c = await pool.run('dup')
    const agent = await startAgent({ prefix, node })
    agents.push(agent)
    const before = await waitFor(() => instanceOf(etcd, prefix, c.name), 15_000, 'registered')

    // When a second agent claims the same node name
    const second = await runCli(['watch', '--json', ...etcdFlags(prefix), '--node', node], { timeoutMs: 30_000 })
    const plain = await runCli(['watch', ...etcdFlags(prefix), '--node', node], { timeoutMs: 30_000 })

    // Then it refuses with exit 2, naming the running agent (JSON error on stdout with --json)
    expect(second.code).toBe(2)
    const error = JSON.parse(second.stdout.trim().split('\n').at(-1)!).error
    expect(error.message).toContain(`node ${node}`)
    expect(error.message).toContain(`pid ${agent.pid}`)
    expect(plain.code).toBe(2)
    expect(plain.stderr).toContain(`pid ${agent.pid} on ${os.hostname()}`)
    expect(plain.stderr.trim().split('\n')).toHaveLength(1)
    // And the first agent and its records are untouched
    const after = await instanceOf(etcd, prefix, c.name)
    expect(after?.modRevision).toBe(before.modRevision)
    expect((await nodeRecord(etcd, prefix, node))?.record.pid).toBe(agent.pid)
    expect(agent.proc.child.exitCode).toBeNull()
    await agent.stop()
  })
})
