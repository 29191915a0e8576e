import { Static } from 'ink'
import { useLayoutEffect, useRef } from 'react'
import type { LogEntry } from '../../core/store.js'
import { describeAgentEvent } from '../event-text.js'
import { Line } from './Line.js'

export interface EventLogProps {
  /** The store's log: a sliding window (the oldest entries are dropped), ids increasing. */
  entries: LogEntry[]
  width: number
  /** Entries to print again when the width changes (what fits above the live view). */
  reprint?: number
}

const COLOR: Record<LogEntry['level'], string | undefined> = { info: undefined, warn: 'yellow', error: 'red' }

type Item = LogEntry | { id: number; skipped: number }

/** Local wall-clock time, HH:MM:SS. */
export function clockTime(iso: string): string {
  const at = new Date(iso)
  return [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

/**
 * Append-only: each entry is printed once above the live view and scrolls away with the
 * terminal. Ink's <Static> prints the items past the length it saw last, which a sliding
 * window breaks (once full, its length stops growing); so it is given only the entries not
 * printed yet, and remounted (a new key) whenever what was printed moves on. When the width
 * changes (the presenter clears the screen on resize), the last `reprint` entries are printed
 * again at the new width, so the screen is not left empty above the live view.
 */
export const EventLog = ({ entries, width, reprint = 0 }: EventLogProps) => {
  const printed = useRef(0)
  const printedAt = useRef(width)
  const resized = width !== printedAt.current
  const from = resized ? Math.min(printed.current, entries.at(-reprint - 1)?.id ?? 0) : printed.current
  const fresh = entries.filter((e) => e.id > from)
  // A burst longer than the store's log: say how many lines were never shown.
  const skipped = fresh.length > 0 && !resized ? fresh[0].id - from - 1 : 0
  const items: Item[] = skipped > 0 ? [{ id: -fresh[0].id, skipped }, ...fresh] : fresh
  const last = fresh.at(-1)?.id
  useLayoutEffect(() => {
    if (last !== undefined && last > printed.current) printed.current = last
    printedAt.current = width
  }, [last, width])
  return (
    <Static key={`${from}@${width}`} items={items}>
      {(item) =>
        'skipped' in item ? (
          <Line key={item.id} width={width} segments={[{ text: `… ${item.skipped} more events (a burst larger than the log keeps)`, dim: true }]} />
        ) : (
          <Line key={item.id} width={width} segments={[{ text: `${clockTime(item.at)} ${describeAgentEvent(item.event)}`, color: COLOR[item.level] }]} />
        )
      }
    </Static>
  )
}
