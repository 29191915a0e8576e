import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, etcdFlags, runCli, startCli, uniquePrefix, waitFor } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { docker } from '../support/tmux.js'

/**
 * What the CLI prints when stdout is not a terminal: NO_COLOR (and no colour without a TTY
 * anyway) means no ANSI codes at all, in plain `watch` lines, `list` and `status`; FORCE_COLOR
 * shows colour is otherwise possible (so "no ANSI" proves NO_COLOR was honoured); `--json` is
 * JSON, one document per line for streams.
 */
const env = testEnv()
const tag = randomBytes(3).toString('hex')
const label = `discovery-test-output=${tag}`
const prefix = uniquePrefix('output')
const node = `output-${tag}`
const container = `o-${tag}`
const ANSI = /\u001b\[/

beforeAll(async () => {
  await docker(['run', '-d', '--pull', 'never', '--name', container, '-l', label, '-p', '127.0.0.1::80', '--stop-timeout', '1', env.image])
  // A manual instance too, so list and status have a health word to colour
  const registered = await runCli(['register', 'ext-db', '--address', '10.0.0.9', '--port', '5432', '--id', `db-${tag}`, ...etcdFlags(prefix)])
  expect(registered.code, registered.stderr).toBe(0)
})

afterAll(async () => {
  await docker(['rm', '-f', container]).catch(() => undefined)
  await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
})

/** Runs `watch` in plain or JSON mode until this file's container is registered, then stops it (SIGTERM). */
async function watchUntilRegistered(extraArgs: string[], cliEnvExtra: Record<string, string | undefined>): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const agent = startCli(['watch', ...etcdFlags(prefix), '--docker-host', env.dockerHost, '--node', node, ...extraArgs], { env: cliEnvExtra })
  try {
    await waitFor(() => agent.stdout.includes(`${node}:${container}:80`), 60_000, `watch ${extraArgs.join(' ')} to register the container`)
  } finally {
    await agent.stop('SIGTERM', 15_000)
  }
  return { stdout: agent.stdout, stderr: agent.stderr, code: await agent.exited }
}

describe('plain watch (stdout not a terminal)', () => {
  it.each([
    { name: 'NO_COLOR=1', env: { NO_COLOR: '1' }, ansi: false },
    { name: 'neither NO_COLOR nor FORCE_COLOR', env: { NO_COLOR: undefined }, ansi: false },
    { name: 'NO_COLOR=1 and FORCE_COLOR=1 (NO_COLOR wins)', env: { NO_COLOR: '1', FORCE_COLOR: '1' }, ansi: false },
    { name: 'FORCE_COLOR=1 (the control: colour is possible)', env: { NO_COLOR: undefined, FORCE_COLOR: '1' }, ansi: true },
  ])('Given $name, When watch prints events, Then timestamped lines, with ANSI codes only when forced', async ({ env: extra, ansi }) => {
    const { stdout, stderr, code } = await watchUntilRegistered([], extra)
    expect(code).toBe(0)
    expect(ANSI.test(stdout)).toBe(ansi)
    if (!ansi) expect(ANSI.test(stderr), stderr).toBe(false)
    const lines = stdout.split('\n').filter(Boolean)
    expect(lines.length).toBeGreaterThan(2)
    // Every line starts with an ISO timestamp (after colour codes, when forced)
    for (const line of lines) expect(line.replace(/\u001b\[[0-9;]*m/g, '')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S/)
    expect(stdout).toMatch(new RegExp(`registered busybox ${node}:${container}:80 at 127\\.0\\.0\\.1:\\d+ \\(passing\\)`))
  })
})

describe('watch --json', () => {
  it('Given --json, When watch runs and stops, Then every stdout line is one JSON event with ts and type, and none has ANSI codes', async () => {
    const { stdout, code } = await watchUntilRegistered(['--json'], { FORCE_COLOR: '1' })
    expect(code).toBe(0)
    const events = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { ts: string; type: string })
    for (const event of events) {
      expect(event.ts).toMatch(/^\d{4}-\d\d-\d\dT/)
      expect(typeof event.type).toBe('string')
    }
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['agent.started', 'instance.registered', 'agent.stopping', 'agent.stopped']))
    expect(ANSI.test(stdout)).toBe(false)
  })
})

describe('list and status', () => {
  it.each([
    { name: 'NO_COLOR=1', env: { NO_COLOR: '1' }, ansi: false },
    { name: 'NO_COLOR=1 and FORCE_COLOR=1', env: { NO_COLOR: '1', FORCE_COLOR: '1' }, ansi: false },
    { name: 'FORCE_COLOR=1 (the control)', env: { NO_COLOR: undefined, FORCE_COLOR: '1' }, ansi: true },
  ])('Given $name, When list and status print, Then ANSI codes appear only when forced', async ({ env: extra, ansi }) => {
    const list = await runCli(['list', ...etcdFlags(prefix)], { env: extra })
    expect(list.code, list.stderr).toBe(0)
    expect(list.stdout.replace(/\u001b\[[0-9;]*m/g, '')).toMatch(new RegExp(`^ext-db +db-${tag} +10\\.0\\.0\\.9:5432 +passing`, 'm'))
    expect(ANSI.test(list.stdout)).toBe(ansi)
    const status = await runCli(['status', ...etcdFlags(prefix)], { env: extra })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout.replace(/\u001b\[[0-9;]*m/g, '')).toMatch(/^Instances: 1 in 1 service: 1 passing/m)
    expect(ANSI.test(status.stdout)).toBe(ansi)
    if (!ansi) expect(ANSI.test(list.stderr + status.stderr)).toBe(false)
  })

  it('Given --json, When list, status and list --watch print, Then documents parse (one per line for the stream)', async () => {
    const list = await runCli(['list', '--json', ...etcdFlags(prefix)], { env: { FORCE_COLOR: '1' } })
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: `db-${tag}`, service: 'ext-db' })])
    const status = await runCli(['status', '--json', ...etcdFlags(prefix)], { env: { FORCE_COLOR: '1' } })
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ instances: { total: 1, passing: 1 } })

    const watching = startCli(['list', '--watch', '--json', ...etcdFlags(prefix)], { env: { FORCE_COLOR: '1' } })
    try {
      await waitFor(() => watching.stdout.includes('"ready"'), 30_000, 'list --watch to be ready')
      await runCli(['deregister', 'ext-db', `db-${tag}`, ...etcdFlags(prefix)])
      await waitFor(() => watching.stdout.includes('"removed"'), 30_000, 'the removal streamed')
    } finally {
      await watching.stop()
    }
    const lines = watching.lines().map((line) => JSON.parse(line) as { ts: string; type: string })
    expect(lines.map((l) => l.type)).toEqual(expect.arrayContaining(['added', 'ready', 'removed']))
    expect(ANSI.test(watching.stdout)).toBe(false)
  })
})
