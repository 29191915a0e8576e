import { afterAll, describe, expect, it } from 'vitest'
import { clip } from '../../src/core/validate.js'
import { etcdctl, keysUnder, runCli, uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { mapLimit, STACK_LINE } from './registry-support.js'

/**
 * Bad input never reaches etcd: every case exits 2 with one line that names the offending
 * value, and afterwards etcdctl finds nothing under the test prefix (nor under the escaped
 * forms a bad prefix, service or id would produce).
 */
const env = testEnv()
const prefix = uniquePrefix('bad-input')
const endpoints = ['--etcd-endpoints', env.etcdEndpoints.join(',')]
const good = ['--address', '10.0.0.5', '--port', '8080']

interface BadCase {
  what: string
  args: string[]
  /** Text the one-line error must contain: the value, as the error shows it (clipped, control characters as ?). */
  names: string
}

const register = (service: string, ...flags: string[]): string[] => ['register', service, ...flags, ...endpoints, '--prefix', prefix]
const longId = 'x'.repeat(201)

const CASES: BadCase[] = [
  // service names (lower-case DNS labels)
  { what: 'upper-case service', args: register('Web', ...good), names: "'Web'" },
  { what: 'underscore in service', args: register('web_api', ...good), names: "'web_api'" },
  { what: 'service climbing out with ..', args: register('../etc', ...good), names: "'../etc'" },
  { what: 'slash in service', args: register('web/x', ...good), names: "'web/x'" },
  // after `--`, so the value reaches the validator rather than oclif's flag parser
  { what: 'service starting with -', args: ['register', ...good, ...endpoints, '--prefix', prefix, '--', '-web'], names: "'-web'" },
  { what: 'service ending with -', args: register('web-', ...good), names: "'web-'" },
  { what: '64-character label', args: register('a'.repeat(64), ...good), names: 'a'.repeat(20) },
  { what: 'empty label (two dots)', args: register('web..api', ...good), names: "'web..api'" },
  { what: 'non-ASCII service', args: register('wéb', ...good), names: "'wéb'" },
  { what: 'space in service', args: register('web api', ...good), names: "'web api'" },
  { what: 'empty service', args: register('', ...good), names: "''" },
  // ports
  { what: 'port 0', args: register('web', '--address', '10.0.0.5', '--port', '0'), names: "'0'" },
  { what: 'port 65536', args: register('web', '--address', '10.0.0.5', '--port', '65536'), names: "'65536'" },
  { what: 'negative port', args: register('web', '--address', '10.0.0.5', '--port=-1'), names: "'-1'" },
  { what: 'port with letters', args: register('web', '--address', '10.0.0.5', '--port', '80a'), names: "'80a'" },
  { what: 'fractional port', args: register('web', '--address', '10.0.0.5', '--port', '8.5'), names: "'8.5'" },
  // addresses
  { what: 'IPv4 out of range', args: register('web', '--address', '999.1.1.1', '--port', '80'), names: "'999.1.1.1'" },
  { what: 'address with !', args: register('web', '--address', 'bad host!', '--port', '80'), names: "'bad host!'" },
  { what: 'URL as address', args: register('web', '--address', 'http://10.0.0.1', '--port', '80'), names: "'http://10.0.0.1'" },
  { what: 'host:port as address', args: register('web', '--address', '10.0.0.1:80', '--port', '80'), names: "'10.0.0.1:80'" },
  // instance ids
  { what: 'slash in id', args: register('web', ...good, '--id', 'a/b'), names: "'a/b'" },
  { what: 'id ..', args: register('web', ...good, '--id', '..'), names: "'..'" },
  { what: '201-character id', args: register('web', ...good, '--id', longId), names: clip(longId) },
  { what: 'space in id', args: register('web', ...good, '--id', 'id with space'), names: "'id with space'" },
  { what: 'newline in id', args: register('web', ...good, '--id', 'web\n1'), names: "'web?1'" },
  // tags and meta
  { what: 'comma in tag', args: register('web', ...good, '--tag', 'a,b'), names: "'a,b'" },
  { what: 'control character in tag', args: register('web', ...good, '--tag', 'v\u00072'), names: "'v?2'" },
  { what: 'meta without =', args: register('web', ...good, '--meta', 'novalue'), names: "'novalue'" },
  { what: 'meta with empty key', args: register('web', ...good, '--meta', '=x'), names: "'=x'" },
  { what: 'meta with empty value', args: register('web', ...good, '--meta', 'k='), names: "'k='" },
  { what: 'meta key with a space', args: register('web', ...good, '--meta', 'bad key=1'), names: "'bad key'" },
  // durations and checks
  { what: 'ttl that is no duration', args: register('web', ...good, '--ttl', 'abc'), names: "'abc'" },
  { what: 'zero ttl', args: register('web', ...good, '--ttl', '0'), names: "'0'" },
  { what: 'negative ttl', args: register('web', ...good, '--ttl=-5s'), names: "'-5s'" },
  { what: 'ttl shorter than etcd grants', args: register('web', ...good, '--ttl', '500ms'), names: '500ms' },
  { what: 'check interval of 10 ms', args: register('web', ...good, '--check-tcp', '--check-interval', '10ms'), names: '10 ms' },
  { what: 'check-http with ftp', args: register('web', ...good, '--check-http', 'ftp://10.0.0.5/health'), names: "'ftp://10.0.0.5/health'" },
  { what: 'check-http that is no URL', args: register('web', ...good, '--check-http', 'not a url'), names: "'not a url'" },
  { what: 'check-interval that is no duration', args: register('web', ...good, '--check-tcp', '--check-interval', 'soon'), names: "'soon'" },
  { what: 'zero check-timeout', args: register('web', ...good, '--check-tcp', '--check-timeout', '0s'), names: "'0s'" },
  { what: 'keepalive without ttl', args: register('web', ...good, '--keepalive'), names: '--keepalive' },
  { what: 'two check kinds', args: register('web', ...good, '--check-tcp', '--check-http', 'http://10.0.0.5/health'), names: '--check-http and --check-tcp' },
  // connection settings
  { what: 'bad node name', args: register('web', ...good, '--node', 'bad/node'), names: "'bad/node'" },
  { what: 'ftp endpoint', args: ['register', 'web', ...good, '--etcd-endpoints', 'ftp://127.0.0.1:2379', '--prefix', prefix], names: "'ftp://127.0.0.1:2379'" },
  { what: 'password without user', args: register('web', ...good, '--etcd-password', 'secret'), names: 'password' },
  // other commands
  { what: 'deregister: bad service', args: ['deregister', 'Web', 'web-1', ...endpoints, '--prefix', prefix], names: "'Web'" },
  { what: 'deregister: bad id', args: ['deregister', 'web', '../web-1', ...endpoints, '--prefix', prefix], names: "'../web-1'" },
  { what: 'list: bad service', args: ['list', 'Bad_Service', ...endpoints, '--prefix', prefix], names: "'Bad_Service'" },
  { what: 'list --watch: bad service', args: ['list', 'web/..', '--watch', ...endpoints, '--prefix', prefix], names: "'web/..'" },
]

/** Prefixes that must be refused before anything is written; each names where a write would land. */
const relative = prefix.slice(1)
const PREFIX_CASES: BadCase[] = [
  { what: 'prefix without leading /', args: ['register', 'web', ...good, ...endpoints, '--prefix', relative], names: `'${relative}'` },
  { what: "prefix with '..'", args: ['register', 'web', ...good, ...endpoints, '--prefix', `${prefix}/../escape`], names: `'${prefix}/../escape'` },
  { what: "prefix ending in '..'", args: ['register', 'web', ...good, ...endpoints, '--prefix', `${prefix}/..`], names: `'${prefix}/..'` },
  { what: "prefix with '.'", args: ['register', 'web', ...good, ...endpoints, '--prefix', `${prefix}/./x`], names: `'${prefix}/./x'` },
  { what: 'root prefix', args: ['register', 'web', ...good, ...endpoints, '--prefix', '/'], names: "'/'" },
  { what: 'prefix with a space', args: ['register', 'web', ...good, ...endpoints, '--prefix', `${prefix}/a b`], names: `'${prefix}/a b'` },
  { what: 'relative prefix from the environment', args: ['list', ...endpoints], names: `'${relative}'` },
  { what: "'..' prefix through deregister", args: ['deregister', 'web', 'web-1', ...endpoints, '--prefix', `${prefix}/../x`], names: `'${prefix}/../x'` },
]

afterAll(async () => {
  // Only if a case failed would anything be here; clean it up anyway.
  await etcdctl(['del', '--prefix', prefix])
  await etcdctl(['del', '--prefix', relative])
})

describe('bad input: exit 2, the value named, nothing written', () => {
  it(`Given ${CASES.length} bad inputs, When each runs, Then each exits 2 with one line naming the value, and etcd holds nothing under the prefix`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30)
    // When
    const results = await mapLimit(CASES, 4, (c) => runCli(c.args))
    // Then
    const failures: string[] = []
    results.forEach((result, i) => {
      const c = CASES[i]
      const lines = result.stderr.trim().split('\n')
      if (result.code !== 2) failures.push(`${c.what}: exit ${result.code}, stderr ${result.stderr}`)
      else if (!result.stderr.includes(c.names)) failures.push(`${c.what}: stderr does not name ${c.names}: ${result.stderr}`)
      else if (lines.length !== 1 || !lines[0].startsWith('Error: ')) failures.push(`${c.what}: not one "Error:" line: ${result.stderr}`)
      else if (STACK_LINE.test(result.stderr)) failures.push(`${c.what}: stack trace: ${result.stderr}`)
      else if (result.stdout !== '') failures.push(`${c.what}: wrote to stdout: ${result.stdout}`)
    })
    expect(failures).toEqual([])
    expect(await keysUnder(prefix)).toEqual([])
  })

  it.each(PREFIX_CASES)('Given the $what, When the command runs, Then exit 2 naming it and no key under the prefix', async (c) => {
    // Given: 'relative prefix from the environment' comes through DISCOVERY_PREFIX
    const extraEnv = c.what.includes('environment') ? { DISCOVERY_PREFIX: relative } : {}
    // When
    const result = await runCli(c.args, { env: extraEnv })
    // Then
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toContain(c.names)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(await keysUnder(prefix)).toEqual([])
    expect(await keysUnder(relative)).toEqual([])
  })

  it('Given the bad inputs in --json mode, When one runs, Then the error is a JSON object on stdout with exit 2', async () => {
    const result = await runCli(register('Web', ...good, '--json'))
    expect(result.code).toBe(2)
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { kind: 'usage', exitCode: 2, message: expect.stringContaining("'Web'") } })
  })

  it('Given a valid registration, When run with the same prefix, Then it is written (the cases above fail for their input, not for the setup)', async () => {
    // Given / When
    const result = await runCli(register('web', ...good, '--id', 'control'))
    // Then
    expect(result, result.stderr).toMatchObject({ code: 0 })
    expect(await keysUnder(prefix)).toEqual([`${prefix}/services/web/control`])
    await etcdctl(['del', '--prefix', prefix])
  })
})
