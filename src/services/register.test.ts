import { describe, expect, it } from 'vitest'
import { UsageError } from '../core/errors.js'
import { parseInstanceRecord } from '../core/schema.js'
import { buildManualRecord, defaultInstanceId, type RegisterRequest } from './register.js'

const NOW = new Date('2026-01-02T03:04:05.678Z')
const base: RegisterRequest = { service: 'billing', address: '10.0.0.5', port: '8080' }

describe('buildManualRecord', () => {
  it('Given the minimum, When built, Then a passing schema-2 manual record with a derived id that the model accepts', () => {
    // When
    const record = buildManualRecord(base, 'host-1', NOW)
    // Then
    expect(record).toEqual({
      schema: 2,
      id: 'billing-10.0.0.5-8080',
      service: 'billing',
      address: '10.0.0.5',
      port: 8080,
      tags: [],
      meta: {},
      node: 'host-1',
      source: 'manual',
      health: { status: 'passing', output: 'no check', updatedAt: NOW.toISOString(), since: NOW.toISOString() },
      registeredAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
    })
    expect(parseInstanceRecord(JSON.stringify(record))).toEqual({ ok: true, value: record })
  })

  it('Given repeated tags and meta with = in the value, When built, Then tags are de-duplicated in order and meta split at the first =', () => {
    const record = buildManualRecord({ ...base, tags: ['v2', 'primary', 'v2'], meta: ['team=payments', 'q=a=b'] }, 'n', NOW)
    expect(record.tags).toEqual(['v2', 'primary'])
    expect(record.meta).toEqual({ team: 'payments', q: 'a=b' })
  })

  it.each([
    ['an IPv6 address', { address: '::1' }, { address: '::1', id: 'billing-::1-8080' }],
    ['a bracketed IPv6 address', { address: '[fe80::1]' }, { address: 'fe80::1', id: 'billing-fe80::1-8080' }],
    ['a host name', { address: 'db.internal' }, { address: 'db.internal', id: 'billing-db.internal-8080' }],
    ['an explicit id', { id: 'billing-primary' }, { id: 'billing-primary' }],
    ['a numeric port', { port: 443 }, { port: 443, id: 'billing-10.0.0.5-443' }],
  ])('Given %s, When built, Then %j', (_what, change, expected) => {
    expect(buildManualRecord({ ...base, ...change }, 'n', NOW)).toMatchObject(expected)
  })

  it('Given --check-tcp with an interval, When built, Then the check targets address:port with defaults and health starts unknown', () => {
    const record = buildManualRecord({ ...base, address: '::1', check: { tcp: true, intervalMs: 2_000 } }, 'n', NOW)
    expect(record.check).toEqual({ kind: 'tcp', target: '[::1]:8080', interval: 2_000, timeout: 2_000, failuresBeforeCritical: 3, successesBeforePassing: 1, initialDelay: 0 })
    expect(record.health.status).toBe('unknown')
  })

  it('Given --check-http, When built, Then the URL is normalised and the default timeout is 5 s', () => {
    const record = buildManualRecord({ ...base, check: { http: 'HTTP://10.0.0.5:8080/health' } }, 'n', NOW)
    expect(record.check).toMatchObject({ kind: 'http', target: 'http://10.0.0.5:8080/health', interval: 10_000, timeout: 5_000 })
  })

  it('Given an empty check object (no check flags), When built, Then there is no check', () => {
    expect(buildManualRecord({ ...base, check: {} }, 'n', NOW).check).toBeUndefined()
  })

  it.each([
    ['service', { service: 'Billing' }, "service name 'Billing'"],
    ['service escaping the prefix', { service: '../x' }, "service name '../x'"],
    ['address', { address: '999.1.1.1' }, "--address '999.1.1.1'"],
    ['address with a port', { address: '10.0.0.1:80' }, "--address '10.0.0.1:80'"],
    ['port', { port: '0' }, "--port '0'"],
    ['id', { id: 'a/b' }, "--id 'a/b'"],
    ['tag', { tags: ['a,b'] }, "--tag 'a,b'"],
    ['meta', { meta: ['novalue'] }, "--meta 'novalue'"],
    ['check url', { check: { http: 'ftp://x/' } }, "--check-http 'ftp://x/'"],
    ['two checks', { check: { http: 'http://x/', tcp: true } }, '--check-http and --check-tcp are exclusive'],
    ['interval without check', { check: { intervalMs: 1000 } }, '--check-interval/--check-timeout need --check-http or --check-tcp'],
    ['keepalive without ttl', { keepalive: true }, '--keepalive needs --ttl'],
  ])('Given a bad %s, When built, Then a UsageError names it', (_what, change, message) => {
    const build = (): unknown => buildManualRecord({ ...base, ...change } as RegisterRequest, 'n', NOW)
    expect(build).toThrow(UsageError)
    expect(build).toThrow(message)
  })

  it('Given a long control-character URL, When rejected, Then the message is clipped and printable', () => {
    const url = `http://bad\u0007host/${'x'.repeat(200)}`
    expect(() => buildManualRecord({ ...base, check: { http: url } }, 'n', NOW)).toThrow(/^--check-http 'http:\/\/bad\?host\/x{64}…' is not a URL$/)
  })
})

describe('defaultInstanceId', () => {
  it('Given any address, When an id is derived, Then it holds only id characters', () => {
    expect(defaultInstanceId('web', 'fe80::1%eth0', 80)).toBe('web-fe80::1-eth0-80')
  })
})
