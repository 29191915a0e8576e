import { Box } from 'ink'
import { useMemo } from 'react'
import { gridLayout, headerText, rowSegments, type GridColumn, type SortState } from './grid.js'
import { Line } from './Line.js'

export interface GridProps<T> {
  columns: GridColumn<T>[]
  /** Every row of the list (columns are sized to all of them); `rows` of them are drawn from `offset`. */
  items: readonly T[]
  rowKey: (row: T) => string
  width: number
  rows: number
  offset: number
  cursor: number
  sort?: SortState
  empty: string
}

/** A table of any rows (Services, Nodes, Events): header, one window of rows, the cursor's row in reverse video. */
export const Grid = <T,>({ columns, items, rowKey, width, rows, offset, cursor, sort, empty }: GridProps<T>) => {
  const placed = useMemo(() => gridLayout(width, columns, items), [width, columns, items])
  const page = items.slice(offset, offset + rows)
  return (
    <Box flexDirection="column" width="100%">
      <Line segments={[{ text: headerText(placed, sort), bold: true }]} width={width} />
      {page.length === 0 ? (
        <Line segments={[{ text: empty, dim: true }]} width={width} />
      ) : (
        page.map((row, i) => <Line key={rowKey(row)} width={width} inverse={offset + i === cursor} segments={rowSegments(placed, row)} />)
      )}
    </Box>
  )
}
