import { describe, expect, it } from 'vitest'
import { fakeClient, fakeKv, settle } from '../fake-etcd.fixture.js'
import type { Registry } from '../registry.js'
import { nodeScope, RegistryView } from './registry-view.js'

describe('nodeScope', () => {
  const inScope = nodeScope('/reg', ['web-1', 'swarm'])

  it.each([
    ['/reg/services/api/web-1/abc', true],
    ['/reg/services/api/swarm/task1', true],
    ['/reg/services/api/web-2/abc', false],
    ['/reg/services/api/web-10/abc', false],
    // A manual record (<service>/<id>): cluster-wide, kept
    ['/reg/services/api/manual-1', true],
    ['/reg/nodes/web-2', true],
    ['/reg/maintenance/nodes/web-2', true],
    ['/reg/config/agents', true],
    ['/reg/leader/info', true],
    // A key of another prefix that starts like this one's services
    ['/reg/servicesX/api/web-2/abc', true],
  ])('Given a view scoped to web-1 and swarm, When %s is listed, Then it is kept: %s', (key, kept) => {
    expect(inScope(key)).toBe(kept)
  })
})

/** A view over a fake etcd: records of web-1 (this node) and web-2, as agents write them. */
async function scopedView(options: { narrowAfterMs?: number } = {}) {
  const record = (node: string, id: string) => JSON.stringify({ schema: 2, id, service: 'api', address: '10.0.0.1', port: 80, tags: [], meta: {}, node, source: 'docker', health: { status: 'passing', output: '', updatedAt: '', since: '' }, registeredAt: '', updatedAt: '' })
  const etcd = fakeClient([
    fakeKv('/reg/services/api/web-1/a', 5, record('web-1', 'a')),
    fakeKv('/reg/services/api/web-2/b', 6, record('web-2', 'b')),
    fakeKv('/reg/services/api/web-2/c', 7, record('web-2', 'c')),
  ])
  const parse = (raw: string) => ({ ok: true as const, value: JSON.parse(raw) as never })
  const registry = { prefix: '/reg', client: etcd.client, instanceParser: async () => parse, nodeParser: async () => parse } as unknown as Registry
  const view = await RegistryView.open(registry, { nodes: ['web-1'], narrowAfterMs: options.narrowAfterMs ?? 0 })
  const scopes: { whole: boolean; instances: number }[] = []
  view.on('scope', ({ whole, instances }) => scopes.push({ whole, instances }))
  return { etcd, view, scopes }
}

describe('RegistryView scoped to one node', () => {
  it('Given a view scoped to web-1, When the whole registry is held and released, Then it widens with a relist and narrows after the grace', async () => {
    const { etcd, view, scopes } = await scopedView()
    expect(view.whole).toBe(false)
    expect(view.state.size).toBe(1)
    const release = await view.holdWhole()
    expect(view.whole).toBe(true)
    expect(view.state.size).toBe(3)
    release()
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(view.whole).toBe(false)
    expect(view.state.size).toBe(1)
    expect(scopes).toEqual([{ whole: true, instances: 3 }, { whole: false, instances: 1 }])
    expect(etcd.ranges).toBe(2)
    await view.close()
  })

  it('Given a held view released, When it is held again within the grace, Then it stays whole without another relist', async () => {
    const { etcd, view, scopes } = await scopedView({ narrowAfterMs: 60_000 })
    ;(await view.holdWhole())()
    const again = await view.holdWhole()
    expect(view.whole).toBe(true)
    expect(etcd.ranges).toBe(2)
    // Two holders: the view stays whole until both have released
    const other = await view.holdWhole()
    again()
    expect(view.whole).toBe(true)
    other()
    expect(scopes).toEqual([{ whole: true, instances: 3 }])
    await view.close()
  })

  it('Given etcd unreachable, When the whole registry is held, Then it is not whole until a relist succeeds', async () => {
    const { etcd, view, scopes } = await scopedView()
    etcd.failLists(new Error('unavailable'))
    let held = false
    const holding = view.holdWhole().then((release) => ((held = true), release))
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(held).toBe(false)
    expect(view.whole).toBe(false)
    etcd.failLists(undefined)
    const release = await holding
    expect(view.whole).toBe(true)
    expect(view.state.size).toBe(3)
    release()
    expect(scopes[0]).toEqual({ whole: true, instances: 3 })
    await view.close()
  })

  it('Given etcd unreachable and a holder waiting, When the view is closed, Then the hold resolves and no widening is reported', async () => {
    const { etcd, view, scopes } = await scopedView()
    etcd.failLists(new Error('unavailable'))
    const holding = view.holdWhole()
    await settle()
    await view.close()
    await holding
    expect(view.whole).toBe(false)
    expect(scopes).toEqual([])
  })

  it('Given etcd unreachable and a hold waiting, When the view is closed, Then the hold resolves at once, not after the retry wait', async () => {
    const { etcd, view } = await scopedView()
    etcd.failLists(new Error('unavailable'))
    const holding = view.holdWhole()
    // Past the first attempts: the retry waits grow to seconds
    await new Promise((resolve) => setTimeout(resolve, 700))
    const closedAt = performance.now()
    await view.close()
    await holding
    expect(performance.now() - closedAt).toBeLessThan(200)
  })

  it('Given etcd unreachable and a hold waiting, When its signal aborts (the term ended), Then the hold resolves undefined and the widening is given up after the grace', async () => {
    const { etcd, view, scopes } = await scopedView({ narrowAfterMs: 100 })
    etcd.failLists(new Error('unavailable'))
    const ended = new AbortController()
    const holding = view.holdWhole(ended.signal)
    await new Promise((resolve) => setTimeout(resolve, 300))
    ended.abort()
    expect(await holding).toBeUndefined()
    await new Promise((resolve) => setTimeout(resolve, 300))
    // etcd is back after the grace: no relist happens any more, the view stays scoped, nothing reports whole
    etcd.failLists(undefined)
    const ranges = etcd.ranges
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(etcd.ranges).toBe(ranges)
    expect(view.whole).toBe(false)
    expect(view.state.size).toBe(1)
    expect(scopes.every((s) => !s.whole)).toBe(true)
    await view.close()
  })

  it('Given a term that pauses while its view is still widening, When it resumes within the grace, Then the new hold joins that widening: one relist, no narrowing', async () => {
    const { etcd, view, scopes } = await scopedView({ narrowAfterMs: 60_000 })
    etcd.holdLists()
    const first = new AbortController()
    const paused = view.holdWhole(first.signal)
    await settle()
    first.abort()
    expect(await paused).toBeUndefined()
    const resumed = view.holdWhole(new AbortController().signal)
    etcd.releaseLists('12')
    for (const list of etcd.lists) list.resolve('12')
    const release = await resumed
    expect(release).toBeDefined()
    expect(view.whole).toBe(true)
    expect(etcd.ranges).toBe(2)
    expect(scopes).toEqual([{ whole: true, instances: 3 }])
    release!()
    await view.close()
  })
})
