import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, instancesUnder, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * `watch --filter`: several agents share one dockerd, each owning the containers Docker lists
 * with its filter (docker-gen's -container-filter, Traefik's constraints), in docker ps syntax.
 */
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const host = new Containers(dockerAt(env.dockerHost), `filter-${tag}`)
const prefix = uniquePrefix('filter')
const agents: AgentProcess[] = []
let teamA: AgentProcess
let teamB: AgentProcess
let named: AgentProcess

/** Which node holds each of this file's containers (by container name). */
async function owners(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const { record } of await instancesUnder(etcd, prefix)) {
    const name = record.container?.name
    if (name) (out[name] ??= []).push(record.node)
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)))
}

beforeAll(async () => {
  await host.docker.getImage(env.image).inspect()
  await Promise.all([
    host.run('a1', { labels: { team: `a-${tag}` } }),
    host.run('b1', { labels: { team: `b-${tag}` } }),
    host.run('none'),
    host.run(`keep`),
  ])
  const quiet = ['--resync', '2s', '--ttl', '3s']
  ;[teamA, teamB, named] = await Promise.all([
    startAgent({ prefix, node: `team-a-${tag}`, args: [...quiet, '--filter', `label=team=a-${tag}`] }),
    startAgent({ prefix, node: `team-b-${tag}`, args: [...quiet, '--filter', `label=team=b-${tag}`, '--filter', `label=discovery-test-agent`] }),
    startAgent({ prefix, node: `named-${tag}`, args: [...quiet, '--filter', `name=${host.name('keep')}`] }),
  ])
  agents.push(teamA, teamB, named)
}, 120_000)

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))
  await host.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('watch --filter', () => {
  it('Given three agents with label and name filters on one dockerd, When they resync, Then each owns exactly the containers Docker lists with its filter, and nobody else’s', async () => {
    const expected = Object.fromEntries(
      [
        [host.name('a1'), [teamA.node]],
        [host.name('b1'), [teamB.node]],
        [host.name('keep'), [named.node]],
      ].sort(([a], [b]) => (a < b ? -1 : 1)),
    )
    let seen: Record<string, string[]> = {}
    await waitFor(async () => JSON.stringify((seen = await owners())) === JSON.stringify(expected) || undefined, 30_000, 'each container registered by its own agent').catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(seen)}`)
    })
    // Resyncs list with the filter too: still the same after two more passes of every agent.
    await Promise.all(agents.map((a) => a.waitForResyncs(2)))
    expect(await owners()).toEqual(expected)
    // Other test files' containers on this dockerd are nobody's here either.
    const nodes = new Set((await instancesUnder(etcd, prefix)).map((i) => i.record.node))
    expect([...nodes].sort()).toEqual([teamA.node, teamB.node, named.node].sort())
  })

  it('Given the agents running, When a team-b container starts, Then team b registers it within seconds and team a never does', async () => {
    await host.run('b2', { labels: { team: `b-${tag}` } })
    await waitFor(async () => (await owners())[host.name('b2')]?.length === 1 || undefined, 20_000, 'the new team-b container registered')
    await teamA.waitForResyncs(2)
    expect((await owners())[host.name('b2')]).toEqual([teamB.node])
  })

  it('Given an agent filtering by name with a 5-minute resync, When its container is renamed out of the filter, Then the rename event alone removes its record; renamed back, it returns', async () => {
    // No resync comes to help within the test: only the rename events can do it.
    const slow = await startAgent({ prefix, node: `renames-${tag}`, args: ['--resync', '5m', '--ttl', '3s', '--filter', `name=${host.name('keep')}`] })
    agents.push(slow)
    await waitFor(async () => (await instancesUnder(etcd, prefix, slow.node)).length === 1 || undefined, 20_000, 'the named container registered by the slow agent')
    await waitFor(async () => (await instancesUnder(etcd, prefix, named.node)).length === 1 || undefined, 20_000, 'the named container registered')
    // By id: after the rename the old name names nothing.
    const keep = host.docker.getContainer((await host.docker.getContainer(host.name('keep')).inspect()).Id)
    await keep.rename({ name: host.name('renamed') })
    await waitFor(async () => !(await instancesUnder(etcd, prefix, slow.node)).length || undefined, 15_000, 'the renamed container deregistered')
    await keep.rename({ name: host.name('keep') })
    await waitFor(async () => (await instancesUnder(etcd, prefix, slow.node)).length === 1 || undefined, 15_000, 'registered again under its old name')
    expect(slow.eventsOf('resync')).toHaveLength(1)
  })

  it.each([
    ['status=running', /--filter: 'status=running' is not a container filter the agent takes \(the agent follows status itself\)/],
    ['label=', /--filter: 'label=' needs a value/],
  ])('Given --filter %s, When watch starts, Then it exits 2 with one line naming the value', async (value, message) => {
    const result = await runCli(['watch', '--json', '--filter', value, '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix])
    expect(result.code).toBe(2)
    // --json: the error is one JSON line on stdout.
    expect(JSON.parse(result.stdout).error.message).toMatch(message)
    expect(result.stdout + result.stderr).not.toMatch(/\n\s+at /)
  })
})
