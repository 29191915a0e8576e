import { Args, Errors, Flags, Parser } from '@oclif/core'
import { describe, expect, it } from 'vitest'
import { NegativeResultError, NotFoundError, UnavailableError, UsageError, type DiscoveryError } from '../core/errors.js'
import { describeError } from './base-command.js'

/** The error oclif's own parser throws for `argv`, so the mapping is tested against the real thing. */
async function parseError(argv: string[]): Promise<Error> {
  try {
    await Parser.parse(argv, {
      flags: {
        address: Flags.string({ required: true }),
        mode: Flags.string({ options: ['published', 'container'] }),
        count: Flags.integer(),
      },
      args: {
        service: Args.string({ required: true, description: 'service name' }),
        id: Args.string({ required: true, description: 'instance id' }),
      },
      strict: true,
    })
  } catch (error) {
    return error as Error
  }
  throw new Error(`parsing ${argv.join(' ')} did not fail`)
}

describe('describeError: DiscoveryError subclasses keep their exit code and hint', () => {
  it.each<{ name: string; error: DiscoveryError; code: number; kind: string }>([
    { name: 'UsageError', error: new UsageError("prefix 'x' must start with /", { hint: 'use e.g. /discovery' }), code: 2, kind: 'usage' },
    { name: 'UnavailableError', error: new UnavailableError('etcd request failed at http://127.0.0.1:1: connection refused', { hint: 'is etcd running there?' }), code: 3, kind: 'unavailable' },
    { name: 'NegativeResultError', error: new NegativeResultError('2 of 3 targets unhealthy', { hint: 'see the lines above' }), code: 1, kind: 'negative' },
    { name: 'NotFoundError', error: new NotFoundError('instance web-1 of service web is not registered', { hint: 'check the id' }), code: 1, kind: 'negative' },
  ])('Given a $name, When described, Then exit $code and one line "Error: message (hint)"', ({ error, code, kind }) => {
    // When
    const described = describeError(error, 'list')
    // Then
    expect(described.code).toBe(code)
    expect(described.line).toBe(`Error: ${error.message} (${error.hint})`)
    expect(described.payload).toEqual({ kind, message: error.message, hint: error.hint, exitCode: code })
  })

  it('Given a DiscoveryError without a hint, When described, Then the line has no empty parentheses', () => {
    expect(describeError(new UsageError('bad input')).line).toBe('Error: bad input')
  })
})

describe('describeError: oclif parse errors are usage errors (exit 2) on one line', () => {
  it.each([
    { argv: ['web', 'web-1', '--address', 'a', '--bogus'], line: 'Error: Nonexistent flag: --bogus (see discovery-agent register --help)' },
    { argv: ['--address', 'a'], line: 'Error: Missing 2 required args: service, id (see discovery-agent register --help)' },
    { argv: ['web', '--address', 'a'], line: 'Error: Missing 1 required arg: id (see discovery-agent register --help)' },
    { argv: ['web', 'web-1'], line: 'Error: Missing required flag address (see discovery-agent register --help)' },
    { argv: ['web', 'web-1', '--address', 'a', '--mode', 'host'], line: 'Error: Expected --mode=host to be one of: published, container (see discovery-agent register --help)' },
    { argv: ['web', 'web-1', 'extra', '--address', 'a'], line: 'Error: Unexpected argument: extra (see discovery-agent register --help)' },
    { argv: ['web', 'web-1', '--address', 'a', '--count', 'x'], line: 'Error: Parsing --count: Expected an integer but received: x (see discovery-agent register --help)' },
    { argv: ['web', 'web-1', '--address'], line: 'Error: Flag --address expects a value (see discovery-agent register --help)' },
  ])('Given argv $argv, When described, Then: $line', async ({ argv, line }) => {
    // Given
    const error = await parseError(argv)
    // When
    const described = describeError(error, 'register')
    // Then
    expect(described.code).toBe(2)
    expect(described.line).toBe(line)
    expect(described.line).not.toContain('\n')
    expect(described.payload).toMatchObject({ kind: 'usage', exitCode: 2 })
  })

  it('Given a parse error and a topic command id, When described, Then the hint spells the command with spaces', async () => {
    expect(describeError(await parseError(['--bogus']), 'registry:dump').line).toContain('(see discovery-agent registry dump --help)')
  })

  it('Given a parse error and no command id, When described, Then the hint is plain --help', async () => {
    expect(describeError(await parseError(['--bogus'])).line).toMatch(/\(see --help\)$/)
  })
})

describe('describeError: anything else is a bug', () => {
  it.each<{ name: string; error: unknown; message: string }>([
    { name: 'a TypeError', error: new TypeError("Cannot read properties of undefined (reading 'x')"), message: "unexpected error: Cannot read properties of undefined (reading 'x')" },
    { name: 'a multi-line Error', error: new Error('first line\n    at somewhere (file.js:1:1)'), message: 'unexpected error: first line' },
    { name: 'a system error', error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), message: 'unexpected error: connect ECONNREFUSED 127.0.0.1:1' },
    { name: 'a thrown string', error: 'plain string', message: 'unexpected error: plain string' },
    { name: 'a thrown undefined', error: undefined, message: 'unexpected error: undefined' },
  ])('Given $name, When described, Then exit 1 and a bug line that asks for DEBUG=1, without a stack', ({ error, message }) => {
    // When
    const described = describeError(error, 'list')
    // Then
    expect(described.code).toBe(1)
    expect(described.line).toBe(`Error: ${message} (this is a bug; run again with DEBUG=1 for the stack trace and report it)`)
    expect(described.line).not.toContain('    at ')
    expect(described.payload).toMatchObject({ kind: 'bug', message, exitCode: 1 })
  })

  it('Given an oclif CLIError with exit 2, When described, Then it is a usage error', () => {
    expect(describeError(new Errors.CLIError('bad thing', { exit: 2 }), 'list')).toMatchObject({ code: 2, line: 'Error: bad thing (see discovery-agent list --help)' })
  })
})
