import { Box, useInput, useStdout } from 'ink'
import { useEffect, useMemo, useRef, useState } from 'react'
import type { AgentStore } from '../../core/store.js'
import { EventLog } from './EventLog.js'
import { Header } from './Header.js'
import { InstanceTable } from './InstanceTable.js'
import { CHROME_ROWS, tableRows, visibleInstances, type Segment } from './layout.js'
import { ColorContext, Line } from './Line.js'
import { Summary } from './Summary.js'
import { useAgentState } from './use-agent-state.js'
import { INITIAL_VIEW, viewAfterKey } from './view-state.js'

export interface AppProps {
  store: AgentStore
  /** The lifecycle owner's graceful stop (q and Ctrl+C). */
  onQuit: () => void
  /** Fixed size for tests; default: the terminal's, following resizes. */
  size?: { columns: number; rows: number }
  /** False with NO_COLOR / --no-color (the theme's decision): no colours, only words and bold. */
  color?: boolean
}

const KEYS = 'q quit · / filter · h passing only · j/k ↑↓ scroll · ? help'

/** The help panel: one line each, cut to the width like everything else. */
export const HELP_LINES: Segment[][] = [
  [{ text: 'q Ctrl+C  ', bold: true }, { text: "quit gracefully: resign, revoke the lease (this node's instances vanish)" }],
  [{ text: '/         ', bold: true }, { text: 'filter by text: service, instance, node, address, tag, health; Enter keeps, Esc clears' }],
  [{ text: 'h         ', bold: true }, { text: 'passing only · j/k ↑/↓ a row · PgUp/PgDn a page · Home/End · ? closes help' }],
  [{ text: 'bold instances run on this node · health is always a word; colour only adds to it', dim: true }],
]

export const App = ({ store, onQuit, size, color = true }: AppProps) => {
  const state = useAgentState(store)
  const terminal = useTerminalSize(size)
  const [view, setView] = useState(INITIAL_VIEW)
  const now = useClock()

  // One column spare: a line that fills the last column makes some terminals wrap early.
  const width = Math.max(40, terminal.columns - 1)
  const rows = tableRows(terminal.rows, view.help ? HELP_LINES.length : 0)
  const { filter, healthyOnly, editing } = view
  // Memoised: the clock re-renders every second, and the table sizes its columns from `shown`.
  const shown = useMemo(() => visibleInstances(state.instances, { filter, healthyOnly }), [state.instances, filter, healthyOnly])
  const maxOffset = Math.max(0, shown.length - rows)
  const offset = Math.min(view.offset, maxOffset)

  // Keys apply to the latest view and bounds, not those of the last render: keys can arrive
  // faster than frames (typing, pasting), before React re-subscribes a fresh handler.
  const latest = useRef({ view, bounds: { rows, maxOffset } })
  latest.current.bounds = { rows, maxOffset }
  useInput((input, key) => {
    const result = viewAfterKey(latest.current.view, input, key, latest.current.bounds)
    if (result.view !== latest.current.view) {
      latest.current.view = result.view
      setView(result.view)
    }
    if (result.quit) onQuit()
  })

  const liveHeight = CHROME_ROWS + Math.max(1, Math.min(rows, shown.length - offset)) + (view.help ? HELP_LINES.length : 0)
  const empty =
    state.instances.length === 0
      ? 'no instances yet: start a container that publishes a port (docker run -p …)'
      : `no instance matches (${[filter ? 'Esc clears the filter' : '', healthyOnly ? 'h shows all' : ''].filter(Boolean).join(', ')})`
  const keys: Segment[] = editing ? [{ text: `filter: ${filter}█`, color: 'cyan' }, { text: '  Enter keeps · Esc clears', dim: true }] : [{ text: KEYS, dim: true }]

  return (
    <ColorContext.Provider value={color}>
      <EventLog entries={state.log} width={width} reprint={Math.max(0, terminal.rows - liveHeight - 1)} />
      {/* 100%, not `width`: right after a resize Ink lays out the previous tree once at the new
          terminal width, and lines must then be cut, not wrapped (wrapped lines are never erased). */}
      <Box flexDirection="column" width="100%">
        <Header state={state} width={width} now={now} />
        <InstanceTable instances={shown} width={width} rows={rows} offset={offset} node={state.node} now={now} empty={empty} />
        <Summary all={state.instances} shown={shown.length} offset={offset} rows={rows} node={state.node} filter={filter} healthyOnly={healthyOnly} width={width} />
        {view.help ? HELP_LINES.map((line, i) => <Line key={i} segments={line} width={width} />) : null}
        <Line segments={keys} width={width} />
      </Box>
    </ColorContext.Provider>
  )
}

function useTerminalSize(fixed?: { columns: number; rows: number }): { columns: number; rows: number } {
  const { stdout } = useStdout()
  const [measured, setMeasured] = useState(() => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 }))
  useEffect(() => {
    if (fixed) return
    const onResize = () => setMeasured({ columns: stdout.columns || 80, rows: stdout.rows || 24 })
    stdout.on('resize', onResize)
    return () => {
      stdout.off('resize', onResize)
    }
  }, [stdout, fixed])
  return fixed ?? measured
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
