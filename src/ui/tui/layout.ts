import { formatAge } from '../../core/duration.js'
import { isHealthy, type InstanceRecord } from '../../core/model.js'
import { formatAddress } from '../instance-table.js'

/** Pure view logic for the TUI, unit-testable without a terminal. */
export interface ViewOptions {
  filter: string
  healthyOnly: boolean
}

export function visibleInstances(instances: InstanceRecord[], view: ViewOptions): InstanceRecord[] {
  const needle = view.filter.trim().toLowerCase()
  return instances.filter((r) => {
    if (view.healthyOnly && !isHealthy(r)) return false
    if (!needle) return true
    return [r.service, r.id, r.node, formatAddress(r), r.tags.join(','), r.health.status].some((field) => field.toLowerCase().includes(needle))
  })
}

export interface Column {
  key: 'service' | 'id' | 'address' | 'health' | 'output' | 'age'
  title: string
  width: number
}

/** Column widths that add up to exactly `width` (one space between columns). */
export function tableColumns(width: number): Column[] {
  const fixed = { health: 8, age: 4 }
  const gaps = 5
  const flexible = Math.max(20, width - fixed.health - fixed.age - gaps)
  // Shares of the flexible space: service, id, address, output.
  const service = Math.max(7, Math.floor(flexible * 0.18))
  const address = Math.max(9, Math.min(23, Math.floor(flexible * 0.25)))
  const id = Math.max(6, Math.floor(flexible * 0.27))
  const output = Math.max(4, flexible - service - address - id)
  return [
    { key: 'service', title: 'SERVICE', width: service },
    { key: 'id', title: 'ID', width: id },
    { key: 'address', title: 'ADDRESS', width: address },
    { key: 'health', title: 'HEALTH', width: fixed.health },
    { key: 'output', title: 'CHECK', width: output },
    { key: 'age', title: 'AGE', width: fixed.age },
  ]
}

export function cellText(record: InstanceRecord, key: Column['key'], now: number): string {
  switch (key) {
    case 'service':
      return record.service
    case 'id':
      return record.id
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

/** Exactly `width` characters: cut with an ellipsis, or padded. Control characters never reach the screen. */
export function fit(text: string, width: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, ' ')
  if (width <= 0) return ''
  if (clean.length > width) return width === 1 ? '…' : `${clean.slice(0, width - 1)}…`
  return clean.padEnd(width)
}

/** Rows the table may use: the terminal minus header (2), table header (1), summary (1), keys (1), spare (1). */
export function tableRows(terminalRows: number): number {
  return Math.max(1, terminalRows - 6)
}
