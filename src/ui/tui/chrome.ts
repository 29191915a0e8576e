import type { SortState } from './grid.js'
import { segmentsWidth, type Segment } from './layout.js'
import { VIEW_TITLE, VIEWS, type EventGroup, type ServiceRow, type ViewName } from './views.js'

/**
 * The lines around the views: the view tabs, each view's status line, the keys line and the
 * help. Pure and width-exact (Line cuts what is left over), table-tested.
 */

/** Header (2), tabs (1), status (1), keys (1), and one spare line: the live region stays shorter than the terminal. */
export const CHROME_LINES = 6

/** Lines the body (a table with its header, the detail pane, the help) may take. */
export const bodyLines = (terminalRows: number): number => Math.max(2, terminalRows - CHROME_LINES)

/** `[1 Services]  2 Instances › web  3 Nodes  4 Events`, then the sort; the current view in brackets (readable without colour). */
export function tabsLine(current: ViewName, scope: string | undefined, sort: SortState | undefined, width: number): Segment[] {
  const tabs: Segment[] = VIEWS.map((name, i): Segment => {
    const title = `${i + 1} ${VIEW_TITLE[name]}${name === 'instances' && scope !== undefined ? ` › ${scope}` : ''}`
    return name === current ? { text: `[${title}]`, bold: true, color: 'cyan' } : { text: ` ${title} `, dim: true }
  })
  const sorted: Segment[] = sort && !(sort.column === defaultSort(current) && !sort.descending) ? [{ text: ` · sort ${sort.column} ${sort.descending ? '▼' : '▲'}`, dim: true }] : []
  return segmentsWidth(tabs) + segmentsWidth(sorted) <= width ? [...tabs, ...sorted] : tabs
}

const defaultSort = (view: ViewName): string => (view === 'nodes' ? 'node' : 'service')

/** Parts joined by ` · `, those that do not fit left out whole (the first always kept). */
function parts(first: Segment[], optional: Segment[][], width: number): Segment[] {
  const line = [...first]
  for (const part of optional) {
    const joined = [{ text: ' · ', dim: true }, ...part]
    if (part.length > 0 && segmentsWidth(line) + segmentsWidth(joined) <= width) line.push(...joined)
  }
  return line
}

const rowsPart = (shown: number, offset: number, rows: number): Segment[] => (shown > rows ? [{ text: `rows ${offset + 1}-${Math.min(shown, offset + rows)} of ${shown}` }] : [])
const filterPart = (filter: string, healthyOnly: boolean): Segment[] => {
  const view = [filter ? `filter "${filter}"` : '', healthyOnly ? 'passing only' : ''].filter(Boolean).join(', ')
  return view ? [{ text: view, color: 'cyan' }] : []
}

export function servicesStatus(rows: readonly ServiceRow[], view: { filter: string; healthyOnly: boolean; offset: number; rows: number }, width: number): Segment[] {
  const instances = rows.reduce((sum, r) => sum + r.total, 0)
  const failing = rows.filter((r) => r.worst === 'critical').length
  const warning = rows.filter((r) => r.worst === 'warning').length
  return parts(
    [{ text: `${rows.length} services` }, ...(failing ? [{ text: ` ${failing} critical`, color: 'red' }] : []), ...(warning ? [{ text: ` ${warning} warning`, color: 'yellow' }] : [])],
    [filterPart(view.filter, view.healthyOnly), rowsPart(rows.length, view.offset, view.rows), [{ text: `${instances} instances`, dim: true }]],
    width,
  )
}

export function nodesStatus(count: number, leader: string | undefined, view: { filter: string; healthyOnly: boolean; offset: number; rows: number }, width: number): Segment[] {
  return parts(
    [{ text: `${count} nodes` }],
    [leader ? [{ text: 'leader ' }, { text: leader, color: 'cyan' }] : [{ text: 'no leader', color: 'red' }], filterPart(view.filter, view.healthyOnly), rowsPart(count, view.offset, view.rows)],
    width,
  )
}

export function eventsStatus(shown: number, total: number, group: EventGroup, view: { filter: string; service?: string; offset: number; rows: number }, width: number): Segment[] {
  return parts(
    [{ text: `${shown} of ${total} events` }],
    [[{ text: `type ${group}`, color: group === 'all' ? undefined : 'cyan' }], view.service !== undefined ? [{ text: `service ${view.service}`, color: 'cyan' }] : [], filterPart(view.filter, false), rowsPart(shown, view.offset, view.rows), [{ text: 'newest first', dim: true }]],
    width,
  )
}

/** The keys that matter in this view (all of them: `?`). */
export function keysLine(view: ViewName, detail: boolean): string {
  switch (view) {
    case 'services':
      return 'q quit · Tab/1-4 views · Enter instances · / filter · s sort · ? help'
    case 'instances':
      return detail ? 'Esc close · j/k next · c check · m maint · d dereg · a address · ? help' : 'Enter detail · / filter · s/S sort · c check · d dereg · a address · ? help'
    case 'nodes':
      return 'q quit · Tab/1-4 views · Enter its instances · / filter · s sort · ? help'
    case 'events':
      return 'q quit · Tab/1-4 views · t type · / filter · Enter service · ? help'
  }
}

/** Every key, one line each, cut to the width like everything else. */
export const HELP_LINES: Segment[][] = [
  ['1-4 Tab ⇧Tab', 'views: 1 Services, 2 Instances, 3 Nodes, 4 Events'],
  ['j/k ↑/↓', 'move a row · PgUp/PgDn (space) a page · g/G Home/End first/last'],
  ['Enter', 'service → its instances · instance → detail pane · node → its instances · event → its service'],
  ['Esc', 'back one step: help, detail pane, filter, then the service (back to Services)'],
  ['/', 'filter by text: service, instance, node, address, tag, health, event words; Enter keeps, Esc clears'],
  ['h', 'passing instances only'],
  ['s S', 'sort by the next column · reverse the order (Services, Instances, Nodes)'],
  ['t', 'Events: next type (all, health, registry, leader, connection, problems, actions)'],
  ['c', 'run the instance’s check now (asks y/N)'],
  ['m', 'maintenance on, or off for an instance in maintenance (asks y/N)'],
  ['d', 'deregister a manual record (asks y/N)'],
  ['a', 'print the instance’s address to the log (and copy it where the terminal allows)'],
  ['q Ctrl+C', "quit gracefully: resign, revoke the lease (this node's instances vanish)"],
  ['?', 'this help · bold: this node · health is always a word; colour only adds to it'],
].map(([keys, what]) => [{ text: keys.padEnd(13), bold: true }, { text: what }])
