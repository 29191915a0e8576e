import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Registry, type GuardedOp } from '../../src/core/registry.js'
import { uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/**
 * Registry.applyGuarded against real etcd: ops go in transactions of up to 100; when a guard
 * fails, the others in its transaction still land, and each refused op says what its key holds
 * now (read in the same transaction), so a writer can plan again without waiting for a watch.
 */
const env = testEnv()
const prefix = uniquePrefix('guarded')
let registry: Registry

beforeAll(() => {
  registry = Registry.open({ endpoints: env.etcdEndpoints }, prefix)
})

afterAll(async () => {
  await registry.client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  registry.close()
})

describe('guarded writes', () => {
  it('Given 250 guarded puts of which 3 keys moved, When applied, Then 247 land and each of the 3 reports what its key holds now', async () => {
    const key = (i: number): string => `${prefix}/k/${String(i).padStart(3, '0')}`
    // Keys 10 and 120 exist (an "absent" guard fails); key 200 is expected at a revision it no longer has.
    await registry.client.put(key(10)).value('someone else').exec()
    await registry.client.put(key(120)).value('another').exec()
    await registry.client.put(key(200)).value('v1').exec()
    const seen = await registry.client.get(key(200)).exec()
    const stale = seen.kvs[0].mod_revision
    await registry.client.put(key(200)).value('v2').exec()
    await registry.client.put(key(201)).value('mine').exec()
    const mine = (await registry.client.get(key(201)).exec()).kvs[0].mod_revision

    const ops: GuardedOp[] = Array.from({ length: 250 }, (_, i) =>
      i === 200
        ? { kind: 'put', key: key(i), value: 'over v1', expect: { modRevision: stale } }
        : i === 201
          ? { kind: 'put', key: key(i), value: 'mine, updated', expect: { modRevision: mine } }
          : { kind: 'put', key: key(i), value: `new ${i}`, expect: { absent: true } },
    )
    const results = await registry.applyGuarded(ops)

    expect(results).toHaveLength(250)
    const refused = results.flatMap((r, i) => (r.ok ? [] : [{ i, r }]))
    expect(refused.map((x) => x.i)).toEqual([10, 120, 200])
    for (const { i, r } of refused) {
      if (r.ok || r.reason !== 'moved') throw new Error(`op ${i}: expected "moved", got ${JSON.stringify(r)}`)
      expect(r.current?.value).toBe(i === 10 ? 'someone else' : i === 120 ? 'another' : 'v2')
      expect(BigInt(r.current!.modRevision)).toBeGreaterThan(0n)
      expect(BigInt(r.revision)).toBeGreaterThanOrEqual(BigInt(r.current!.modRevision))
    }
    const all = await registry.client.getAll().prefix(`${prefix}/k/`).strings()
    expect(Object.keys(all)).toHaveLength(250)
    expect(all[key(10)]).toBe('someone else')
    expect(all[key(200)]).toBe('v2')
    expect(all[key(201)]).toBe('mine, updated')
    expect(all[key(0)]).toBe('new 0')
    expect(all[key(249)]).toBe('new 249')
  })

  it('Given a delete guarded by a revision the key left, When applied, Then it is refused and reports the key as absent when it is gone', async () => {
    const key = `${prefix}/gone`
    await registry.client.put(key).value('x').exec()
    const rev = (await registry.client.get(key).exec()).kvs[0].mod_revision
    await registry.client.delete().key(key).exec()
    const [result] = await registry.applyGuarded([{ kind: 'delete', key, expect: { modRevision: rev } }])
    expect(result).toMatchObject({ ok: false, reason: 'moved', current: null })
  })
})
