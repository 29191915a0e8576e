import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testPorts } from '../support/ports.js'
import { runCli, startCli, uniquePrefix, waitFor, type LiveProcess } from '../support/cli.js'
import { PrivateEtcd } from '../support/faults.js'

/**
 * A member cut off from quorum: `serve` is connected to member 1 only, and members 2 and 3
 * are killed, so member 1 is alone without a leader. Its store is stale from then on; the
 * view must say so (watch refused: "no leader" → disconnected, /healthz 503) rather than keep
 * serving it as current, and follow again once quorum is back.
 */
let cluster: PrivateEtcd
const prefix = uniquePrefix('f-leader')
const processes: LiveProcess[] = []

beforeAll(async () => {
  cluster = await PrivateEtcd.start()
})

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  await cluster?.stop()
})

describe('a member without a leader', () => {
  it('Given serve connected to one member, When its two peers die, Then /healthz turns 503 (no stale view served as current), and 200 once quorum is back', async () => {
    const [httpPort] = await testPorts(1)
    const only = [cluster.endpoint(1)]
    const flags = ['--etcd-endpoints', only.join(','), '--prefix', prefix]
    const registered = await runCli(['register', 'web', '--address', '10.0.0.1', '--port', '80', ...flags])
    expect(registered.code, registered.stderr).toBe(0)
    const server = startCli(['serve', '--http-addr', `127.0.0.1:${httpPort}`, ...flags])
    processes.push(server)
    const healthz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined))?.status ?? 0
    await waitFor(async () => (await healthz()) === 200, 30_000, `serve healthy; stderr: ${server.stderr}`)
    // When member 1 is left alone (its peers killed): no leader after its election timeout
    await cluster.kill(2)
    await cluster.kill(3)
    const cutAt = performance.now()
    // Then the view stops claiming to follow etcd
    await waitFor(async () => (await healthz()) === 503, 30_000, `/healthz 503 while member 1 has no leader; stderr: ${server.stderr.slice(-1500)}`)
    console.log(`[require-leader] view reported disconnected ${Math.round(performance.now() - cutAt)} ms after member 1 lost its peers`)
    // …while it still answers from its last contents
    const services = await fetch(`http://127.0.0.1:${httpPort}/v1/catalog/services`)
    expect(await services.json()).toMatchObject({ web: [] })
    // When quorum is back
    cluster.startMember(2)
    cluster.startMember(3)
    await cluster.waitHealthy()
    // Then it follows again
    await waitFor(async () => (await healthz()) === 200, 60_000, '/healthz 200 after quorum is back')
  })
})
