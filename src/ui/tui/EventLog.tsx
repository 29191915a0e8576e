import { Static, Text } from 'ink'
import type { LogEntry } from '../../core/store.js'
import { fit } from './layout.js'

export interface EventLogProps {
  entries: LogEntry[]
  width: number
}

const COLOR: Record<LogEntry['level'], string | undefined> = { info: undefined, warn: 'yellow', error: 'red' }

/** Append-only: each entry is printed once above the live view and scrolls away with the terminal. */
export const EventLog = ({ entries, width }: EventLogProps) => (
  <Static items={entries}>
    {(entry) => (
      <Text key={entry.id} color={COLOR[entry.level]}>
        {fit(`${entry.at.slice(11, 19)} ${entry.text}`, width).trimEnd()}
      </Text>
    )}
  </Static>
)
