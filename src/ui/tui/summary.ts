import { HEALTH_STATUSES, type InstanceRecord } from '../../core/model.js'
import { emptyCounts } from './views.js'
import { HEALTH_COLOR } from '../theme.js'
import type { HealthCounts } from './grid.js'
import { segmentsWidth, type Segment } from './layout.js'
import { walkChanges } from './list-changes.js'

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
    const count = (record: InstanceRecord, by: number): void => {
      this.counts[record.health.status] += by
      if (record.node === node) this.local += by
    }
    const last = this.last
    walkChanges(last, all, { gone: (j) => count(last[j], -1), added: (i) => count(all[i], 1) })
    this.last = all
    return { counts: { ...this.counts }, total: all.length, local: this.local }
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
