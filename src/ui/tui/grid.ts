import type { HealthStatus } from '../../core/model.js'
import { HEALTH_COLOR } from '../theme.js'
import { displayWidth, fit, fitSegments, segmentsWidth, type Segment } from './layout.js'

/**
 * Width-exact layout for the Services, Nodes and Events tables, the list window and the small
 * pictures (health bar, latency sparkline). Pure: no terminal, table-tested.
 */
export interface GridColumn<T> {
  key: string
  title: string
  /** Narrowest before the column is dropped. */
  min: number
  /** Widest its content may make it (the grow column takes the leftover beyond this). */
  max: number
  /** Takes what is left over (one column per grid; without one, the last column is padded). */
  grow?: boolean
  /** Dropped when even the minimum widths do not fit: higher goes first; absent never. */
  drop?: number
  text: (row: T) => string
  /** Sort order for this column; absent: by `text`. */
  compare?: (a: T, b: T) => number
  style?: (row: T) => Omit<Segment, 'text'>
  /** Draws the cell itself (a health bar): segments at most `width` wide. */
  cells?: (row: T, width: number) => Segment[]
}

export interface PlacedColumn<T> {
  column: GridColumn<T>
  width: number
}

/**
 * Column widths adding up to exactly `width` (one space between columns): each sized to its
 * title and content within min…max; when that is too wide the widest shrink toward their
 * minimum, then columns are dropped by `drop`; the grow column takes the rest.
 */
export function gridLayout<T>(width: number, columns: GridColumn<T>[], rows: readonly T[]): PlacedColumn<T>[] {
  let kept = [...columns]
  const widths = new Map<string, number>()
  for (const c of columns) {
    // One more than the title: room for the sort mark.
    let content = displayWidth(c.title) + 1
    for (const row of rows) content = Math.max(content, displayWidth(c.text(row)))
    widths.set(c.key, Math.max(c.min, Math.min(c.max, content)))
  }
  const total = () => kept.reduce((sum, c) => sum + widths.get(c.key)!, 0) + kept.length - 1
  const shrink = () => {
    for (let excess = total() - width; excess > 0; excess -= 1) {
      const candidates = kept.filter((c) => widths.get(c.key)! > c.min)
      if (candidates.length === 0) return
      const widest = candidates.reduce((a, b) => (widths.get(b.key)! > widths.get(a.key)! ? b : a))
      widths.set(widest.key, widths.get(widest.key)! - 1)
    }
  }
  shrink()
  const droppable = kept.filter((c) => c.drop !== undefined).sort((a, b) => b.drop! - a.drop!)
  for (const c of droppable) {
    if (total() <= width) break
    kept = kept.filter((k) => k !== c)
  }
  const grow = kept.find((c) => c.grow) ?? kept.at(-1)
  if (grow) widths.set(grow.key, Math.max(1, widths.get(grow.key)! + width - total()))
  return kept.map((column) => ({ column, width: widths.get(column.key)! }))
}

export interface SortState {
  column: string
  descending: boolean
}

/** The rows in the order of `sort` (stable: equal rows keep their order); the input is not changed. */
export function sortRows<T>(rows: readonly T[], columns: GridColumn<T>[], sort: SortState | undefined): T[] {
  const column = sort && columns.find((c) => c.key === sort.column)
  if (!column) return [...rows]
  const compare = column.compare ?? ((a: T, b: T) => compareText(column.text(a), column.text(b)))
  const sign = sort!.descending ? -1 : 1
  return rows
    .map((row, i) => ({ row, i }))
    .sort((a, b) => sign * compare(a.row, b.row) || a.i - b.i)
    .map((x) => x.row)
}

/** Byte order with numbers compared as numbers (`web-2` before `web-10`); equal keys (`web-07`, `web-7`) by plain byte order. */
export function compareText(a: string, b: string): number {
  if (a === b) return 0
  const ka = sortKey(a)
  const kb = sortKey(b)
  return ka < kb ? -1 : ka > kb ? 1 : a < b ? -1 : 1
}

/**
 * A string whose plain order is `compareText`'s: each run of digits becomes '0', its length
 * without leading zeros (one character) and those digits. '0' sorts against other characters
 * as any digit does (the digits are contiguous in byte order), and a longer number is a
 * larger one. Sorting many rows: one key per row, then native string compares.
 */
export function sortKey(text: string): string {
  // By hand rather than a replace with a callback, and joined once (a flat string, not a chain
  // of concatenations): a sort of 100,000 rows makes 100,000 keys, then hashes and compares them.
  let at = 0
  while (at < text.length && !isDigit(text.charCodeAt(at))) at += 1
  if (at === text.length) return text
  const parts = [text.slice(0, at)]
  while (at < text.length) {
    let end = at
    if (!isDigit(text.charCodeAt(at))) {
      while (end < text.length && !isDigit(text.charCodeAt(end))) end += 1
      parts.push(text.slice(at, end))
    } else {
      while (end < text.length && isDigit(text.charCodeAt(end))) end += 1
      let first = at
      while (first < end - 1 && text.charCodeAt(first) === 0x30) first += 1
      parts.push(runLength(end - first), text.slice(first, end))
    }
    at = end
  }
  return parts.join('')
}
const isDigit = (code: number): boolean => code >= 0x30 && code <= 0x39
/** '0' and the length as one character (clamped: a run of 65,000 digits is as long as any). */
const runLength = (length: number): string => (length < RUN_LENGTHS.length ? RUN_LENGTHS[length] : `0${String.fromCharCode(0x30 + Math.min(length, 0xffff - 0x30))}`)
const RUN_LENGTHS = Array.from({ length: 64 }, (_, length) => `0${String.fromCharCode(0x30 + length)}`)

/** The header line: titles cut to their columns, the sorted one marked ▲ (ascending) or ▼. */
export function headerText<T>(placed: PlacedColumn<T>[], sort?: SortState): string {
  return placed
    .map(({ column, width }) => fit(sort?.column === column.key ? `${column.title}${sort.descending ? '▼' : '▲'}` : column.title, width))
    .join(' ')
    .trimEnd()
}

/** One table row as segments, exactly the table's width. */
export function rowSegments<T>(placed: PlacedColumn<T>[], row: T): Segment[] {
  return placed.flatMap(({ column, width }, i): Segment[] => {
    const gap = i === placed.length - 1 ? '' : ' '
    if (!column.cells) return [{ ...column.style?.(row), text: fit(column.text(row), width) + gap }]
    const drawn = fitSegments(column.cells(row, width), width)
    return [...drawn, { text: ' '.repeat(width - segmentsWidth(drawn)) + gap }]
  })
}

/** The first row on screen so that `index` is visible, moving the window as little as possible. */
export function windowStart(index: number, offset: number, rows: number, count: number): number {
  const maxOffset = Math.max(0, count - rows)
  let start = Math.min(Math.max(0, offset), maxOffset)
  if (index < start) start = index
  else if (index >= start + rows) start = index - rows + 1
  return Math.min(Math.max(0, start), maxOffset)
}

export type HealthCounts = Record<HealthStatus, number>

/** The bar's glyph per health: readable without colour (full, medium and light shade, dot, quadrants). */
export const BAR_GLYPH: Record<HealthStatus, string> = { passing: '█', warning: '▒', critical: '░', unknown: '·', maintenance: '▞' }
const BAR_ORDER: HealthStatus[] = ['critical', 'warning', 'unknown', 'maintenance', 'passing']

/**
 * A health bar of exactly `width` cells, one glyph per health, proportional to the counts,
 * critical first. Every health with at least one instance gets at least one cell (when the
 * bar has room), so one critical instance among a thousand still shows.
 */
export function healthBar(counts: HealthCounts, width: number): Segment[] {
  const total = BAR_ORDER.reduce((sum, s) => sum + (counts[s] ?? 0), 0)
  if (width <= 0) return []
  if (total === 0) return [{ text: ' '.repeat(width) }]
  const present = BAR_ORDER.filter((s) => (counts[s] ?? 0) > 0)
  const cells = new Map<HealthStatus, number>(present.map((s) => [s, Math.floor((counts[s] / total) * width)]))
  // At least one cell each (taken from the largest), then the rounding remainder to the largest fractions.
  for (const s of present) {
    if (cells.get(s)! > 0 || present.length > width) continue
    const largest = present.reduce((a, b) => (cells.get(b)! > cells.get(a)! ? b : a))
    cells.set(largest, cells.get(largest)! - 1)
    cells.set(s, 1)
  }
  let left = width - [...cells.values()].reduce((a, b) => a + b, 0)
  const byFraction = [...present].sort((a, b) => ((counts[b] / total) * width) % 1 - ((counts[a] / total) * width) % 1)
  for (let i = 0; left > 0; i = (i + 1) % byFraction.length, left -= 1) cells.set(byFraction[i], cells.get(byFraction[i])! + 1)
  return present.filter((s) => cells.get(s)! > 0).map((s) => ({ text: BAR_GLYPH[s].repeat(cells.get(s)!), color: HEALTH_COLOR[s] }))
}

const SPARK = '▁▂▃▄▅▆▇█'

export interface SparkSample {
  latencyMs: number
  /** Not passing: drawn as `×` whatever the latency, so a failure reads without colour. */
  failed: boolean
}

/**
 * The last `width` samples as a sparkline: latency scaled from the lowest to the highest
 * shown, failures as `×` (red with colour). Newest on the right.
 */
export function sparkline(samples: readonly SparkSample[], width: number): Segment[] {
  const shown = samples.slice(Math.max(0, samples.length - width))
  const ok = shown.filter((s) => !s.failed).map((s) => s.latencyMs)
  const low = Math.min(...ok)
  const high = Math.max(...ok)
  const out: Segment[] = []
  for (const s of shown) {
    const glyph = s.failed ? '×' : SPARK[high === low ? 0 : Math.round(((s.latencyMs - low) / (high - low)) * (SPARK.length - 1))]
    const color = s.failed ? 'red' : 'green'
    const last = out.at(-1)
    if (last && last.color === color) last.text += glyph
    else out.push({ text: glyph, color })
  }
  return out
}
