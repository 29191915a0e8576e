import { describe, expect, it } from 'vitest'
import { UsageError } from './errors.js'
import { assertAddress, assertPort, assertPrefix, clip } from './validate.js'

describe('assertPrefix', () => {
  it.each([
    ['/discovery', '/discovery'],
    ['/discovery/', '/discovery'],
    ['/team-a/discovery', '/team-a/discovery'],
    ['/a_b.c-d', '/a_b.c-d'],
  ])('Given %j, When checked, Then it is %j', (input, output) => {
    expect(assertPrefix(input)).toBe(output)
  })

  it.each([
    ['x', "prefix 'x' must start with /"],
    ['discovery/', "prefix 'discovery/' must start with /"],
    ['', "prefix '' must start with /"],
    ['/', "prefix '/' is the root of the keyspace"],
    ['///', "prefix '///' is the root of the keyspace"],
    ['/a/../b', "prefix '/a/../b' contains '..', '.' or an empty segment"],
    ['/..', "prefix '/..' contains '..'"],
    ['/a/./b', "prefix '/a/./b' contains '..', '.'"],
    ['//a', "prefix '//a' contains '..', '.' or an empty segment"],
    ['/a//b', 'an empty segment'],
    ['/a b', "prefix '/a b' may hold only letters, digits and _ . - /"],
    ['/a\nb', "prefix '/a?b' may hold only"],
    ['/ünï', 'may hold only'],
  ])('Given %j, When checked, Then a UsageError says: %s', (input, message) => {
    // When / Then
    let error: unknown
    try {
      assertPrefix(input)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).message).toContain(message)
    expect((error as UsageError).message).not.toContain('\n')
  })
})

describe('assertAddress', () => {
  it.each([
    ['10.0.0.5', '10.0.0.5'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['db.internal', 'db.internal'],
    ['localhost', 'localhost'],
    ['db.internal.', 'db.internal.'],
    ['3com.example', '3com.example'],
  ])('Given %j, When checked, Then it is %j', (input, output) => {
    expect(assertAddress(input, '--address')).toBe(output)
  })

  it.each(['999.1.1.1', '10.0.0', '123', 'a_b.example', '-a.example', 'http://x', '', '[10.0.0.1'])(
    'Given %j, When checked, Then it is not an address',
    (input) => {
      expect(() => assertAddress(input, '--address')).toThrow(/^--address '.*' is not an IP address or host name$/)
    },
  )
})

describe('assertPort', () => {
  it.each([
    ['1', 1],
    ['65535', 65_535],
    [8080, 8080],
    [' 80 ', 80],
  ])('Given %j, When checked, Then it is %i', (input, port) => {
    expect(assertPort(input)).toBe(port)
  })

  it.each(['0', '65536', '-1', '80.5', '1e3', 'http', ''])('Given %j, When checked, Then it is not a port', (input) => {
    expect(() => assertPort(input, '--port')).toThrow(/^--port '.*' is not a port number$/)
  })
})

describe('clip', () => {
  it('Given a long value with control characters, When clipped, Then it is one short printable line', () => {
    expect(clip(`a\nb\u0007${'x'.repeat(200)}`, 10)).toBe('a?b?xxxxxx…')
  })
})
