import { HEALTH_STATUSES, type InstanceRecord } from '../../core/model.js'
import { HEALTH_COLOR } from '../theme.js'
import { segmentsWidth, type Segment } from './layout.js'
import { Line } from './Line.js'

export interface SummaryProps {
  all: InstanceRecord[]
  shown: number
  offset: number
  rows: number
  node: string
  filter: string
  healthyOnly: boolean
  width: number
}

/**
 * Counts by health (passing always, the others when there are any), then what the view
 * hides and where it is scrolled; parts that do not fit are left out whole, least useful first.
 */
export function summaryLine({ all, shown, offset, rows, node, filter, healthyOnly, width }: SummaryProps): Segment[] {
  const counts = new Map(HEALTH_STATUSES.map((status) => [status, 0]))
  for (const r of all) counts.set(r.health.status, (counts.get(r.health.status) ?? 0) + 1)
  const local = all.filter((r) => r.node === node).length
  const health: Segment[] = HEALTH_STATUSES.filter((status) => status === 'passing' || counts.get(status)! > 0).flatMap((status, i) => [
    ...(i > 0 ? [{ text: ' ' }] : []),
    { text: `${counts.get(status)} ${status}`, color: HEALTH_COLOR[status] },
  ])
  const view = [filter ? `filter "${filter}"` : '', healthyOnly ? 'passing only' : ''].filter(Boolean).join(', ')
  const optional: Segment[][] = [
    view ? [{ text: ` · ${view}: ${shown} shown`, color: 'cyan' }] : [],
    shown > rows ? [{ text: ` · rows ${offset + 1}-${Math.min(shown, offset + rows)} of ${shown}` }] : [],
    [{ text: ` · ${all.length} total, ${local} here`, dim: true }],
  ]
  const line = [...health]
  for (const part of optional) {
    if (part.length > 0 && segmentsWidth(line) + segmentsWidth(part) <= width) line.push(...part)
  }
  return line
}

export const Summary = (props: SummaryProps) => <Line segments={summaryLine(props)} width={props.width} />
