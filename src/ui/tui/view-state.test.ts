import { describe, expect, it } from 'vitest'
import { instanceRecord } from '../../../test/support/instance-fixtures.js'
import { INITIAL_VIEW, resolveCursor, viewAfterKey, type KeyContext, type ListContext, type Selected, type ViewState } from './view-state.js'

const manual = instanceRecord({ service: 'db', id: 'ext-db', source: 'manual', check: { kind: 'tcp', target: '10.0.0.5:5432', interval: 10_000, timeout: 5000, failuresBeforeCritical: 3, successesBeforePassing: 1, initialDelay: 0 } })
const docker = instanceRecord({ service: 'web', id: 'node-a:web-1:80' })
/** Every view a list of 30 rows, 18 on screen; every row is `selected` (by default the manual record). */
const contextOf = (selected: Selected, available = { check: true, maintenance: false, deregister: true }): KeyContext => {
  const rows: ListContext = { count: 30, keyAt: (i) => (i >= 0 && i < 30 ? `row-${i}` : undefined), selectedAt: () => selected }
  return { rows: 18, lists: { services: rows, instances: rows, nodes: rows, events: rows }, available }
}
const list = contextOf({ kind: 'instance', record: manual })
type Keys = Array<[string, Record<string, boolean>?]>

/** Presses keys in turn, each on the view the last one left, the list following the cursor. */
function press(keys: Keys, from: ViewState = INITIAL_VIEW, context: KeyContext = list) {
  let view = from
  let quit = false
  const requests = []
  const notes = []
  for (const [input, key] of keys) {
    const result = viewAfterKey(view, input, key ?? {}, context)
    view = result.view
    quit ||= result.quit
    if (result.request) requests.push(result.request)
    if (result.note) notes.push(result.note.text)
  }
  return { view, quit, requests, notes }
}

describe('viewAfterKey: filter, help, quit', () => {
  it.each<{ name: string; keys: Keys; view?: Partial<ViewState>; quit?: boolean }>([
    { name: 'q', keys: [['q']], quit: true },
    { name: 'Ctrl+C', keys: [['c', { ctrl: true }]], quit: true },
    { name: 'Ctrl+C while typing a filter', keys: [['/'], ['c', { ctrl: true }]], quit: true },
    { name: '/ then q typed at once (q is filter text)', keys: [['/'], ['q']], view: { editing: true, filter: 'q' }, quit: false },
    { name: 'a pasted filter', keys: [['/'], ['web-1'], ['', { return: true }]], view: { editing: false, filter: 'web-1' } },
    { name: 'backspace in the filter', keys: [['/'], ['ab'], ['', { backspace: true }]], view: { filter: 'a' } },
    { name: 'Esc while typing', keys: [['/'], ['ab'], ['', { escape: true }]], view: { editing: false, filter: '' } },
    { name: 'Esc after Enter and ? (help first, then the filter)', keys: [['/'], ['ab'], ['', { return: true }], ['?'], ['', { escape: true }]], view: { filter: 'ab', help: false } },
    { name: 'Esc twice after Enter and ?', keys: [['/'], ['ab'], ['', { return: true }], ['?'], ['', { escape: true }], ['', { escape: true }]], view: { filter: '', help: false } },
    { name: 'control characters typed into the filter', keys: [['/'], ['a\u0007b']], view: { filter: 'ab' } },
    { name: 'digits typed into the filter (not view keys)', keys: [['/'], ['2']], view: { filter: '2', view: 'services' } },
    { name: 'h twice', keys: [['h'], ['h']], view: { healthyOnly: false } },
    { name: 'h', keys: [['h']], view: { healthyOnly: true } },
    { name: '?', keys: [['?']], view: { help: true } },
    { name: 'an unknown key', keys: [['x']], view: INITIAL_VIEW },
    { name: '"/web" in one read (typed while the agent was busy)', keys: [['/web']], view: { editing: true, filter: 'web' } },
    { name: '"/web\\r" in one read', keys: [['/web\r']], view: { editing: false, filter: 'web' } },
    { name: '"/we\\u007fb" in one read', keys: [['/we\u007fb']], view: { filter: 'wb' } },
    { name: '"/q" in one read (q is filter text)', keys: [['/q']], view: { filter: 'q' }, quit: false },
    { name: '"jq" in one read', keys: [['jq']], quit: true },
  ])('Given $name, Then the view and quit are as expected', ({ keys, view, quit }) => {
    const result = press(keys)
    if (view) expect(result.view).toMatchObject(view)
    expect(result.quit).toBe(quit ?? false)
  })
})

describe('viewAfterKey: views and the cursor', () => {
  it.each<{ name: string; keys: Keys; view: string; cursor?: number; offset?: number }>([
    { name: 'the start', keys: [], view: 'services' },
    { name: 'Tab', keys: [['', { tab: true }]], view: 'instances' },
    { name: 'Tab four times (round)', keys: [['', { tab: true }], ['', { tab: true }], ['', { tab: true }], ['', { tab: true }]], view: 'services' },
    { name: 'Shift+Tab', keys: [['', { tab: true, shift: true }]], view: 'events' },
    { name: '3', keys: [['3']], view: 'nodes' },
    { name: '"\\t\\t" in one read', keys: [['\t\t']], view: 'nodes' },
    { name: 'j j ↓ k', keys: [['j'], ['j'], ['', { downArrow: true }], ['k']], view: 'services', cursor: 2, offset: 0 },
    { name: 'k at the top', keys: [['k'], ['', { upArrow: true }]], view: 'services', cursor: 0 },
    { name: 'j 18 times (the window follows the cursor)', keys: Array.from({ length: 18 }, () => ['j'] as [string]), view: 'services', cursor: 18, offset: 1 },
    { name: 'PgDn twice (stops at the last row)', keys: [['', { pageDown: true }], ['', { pageDown: true }]], view: 'services', cursor: 29, offset: 12 },
    { name: 'End then PgUp', keys: [['', { end: true }], ['', { pageUp: true }]], view: 'services', cursor: 11, offset: 11 },
    { name: 'G then g', keys: [['G'], ['g']], view: 'services', cursor: 0, offset: 0 },
    { name: 'j then 2 (each view keeps its own cursor)', keys: [['j'], ['2']], view: 'instances', cursor: 0 },
    { name: 'j then h (the list changed: back to the top)', keys: [['j'], ['h']], view: 'services', cursor: 0 },
  ])('Given $name, Then the view is $view and the cursor where expected', ({ keys, view, cursor, offset }) => {
    const result = press(keys)
    expect(result.view.view).toBe(view)
    const position = result.view.positions[result.view.view]
    if (cursor !== undefined) expect(position.cursor).toBe(cursor)
    if (offset !== undefined) expect(position.offset).toBe(offset)
  })

  it('Given the cursor moved, Then it holds the key of its row, so it can follow the row when others come and go', () => {
    expect(press([['j'], ['j']]).view.positions.services).toEqual({ cursor: 2, offset: 0, key: 'row-2' })
  })

  it('Given Services, When Enter is pressed on a service, Then Instances of that service show; Esc goes back to Services', () => {
    const onService = contextOf({ kind: 'service', service: 'web' })
    const opened = press([['/'], ['w'], ['', { return: true }], ['', { return: true }]], INITIAL_VIEW, onService)
    expect(opened.view).toMatchObject({ view: 'instances', service: 'web', filter: '' })
    const back = press([['', { escape: true }]], opened.view)
    expect(back.view).toMatchObject({ view: 'services', service: undefined })
  })

  it('Given Nodes, When Enter is pressed on a node, Then Instances filtered by the node show', () => {
    const result = press([['3'], ['', { return: true }]], INITIAL_VIEW, contextOf({ kind: 'node', node: 'node-b' }))
    expect(result.view).toMatchObject({ view: 'instances', filter: 'node-b' })
  })

  it('Given Instances, When Enter is pressed, Then the detail pane opens on the row (its key kept); Esc closes it, a view key too', () => {
    const opened = press([['2'], ['j'], ['', { return: true }]])
    expect(opened.view).toMatchObject({ view: 'instances', detail: true })
    expect(opened.view.positions.instances.key).toBe('row-1')
    expect(press([['', { escape: true }]], opened.view).view.detail).toBe(false)
    expect(press([['1']], opened.view).view.detail).toBe(false)
  })

  it.each<[string, Keys, { column: string; descending: boolean }]>([
    ['s', [['s']], { column: 'status', descending: false }],
    ['S', [['S']], { column: 'service', descending: true }],
    ['2 s s s s s', [['2'], ['s'], ['s'], ['s'], ['s'], ['s']], { column: 'output', descending: false }],
    ['2 s × 7 (round)', [['2'], ...Array.from({ length: 7 }, () => ['s'] as [string])], { column: 'service', descending: false }],
  ])('Given %s, Then the sort is as expected', (_, keys, sort) => {
    const result = press(keys)
    expect(result.view.sort[result.view.view as 'services']).toEqual(sort)
  })

  it('Given Events, When t is pressed, Then the type steps through the groups; elsewhere t does nothing', () => {
    expect(press([['4'], ['t'], ['t']]).view.group).toBe('registry')
    expect(press([['t']]).view.group).toBe('all')
  })
})

describe('viewAfterKey: actions', () => {
  it('Given a manual record under the cursor, When d then y, Then a deregister request is made; d then n (or q), Then nothing and no quit', () => {
    const asked = press([['2'], ['d']])
    expect(asked.view.confirm).toMatchObject({ kind: 'deregister', service: 'db', id: 'ext-db' })
    expect(press([['y']], asked.view).requests).toEqual([{ kind: 'deregister', key: 'db/ext-db', service: 'db', id: 'ext-db' }])
    for (const key of ['n', 'q', 'x']) {
      const cancelled = press([[key]], asked.view)
      expect(cancelled).toMatchObject({ quit: false, requests: [] })
      expect(cancelled.view.confirm).toBeUndefined()
    }
  })

  it('Given a Docker record, When d, Then no confirmation but a note saying only manual records can be deregistered', () => {
    const result = press([['2'], ['d']], INITIAL_VIEW, contextOf({ kind: 'instance', record: docker }))
    expect(result.view.confirm).toBeUndefined()
    expect(result.notes).toEqual([expect.stringContaining('only manual records can be deregistered')])
  })

  it.each<[string, string, string | RegExp]>([
    ['c without a check action', 'c', 'run a check now is not available in this agent'],
    ['m without a maintenance action', 'm', 'maintenance is not available in this agent yet'],
  ])('Given %s, When pressed, Then a note says so', (_, key, note) => {
    const result = press([['2'], [key]], INITIAL_VIEW, contextOf({ kind: 'instance', record: manual }, { check: false, maintenance: false, deregister: false }))
    expect(result.notes).toEqual([note])
    expect(result.view.confirm).toBeUndefined()
  })

  it('Given an instance in maintenance, When m then y, Then it is taken out of maintenance; otherwise put in', () => {
    const inMaintenance = contextOf({ kind: 'instance', record: instanceRecord({ status: 'maintenance' }) }, { check: true, maintenance: true, deregister: true })
    expect(press([['2'], ['m'], ['y']], INITIAL_VIEW, inMaintenance).requests).toEqual([expect.objectContaining({ kind: 'maintenance-off' })])
    const passing = contextOf({ kind: 'instance', record: docker }, { check: true, maintenance: true, deregister: true })
    expect(press([['2'], ['m'], ['y']], INITIAL_VIEW, passing).requests).toEqual([expect.objectContaining({ kind: 'maintenance-on' })])
  })

  it('Given a record with a check, When c then y, Then a check request; a (copy), Then a request at once, without confirmation', () => {
    expect(press([['2'], ['c'], ['y']]).requests).toEqual([expect.objectContaining({ kind: 'check', key: 'db/ext-db' })])
    const copy = press([['2'], ['a']])
    expect(copy.requests).toEqual([expect.objectContaining({ kind: 'copy' })])
    expect(copy.view.confirm).toBeUndefined()
  })

  it('Given Services (no instance selected), When c, Then a note asks to select an instance', () => {
    expect(press([['c']], INITIAL_VIEW, contextOf({ kind: 'service', service: 'web' })).notes).toEqual([expect.stringContaining('select an instance')])
  })

  it('Given a confirmation, When Ctrl+C, Then it quits (it never waits on a question)', () => {
    const asked = press([['2'], ['d']])
    expect(press([['c', { ctrl: true }]], asked.view).quit).toBe(true)
  })
})

describe('resolveCursor', () => {
  const rows = { count: 5, keyAt: (i: number) => ['a', 'b', 'c', 'd', 'e'][i] }
  it.each<[string, { cursor: number; offset: number; key?: string }, { index: number; found: boolean }]>([
    ['no key', { cursor: 2, offset: 0 }, { index: 2, found: true }],
    ['a key that moved', { cursor: 0, offset: 0, key: 'd' }, { index: 3, found: true }],
    ['a key that is gone', { cursor: 1, offset: 0, key: 'x' }, { index: 1, found: false }],
    ['a cursor past a list that shrank', { cursor: 40, offset: 0 }, { index: 4, found: true }],
    ['a key still at its row', { cursor: 2, offset: 0, key: 'c' }, { index: 2, found: true }],
  ])('Given %s, Then the cursor resolves as expected', (_, position, expected) => {
    expect(resolveCursor(position, rows)).toEqual(expected)
  })

  it('Given a list that finds its keys itself, Then a key that moved is found by it, and a key at its row is not searched for', () => {
    const asked: string[] = []
    const list = { ...rows, indexOfKey: (key: string) => (asked.push(key), ['a', 'b', 'c', 'd', 'e'].indexOf(key)) }
    expect(resolveCursor({ cursor: 0, offset: 0, key: 'd' }, list)).toEqual({ index: 3, found: true })
    expect(resolveCursor({ cursor: 1, offset: 0, key: 'x' }, list)).toEqual({ index: 1, found: false })
    expect(resolveCursor({ cursor: 4, offset: 0, key: 'e' }, list)).toEqual({ index: 4, found: true })
    expect(asked).toEqual(['d', 'x'])
  })

  it('Given the detail pane of a record that is gone, When d, Then nothing is asked (no instance to act on)', () => {
    const gone = { ...INITIAL_VIEW, view: 'instances' as const, detail: true, positions: { ...INITIAL_VIEW.positions, instances: { cursor: 0, offset: 0, key: 'gone' } } }
    const result = press([['d']], gone)
    expect(result.view.confirm).toBeUndefined()
    expect(result.notes).toEqual([expect.stringContaining('select an instance')])
  })
})
