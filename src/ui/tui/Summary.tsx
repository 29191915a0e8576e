import { Text } from 'ink'
import type { InstanceRecord } from '../../core/model.js'
import { fit } from './layout.js'

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

export const Summary = ({ all, shown, offset, rows, node, filter, healthyOnly, width }: SummaryProps) => {
  const count = (status: string) => all.filter((r) => r.health.status === status).length
  const local = all.filter((r) => r.node === node).length
  const range = shown > rows ? ` · rows ${offset + 1}-${Math.min(shown, offset + rows)} of ${shown}` : ''
  const view = [filter ? `filter "${filter}"` : '', healthyOnly ? 'healthy only' : ''].filter(Boolean).join(', ')
  const counts = `${count('passing')} passing ${count('warning')} warning ${count('critical')} critical ${count('unknown')} unknown `
  const text = `· ${all.length} total, ${local} here${view ? ` · ${view}` : ''}${range}`
  return (
    <Text wrap="truncate-end">
      <Text color="green">{count('passing')} passing</Text> <Text color="yellow">{count('warning')} warning</Text>{' '}
      <Text color="red">{count('critical')} critical</Text> <Text color="gray">{count('unknown')} unknown</Text>{' '}
      <Text>{fit(text, Math.max(0, width - counts.length)).trimEnd()}</Text>
    </Text>
  )
}
