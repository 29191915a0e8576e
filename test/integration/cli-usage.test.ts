import { describe, expect, it } from 'vitest'
import { runCli, uniquePrefix, type CliResult } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/** The built CLI's usage errors, help and colour handling, run as a user runs it. */
const COMMANDS = ['watch', 'register', 'deregister', 'list', 'status', 'probe', 'doctor'] as const
const ANSI = /\u001b\[/

/** stderr holds exactly one line, the error, and no stack trace anywhere. */
function expectOneErrorLine(result: CliResult): string {
  const lines = result.stderr.split('\n').filter((line) => line.trim().length > 0)
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^Error: /)
  expect(result.stdout + result.stderr).not.toContain('    at ')
  return lines[0]
}

describe('usage errors exit 2 with one line', () => {
  it.each([
    { name: 'an unknown flag', argv: ['list', '--bogus'], line: 'Error: Nonexistent flag: --bogus (see discovery-agent list --help)' },
    { name: 'a missing argument', argv: ['deregister', 'web'], line: 'Error: Missing 1 required arg: id (see discovery-agent deregister --help)' },
    { name: 'missing required flags', argv: ['register', 'web'], line: 'Error: Missing required flag address; Missing required flag port (see discovery-agent register --help)' },
    { name: 'an unexpected argument', argv: ['list', 'web', 'extra'], line: 'Error: Unexpected argument: extra (see discovery-agent list --help)' },
    { name: 'a flag without its value', argv: ['list', '--prefix'], line: 'Error: Flag --prefix expects a value (see discovery-agent list --help)' },
    { name: "--prefix 'x'", argv: ['list', '--prefix', 'x'], line: "Error: --prefix: prefix 'x' must start with / (use e.g. /discovery)" },
    { name: "--prefix '/a/../b'", argv: ['doctor', '--prefix', '/a/../b'], line: "Error: --prefix: prefix '/a/../b' contains '..', '.' or an empty segment (use e.g. /discovery or /team-a/discovery)" },
    { name: 'a bad endpoint', argv: ['list', '--etcd-endpoints', 'ftp://x:1'], line: "Error: --etcd-endpoints: 'ftp://x:1' has scheme ftp: (etcd speaks http or https) (use http://host:port or https://host:port)" },
    { name: '--etcd-cert without --etcd-key', argv: ['doctor', '--etcd-cert', '/tmp/c.crt'], line: 'Error: a client certificate needs its key: --etcd-cert is set but no client key is (pass both --etcd-cert and --etcd-key (or ETCDCTL_CERT and ETCDCTL_KEY))' },
    { name: 'an explicit --config that does not exist', argv: ['list', '--config', '/nonexistent/discovery.yaml'], line: 'Error: --config: config file /nonexistent/discovery.yaml does not exist (fix --config or create the file)' },
  ])('Given $name, When the CLI runs, Then exit 2 and: $line', async ({ argv, line }) => {
    // When
    const result = await runCli(argv)
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(2)
    expect(expectOneErrorLine(result)).toBe(line)
    expect(result.stdout).toBe('')
  })

  it('Given DISCOVERY_TTL=abc, When watch runs, Then exit 2 naming the variable, before touching Docker or etcd', async () => {
    // When
    const result = await runCli(['watch', '--etcd-endpoints', '127.0.0.1:1', '--prefix', uniquePrefix('usage')], { env: { DISCOVERY_TTL: 'abc' }, timeoutMs: 30_000 })
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(2)
    expect(expectOneErrorLine(result)).toMatch(/^Error: DISCOVERY_TTL: 'abc' is not a duration \(use a number with a unit/)
  })

  it('Given a bad prefix in DISCOVERY_PREFIX, When list runs, Then exit 2 naming the variable', async () => {
    // When
    const result = await runCli(['list'], { env: { DISCOVERY_PREFIX: 'x' } })
    // Then
    expect(result.code).toBe(2)
    expect(expectOneErrorLine(result)).toBe("Error: DISCOVERY_PREFIX: prefix 'x' must start with / (use e.g. /discovery)")
  })

  it('Given an unknown flag and --json, When the CLI runs, Then exit 2 with a JSON error on stdout', async () => {
    // When
    const result = await runCli(['list', '--bogus', '--json'])
    // Then
    expect(result.code).toBe(2)
    expect(JSON.parse(result.stdout)).toEqual({
      error: { kind: 'usage', message: 'Nonexistent flag: --bogus', hint: 'see discovery-agent list --help', exitCode: 2 },
    })
  })
})

describe('help', () => {
  it.each(COMMANDS)('Given %s --help, When the CLI runs, Then exit 0 with a summary, usage and examples using long flags', async (command) => {
    // When
    const result = await runCli([command, '--help'])
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain('USAGE')
    expect(result.stdout).toContain(`$ discovery-agent ${command}`)
    expect(result.stdout).toContain('EXAMPLES')
    const examples = result.stdout.slice(result.stdout.indexOf('EXAMPLES'))
    expect(examples).toMatch(new RegExp(`\\$ discovery-agent ${command}`))
    // Short flags only inside quoted commands (e.g. probe --exec "wget -q …"), never as our own flags.
    expect(examples.replace(/"[^"]*"|'[^']*'/g, '')).not.toMatch(/ -[a-zA-Z]\b/)
    expect(result.stdout).toMatch(/--etcd-endpoints/)
  })

  it.each([
    { argv: ['help', 'list'], usage: '$ discovery-agent list' },
    { argv: ['help', 'maint', 'enable'], usage: '$ discovery-agent maint enable' },
    { argv: ['help', 'list', 'web'], usage: '$ discovery-agent list' },
  ])('Given help $argv.1, When the CLI runs, Then exit 0 with that command\'s usage', async ({ argv, usage }) => {
    // When
    const result = await runCli(argv)
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain(usage)
    expect(result.stderr).toBe('')
  })

  it.each([{ argv: ['nope'] }, { argv: ['help', 'nope'] }])('Given $argv, When the CLI runs, Then exit 2 with one line naming it and the commands there are', async ({ argv }) => {
    // When
    const result = await runCli(argv)
    // Then
    expect(result.code).toBe(2)
    expect(expectOneErrorLine(result)).toBe(
      "Error: 'nope' is not a discovery-agent command (commands: config get, config set, config unset, deregister, doctor, list, maint disable, maint enable, maint list, probe, register, reload, serve, status, watch)",
    )
    expect(result.stdout).toBe('')
  })

  it('Given --help, When the CLI runs, Then it lists the seven commands with one-line summaries', async () => {
    // When
    const result = await runCli(['--help'])
    // Then
    expect(result.code).toBe(0)
    const commands = result.stdout.slice(result.stdout.indexOf('COMMANDS'))
    for (const command of COMMANDS) expect(commands).toMatch(new RegExp(`^\\s+${command}\\s+\\S`, 'm'))
  })
})

describe('colour', () => {
  const env = testEnv()
  const args = ['doctor', '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', uniquePrefix('colour'), '--docker-host', env.dockerHost]

  it('Given FORCE_COLOR=1 alone, When doctor runs, Then its icons are coloured (so the checks below mean something)', async () => {
    // When
    const result = await runCli(args, { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } })
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(result.stdout).toMatch(ANSI)
  })

  it.each([
    { name: 'NO_COLOR=1 with FORCE_COLOR=1', env: { NO_COLOR: '1', FORCE_COLOR: '1' }, extra: [] as string[] },
    { name: '--no-color with FORCE_COLOR=1', env: { NO_COLOR: undefined, FORCE_COLOR: '1' }, extra: ['--no-color'] },
  ])('Given $name, When doctor runs, Then no output holds an ANSI escape', async ({ env: vars, extra }) => {
    // When
    const result = await runCli([...args, ...extra], { env: vars })
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(result.stdout).toContain('✓ docker reachable')
    expect(result.stdout).not.toMatch(ANSI)
    expect(result.stderr).not.toMatch(ANSI)
  })

  it.each([
    { name: 'NO_COLOR=1', env: { NO_COLOR: '1', FORCE_COLOR: '1' }, extra: [] as string[] },
    { name: '--no-color', env: { NO_COLOR: undefined, FORCE_COLOR: '1' }, extra: ['--no-color'] },
  ])('Given $name and a usage error, When the CLI runs, Then the error line holds no ANSI escape', async ({ env: vars, extra }) => {
    // When
    const result = await runCli(['list', '--prefix', 'x', ...extra], { env: vars })
    // Then
    expect(result.code).toBe(2)
    expect(result.stderr).not.toMatch(ANSI)
  })
})
