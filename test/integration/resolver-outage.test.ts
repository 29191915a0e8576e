import { afterAll, describe, expect, it } from 'vitest'
import { Registry } from '../../src/core/registry.js'
import { createResolver, type Resolver } from '../../src/core/resolver/resolver.js'
import { instanceRecord } from '../support/instance-fixtures.js'
import { PrivateEtcd } from '../support/private-etcd.js'
import { ids, nextEvent, sameIds, tableWhere } from './resolver-support.js'

/**
 * Outages, on a single-member etcd of this file's own (the shared cluster is never stopped):
 * while etcd is frozen or dead the resolver keeps serving its last table and says so; when etcd
 * returns it lists again and converges to what etcd holds, even when the changes it missed were
 * compacted away (so the watch alone could not replay them).
 */
const prefix = '/outage'
let etcd: PrivateEtcd | undefined
let resolver: Resolver | undefined
let registry: Registry | undefined

afterAll(async () => {
  await resolver?.close()
  registry?.close()
  await etcd?.stop()
})

const record = (id: string, port: number, status: 'passing' | 'critical' = 'passing') =>
  instanceRecord({ id, service: 'web', port, status, source: 'manual', node: 'test' })

describe('the resolver through etcd outages', () => {
  it('Given a resolver on a private etcd, When etcd is frozen, then killed and restarted with changed and compacted data, Then the table is kept meanwhile and converges after', async ({ annotate }) => {
    // Given: two instances, a resolver and a writer
    etcd = await PrivateEtcd.start()
    registry = Registry.open({ endpoints: [etcd.endpoint] }, prefix)
    await registry.putInstance(record('web-1', 8001))
    await registry.putInstance(record('web-2', 8002))
    resolver = await createResolver('web', { etcdEndpoints: etcd.endpoint, prefix })
    const events: string[] = []
    resolver.on('disconnected', () => events.push('disconnected'))
    resolver.on('reconnected', () => events.push('reconnected'))
    expect(ids(resolver.instances())).toEqual(['web-1', 'web-2'])

    // When: etcd freezes (connections stay open, nothing answers; only keepalives notice)
    const frozen = nextEvent(resolver, 'disconnected', 60_000)
    etcd.pause()
    const frozenFor = await frozen
    // Then: the last table is still served, and the resolver says it may be stale
    expect(resolver.connected).toBe(false)
    expect(ids(resolver.instances())).toEqual(['web-1', 'web-2'])
    expect([resolver.pick()?.id, resolver.pick()?.id].sort()).toEqual(['web-1', 'web-2'])

    // When: it thaws, and a change is made
    const thawed = nextEvent(resolver, 'reconnected', 60_000)
    etcd.resume()
    const thawedAfter = await thawed
    await registry.putInstance(record('web-3', 8003))
    // Then
    await tableWhere(resolver, sameIds(['web-1', 'web-2', 'web-3']), 10_000, 'web-3 after the thaw')

    // When: etcd is killed
    const killed = nextEvent(resolver, 'disconnected', 30_000)
    await etcd.kill()
    const killedFor = await killed
    // Then: the table is kept
    expect(ids(resolver.instances())).toEqual(['web-1', 'web-2', 'web-3'])

    // When: it comes back, and before the resolver reconnects the data changes and the history is compacted
    const back = nextEvent(resolver, 'reconnected', 60_000)
    await etcd.restart()
    const restartedAt = performance.now()
    await registry.deleteInstance('web', 'web-1')
    await registry.putInstance(record('web-2', 8002, 'critical'))
    await registry.putInstance(record('web-4', 8004))
    const { revision } = await registry.listInstances()
    await registry.client.kv.compact({ revision, physical: true })
    // Then: the resolver lists again and equals etcd: web-1 gone, web-2 critical (left out), web-4 new
    const converged = await tableWhere(resolver, sameIds(['web-3', 'web-4']), 30_000, 'convergence after the restart', restartedAt)
    await back
    expect(resolver.connected).toBe(true)
    expect(events).toEqual(['disconnected', 'reconnected', 'disconnected', 'reconnected'])

    // And it keeps following: the watch is live again
    await registry.putInstance(record('web-2', 8002, 'passing'))
    await tableWhere(resolver, sameIds(['web-2', 'web-3', 'web-4']), 10_000, 'web-2 passing after the restart')
    await annotate(
      `frozen → disconnected after ${frozenFor} ms (gRPC keepalive), thawed → reconnected after ${thawedAfter} ms; ` +
        `killed → disconnected after ${killedFor} ms; restarted → converged after ${converged.ms} ms`,
    )
  })
})
