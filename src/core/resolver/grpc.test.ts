import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../model.js'
import type { PrefixMirrorEvents } from '../prefix-mirror.js'
import { discoveryResolverClass, serviceFromTarget, type GrpcModule, type ResolverListener, type ResolverPool, type StatusOr, type GrpcEndpoint } from './grpc.js'
import { Resolver, type InstanceSource } from './resolver.js'

/**
 * The grpc-js resolver class against a fake pool: what it sends to the channel's listener,
 * when, and that it releases what it acquired. The real grpc-js channel is in
 * test/integration/resolver-grpc.test.ts.
 */
const fakeGrpc: GrpcModule = {
  experimental: { registerResolver: () => undefined },
  status: { UNAVAILABLE: 14 },
  Metadata: class {},
}

class Source extends EventEmitter<PrefixMirrorEvents<InstanceRecord>> {
  records: InstanceRecord[] = []
  isConnected = true
  list() {
    return this.records.map((value) => ({ key: value.id, value, modRevision: '1', lease: '0' }))
  }
  set(records: InstanceRecord[]): void {
    this.records = records
    this.emit('resynced', '1')
  }
}

function record(id: string, port: number, meta: Record<string, string> = {}): InstanceRecord {
  const at = '2026-01-01T00:00:00.000Z'
  return {
    schema: 1, id, service: 'web', address: '127.0.0.1', port, tags: [], meta, node: 'n', source: 'manual',
    health: { status: 'passing', output: '', updatedAt: at, since: at }, registeredAt: at, updatedAt: at,
  }
}

interface Delivery {
  result: StatusOr<GrpcEndpoint[]>
  config: unknown
  note: string
}

function setup(options: { fail?: number } = {}) {
  const source = new Source()
  const resolver = new Resolver('web', source as unknown as InstanceSource, { healthyOnly: true, tags: [] })
  const calls = { acquire: [] as string[], release: [] as string[] }
  let failures = options.fail ?? 0
  const pool: ResolverPool = {
    acquire: async (service) => {
      calls.acquire.push(service)
      if (failures-- > 0) throw new Error('connection refused')
      return resolver
    },
    release: (service) => void calls.release.push(service),
  }
  const deliveries: Delivery[] = []
  const listener: ResolverListener = (result, _attributes, config, note) => {
    deliveries.push({ result, config, note })
    return true
  }
  const Class = discoveryResolverClass(fakeGrpc, pool, { loadBalancing: 'round_robin' })
  return { source, resolver, calls, deliveries, listener, Class }
}

const ticks = async (n = 3): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}
const addresses = (d: Delivery): string[] | string =>
  d.result.ok ? d.result.value.map((e) => `${e.addresses[0].host}:${e.addresses[0].port}`) : `error ${d.result.error.code}: ${d.result.error.details}`

describe('serviceFromTarget', () => {
  it.each([
    [{ scheme: 'discovery', authority: '', path: 'web' }, 'web'],
    [{ scheme: 'discovery', path: 'billing.api' }, 'billing.api'],
    [{ scheme: 'discovery', path: '/web' }, 'web'],
  ])('Given target %j, When parsed, Then the service is %s', (target, service) => {
    expect(serviceFromTarget(target)).toBe(service)
  })
})

describe('discovery grpc-js resolver', () => {
  it('Given two instances, When the channel asks once, Then both endpoints arrive (not synchronously) with the round_robin config', async () => {
    // Given
    const { source, deliveries, listener, Class, calls } = setup()
    source.set([record('web-1', 8001), record('web-2', 8002)])
    // When
    const channelResolver = new Class({ scheme: 'discovery', authority: '', path: 'web' }, listener, {})
    channelResolver.updateResolution()
    const synchronously = deliveries.length
    await ticks()
    // Then
    expect(synchronously).toBe(0)
    expect(calls.acquire).toEqual(['web'])
    expect(deliveries.map(addresses)).toEqual([['127.0.0.1:8001', '127.0.0.1:8002']])
    expect(deliveries[0].config).toEqual({ ok: true, value: { loadBalancingConfig: [{ round_robin: {} }], methodConfig: [] } })
    expect(Class.getDefaultAuthority({ scheme: 'discovery', path: 'web' })).toBe('web')
  })

  it('Given a resolving channel, When an instance goes, only meta changes, or the channel asks again, Then only the address change is sent', async () => {
    // Given
    const { source, deliveries, listener, Class } = setup()
    source.set([record('web-1', 8001), record('web-2', 8002)])
    const channelResolver = new Class({ scheme: 'discovery', path: 'web' }, listener, {})
    channelResolver.updateResolution()
    await ticks()
    // When
    source.set([record('web-1', 8001, { version: '2' }), record('web-2', 8002)])
    await ticks()
    channelResolver.updateResolution()
    await ticks()
    source.set([record('web-1', 8001, { version: '2' })])
    await ticks()
    // Then
    expect(deliveries.map(addresses)).toEqual([['127.0.0.1:8001', '127.0.0.1:8002'], ['127.0.0.1:8001']])
  })

  it('Given a resolving channel, When the last instance goes, Then an empty list and then an UNAVAILABLE error are sent under round_robin, naming the service', async () => {
    // Given
    const { source, deliveries, listener } = setup()
    const Class = discoveryResolverClass(fakeGrpc, {
      acquire: async () => new Resolver('web', source as unknown as InstanceSource, { healthyOnly: true, tags: [] }),
      release: () => undefined,
    })
    source.set([record('web-1', 8001)])
    const channelResolver = new Class({ scheme: 'discovery', path: 'web' }, listener, {})
    channelResolver.updateResolution()
    await ticks()
    // When
    source.set([])
    await ticks()
    // Then
    expect(deliveries.map(addresses)).toEqual([['127.0.0.1:8001'], [], "error 14: discovery: no healthy instances of 'web'"])
    expect(deliveries[0].config).toBeNull()
    expect(deliveries[1].config).toEqual({ ok: true, value: { loadBalancingConfig: [{ round_robin: {} }], methodConfig: [] } })
    expect(deliveries[2].note).toBe("discovery: no healthy instances of 'web'")
  })

  it('Given a resolving channel, When destroyed, Then it releases once, sends nothing more, and a later updateResolution follows again', async () => {
    // Given
    const { source, deliveries, listener, Class, calls } = setup()
    source.set([record('web-1', 8001)])
    const channelResolver = new Class({ scheme: 'discovery', path: 'web' }, listener, {})
    channelResolver.updateResolution()
    await ticks()
    // When
    channelResolver.destroy()
    channelResolver.destroy()
    source.set([record('web-1', 8001), record('web-2', 8002)])
    await ticks()
    const afterDestroy = deliveries.length
    channelResolver.updateResolution()
    await ticks()
    // Then
    expect(calls.release).toEqual(['web'])
    expect(afterDestroy).toBe(1)
    expect(calls.acquire).toEqual(['web', 'web'])
    expect(deliveries.map(addresses).at(-1)).toEqual(['127.0.0.1:8001', '127.0.0.1:8002'])
  })

  it('Given a channel destroyed while the resolver is still loading, When it loads, Then it is released at once and nothing is sent', async () => {
    // Given
    const { deliveries, listener, Class, calls } = setup()
    const channelResolver = new Class({ scheme: 'discovery', path: 'web' }, listener, {})
    // When
    channelResolver.updateResolution()
    channelResolver.destroy()
    await ticks()
    // Then
    expect(calls.release).toEqual(['web'])
    expect(deliveries).toEqual([])
  })

  it('Given etcd unreachable at first, When the channel asks, Then an UNAVAILABLE error is sent and it retries on its own until the list arrives', async () => {
    // Given
    const { source, deliveries, listener, Class, calls } = setup({ fail: 1 })
    source.set([record('web-1', 8001)])
    const channelResolver = new Class({ scheme: 'discovery', path: 'web' }, listener, {})
    // When
    channelResolver.updateResolution()
    await ticks()
    const first = deliveries.map(addresses)
    const deadline = Date.now() + 5_000
    while (deliveries.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    // Then
    expect(first).toEqual(["error 14: discovery: cannot load the instances of 'web': connection refused"])
    expect(calls.acquire).toEqual(['web', 'web'])
    expect(addresses(deliveries[1])).toEqual(['127.0.0.1:8001'])
    channelResolver.destroy()
  })

  it('Given a target that is no service name, When the channel asks, Then an UNAVAILABLE error says so and etcd is never asked', async () => {
    // Given
    const { deliveries, listener, Class, calls } = setup()
    const channelResolver = new Class({ scheme: 'discovery', authority: '', path: 'Bad_Name' }, listener, {})
    // When
    channelResolver.updateResolution()
    await ticks()
    // Then
    expect(calls.acquire).toEqual([])
    expect(deliveries.map(addresses)).toEqual([expect.stringMatching(/^error 14: discovery: 'Bad_Name' in target discovery:\/\/\/Bad_Name is not a service name/)])
  })

  it('Given an older grpc-js whose listener is an object, When a channel is created, Then it fails with a message naming the version needed', () => {
    // Given
    const { Class } = setup()
    // When / Then
    expect(() => new Class({ scheme: 'discovery', path: 'web' }, {} as unknown as ResolverListener, {})).toThrow(/@grpc\/grpc-js 1.14 or later/)
  })
})
