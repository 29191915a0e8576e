import { afterAll, describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../../src/core/model.js'
import { etcdctl, runCli, startCli, uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { STACK_LINE } from './registry-support.js'

/**
 * The TLS + auth etcd: the right CA, client certificate and password work (checked through
 * etcdctl with the same credentials); each wrong one fails with exit 3 and one line naming the
 * endpoint and the cause. And an etcd that isn't there fails the same way, within seconds.
 */
const { tls } = testEnv()
const prefix = uniquePrefix('tls')

const tlsFlags = (overrides: Partial<Record<'cacert' | 'cert' | 'key' | 'user' | 'password', string | undefined>> = {}): string[] => {
  const settings = { cacert: tls.ca, cert: tls.cert, key: tls.key, user: tls.user, password: tls.password, ...overrides }
  return [
    '--etcd-endpoints', tls.endpoint, '--prefix', prefix,
    ...(settings.cacert ? ['--etcd-cacert', settings.cacert] : []),
    ...(settings.cert ? ['--etcd-cert', settings.cert] : []),
    ...(settings.key ? ['--etcd-key', settings.key] : []),
    ...(settings.user ? ['--etcd-user', settings.user] : []),
    ...(settings.password ? ['--etcd-password', settings.password] : []),
  ]
}

/** etcdctl against the TLS etcd with the good credentials. */
const tlsCtl = (args: string[]): Promise<string> =>
  etcdctl(['--cacert', tls.ca, '--cert', tls.cert, '--key', tls.key, '--user', `${tls.user}:${tls.password}`, ...args], [tls.endpoint])

afterAll(async () => {
  await tlsCtl(['del', '--prefix', `${prefix}/`])
})

function expectOneLineError(stderr: string): string {
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^Error: /)
  expect(stderr).not.toMatch(STACK_LINE)
  return lines[0]
}

describe('TLS + auth etcd with the right credentials', () => {
  it('Given CA, client certificate and user:password, When register, list and deregister run, Then each works and etcdctl sees the record come and go', async () => {
    // When
    const registered = await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '443', '--id', 'web-tls', ...tlsFlags()])
    // Then
    expect(registered, registered.stderr).toMatchObject({ code: 0 })
    const stored = await tlsCtl(['get', `${prefix}/services/web/web-tls`, '--print-value-only'])
    expect(JSON.parse(stored)).toMatchObject({ id: 'web-tls', service: 'web', port: 443 })
    const listed = await runCli(['list', '--json', ...tlsFlags()])
    expect(listed, listed.stderr).toMatchObject({ code: 0 })
    expect((JSON.parse(listed.stdout) as InstanceRecord[]).map((r) => r.id)).toEqual(['web-tls'])
    const removed = await runCli(['deregister', 'web', 'web-tls', ...tlsFlags()])
    expect(removed, removed.stderr).toMatchObject({ code: 0 })
    expect(await tlsCtl(['get', '--prefix', `${prefix}/`, '--keys-only'])).toBe('')
  })

  it('Given the same settings as ETCDCTL_* variables (user as name:password), When register --ttl runs, Then the record is written on a lease', async () => {
    // Given
    const env = {
      // host:port as etcdctl takes it: https because a CA is configured
      ETCDCTL_ENDPOINTS: new URL(tls.endpoint).host,
      ETCDCTL_CACERT: tls.ca,
      ETCDCTL_CERT: tls.cert,
      ETCDCTL_KEY: tls.key,
      ETCDCTL_USER: `${tls.user}:${tls.password}`,
      DISCOVERY_PREFIX: prefix,
    }
    // When
    const result = await runCli(['register', 'web', '--address', '10.0.0.2', '--port', '443', '--id', 'web-env', '--ttl', '30s'], { env })
    // Then
    expect(result, result.stderr).toMatchObject({ code: 0 })
    const out = await tlsCtl(['get', `${prefix}/services/web/web-env`, '-w', 'json'])
    expect(out).toMatch(/"lease":[1-9]\d*/)
    await tlsCtl(['del', `${prefix}/services/web/web-env`])
  })
})

describe('TLS + auth etcd with wrong credentials: exit 3, endpoint and cause on one line', () => {
  const cases = [
    { what: 'a CA that did not sign the server certificate', flags: () => tlsFlags({ cacert: tls.otherCa }), cause: /TLS failed: the server certificate is not trusted/ },
    { what: 'a wrong password', flags: () => tlsFlags({ password: 'not-the-password' }), cause: /authentication failed/ },
    { what: 'an unknown user', flags: () => tlsFlags({ user: 'nobody', password: 'x' }), cause: /authentication failed/ },
    { what: 'an expired client certificate', flags: () => tlsFlags({ cert: tls.expiredCert, key: tls.expiredKey }), cause: /TLS failed: the client certificate \S+expired-client\.crt expired on 2020-01-02/ },
    { what: 'no client certificate', flags: () => tlsFlags({ cert: undefined, key: undefined }), cause: /TLS failed: the server rejected the client certificate/ },
  ]

  it.each(cases)('Given $what, When list runs, Then exit 3 naming the endpoint and the cause', async ({ flags, cause }) => {
    // When
    const started = performance.now()
    const result = await runCli(['list', ...flags()])
    // Then
    expect(result.code, result.stderr).toBe(3)
    const line = expectOneLineError(result.stderr)
    expect(line).toContain(tls.endpoint)
    expect(line).toMatch(cause)
    expect(result.stdout).toBe('')
    expect(performance.now() - started).toBeLessThan(30_000)
  })

  it.each(cases)('Given $what, When register --ttl runs, Then exit 3 with the same cause and nothing is written', async ({ flags, cause }) => {
    // When
    const result = await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', '--id', 'never', '--ttl', '10s', ...flags()])
    // Then
    expect(result.code, result.stderr).toBe(3)
    const line = expectOneLineError(result.stderr)
    expect(line).toContain(tls.endpoint)
    expect(line).toMatch(cause)
    expect(await tlsCtl(['get', '--prefix', `${prefix}/`, '--keys-only'])).toBe('')
  })

  it('Given a wrong CA, When list --watch runs, Then it exits 3 naming the endpoint and a TLS cause instead of waiting', async () => {
    const proc = startCli(['list', '--watch', ...tlsFlags({ cacert: tls.otherCa })])
    const code = await Promise.race([proc.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 30_000))])
    if (code === 'still running') await proc.stop('SIGKILL')
    expect(code).toBe(3)
    const line = expectOneLineError(proc.stderr)
    expect(line).toContain(tls.endpoint)
    expect(line).toMatch(/TLS failed/)
  })

  it('Given a wrong password and --json, When list runs, Then the error is one JSON object on stdout with exit 3', async () => {
    const result = await runCli(['list', '--json', ...tlsFlags({ password: 'nope' })])
    expect(result.code).toBe(3)
    const payload = JSON.parse(result.stdout) as { error: { kind: string; message: string; exitCode: number } }
    expect(payload.error).toMatchObject({ kind: 'unavailable', exitCode: 3 })
    expect(payload.error.message).toContain(tls.endpoint)
    expect(payload.error.message).toMatch(/authentication failed/)
    expect(result.stdout).not.toContain('nope')
  })
})

describe('unreachable etcd', () => {
  const down = ['--etcd-endpoints', '127.0.0.1:1', '--prefix', prefix]
  it.each([
    { command: 'list', args: ['list', ...down] },
    { command: 'list --json', args: ['list', '--json', ...down] },
    { command: 'list --watch', args: ['list', '--watch', ...down] },
    { command: 'register', args: ['register', 'web', '--address', '10.0.0.1', '--port', '80', ...down] },
    { command: 'register --ttl --keepalive', args: ['register', 'web', '--address', '10.0.0.1', '--port', '80', '--ttl', '5s', '--keepalive', ...down] },
    { command: 'deregister', args: ['deregister', 'web', 'web-1', ...down] },
  ])('Given nothing listens at 127.0.0.1:1, When $command runs, Then exit 3 within seconds with the endpoint and "connection refused" on one line', async ({ command, args }) => {
    // When
    const started = performance.now()
    const result = await runCli(args, { timeoutMs: 30_000 })
    const elapsed = performance.now() - started
    // Then
    expect(result.code, result.stderr + result.stdout).toBe(3)
    const text = command.includes('--json') ? (JSON.parse(result.stdout) as { error: { message: string } }).error.message : expectOneLineError(result.stderr)
    expect(text).toContain('http://127.0.0.1:1')
    expect(text).toContain('connection refused')
    expect(elapsed).toBeLessThan(10_000)
  })
})
