import { Box, Text } from 'ink'
import type { InstanceRecord } from '../../core/model.js'
import { HEALTH_COLOR } from '../theme.js'
import { cellText, fit, tableColumns } from './layout.js'

export interface InstanceTableProps {
  instances: InstanceRecord[]
  width: number
  rows: number
  offset: number
  node: string
  now: number
}

export const InstanceTable = ({ instances, width, rows, offset, node, now }: InstanceTableProps) => {
  const columns = tableColumns(width)
  const page = instances.slice(offset, offset + rows)
  return (
    <Box flexDirection="column" width={width}>
      <Text bold>{columns.map((c) => fit(c.title, c.width)).join(' ')}</Text>
      {page.length === 0 ? (
        <Text dimColor>{fit('no instances (start a container with a published port, or press h / clear the filter)', width)}</Text>
      ) : (
        page.map((record) => (
          <Text key={`${record.service}/${record.id}`}>
            {columns.map((c, i) => {
              const text = fit(cellText(record, c.key, now), c.width)
              const sep = i === columns.length - 1 ? '' : ' '
              if (c.key === 'health') return <Text key={c.key} color={HEALTH_COLOR[record.health.status]}>{text + sep}</Text>
              if (c.key === 'id' && record.node === node) return <Text key={c.key} bold>{text + sep}</Text>
              if (c.key === 'output' || c.key === 'age') return <Text key={c.key} dimColor>{text + sep}</Text>
              return <Text key={c.key}>{text + sep}</Text>
            })}
          </Text>
        ))
      )}
    </Box>
  )
}
