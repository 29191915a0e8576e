import { Box, useInput, useStdout } from 'ink'
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react'
import type { AgentStore } from '../../core/store.js'
import { availability, notesAfter, prompt, runAction, type ActionRequest, type TuiActions, type UiNote } from './actions.js'
import { bodyLines, eventsStatus, HELP_LINES, keysLine, nodesStatus, servicesStatus, tabsLine } from './chrome.js'
import { CheckHistory } from './check-history.js'
import { clockTime } from './clock.js'
import { detailLines, SPLIT_WIDTH, splitListWidth } from './detail.js'
import { EventLog } from './EventLog.js'
import { Grid } from './Grid.js'
import { sortRows, windowStart } from './grid.js'
import { Header } from './Header.js'
import { InstanceTable } from './InstanceTable.js'
import { visibleInstances, type Segment } from './layout.js'
import { ColorContext, Line } from './Line.js'
import { HealthTallies, summaryLine } from './summary.js'
import { useAgentState } from './use-agent-state.js'
import { INITIAL_VIEW, resolveCursor, viewAfterKey, type KeyContext, type ListContext } from './view-state.js'
import {
  eventColumns,
  eventItems,
  eventsOf,
  indexOfInstance,
  instanceKey,
  InstanceSorter,
  nodeColumns,
  nodeRows,
  SERVICE_COLUMNS,
  serviceRows,
  visibleEvents,
  type TuiState,
  type ViewName,
} from './views.js'

export interface AppProps {
  store: AgentStore
  /** The lifecycle owner's graceful stop (q and Ctrl+C). */
  onQuit: () => void
  /** Fixed size for tests; default: the terminal's, following resizes. */
  size?: { columns: number; rows: number }
  /** False with NO_COLOR / --no-color (the theme's decision): no colours, only words and bold. */
  color?: boolean
  /** What the agent lets the TUI do; an action not given says "not available" when asked for. */
  actions?: TuiActions
  /** Check results for the detail pane, already attached to the store; default: the App keeps its own from mount. */
  history?: CheckHistory
}

const NO_ACTIONS: TuiActions = {}
const EVENT_COLUMNS = eventColumns(clockTime)
const NODE_SORT_COLUMNS = nodeColumns(0)

export const App = ({ store, onQuit, size, color = true, actions = NO_ACTIONS, history: given }: AppProps) => {
  const state: TuiState = useAgentState(store)
  const history = useCheckHistory(store, given)
  const terminal = useTerminalSize(size)
  const [view, setView] = useState(INITIAL_VIEW)
  const [notes, setNotes] = useState<UiNote[]>([])
  const [busy, setBusy] = useState<string>()
  const now = useClock()

  // One column spare: a line that fills the last column makes some terminals wrap early.
  const width = Math.max(40, terminal.columns - 1)
  const body = bodyLines(terminal.rows)
  const listRows = Math.max(1, body - 1)
  const { filter, healthyOnly, editing } = view

  // Each list is memoised: the clock re-renders every second, and tables size their columns from every row.
  const filtered = useMemo(() => visibleInstances(state.instances, { filter, healthyOnly }), [state.instances, filter, healthyOnly])
  const scoped = useMemo(() => (view.service === undefined ? filtered : filtered.filter((r) => r.service === view.service)), [filtered, view.service])
  const scopedAll = useMemo(() => (view.service === undefined ? state.instances : state.instances.filter((r) => r.service === view.service)), [state.instances, view.service])
  const [tallies] = useState(() => new HealthTallies())
  const tally = useMemo(() => tallies.of(scopedAll, state.node), [tallies, scopedAll, state.node])
  const [sorter] = useState(() => new InstanceSorter())
  const instances = useMemo(() => (view.view === 'instances' ? sorter.sort(scoped, view.sort.instances) : scoped), [sorter, scoped, view.sort.instances, view.view])
  // The other views' lists only while they are shown (100,000 instances: each costs a pass), and
  // kept while hidden: switching back without a change in between costs nothing.
  const shows = (name: ViewName) => view.view === name
  const services = useWhileShown(shows('services'), () => sortRows(serviceRows(filtered), SERVICE_COLUMNS, view.sort.services), [filtered, view.sort.services])
  const { node, leader, startedAt, nodes: nodeRecords } = state
  const nodes = useWhileShown(
    shows('nodes'),
    () => sortRows(nodeRows(filtered, { node, leader, startedAt, nodes: nodeRecords }), NODE_SORT_COLUMNS, view.sort.nodes),
    [filtered, node, leader, startedAt, nodeRecords, view.sort.nodes],
  )
  const allEvents = useMemo(() => eventItems(state.log, notes), [state.log, notes])
  const events = useMemo(() => visibleEvents(allEvents, { filter, group: view.group, service: view.service }), [allEvents, filter, view.group, view.service])

  const lists: Record<ViewName, ListContext> = {
    services: { count: services.length, keyAt: (i) => services[i]?.service, selectedAt: (i) => services[i] && { kind: 'service', service: services[i].service } },
    instances: {
      count: instances.length,
      keyAt: (i) => (instances[i] ? instanceKey(instances[i]) : undefined),
      selectedAt: (i) => instances[i] && { kind: 'instance', record: instances[i] },
      indexOfKey: (key) => indexOfInstance(instances, key),
    },
    nodes: { count: nodes.length, keyAt: (i) => nodes[i]?.node, selectedAt: (i) => nodes[i] && { kind: 'node', node: nodes[i].node } },
    events: { count: events.length, keyAt: (i) => events[i]?.key, selectedAt: (i) => events[i] && { kind: 'event', service: events[i].service } },
  }
  const list = lists[view.view]
  const position = view.positions[view.view]
  // The cursor stays on its row (by key) when rows come and go above it; a row that is gone leaves it at the same place.
  const { index, found } = useMemo(() => resolveCursor(position, list), [view.view, position, services, instances, nodes, events])
  const offset = windowStart(index, position.offset, listRows, list.count)

  const detailOpen = view.detail && view.view === 'instances'
  const gone = detailOpen && !found
  const split = detailOpen && width >= SPLIT_WIDTH
  const listWidth = split ? splitListWidth(width) : width
  const detailRecord = detailOpen && !gone ? instances[index] : undefined

  const addNote = useCallback((note: Omit<UiNote, 'id'>) => setNotes((list) => notesAfter(list, note)), [])
  const run = (request: ActionRequest): void => {
    const record = store.getSnapshot().instances.find((r) => r.service === request.service && r.id === request.id)
    if (request.kind !== 'copy') setBusy(`working: ${prompt(request, record).replace(/\?$/, '')}…`)
    void runAction(actions, request, record).then((note) => {
      setBusy(undefined)
      addNote(note)
    })
  }

  // Keys apply to the latest view and list, not those of the last render: keys can arrive
  // faster than frames (typing, pasting), before React re-subscribes a fresh handler.
  const context: KeyContext = { rows: listRows, lists, available: availability(actions) }
  const latest = useRef({ view, context })
  latest.current.context = context
  useInput((input, key) => {
    const current = latest.current.view
    const result = viewAfterKey(current, input, key, latest.current.context)
    if (result.view !== current) {
      latest.current.view = result.view
      setView(result.view)
    }
    if (result.note) addNote({ ...result.note, at: new Date().toISOString() })
    if (result.request) run(result.request)
    if (result.quit) onQuit()
  })

  const shownRows = (count: number) => 1 + Math.max(1, Math.min(listRows, count - offset))
  const emptyInstances =
    state.instances.length === 0
      ? 'no instances yet: start a container that publishes a port (docker run -p …)'
      : `no instance matches (${[filter ? 'Esc clears the filter' : '', healthyOnly ? 'h shows all' : '', view.service !== undefined && !filter ? 'Esc shows every service' : ''].filter(Boolean).join(', ')})`

  let content: ReactNode
  let height: number
  let status: Segment[]
  if (view.help) {
    const lines = HELP_LINES.slice(0, body)
    content = lines.map((line, i) => <Line key={i} segments={line} width={width} />)
    height = lines.length
    status = [{ text: 'every key; ? or Esc closes', dim: true }]
  } else if (view.view === 'services') {
    content = <Grid columns={SERVICE_COLUMNS} items={services} rowKey={(r) => r.service} width={width} rows={listRows} offset={offset} cursor={index} sort={view.sort.services} empty={emptyInstances.replace('no instance matches', 'no service matches')} />
    height = shownRows(services.length)
    status = servicesStatus(services, { filter, healthyOnly, offset, rows: listRows }, width)
  } else if (view.view === 'nodes') {
    content = <Grid columns={nodeColumns(now)} items={nodes} rowKey={(r) => r.node} width={width} rows={listRows} offset={offset} cursor={index} sort={view.sort.nodes} empty="no nodes" />
    height = shownRows(nodes.length)
    status = nodesStatus(nodes.length, leader?.node, { filter, healthyOnly, offset, rows: listRows }, width)
  } else if (view.view === 'events') {
    content = <Grid columns={EVENT_COLUMNS} items={events} rowKey={(r) => r.key} width={width} rows={listRows} offset={offset} cursor={index} empty={allEvents.length === 0 ? 'no events yet' : 'no event matches (t: next type, Esc clears the filter)'} />
    height = shownRows(events.length)
    status = eventsStatus(events.length, allEvents.length, view.group, { filter, service: view.service, offset, rows: listRows }, width)
  } else {
    const key = position.key ?? (instances[index] ? instanceKey(instances[index]) : '')
    const paneWidth = split ? width - listWidth - 1 : width
    const detail = detailOpen
      ? detailLines({ record: detailRecord, key, checks: history.get(key), events: detailRecord ? eventsOf(allEvents, detailRecord) : [], localNode: node, now, width: paneWidth - (split ? 2 : 0), rows: body })
      : []
    const table = <InstanceTable instances={instances} sizedBy={scoped} width={listWidth} rows={listRows} offset={offset} cursor={index} sort={view.sort.instances} node={node} now={now} empty={emptyInstances} />
    const pane = detail.map((line, i) => <Line key={i} segments={split ? [{ text: '│ ', dim: true }, ...line] : line} width={paneWidth} />)
    content = !detailOpen ? (
      table
    ) : split ? (
      <Box flexDirection="row" width="100%">
        <Box flexDirection="column" width={listWidth} marginRight={1}>
          {table}
        </Box>
        <Box flexDirection="column" width={paneWidth}>
          {pane}
        </Box>
      </Box>
    ) : (
      pane
    )
    height = !detailOpen ? shownRows(instances.length) : split ? Math.max(shownRows(instances.length), detail.length) : detail.length
    status = summaryLine({ tally, shown: instances.length, offset, rows: listRows, filter, healthyOnly, width })
  }

  const keys: Segment[] = view.confirm
    ? [{ text: prompt(view.confirm, state.instances.find((r) => instanceKey(r) === view.confirm!.key)), color: 'yellow', bold: true }, { text: ' [y/N]', dim: true }]
    : editing
      ? [{ text: `filter: ${filter}█`, color: 'cyan' }, { text: '  Enter keeps · Esc clears', dim: true }]
      : busy
        ? [{ text: busy, color: 'cyan' }]
        : [{ text: keysLine(view.view, detailOpen), dim: true }]
  const liveHeight = 2 + 1 + height + 1 + 1

  return (
    <ColorContext.Provider value={color}>
      <EventLog entries={state.log} notes={notes} width={width} reprint={Math.max(0, terminal.rows - liveHeight - 1)} />
      {/* 100%, not `width`: right after a resize Ink lays out the previous tree once at the new
          terminal width, and lines must then be cut, not wrapped (wrapped lines are never erased). */}
      <Box flexDirection="column" width="100%">
        <Header state={state} width={width} now={now} />
        <Line segments={tabsLine(view.view, view.service, view.view === 'events' ? undefined : view.sort[view.view], width)} width={width} />
        {content}
        <Line segments={status} width={width} />
        <Line segments={keys} width={width} />
      </Box>
    </ColorContext.Provider>
  )
}

const NONE: never[] = []

/** `compute()`'s rows while shown (memoised on `deps`), none while hidden, with the last ones kept for when it is shown again. */
function useWhileShown<T>(shown: boolean, compute: () => T[], deps: readonly unknown[]): T[] {
  const last = useRef<{ deps: readonly unknown[]; rows: T[] } | undefined>(undefined)
  if (!shown) return NONE
  if (!last.current || last.current.deps.length !== deps.length || last.current.deps.some((d, i) => !Object.is(d, deps[i]))) last.current = { deps, rows: compute() }
  return last.current.rows
}

/** The history given, or one of the App's own following the store while mounted. */
function useCheckHistory(store: AgentStore, given?: CheckHistory): CheckHistory {
  const [own] = useState(() => given ?? new CheckHistory())
  useEffect(() => (given ? undefined : own.attach(store)), [store, own, given])
  return given ?? own
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
