import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { UnavailableError, UsageError } from '../../src/core/errors.js'
import type { HealthStatus } from '../../src/core/model.js'
import { Registry } from '../../src/core/registry.js'
import { createResolver, type Resolver } from '../../src/core/resolver/resolver.js'
import { registerSelf, type SelfRegistration } from '../../src/core/resolver/register-self.js'
import { etcdctl, uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { instanceRecord } from '../support/instance-fixtures.js'
import { getKv, leaseTimeToLive } from './registry-support.js'
import { ids, sameIds, tableWhere } from './resolver-support.js'

/**
 * The consumer library against the real 3-member cluster, one prefix per test: the resolver's
 * table follows registrations, removals and health within moments, filters by health and
 * tags, round-robins; registerSelf writes a lease-bound record and close() removes it at once.
 */
const env = testEnv()
const etcdEndpoints = env.etcdEndpoints.map((e) => e.replace(/^http:\/\//, ''))
const prefixes: string[] = []
const closers: (() => Promise<void> | void)[] = []

function freshPrefix(): string {
  const prefix = uniquePrefix('resolver')
  prefixes.push(prefix)
  return prefix
}

async function resolverFor(service: string, prefix: string, options: { healthyOnly?: boolean; tags?: string[] } = {}): Promise<Resolver> {
  // host:port endpoints, as ETCDCTL_ENDPOINTS gives them: normalised like the CLI does.
  const resolver = await createResolver(service, { etcdEndpoints, prefix, ...options })
  closers.push(() => resolver.close())
  return resolver
}

function openRegistry(prefix: string): Registry {
  const registry = Registry.open({ endpoints: env.etcdEndpoints }, prefix)
  closers.push(() => registry.close())
  return registry
}

const record = (id: string, port: number, status: HealthStatus = 'passing', extra: { tags?: string[]; service?: string } = {}) =>
  instanceRecord({ id, service: extra.service ?? 'web', port, status, tags: extra.tags ?? [], source: 'manual', node: 'test' })

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

afterAll(async () => {
  for (const prefix of prefixes) await etcdctl(['del', '--prefix', `${prefix}/`])
})

describe('createResolver follows the registry', () => {
  it('Given a resolver on an empty service, When instances are registered and removed, Then each shows in the table moments later, and other services never do', async ({ annotate }) => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    const resolver = await resolverFor('web', prefix)
    expect(resolver.instances()).toEqual([])
    // When: a registration, and a service whose name starts the same
    await registry.putInstance(record('web-2', 8002, 'passing', { service: 'web2' }))
    let since = performance.now()
    await registry.putInstance(record('web-1', 8001))
    const added = await tableWhere(resolver, sameIds(['web-1']), 5_000, 'web-1 to appear', since)
    since = performance.now()
    await registry.putInstance(record('web-3', 8003))
    const second = await tableWhere(resolver, sameIds(['web-1', 'web-3']), 5_000, 'web-3 to appear', since)
    // When: a removal
    since = performance.now()
    await registry.deleteInstance('web', 'web-1')
    const removed = await tableWhere(resolver, sameIds(['web-3']), 5_000, 'web-1 to go', since)
    // Then
    expect(added.instances[0]).toMatchObject({ id: 'web-1', address: '127.0.0.1', port: 8001 })
    await annotate(`registration seen ${added.ms} ms and ${second.ms} ms, removal ${removed.ms} ms after the etcd write was sent`)
    expect(resolver.connected).toBe(true)
  })

  it('Given a service that already has instances, When a resolver is created, Then its table is complete when the promise resolves', async () => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    for (let i = 1; i <= 20; i++) await registry.putInstance(record(`web-${String(i).padStart(2, '0')}`, 8000 + i))
    // When
    const resolver = await resolverFor('web', prefix)
    // Then
    expect(resolver.size).toBe(20)
    expect(ids(resolver.instances())).toEqual(Array.from({ length: 20 }, (_, i) => `web-${String(i + 1).padStart(2, '0')}`))
  })

  it('Given two passing instances, When one turns critical and later passing again, Then it leaves the healthy table and rejoins it, while an all-health resolver keeps it', async ({ annotate }) => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    await registry.putInstance(record('web-1', 8001))
    await registry.putInstance(record('web-2', 8002))
    const healthy = await resolverFor('web', prefix)
    const all = await resolverFor('web', prefix, { healthyOnly: false })
    // When
    let since = performance.now()
    await registry.putInstance(record('web-2', 8002, 'critical'))
    const excluded = await tableWhere(healthy, sameIds(['web-1']), 5_000, 'critical web-2 to leave', since)
    const allDuring = await tableWhere(all, (list) => list.find((i) => i.id === 'web-2')?.health.status === 'critical', 5_000, 'web-2 critical in the all-health table')
    since = performance.now()
    await registry.putInstance(record('web-2', 8002, 'passing'))
    const included = await tableWhere(healthy, sameIds(['web-1', 'web-2']), 5_000, 'passing web-2 to return', since)
    // Then
    expect(ids(allDuring.instances)).toEqual(['web-1', 'web-2'])
    expect(ids(included.instances)).toEqual(['web-1', 'web-2'])
    await annotate(`critical excluded ${excluded.ms} ms, passing included ${included.ms} ms after the write was sent`)
  })

  it.each([
    ['warning', false],
    ['unknown', false],
    ['critical', false],
    ['passing', true],
  ] as const)('Given an instance whose health is %s, When resolved healthy-only, Then it is served: %s', async (status, served) => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    await registry.putInstance(record('web-1', 8001, status))
    // When
    const resolver = await resolverFor('web', prefix)
    // Then
    expect(resolver.size).toBe(served ? 1 : 0)
  })

  it('Given instances with tags, When resolved with a tags filter, Then only those carrying every tag are served, and a retag moves one in', async () => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    await registry.putInstance(record('web-1', 8001, 'passing', { tags: ['v2', 'eu'] }))
    await registry.putInstance(record('web-2', 8002, 'passing', { tags: ['v2'] }))
    await registry.putInstance(record('web-3', 8003, 'passing', { tags: ['eu'] }))
    // When
    const resolver = await resolverFor('web', prefix, { tags: ['v2', 'eu'] })
    const before = ids(resolver.instances())
    await registry.putInstance(record('web-3', 8003, 'passing', { tags: ['eu', 'v2'] }))
    // Then
    expect(before).toEqual(['web-1'])
    await tableWhere(resolver, sameIds(['web-1', 'web-3']), 5_000, 'retagged web-3 to join')
  })

  it('Given three instances, When picked 30 times, Then every instance is picked 10 times in a repeating order; with none, pick() is undefined', async () => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    for (const [i, id] of ['web-a', 'web-b', 'web-c'].entries()) await registry.putInstance(record(id, 8001 + i))
    const resolver = await resolverFor('web', prefix)
    // When
    const picks = Array.from({ length: 30 }, () => resolver.pick()!.id)
    // Then
    const counts = Object.fromEntries(['web-a', 'web-b', 'web-c'].map((id) => [id, picks.filter((p) => p === id).length]))
    expect(counts).toEqual({ 'web-a': 10, 'web-b': 10, 'web-c': 10 })
    for (let i = 3; i < 30; i++) expect(picks[i]).toBe(picks[i - 3])
    const empty = await resolverFor('nothing', prefix)
    expect(empty.pick()).toBeUndefined()
  })

  it('Given a record that is not a valid instance under the service, When resolved, Then it is reported as a problem and left out', async () => {
    // Given
    const prefix = freshPrefix()
    const registry = openRegistry(prefix)
    await registry.putInstance(record('web-1', 8001))
    const resolver = await resolverFor('web', prefix)
    const problems: string[] = []
    resolver.on('problem', (key) => problems.push(key))
    // When
    await etcdctl(['put', `${prefix}/services/web/garbage`, 'not json'])
    await registry.putInstance(record('web-2', 8002))
    // Then
    await tableWhere(resolver, sameIds(['web-1', 'web-2']), 5_000, 'web-2 to appear')
    expect(problems).toEqual([`${prefix}/services/web/garbage`])
  })

  it('Given bad options or no etcd, When a resolver is created, Then a UsageError or an UnavailableError naming the endpoint is thrown', async () => {
    // When / Then
    await expect(createResolver('Not_A_Service', { etcdEndpoints })).rejects.toThrow(UsageError)
    await expect(createResolver('web', { etcdEndpoints: 'http://127.0.0.1:2379/v3' })).rejects.toThrow(/has a path/)
    await expect(createResolver('web', { etcdEndpoints, prefix: 'relative' })).rejects.toThrow(/must start with \//)
    const unreachable = createResolver('web', { etcdEndpoints: '127.0.0.1:1' })
    await expect(unreachable).rejects.toThrow(UnavailableError)
    await expect(unreachable).rejects.toThrow(/loading the instances of web failed at http:\/\/127\.0\.0\.1:1: connection refused/)
  })
})

describe('registerSelf', () => {
  const registrations: SelfRegistration[] = []
  afterEach(async () => {
    for (const registration of registrations.splice(0)) await registration.close()
  })

  it('Given a resolver, When a program registers itself and later closes, Then a lease-bound manual record appears and vanishes at once, its lease revoked', async ({ annotate }) => {
    // Given
    const prefix = freshPrefix()
    const resolver = await resolverFor('api', prefix)
    // When
    let since = performance.now()
    const self = await registerSelf({ service: 'api', address: '127.0.0.1', port: 9100, meta: { version: '1.2.3' }, tags: ['v1'], ttl: '5s', node: 'host-1', etcdEndpoints, prefix })
    registrations.push(self)
    const seen = await tableWhere(resolver, sameIds(['api-127.0.0.1-9100']), 5_000, 'the self-registration', since)
    const kv = await getKv(`${prefix}/services/api/api-127.0.0.1-9100`)
    // Then: the record, bound to a live lease with the TTL asked for
    expect(self.id).toBe('api-127.0.0.1-9100')
    expect(self.key).toBe(`${prefix}/services/api/api-127.0.0.1-9100`)
    expect(seen.instances[0]).toMatchObject({ service: 'api', address: '127.0.0.1', port: 9100, meta: { version: '1.2.3' }, tags: ['v1'], node: 'host-1', source: 'manual', health: { status: 'passing' } })
    expect(kv!.lease).toBe(BigInt(`0x${BigInt(self.leaseId!).toString(16)}`).toString())
    expect((await leaseTimeToLive(kv!.lease))?.granted).toBe(5)
    // When: close revokes the lease
    since = performance.now()
    await self.close()
    const gone = await tableWhere(resolver, sameIds([]), 5_000, 'the record to vanish on close', since)
    // Then
    expect(await getKv(self.key)).toBeUndefined()
    expect(await leaseTimeToLive(kv!.lease)).toBeUndefined()
    await self.close()
    await annotate(`registerSelf → seen by the resolver in ${seen.ms} ms (connect, grant, put included); close() → gone in ${gone.ms} ms`)
  })

  it('Given a registration on a 2 s lease, When 3 TTLs pass, Then the keepalive kept the record', async () => {
    // Given
    const prefix = freshPrefix()
    const self = await registerSelf({ service: 'api', address: '127.0.0.1', port: 9101, ttl: 2, etcdEndpoints, prefix })
    registrations.push(self)
    // When
    await new Promise((resolve) => setTimeout(resolve, 6_000))
    // Then
    expect(await getKv(self.key)).toBeDefined()
  })

  it.each([
    ['a bad port', { port: 0 }, /^port '0' is not a port number/],
    ['a bad address', { address: '999.1.1.1' }, /^address '999.1.1.1' is not/],
    ['a bad meta key', { meta: { 'a b': 'x' } }, /^meta key 'a b' may hold only/],
    ['a bad ttl', { ttl: 'soon' }, /^ttl: 'soon' is not a duration/],
    ['both checks', { check: { http: 'http://127.0.0.1:1/', tcp: true } }, /^check.http and check.tcp are exclusive/],
    ['a bad service', { service: 'API' }, /^service name 'API'/],
  ])('Given %s, When registering self, Then a UsageError names the option and nothing is written', async (_what, override, message) => {
    // Given
    const prefix = freshPrefix()
    // When
    const attempt = registerSelf({ service: 'api', address: '127.0.0.1', port: 9102, etcdEndpoints, prefix, ...override })
    // Then
    await expect(attempt).rejects.toThrow(UsageError)
    await expect(attempt).rejects.toThrow(message)
    expect(await etcdctl(['get', '--prefix', '--keys-only', `${prefix}/`])).toBe('')
  })

  it('Given no etcd, When registering self, Then an UnavailableError names the endpoint', async () => {
    // When / Then
    await expect(registerSelf({ service: 'api', address: '127.0.0.1', port: 9103, etcdEndpoints: '127.0.0.1:1' })).rejects.toThrow(
      /registering api\/api-127.0.0.1-9103 failed at http:\/\/127\.0\.0\.1:1: connection refused/,
    )
  })
})

describe('the library over TLS with a client certificate and a password', () => {
  it('Given the TLS etcd, When a program registers itself and a resolver follows the service with the same options, Then the resolver sees it come and go', async () => {
    // Given
    const prefix = freshPrefix()
    const { tls } = env
    const connection = { etcdEndpoints: tls.endpoint.replace(/^https:\/\//, ''), cacert: tls.ca, cert: tls.cert, key: tls.key, user: `${tls.user}:${tls.password}`, prefix }
    const resolver = await createResolver('secure', connection)
    closers.push(() => resolver.close())
    // When
    const self = await registerSelf({ service: 'secure', address: '127.0.0.1', port: 9443, ...connection })
    await tableWhere(resolver, sameIds(['secure-127.0.0.1-9443']), 5_000, 'the TLS registration')
    await self.close()
    // Then
    await tableWhere(resolver, sameIds([]), 5_000, 'the TLS registration to go')
  })

  it('Given the TLS etcd and a wrong password, When a resolver is created, Then an UnavailableError says authentication failed', async () => {
    // Given
    const { tls } = env
    // When / Then
    await expect(createResolver('secure', { etcdEndpoints: tls.endpoint, cacert: tls.ca, cert: tls.cert, key: tls.key, user: tls.user, password: 'wrong' })).rejects.toThrow(/authentication failed/)
  })
})
