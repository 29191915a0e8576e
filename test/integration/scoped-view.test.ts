import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, instancesUnder, startAgent, uniqueSuffix, type AgentEventLine, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * A headless agent that serves neither DNS nor HTTP keeps only its own node's Docker records in
 * its view (docs/scaling.md). Leading widens it (the leader's duties read every record), losing
 * the lead narrows it again. Observed from outside: the view.scope events, and the leader's
 * garbage collection of a dead node's records, which it can only do with the whole registry.
 */
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const prefix = uniquePrefix('scoped-view')
const host = new Containers(dockerAt(env.dockerHost), tag)
const agents: AgentProcess[] = []
const OTHERS = 3
const PER_NODE = 100
let lease: string

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Docker records of `node` (as its agent would write them), on the test's lease. */
async function seedRecords(node: string, count: number): Promise<void> {
  const now = new Date().toISOString()
  await Promise.all(Array.from({ length: count }, (_, i) => {
    const id = `${node}-c${i}`
    const record = { schema: 2, id, service: 'seeded', address: '10.9.0.1', port: 8000 + i, tags: [], meta: {}, node, source: 'docker', health: { status: 'passing', output: 'no check', updatedAt: now, since: now }, registeredAt: now, updatedAt: now }
    return etcd.put(`${prefix}/services/seeded/${node}/${id}`).value(JSON.stringify(record)).lease(lease).exec()
  }))
}

/** A live node record for a simulated node, so the leader leaves its records alone. */
async function seedNode(node: string): Promise<void> {
  const record = { schema: 1, node, version: '0.0.0', pid: 1, hostname: node, startedAt: new Date().toISOString(), ttl: 60, lease }
  await etcd.put(`${prefix}/nodes/${node}`).value(JSON.stringify(record)).lease(lease).exec()
}

const scopes = (agent: AgentProcess): AgentEventLine[] => agent.eventsOf('view.scope')
const lastScope = (agent: AgentProcess): AgentEventLine | undefined => scopes(agent).at(-1)
const acting = (agent: AgentProcess): boolean => agent.eventsOf('leader.acting').at(-1)?.acting === true

beforeAll(async () => {
  await host.docker.getImage(env.image).inspect()
  lease = (await etcd.lease(120, { autoKeepAlive: true }).grant()).toString()
  for (let n = 0; n < OTHERS; n++) {
    await seedNode(`other-${n}-${tag}`)
    await seedRecords(`other-${n}-${tag}`, PER_NODE)
  }
})

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))
  await host.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('watch without DNS, HTTP or a live view: a view of its own node', () => {
  it('Given other nodes\' records, When two headless agents start, Then the follower keeps only its own, the leader all; When the leader dies, Then the follower widens and collects the records of a node that died; When it is frozen past its lease, Then it narrows again', async () => {
    // Each agent registers only this file's containers (other files' come and go on the same
    // daemon); a 5 s TTL, so that a late renewal on a loaded machine does not move the lead.
    const args = ['--ttl', '5s', '--filter', `label=${host.label}`]
    // And a node that is live for now, whose records only the leader's GC will remove later
    const dead = `dead-${tag}`
    await seedNode(dead)
    await seedRecords(dead, 20)
    const a = await startAgent({ prefix, node: `a-${tag}`, args })
    agents.push(a)
    // Given: a leads (the only agent) and its view widened to every record
    const aWidened = await a.waitForEvent((e) => e.type === 'view.scope' && e.whole === true, 'a to widen its view as leader', 30_000)
    expect(scopes(a)[0]).toMatchObject({ whole: false })
    expect(Number(aWidened.instances)).toBeGreaterThanOrEqual(OTHERS * PER_NODE)

    // When a second agent starts with a container of its own
    const b = await startAgent({ prefix, node: `b-${tag}`, args })
    agents.push(b)
    const mine = await host.run('mine')
    await waitFor(async () => (await instancesUnder(etcd, prefix, `b-${tag}`)).some((i) => i.record.container?.name === mine.name), 15_000, 'b to register its container')
    // Then b, a follower, holds no other node's records: its one scope event says so
    expect(acting(b)).toBe(false)
    expect(scopes(b)).toHaveLength(1)
    expect(scopes(b)[0]).toMatchObject({ whole: false })
    expect(Number(scopes(b)[0].instances)).toBeLessThan(OTHERS * PER_NODE)

    // When a leads no more (SIGKILL): b takes over and widens before its duties start
    a.proc.child.kill('SIGKILL')
    await b.waitForEvent((e) => e.type === 'leader.acting' && e.acting === true, 'b to act as leader', 30_000)
    const widened = await b.waitForEvent((e) => e.type === 'view.scope' && e.whole === true, 'b to widen its view', 30_000)
    expect(Number(widened.instances)).toBeGreaterThanOrEqual(OTHERS * PER_NODE)
    // And its duties work on records it only has from that relist: once the dead node's record
    // goes, its records (never changed since b started) are collected after a TTL
    await etcd.delete().key(`${prefix}/nodes/${dead}`).exec()
    await waitFor(async () => (await instancesUnder(etcd, prefix, dead)).length === 0, 30_000, 'the new leader to collect the dead node\'s records')
    // The live simulated nodes' records stay
    expect((await instancesUnder(etcd, prefix, `other-0-${tag}`)).length).toBe(PER_NODE)

    // When b is frozen past its lease, a third agent leads meanwhile, and b comes back
    const c = await startAgent({ prefix, node: `c-${tag}`, args })
    agents.push(c)
    b.proc.child.kill('SIGSTOP')
    try {
      await c.waitForEvent((e) => e.type === 'leader.acting' && e.acting === true, 'c to act as leader', 30_000)
    } finally {
      b.proc.child.kill('SIGCONT')
    }
    // Then b stops acting and, a TTL later, narrows to its own records again
    await b.waitForEvent((e) => e.type === 'leader.acting' && e.acting === false, 'b to stop acting', 30_000)
    await waitFor(() => lastScope(b)?.whole === false && acting(b) === false, 30_000, 'b to narrow its view')
    expect(Number(lastScope(b)!.instances)).toBeLessThan(OTHERS * PER_NODE)
    // And it still follows its own node: a second container is registered, the first still there
    await sleep(500)
    const second = await host.run('second')
    await waitFor(async () => {
      const names = (await instancesUnder(etcd, prefix, `b-${tag}`)).map((i) => i.record.container?.name)
      return names.includes(mine.name) && names.includes(second.name)
    }, 20_000, 'b to register its second container next to the first')
  })
})
