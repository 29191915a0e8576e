import { describe, expect, it } from 'vitest'
import { fakeClient, fakeKv, settle } from './fake-etcd.fixture.js'
import { PrefixMirror } from './prefix-mirror.js'

/**
 * The reconnect/compaction race, with a fake etcd client whose lists finish when the test says:
 * a watch that reconnects onto a compacted revision is created ('connected', which starts a
 * relist) and cancelled ('error') while that relist still runs. The mirror must still open a
 * new watch once the relist is done.
 */

describe('PrefixMirror', () => {
  it('Given a watch that reconnects, When it is cancelled (compacted) while the relist of the reconnect runs, Then a new watch is opened after that relist', async () => {
    // Given: a started mirror with one watch
    const etcd = fakeClient()
    const mirror = new PrefixMirror(etcd.client, '/p/', (raw) => ({ ok: true, value: raw }))
    await mirror.start()
    expect(etcd.watchers).toHaveLength(1)
    const events: string[] = []
    mirror.on('disconnected', () => events.push('disconnected'))
    mirror.on('resynced', () => events.push('resynced'))
    // When: the stream breaks and comes back; the relist it starts is slow
    etcd.holdLists()
    etcd.watchers[0].emit('disconnected', new Error('connection dropped'))
    etcd.watchers[0].emit('connected', {})
    await settle()
    expect(etcd.lists).toHaveLength(1)
    // When: etcd cancels the resumed watch (its revision was compacted) before that relist ends
    etcd.watchers[0].emit('error', new Error('Watcher canceled: compacted'))
    etcd.releaseLists('20')
    etcd.lists[0].resolve('20')
    await settle()
    // Then: the old watch is cancelled and a new one follows etcd
    expect(etcd.watchers[0].cancelled).toBe(true)
    expect(etcd.watchers).toHaveLength(2)
    expect(events).toEqual(['disconnected', 'resynced', 'resynced'])
    expect(mirror.isConnected).toBe(true)
    await mirror.close()
  })

  it('Given a watch, When it is cancelled with no relist running, Then exactly one new watch is opened', async () => {
    // Given
    const etcd = fakeClient()
    const mirror = new PrefixMirror(etcd.client, '/p/', (raw) => ({ ok: true, value: raw }))
    await mirror.start()
    // When
    etcd.watchers[0].emit('error', new Error('Watcher canceled: compacted'))
    await settle()
    // Then
    expect(etcd.watchers).toHaveLength(2)
    await mirror.close()
  })

  it('Given 10,000 keys put and deleted through the watch, When no relist runs, Then the mirror keeps no tombstone and is empty', async () => {
    // Given a started mirror
    const etcd = fakeClient()
    const mirror = new PrefixMirror(etcd.client, '/p/', (raw) => ({ ok: true, value: raw }))
    await mirror.start()
    const kv = (key: string, revision: number) => ({ key: Buffer.from(key), value: Buffer.from('v'), mod_revision: String(revision), create_revision: String(revision), lease: '0' })
    // When 10,000 containers' records come and go
    for (let i = 0; i < 10_000; i++) {
      etcd.watchers[0].emit('put', kv(`/p/k${i}`, 100 + 2 * i))
      etcd.watchers[0].emit('delete', kv(`/p/k${i}`, 101 + 2 * i))
    }
    // Then nothing is held for the keys that are gone
    expect(mirror.size).toBe(0)
    expect(mirror.tombstoneCount).toBe(0)
    await mirror.close()
  })

  it('Given a delete seen while a relist runs, When the older listing arrives, Then the key stays deleted and the tombstone is dropped after', async () => {
    const etcd = fakeClient()
    const mirror = new PrefixMirror(etcd.client, '/p/', (raw) => ({ ok: true, value: raw }))
    await mirror.start()
    const kv = (key: string, revision: number) => ({ key: Buffer.from(key), value: Buffer.from('v'), mod_revision: String(revision), create_revision: String(revision), lease: '0' })
    etcd.watchers[0].emit('put', kv('/p/a', 11))
    // A relist starts (reconnect) and is slow; meanwhile the watch delivers the delete
    etcd.holdLists()
    etcd.watchers[0].emit('disconnected', new Error('dropped'))
    etcd.watchers[0].emit('connected', {})
    await settle()
    etcd.watchers[0].emit('delete', kv('/p/a', 13))
    expect(mirror.tombstoneCount).toBe(1)
    // The listing was taken at revision 12, when /p/a still existed
    etcd.releaseLists('12')
    const pending = etcd.lists[0]
    ;(pending as unknown as { resolve: (r: string) => void }).resolve('12')
    await settle()
    expect(mirror.get('/p/a')).toBeUndefined()
    expect(mirror.tombstoneCount).toBe(0)
    await mirror.close()
  })

  it('Given a scope, When the listing and the watch bring keys inside and outside it, Then only those inside are parsed and kept', async () => {
    const kv = (key: string, revision: number) => fakeKv(key, revision, key)
    const etcd = fakeClient([kv('/p/mine/a', 5), kv('/p/theirs/b', 6)])
    const parsed: string[] = []
    const mirror = new PrefixMirror(etcd.client, '/p/', (raw) => (parsed.push(raw), { ok: true, value: raw }), undefined, (key) => key.startsWith('/p/mine/'))
    await mirror.start()
    etcd.watchers[0].emit('put', kv('/p/theirs/c', 11))
    etcd.watchers[0].emit('put', kv('/p/mine/d', 12))
    expect(mirror.list().map((e) => e.key).sort()).toEqual(['/p/mine/a', '/p/mine/d'])
    expect(parsed.sort()).toEqual(['/p/mine/a', '/p/mine/d'])
    await mirror.close()
  })

  it('Given a scoped mirror, When it is widened and narrowed again, Then it relists everything, then drops what is outside with a delete each and one batch', async () => {
    const kv = fakeKv
    const etcd = fakeClient([kv('/p/mine/a', 5), kv('/p/theirs/b', 6)])
    const mine = (key: string): boolean => key.startsWith('/p/mine/')
    const mirror = new PrefixMirror(etcd.client, '/p/', (raw) => ({ ok: true, value: raw }), undefined, mine)
    await mirror.start()
    expect(mirror.whole).toBe(false)
    // When widened: the listing is read again, and the watch's other keys count from now on
    await mirror.setScope(undefined, true)
    etcd.watchers[0].emit('put', kv('/p/theirs/c', 11))
    expect(mirror.whole).toBe(true)
    expect(mirror.list().map((e) => e.key).sort()).toEqual(['/p/mine/a', '/p/theirs/b', '/p/theirs/c'])
    // When narrowed: the others go, each with a delete, then one batch
    const deleted: string[] = []
    let batches = 0
    mirror.on('delete', (entry) => deleted.push(entry.key))
    mirror.on('batch', () => batches++)
    await mirror.setScope(mine, false)
    expect(deleted.sort()).toEqual(['/p/theirs/b', '/p/theirs/c'])
    expect(batches).toBe(1)
    expect(mirror.list().map((e) => e.key)).toEqual(['/p/mine/a'])
    etcd.watchers[0].emit('put', kv('/p/theirs/e', 13))
    expect(mirror.size).toBe(1)
    await mirror.close()
  })
})
