import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Etcd3 } from 'etcd3'
import { createEtcdClient } from '../../src/core/etcd.js'
import type { InstanceRecord } from '../../src/core/model.js'
import { etcdctl, etcdFlags, keysUnder, runCli, startCli, uniquePrefix, waitFor, type LiveProcess } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { getKv, leaseTimeToLive, STACK_LINE } from './registry-support.js'

/**
 * register / deregister / list against the real 3-member etcd cluster, run as the built CLI,
 * with every outcome checked through etcdctl (the registry layout is a contract, not an
 * implementation detail).
 */
const env = testEnv()
const prefixes: string[] = []
const live: LiveProcess[] = []

function freshPrefix(label: string): string {
  const prefix = uniquePrefix(label)
  prefixes.push(prefix)
  return prefix
}

afterAll(async () => {
  await Promise.all(live.map((p) => p.stop('SIGKILL', 2_000)))
  for (const prefix of prefixes) await etcdctl(['del', '--prefix', `${prefix}/`])
})

function parseRecord(value: string): InstanceRecord {
  return JSON.parse(value) as InstanceRecord
}

describe('register: the record layout (schema 1)', () => {
  it('Given register with tags, meta and a node, When it runs, Then etcdctl sees exactly one JSON record at <prefix>/services/<service>/<id>, without a lease', async () => {
    // Given
    const prefix = freshPrefix('layout')
    // When
    const result = await runCli([
      'register', 'billing', '--address', '10.0.0.5', '--port', '8080', '--tag', 'v2', '--tag', 'primary', '--tag', 'v2',
      '--meta', 'team=payments', '--meta', 'version=1.2=beta', '--node', 'host-1', ...etcdFlags(prefix),
    ])
    // Then
    expect(result, result.stderr).toMatchObject({ code: 0 })
    expect(result.stdout.trim()).toBe('billing-10.0.0.5-8080')
    expect(await keysUnder(`${prefix}/`)).toEqual([`${prefix}/services/billing/billing-10.0.0.5-8080`])
    const kv = (await getKv(`${prefix}/services/billing/billing-10.0.0.5-8080`))!
    expect(kv.lease).toBe('0')
    const record = JSON.parse(kv.value) as Record<string, unknown>
    expect(Object.keys(record).sort()).toEqual(['address', 'health', 'id', 'meta', 'node', 'port', 'registeredAt', 'schema', 'service', 'source', 'tags', 'updatedAt'])
    expect(record).toMatchObject({
      schema: 2,
      id: 'billing-10.0.0.5-8080',
      service: 'billing',
      address: '10.0.0.5',
      port: 8080,
      tags: ['v2', 'primary'],
      meta: { team: 'payments', version: '1.2=beta' },
      node: 'host-1',
      source: 'manual',
      health: { status: 'passing', output: 'no check' },
    })
    const health = record.health as Record<string, string>
    for (const at of [record.registeredAt, record.updatedAt, health.updatedAt, health.since]) {
      expect(new Date(at as string).toISOString()).toBe(at)
    }
  })

  it('Given register with --id and --check-tcp, When it runs, Then the record carries the check spec in ms and starts unknown', async () => {
    // Given
    const prefix = freshPrefix('layout-check')
    // When
    const result = await runCli([
      'register', 'db', '--address', 'db.internal', '--port', '5432', '--id', 'db-primary', '--check-tcp', '--check-interval', '5s',
      '--check-timeout', '1500ms', '--json', ...etcdFlags(prefix),
    ])
    // Then
    expect(result, result.stderr).toMatchObject({ code: 0 })
    const printed = JSON.parse(result.stdout) as InstanceRecord
    const stored = parseRecord((await getKv(`${prefix}/services/db/db-primary`))!.value)
    expect(stored).toEqual(printed)
    expect(stored.check).toEqual({
      kind: 'tcp',
      target: 'db.internal:5432',
      interval: 5000,
      timeout: 1500,
      failuresBeforeCritical: 3,
      successesBeforePassing: 1,
      initialDelay: 0,
    })
    expect(stored.health.status).toBe('unknown')
  })
})

describe('register --ttl: leases', () => {
  it('Given register --ttl 2s without --keepalive, When it exits, Then the record is bound to a 2 s lease and is gone once that expires', async () => {
    // Given
    const prefix = freshPrefix('ttl')
    const key = `${prefix}/services/web/web-1`
    // When
    const result = await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', '--ttl', '2s', ...etcdFlags(prefix)])
    // Then: it returns at once, leaving a record on a lease with the TTL asked for
    expect(result, result.stderr).toMatchObject({ code: 0 })
    const kv = await getKv(key)
    expect(kv).toBeDefined()
    expect(kv!.lease).not.toBe('0')
    const ttl = await leaseTimeToLive(kv!.lease)
    expect(ttl?.granted).toBe(2)
    // … and nobody keeps it alive: it expires (TTL plus generous slack for a loaded machine)
    await waitFor(async () => (await getKv(key)) === undefined, 15_000, 'the record to expire with its lease')
    expect(await leaseTimeToLive(kv!.lease)).toBeUndefined()
  })

  it('Given register --ttl 2s --keepalive, When several TTLs pass, Then the record stays on the same lease; When SIGTERM, Then the lease is revoked and the record is gone by the time the process exits 0', async () => {
    // Given
    const prefix = freshPrefix('keepalive')
    const key = `${prefix}/services/worker/worker-1`
    const proc = startCli(['register', 'worker', '--address', '10.0.0.7', '--port', '9000', '--id', 'worker-1', '--ttl', '2s', '--keepalive', ...etcdFlags(prefix)])
    live.push(proc)
    await waitFor(() => proc.stdout.includes('worker-1'), 15_000, 'register to print the id')
    const first = (await getKv(key))!
    expect(first.lease).not.toBe('0')
    expect(proc.stderr).toContain(`keeping lease ${BigInt(first.lease).toString(16)} alive`)
    // When: three TTLs pass
    await new Promise((resolve) => setTimeout(resolve, 6_000))
    // Then: still there, on the same lease, and the lease is being renewed
    const later = await getKv(key)
    expect(later?.lease).toBe(first.lease)
    expect(later?.modRevision).toBe(first.modRevision)
    const ttl = await leaseTimeToLive(first.lease)
    expect(ttl?.remaining).toBeGreaterThan(0)
    // When: SIGTERM
    const code = await proc.stop('SIGTERM')
    // Then: a clean exit, and the lease was revoked before it (an expiry would leave the key for up to 2 s more)
    expect(code).toBe(0)
    expect(await getKv(key)).toBeUndefined()
    expect(await leaseTimeToLive(first.lease)).toBeUndefined()
    expect(proc.stderr).not.toMatch(STACK_LINE)
  })

  it('Given register --ttl 60s --keepalive, When SIGINT, Then the record vanishes at once rather than after the TTL', async () => {
    // Given
    const prefix = freshPrefix('sigint')
    const key = `${prefix}/services/worker/worker-2`
    const proc = startCli(['register', 'worker', '--address', '10.0.0.7', '--port', '9001', '--id', 'worker-2', '--ttl', '60s', '--keepalive', ...etcdFlags(prefix)])
    live.push(proc)
    await waitFor(() => proc.stdout.includes('worker-2'), 15_000, 'register to print the id')
    expect(await getKv(key)).toBeDefined()
    // When
    const code = await proc.stop('SIGINT')
    // Then
    expect(code).toBe(0)
    expect(await getKv(key)).toBeUndefined()
  })
})

describe('re-register', () => {
  it('Given an instance, When the same id is registered again with other data, Then the one key holds the new record', async () => {
    // Given
    const prefix = freshPrefix('rereg')
    const first = await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', '--tag', 'old', ...etcdFlags(prefix)])
    expect(first, first.stderr).toMatchObject({ code: 0 })
    // When
    const second = await runCli(['register', 'web', '--address', '10.0.0.2', '--port', '81', '--id', 'web-1', '--tag', 'new', ...etcdFlags(prefix)])
    // Then
    expect(second, second.stderr).toMatchObject({ code: 0 })
    expect(await keysUnder(`${prefix}/`)).toEqual([`${prefix}/services/web/web-1`])
    const record = parseRecord((await getKv(`${prefix}/services/web/web-1`))!.value)
    expect(record).toMatchObject({ address: '10.0.0.2', port: 81, tags: ['new'] })
  })

  it('Given an instance on a 2 s lease, When it is registered again without --ttl, Then it becomes persistent and outlives the lease', async () => {
    // Given
    const prefix = freshPrefix('rereg-ttl')
    const key = `${prefix}/services/web/web-1`
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', '--ttl', '2s', ...etcdFlags(prefix)])
    const leased = (await getKv(key))!
    expect(leased.lease).not.toBe('0')
    // When
    const again = await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', ...etcdFlags(prefix)])
    expect(again, again.stderr).toMatchObject({ code: 0 })
    // Then: no lease, and still there after the old lease is gone
    expect((await getKv(key))?.lease).toBe('0')
    await waitFor(async () => (await leaseTimeToLive(leased.lease)) === undefined, 15_000, 'the old lease to expire')
    expect(await getKv(key)).toBeDefined()
  })

  it('Given a persistent instance, When it is registered again with --ttl 2s, Then it moves onto the lease and expires with it', async () => {
    // Given
    const prefix = freshPrefix('rereg-lease')
    const key = `${prefix}/services/web/web-1`
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', ...etcdFlags(prefix)])
    expect((await getKv(key))?.lease).toBe('0')
    // When
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', '--ttl', '2s', ...etcdFlags(prefix)])
    // Then
    expect((await getKv(key))?.lease).not.toBe('0')
    await waitFor(async () => (await getKv(key)) === undefined, 15_000, 'the record to expire')
  })
})

describe('deregister and its exit codes', () => {
  it('Given an instance, When deregistered, Then exit 0 and the key is gone; When again, Then exit 1 naming it; with --missing-ok exit 0', async () => {
    // Given
    const prefix = freshPrefix('dereg')
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', ...etcdFlags(prefix)])
    await runCli(['register', 'web', '--address', '10.0.0.2', '--port', '80', '--id', 'web-2', ...etcdFlags(prefix)])
    // When
    const removed = await runCli(['deregister', 'web', 'web-1', ...etcdFlags(prefix)])
    // Then: only that instance is gone
    expect(removed, removed.stderr).toMatchObject({ code: 0 })
    expect(removed.stdout.trim()).toBe('removed web/web-1')
    expect(await keysUnder(`${prefix}/`)).toEqual([`${prefix}/services/web/web-2`])
    // When: it is no longer there
    const missing = await runCli(['deregister', 'web', 'web-1', ...etcdFlags(prefix)])
    // Then
    expect(missing.code).toBe(1)
    expect(missing.stdout).toBe('')
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)
    expect(missing.stderr).toContain('web-1')
    expect(missing.stderr).toContain('web')
    expect(missing.stderr).toMatch(/--missing-ok/)
    const tolerated = await runCli(['deregister', 'web', 'web-1', '--missing-ok', ...etcdFlags(prefix)])
    expect(tolerated, tolerated.stderr).toMatchObject({ code: 0 })
    expect(tolerated.stdout.trim()).toBe('web/web-1 was not registered')
  })

  it('Given --json, When deregistering an existing and a missing instance, Then the result and the error are JSON on stdout with exit 0 and 1', async () => {
    // Given
    const prefix = freshPrefix('dereg-json')
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-1', ...etcdFlags(prefix)])
    // When
    const removed = await runCli(['deregister', 'web', 'web-1', '--json', ...etcdFlags(prefix)])
    const missing = await runCli(['deregister', 'web', 'web-1', '--json', ...etcdFlags(prefix)])
    // Then
    expect(removed.code).toBe(0)
    expect(JSON.parse(removed.stdout)).toEqual({ service: 'web', id: 'web-1', removed: true })
    expect(missing.code).toBe(1)
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { kind: 'negative', exitCode: 1 } })
  })

  it('Given a bad id or an unreachable etcd, When deregistering, Then exit 2 and 3 respectively, one line each', async () => {
    const prefix = freshPrefix('dereg-codes')
    // Given a bad id — When — Then
    const bad = await runCli(['deregister', 'web', 'a/b', ...etcdFlags(prefix)])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("'a/b'")
    // Given etcd unreachable — When — Then
    const down = await runCli(['deregister', 'web', 'web-1', '--etcd-endpoints', '127.0.0.1:1', '--prefix', prefix])
    expect(down.code).toBe(3)
    expect(down.stderr.trim().split('\n')).toHaveLength(1)
  })
})

describe('list filters', () => {
  const prefix = uniquePrefix('filters')
  prefixes.push(prefix)
  const flags = (): string[] => etcdFlags(prefix)

  beforeAll(async () => {
    // Given four instances across services, nodes, tags and health states
    const results = await Promise.all([
      runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-a', '--node', 'n1', '--tag', 'v1', '--tag', 'primary', ...flags()]),
      runCli(['register', 'web', '--address', '10.0.0.2', '--port', '80', '--id', 'web-b', '--node', 'n2', '--tag', 'v2', '--check-tcp', ...flags()]),
      runCli(['register', 'api', '--address', '10.0.0.3', '--port', '81', '--id', 'api-c', '--node', 'n1', '--tag', 'v2', ...flags()]),
    ])
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 })
    // A critical instance as the leader's checks would leave it, written straight to etcd.
    const now = new Date().toISOString()
    const critical: InstanceRecord = {
      schema: 1, id: 'db-d', service: 'db', address: '10.0.0.4', port: 5432, tags: ['primary'], meta: {}, node: 'n2', source: 'manual',
      health: { status: 'critical', output: 'connect ECONNREFUSED', updatedAt: now, since: now }, registeredAt: now, updatedAt: now,
    }
    await etcdctl(['put', `${prefix}/services/db/db-d`, JSON.stringify(critical)])
  })

  async function listIds(...args: string[]): Promise<string[]> {
    const result = await runCli(['list', ...args, '--json', ...flags()])
    expect(result, result.stderr).toMatchObject({ code: 0 })
    return (JSON.parse(result.stdout) as InstanceRecord[]).map((r) => `${r.service}/${r.id}`)
  }

  it.each([
    { args: [], expected: ['api/api-c', 'db/db-d', 'web/web-a', 'web/web-b'], what: 'no filter: everything, sorted by service then id' },
    { args: ['web'], expected: ['web/web-a', 'web/web-b'], what: 'a service' },
    { args: ['nosuch'], expected: [], what: 'a service with no instances' },
    { args: ['--healthy'], expected: ['api/api-c', 'web/web-a'], what: '--healthy: passing only (not unknown, not critical)' },
    { args: ['--tag', 'v2'], expected: ['api/api-c', 'web/web-b'], what: 'one tag' },
    { args: ['--tag', 'primary', '--tag', 'v1'], expected: ['web/web-a'], what: 'two tags: all must match' },
    { args: ['--tag', 'v1', '--tag', 'v2'], expected: [], what: 'two tags nobody has together' },
    { args: ['--node', 'n2'], expected: ['db/db-d', 'web/web-b'], what: 'a node' },
    { args: ['web', '--healthy', '--node', 'n1'], expected: ['web/web-a'], what: 'service, health and node together' },
    { args: ['db', '--tag', 'primary'], expected: ['db/db-d'], what: 'service and tag' },
  ])('Given four instances, When listing with $what, Then exactly $expected', async ({ args, expected }) => {
    expect(await listIds(...args)).toEqual(expected)
  })

  it('Given the same instances, When listing as a table, Then a header and one row per instance with health as a word', async () => {
    const result = await runCli(['list', '--tag', 'primary', ...flags()])
    expect(result, result.stderr).toMatchObject({ code: 0 })
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^SERVICE\s+ID\s+ADDRESS\s+HEALTH\s+NODE\s+TAGS\s+AGE$/)
    expect(lines).toHaveLength(3)
    expect(lines[1]).toMatch(/^db\s+db-d\s+10\.0\.0\.4:5432\s+critical\s+n2\s+primary\s+\d+s$/)
    expect(lines[2]).toMatch(/^web\s+web-a\s+10\.0\.0\.1:80\s+passing\s+n1\s+v1,primary\s+\d+s$/)
  })

  it('Given a corrupt value and a record at the wrong key under the prefix, When listing, Then both are skipped with a warning and the rest listed', async () => {
    // Given
    const local = freshPrefix('corrupt')
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-ok', ...etcdFlags(local)])
    await etcdctl(['put', `${local}/services/web/broken`, '{not json'])
    const misplaced = (await getKv(`${local}/services/web/web-ok`))!.value
    await etcdctl(['put', `${local}/services/api/web-ok`, misplaced])
    // When
    const result = await runCli(['list', '--json', ...etcdFlags(local)])
    // Then
    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as InstanceRecord[]).map((r) => r.id)).toEqual(['web-ok'])
    expect(result.stderr).toContain(`${local}/services/web/broken: not JSON`)
    expect(result.stderr).toContain(`${local}/services/api/web-ok`)
  })
})

describe('list --watch', () => {
  let client: Etcd3
  beforeAll(() => {
    client = createEtcdClient({ endpoints: env.etcdEndpoints })
  })
  afterAll(() => client.close())

  function record(id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
    const now = new Date().toISOString()
    return {
      schema: 1, id, service: 'web', address: '10.0.0.9', port: 80, tags: [], meta: {}, node: 'n1', source: 'manual',
      health: { status: 'passing', output: 'no check', updatedAt: now, since: now }, registeredAt: now, updatedAt: now, ...overrides,
    }
  }

  type Change = { type: string; instance?: InstanceRecord; count?: number }
  const changes = (proc: LiveProcess): Change[] => proc.lines().map((line) => JSON.parse(line) as Change)
  const changeFor = (proc: LiveProcess, type: string, id: string): Change | undefined => changes(proc).find((c) => c.type === type && c.instance?.id === id)

  it('Given one instance and list --watch --json, When instances are added and removed, Then it prints the current set, then each add and removal within a second', async () => {
    // Given
    const prefix = freshPrefix('watch')
    await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'web-0', ...etcdFlags(prefix)])
    const proc = startCli(['list', '--watch', '--json', ...etcdFlags(prefix)])
    live.push(proc)
    await waitFor(() => changes(proc).some((c) => c.type === 'ready'), 15_000, 'the ready line')
    expect(changes(proc)).toMatchObject([{ type: 'added', instance: { id: 'web-0' } }, { type: 'ready', count: 1 }])

    // When: an instance is written
    let start = performance.now()
    await client.put(`${prefix}/services/web/web-1`).value(JSON.stringify(record('web-1')))
    // Then: added, within a second of the write
    await waitFor(() => changeFor(proc, 'added', 'web-1'), 5_000, 'the added line', 10)
    const addedAfter = performance.now() - start
    expect(addedAfter).toBeLessThan(1_000)

    // When: it is removed
    start = performance.now()
    await client.delete().key(`${prefix}/services/web/web-1`)
    // Then
    await waitFor(() => changeFor(proc, 'removed', 'web-1'), 5_000, 'the removed line', 10)
    const removedAfter = performance.now() - start
    expect(removedAfter).toBeLessThan(1_000)

    // When: the CLI registers and deregisters
    expect((await runCli(['register', 'web', '--address', '10.0.0.2', '--port', '80', '--id', 'web-2', ...etcdFlags(prefix)])).code).toBe(0)
    await waitFor(() => changeFor(proc, 'added', 'web-2'), 5_000, 'web-2 added')
    expect((await runCli(['deregister', 'web', 'web-2', ...etcdFlags(prefix)])).code).toBe(0)
    // Then
    await waitFor(() => changeFor(proc, 'removed', 'web-2'), 5_000, 'web-2 removed')
    expect(changes(proc).map((c) => `${c.type}:${c.instance?.id ?? ''}`)).toEqual(['added:web-0', 'ready:', 'added:web-1', 'removed:web-1', 'added:web-2', 'removed:web-2'])
    // And it stops cleanly
    expect(await proc.stop('SIGTERM')).toBe(0)
  })

  it('Given list web --watch --healthy, When an instance turns critical and back, Then it is reported removed then added; other services are never shown', async () => {
    // Given
    const prefix = freshPrefix('watch-healthy')
    const key = `${prefix}/services/web/web-1`
    await client.put(key).value(JSON.stringify(record('web-1')))
    const proc = startCli(['list', 'web', '--watch', '--healthy', '--json', ...etcdFlags(prefix)])
    live.push(proc)
    await waitFor(() => changes(proc).some((c) => c.type === 'ready'), 15_000, 'the ready line')
    // When
    const critical = record('web-1', { health: { status: 'critical', output: 'down', updatedAt: new Date().toISOString(), since: new Date().toISOString() } })
    await client.put(key).value(JSON.stringify(critical))
    await client.put(`${prefix}/services/api/api-1`).value(JSON.stringify(record('api-1', { service: 'api' })))
    // Then
    await waitFor(() => changeFor(proc, 'removed', 'web-1'), 5_000, 'removed when critical')
    // When
    await client.put(key).value(JSON.stringify(record('web-1')))
    // Then
    await waitFor(() => changes(proc).filter((c) => c.type === 'added').length === 2, 5_000, 'added again when passing')
    expect(changes(proc).map((c) => `${c.type}:${c.instance?.id ?? ''}`)).toEqual(['added:web-1', 'ready:', 'removed:web-1', 'added:web-1'])
    expect(await proc.stop('SIGTERM')).toBe(0)
  })

  it('Given list --watch in plain text, When an instance is added and removed, Then +/- lines name it', async () => {
    // Given
    const prefix = freshPrefix('watch-text')
    const proc = startCli(['list', '--watch', ...etcdFlags(prefix)])
    live.push(proc)
    await waitFor(() => proc.stdout.includes('watching (0 instances)'), 15_000, 'the watching line')
    // When
    await client.put(`${prefix}/services/web/web-1`).value(JSON.stringify(record('web-1')))
    await waitFor(() => proc.stdout.includes('+ web web-1 10.0.0.9:80 passing node=n1'), 5_000, 'the + line')
    await client.delete().key(`${prefix}/services/web/web-1`)
    // Then
    await waitFor(() => proc.stdout.includes('- web web-1'), 5_000, 'the - line')
    expect(await proc.stop('SIGTERM')).toBe(0)
  })
})
