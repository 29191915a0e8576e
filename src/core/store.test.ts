import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { instanceRecord, keyOf } from '../../test/support/instance-fixtures.js'
import type { AgentEvent } from './agent/events.js'
import type { InstanceRecord } from './model.js'
import { AgentStore, type AgentStoreOptions } from './store.js'

function makeStore(options: Partial<AgentStoreOptions> = {}): { store: AgentStore; changes: () => number } {
  const store = new AgentStore({ node: 'node-a', dockerHost: 'unix:///var/run/docker.sock', etcdEndpoints: ['http://127.0.0.1:2379'], ...options })
  let changes = 0
  store.subscribe(() => (changes += 1))
  return { store, changes: () => changes }
}

/** Lets a coalescing timer of `ms` fire. */
const settle = (ms = 0) => vi.advanceTimersByTimeAsync(ms + 1)

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2024-05-01T12:00:00.000Z') })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('AgentStore: connection and leader state', () => {
  it('Given a new store, When read, Then both connections are down ("connecting") and no leader is known', () => {
    const { store } = makeStore()
    const state = store.getSnapshot()
    expect(state.docker).toEqual({ connected: false, detail: 'connecting' })
    expect(state.etcd).toEqual({ connected: false, detail: 'connecting' })
    expect(state.leader).toBeNull()
    expect(state.instances).toEqual([])
    expect(state.node).toBe('node-a')
  })

  it.each<{ name: string; events: AgentEvent[]; docker?: object; etcd?: object }>([
    { name: 'docker connected', events: [{ type: 'docker.connected', host: 'unix:///d.sock', reconnect: false }], docker: { connected: true } },
    {
      name: 'docker lost, retrying',
      events: [{ type: 'docker.disconnected', host: 'unix:///d.sock', error: 'connect ENOENT', retryInMs: 1500 }],
      docker: { connected: false, detail: 'connect ENOENT; retrying in 2s' },
    },
    { name: 'etcd connected', events: [{ type: 'etcd.connected', endpoints: ['x'] }], etcd: { connected: true } },
    {
      name: 'etcd lost without a retry time',
      events: [{ type: 'etcd.disconnected', endpoints: ['x'], error: 'deadline exceeded' }],
      etcd: { connected: false, detail: 'deadline exceeded; retrying' },
    },
    {
      name: 'the lease lost, then renewed',
      events: [
        { type: 'lease.lost', reason: 'keepalive failed' },
        { type: 'lease.renewed', lease: 'abc' },
      ],
      etcd: { connected: true },
    },
    { name: 'the lease lost', events: [{ type: 'lease.lost', reason: 'keepalive failed' }], etcd: { connected: false, detail: 'lease lost: keepalive failed' } },
  ])('Given $name, When applied, Then the connection state says so', async ({ events, docker, etcd }) => {
    const { store, changes } = makeStore()
    for (const event of events) store.apply(event)
    await settle()
    if (docker) expect(store.getSnapshot().docker).toEqual(docker)
    if (etcd) expect(store.getSnapshot().etcd).toEqual(etcd)
    expect(changes()).toBe(1)
  })

  it('Given a leader, When the same leader and term is reported again, Then "since" is kept; When the term changes, Then it restarts', async () => {
    const { store } = makeStore()
    // Given this agent elected at 12:00:00
    store.apply({ type: 'leader.changed', leader: 'node-a', term: '7', self: true })
    expect(store.getSnapshot().leader).toEqual({ node: 'node-a', term: '7', since: '2024-05-01T12:00:00.000Z', self: true })
    // When the same leadership is reported again 30 s later
    await vi.advanceTimersByTimeAsync(30_000)
    store.apply({ type: 'leader.changed', leader: 'node-a', term: '7', self: true })
    // Then it has led since 12:00:00
    expect(store.getSnapshot().leader?.since).toBe('2024-05-01T12:00:00.000Z')
    // When another node wins a new term
    store.apply({ type: 'leader.changed', leader: 'node-b', term: '9', self: false })
    expect(store.getSnapshot().leader).toEqual({ node: 'node-b', term: '9', since: '2024-05-01T12:00:30.000Z', self: false })
    // When nobody leads
    store.apply({ type: 'leader.changed', leader: null, term: null, self: false })
    expect(store.getSnapshot().leader).toBeNull()
  })

  it('Given acting and stopping events, When applied, Then the flags follow', () => {
    const { store } = makeStore()
    store.apply({ type: 'leader.acting', acting: true, term: '7' })
    expect(store.getSnapshot().acting).toBe(true)
    store.apply({ type: 'agent.stopping', reason: 'q' })
    expect(store.getSnapshot().stopping).toBe(true)
  })
})

describe('AgentStore: the registry view', () => {
  it('Given instances put out of order, When flushed, Then they are sorted by service, then id, and emitted once', async () => {
    const { store, changes } = makeStore()
    const records = [
      instanceRecord({ service: 'web', id: 'node-a:b:80' }),
      instanceRecord({ service: 'api', id: 'node-a:z:80' }),
      instanceRecord({ service: 'web', id: 'node-a:a:80' }),
    ]
    for (const r of records) store.putInstance(keyOf(r), r)
    expect(store.getSnapshot().instances).toEqual([]) // not yet: coalesced
    await settle()
    expect(store.getSnapshot().instances.map((r) => `${r.service}/${r.id}`)).toEqual(['api/node-a:z:80', 'web/node-a:a:80', 'web/node-a:b:80'])
    expect(changes()).toBe(1)
  })

  it('Given an instance, When the identical record is put again, Then nothing is emitted and the snapshot is the same object', async () => {
    const { store, changes } = makeStore()
    const r = instanceRecord()
    store.putInstance(keyOf(r), r)
    await settle()
    const before = store.getSnapshot()
    // When: an equal record (a new object)
    store.putInstance(keyOf(r), structuredClone(r))
    await settle()
    // Then
    expect(changes()).toBe(1)
    expect(store.getSnapshot()).toBe(before)
  })

  it('Given an instance, When its health changes and then it is removed, Then the view follows, and removing an unknown key is a no-op', async () => {
    const { store, changes } = makeStore()
    const r = instanceRecord()
    store.putInstance(keyOf(r), r)
    await settle()
    // When its health changes
    store.putInstance(keyOf(r), instanceRecord({ status: 'critical', health: { output: 'HTTP 404' } }))
    await settle()
    expect(store.getSnapshot().instances[0].health).toMatchObject({ status: 'critical', output: 'HTTP 404' })
    // When removed
    store.removeInstance(keyOf(r))
    await settle()
    expect(store.getSnapshot().instances).toEqual([])
    // When an unknown key is removed
    store.removeInstance('/discovery/services/web/nope')
    await settle()
    expect(changes()).toBe(3)
  })

  it('Given pending changes, When flush() is called, Then they are emitted at once and the timer does not emit again', async () => {
    const { store, changes } = makeStore({ coalesceMs: 1000 })
    const r = instanceRecord()
    store.putInstance(keyOf(r), r)
    store.flush()
    expect(changes()).toBe(1)
    expect(store.getSnapshot().instances).toHaveLength(1)
    await settle(1000)
    expect(changes()).toBe(1)
  })
})

describe('AgentStore: the event log', () => {
  it('Given notable and metrics-only events, When applied, Then every event is re-emitted but only notable ones are logged, with a level', async () => {
    const { store, changes } = makeStore()
    const seen: string[] = []
    store.on('event', (e) => seen.push(e.type))
    store.apply({ type: 'check.result', service: 'web', id: 'x', status: 'passing', latencyMs: 3, slipMs: 0 })
    store.apply({ type: 'docker.event', action: 'start', container: 'c' })
    store.apply({ type: 'leader.write', key: 'k', term: '1', op: 'put', ok: true, reason: 'gc' })
    await settle()
    // Then metrics-only events change no view
    expect(changes()).toBe(0)
    store.apply({ type: 'health.changed', service: 'web', id: 'x', from: 'passing', to: 'critical', output: 'HTTP 500' })
    store.apply({ type: 'error', message: 'boom' })
    store.apply({ type: 'instance.removed', service: 'web', id: 'x', reason: 'container stopped' })
    await settle()
    expect(seen).toEqual(['check.result', 'docker.event', 'leader.write', 'health.changed', 'error', 'instance.removed'])
    expect(store.getSnapshot().log.map((e) => [e.id, e.level, e.type, subject(e.event)])).toEqual([
      [1, 'warn', 'health.changed', 'x'],
      [2, 'error', 'error', 'boom'],
      [3, 'info', 'instance.removed', 'x'],
    ])
    expect(changes()).toBe(1)
  })

  it("Given this node's instances, When their events are logged, Then their ids are shortened to container:port; other nodes' ids stay whole", () => {
    const { store } = makeStore()
    const mine = instanceRecord({ id: 'node-a:web-1:80' })
    store.apply({ type: 'instance.registered', instance: mine })
    store.apply({ type: 'health.changed', service: 'web', id: 'node-a:web-1:80', from: 'unknown', to: 'passing', output: 'HTTP 200' })
    store.apply({ type: 'instance.removed', service: 'web', id: 'node-a:web-1:80', reason: 'container stopped' })
    store.apply({ type: 'instance.removed', service: 'web', id: 'node-b:web-1:80', reason: 'leader: node gone' })
    expect(store.getSnapshot().log.map((e) => subject(e.event))).toEqual(['web-1:80', 'web-1:80', 'web-1:80', 'node-b:web-1:80'])
  })

  it('Given a health change, When the agent also reports the record updated with only its health changed, Then one log line, not two; a real update is logged', () => {
    const { store } = makeStore()
    const seen: string[] = []
    store.on('event', (e) => seen.push(e.type))
    const r = instanceRecord({ id: 'node-a:web-1:80', status: 'unknown' })
    store.apply({ type: 'instance.registered', instance: r })
    // When it turns passing: health.changed, then instance.updated with the new health
    store.apply({ type: 'health.changed', service: 'web', id: r.id, from: 'unknown', to: 'passing', output: 'HTTP 200' })
    store.apply({ type: 'instance.updated', instance: { ...r, health: { ...r.health, status: 'passing', output: 'HTTP 200' }, updatedAt: '2024-05-01T12:00:01.000Z' } })
    // When its port changes
    store.apply({ type: 'instance.updated', instance: { ...r, port: 40000, health: { ...r.health, status: 'passing', output: 'HTTP 200' } } })
    expect(store.getSnapshot().log.map((e) => e.type)).toEqual(['instance.registered', 'health.changed', 'instance.updated'])
    expect(store.getSnapshot().log[2].event).toMatchObject({ type: 'instance.updated', instance: { id: 'web-1:80', port: 40000 } })
    // Every event still reaches the event listeners (NDJSON, metrics)
    expect(seen).toEqual(['instance.registered', 'health.changed', 'instance.updated', 'instance.updated'])
  })

  it('Given a log limit of 3, When 5 entries are logged, Then the last 3 are kept with their ids', () => {
    const { store } = makeStore({ logLimit: 3 })
    for (let i = 1; i <= 5; i++) store.apply({ type: 'error', message: `e${i}` })
    expect(store.getSnapshot().log.map((e) => [e.id, subject(e.event)])).toEqual([
      [3, 'e3'],
      [4, 'e4'],
      [5, 'e5'],
    ])
  })
})

describe('AgentStore: coalescing', () => {
  it('Given coalesceMs 0, When 1000 events and 1000 instances arrive in one tick, Then one change is emitted', async () => {
    const { store, changes } = makeStore()
    for (let i = 0; i < 1000; i++) {
      const r = instanceRecord({ id: `node-a:c${i}:80` })
      store.putInstance(keyOf(r), r)
      store.apply({ type: 'instance.registered', instance: r, latencyMs: 2 })
    }
    await settle()
    expect(changes()).toBe(1)
    expect(store.getSnapshot().instances).toHaveLength(1000)
  })

  it('Given coalesceMs 50, When 1000 events arrive one per millisecond, Then about one change per 50 ms is emitted (20), not 1000', async () => {
    const { store, changes } = makeStore({ coalesceMs: 50 })
    for (let i = 0; i < 1000; i++) {
      const r = instanceRecord({ id: `node-a:c${i}:80`, status: i % 2 ? 'passing' : 'critical' })
      store.putInstance(keyOf(r), r)
      await vi.advanceTimersByTimeAsync(1)
    }
    await settle(50)
    expect(changes()).toBeGreaterThanOrEqual(19)
    expect(changes()).toBeLessThanOrEqual(21)
    expect(store.getSnapshot().instances).toHaveLength(1000)
  })
})

/** What a logged event is about: the instance id it names, or an error's message. */
function subject(event: AgentEvent): string {
  if ('instance' in event) return event.instance.id
  if ('id' in event) return event.id
  return 'message' in event ? event.message : event.type
}

describe('AgentStore instance order', () => {
  it('Given instances in order, When some change health, others are added and removed, Then the list is always by service then id, each key once, with the newest record', () => {
    const store = new AgentStore({ node: 'n1', dockerHost: 'unix:///d.sock', etcdEndpoints: ['http://e:2379'], coalesceMs: 1_000_000 })
    const record = (service: string, id: string, status: InstanceRecord['health']['status'] = 'passing'): InstanceRecord => ({
      schema: 2, id, service, address: '10.0.0.1', port: 80, tags: [], meta: {}, node: 'n1', source: 'docker',
      health: { status, output: status, updatedAt: '2026-01-01T00:00:00Z', since: '2026-01-01T00:00:00Z' },
      registeredAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z',
    })
    const keyOf = (r: InstanceRecord): string => `/p/services/${r.service}/n1/${r.id}`
    const live = new Map<string, InstanceRecord>()
    const put = (r: InstanceRecord): void => {
      live.set(keyOf(r), r)
      store.putInstance(keyOf(r), r)
    }
    const expected = (): string[] => [...live.values()].sort((a, b) => (a.service === b.service ? (a.id < b.id ? -1 : 1) : a.service < b.service ? -1 : 1)).map((r) => `${r.service}/${r.id}/${r.health.status}`)
    const shown = (): string[] => store.getSnapshot().instances.map((r) => `${r.service}/${r.id}/${r.health.status}`)
    for (const s of ['web', 'api', 'db']) for (let i = 0; i < 5; i++) put(record(s, `i${i}`))
    store.flush()
    expect(shown()).toEqual(expected())
    // Health changes only (patched in place)
    put(record('api', 'i3', 'critical'))
    put(record('web', 'i0', 'warning'))
    store.flush()
    expect(shown()).toEqual(expected())
    // A removal, an addition, and a change in one flush (sorted again)
    live.delete(keyOf(record('db', 'i2')))
    store.removeInstance(keyOf(record('db', 'i2')))
    put(record('cache', 'i9'))
    put(record('api', 'i3', 'passing'))
    store.flush()
    expect(shown()).toEqual(expected())
    // Then a change of a key added in the last round
    put(record('cache', 'i9', 'critical'))
    store.flush()
    expect(shown()).toEqual(expected())
  })
})
