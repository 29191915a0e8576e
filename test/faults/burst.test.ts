import { afterAll, describe, expect, it } from 'vitest'
import { uniquePrefix } from '../support/cli.js'
import { dockerAt, etcdClient, nodeRecord, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { FaultContainers, faultTag, rssMiB, startFaultAgent } from '../support/faults.js'
import { expectConverged, type OracleInput } from '../support/oracle.js'

/**
 * A burst on the test host: 210 containers started at once (eight `docker run`s in flight
 * at a time, through the API), then half of them removed at once. The containers use host
 * networking (no network namespace to set up, so dockerd starts them about twice as fast on
 * this 2-core machine, and the test host's /24 bridge, which other tests use, is not
 * exhausted); the agent registers each exposed port at --advertise-address.
 */
const COUNT = 210
const PARALLEL = 8
const env = testEnv()
const etcd = etcdClient()
const docker2 = dockerAt(env.docker2Host)
const tag = faultTag()
const pool = new FaultContainers(docker2, tag)
const prefix = uniquePrefix('f-burst')
const node = `f-burst-${tag}`
let agent: AgentProcess | undefined

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

afterAll(async () => {
  await agent?.stop('SIGKILL')
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('faults: burst', () => {
  it(`Given a running agent, When ${COUNT} containers start at once and then half are removed at once, Then the oracle passes after each step (bounds 90 s and 60 s), no lease is lost, and its memory is reported`, async () => {
    const input: OracleInput = { etcd, prefix, hosts: [{ node, docker: docker2, advertiseAddress: '127.0.0.1' }], labels: pool.labels, scope: pool.owns }
    agent = await startFaultAgent({
      prefix,
      node,
      dockerHost: env.docker2Host,
      args: ['--no-exposed-by-default', '--ttl', '3s', '--resync', '10s', '--advertise-address', '127.0.0.1'],
    })
    const lease = agent.lease
    const rssIdle = rssMiB(agent.pid)

    // When: the burst
    const names = Array.from({ length: COUNT }, (_, i) => `b${i}`)
    const startedAt = Date.now()
    await inParallel(names, PARALLEL, (short) => pool.run(short, { publish: [], expose: ['80/tcp'], network: 'host', cmd: ['sleep', '3600'] }))
    const startsTook = Date.now() - startedAt
    // Then
    const up = await expectConverged(input, { withinMs: 90_000, everyMs: 1_000 })
    expect(up.expected).toHaveLength(COUNT)
    const rssFull = rssMiB(agent.pid)
    console.log(`[burst] ${COUNT} containers started in ${startsTook} ms; registry equal to Docker ${up.tookMs} ms after the last start; agent VmRSS ${rssIdle} MiB idle → ${rssFull} MiB with ${COUNT} instances`)

    // When: half removed at once
    const removedAt = Date.now()
    await inParallel(names.filter((_, i) => i % 2 === 0), PARALLEL, (short) => pool.remove(short))
    const removesTook = Date.now() - removedAt
    // Then
    const half = await expectConverged(input, { withinMs: 60_000, everyMs: 1_000 })
    expect(half.expected).toHaveLength(COUNT / 2)
    const rssHalf = rssMiB(agent.pid)
    console.log(`[burst] ${COUNT / 2} removed in ${removesTook} ms; registry equal ${half.tookMs} ms after the last removal; agent VmRSS ${rssHalf} MiB`)

    // And the agent kept its one lease all along
    expect(agent.eventsOf('lease.lost')).toEqual([])
    expect(agent.eventsOf('lease.renewed')).toEqual([])
    expect((await nodeRecord(etcd, prefix, node))?.lease).toBe(lease)
    expect(agent.proc.child.exitCode).toBeNull()
    // Memory is budgeted in bench/; here only a gross leak fails the test
    expect(rssHalf - rssIdle).toBeLessThan(150)
  })
})
