import { Box, Text, useInput, useStdout } from 'ink'
import { useEffect, useState } from 'react'
import type { AgentStore } from '../../core/store.js'
import { EventLog } from './EventLog.js'
import { Header } from './Header.js'
import { InstanceTable } from './InstanceTable.js'
import { tableRows, visibleInstances } from './layout.js'
import { Summary } from './Summary.js'
import { useAgentState } from './use-agent-state.js'

export interface AppProps {
  store: AgentStore
  /** The lifecycle owner's graceful stop (q and Ctrl+C). */
  onQuit: () => void
  /** Fixed size for tests; default: the terminal's, following resizes. */
  size?: { columns: number; rows: number }
}

const HELP = 'q quit · / filter · h healthy-only · ↑↓ j/k scroll · ? help'

export const App = ({ store, onQuit, size }: AppProps) => {
  const state = useAgentState(store)
  const terminal = useTerminalSize(size)
  const [filter, setFilter] = useState('')
  const [editing, setEditing] = useState(false)
  const [healthyOnly, setHealthyOnly] = useState(false)
  const [offset, setOffset] = useState(0)
  const [help, setHelp] = useState(false)
  const now = useClock()

  const width = Math.max(40, terminal.columns - 1)
  const rows = tableRows(terminal.rows) - (help ? 4 : 0)
  const shown = visibleInstances(state.instances, { filter, healthyOnly })
  const maxOffset = Math.max(0, shown.length - rows)
  const clamped = Math.min(offset, maxOffset)

  useInput((input, key) => {
    if (key.ctrl && input === 'c') return onQuit()
    if (editing) {
      if (key.return) setEditing(false)
      else if (key.escape) {
        setFilter('')
        setEditing(false)
      } else if (key.backspace || key.delete) setFilter((f) => f.slice(0, -1))
      else if (input && !key.ctrl && !key.meta) setFilter((f) => f + input)
      setOffset(0)
      return
    }
    if (input === 'q') return onQuit()
    if (input === '/') return setEditing(true)
    if (input === 'h') {
      setHealthyOnly((h) => !h)
      return setOffset(0)
    }
    if (input === '?') return setHelp((h) => !h)
    if (key.escape) {
      setHelp(false)
      return setFilter('')
    }
    if (input === 'j' || key.downArrow) setOffset(Math.min(maxOffset, clamped + 1))
    if (input === 'k' || key.upArrow) setOffset(Math.max(0, clamped - 1))
    if (key.pageDown) setOffset(Math.min(maxOffset, clamped + rows))
    if (key.pageUp) setOffset(Math.max(0, clamped - rows))
  })

  return (
    <>
      <EventLog entries={state.log} width={width} />
      <Box flexDirection="column" width={width}>
        <Header state={state} width={width} now={now} />
        <InstanceTable instances={shown} width={width} rows={rows} offset={clamped} node={state.node} now={now} />
        <Summary all={state.instances} shown={shown.length} offset={clamped} rows={rows} node={state.node} filter={filter} healthyOnly={healthyOnly} width={width} />
        {help ? (
          <Box flexDirection="column" width={width}>
            <Text>q / Ctrl+C  quit gracefully (resign, revoke the lease: this node’s instances vanish)</Text>
            <Text>/          filter by text (service, id, node, address, tag, health); Enter keeps, Esc clears</Text>
            <Text>h          show only passing instances · j/k ↑/↓ PgUp/PgDn scroll</Text>
            <Text dimColor>bold ids run on this node · health is always a word, colour only adds to it</Text>
          </Box>
        ) : null}
        <Text dimColor wrap="truncate-end">
          {editing ? <Text color="cyan">filter: {filter}█ (Enter keep · Esc clear)</Text> : HELP}
        </Text>
      </Box>
    </>
  )
}

function useTerminalSize(fixed?: { columns: number; rows: number }): { columns: number; rows: number } {
  const { stdout } = useStdout()
  const read = () => fixed ?? { columns: stdout.columns || 80, rows: stdout.rows || 24 }
  const [size, setSize] = useState(read)
  useEffect(() => {
    if (fixed) return
    const onResize = () => setSize(read())
    stdout.on('resize', onResize)
    return () => {
      stdout.off('resize', onResize)
    }
  }, [stdout, fixed])
  return size
}

/** Ages and "since" tick once a second. */
function useClock(): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(timer)
  }, [])
  return now
}
