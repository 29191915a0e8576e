import { describe, expect, it } from 'vitest'
import { instanceRecord } from '../../../test/support/instance-fixtures.js'
import type { AgentEvent } from '../../core/agent/events.js'
import type { LogEntry } from '../../core/store.js'
import { notesAfter, runAction, type UiNote } from './actions.js'
import { bodyLines, HELP_LINES, tabsLine } from './chrome.js'
import { CheckHistory, checksAfter } from './check-history.js'
import { detailLines } from './detail.js'
import { cellText, segmentsWidth } from './layout.js'
import { compareText } from './grid.js'
import { compareRecords } from '../../core/store.js'
import type { HealthStatus, InstanceRecord } from '../../core/model.js'
import { eventItems, eventsOf, indexOfInstance, instanceKey, INSTANCE_SORT_KEYS, InstanceSorter, nodeRows, serviceRows, sortInstances, visibleEvents } from './views.js'

const records = [
  instanceRecord({ service: 'api', id: 'node-b:api-1:80', node: 'node-b', status: 'critical', registeredAt: '2024-05-01T12:00:03.000Z' }),
  instanceRecord({ service: 'api', id: 'node-a:api-2:80', port: 40000, registeredAt: '2024-05-01T12:00:01.000Z' }),
  instanceRecord({ service: 'db', id: 'ext-db', node: 'node-c', source: 'manual', status: 'warning', address: '10.0.0.9', registeredAt: '2024-05-01T12:00:02.000Z' }),
  instanceRecord({ service: 'web', id: 'node-a:web-1:80', port: 32769, status: 'unknown', registeredAt: '2024-05-01T12:00:00.000Z' }),
]

describe('serviceRows', () => {
  it('Given instances of three services, Then one row each with counts by health, nodes and the worst health', () => {
    expect(serviceRows(records)).toEqual([
      { service: 'api', total: 2, counts: { passing: 1, warning: 0, critical: 1, unknown: 0, maintenance: 0 }, nodes: ['node-a', 'node-b'], worst: 'critical' },
      { service: 'db', total: 1, counts: { passing: 0, warning: 1, critical: 0, unknown: 0, maintenance: 0 }, nodes: ['node-c'], worst: 'warning' },
      { service: 'web', total: 1, counts: { passing: 0, warning: 0, critical: 0, unknown: 1, maintenance: 0 }, nodes: ['node-a'], worst: 'unknown' },
    ])
  })
})

describe('sortInstances', () => {
  it.each<[string, boolean, string[]]>([
    ['service', false, ['node-b:api-1:80', 'node-a:api-2:80', 'ext-db', 'node-a:web-1:80']],
    ['health', false, ['node-b:api-1:80', 'ext-db', 'node-a:web-1:80', 'node-a:api-2:80']],
    ['health', true, ['node-a:api-2:80', 'node-a:web-1:80', 'ext-db', 'node-b:api-1:80']],
    ['age', false, ['node-b:api-1:80', 'ext-db', 'node-a:api-2:80', 'node-a:web-1:80']],
    ['address', false, ['ext-db', 'node-b:api-1:80', 'node-a:web-1:80', 'node-a:api-2:80']],
    ['instance', false, ['node-b:api-1:80', 'node-a:api-2:80', 'ext-db', 'node-a:web-1:80']],
    ['node', true, ['ext-db', 'node-b:api-1:80', 'node-a:api-2:80', 'node-a:web-1:80']],
  ])('Given sort by %s (descending %s), Then the ids are in the order %j', (column, descending, ids) => {
    expect(sortInstances(records, { column, descending }).map((r) => r.id)).toEqual(ids)
  })

  it('Given every sort key, Then each sorts without losing a row', () => {
    for (const column of INSTANCE_SORT_KEYS) expect(sortInstances(records, { column, descending: false })).toHaveLength(records.length)
  })
})

describe('InstanceSorter: a live view re-sorting as the store changes', () => {
  // The order spelled out: compareText on the cell (address: then the port), health by
  // severity, age youngest first, ties in the store's order.
  const SEVERITY: Record<HealthStatus, number> = { critical: 0, warning: 1, unknown: 2, maintenance: 3, passing: 4 }
  function reference(list: readonly InstanceRecord[], column: string, descending: boolean): InstanceRecord[] {
    const compare = (a: InstanceRecord, b: InstanceRecord): number => {
      switch (column) {
        case 'health':
          return SEVERITY[a.health.status] - SEVERITY[b.health.status]
        case 'age':
          return Date.parse(b.registeredAt) - Date.parse(a.registeredAt)
        case 'address':
          return compareText(a.address, b.address) || a.port - b.port
        default:
          return compareText(cellText(a, column as never, 0), cellText(b, column as never, 0))
      }
    }
    return list.map((r, i) => ({ r, i })).sort((a, b) => (descending ? -1 : 1) * compare(a.r, b.r) || a.i - b.i).map((x) => x.r)
  }

  // A small world of names, addresses and outputs that repeat, with digits and leading zeros.
  let seed = 7
  const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n)
  const pick = <T>(values: readonly T[]): T => values[random(values.length)]
  const STATUSES: HealthStatus[] = ['passing', 'warning', 'critical', 'unknown', 'maintenance']
  const make = (n: number): InstanceRecord => {
    const node = pick(['node-a', 'node-b', 'node-10', 'node-9'])
    return instanceRecord({
      service: pick(['api', 'db', 'web']),
      id: `${node}:${pick(['web', 'web-', 'x', 'web-0'])}${n}:${pick([80, 8080, 443])}`,
      node,
      address: pick(['10.0.0.2', '10.0.0.10', '127.0.0.1', 'db.internal', 'fd00::1', 'h', 'h\u0000']),
      port: pick([80, 8080, 443, 32768]),
      status: pick(STATUSES),
      // (a check's output may hold a NUL: it must sort as compareText says)
      health: { output: pick(['HTTP 200', 'HTTP 503', 'timeout after 2s', 'HTTP 200 in 12 ms', 'HTTP 200 in 3 ms', 'exit 1: x9', 'exit 1: x9\u0000', 'exit 1: x9\u0000\u0001', '9', '9\u0000', '']) },
      registeredAt: `2024-05-01T12:00:${String(random(60)).padStart(2, '0')}.000Z`,
    })
  }
  const storeOrder = (list: InstanceRecord[]): InstanceRecord[] => [...new Map(list.map((r) => [instanceKey(r), r])).values()].sort(compareRecords)

  it.each(INSTANCE_SORT_KEYS.flatMap((column) => [false, true].map((descending) => [column, descending] as const)))(
    'Given sort by %s (descending %s) and 200 rounds of records added, removed and replaced, Then every round is ordered as a sort from scratch would order it',
    (column, descending) => {
      const sorter = new InstanceSorter()
      let list = storeOrder(Array.from({ length: 60 }, (_, n) => make(n)))
      for (let round = 0; round < 200; round++) {
        // Given the store's next list: some records replaced (a new object, maybe new values), some gone, some new
        const next = list.map((r) => (random(10) === 0 ? { ...make(0), service: r.service, id: r.id, node: r.node } : r)).filter(() => random(20) !== 0)
        for (let k = random(4); k > 0; k--) next.push(make(1000 + round * 10 + k))
        list = storeOrder(next)
        // When it is sorted, Then
        expect(sorter.sort(list, { column, descending })).toEqual(reference(list, column, descending))
      }
    },
  )

  it('Given the column changes between calls, Then each call sorts by the column it is given', () => {
    const sorter = new InstanceSorter()
    const list = storeOrder(Array.from({ length: 40 }, (_, n) => make(n)))
    for (const column of [...INSTANCE_SORT_KEYS, ...INSTANCE_SORT_KEYS]) expect(sorter.sort(list, { column, descending: false })).toEqual(reference(list, column, false))
  })

  it('Given the default order (service, ascending), Then the list itself is returned: no copy', () => {
    expect(new InstanceSorter().sort(records, { column: 'service', descending: false })).toBe(records)
  })
})

describe('indexOfInstance', () => {
  it('Given keys of rows, of no row and of no shape, Then the row index or -1', () => {
    expect(records.map((r) => indexOfInstance(records, instanceKey(r)))).toEqual([0, 1, 2, 3])
    expect(indexOfInstance(records, 'api/node-a:api-9:80')).toBe(-1)
    expect(indexOfInstance(records, 'db/ext-db/x')).toBe(-1)
    expect(indexOfInstance(records, 'no-slash')).toBe(-1)
  })
})

describe('nodeRows', () => {
  it('Given instances on three nodes, node records for two and a leader, Then one row per node with what is known', () => {
    const rows = nodeRows(records, {
      node: 'node-a',
      startedAt: '2024-05-01T11:00:00.000Z',
      leader: { node: 'node-b', term: '3', since: '2024-05-01T11:00:00.000Z', self: false },
      nodes: [{ schema: 1, node: 'node-b', version: '0.3.0', pid: 1, hostname: 'b', startedAt: '2024-05-01T10:00:00.000Z', ttl: 15, lease: '1' }],
    })
    expect(rows.map((r) => [r.node, r.self, r.leader, r.version, r.ttl, r.total, r.counts.critical])).toEqual([
      ['node-a', true, false, undefined, undefined, 2, 0],
      ['node-b', false, true, '0.3.0', 15, 1, 1],
      ['node-c', false, false, undefined, undefined, 1, 0],
    ])
    expect(rows[0].startedAt).toBe('2024-05-01T11:00:00.000Z')
  })

  it('Given no instances at all, Then this node still has a row', () => {
    expect(nodeRows([], { node: 'node-a', startedAt: 'x', leader: null, nodes: [] }).map((r) => r.node)).toEqual(['node-a'])
  })
})

const entry = (id: number, event: AgentEvent, level: LogEntry['level'] = 'info'): LogEntry => ({ id, at: `2024-05-01T12:00:0${id}.000Z`, level, type: event.type, event })
const log: LogEntry[] = [
  entry(1, { type: 'etcd.connected', endpoints: ['http://e:2379'] }),
  entry(2, { type: 'instance.registered', instance: instanceRecord({ service: 'web', id: 'web-1:80' }) }),
  entry(3, { type: 'health.changed', service: 'web', id: 'web-1:80', from: 'passing', to: 'critical', output: 'HTTP 500' }, 'warn'),
  entry(4, { type: 'instance.removed', service: 'api', id: 'api-9:80', reason: 'container died' }),
]
const notes: UiNote[] = [{ id: 1, at: '2024-05-01T12:00:05.000Z', level: 'info', text: 'check web web-1:80 run now: passing', service: 'web', instance: 'web-1:80' }]

describe('events', () => {
  it('Given the log and a note, Then one list, newest first, with services and ids where the event has them', () => {
    expect(eventItems(log, notes).map((e) => [e.type, e.service, e.id])).toEqual([
      ['action', 'web', 'web-1:80'],
      ['instance.removed', 'api', 'api-9:80'],
      ['health.changed', 'web', 'web-1:80'],
      ['instance.registered', 'web', 'web-1:80'],
      ['etcd.connected', undefined, undefined],
    ])
  })

  it.each<[string, Parameters<typeof visibleEvents>[1], string[]]>([
    ['all', { filter: '', group: 'all' }, ['action', 'instance.removed', 'health.changed', 'instance.registered', 'etcd.connected']],
    ['health', { filter: '', group: 'health' }, ['health.changed']],
    ['registry', { filter: '', group: 'registry' }, ['instance.removed', 'instance.registered']],
    ['connection', { filter: '', group: 'connection' }, ['etcd.connected']],
    ['problems', { filter: '', group: 'problems' }, ['health.changed']],
    ['actions', { filter: '', group: 'actions' }, ['action']],
    ['service web', { filter: '', group: 'all', service: 'web' }, ['action', 'health.changed', 'instance.registered']],
    ['text "died"', { filter: 'DIED', group: 'all' }, ['instance.removed']],
    ['text "api" (a service name)', { filter: 'api', group: 'all' }, ['instance.removed']],
  ])('Given the filter %s, Then the events shown are %j', (_, view, types) => {
    expect(visibleEvents(eventItems(log, notes), view).map((e) => e.type)).toEqual(types)
  })

  it("Given this node's instance (logged with a short id), Then its events are found by the full record", () => {
    const record = instanceRecord({ service: 'web', id: 'node-a:web-1:80' })
    expect(eventsOf(eventItems(log, notes), record).map((e) => e.type)).toEqual(['action', 'health.changed', 'instance.registered'])
  })
})

describe('check history', () => {
  const result = (status: 'passing' | 'critical', latencyMs: number): AgentEvent => ({ type: 'check.result', service: 'web', id: 'node-a:web-1:80', status, latencyMs, slipMs: 0 })

  it('Given more results than the bound, Then only the last `limit` are kept, oldest dropped', () => {
    let entry = undefined
    for (let i = 1; i <= 7; i++) entry = checksAfter(entry, result('passing', i), i, 5)
    expect(entry!.samples.map((s) => s.latencyMs)).toEqual([3, 4, 5, 6, 7])
  })

  it('Given a health change to critical and back, Then the failure output is kept as the last failure; removal forgets the instance', () => {
    const history = new CheckHistory(5, 100, () => 42)
    history.record(result('critical', 9))
    history.record({ type: 'health.changed', service: 'web', id: 'node-a:web-1:80', from: 'passing', to: 'critical', output: 'HTTP 500' })
    history.record({ type: 'health.changed', service: 'web', id: 'node-a:web-1:80', from: 'critical', to: 'passing', output: 'HTTP 200' })
    expect(history.get('web/node-a:web-1:80')).toEqual({ samples: [{ at: 42, status: 'critical', latencyMs: 9 }], lastFailure: { at: 42, status: 'critical', output: 'HTTP 500' } })
    history.record({ type: 'instance.removed', service: 'web', id: 'node-a:web-1:80', reason: 'gone' })
    expect(history.get('web/node-a:web-1:80')).toBeUndefined()
  })

  it('Given more instances than the bound, Then the least recently checked is forgotten', () => {
    const history = new CheckHistory(5, 2)
    for (const id of ['a', 'b', 'a', 'c']) history.record({ type: 'check.result', service: 's', id, status: 'passing', latencyMs: 1, slipMs: 0 })
    expect([history.get('s/a') !== undefined, history.get('s/b') !== undefined, history.get('s/c') !== undefined]).toEqual([true, false, true])
    expect(history.size).toBe(2)
  })
})

describe('detailLines', () => {
  const record = instanceRecord({
    service: 'web',
    id: 'node-a:web-1:80',
    status: 'critical',
    tags: ['blue', 'edge'],
    meta: { team: 'core' },
    container: { id: '0123456789abcdef', name: 'web-1', image: 'nginx:1.27', port: 80, protocol: 'tcp' },
    check: { kind: 'http', target: 'http://127.0.0.1:32768/health', interval: 1000, timeout: 2000, failuresBeforeCritical: 1, successesBeforePassing: 2, initialDelay: 0, expectStatus: '200-399' },
    health: { output: 'HTTP 404 in 2 ms (expected 200-399)', since: '2024-05-01T12:00:00.000Z' },
  })
  const checks = { samples: [3, 4, 12].map((latencyMs, i) => ({ at: i, status: i === 2 ? ('critical' as const) : ('passing' as const), latencyMs })) }
  const text = (lines: ReturnType<typeof detailLines>) => lines.map((l) => l.map((s) => s.text).join(''))

  it.each([80, 60, 40])('Given a critical container instance at %i columns, Then every line fits and the record, check, results, failure and events show', (width) => {
    const lines = detailLines({ record, key: 'web/node-a:web-1:80', checks, events: eventsOf(eventItems(log, notes), record), localNode: 'node-a', now: Date.parse('2024-05-01T12:05:00.000Z'), width, rows: 18 })
    for (const line of lines) expect(segmentsWidth(line)).toBeLessThanOrEqual(width)
    if (width !== 80) return
    expect(text(lines)).toEqual([
      'web web-1:80 · critical for 5m',
      'address 127.0.0.1:32768 · node node-a (this node) · source docker',
      'id node-a:web-1:80 · registered 5m ago',
      'tags blue,edge · meta team=core',
      'container web-1 · up ≥5m · port 80/tcp',
      'image nginx:1.27 · id 0123456789ab',
      'check http http://127.0.0.1:32768/health · expects status 200-399',
      '       every 1s · timeout 2s · critical after 1, passing after 2',
      'output HTTP 404 in 2 ms (expected 200-399)',
      'results ▁█× last 12 ms critical · 3–12 ms · 1/3 not passing',
      expect.stringMatching(/^last failure \d\d:\d\d:\d\d critical: HTTP 404 in 2 ms \(expected 200-399\)$/),
      'events (3)',
      expect.stringMatching(/check web web-1:80 run now: passing$/),
      expect.stringMatching(/health web web-1:80: passing → critical \(HTTP 500\)$/),
      expect.stringMatching(/registered web web-1:80 at 127\.0\.0\.1:32768 \(passing\)$/),
    ])
  })

  it('Given few rows, Then the events are cut first; Given a removed record, Then the pane says it is gone', () => {
    const lines = detailLines({ record, key: 'k', checks, events: eventsOf(eventItems(log, notes), record), localNode: 'node-a', now: 0, width: 80, rows: 13 })
    expect(text(lines).slice(11)).toEqual(['events (3), newest 1', expect.stringMatching(/run now: passing$/)])
    expect(text(detailLines({ record: undefined, key: 'web/node-a:web-1:80', events: [], localNode: 'node-a', now: 0, width: 80, rows: 18 }))).toEqual(['web node-a:web-1:80 is gone from the registry (Esc closes)'])
  })

  it("Given another node's instance with a check, Then the results line says who checks it", () => {
    const theirs = instanceRecord({ node: 'node-b', id: 'node-b:x:80', check: record.check })
    expect(text(detailLines({ record: theirs, key: 'k', events: [], localNode: 'node-a', now: 0, width: 80, rows: 18 }))).toContain('results checked by node-b; its results are not seen here')
  })
})

describe('actions', () => {
  const manual = instanceRecord({ service: 'db', id: 'ext-db', source: 'manual' })
  const at = () => new Date('2024-05-01T12:00:00.000Z')
  it('Given a deregister that succeeds, fails, or is not given, Then the note says so', async () => {
    const request = { kind: 'deregister' as const, key: 'db/ext-db', service: 'db', id: 'ext-db' }
    expect(await runAction({ deregister: async () => 'deleted' }, request, manual, at)).toMatchObject({ level: 'info', text: 'deregistered db ext-db: deleted', service: 'db', instance: 'ext-db' })
    expect(await runAction({ deregister: async () => Promise.reject(new Error('etcd unreachable')) }, request, manual, at)).toMatchObject({ level: 'error', text: 'deregister db ext-db failed: etcd unreachable' })
    expect(await runAction({}, request, manual, at)).toMatchObject({ level: 'error', text: 'deregister db ext-db failed: not available in this agent' })
    expect(await runAction({}, request, undefined, at)).toMatchObject({ level: 'warn', text: 'deregister: db ext-db is gone from the registry' })
  })

  it('Given maintenance on, Then the action is called with on=true; a copy without a clipboard still prints the address', async () => {
    const calls: boolean[] = []
    await runAction({ maintenance: async (_r, on) => (calls.push(on), 'ok') }, { kind: 'maintenance-on', key: 'db/ext-db', service: 'db', id: 'ext-db' }, manual, at)
    expect(calls).toEqual([true])
    expect((await runAction({}, { kind: 'copy', key: 'db/ext-db', service: 'db', id: 'ext-db' }, manual, at)).text).toBe('address of db ext-db: 127.0.0.1:32768 (no clipboard here: printed only)')
  })

  it('Given more notes than the bound, Then the oldest go, ids keep increasing, and control characters are made visible', () => {
    let list: UiNote[] = []
    for (let i = 0; i < 5; i++) list = notesAfter(list, { at: 'x', level: 'info', text: `n${i}\u001b[2J` }, 3)
    expect(list.map((n) => [n.id, n.text])).toEqual([
      [3, 'n2\\x1b[2J'],
      [4, 'n3\\x1b[2J'],
      [5, 'n4\\x1b[2J'],
    ])
  })
})

describe('chrome', () => {
  it.each([
    [24, 18],
    [40, 34],
    [7, 2],
  ])('Given %i terminal rows, Then the body gets %i lines', (rows, body) => {
    expect(bodyLines(rows)).toBe(body)
  })

  it('Given each view at 79 columns, Then the tabs fit and the current one is in brackets (readable without colour)', () => {
    const text = (segments: ReturnType<typeof tabsLine>) => segments.map((s) => s.text).join('')
    expect(text(tabsLine('services', undefined, undefined, 79))).toBe('[1 Services] 2 Instances  3 Nodes  4 Events ')
    expect(text(tabsLine('instances', 'web', { column: 'health', descending: true }, 79))).toBe(' 1 Services [2 Instances › web] 3 Nodes  4 Events  · sort health ▼')
  })

  it('Given the help, Then it names every key the reducer knows', () => {
    const help = HELP_LINES.map((l) => l[0].text).join(' ')
    for (const key of ['1-4', 'Tab', 'j/k', 'Enter', 'Esc', '/', 'h', 's S', 't', 'c', 'm', 'd', 'a', 'q', '?']) expect(help).toContain(key)
  })
})
