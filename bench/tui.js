// The live view's frame times (issue budget: every frame ≤ 50 ms) at 10,000 and 100,000
// instances: runs `npm run bench:tui` (src/ui/tui/frame-times.measure.tsx: Ink in a test
// terminal, 120×40, React's production build) and turns its printed table into rows, each
// frame kind's p95 against the budget. The floor is the budget itself: a frame is a cause (a
// key, a store change) to Ink writing the frame, with nothing else to compare it to.
// Part of `npm run bench`; alone: `node bench/tui.js`.
import { execFileSync } from 'node:child_process'
import { isMain, printRows, root } from './common.js'

const BUDGET_MS = 50
/** The measure's names for each frame kind, and what the table calls them. */
const KINDS = [
  ['store: one instance changes health', 'a health change'],
  ['Instances: j (cursor)', 'cursor'],
  ['Instances: PgDn', 'page'],
  ['Services (1) ⇄ Instances (2), again', 'view switch'],
  ['Instances: Enter (detail)', 'detail pane'],
  ['Instances: s (sort)', 'sort (a new column each press)'],
  ['Instances (2), first visit', 'first Instances frame'],
]

/** `{ count → { name → { median, p95, n } } }` from the measure's printed tables. */
export function parseFrameTimes(text) {
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '')
  const tables = {}
  let current
  for (const line of plain.split('\n')) {
    const head = /^frame times, (\d+) instances/.exec(line)
    if (head) {
      current = tables[Number(head[1])] = {}
      continue
    }
    const row = /^\s{2}(.+?)\s+n=\s*(\d+)\s+cause→frame median\s+([\d.]+) p95\s+([\d.]+) max/.exec(line)
    if (row && current) current[row[1]] = { n: Number(row[2]), median: Number(row[3]), p95: Number(row[4]) }
  }
  return tables
}

export async function run() {
  const output = execFileSync('npx', ['vitest', 'run', '--project', 'measure'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 })
  const tables = parseFrameTimes(output)
  const rows = []
  for (const count of [10_000, 100_000]) {
    const table = tables[count]
    if (!table) throw new Error(`the measure printed no table for ${count} instances`)
    for (const [name, label] of KINDS) {
      const frame = table[name]
      if (!frame) throw new Error(`the measure printed no "${name}" row for ${count} instances`)
      rows.push({
        metric: `TUI at ${count.toLocaleString('en-US')} instances: ${label}, p95`,
        value: frame.p95,
        unit: 'ms',
        budget: `≤ ${BUDGET_MS} ms`,
        ok: frame.p95 <= BUDGET_MS,
        note: `median ${frame.median} ms, ${frame.n} frame${frame.n === 1 ? '' : 's'}`,
      })
    }
  }
  return rows
}

if (isMain(import.meta.url)) printRows(await run())
