import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, runCli, uniquePrefix, type CliResult } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/**
 * `discovery-agent doctor` against the real dockerd, the real 3-member etcd cluster and the
 * TLS + auth member that scripts/testenv.sh brings up.
 */
const env = testEnv()
const prefix = uniquePrefix('doctor')
const node = `doctor-${randomBytes(3).toString('hex')}`
const plainEtcd = ['--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', node]
const plain = [...plainEtcd, '--docker-host', env.dockerHost]
const tlsFiles = ['--etcd-cacert', env.tls.ca, '--etcd-cert', env.tls.cert, '--etcd-key', env.tls.key]

interface DoctorJson {
  ok: boolean
  checks: { name: string; ok: boolean; warning?: boolean; detail: string; hint?: string }[]
}

/** Check lines on stdout: `✓ name: detail`, `✗ …` or `! …`. */
function checkLines(result: CliResult): string[] {
  return result.stdout.split('\n').filter((line) => /^[✓✗!] /.test(line))
}

function expectNoStackTrace(result: CliResult): void {
  expect(result.stdout).not.toContain('    at ')
  expect(result.stderr).not.toContain('    at ')
}

function parseReport(result: CliResult): DoctorJson {
  try {
    return JSON.parse(result.stdout) as DoctorJson
  } catch {
    throw new Error(`doctor --json printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`)
  }
}

describe('doctor', () => {
  it('Given the real engine and the 3-member cluster, When doctor runs, Then it exits 0 with every check ✓', async () => {
    // When
    const result = await runCli(['doctor', ...plain])
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const lines = checkLines(result)
    expect(lines.length).toBeGreaterThanOrEqual(8)
    for (const line of lines) expect(line.startsWith('✓ '), line).toBe(true)
    expect(result.stdout).toContain(`✓ docker reachable: Docker answers at ${env.dockerHost}`)
    for (const endpoint of env.etcdEndpoints) expect(result.stdout).toContain(`✓ etcd ${endpoint}: reachable`)
    expect(result.stdout).toMatch(/✓ etcd cluster: leader [0-9a-f]+, 3 members, quorum 2; 3 of 3 configured endpoints answered/)
    expect(result.stdout).toContain(`✓ registry write: wrote, read back and deleted a leased key under ${prefix}/`)
    expect(result.stdout).toContain(`✓ node name: no live agent uses node name ${node}`)
    expectNoStackTrace(result)
  })

  it('Given --json, When doctor runs, Then stdout is { ok, checks: [{ name, ok, detail, hint }] } and nothing else', async () => {
    // When
    const result = await runCli(['doctor', ...plain, '--json'])
    // Then
    expect(result.code, result.stderr).toBe(0)
    const report = parseReport(result)
    expect(report.ok).toBe(true)
    expect(report.checks.length).toBeGreaterThanOrEqual(8)
    for (const check of report.checks) {
      expect(check).toEqual({
        name: expect.any(String),
        ok: true,
        detail: expect.any(String),
        ...(check.hint === undefined ? {} : { hint: expect.any(String) }),
        ...(check.warning === undefined ? {} : { warning: expect.any(Boolean) }),
      })
    }
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['config', 'docker reachable', 'docker API version', 'docker events', 'etcd cluster', 'etcd version', 'registry write', 'node name']),
    )
    // The leased probe key was deleted again.
    expect(await etcdctl(['get', '--prefix', '--keys-only', `${prefix}/`])).toBe('')
  })

  it('Given an etcd endpoint nobody listens on, When doctor runs, Then it exits 1 within 15 s naming the endpoint, without a stack trace', async () => {
    // When
    const started = Date.now()
    const result = await runCli(['doctor', '--etcd-endpoints', '127.0.0.1:1', '--prefix', prefix, '--node', node, '--docker-host', env.dockerHost], { timeoutMs: 30_000 })
    const elapsed = Date.now() - started
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(1)
    expect(elapsed).toBeLessThan(15_000)
    expect(result.stdout).toMatch(/✗ etcd http:\/\/127\.0\.0\.1:1: connection refused/)
    expect(result.stdout).toContain('→ is etcd running there? check --etcd-endpoints')
    expectNoStackTrace(result)
  })

  it('Given an unreachable endpoint and --json, When doctor runs, Then ok is false and the failed check names the endpoint and a hint', async () => {
    // When
    const result = await runCli(['doctor', '--etcd-endpoints', '127.0.0.1:1', '--prefix', prefix, '--node', node, '--docker-host', env.dockerHost, '--json'], { timeoutMs: 30_000 })
    // Then
    expect(result.code).toBe(1)
    const report = parseReport(result)
    expect(report.ok).toBe(false)
    expect(report.checks).toContainEqual({ name: 'etcd http://127.0.0.1:1', ok: false, detail: 'connection refused', hint: expect.stringContaining('--etcd-endpoints') })
  })

  it('Given a Docker socket that does not exist, When doctor runs, Then it exits 1 naming the socket', async () => {
    // Given
    const socket = `/tmp/no-docker-${randomBytes(4).toString('hex')}.sock`
    // When
    const result = await runCli(['doctor', ...plainEtcd, '--docker-host', `unix://${socket}`])
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(1)
    expect(result.stdout).toContain(`✗ docker reachable: connecting failed at unix://${socket}: socket not found`)
    expect(result.stdout).toContain('→ is dockerd running? check --docker-host / DOCKER_HOST')
    // etcd is still diagnosed when Docker is not there.
    expect(result.stdout).toMatch(/✓ etcd cluster: /)
    expectNoStackTrace(result)
  })

  it('Given DOCKER_HOST pointing at a missing socket, When doctor runs, Then the variable is honoured and named the same way', async () => {
    // Given
    const socket = `/tmp/no-docker-${randomBytes(4).toString('hex')}.sock`
    // When
    const result = await runCli(['doctor', ...plainEtcd], { env: { DOCKER_HOST: `unix://${socket}` } })
    // Then
    expect(result.code).toBe(1)
    expect(result.stdout).toContain(`connecting failed at unix://${socket}: socket not found`)
  })

  describe('against the TLS + auth member', () => {
    const tls = ['--etcd-endpoints', env.tls.endpoint, '--prefix', prefix, '--node', node, '--docker-host', env.dockerHost]

    it('Given the right CA, client certificate, user and password, When doctor runs, Then it exits 0 and reports TLS and auth working', async () => {
      // When
      const result = await runCli(['doctor', ...tls, ...tlsFiles, '--etcd-user', env.tls.user, '--etcd-password', env.tls.password])
      // Then
      expect(result.code, result.stdout + result.stderr).toBe(0)
      for (const line of checkLines(result)) expect(line.startsWith('✓ '), line).toBe(true)
      expect(result.stdout).toContain(`✓ etcd ${env.tls.endpoint}: reachable`)
      expect(result.stdout).toContain(`✓ etcd security: TLS and auth as ${env.tls.user} work`)
      expect(result.stdout).toContain('✓ registry write:')
    })

    it('Given the same settings as ETCDCTL_* variables with ETCDCTL_USER=name:password, When doctor runs, Then it exits 0 too', async () => {
      // When
      const result = await runCli(['doctor', '--prefix', prefix, '--node', node, '--docker-host', env.dockerHost], {
        env: {
          ETCDCTL_ENDPOINTS: env.tls.endpoint.replace(/^https:\/\//, ''),
          ETCDCTL_CACERT: env.tls.ca,
          ETCDCTL_CERT: env.tls.cert,
          ETCDCTL_KEY: env.tls.key,
          ETCDCTL_USER: `${env.tls.user}:${env.tls.password}`,
        },
      })
      // Then
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(result.stdout).toContain(`✓ etcd ${env.tls.endpoint}: reachable`)
      expect(result.stdout).toContain(`auth as ${env.tls.user} work`)
    })

    it('Given a wrong password, When doctor runs, Then it exits 1 saying authentication failed, without the password', async () => {
      // Given
      const wrong = `wrong-${randomBytes(3).toString('hex')}`
      // When
      const result = await runCli(['doctor', ...tls, ...tlsFiles, '--etcd-user', env.tls.user, '--etcd-password', wrong])
      // Then
      expect(result.code, result.stdout + result.stderr).toBe(1)
      expect(result.stdout).toContain(`✗ etcd ${env.tls.endpoint}: authentication failed (wrong user or password)`)
      expect(result.stdout).toContain('--etcd-password')
      expect(result.stdout + result.stderr).not.toContain(wrong)
      expectNoStackTrace(result)
    })

    it('Given a CA that did not sign the server certificate, When doctor runs, Then it exits 1 naming a TLS certificate problem', async () => {
      // When
      const result = await runCli([
        'doctor', ...tls,
        '--etcd-cacert', env.tls.otherCa, '--etcd-cert', env.tls.cert, '--etcd-key', env.tls.key,
        '--etcd-user', env.tls.user, '--etcd-password', env.tls.password,
      ])
      // Then
      expect(result.code, result.stdout + result.stderr).toBe(1)
      const failed = checkLines(result).find((line) => line.startsWith(`✗ etcd ${env.tls.endpoint}:`))
      expect(failed, result.stdout).toBeDefined()
      expect(failed).toMatch(/TLS failed: .*(certificate|verify)/i)
      expect(result.stdout).toContain('--etcd-cacert')
      expectNoStackTrace(result)
    })

    it('Given plain http to the TLS member, When doctor runs, Then it exits 1 naming the endpoint, not hanging', async () => {
      // When
      const result = await runCli(['doctor', '--etcd-endpoints', env.tls.endpoint.replace('https:', 'http:'), '--prefix', prefix, '--node', node, '--docker-host', env.dockerHost], { timeoutMs: 30_000 })
      // Then
      expect(result.code).toBe(1)
      expect(result.stdout).toContain(`✗ etcd ${env.tls.endpoint.replace('https:', 'http:')}:`)
      expectNoStackTrace(result)
    })
  })

  describe('warnings', () => {
    let lease: string | undefined

    beforeAll(async () => {
      // Given: a live node record for `node` under the prefix, on a lease like a running agent's
      lease = /lease ([0-9a-f]+) granted/.exec(await etcdctl(['lease', 'grant', '120']))?.[1]
      if (!lease) throw new Error('etcdctl lease grant printed no lease id')
      const record = {
        schema: 1,
        node,
        version: '0.1.0',
        pid: 4242,
        hostname: 'other-host',
        startedAt: new Date().toISOString(),
        ttl: 120,
        lease,
        docker: env.dockerHost,
      }
      await etcdctl(['put', `--lease=${lease}`, `${prefix}/nodes/${node}`, JSON.stringify(record)])
    })

    afterAll(async () => {
      if (lease) await etcdctl(['lease', 'revoke', lease]).catch(() => undefined)
    })

    it('Given a live agent record for the same --node, When doctor runs, Then it warns (!) with who holds the name and still exits 0', async () => {
      // When
      const result = await runCli(['doctor', ...plain])
      // Then
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(result.stdout).toContain(`! node name: a live agent already uses node name ${node} (pid 4242 on other-host, started `)
      expect(result.stdout).toContain('→ a second watch with this name will refuse to start; set --node to a unique name')
    })

    it('Given the same record and --json, When doctor runs, Then the node name check is ok with warning: true', async () => {
      // When
      const report = parseReport(await runCli(['doctor', ...plain, '--json']))
      // Then
      expect(report.ok).toBe(true)
      expect(report.checks.find((c) => c.name === 'node name')).toMatchObject({ ok: true, warning: true, hint: expect.stringContaining('--node') })
    })

    it('Given DOCKER_CONTEXT is set, When doctor runs, Then it warns that the context is ignored and which host is used', async () => {
      // When
      const result = await runCli(['doctor', ...plain], { env: { DOCKER_CONTEXT: 'remote-ctx' } })
      // Then
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(result.stdout).toContain(`! docker context: DOCKER_CONTEXT=remote-ctx is set but ignored; using ${env.dockerHost}`)
      expect(result.stdout).toMatch(/→ set DOCKER_HOST or --docker-host/)
    })
  })
})
