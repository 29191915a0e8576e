import { describe, expect, it } from 'vitest'
import { formatAge, formatDuration, MAX_DURATION_MS, parseDuration } from './duration.js'
import { formatErrorLine, UsageError } from './errors.js'

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['30', 30_000],
    [30, 30_000],
    ['1.5s', 1500],
    ['1.5', 1500],
    ['0.25', 250],
    ['.5s', 500],
    ['1.5m', 90_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['  10s  ', 10_000],
    ['596h', 596 * 3_600_000],
  ])('Given %j, When parsed, Then it is %i ms', (input, ms) => {
    expect(parseDuration(input, '--ttl')).toBe(ms)
  })

  it.each([
    ['abc', "--ttl: 'abc' is not a duration"],
    ['', "--ttl: '' is not a duration"],
    ['10 s', "--ttl: '10 s' is not a duration"],
    ['-5s', "--ttl: '-5s' is not a duration"],
    ['10S', "--ttl: '10S' is not a duration"],
    ['1d', "--ttl: '1d' is not a duration"],
    ['5x', "--ttl: '5x' is not a duration"],
    ['1h30', "--ttl: '1h30' is not a duration"],
    ['s', "--ttl: 's' is not a duration"],
    ['.', "--ttl: '.' is not a duration"],
    ['1e3', "--ttl: '1e3' is not a duration"],
    ['0x10', "--ttl: '0x10' is not a duration"],
    ['Infinity', "--ttl: 'Infinity' is not a duration"],
    ['0', "--ttl: '0' must be longer than zero"],
    ['0s', "--ttl: '0s' must be longer than zero"],
    ['0ms', "--ttl: '0ms' must be longer than zero"],
    ['0.0001s', "--ttl: '0.0001s' must be longer than zero"],
    ['597h', "--ttl: '597h' is too long (at most 596h)"],
    ['99999999999999999999h', 'is too long'],
  ])('Given %j, When parsed, Then one UsageError line says: %s', (input, message) => {
    // When
    let error: unknown
    try {
      parseDuration(input, '--ttl')
    } catch (caught) {
      error = caught
    }
    // Then
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).message).toContain(message)
    expect((error as UsageError).hint).toBeTruthy()
    expect(formatErrorLine(error as UsageError)).not.toContain('\n')
  })

  it.each(['0', '0s', '0ms'])('Given %j and allowZero, When parsed, Then it is 0', (input) => {
    expect(parseDuration(input, 'discovery.check.initial-delay', { allowZero: true })).toBe(0)
  })

  it('Given a huge bad value, When parsed, Then the error quotes it clipped, not whole', () => {
    // Given
    const huge = 'x'.repeat(100_000)
    // When / Then
    expect(() => parseDuration(huge, '--ttl')).toThrow(/^--ttl: 'x{80}…' is not a duration$/)
  })

  it('Given the longest timer Node can set, When parsed in ms, Then it is accepted', () => {
    expect(parseDuration(`${MAX_DURATION_MS}ms`, '--resync')).toBe(MAX_DURATION_MS)
    expect(() => parseDuration(`${MAX_DURATION_MS + 1}ms`, '--resync')).toThrow(/too long/)
  })
})

describe('formatDuration', () => {
  it.each([
    [250, '250ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [10_000, '10s'],
    [60_000, '1m'],
    [90_000, '90s'],
    [120_000, '2m'],
    [3_600_000, '1h'],
    [5_400_000, '90m'],
  ])('Given %i ms, When formatted, Then it is %s and parses back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text)
    expect(parseDuration(text, 'x')).toBe(ms)
  })
})

describe('formatAge', () => {
  it.each([
    [-5, '0s'],
    [999, '0s'],
    [59_999, '59s'],
    [60_000, '1m'],
    [3_599_999, '59m'],
    [3_600_000, '1h'],
    [86_400_000, '1d'],
  ])('Given %i ms, When formatted as an age, Then it is %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text)
  })
})
