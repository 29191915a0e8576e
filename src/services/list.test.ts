import { describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../core/model.js'
import { matchesFilter, sortInstances, type InstanceFilter } from './list.js'

const at = '2026-01-01T00:00:00.000Z'
function record(service: string, id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    schema: 1, id, service, address: '10.0.0.1', port: 80, tags: [], meta: {}, node: 'n1', source: 'manual',
    health: { status: 'passing', output: '', updatedAt: at, since: at }, registeredAt: at, updatedAt: at, ...overrides,
  }
}

describe('matchesFilter', () => {
  const web = record('web', 'w1', { tags: ['v1', 'primary'], node: 'n1' })
  const critical = record('web', 'w2', { health: { status: 'critical', output: 'x', updatedAt: at, since: at } })
  const unknown = record('web', 'w3', { health: { status: 'unknown', output: 'x', updatedAt: at, since: at } })
  const warning = record('web', 'w4', { health: { status: 'warning', output: 'x', updatedAt: at, since: at } })

  it.each<[string, InstanceRecord, InstanceFilter, boolean]>([
    ['no filter', web, {}, true],
    ['its service', web, { service: 'web' }, true],
    ['another service', web, { service: 'api' }, false],
    ['--healthy, passing', web, { healthy: true }, true],
    ['--healthy, critical', critical, { healthy: true }, false],
    ['--healthy, unknown', unknown, { healthy: true }, false],
    ['--healthy, warning', warning, { healthy: true }, false],
    ['one tag it has', web, { tags: ['v1'] }, true],
    ['all tags it has', web, { tags: ['primary', 'v1'] }, true],
    ['one tag it lacks', web, { tags: ['v1', 'v2'] }, false],
    ['an empty tag list', web, { tags: [] }, true],
    ['its node', web, { node: 'n1' }, true],
    ['another node', web, { node: 'n2' }, false],
    ['everything at once', web, { service: 'web', healthy: true, tags: ['primary'], node: 'n1' }, true],
  ])('Given %s, When matched, Then %s', (_what, r, filter, expected) => {
    expect(matchesFilter(r, filter)).toBe(expected)
  })
})

describe('sortInstances', () => {
  it('Given records in any order, When sorted, Then by service then id, by code point, without touching the input', () => {
    const input = [record('web', 'b'), record('api', 'z'), record('web', 'A'), record('web', 'a')]
    const copy = [...input]
    expect(sortInstances(input).map((r) => `${r.service}/${r.id}`)).toEqual(['api/z', 'web/A', 'web/a', 'web/b'])
    expect(input).toEqual(copy)
  })
})
