import type { Key } from 'ink'
import type { InstanceRecord } from '../../core/model.js'
import { refusal, requestFor, type ActionAvailability, type ActionKind, type ActionRequest, type UiNote } from './actions.js'
import { windowStart, type SortState } from './grid.js'
import { EVENT_GROUPS, INSTANCE_SORT_KEYS, VIEWS, type EventGroup, type ViewName } from './views.js'

/** Where the cursor is in one view's list: its row (and the key of the row, so it stays on it when rows move) and the first row on screen. */
export interface ListPosition {
  cursor: number
  offset: number
  key?: string
}

export type SortedView = 'services' | 'instances' | 'nodes'

/** What the user chose to see: the view, filter, scope, sort, cursor, the detail pane, help, a pending confirmation. */
export interface ViewState {
  view: ViewName
  filter: string
  editing: boolean
  healthyOnly: boolean
  help: boolean
  positions: Record<ViewName, ListPosition>
  sort: Record<SortedView, SortState>
  /** Instances and events of this service only (Enter on a service). */
  service?: string
  /** The detail pane of the instance under the cursor is open. */
  detail: boolean
  /** Events view: which kinds of events. */
  group: EventGroup
  /** An action waiting for y. */
  confirm?: ActionRequest
}

const TOP: ListPosition = { cursor: 0, offset: 0 }

export const INITIAL_VIEW: ViewState = {
  view: 'services',
  filter: '',
  editing: false,
  healthyOnly: false,
  help: false,
  positions: { services: TOP, instances: TOP, nodes: TOP, events: TOP },
  sort: { services: { column: 'service', descending: false }, instances: { column: 'service', descending: false }, nodes: { column: 'node', descending: false } },
  detail: false,
  group: 'all',
}

/** Column keys `s` steps through, per sorted view. */
export const SORT_KEYS: Record<SortedView, string[]> = {
  services: ['service', 'status', 'healthy', 'warning', 'critical', 'nodes'],
  instances: INSTANCE_SORT_KEYS,
  nodes: ['node', 'role', 'version', 'uptime', 'ttl', 'instances', 'passing', 'warning', 'critical'],
}

/** The row under the cursor, as the App resolved it for the key press. */
export type Selected = { kind: 'service'; service: string } | { kind: 'instance'; record: InstanceRecord } | { kind: 'node'; node: string } | { kind: 'event'; service?: string }

/** One view's list as it is now: the App's, read at each key press (keys may come faster than frames). */
export interface ListContext {
  count: number
  /** The key of a row, so the cursor can follow it. */
  keyAt: (index: number) => string | undefined
  /** The row as the reducer needs it (a service, an instance record, a node, an event). */
  selectedAt: (index: number) => Selected | undefined
  /** Where the row with this key is, or -1; default: `keyAt` asked row by row. */
  indexOfKey?: (key: string) => number
}

export interface KeyContext {
  /** List rows on screen. */
  rows: number
  lists: Record<ViewName, ListContext>
  available: ActionAvailability
}

/** The cursor's row: where its key is now, else its last row (within the list); `found` false when the key is gone. */
export function resolveCursor(position: ListPosition, list: Pick<ListContext, 'count' | 'keyAt' | 'indexOfKey'>): { index: number; found: boolean } {
  if (position.key !== undefined) {
    // Most often the row has not moved: asked first, before a search of every row.
    if (position.cursor < list.count && list.keyAt(position.cursor) === position.key) return { index: position.cursor, found: true }
    if (list.indexOfKey) {
      const index = list.indexOfKey(position.key)
      if (index >= 0) return { index, found: true }
    } else {
      for (let i = 0; i < list.count; i++) if (list.keyAt(i) === position.key) return { index: i, found: true }
    }
  }
  return { index: Math.max(0, Math.min(position.cursor, list.count - 1)), found: position.key === undefined }
}

export interface KeyResult {
  view: ViewState
  quit: boolean
  /** A confirmed action (or a copy, which needs no confirmation) for the App to run. */
  request?: ActionRequest
  /** A line for the log: why a key did nothing. */
  note?: Pick<UiNote, 'level' | 'text' | 'service' | 'instance'>
}

const ACTION_KEYS: Record<string, ActionKind> = { c: 'check', m: 'maintenance-on', d: 'deregister', a: 'copy' }

/**
 * The next view for one key press, whether it asks to quit, and an action to run. Pure, and
 * applied to the latest view (not the one of the last render), so keys typed faster than
 * frames, or pasted, all count: `/` then `q` in quick succession filters for "q" rather than quitting.
 */
export function viewAfterKey(view: ViewState, input: string, key: Partial<Key>, context: KeyContext): KeyResult {
  if ([...input].length > 1 && !key.ctrl && !key.meta) {
    // Several keys in one read (typed while the event loop was busy, or pasted) arrive as one
    // input: "/web\r" is '/', 'w', 'e', 'b', Enter, not an unknown key. An action asked for
    // in the same read is kept (the first one); the rest still move the view.
    let result: KeyResult = { view, quit: false }
    for (const char of input) {
      const next = viewAfterKey(result.view, ...keyOf(char), context)
      result = { ...next, request: result.request ?? next.request, note: result.note ?? next.note }
      if (result.quit) break
    }
    return result
  }
  const next = (patch: Partial<ViewState>): KeyResult => ({ view: { ...view, ...patch }, quit: false })
  const same: KeyResult = { view, quit: false }
  if (key.ctrl && input === 'c') return { view, quit: true }
  if (view.confirm) {
    // y confirms; any other key (q and Esc included) only cancels.
    if (input === 'y' || input === 'Y') return { ...next({ confirm: undefined }), request: view.confirm }
    return next({ confirm: undefined })
  }
  if (view.editing) {
    if (key.return) return next({ editing: false })
    if (key.escape) return next({ editing: false, filter: '', ...atTop(view) })
    if (key.backspace || key.delete) return next({ filter: view.filter.slice(0, -1), ...atTop(view) })
    const text = key.ctrl || key.meta ? '' : input.replace(/[\u0000-\u001f\u007f]/g, '')
    return text ? next({ filter: view.filter + text, ...atTop(view) }) : same
  }
  const list = context.lists[view.view]
  const { index, found } = resolveCursor(view.positions[view.view], list)
  const offset = windowStart(index, view.positions[view.view].offset, context.rows, list.count)
  const position: ListPosition = { ...view.positions[view.view], cursor: index, offset }
  const moveTo = (to: number): KeyResult => {
    const cursor = Math.max(0, Math.min(list.count - 1, to))
    return next({ positions: { ...view.positions, [view.view]: { cursor, offset: windowStart(cursor, offset, context.rows, list.count), key: list.keyAt(cursor) } } })
  }
  const switchTo = (name: ViewName): KeyResult => next({ view: name, detail: false })
  if (input === 'q') return { view, quit: true }
  if (input === '/') return next({ editing: true })
  if (input === '?') return next({ help: !view.help })
  if (input === 'h') return next({ healthyOnly: !view.healthyOnly, ...atTop(view) })
  if (key.escape) {
    // One layer at a time: help, the detail pane, the filter, the service scope (back to Services).
    if (view.help) return next({ help: false })
    if (view.detail) return next({ detail: false })
    if (view.filter) return next({ filter: '', ...atTop(view) })
    if (view.service !== undefined) return next({ service: undefined, view: 'services', positions: { ...view.positions, instances: TOP, events: TOP } })
    return same
  }
  if (key.tab) return switchTo(VIEWS[(VIEWS.indexOf(view.view) + (key.shift ? VIEWS.length - 1 : 1)) % VIEWS.length])
  if (/^[1-4]$/.test(input)) return switchTo(VIEWS[Number(input) - 1])
  if (input === 'j' || key.downArrow) return moveTo(index + 1)
  if (input === 'k' || key.upArrow) return moveTo(index - 1)
  if (key.pageDown || input === ' ') return moveTo(index + context.rows)
  if (key.pageUp) return moveTo(index - context.rows)
  if (key.home || input === 'g') return moveTo(0)
  if (key.end || input === 'G') return moveTo(list.count - 1)
  if (input === 's' || input === 'S') {
    if (view.view === 'events') return same
    const current = view.sort[view.view]
    const keys = SORT_KEYS[view.view]
    const sort = input === 'S' ? { ...current, descending: !current.descending } : { column: keys[(keys.indexOf(current.column) + 1) % keys.length], descending: false }
    return next({ sort: { ...view.sort, [view.view]: sort }, positions: { ...view.positions, [view.view]: TOP } })
  }
  if (input === 't' && view.view === 'events') {
    return next({ group: EVENT_GROUPS[(EVENT_GROUPS.indexOf(view.group) + 1) % EVENT_GROUPS.length], positions: { ...view.positions, events: TOP } })
  }
  // The detail pane of an instance that is gone acts on nothing.
  const selected = view.detail && view.view === 'instances' && !found ? undefined : list.selectedAt(index)
  if (key.return) {
    switch (selected?.kind) {
      case 'service':
      case 'event':
        if (selected.service === undefined) return same
        return next({ view: 'instances', service: selected.service, filter: '', detail: false, positions: { ...view.positions, instances: TOP } })
      case 'instance':
        return next({ detail: !view.detail, positions: { ...view.positions, instances: { ...position, key: list.keyAt(index) } } })
      case 'node':
        return next({ view: 'instances', filter: selected.node, service: undefined, detail: false, positions: { ...view.positions, instances: TOP } })
      default:
        return same
    }
  }
  const action = ACTION_KEYS[input]
  if (action) {
    if (selected?.kind !== 'instance') return { ...same, note: { level: 'warn', text: `${input}: select an instance first (Instances view, or Enter on a service)` } }
    const why = refusal(action, selected.record, context.available)
    if (why) return { ...same, note: { level: 'warn', text: why, service: selected.record.service } }
    // m toggles: an instance in maintenance is taken out of it.
    const request = requestFor(action === 'maintenance-on' && selected.record.health.status === 'maintenance' ? 'maintenance-off' : action, selected.record)
    return action === 'copy' ? { ...same, request } : next({ confirm: request })
  }
  return same
}

/** The current list back at its top (the filter or scope changed what it holds). */
function atTop(view: ViewState): Pick<ViewState, 'positions'> {
  return { positions: { ...view.positions, [view.view]: TOP } }
}

/** One character of a multi-key read as Ink would have reported it alone. */
function keyOf(char: string): [string, Partial<Key>] {
  switch (char) {
    case '\r':
    case '\n':
      return ['', { return: true }]
    case '\u007f':
    case '\b':
      return ['', { backspace: true }]
    case '\u001b':
      return ['', { escape: true }]
    case '\t':
      return ['', { tab: true }]
    case '\u0003':
      return ['c', { ctrl: true }]
    default:
      return [char, {}]
  }
}
