import { printable } from '../core/text.js'
import { formatAge } from '../core/duration.js'
import type { InstanceRecord } from '../core/model.js'
import type { Theme } from './theme.js'

export function formatAddress(record: Pick<InstanceRecord, 'address' | 'port'>): string {
  return record.address.includes(':') ? `[${record.address}]:${record.port}` : `${record.address}:${record.port}`
}

/** A plain text table; colour (when on) only adds to the health word. */
export function renderInstanceTable(records: InstanceRecord[], theme: Theme, now = Date.now()): string {
  if (records.length === 0) return theme.muted('no instances')
  const header = ['SERVICE', 'ID', 'ADDRESS', 'HEALTH', 'NODE', 'TAGS', 'AGE']
  const rows = records.map((r) => [
    r.service,
    r.id,
    formatAddress(r),
    r.health.status,
    r.node,
    r.tags.join(','),
    formatAge(now - Date.parse(r.registeredAt)),
  ].map(printable))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (cells: string[], paint?: (cell: string, i: number) => string): string =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i])
        return paint ? paint(padded, i) : padded
      })
      .join('  ')
      .trimEnd()
  return [
    theme.bold(line(header)),
    ...rows.map((row, r) => line(row, (cell, i) => (i === 3 ? cell.replace(row[3], theme.health(records[r].health.status)) : cell))),
  ].join('\n')
}

export function formatInstanceLine(record: InstanceRecord, theme: Theme): string {
  return `${record.service} ${record.id} ${printable(formatAddress(record))} ${theme.health(record.health.status)} node=${printable(record.node)}${record.tags.length ? ` tags=${printable(record.tags.join(','))}` : ''}`
}
