import { formatAge } from '../../core/duration.js'
import { isHealthy, type InstanceRecord } from '../../core/model.js'
import { formatAddress } from '../instance-table.js'
import { walkChanges } from './list-changes.js'

/** Pure view logic for the TUI, unit-testable without a terminal. */
export interface ViewOptions {
  filter: string
  healthyOnly: boolean
}

export function visibleInstances(instances: InstanceRecord[], view: ViewOptions): InstanceRecord[] {
  const needle = view.filter.trim().toLowerCase()
  // Nothing hidden: the same list (the views' memos then see no change).
  if (!needle && !view.healthyOnly) return instances
  return instances.filter((r) => {
    if (view.healthyOnly && !isHealthy(r)) return false
    if (!needle) return true
    return [r.service, r.id, r.node, formatAddress(r), r.tags.join(','), r.health.status, r.container?.name ?? ''].some((field) =>
      field.toLowerCase().includes(needle),
    )
  })
}

export type ColumnKey = 'service' | 'instance' | 'node' | 'address' | 'health' | 'output' | 'age'

export interface Column {
  key: ColumnKey
  title: string
  width: number
}

const TITLE: Record<ColumnKey, string> = {
  service: 'SERVICE',
  instance: 'INSTANCE',
  node: 'NODE',
  address: 'ADDRESS',
  health: 'HEALTH',
  output: 'CHECK',
  age: 'AGE',
}
/** Narrowest a column may get before it is dropped. */
const HARD_MIN: Record<ColumnKey, number> = { service: 7, instance: 10, node: 6, address: 9, health: 8, output: 10, age: 4 }
/** Narrowest a column gets while others can still give way. */
const SOFT_MIN: Record<ColumnKey, number> = { service: 10, instance: 18, node: 10, address: 15, health: 8, output: 14, age: 4 }
/** Widest a column gets from its content; the check output takes whatever room is left. */
const MAX: Record<ColumnKey, number> = { service: 28, instance: 44, node: 20, address: 28, health: 8, output: Number.POSITIVE_INFINITY, age: 4 }
/** Columns that give way when the terminal is narrow (ties: first listed first), and those dropped when even that is not enough. */
const SHRINK_ORDER: ColumnKey[] = ['output', 'instance', 'service', 'node', 'address']
const DROP_ORDER: ColumnKey[] = ['node', 'output', 'age']
/** Check outputs are measured up to this many columns (wider than any terminal the table fits). */
const OUTPUT_MEASURE_CAP = 1_000
/** From this width on the table has a NODE column, when some instance runs on another node. */
export const NODE_COLUMN_WIDTH = 110

/**
 * Column widths that add up to exactly `width` (one space between columns), sized to the
 * content of `records` (all shown records, not one page, so scrolling does not move columns):
 * a narrow terminal squeezes the widest of check output, instance and service names first,
 * the address only when those are at their floor, and drops columns only below ~60 columns.
 */
export function tableColumns(width: number, records: InstanceRecord[] = [], localNode?: string): Column[] {
  // The node column only says something when some row runs elsewhere (the header names this node).
  const nodeColumn = width >= NODE_COLUMN_WIDTH && (localNode === undefined || records.some((r) => r.node !== localNode))
  let keys: ColumnKey[] = ['service', 'instance', ...(nodeColumn ? (['node'] as const) : []), 'address', 'health', 'output', 'age']
  // Measured up to caps that do not depend on the width: the detail pane narrowing the table
  // does not measure again (the output's width is cut to the table's below).
  const measured = contentWidths(records)
  const content = { ...measured, output: Math.min(width, measured.output) }
  const natural = (key: ColumnKey): number => {
    if (key === 'health' || key === 'age') return HARD_MIN[key]
    return Math.min(MAX[key], Math.max(HARD_MIN[key], TITLE[key].length, content[key]))
  }
  const widths = new Map<ColumnKey, number>(keys.map((k) => [k, natural(k)]))
  const total = () => keys.reduce((sum, k) => sum + widths.get(k)!, 0) + keys.length - 1
  // Water-filling: the widest column that may still give way loses a column at a time,
  // so a narrow terminal squeezes long names and outputs evenly, down to a floor.
  const shrink = (floor: Record<ColumnKey, number>, order: ColumnKey[]) => {
    for (let excess = total() - width; excess > 0; excess -= 1) {
      const candidates = order.filter((k) => keys.includes(k) && widths.get(k)! > floor[k])
      if (candidates.length === 0) return
      const widest = candidates.reduce((a, b) => (widths.get(b)! > widths.get(a)! ? b : a))
      widths.set(widest, widths.get(widest)! - 1)
    }
  }
  shrink(SOFT_MIN, SHRINK_ORDER.filter((k) => k !== 'address'))
  shrink(HARD_MIN, SHRINK_ORDER)
  for (const key of DROP_ORDER) {
    if (total() <= width) break
    keys = keys.filter((k) => k !== key)
  }
  // What is left over goes to the check output (or, without it, the instance column).
  const grow = keys.includes('output') ? 'output' : 'instance'
  widths.set(grow, Math.max(1, widths.get(grow)! + width - total()))
  return keys.map((key) => ({ key, title: TITLE[key], width: widths.get(key)! }))
}

type SizedKey = 'service' | 'instance' | 'node' | 'address' | 'output'
const SIZED: SizedKey[] = ['service', 'instance', 'node', 'address', 'output']

/** How wide each sized column is measured (a column is never wider than its cap). */
const CAPS: Record<SizedKey, number> = { service: MAX.service, instance: MAX.instance, node: MAX.node, address: MAX.address, output: OUTPUT_MEASURE_CAP }

/**
 * The widest cell of each sized column over `records`, each counted up to its cap. No cell text
 * is built. The last answer is kept as a histogram of widths per column, and the next list is
 * walked beside the last one (walkChanges): only the records that came, went or were replaced
 * (the store replaces a record whose health changed) are measured, so a health change among
 * 100,000 rows costs that walk, not a measurement. Lists and records are taken as immutable (the
 * store's are): changed in place, they would not be seen as changed.
 */
function contentWidths(records: readonly InstanceRecord[]): Record<SizedKey, number> {
  const last = lastWidths.records
  const histogram = lastWidths.histogram
  walkChanges(last, records, { gone: (j) => count(histogram, widthsOf(last[j], CAPS), -1), added: (i) => count(histogram, widthsOf(records[i], CAPS), 1) })
  lastWidths.records = records
  return widest(histogram)
}

const lastWidths: { records: readonly InstanceRecord[]; histogram: Record<SizedKey, Int32Array> } = {
  records: [],
  histogram: Object.fromEntries(SIZED.map((key) => [key, new Int32Array(CAPS[key] + 1)])) as Record<SizedKey, Int32Array>,
}

function widthsOf(r: InstanceRecord, caps: Record<SizedKey, number>): Record<SizedKey, number> {
  const output = r.health.output
  return {
    service: Math.min(caps.service, displayWidth(r.service)),
    instance: Math.min(caps.instance, labelWidth(r)),
    node: Math.min(caps.node, displayWidth(r.node)),
    address: Math.min(caps.address, addressWidth(r)),
    output: Math.min(caps.output, displayWidth(output.length > caps.output * 2 ? output.slice(0, caps.output * 2) : output)),
  }
}

function count(histogram: Record<SizedKey, Int32Array>, widths: Record<SizedKey, number>, by: 1 | -1): void {
  for (const key of SIZED) histogram[key][widths[key]] += by
}

function widest(histogram: Record<SizedKey, Int32Array>): Record<SizedKey, number> {
  const out = { service: 0, instance: 0, node: 0, address: 0, output: 0 }
  for (const key of SIZED) {
    const counts = histogram[key]
    let w = counts.length - 1
    while (w > 0 && counts[w] === 0) w -= 1
    out[key] = w
  }
  return out
}

function labelWidth(record: InstanceRecord): number {
  const { id, node } = record
  const prefixed = id.length > node.length + 1 && id.charCodeAt(node.length) === 58 && id.startsWith(node)
  return prefixed ? displayWidth(id) - displayWidth(node) - 1 : displayWidth(id)
}

function addressWidth(record: InstanceRecord): number {
  const port = record.port < 10 ? 1 : record.port < 100 ? 2 : record.port < 1000 ? 3 : record.port < 10000 ? 4 : 5
  return displayWidth(record.address) + (record.address.includes(':') ? 2 : 0) + 1 + port
}

/** The instance id without its node prefix (`node:container:port` → `container:port`): the node has its own column, and bold marks this node's rows. */
export function instanceLabel(record: Pick<InstanceRecord, 'id' | 'node'>): string {
  return record.id.startsWith(`${record.node}:`) && record.id.length > record.node.length + 1 ? record.id.slice(record.node.length + 1) : record.id
}

export function cellText(record: InstanceRecord, key: ColumnKey, now: number): string {
  switch (key) {
    case 'service':
      return record.service
    case 'instance':
      return instanceLabel(record)
    case 'node':
      return record.node
    case 'address':
      return formatAddress(record)
    case 'health':
      return record.health.status
    case 'output':
      return record.health.output
    case 'age':
      return formatAge(now - Date.parse(record.registeredAt))
  }
}

const WIDE =
  /[\u1100-\u115F\u2E80-\u303E\u3041-\u33FF\u3400-\u4DBF\u4E00-\u9FFF\uA000-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{1F300}-\u{1F64F}\u{1F900}-\u{1F9FF}\u{20000}-\u{3FFFD}]/u
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/
const ZERO_WIDTH = /^(?:\p{Mn}|\p{Me}|\p{Cf}|\p{Variation_Selector})$/u

/** Terminal columns a string takes: East Asian wide characters and emoji take two, combining marks none. */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length
  let width = 0
  for (const char of text) width += ZERO_WIDTH.test(char) ? 0 : WIDE.test(char) ? 2 : 1
  return width
}

/** Exactly `width` terminal columns: cut with an ellipsis, or padded. Control characters never reach the screen. */
export function fit(text: string, width: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  if (width <= 0) return ''
  const have = displayWidth(clean)
  if (have <= width) return clean + ' '.repeat(width - have)
  let out = ''
  let used = 0
  for (const char of clean) {
    const w = ZERO_WIDTH.test(char) ? 0 : WIDE.test(char) ? 2 : 1
    if (used + w > width - 1) break
    out += char
    used += w
  }
  return `${out}…${' '.repeat(width - 1 - used)}`
}

/** A run of text with one style; lines are built from these so they can be cut to the terminal width as a whole. */
export interface Segment {
  text: string
  color?: string
  bold?: boolean
  dim?: boolean
}

export const segmentsWidth = (segments: Segment[]): number => segments.reduce((sum, s) => sum + displayWidth(s.text), 0)

/** The segments cut to at most `width` columns, the last one that does not fit ending in an ellipsis. */
export function fitSegments(segments: Segment[], width: number): Segment[] {
  const out: Segment[] = []
  let room = width
  for (const segment of segments) {
    const w = displayWidth(segment.text)
    if (w <= room) {
      out.push(segment)
      room -= w
      continue
    }
    if (room > 0) out.push({ ...segment, text: fit(segment.text, room).trimEnd() })
    break
  }
  return out
}
