import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { Etcd3 } from 'etcd3'
import { createEtcdClient } from '../../src/core/etcd.js'
import { ManagedLease } from '../../src/core/lease.js'
import { etcdctl, uniquePrefix, waitFor } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { getKvs, leaseTimeToLive, restoreEtcdCluster, testenv } from './registry-support.js'

/**
 * ManagedLease, driven directly against the real 3-member cluster: it keeps its keys through
 * the loss of any one member (no key ever missing, none extra), recovers from a lease that
 * etcd dropped by putting every key again, and revoke/release behave as documented.
 */
const env = testEnv()
const prefixes: string[] = []
const clients: Etcd3[] = []
const leases: ManagedLease[] = []

function setup(ttlMs: number): { prefix: string; client: Etcd3; lease: ManagedLease; events: string[] } {
  const prefix = uniquePrefix('lease')
  prefixes.push(prefix)
  // The same options the agent uses: a short deadline per call, retries on another member.
  const client = createEtcdClient({ endpoints: env.etcdEndpoints }, { retries: 2, callTimeoutMs: 3_000 })
  clients.push(client)
  const lease = new ManagedLease(client, { ttlMs })
  leases.push(lease)
  const events: string[] = []
  lease.on('lost', (reason) => events.push(`lost: ${reason}`))
  lease.on('renewed', (id) => events.push(`renewed: ${id}`))
  lease.on('alive', () => events.push('alive'))
  lease.on('keepalive-failed', () => events.push('keepalive-failed'))
  lease.on('error', (error) => events.push(`error: ${(error as Error).message}`))
  return { prefix, client, lease, events }
}

afterEach(async () => {
  for (const lease of leases.splice(0)) await lease.revoke()
  for (const client of clients.splice(0)) client.close()
})

afterAll(async () => {
  // Always leave the shared cluster whole, whatever happened above.
  await restoreEtcdCluster()
  for (const prefix of prefixes) await etcdctl(['del', '--prefix', `${prefix}/`])
})

describe('ManagedLease survives the loss of any one etcd member', () => {
  it('Given keys on a 4 s lease, When each member in turn is killed for 2.5 TTLs and restarted, Then every key is present at every look, exactly once, and bound to the live lease', async () => {
    // Given: the whole cluster up, and five keys on the lease
    await testenv('etcd-wait', '60')
    const ttlMs = 4_000
    const { prefix, lease, events } = setup(ttlMs)
    const firstLease = await lease.start()
    const expected = new Map<string, string>()
    for (let i = 1; i <= 5; i++) {
      const key = `${prefix}/services/web/web-${i}`
      expected.set(key, `value-${i}`)
      await lease.put(key, `value-${i}`)
    }
    const leaseIdsSeen = new Set<string>()
    const missingOrExtra: string[] = []
    let looks = 0

    try {
      for (const member of [1, 2, 3]) {
        const survivors = env.etcdEndpoints.filter((_, i) => i !== member - 1)
        // When: the member dies (SIGKILL: connections drop without goodbye)
        await testenv('etcd-kill', String(member))
        const deadline = Date.now() + 2.5 * ttlMs
        let putDuringOutage = false
        while (Date.now() < deadline) {
          // A new key written while the member is down must land too.
          if (!putDuringOutage) {
            const key = `${prefix}/services/web/during-${member}`
            expected.set(key, `during-${member}`)
            await lease.put(key, `during-${member}`)
            putDuringOutage = true
          }
          // Then: every key, exactly the expected set, at every look
          const kvs = await getKvs(`${prefix}/`, { prefix: true, endpoints: survivors })
          looks++
          const seen = kvs.map((kv) => kv.key).sort()
          const want = [...expected.keys()].sort()
          if (JSON.stringify(seen) !== JSON.stringify(want)) missingOrExtra.push(`member ${member} down: saw ${seen.join(',')}`)
          for (const kv of kvs) {
            leaseIdsSeen.add(kv.lease)
            if (kv.value !== expected.get(kv.key)) missingOrExtra.push(`member ${member} down: ${kv.key} holds ${kv.value}`)
          }
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
        // The member comes back and catches up before the next one goes.
        await testenv('etcd-start', String(member))
        await testenv('etcd-wait', '60')
        const back = env.etcdEndpoints[member - 1]
        await waitFor(async () => (await getKvs(`${prefix}/`, { prefix: true, endpoints: [back] })).length === expected.size, 30_000, `member ${member} to catch up`)
      }
    } finally {
      await restoreEtcdCluster()
    }

    // Then: nothing was ever missing or extra
    expect(looks).toBeGreaterThan(20)
    expect(missingOrExtra).toEqual([])
    // … the lease is alive and every key is bound to it: the same one, or a re-grant with every key put again
    expect(lease.alive).toBe(true)
    const current = lease.id!
    const finalKvs = await getKvs(`${prefix}/`, { prefix: true })
    expect(finalKvs.map((kv) => kv.key).sort()).toEqual([...expected.keys()].sort())
    for (const kv of finalKvs) expect(kv.lease).toBe(current)
    if (current === firstLease) {
      expect(events.filter((e) => e.startsWith('lost'))).toEqual([])
    } else {
      expect(events).toContain(`renewed: ${current}`)
    }
    // Leases the helper left behind would keep nothing alive but are litter: only live ones hold keys.
    for (const id of leaseIdsSeen) {
      if (id !== current) expect(await leaseTimeToLive(id)).toBeUndefined()
    }
    expect(await leaseTimeToLive(current)).toMatchObject({ granted: 4 })
  })
})

describe('ManagedLease recovery and shutdown', () => {
  it('Given keys on a lease, When etcd drops the lease (revoked behind its back), Then it reports lost, grants a new lease and puts every key again', async () => {
    // Given
    const { prefix, lease, events } = setup(3_000)
    const first = await lease.start()
    await lease.put(`${prefix}/a`, 'A')
    await lease.put(`${prefix}/b`, 'B')
    // When
    await etcdctl(['lease', 'revoke', BigInt(first).toString(16)])
    // Then
    await waitFor(() => events.some((e) => e.startsWith('renewed')), 15_000, 'the renewed event')
    const second = lease.id!
    expect(second).not.toBe(first)
    expect(events.find((e) => e.startsWith('lost'))).toMatch(/lost: etcd reports the lease expired/)
    const kvs = await getKvs(`${prefix}/`, { prefix: true })
    expect(kvs.map((kv) => [kv.key, kv.value, kv.lease])).toEqual([
      [`${prefix}/a`, 'A', second],
      [`${prefix}/b`, 'B', second],
    ])
  })

  it('Given a put in flight on the lease, When the lease is lost and re-granted before the put arrives, Then the put resolves and its key ends on the new lease, not removed with the old one', async () => {
    // Given: a client whose first put of one key waits at a gate (a call stuck on a slow member)
    const prefix = uniquePrefix('lease')
    prefixes.push(prefix)
    const real = createEtcdClient({ endpoints: env.etcdEndpoints }, { retries: 2, callTimeoutMs: 3_000 })
    clients.push(real)
    const slowKey = `${prefix}/slow`
    let open!: () => void
    let gatedOnce = false
    const gate = new Promise<void>((resolve) => (open = resolve))
    const gated = new Proxy(real, {
      get(target, property, receiver) {
        if (property !== 'put') return Reflect.get(target, property, receiver)
        return (key: string) => {
          const builder = target.put(key)
          if (key !== slowKey || gatedOnce) return builder
          gatedOnce = true
          const exec = builder.exec.bind(builder)
          builder.exec = async () => {
            await gate
            return exec()
          }
          return builder
        }
      },
    })
    const lease = new ManagedLease(gated, { ttlMs: 3_000 })
    leases.push(lease)
    const renewed: string[] = []
    lease.on('renewed', (id) => renewed.push(id))
    lease.on('error', () => undefined)
    const first = await lease.start()
    await lease.put(`${prefix}/fast`, 'F')
    const slow = lease.put(slowKey, 'S')
    // When: the lease is declared lost (etcd still holds it) and a new one granted and filled
    lease.reportInvalid(first)
    await waitFor(() => renewed.length > 0, 15_000, 'the re-grant')
    const second = lease.id!
    expect(second).not.toBe(first)
    // …and only then does the stuck put reach etcd, naming the first lease
    open()
    await expect(slow).resolves.toBeUndefined()
    // Then: both keys on the new lease, and they stay once the first lease is revoked
    await waitFor(async () => {
      const kvs = await getKvs(`${prefix}/`, { prefix: true })
      return kvs.length === 2 && kvs.every((kv) => kv.lease === second) && (await leaseTimeToLive(first)) === undefined
    }, 15_000, 'both keys on the new lease and the first lease revoked')
    expect((await getKvs(`${prefix}/`, { prefix: true })).map((kv) => [kv.key, kv.value])).toEqual([
      [`${prefix}/fast`, 'F'],
      [slowKey, 'S'],
    ])
  })

  it('Given a key deleted through the helper, When the lease is re-granted, Then that key is not brought back', async () => {
    // Given
    const { prefix, lease, events } = setup(3_000)
    const first = await lease.start()
    await lease.put(`${prefix}/keep`, 'K')
    await lease.put(`${prefix}/gone`, 'G')
    await lease.delete(`${prefix}/gone`)
    // When
    await etcdctl(['lease', 'revoke', BigInt(first).toString(16)])
    await waitFor(() => events.some((e) => e.startsWith('renewed')), 15_000, 'the renewed event')
    // Then
    expect((await getKvs(`${prefix}/`, { prefix: true })).map((kv) => kv.key)).toEqual([`${prefix}/keep`])
  })

  it('Given keys on a lease, When revoke() is called, Then they are gone at once; When release() is called instead, Then they stay until the TTL', async () => {
    // Given
    const revoked = setup(3_000)
    await revoked.lease.start()
    await revoked.lease.put(`${revoked.prefix}/x`, 'X')
    const released = setup(3_000)
    const releasedId = await released.lease.start()
    await released.lease.put(`${released.prefix}/y`, 'Y')
    // When
    await revoked.lease.revoke()
    released.lease.release()
    // Then
    expect(await getKvs(`${revoked.prefix}/`, { prefix: true })).toEqual([])
    expect((await getKvs(`${released.prefix}/`, { prefix: true })).map((kv) => kv.key)).toEqual([`${released.prefix}/y`])
    await waitFor(async () => (await getKvs(`${released.prefix}/`, { prefix: true })).length === 0, 15_000, 'the released lease to expire')
    expect(await leaseTimeToLive(releasedId)).toBeUndefined()
  })
})
