import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { fastInstanceRecord, fastNodeRecord } from './instance-fast-path.js'
import { CHECK_KINDS, HEALTH_STATUSES, type InstanceRecord, type NodeRecord, type ParseResult } from './model.js'
import { parseInstanceRecord, parseNodeRecord } from './schema.js'

const at = '2026-01-02T03:04:05.678Z'
const plain: InstanceRecord = {
  schema: 1, id: 'host-1:web:80', service: 'web.api', address: '10.0.0.1', port: 80, tags: ['v1', ''], meta: { team: 'payments', empty: '' },
  node: 'host-1', source: 'manual', health: { status: 'passing', output: 'no check', updatedAt: at, since: at }, registeredAt: at, updatedAt: at,
}
const full: InstanceRecord = {
  ...plain,
  source: 'docker',
  container: { id: 'abc', name: 'web', image: 'nginx:1', port: 80, protocol: 'udp' },
  check: { kind: 'http', target: 'http://x/', interval: 1000, timeout: 500, failuresBeforeCritical: 3, successesBeforePassing: 1, initialDelay: 0, expectStatus: '200', expectBody: 'ok', container: 'web' },
  health: { status: 'critical', output: 'down', updatedAt: at, since: at },
}

/** What the fast path accepts among `raws`, and where the schema rejects it or reads it otherwise. */
function compare<T>(raws: string[], fast: (raw: string) => T | undefined, schema: (raw: string) => ParseResult<T>): { disagreements: string[]; accepted: number } {
  const disagreements: string[] = []
  let accepted = 0
  for (const raw of raws) {
    const value = fast(raw)
    if (!value) continue
    accepted++
    const slow = schema(raw)
    if (!slow.ok || !isDeepStrictEqual(slow.value, value)) disagreements.push(raw)
  }
  return { disagreements, accepted }
}

const WEIRD: unknown[] = [undefined, null, 0, -1, 1.5, 65_535, 65_536, 2 ** 60, '', 'x', 'Web', 'a/b', '..', true, [], {}, ['a'], [1], { a: 'b' }, { a: 1 }, 'tcp', 'sctp', 'http', 'passing', 'docker', 1]

/** Every record reachable from `base` by changing or removing one field (top level or nested one level). */
function mutations(base: InstanceRecord | NodeRecord): unknown[] {
  const out: unknown[] = []
  const json = JSON.parse(JSON.stringify(base)) as Record<string, unknown>
  const keys = [...Object.keys(json), 'container', 'check', 'extra']
  for (const key of keys) {
    for (const value of WEIRD) out.push({ ...json, [key]: value })
    const { [key]: _dropped, ...rest } = json
    out.push(rest)
    const nested = json[key]
    if (nested && typeof nested === 'object' && !Array.isArray(nested)) {
      for (const inner of [...Object.keys(nested), 'extra']) {
        for (const value of WEIRD) out.push({ ...json, [key]: { ...nested, [inner]: value } })
        const { [inner]: _gone, ...innerRest } = nested as Record<string, unknown>
        out.push({ ...json, [key]: innerRest })
      }
    }
  }
  out.push(JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(json).slice(1)}`))
  out.push({ ...json, meta: JSON.parse('{"__proto__":"x"}') })
  return out
}

describe('fastInstanceRecord', () => {
  it.each([['a plain manual record', plain], ['a docker record with container and check', full]])('Given %s, When checked, Then the fast path accepts it as the schema does', (_what, record) => {
    expect(fastInstanceRecord(JSON.parse(JSON.stringify(record)))).toEqual(record)
    expect(parseInstanceRecord(JSON.stringify(record))).toEqual({ ok: true, value: record })
  })

  it.each([['plain', plain], ['full', full]])('Given every one-field change of the %s record, When checked, Then the fast path never accepts what the schema rejects or would change', (_what, base) => {
    const cases = mutations(base)
    expect(cases.length).toBeGreaterThan(500)
    const { disagreements, accepted } = compare(
      cases.map((candidate) => JSON.stringify(candidate)),
      (raw) => fastInstanceRecord(JSON.parse(raw)),
      parseInstanceRecord,
    )
    expect(disagreements).toEqual([])
    // It must also accept the harmless changes, or it would be no fast path at all.
    expect(accepted).toBeGreaterThan(20)
  })

  it('Given every health status and check kind the model knows, When checked, Then the fast path knows them too (its copies have not drifted)', () => {
    for (const status of HEALTH_STATUSES) expect(fastInstanceRecord({ ...full, health: { ...full.health, status } }), status).toBeDefined()
    for (const kind of CHECK_KINDS) expect(fastInstanceRecord({ ...full, check: { ...full.check!, kind } }), kind).toBeDefined()
  })
})

describe('fastNodeRecord', () => {
  const node: NodeRecord = { schema: 1, node: 'host-1', version: '0.1.0', pid: 4242, hostname: 'host-1.example', startedAt: at, ttl: 10, lease: '694d77a5f1c7c30b' }
  const fullNode: NodeRecord = { ...node, docker: 'unix:///var/run/docker.sock', address: '10.0.0.7', instance: 'a1b2c3', pidNamespace: 'pid:[4026531836]' }

  it.each([['a minimal node record', node], ['a node record with every optional field', fullNode]])('Given %s, When checked, Then the fast path accepts it as the schema does', (_what, record) => {
    expect(fastNodeRecord(JSON.stringify(record))).toEqual(record)
    expect(parseNodeRecord(JSON.stringify(record))).toEqual({ ok: true, value: record })
  })

  it.each([['minimal', node], ['full', fullNode]])('Given every one-field change of the %s node record, When checked, Then the fast path never accepts what the schema rejects or would change', (_what, base) => {
    const cases = [...mutations(base), { ...base, address: 'a'.repeat(256) }, { ...base, instance: 'i'.repeat(65) }, 'not json', '[]']
    const { disagreements, accepted } = compare(
      cases.map((candidate) => (typeof candidate === 'string' ? candidate : JSON.stringify(candidate))),
      fastNodeRecord,
      parseNodeRecord,
    )
    expect(disagreements).toEqual([])
    expect(accepted).toBeGreaterThan(10)
  })
})
