import { Static } from 'ink'
import { useLayoutEffect, useRef } from 'react'
import type { LogEntry } from '../../core/store.js'
import { describeAgentEvent } from '../event-text.js'
import type { UiNote } from './actions.js'
import { clockTime } from './clock.js'
import { Line } from './Line.js'

export { clockTime }

export interface EventLogProps {
  /** The store's log: a sliding window (the oldest entries are dropped), ids increasing. */
  entries: LogEntry[]
  /** The TUI's own lines (action results), ids increasing; printed among the entries. */
  notes?: UiNote[]
  width: number
  /** Entries to print again when the width changes (what fits above the live view). */
  reprint?: number
}

const COLOR: Record<LogEntry['level'], string | undefined> = { info: undefined, warn: 'yellow', error: 'red' }

type Item = { key: string; at: string; level: LogEntry['level']; text: string } | { key: string; skipped: number }

const NO_NOTES: UiNote[] = []

/**
 * Append-only: each entry is printed once above the live view and scrolls away with the
 * terminal. Ink's <Static> prints the items past the length it saw last, which a sliding
 * window breaks (once full, its length stops growing); so it is given only the entries not
 * printed yet, and remounted (a new key) whenever what was printed moves on. When the width
 * changes (the presenter clears the screen on resize), the last `reprint` entries are printed
 * again at the new width, so the screen is not left empty above the live view.
 */
export const EventLog = ({ entries, notes = NO_NOTES, width, reprint = 0 }: EventLogProps) => {
  const printed = useRef({ entry: 0, note: 0 })
  const printedAt = useRef(width)
  const resized = width !== printedAt.current
  const fromEntry = resized ? Math.min(printed.current.entry, entries.at(-reprint - 1)?.id ?? 0) : printed.current.entry
  const fromNote = resized ? Math.min(printed.current.note, notes.at(-reprint - 1)?.id ?? 0) : printed.current.note
  const fresh = entries.filter((e) => e.id > fromEntry)
  const freshNotes = notes.filter((n) => n.id > fromNote)
  // A burst longer than the store's log: say how many lines were never shown.
  const skipped = fresh.length > 0 && !resized ? fresh[0].id - fromEntry - 1 : 0
  const lines: Item[] = [
    ...fresh.map((e) => ({ key: `e${e.id}`, at: e.at, level: e.level, text: describeAgentEvent(e.event) })),
    ...freshNotes.map((n) => ({ key: `n${n.id}`, at: n.at, level: n.level, text: n.text })),
  ]
  if (freshNotes.length > 0 && fresh.length > 0) lines.sort((a, b) => ('at' in a && 'at' in b && a.at < b.at ? -1 : 'at' in a && 'at' in b && a.at > b.at ? 1 : 0))
  const items: Item[] = skipped > 0 ? [{ key: `s${fresh[0].id}`, skipped }, ...lines] : lines
  const last = { entry: fresh.at(-1)?.id, note: freshNotes.at(-1)?.id }
  useLayoutEffect(() => {
    if (last.entry !== undefined && last.entry > printed.current.entry) printed.current.entry = last.entry
    if (last.note !== undefined && last.note > printed.current.note) printed.current.note = last.note
    printedAt.current = width
  }, [last.entry, last.note, width])
  return (
    <Static key={`${fromEntry}/${fromNote}@${width}`} items={items}>
      {(item) =>
        'skipped' in item ? (
          <Line key={item.key} width={width} segments={[{ text: `… ${item.skipped} more events (a burst larger than the log keeps)`, dim: true }]} />
        ) : (
          <Line key={item.key} width={width} segments={[{ text: `${clockTime(item.at)} ${item.text}`, color: COLOR[item.level] }]} />
        )
      }
    </Static>
  )
}
