import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEtcdClient, forEachPrefixPage, rangePrefix } from '../../src/core/etcd.js'
import { uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/**
 * Reading a prefix in pages against real etcd (the view's relist and `list --json` do it 10,000
 * keys at a time; here pages of 7 so 50 keys take several): every key once, in key order, all at
 * the revision of the first page, so writes made between pages are not seen.
 */
const env = testEnv()
const prefix = uniquePrefix('pages')
const client = createEtcdClient({ endpoints: env.etcdEndpoints })
const key = (i: number): string => `${prefix}/k/${String(i).padStart(3, '0')}`

beforeAll(async () => {
  for (let i = 0; i < 50; i++) await client.put(key(i)).value(`v${i}`).exec()
})

afterAll(async () => {
  await client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  client.close()
})

describe('prefix pages', () => {
  it('Given 50 keys and pages of 7, When read while keys are added and changed between pages, Then every key of the first revision comes once, in order, as it was then', async () => {
    const pages: string[][] = []
    let written = false
    const revision = await forEachPrefixPage(
      client,
      `${prefix}/`,
      (kvs) => {
        pages.push(kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`))
        if (!written) {
          written = true
          // After the first page: a new key at the end and a changed one ahead of the reader.
          void client.put(key(99)).value('late').exec()
          void client.put(key(40)).value('changed').exec()
        }
      },
      { pageSize: 7 },
    )
    expect(pages.length).toBe(8)
    expect(pages.slice(0, 7).every((page) => page.length === 7)).toBe(true)
    const seen = pages.flat()
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => `${key(i)}=v${i}`))
    // The later writes exist, at revisions after the one read at.
    const now = await rangePrefix(client, `${prefix}/`, 7)
    expect(BigInt(now.revision)).toBeGreaterThan(BigInt(revision))
    expect(now.kvs.map((kv) => kv.value.toString())).toContain('late')
    expect(now.kvs.find((kv) => kv.key.toString() === key(40))?.value.toString()).toBe('changed')
  })
})
