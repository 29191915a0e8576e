import { HEALTH_STATUSES, type InstanceRecord } from '../../core/model.js'
import { HEALTH_COLOR } from '../theme.js'
import type { HealthCounts } from './grid.js'
import { segmentsWidth, type Segment } from './layout.js'

/** Instances by health, and how many run on this node: one pass over the list, kept while the list is the same. */
export interface HealthTally {
  counts: HealthCounts
  total: number
  local: number
}

export function healthTally(all: readonly InstanceRecord[], node: string): HealthTally {
  const counts = Object.fromEntries(HEALTH_STATUSES.map((status) => [status, 0])) as HealthCounts
  let local = 0
  for (const r of all) {
    counts[r.health.status] += 1
    if (r.node === node) local += 1
  }
  return { counts, total: all.length, local }
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
