import { Box } from 'ink'
import { useMemo } from 'react'
import type { InstanceRecord } from '../../core/model.js'
import { HEALTH_COLOR } from '../theme.js'
import type { SortState } from './grid.js'
import { cellText, fit, tableColumns, type Segment } from './layout.js'
import { Line } from './Line.js'

export interface InstanceTableProps {
  /** Every instance that passes the filter; the table shows `rows` of them from `offset`. */
  instances: readonly InstanceRecord[]
  /** The same instances in any order (the columns are sized from it, so a new sort order does not measure again); default: `instances`. */
  sizedBy?: readonly InstanceRecord[]
  width: number
  rows: number
  offset: number
  /** The row under the cursor (an index into `instances`). */
  cursor?: number
  sort?: SortState
  node: string
  now: number
  /** Why the table is empty, when it is. */
  empty: string
}

export const InstanceTable = ({ instances, sizedBy = instances, width, rows, offset, cursor, sort, node, now, empty }: InstanceTableProps) => {
  // Sized to every shown instance, not just this page, so scrolling does not move the columns.
  const columns = useMemo(() => tableColumns(width, sizedBy as InstanceRecord[], node), [width, sizedBy, node])
  // Only the rows on screen are rendered (10,000 instances cost one page).
  const page = instances.slice(offset, offset + rows)
  const title = (key: string, text: string) => (sort && sort.column === key && !(key === 'service' && !sort.descending) ? `${text}${sort.descending ? '▼' : '▲'}` : text)
  return (
    <Box flexDirection="column" width="100%">
      <Line segments={[{ text: columns.map((c) => fit(title(c.key, c.title), c.width)).join(' ').trimEnd(), bold: true }]} width={width} />
      {page.length === 0 ? (
        <Line segments={[{ text: empty, dim: true }]} width={width} />
      ) : (
        page.map((record, i) => (
          <Line
            key={`${record.service}/${record.id}`}
            width={width}
            inverse={offset + i === cursor}
            segments={columns.map((c, i): Segment => {
              const text = fit(cellText(record, c.key, now), c.width) + (i === columns.length - 1 ? '' : ' ')
              if (c.key === 'health') return { text, color: HEALTH_COLOR[record.health.status] }
              if (c.key === 'instance') return { text, bold: record.node === node }
              if (c.key === 'output' || c.key === 'age' || c.key === 'node') return { text, dim: true }
              return { text }
            })}
          />
        ))
      )}
    </Box>
  )
}
