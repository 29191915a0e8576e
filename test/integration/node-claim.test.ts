import { afterAll, describe, expect, it } from 'vitest'
import { NodeClaim } from '../../src/core/agent/node-claim.js'
import { ManagedLease } from '../../src/core/lease.js'
import { Registry, type GuardedOp, type GuardedResult } from '../../src/core/registry.js'
import { uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/**
 * The node claim against real etcd, with faults injected at the wire: a transaction that
 * commits but whose reply is lost, and a newer agent taking the name during a partition.
 */
const env = testEnv()
const prefix = uniquePrefix('claim')
const opened: Registry[] = []
const leases: ManagedLease[] = []

/** A real registry whose next guarded write commits in etcd and then "loses" its reply. */
class LosingReplies extends Registry {
  loseNext = 0
  override async applyGuarded(ops: readonly GuardedOp[]): Promise<GuardedResult[]> {
    const results = await super.applyGuarded(ops)
    if (this.loseNext > 0) {
      this.loseNext--
      throw new Error('deadline exceeded (reply lost after commit)')
    }
    return results
  }
}

function claimFor(registry: Registry, node: string): NodeClaim {
  const lease = new ManagedLease(registry.client, { ttlMs: 5_000 })
  leases.push(lease)
  return new NodeClaim(registry, lease, { node, version: 'test', docker: 'unix:///none', startedAt: new Date().toISOString() }, (ms) => new Promise((r) => setTimeout(r, ms)))
}

afterAll(async () => {
  await Promise.all(leases.map((l) => l.revoke()))
  await opened[0]?.client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  for (const r of opened) r.close()
})

describe('node claim', () => {
  it('Given a claim whose commit succeeded but whose reply was lost, When it is retried, Then it recognises its own write instead of failing as taken', async () => {
    const registry = new LosingReplies(Registry.open({ endpoints: env.etcdEndpoints }, prefix).client, prefix, { endpoints: env.etcdEndpoints })
    opened.push(registry)
    const claim = claimFor(registry, 'lost-reply')
    registry.loseNext = 1
    // When the first attempt commits but reports a failure
    await expect(claim.claimOnce()).rejects.toThrow(/reply lost/)
    // Then the retry succeeds on the same lease, and the key holds this claim's token
    const result = await claim.claimOnce()
    expect(result.lease).toBeTruthy()
    const node = await registry.getNode('lost-reply')
    expect(node?.value.instance).toBe(claim.instance)
  })

  it('Given an agent that lost its lease, When another agent took the name meanwhile, Then reclaim refuses to put over it', async () => {
    const a = Registry.open({ endpoints: env.etcdEndpoints }, prefix)
    const b = Registry.open({ endpoints: env.etcdEndpoints }, prefix)
    opened.push(a, b)
    const first = claimFor(a, 'taken')
    await first.claimOnce()
    // The first agent's key vanished (its lease expired during a partition)…
    await a.client.delete().key(`${prefix}/nodes/taken`).exec()
    // …and a second agent claimed the name
    const second = claimFor(b, 'taken')
    await second.claimOnce()
    // When the first comes back with a new lease and tries to put its node record back
    expect(await first.reclaim()).toBe(false)
    // Then the second agent's claim is intact
    expect((await b.getNode('taken'))?.value.instance).toBe(second.instance)
  })

  it('Given a live agent holding the name, When a second claims it from this host and pid namespace, Then it is refused at once', async () => {
    const a = Registry.open({ endpoints: env.etcdEndpoints }, prefix)
    opened.push(a)
    const holder = claimFor(a, 'live')
    await holder.claimOnce()
    // Same process (same pid): pretend the record is from another live pid in this namespace
    const record = (await a.getNode('live'))!
    await a.client.put(`${prefix}/nodes/live`).value(JSON.stringify({ ...record.value, pid: process.ppid, instance: 'someone-else' })).lease(record.lease).exec()
    const other = claimFor(a, 'live')
    await expect(other.claimOnce()).rejects.toThrow(/another agent is already running as node live/)
  })
})
