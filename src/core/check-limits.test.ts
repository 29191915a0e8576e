import { describe, expect, it } from 'vitest'
import { fastInstanceRecord } from './instance-fast-path.js'
import { buildManualRecord } from './manual-record.js'
import { parseInstanceRecord } from './schema.js'

const now = '2026-01-01T00:00:00.000Z'
function record(check: Record<string, unknown>): Record<string, unknown> {
  return {
    schema: 2, id: 'x', service: 'web', address: '10.0.0.1', port: 80, tags: [], meta: {}, node: 'n', source: 'manual',
    check: { kind: 'tcp', target: '10.0.0.1:80', interval: 10_000, timeout: 1_000, failuresBeforeCritical: 3, successesBeforePassing: 1, initialDelay: 0, ...check },
    health: { status: 'unknown', output: '', updatedAt: now, since: now }, registeredAt: now, updatedAt: now,
  }
}

describe('check numbers from outside are bounded', () => {
  it.each([
    ['an interval of 1 ms (a busy loop)', { interval: 1 }],
    ['an interval past 2^31 ms (Node fires such timers at once)', { interval: 2 ** 31 }],
    ['a timeout of 0', { timeout: 0 }],
    ['an initial delay of 30 days', { initialDelay: 30 * 86_400_000 }],
    ['a million failures before critical', { failuresBeforeCritical: 1_000_000 }],
  ])('Given a record in etcd with %s, When read, Then both the fast path and the schema refuse it', (_what, check) => {
    const value = record(check)
    expect(fastInstanceRecord(value)).toBeUndefined()
    expect(parseInstanceRecord(JSON.stringify(value)).ok).toBe(false)
  })

  it('Given a record with ordinary numbers, When read, Then it is accepted', () => {
    expect(fastInstanceRecord(record({}))).toBeDefined()
  })

  it('Given register --check-interval 10ms, When the record is built, Then it is refused with the range', () => {
    expect(() => buildManualRecord({ service: 'web', address: '10.0.0.1', port: '80', check: { tcp: true, intervalMs: 10 } }, 'n')).toThrow(/out of range/)
  })
})
