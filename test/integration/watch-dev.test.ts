import { existsSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli, startCli, waitFor, type LiveProcess } from '../support/cli.js'

/** `watch --dev`: a throwaway etcd from the `etcd` binary on PATH, used by the agent, gone on exit. */
let agent: LiveProcess | undefined

afterAll(async () => {
  await agent?.stop('SIGKILL')
})

describe('watch --dev', () => {
  it('Given no etcd endpoints, When watch --dev runs, Then it starts its own etcd, the agent registers there, and SIGTERM removes etcd and its data dir', async () => {
    // Given/When
    agent = startCli(['watch', '--dev', '--json', '--node', `dev-${process.pid}`, '--no-exposed-by-default'])
    const started = await waitFor(
      () => agent!.lines().map((l) => JSON.parse(l) as { type: string; etcd?: string[] }).find((e) => e.type === 'agent.started'),
      30_000,
      `agent.started; stderr: ${agent.stderr}`,
    )
    // Then the agent uses a loopback etcd that this run started
    const endpoint = started.etcd![0]
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const dataDir = /data in (\S+),/.exec(agent.stderr)?.[1]
    expect(dataDir, agent.stderr).toBeDefined()
    expect(existsSync(dataDir!)).toBe(true)
    const status = await runCli(['status', '--json', '--etcd-endpoints', endpoint])
    expect(status.code).toBe(0)
    expect(JSON.parse(status.stdout).nodes.map((n: { node: string }) => n.node)).toEqual([`dev-${process.pid}`])
    // When it is stopped, Then it exits 0 and the throwaway etcd and its data are gone
    expect(await agent.stop('SIGTERM')).toBe(0)
    expect(existsSync(dataDir!)).toBe(false)
    const after = await runCli(['list', '--etcd-endpoints', endpoint], { timeoutMs: 20_000 })
    expect(after.code).toBe(3)
  })

  it('Given --dev and --etcd-endpoints together, When watch starts, Then it exits 2 naming both flags', async () => {
    const result = await runCli(['watch', '--dev', '--etcd-endpoints', '127.0.0.1:2379'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--dev.*--etcd-endpoints/)
  })
})
