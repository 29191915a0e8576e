import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, PrefixRecorder, dockerAt, etcdClient, instancesUnder, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * Two Docker hosts: the host's dockerd and a second dockerd (its own bridge and data root)
 * stand for two machines, each with its own agent, sharing one registry prefix. The second
 * daemon is also restarted under its agent (never the host's: other tests use it).
 */
const env = testEnv()
const exec = promisify(execFile)
const etcd = etcdClient()
const tag = uniqueSuffix()
const host1 = new Containers(dockerAt(env.dockerHost), tag)
const host2 = new Containers(dockerAt(env.docker2Host), tag)
const prefix = uniquePrefix('agent-hosts')
const node1 = `host1-${tag}`
const node2 = `host2-${tag}`
const agents: AgentProcess[] = []

/** `<container>:<port>` → host port of every published port of every running container of a daemon (as `docker ps` shows). */
async function publishedOf(containers: Containers): Promise<{ all: Map<string, number>; plain: Map<string, number> }> {
  const all = new Map<string, number>()
  const plain = new Map<string, number>()
  for (const c of await containers.docker.listContainers()) {
    // Containers with discovery or Registrator labels may rightly be left out (opted out, malformed…);
    // plain ones, like this file's, must all be registered.
    const labelled = Object.keys(c.Labels).some((k) => k.startsWith('discovery.') || k.startsWith('SERVICE_'))
    for (const port of c.Ports) {
      if (!port.PublicPort) continue
      const key = `${c.Names[0].replace(/^\//, '')}:${port.PrivatePort}`
      all.set(key, port.PublicPort)
      if (!labelled) plain.set(key, port.PublicPort)
    }
  }
  return { all, plain }
}

async function registeredOf(node: string): Promise<Map<string, number>> {
  const found = new Map<string, number>()
  for (const i of await instancesUnder(etcd, prefix, node)) found.set(`${i.record.container?.name}:${i.record.container?.port}`, i.record.port)
  return found
}

/** The registry equals `docker ps`: every record backs a running container's published port, and every plain one is registered. */
async function registryMatchesDocker(containers: Containers, node: string): Promise<boolean> {
  const registered = await registeredOf(node)
  const { all, plain } = await publishedOf(containers)
  return [...registered].every(([k, port]) => all.get(k) === port) && [...plain].every(([k, port]) => registered.get(k) === port)
}

let agent1: AgentProcess
let agent2: AgentProcess

beforeAll(async () => {
  await host1.docker.getImage(env.image).inspect()
  await host2.docker.getImage(env.image).inspect()
  // Given one agent per daemon, as on two machines
  agent1 = await startAgent({ prefix, node: node1, args: ['--ttl', '3s'] })
  agent2 = await startAgent({ prefix, node: node2, dockerHost: env.docker2Host, args: ['--ttl', '3s'] })
  agents.push(agent1, agent2)
})

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()))
  // The second daemon must be up again for the next test file, whatever happened here.
  await exec('bash', [env.script, 'docker2-start'], { timeout: 120_000 }).catch(() => undefined)
  await host1.removeAll()
  await host2.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec()
  etcd.close()
})

describe('watch: two Docker hosts', () => {
  it('Given one agent per host, When containers run on both, Then each agent registers only its own host\'s containers', async () => {
    // When a container starts on each host
    const on1 = await host1.run('h1')
    const on2 = await host2.run('h2')

    // Then each is registered by its own host's agent, at its own host port
    await waitFor(async () => (await registeredOf(node1)).has(`${on1.name}:80`), 15_000, 'host 1 container registered by host 1')
    await waitFor(async () => (await registeredOf(node2)).has(`${on2.name}:80`), 15_000, 'host 2 container registered by host 2')
    // And every record of a node backs a running container of that node's daemon, nothing else
    await waitFor(() => registryMatchesDocker(host2, node2), 15_000, 'host 2 registry equal to host 2 docker ps')
    const records1 = await instancesUnder(etcd, prefix, node1)
    const records2 = await instancesUnder(etcd, prefix, node2)
    const ids1 = new Set((await host1.docker.listContainers({ all: true })).map((c) => c.Id))
    const ids2 = new Set((await host2.docker.listContainers({ all: true })).map((c) => c.Id))
    for (const i of records1) expect(ids2.has(i.record.container!.id)).toBe(false)
    for (const i of records2) {
      expect(ids1.has(i.record.container!.id)).toBe(false)
      expect(i.lease).toBe(agent2.lease)
    }
    expect(records1.some((i) => i.record.container?.name === on2.name)).toBe(false)
    expect(records2.some((i) => i.record.container?.name === on1.name)).toBe(false)
  })

  it('Given containers on the second host, When its dockerd restarts under the running agent, Then afterwards the registry equals docker ps (restart=always included)', async () => {
    // Given a --restart=always container (two ports), and a plain one that won't come back
    const always = await host2.run('always', { restartAlways: true, stopTimeout: 1, publish: ['80/tcp', '8080/tcp'] })
    const plain = await host2.run('plain', { stopTimeout: 1 })
    await waitFor(async () => {
      const got = await registeredOf(node2)
      return got.has(`${always.name}:80`) && got.has(`${always.name}:8080`) && got.has(`${plain.name}:80`)
    }, 15_000, 'both registered before the restart')

    // When the daemon stops…
    await exec('bash', [env.script, 'docker2-stop'], { timeout: 120_000 })
    await agent2.waitForEvent((e) => e.type === 'docker.disconnected', 'the agent to notice the daemon is gone')
    // …and starts again
    await exec('bash', [env.script, 'docker2-start'], { timeout: 120_000 })

    // Then the agent reconnects and resyncs
    await agent2.waitForEvent((e) => e.type === 'docker.connected' && e.reconnect === true, 'the agent to reconnect', 60_000)
    // And the registry equals what runs: the restart=always container at its (possibly new) ports, not the plain one
    await waitFor(() => registryMatchesDocker(host2, node2), 60_000, 'host 2 registry equal to host 2 docker ps after the restart')
    const got = await registeredOf(node2)
    expect(got.get(`${always.name}:80`)).toBe(await host2.hostPort(always.name, '80/tcp'))
    expect(got.get(`${always.name}:8080`)).toBe(await host2.hostPort(always.name, '8080/tcp'))
    expect(got.has(`${plain.name}:80`)).toBe(false)
    // And it stays so across a later full resync (the plain container doesn't flap back)
    await agent2.waitForResyncs(1, 60_000)
    expect((await registeredOf(node2)).has(`${plain.name}:80`)).toBe(false)
    await waitFor(() => registryMatchesDocker(host2, node2), 15_000, 'host 2 registry still equal to docker ps')
    // And the agent kept running all along, on the same lease
    expect(agent2.proc.child.exitCode).toBeNull()
    for (const i of await instancesUnder(etcd, prefix, node2)) expect(i.lease).toBe(agent2.lease)
  })

  it('Given both agents registered, When the first host\'s agent is killed, Then its records expire and the second host\'s records are untouched', async () => {
    const on1 = await host1.run('h1-kill')
    const on2 = await host2.run('h2-kill')
    await waitFor(async () => (await registeredOf(node1)).has(`${on1.name}:80`) && (await registeredOf(node2)).has(`${on2.name}:80`), 15_000, 'both registered')
    // (only this file's containers: others' tests may start and stop containers on host 2 meanwhile)
    const mine = (i: { record: { container?: { name: string } } }) => i.record.container?.name.endsWith(tag) === true
    const before2 = (await instancesUnder(etcd, prefix, node2)).filter(mine)
    const recorder = await new PrefixRecorder(etcd, `${prefix}/`).start()

    // When agent 1 dies without revoking
    await agent1.stop('SIGKILL')

    // Then agent 1's records expire with its lease (TTL 3 s)
    await waitFor(async () => (await instancesUnder(etcd, prefix, node1)).length === 0, 15_000, 'host 1 records expired')
    // And agent 2's records were not touched: same revisions, no delete, no put
    const after2 = (await instancesUnder(etcd, prefix, node2)).filter(mine)
    expect(after2.map((i) => [i.key, i.modRevision])).toEqual(before2.map((i) => [i.key, i.modRevision]))
    const touched = recorder.changes.filter((c) => before2.some((i) => i.key === c.key))
    expect(touched).toEqual([])
    expect(after2.some((i) => i.record.container?.name === on2.name)).toBe(true)
    await recorder.stop()
  })
})
