import { readFileSync } from 'node:fs'
import { Etcd3 } from 'etcd3'
import { afterAll, describe, expect, it } from 'vitest'
import { startCli, uniquePrefix, type CliResult } from '../support/cli.js'
import { dockerAt, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, startFaultAgent } from '../support/faults.js'
import { expectConverged } from '../support/oracle.js'

/**
 * The agent against etcd with client-certificate TLS and auth: with the right CA, certificate
 * and password it registers containers (the oracle passes); with a wrong CA, an expired
 * certificate or a bad password it exits 3 with one line naming the endpoint and the cause.
 * No secret (the password, private key material) appears in any output line, with DEBUG
 * unset or set.
 */
const env = testEnv()
const { tls } = env
const docker = dockerAt(env.dockerHost)
const tag = faultTag()
const pool = new FaultContainers(docker, tag)
const prefix = uniquePrefix('f-tls')
const agents: AgentProcess[] = []
const client = new Etcd3({
  hosts: [tls.endpoint],
  credentials: { rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) },
  auth: { username: tls.user, password: tls.password },
})

/** Every output the agents produced here, checked for secrets at the end. */
const outputs: { what: string; text: string }[] = []

/** The password and lines of every private key the agent was given. */
const SECRETS = [
  tls.password,
  ...[tls.key, tls.expiredKey].flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.length >= 32 && !line.startsWith('-----')),
  ),
]

/**
 * Runs the CLI; a run still going after `boundMs` is SIGKILLed and reported as code -1 (a
 * SIGTERM would be a graceful stop, exit 0, and hide that it never gave up).
 */
async function runBounded(args: string[], extra: Record<string, string | undefined>, boundMs = 20_000): Promise<CliResult> {
  const proc = startCli(args, { env: { NODE_ENV: undefined, ...extra } })
  const timer = setTimeout(() => proc.kill('SIGKILL'), boundMs)
  const code = await proc.exited
  const timedOut = proc.child.signalCode === 'SIGKILL'
  clearTimeout(timer)
  return { code: timedOut ? -1 : (code ?? -1), stdout: proc.stdout, stderr: timedOut ? `${proc.stderr}\n[still running after ${boundMs} ms: killed]` : proc.stderr }
}

function tlsFlags(overrides: Partial<Record<'cacert' | 'cert' | 'key' | 'password', string>> = {}): string[] {
  const s = { cacert: tls.ca, cert: tls.cert, key: tls.key, password: tls.password, ...overrides }
  return ['--etcd-endpoints', tls.endpoint, '--etcd-cacert', s.cacert, '--etcd-cert', s.cert, '--etcd-key', s.key, '--etcd-user', tls.user, '--etcd-password', s.password]
}

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')))
  await pool.removeAll()
  await client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  client.close()
})

describe('faults: etcd with client-certificate TLS and auth', () => {
  // DEBUG=1 is what the product's own messages suggest; DEBUG=* also turns on every library's debug output.
  const DEBUGS = [
    { debug: 'unset', short: 'a', env: { DEBUG: undefined } },
    { debug: 'DEBUG=1', short: 'b', env: { DEBUG: '1' } },
    { debug: 'DEBUG=*', short: 'c', env: { DEBUG: '*' } },
  ]

  it.each(DEBUGS)('Given the right CA, client certificate and password ($debug), When watch runs, Then it registers the containers (oracle passes within 15 s) and exits 0 on SIGTERM', async ({ debug, short, env: extra }) => {
    const node = `f-tls-${short}-${tag}`
    await pool.run(`tls-${short}`)
    const agent = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, etcdEndpoints: [tls.endpoint], args: [...tlsFlags().slice(2), '--no-exposed-by-default', '--ttl', '3s'], env: extra })
    agents.push(agent)
    const report = await expectConverged({ etcd: client, prefix, hosts: [{ node, docker }], labels: pool.labels, scope: pool.owns }, { withinMs: 15_000 })
    expect(report.expected.length).toBeGreaterThan(0)
    const code = await agent.stop('SIGTERM')
    outputs.push({ what: `watch (right credentials, DEBUG ${debug})`, text: agent.proc.stdout + agent.proc.stderr })
    expect(code).toBe(0)
  })

  const wrong = [
    { what: 'a CA that did not sign the server certificate', flags: () => tlsFlags({ cacert: tls.otherCa }), cause: /TLS|certificate/i },
    { what: 'an expired client certificate', flags: () => tlsFlags({ cert: tls.expiredCert, key: tls.expiredKey }), cause: /expired/i },
    { what: 'a bad password', flags: () => tlsFlags({ password: 'not-the-password' }), cause: /authentication failed/i },
  ]

  it.each(wrong)('Given $what, When watch runs (plain and --json; DEBUG unset, 1 and *), Then it exits 3 within 20 s with one line naming the endpoint and the cause', async ({ what, flags, cause }) => {
    const base = ['watch', ...flags(), '--prefix', prefix, '--node', `f-tls-bad-${tag}`, '--docker-host', env.dockerHost, '--no-exposed-by-default', '--ttl', '3s']
    // The four variants run side by side: each either fails fast or is killed at the bound
    const variants = [undefined, '1', '*'].flatMap((debug) => [
      { mode: `plain, DEBUG ${debug ?? 'unset'}`, args: base, debug },
      { mode: `--json, DEBUG ${debug ?? 'unset'}`, args: [...base, '--json'], debug },
    ])
    const runs = await Promise.all(variants.map(async (v) => ({ mode: v.mode, result: await runBounded(v.args, { DEBUG: v.debug }) })))
    for (const { mode, result } of runs) outputs.push({ what: `watch with ${what} (${mode})`, text: result.stdout + result.stderr })
    for (const { mode, result } of runs) {
      const label = `${what}, ${mode}: exit ${result.code}\nstdout: ${result.stdout.slice(-1500)}\nstderr: ${result.stderr.slice(-1500)}`
      expect(result.code, label).toBe(3)
      if (mode.startsWith('plain')) {
        // (DEBUG=* adds other libraries' timestamped debug lines; the error line is still one)
        const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('Error: '))
        expect(errorLines, label).toHaveLength(1)
        expect(errorLines[0], label).toContain('127.0.0.1:23794')
        expect(errorLines[0], label).toMatch(cause)
        if (mode.includes('DEBUG unset')) expect(result.stderr, label).not.toMatch(/^\s+at /m)
      } else {
        // With --json: NDJSON events, the last line the error object
        const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { error?: { message: string; exitCode: number } }
        expect(last.error?.exitCode, label).toBe(3)
        expect(last.error?.message, label).toContain('127.0.0.1:23794')
        expect(last.error?.message, label).toMatch(cause)
      }
    }
    console.log(`[security] ${what}: ${runs[0].result.stderr.split('\n').find((l) => l.startsWith('Error: '))}`)
  })

  it('Given the password as a flag, When the agent runs, Then its command line (ps, /proc/<pid>/cmdline) does not show it', async () => {
    const node = `f-tls-ps-${tag}`
    const agent = await startFaultAgent({ prefix, node, dockerHost: env.dockerHost, etcdEndpoints: [tls.endpoint], args: [...tlsFlags().slice(2), '--no-exposed-by-default', '--ttl', '3s'] })
    agents.push(agent)
    // Then what `ps` reads holds no password…
    const cmdline = readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
    expect(cmdline).not.toContain(tls.password)
    expect(cmdline).toContain('--etcd-user')
    outputs.push({ what: 'the agent command line as ps shows it', text: cmdline })
    expect(await agent.stop('SIGTERM')).toBe(0)
  })

  it('Given every output above (successful and failed runs; DEBUG unset, 1 and *), When searched for secrets, Then neither the password nor any line of a private key appears', () => {
    expect(outputs.length).toBe(DEBUGS.length + wrong.length * 6 + 1)
    const leaks = outputs.flatMap(({ what, text }) =>
      SECRETS.filter((secret) => text.includes(secret)).map((secret) => {
        const line = text.split('\n').find((l) => l.includes(secret))!
        return `${what} leaks ${secret === tls.password ? 'the etcd password' : 'private key material'}: ${line.replaceAll(secret, '<SECRET>').slice(0, 200)}`
      }),
    )
    expect([...new Set(leaks)]).toEqual([])
  })
})
