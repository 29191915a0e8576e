import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../../src/core/model.js'
import { createResolver } from '../../src/core/resolver/resolver.js'
import { testPorts } from '../support/ports.js'
import { etcdFlags, runCli, uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, instancesUnder, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * Maintenance mode end to end: marks set with `maint`, reflected into records by their owners
 * (the agent for its containers, the leader for manual records), left out by every reader of
 * healthy instances, kept across an agent restart, lifted again; and the container label.
 */
const exec = promisify(execFile)
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const pool = new Containers(dockerAt(env.dockerHost), `maint-${tag}`)
const prefix = uniquePrefix('maint')
const node = `maint-${tag}`
const service = `mweb-${tag.replace(/[^a-z0-9]/g, '')}`
const agents: AgentProcess[] = []
let dnsPort: number

const ofService = async (): Promise<InstanceRecord[]> => (await instancesUnder(etcd, prefix)).map((r) => r.record).filter((r) => r.service === service)
const statuses = async (): Promise<string[]> => (await ofService()).map((r) => `${r.source}:${r.health.status}`).sort()

async function dig(name: string): Promise<string[]> {
  const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(dnsPort), '+short', '+tries=1', '+time=2', name, 'A'])
  return stdout.split('\n').filter(Boolean)
}

async function agent(): Promise<AgentProcess> {
  const started = await startAgent({ prefix, node, args: ['--dns-addr', `127.0.0.1:${dnsPort}`] })
  agents.push(started)
  return started
}

beforeAll(async () => {
  ;[dnsPort] = await testPorts(1)
})

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)))
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('maint', () => {
  it('Given a container and a manual record of one service, When the service goes into maintenance, Then both say so, every healthy view leaves them out, an agent restart keeps it, and disable brings them back', async () => {
    let watch = await agent()
    await pool.run('web', { env: { SERVICE_NAME: service } })
    const registered = await runCli(['register', service, '--address', '10.7.0.1', '--port', '80', '--id', `ext-${tag}`, ...etcdFlags(prefix)])
    expect(registered.code, registered.stderr).toBe(0)
    await waitFor(async () => (await statuses()).join() === 'docker:passing,manual:passing', 20_000, 'both passing')
    // When
    const enabled = await runCli(['maint', 'enable', '--service', service, '--reason', 'schema migration', '--json', ...etcdFlags(prefix)])
    expect(enabled.code, enabled.stderr).toBe(0)
    expect(JSON.parse(enabled.stdout)).toMatchObject({ target: `service ${service}`, reason: 'schema migration', by: expect.stringContaining('@') })
    // Then both records are in maintenance, with the reason
    await waitFor(async () => (await statuses()).join() === 'docker:maintenance,manual:maintenance', 20_000, `both in maintenance (now ${(await statuses()).join()})`)
    for (const r of await ofService()) expect(r.health.output).toContain('schema migration')
    // …and left out of list --healthy, status's healthy count and DNS
    const healthy = await runCli(['list', service, '--healthy', '--json', ...etcdFlags(prefix)])
    expect(JSON.parse(healthy.stdout)).toEqual([])
    const status = JSON.parse((await runCli(['status', '--json', ...etcdFlags(prefix)])).stdout) as { instances: { maintenance: number; healthy: number } }
    expect(status.instances.maintenance).toBe(2)
    await waitFor(async () => (await dig(`${service}.service.discovery`)).length === 0, 10_000, 'gone from DNS')
    const listed = JSON.parse((await runCli(['maint', 'list', '--json', ...etcdFlags(prefix)])).stdout) as { instances: number; reason: string }[]
    expect(listed).toEqual([expect.objectContaining({ reason: 'schema migration', instances: 2 })])
    // When the agent restarts, Then the mark holds
    expect(await watch.stop()).toBe(0)
    watch = await agent()
    await waitFor(async () => (await statuses()).join() === 'docker:maintenance,manual:maintenance', 20_000, 'still in maintenance after a restart')
    // When it is lifted, Then both come back; lifting again says there was nothing
    const disabled = await runCli(['maint', 'disable', '--service', service, ...etcdFlags(prefix)])
    expect(disabled.code, disabled.stderr).toBe(0)
    await waitFor(async () => (await statuses()).join() === 'docker:passing,manual:passing', 20_000, 'both back in rotation')
    await waitFor(async () => (await dig(`${service}.service.discovery`)).length === 2, 10_000, 'back in DNS')
    const again = await runCli(['maint', 'disable', '--service', service, ...etcdFlags(prefix)])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/is not in maintenance/)
  })

  it('Given the resolver library following the service, When a node goes into maintenance and back, Then its instances leave the healthy table within 1 s and return', async () => {
    const resolver = await createResolver(service, { etcdEndpoints: env.etcdEndpoints, prefix })
    try {
      await waitFor(() => resolver.instances().length === 2, 10_000, 'both in the resolver table')
      const started = performance.now()
      expect((await runCli(['maint', 'enable', '--node', node, '--reason', 'kernel upgrade', ...etcdFlags(prefix)])).code).toBe(0)
      // The container's record (on this node) leaves; the manual one (registered from here, node = this host) may stay.
      await waitFor(() => resolver.instances().every((i) => i.source !== 'docker'), 5_000, 'the node’s container out of the resolver table')
      const tookMs = performance.now() - started
      console.log(`[maint] resolver table left the node's instance ${Math.round(tookMs)} ms after maint enable started (CLI start included)`)
      expect(tookMs).toBeLessThan(2_000)
      expect((await runCli(['maint', 'disable', '--node', node, ...etcdFlags(prefix)])).code).toBe(0)
      await waitFor(() => resolver.instances().length === 2, 10_000, 'back in the resolver table')
    } finally {
      await resolver.close()
    }
  })

  it('Given one instance marked, When listed, Then only it is in maintenance', async () => {
    const [docker] = (await ofService()).filter((r) => r.source === 'docker')
    expect((await runCli(['maint', 'enable', '--service', service, '--id', docker.id, '--reason', 'heap dump', ...etcdFlags(prefix)])).code).toBe(0)
    await waitFor(async () => (await statuses()).join() === 'docker:maintenance,manual:passing', 20_000, 'only the docker instance in maintenance')
    expect((await runCli(['maint', 'disable', '--service', service, '--id', docker.id, ...etcdFlags(prefix)])).code).toBe(0)
    await waitFor(async () => (await statuses()).join() === 'docker:passing,manual:passing', 20_000, 'back')
  })

  it('Given a container labelled discovery.maintenance, When it runs, Then its instance is registered in maintenance with the label as the reason', async () => {
    const labelled = `${service}-lbl`
    await pool.run('lbl', { env: { SERVICE_NAME: labelled }, labels: { 'discovery.maintenance': 'canary held back' } })
    const record = await waitFor(async () => (await instancesUnder(etcd, prefix)).map((r) => r.record).find((r) => r.service === labelled), 20_000, 'labelled container registered')
    expect(record.health.status).toBe('maintenance')
    expect(record.health.output).toContain('canary held back')
  })

  it.each([
    [['--node', 'n1', '--service', 'web'], /--node goes alone/],
    [['--id', 'web-1'], /--id web-1 needs --service/],
    [[], /say what goes into maintenance/],
    [['--service', 'Bad_Name'], /service name 'Bad_Name'/],
  ])('Given maint enable %j, When it runs, Then exit 2 naming the problem and nothing written', async (args, message) => {
    const result = await runCli(['maint', 'enable', ...args, '--reason', 'x', ...etcdFlags(prefix)])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
  })
})
