import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { HealthStatus, InstanceRecord } from '../model.js'
import type { MirrorEntry, PrefixMirrorEvents } from '../prefix-mirror.js'
import { Resolver, selectInstances, type InstanceSource, type ResolverFilter } from './resolver.js'

/** A stand-in for PrefixMirror: a map of entries and the same events. */
class FakeSource extends EventEmitter<PrefixMirrorEvents<InstanceRecord>> {
  readonly entries = new Map<string, MirrorEntry<InstanceRecord>>()
  isConnected = true
  private revision = 1

  list(): MirrorEntry<InstanceRecord>[] {
    return [...this.entries.values()]
  }

  put(record: InstanceRecord): void {
    const key = `/discovery/services/${record.service}/${record.id}`
    const previous = this.entries.get(key)
    const entry = { key, value: record, modRevision: String(++this.revision), createRevision: String(this.revision), lease: '0' }
    this.entries.set(key, entry)
    this.emit('put', entry, previous)
  }

  remove(id: string): void {
    const key = `/discovery/services/web/${id}`
    const previous = this.entries.get(key)!
    this.entries.delete(key)
    this.emit('delete', previous, String(++this.revision))
  }
}

function instance(id: string, status: HealthStatus = 'passing', extra: Partial<InstanceRecord> = {}): InstanceRecord {
  const at = '2026-01-01T00:00:00.000Z'
  return {
    schema: 1,
    id,
    service: 'web',
    address: '10.0.0.1',
    port: 8000 + Number(id.replace(/\D/g, '') || 0),
    tags: [],
    meta: {},
    node: 'n1',
    source: 'manual',
    health: { status, output: 'ok', updatedAt: at, since: at },
    registeredAt: at,
    updatedAt: at,
    ...extra,
  }
}

const HEALTHY: ResolverFilter = { healthyOnly: true, tags: [] }
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function setup(records: InstanceRecord[], filter = HEALTHY): { source: FakeSource; resolver: Resolver; changes: string[][] } {
  const source = new FakeSource()
  for (const record of records) source.put(record)
  const resolver = new Resolver('web', source as unknown as InstanceSource, filter)
  const changes: string[][] = []
  resolver.on('change', (instances) => changes.push(instances.map((i) => i.id)))
  return { source, resolver, changes }
}

describe('selectInstances', () => {
  const entries = [
    instance('web-3', 'passing', { tags: ['v2', 'eu'] }),
    instance('web-1', 'critical', { tags: ['v2'] }),
    instance('web-2', 'passing', { tags: ['v1'] }),
    instance('web-4', 'warning', { tags: ['v2'] }),
    instance('web-5', 'unknown'),
  ].map((value) => ({ key: value.id, value, modRevision: '1', createRevision: '1', lease: '0' }))

  it.each([
    ['healthy only (passing), sorted by id', HEALTHY, ['web-2', 'web-3']],
    ['every health', { healthyOnly: false, tags: [] }, ['web-1', 'web-2', 'web-3', 'web-4', 'web-5']],
    ['healthy with tag v2', { healthyOnly: true, tags: ['v2'] }, ['web-3']],
    ['any health with tags v2 and eu (all must match)', { healthyOnly: false, tags: ['v2', 'eu'] }, ['web-3']],
    ['a tag nobody has', { healthyOnly: false, tags: ['nope'] }, []],
  ] as const)('Given five instances, When filtered %s, Then the table is as expected', (_what, filter, ids) => {
    // When
    const table = selectInstances(entries, filter)
    // Then
    expect(table.map((i) => i.id)).toEqual(ids)
  })
})

describe('Resolver', () => {
  it('Given a passing, a critical and a warning instance, When created, Then only the passing one is served and no change is emitted', async () => {
    // Given / When
    const { resolver, changes } = setup([instance('web-1'), instance('web-2', 'critical'), instance('web-3', 'warning')])
    await flush()
    // Then
    expect(resolver.instances().map((i) => i.id)).toEqual(['web-1'])
    expect(changes).toEqual([])
  })

  it('Given a resolver, When a burst of puts arrives in one tick, Then one change carries the whole new table', async () => {
    // Given
    const { source, resolver, changes } = setup([])
    // When
    for (let i = 1; i <= 50; i++) source.put(instance(`web-${i}`))
    await flush()
    // Then
    expect(changes).toHaveLength(1)
    expect(changes[0]).toHaveLength(50)
    expect(resolver.size).toBe(50)
  })

  it('Given a served instance, When it turns critical and then passing again, Then it leaves and rejoins the table, one change each', async () => {
    // Given
    const { source, resolver, changes } = setup([instance('web-1'), instance('web-2')])
    // When
    source.put(instance('web-2', 'critical'))
    await flush()
    const during = resolver.instances().map((i) => i.id)
    source.put(instance('web-2', 'passing'))
    await flush()
    // Then
    expect(during).toEqual(['web-1'])
    expect(changes).toEqual([['web-1'], ['web-1', 'web-2']])
  })

  it('Given a served instance, When only its check output and timestamps change, Then no change is emitted but the record served is the new one', async () => {
    // Given
    const { source, resolver, changes } = setup([instance('web-1')])
    // When
    const later = '2026-01-01T00:01:00.000Z'
    source.put({ ...instance('web-1'), health: { status: 'passing', output: 'HTTP 200 in 3 ms', updatedAt: later, since: later }, updatedAt: later })
    await flush()
    // Then
    expect(changes).toEqual([])
    expect(resolver.instances()[0].health.output).toBe('HTTP 200 in 3 ms')
  })

  it('Given a served instance, When its meta, tags or port change, Then a change is emitted', async () => {
    // Given
    const { source, changes } = setup([instance('web-1')])
    // When
    source.put(instance('web-1', 'passing', { meta: { version: '2' } }))
    await flush()
    source.put(instance('web-1', 'passing', { meta: { version: '2' }, tags: ['canary'] }))
    await flush()
    source.put(instance('web-1', 'passing', { meta: { version: '2' }, tags: ['canary'], port: 9999 }))
    await flush()
    // Then
    expect(changes).toHaveLength(3)
  })

  it('Given three instances, When picking nine times, Then each is picked three times, in a fixed cycle', () => {
    // Given
    const { resolver } = setup([instance('web-1'), instance('web-2'), instance('web-3')])
    // When
    const picks = Array.from({ length: 9 }, () => resolver.pick()!.id)
    // Then
    expect(picks.slice(0, 3).sort()).toEqual(['web-1', 'web-2', 'web-3'])
    expect(picks.slice(3, 6)).toEqual(picks.slice(0, 3))
    expect(picks.slice(6, 9)).toEqual(picks.slice(0, 3))
  })

  it('Given no instance, When picking, Then undefined; and after one is added, Then that one', async () => {
    // Given
    const { source, resolver } = setup([])
    // When / Then
    expect(resolver.pick()).toBeUndefined()
    source.put(instance('web-1'))
    await flush()
    expect(resolver.pick()?.id).toBe('web-1')
    expect(resolver.pick()?.id).toBe('web-1')
  })

  it('Given a served table, When the source disconnects, Then the table is kept, disconnected is emitted once, and reconnected after the resync', async () => {
    // Given
    const { source, resolver, changes } = setup([instance('web-1'), instance('web-2')])
    const events: string[] = []
    resolver.on('disconnected', () => events.push('disconnected'))
    resolver.on('reconnected', () => events.push('reconnected'))
    // When: the watch breaks (twice: a failed relist reports it again)
    source.emit('disconnected', new Error('unavailable'))
    source.emit('disconnected', new Error('still unavailable'))
    await flush()
    const whileDown = { ids: resolver.instances().map((i) => i.id), connected: resolver.connected, pick: resolver.pick() !== undefined }
    // When: the relist after the reconnect found web-2 gone
    source.remove('web-2')
    source.emit('resynced', '99')
    // Then
    expect(whileDown).toEqual({ ids: ['web-1', 'web-2'], connected: false, pick: true })
    expect(events).toEqual(['disconnected', 'reconnected'])
    expect(resolver.connected).toBe(true)
    expect(resolver.instances().map((i) => i.id)).toEqual(['web-1'])
    expect(changes).toEqual([['web-1']])
  })

  it('Given a resolver, When closed, Then it no longer follows the source and close can be called again', async () => {
    // Given
    let closes = 0
    const source = new FakeSource()
    const resolver = new Resolver('web', source as unknown as InstanceSource, HEALTHY, () => void closes++)
    const changes: unknown[] = []
    resolver.on('change', (i) => changes.push(i))
    // When
    await resolver.close()
    await resolver.close()
    source.put(instance('web-1'))
    await flush()
    // Then
    expect(closes).toBe(1)
    expect(changes).toEqual([])
    expect(source.listenerCount('put')).toBe(0)
  })
})
