import { formatAge } from '../../core/duration.js'
import { HEALTH_STATUSES, type HealthStatus, type InstanceRecord, type NodeRecord } from '../../core/model.js'
import type { AgentState, LogEntry } from '../../core/store.js'
import { describeAgentEvent } from '../event-text.js'
import { HEALTH_COLOR } from '../theme.js'
import type { UiNote } from './actions.js'
import { compareText, healthBar, sortKey, type GridColumn, type HealthCounts } from './grid.js'
import { cellText, instanceLabel, type ColumnKey } from './layout.js'
import { walkChanges } from './list-changes.js'

/**
 * What each view shows, derived from the store's snapshot: pure functions, table-tested.
 * `StoreAdditions` are the parts of the snapshot a bare store (a test's) may lack.
 */
export interface StoreAdditions {
  /** Every agent's node record (`<prefix>/nodes/<node>`): version, startedAt, lease TTL. */
  nodes: NodeRecord[]
  /** Where this agent serves DNS and the Consul HTTP API, once it does. */
  serving: { dns?: string; http?: string }
}
export type TuiState = AgentState & Partial<StoreAdditions>

export const VIEWS = ['services', 'instances', 'nodes', 'events'] as const
export type ViewName = (typeof VIEWS)[number]
export const VIEW_TITLE: Record<ViewName, string> = { services: 'Services', instances: 'Instances', nodes: 'Nodes', events: 'Events' }

/** Worst first: the order problems are shown in. */
const SEVERITY: Record<HealthStatus, number> = { critical: 0, warning: 1, unknown: 2, maintenance: 3, passing: 4 }
/** A literal, not built from HEALTH_STATUSES: counted into 100,000 times, its fields stay fast properties. */
export const emptyCounts = (): HealthCounts => ({ passing: 0, warning: 0, critical: 0, unknown: 0, maintenance: 0 })
export const worstOf = (counts: HealthCounts): HealthStatus => HEALTH_STATUSES.reduce<HealthStatus>((worst, s) => (counts[s] > 0 && SEVERITY[s] < SEVERITY[worst] ? s : worst), 'passing')

/** The instance's identity across views and the check history: `service/id` (full id). */
export const instanceKey = (record: Pick<InstanceRecord, 'service' | 'id'>): string => `${record.service}/${record.id}`

// ---- Services ---------------------------------------------------------------------------

export interface ServiceRow {
  service: string
  total: number
  counts: HealthCounts
  nodes: string[]
  worst: HealthStatus
}

/** One row per service (in the instances' order: by name), with counts by health and its nodes. */
export function serviceRows(instances: readonly InstanceRecord[]): ServiceRow[] {
  const rows = new Map<string, { counts: HealthCounts; nodes: Set<string>; total: number }>()
  // The store lists a service's instances together, often a node's in a row: one lookup per run.
  let service: string | undefined
  let node: string | undefined
  let row: { counts: HealthCounts; nodes: Set<string>; total: number } | undefined
  for (let i = 0; i < instances.length; i++) {
    const r = instances[i]
    if (r.service !== service || !row) {
      service = r.service
      node = undefined
      row = rows.get(service)
      if (!row) rows.set(service, (row = { counts: emptyCounts(), nodes: new Set(), total: 0 }))
    }
    if (r.node !== node) row.nodes.add((node = r.node))
    row.counts[r.health.status] += 1
    row.total += 1
  }
  return [...rows].map(([name, row]) => ({ service: name, total: row.total, counts: row.counts, nodes: [...row.nodes].sort(), worst: worstOf(row.counts) }))
}

const BAR_WIDTH = 24
export const SERVICE_COLUMNS: GridColumn<ServiceRow>[] = [
  { key: 'service', title: 'SERVICE', min: 8, max: 32, text: (r) => r.service },
  { key: 'status', title: 'STATUS', min: 8, max: 11, text: (r) => r.worst, compare: (a, b) => SEVERITY[a.worst] - SEVERITY[b.worst], style: (r) => ({ color: HEALTH_COLOR[r.worst] }) },
  { key: 'healthy', title: 'HEALTHY', min: 7, max: 11, text: (r) => `${r.counts.passing}/${r.total}`, compare: (a, b) => a.counts.passing / a.total - b.counts.passing / b.total },
  { key: 'warning', title: 'WARN', min: 4, max: 6, text: (r) => String(r.counts.warning), compare: (a, b) => a.counts.warning - b.counts.warning, style: (r) => (r.counts.warning ? { color: 'yellow' } : { dim: true }) },
  { key: 'critical', title: 'CRIT', min: 4, max: 6, text: (r) => String(r.counts.critical), compare: (a, b) => a.counts.critical - b.counts.critical, style: (r) => (r.counts.critical ? { color: 'red', bold: true } : { dim: true }) },
  { key: 'nodes', title: 'NODES', min: 5, max: 30, drop: 2, text: (r) => (r.nodes.length === 1 ? r.nodes[0] : String(r.nodes.length)), compare: (a, b) => a.nodes.length - b.nodes.length, style: () => ({ dim: true }) },
  // The bar's text only sizes it; `cells` draws it.
  { key: 'bar', title: 'HEALTH', min: 6, max: BAR_WIDTH, drop: 1, text: () => ' '.repeat(BAR_WIDTH), cells: (r, width) => healthBar(r.counts, Math.min(width, BAR_WIDTH)), compare: (a, b) => a.counts.passing / a.total - b.counts.passing / b.total },
]

// ---- Instances --------------------------------------------------------------------------

export interface InstanceScope {
  /** Only this service's instances (Enter on a service). */
  service?: string
}

/** Sort keys of the Instances table, in the order `s` steps through them. */
export const INSTANCE_SORT_KEYS: ColumnKey[] = ['service', 'instance', 'node', 'address', 'health', 'output', 'age']

/** Instances in the order of `sort` (stable; the store's order, service then id, breaks ties). */
export function sortInstances(records: readonly InstanceRecord[], sort: { column: string; descending: boolean } | undefined): readonly InstanceRecord[] {
  return new InstanceSorter().sort(records, sort)
}

/** What a row sorts by: a number (health, age), or a string whose plain order is the column's. */
type SortValue = string | number

/**
 * `sortInstances` for a live view, remembering between calls (100,000 rows: a frame re-sorts
 * when one health changes). It keeps the rows it was last given with each one's sort value and
 * rank, and the distinct values in order. A call walks the new rows beside the last ones (both
 * in the store's order): a record seen before keeps its value and rank (records are immutable: a
 * change is a new object), so a call costs that walk and a counting sort by rank. Values not
 * seen before are sorted among themselves and merged into the order.
 */
export class InstanceSorter {
  private column: ColumnKey | undefined
  private last: readonly InstanceRecord[] = []
  private lastValues: SortValue[] = []
  private lastRanks = new Int32Array(0)
  /** The distinct values in use, in order, and each one's place in it (a row's rank). */
  private order: SortValue[] = []
  private rank = new Map<SortValue, number>()
  /** A text's sort value, for the columns whose texts repeat (nodes, check outputs, addresses). */
  private texts = new Map<string, string>()

  sort(records: readonly InstanceRecord[], sort: { column: string; descending: boolean } | undefined): readonly InstanceRecord[] {
    if (!sort || (sort.column === 'service' && !sort.descending) || !INSTANCE_SORT_KEYS.includes(sort.column as ColumnKey)) {
      // The store's order needs nothing: what was kept for another column is let go.
      if (this.column !== undefined) this.forget()
      return records
    }
    const column = sort.column as ColumnKey
    if (column !== this.column) {
      this.forget()
      this.column = column
    }
    if (this.texts.size > TEXT_CACHE_LIMIT) this.texts.clear()
    const n = records.length
    const values = new Array<SortValue>(n)
    const ranks = new Int32Array(n)
    let unseen: Set<SortValue> | undefined
    walkChanges(this.last, records, {
      same: (i, j) => {
        values[i] = this.lastValues[j]
        ranks[i] = this.lastRanks[j]
      },
      added: (i) => {
        const value = (values[i] = sortValue(records[i], column, this.texts))
        const rank = this.rank.get(value)
        if (rank !== undefined) ranks[i] = rank
        else (unseen ??= new Set()).add(value)
      },
    })
    if (unseen) this.merge(unseen, values, ranks)
    this.last = records
    this.lastValues = values
    this.lastRanks = ranks
    // Counting sort by rank: stable, so equal values keep the store's order (descending too).
    const d = this.order.length
    const starts = new Int32Array(d + 1)
    const flip = sort.descending ? d - 1 : 0
    const sign = sort.descending ? -1 : 1
    for (let i = 0; i < n; i++) starts[flip + sign * ranks[i] + 1] += 1
    for (let r = 0; r < d; r++) starts[r + 1] += starts[r]
    const out = new Array<InstanceRecord>(n)
    for (let i = 0; i < n; i++) out[starts[flip + sign * ranks[i]]++] = records[i]
    return out
  }

  private forget(): void {
    this.column = undefined
    this.last = []
    this.lastValues = []
    this.lastRanks = new Int32Array(0)
    this.order = []
    this.rank = new Map()
    this.texts = new Map()
  }

  /** Merges the unseen values into the order (dropping those no row has any more) and ranks every row anew. */
  private merge(unseen: Set<SortValue>, values: readonly SortValue[], ranks: Int32Array): void {
    let kept = this.order
    if (kept.length > 0) {
      const inUse = new Uint8Array(kept.length)
      for (let i = 0; i < values.length; i++) if (!unseen.has(values[i])) inUse[ranks[i]] = 1
      kept = kept.filter((_, r) => inUse[r] === 1)
    }
    const added = [...unseen]
    // Sorted natively: strings by code unit (as `<` compares them), numbers as numbers.
    const fresh: SortValue[] = typeof added[0] === 'number' ? Array.from(Float64Array.from(added as number[]).sort()) : (added as string[]).sort()
    const order: SortValue[] = new Array(kept.length + fresh.length)
    for (let o = 0, a = 0, b = 0; o < order.length; o++) order[o] = b >= fresh.length || (a < kept.length && kept[a] < fresh[b]) ? kept[a++] : fresh[b++]
    this.order = order
    this.rank = new Map()
    for (let r = 0; r < order.length; r++) this.rank.set(order[r], r)
    for (let i = 0; i < values.length; i++) ranks[i] = this.rank.get(values[i])!
  }
}

/** Texts whose sort values a sorter remembers at most (check outputs change with every check). */
const TEXT_CACHE_LIMIT = 10_000

/**
 * What a row sorts by, as a value whose plain order (`<`) is the column's: health by severity,
 * age youngest first, texts by compareText (equal keys: the text decides), addresses then their port.
 */
function sortValue(row: InstanceRecord, column: ColumnKey, texts: Map<string, string>): SortValue {
  switch (column) {
    case 'health':
      return SEVERITY[row.health.status]
    case 'age': {
      const at = -Date.parse(row.registeredAt)
      return Number.isNaN(at) ? Number.POSITIVE_INFINITY : at
    }
    case 'address':
      return `${textValue(row.address, texts)}${SEPARATOR}${String(row.port).padStart(5, '0')}`
    case 'instance':
      // All distinct: not worth remembering.
      return textValue(cellText(row, column, 0))
    default:
      return textValue(cellText(row, column, 0), texts)
  }
}

/**
 * A text's key, a separator and the text; a text without digits is its own key, and its value is
 * the text alone (no other text has that key: a key holds a '0' for each run of digits). Plain
 * string order then follows (key, text) as long as neither part can hold the separator: a NUL in
 * either (a check's output may hold one) is written NUL \u0001, which sorts where the NUL did,
 * after the separator (two NULs) and before any other character.
 */
function textValue(text: string, texts?: Map<string, string>): string {
  let value = texts?.get(text)
  if (value === undefined) {
    const key = sortKey(text)
    value = key === text ? escapeNul(text) : [escapeNul(key), escapeNul(text)].join(SEPARATOR)
    texts?.set(text, value)
  }
  return value
}
const SEPARATOR = '\u0000\u0000'
const escapeNul = (text: string): string => (text.includes('\u0000') ? text.replaceAll('\u0000', '\u0000\u0001') : text)

/** Where the instance with this key (`instanceKey`: service/id) is in the list, or -1: no string built per row. */
export function indexOfInstance(records: readonly InstanceRecord[], key: string): number {
  const slash = key.indexOf('/')
  if (slash < 0) return -1
  const service = key.slice(0, slash)
  const id = key.slice(slash + 1)
  for (let i = 0; i < records.length; i++) if (records[i].id === id && records[i].service === service) return i
  return -1
}

// ---- Nodes ------------------------------------------------------------------------------

export interface NodeRow {
  node: string
  self: boolean
  leader: boolean
  version?: string
  startedAt?: string
  /** Lease TTL, seconds. */
  ttl?: number
  counts: HealthCounts
  total: number
}

/**
 * One row per agent: those with node records (when the store has them), every node an instance
 * names, this one and the leader. This agent's start time is known without a record.
 */
export function nodeRows(instances: readonly InstanceRecord[], state: Pick<TuiState, 'node' | 'leader' | 'startedAt' | 'nodes'>): NodeRow[] {
  const rows = new Map<string, NodeRow>()
  const row = (node: string): NodeRow => {
    let r = rows.get(node)
    if (!r) rows.set(node, (r = { node, self: node === state.node, leader: state.leader?.node === node, counts: emptyCounts(), total: 0 }))
    return r
  }
  row(state.node).startedAt = state.startedAt
  if (state.leader) row(state.leader.node)
  for (const record of state.nodes ?? []) Object.assign(row(record.node), { version: record.version, startedAt: record.startedAt, ttl: record.ttl })
  let last: NodeRow | undefined
  for (let i = 0; i < instances.length; i++) {
    const r = instances[i]
    const n = last?.node === r.node ? last : (last = row(r.node))
    n.counts[r.health.status] += 1
    n.total += 1
  }
  return [...rows.values()].sort((a, b) => compareText(a.node, b.node))
}

const count = (status: HealthStatus, color: string): GridColumn<NodeRow> => ({
  key: status,
  title: status === 'passing' ? 'PASS' : status === 'warning' ? 'WARN' : 'CRIT',
  min: 4,
  max: 6,
  drop: status === 'warning' ? 3 : undefined,
  text: (r) => String(r.counts[status]),
  compare: (a, b) => a.counts[status] - b.counts[status],
  style: (r) => (r.counts[status] ? { color } : { dim: true }),
})

export const nodeColumns = (now: number): GridColumn<NodeRow>[] => [
  { key: 'node', title: 'NODE', min: 8, max: 36, text: (r) => r.node, style: (r) => ({ bold: r.self }) },
  { key: 'role', title: 'ROLE', min: 6, max: 12, text: (r) => (r.leader ? 'leader' : 'member') + (r.self ? ' (you)' : ''), style: (r) => (r.leader ? { color: 'cyan' } : {}) },
  { key: 'version', title: 'VERSION', min: 7, max: 12, drop: 2, text: (r) => r.version ?? '?', style: () => ({ dim: true }) },
  { key: 'uptime', title: 'UP', min: 4, max: 5, text: (r) => (r.startedAt ? formatAge(now - Date.parse(r.startedAt)) : '?'), compare: (a, b) => Date.parse(b.startedAt ?? '') - Date.parse(a.startedAt ?? '') },
  { key: 'ttl', title: 'TTL', min: 4, max: 5, drop: 1, text: (r) => (r.ttl !== undefined ? `${r.ttl}s` : '?'), compare: (a, b) => (a.ttl ?? 0) - (b.ttl ?? 0) },
  { key: 'instances', title: 'INST', min: 5, max: 7, text: (r) => String(r.total), compare: (a, b) => a.total - b.total },
  count('passing', 'green'),
  count('warning', 'yellow'),
  count('critical', 'red'),
]

// ---- Events -----------------------------------------------------------------------------

export const EVENT_GROUPS = ['all', 'health', 'registry', 'leader', 'connection', 'problems', 'actions'] as const
export type EventGroup = (typeof EVENT_GROUPS)[number]

export interface EventItem {
  key: string
  at: string
  level: LogEntry['level']
  type: string
  service?: string
  /** The instance id as logged (this node's without the node prefix). */
  id?: string
  text: string
}

const GROUP_OF: Partial<Record<string, EventGroup>> = {
  'health.changed': 'health',
  'instance.registered': 'registry',
  'instance.updated': 'registry',
  'instance.removed': 'registry',
  resync: 'registry',
  'leader.changed': 'leader',
  'leader.acting': 'leader',
  'election.trouble': 'leader',
  'swarm.acting': 'leader',
  'docker.connected': 'connection',
  'docker.disconnected': 'connection',
  'etcd.connected': 'connection',
  'etcd.disconnected': 'connection',
  'lease.lost': 'connection',
  'lease.renewed': 'connection',
  action: 'actions',
}

export function eventInGroup(item: Pick<EventItem, 'type' | 'level'>, group: EventGroup): boolean {
  if (group === 'all') return true
  if (group === 'problems') return item.level !== 'info'
  return GROUP_OF[item.type] === group
}

/** The store's log and the TUI's own notes (action results) as one list, newest first. */
export function eventItems(log: readonly LogEntry[], notes: readonly UiNote[]): EventItem[] {
  const items: EventItem[] = log.map((entry) => {
    const e = entry.event
    const subject =
      e.type === 'instance.registered' || e.type === 'instance.updated'
        ? { service: e.instance.service, id: e.instance.id }
        : e.type === 'instance.removed' || e.type === 'health.changed'
          ? { service: e.service, id: e.id }
          : {}
    return { key: `log-${entry.id}`, at: entry.at, level: entry.level, type: entry.type, ...subject, text: describeAgentEvent(e) }
  })
  for (const note of notes) items.push({ key: `note-${note.id}`, at: note.at, level: note.level, type: 'action', service: note.service, id: note.instance, text: note.text })
  return items.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : b.key.localeCompare(a.key, 'en', { numeric: true })))
}

export interface EventView {
  filter: string
  group: EventGroup
  service?: string
}

/** Events of the group, of the scoped service, and containing the filter text (service, type or words). */
export function visibleEvents(items: readonly EventItem[], view: EventView): EventItem[] {
  const needle = view.filter.trim().toLowerCase()
  return items.filter(
    (item) =>
      eventInGroup(item, view.group) &&
      (view.service === undefined || item.service === view.service) &&
      (!needle || [item.text, item.type, item.service ?? ''].some((field) => field.toLowerCase().includes(needle))),
  )
}

/** The events of one instance (ids as logged: this node's without the node prefix). */
export function eventsOf(items: readonly EventItem[], record: Pick<InstanceRecord, 'service' | 'id' | 'node'>): EventItem[] {
  const ids = new Set([record.id, instanceLabel(record)])
  return items.filter((item) => item.service === record.service && item.id !== undefined && ids.has(item.id))
}

export const eventColumns = (clock: (iso: string) => string): GridColumn<EventItem>[] => [
  { key: 'time', title: 'TIME', min: 8, max: 8, text: (r) => clock(r.at), compare: (a, b) => compareText(a.at, b.at), style: () => ({ dim: true }) },
  { key: 'type', title: 'TYPE', min: 6, max: 19, drop: 2, text: (r) => r.type, style: () => ({ dim: true }) },
  { key: 'service', title: 'SERVICE', min: 7, max: 24, drop: 1, text: (r) => r.service ?? '' },
  {
    key: 'event',
    title: 'EVENT',
    min: 10,
    max: Number.POSITIVE_INFINITY,
    grow: true,
    text: (r) => r.text,
    style: (r) => (r.level === 'error' ? { color: 'red' } : r.level === 'warn' ? { color: 'yellow' } : {}),
  },
]
