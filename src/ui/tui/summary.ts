import { HEALTH_STATUSES, type InstanceRecord } from '../../core/model.js'
import { emptyCounts } from './views.js'
import { HEALTH_COLOR } from '../theme.js'
import { compareRecords } from '../../core/store.js'
import type { HealthCounts } from './grid.js'
import { segmentsWidth, type Segment } from './layout.js'

/** Instances by health, and how many run on this node. */
export interface HealthTally {
  counts: HealthCounts
  total: number
  local: number
}

/**
 * The health tally of a live view's list: it keeps the list it last counted, and counts a new list by
 * walking it beside the last one (both in the store's order) and counting only the records that
 * differ (100,000 instances: one health change costs that walk, not a count of every record).
 */
export class HealthTallies {
  private last: readonly InstanceRecord[] = []
  private node: string | undefined
  private counts: HealthCounts = emptyCounts()
  private local = 0

  of(all: readonly InstanceRecord[], node: string): HealthTally {
    if (node !== this.node) {
      this.node = node
      this.last = []
      this.counts = emptyCounts()
      this.local = 0
    }
    const counts = { ...this.counts }
    let local = this.local
    const count = (record: InstanceRecord, by: number): void => {
      counts[record.health.status] += by
      if (record.node === node) local += by
    }
    forEachChange(this.last, all, (gone) => count(gone, -1), (added) => count(added, 1))
    this.last = all
    this.counts = counts
    this.local = local
    return { counts: { ...counts }, total: all.length, local }
  }
}

export interface SummaryProps {
  tally: HealthTally
  shown: number
  offset: number
  rows: number
  filter: string
  healthyOnly: boolean
  width: number
}

/**
 * Counts by health (passing always, the others when there are any), then what the view
 * hides and where it is scrolled; parts that do not fit are left out whole, least useful first.
 */
export function summaryLine({ tally, shown, offset, rows, filter, healthyOnly, width }: SummaryProps): Segment[] {
  const { counts, total, local } = tally
  const health: Segment[] = HEALTH_STATUSES.filter((status) => status === 'passing' || counts[status] > 0).flatMap((status, i) => [
    ...(i > 0 ? [{ text: ' ' }] : []),
    { text: `${counts[status]} ${status}`, color: HEALTH_COLOR[status] },
  ])
  const view = [filter ? `filter "${filter}"` : '', healthyOnly ? 'passing only' : ''].filter(Boolean).join(', ')
  const optional: Segment[][] = [
    view ? [{ text: ` · ${view}: ${shown} shown`, color: 'cyan' }] : [],
    shown > rows ? [{ text: ` · rows ${offset + 1}-${Math.min(shown, offset + rows)} of ${shown}` }] : [],
    [{ text: ` · ${total} total, ${local} here`, dim: true }],
  ]
  const line = [...health]
  for (const part of optional) {
    if (part.length > 0 && segmentsWidth(line) + segmentsWidth(part) <= width) line.push(...part)
  }
  return line
}

/**
 * Calls `gone` for each record of `last` not in `next` and `added` for each record of `next` not
 * in `last` (a changed record is a new object: both). Both lists in the store's order (service,
 * then id), walked side by side: the records they share cost an identity check each.
 */
export function forEachChange(last: readonly InstanceRecord[], next: readonly InstanceRecord[], gone: (record: InstanceRecord) => void, added: (record: InstanceRecord) => void): void {
  let i = 0
  let j = 0
  while (i < next.length || j < last.length) {
    if (i < next.length && j < last.length && next[i] === last[j]) {
      i += 1
      j += 1
      continue
    }
    const order = i >= next.length ? -1 : j >= last.length ? 1 : compareRecords(last[j], next[i])
    if (order <= 0) gone(last[j++])
    if (order >= 0) added(next[i++])
  }
}
