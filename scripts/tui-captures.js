#!/usr/bin/env node
// Real captures of the live view for docs/tui.md: runs the tmux end-to-end tests (80×24 and
// 200×50, against the real agent, dockerd and etcd) with DISCOVERY_TUI_CAPTURES set, then puts
// every view's screen between the capture markers of docs/tui.md.
// Usage: npm run build && node scripts/tui-captures.js
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
// CAPTURES_FROM=<dir>: splice captures an earlier run wrote instead of running the tests.
const dir = process.env.CAPTURES_FROM ?? mkdtempSync(path.join(os.tmpdir(), 'tui-captures-'))
if (!process.env.CAPTURES_FROM) execFileSync('npx', ['vitest', 'run', '--project', 'integration', 'test/integration/tui.test.ts', 'test/integration/tui-wide.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, DISCOVERY_TUI_CAPTURES: dir },
})
const TITLES = { services: 'Services', instances: 'Instances', nodes: 'Nodes', events: 'Events', detail: 'the detail pane of a critical instance', help: 'the key help (`?`)' }
const ORDER = Object.keys(TITLES)
const files = readdirSync(dir).sort((a, b) => {
  const [sa, va] = a.replace('.txt', '').split('-')
  const [sb, vb] = b.replace('.txt', '').split('-')
  return sa === sb ? ORDER.indexOf(va) - ORDER.indexOf(vb) : Number(sa.split('x')[0]) - Number(sb.split('x')[0])
})
let body = ''
for (const file of files) {
  const [size, view] = file.replace('.txt', '').split('-')
  body += `#### ${size.replace('x', '×')}: ${TITLES[view] ?? view}\n\n\`\`\`\n${readFileSync(path.join(dir, file), 'utf8').trimEnd()}\n\`\`\`\n\n`
}
const doc = path.join(root, 'docs/tui.md')
const text = readFileSync(doc, 'utf8')
const start = '<!-- captures:start -->'
const end = '<!-- captures:end -->'
if (!text.includes(start) || !text.includes(end)) throw new Error(`docs/tui.md has no ${start} … ${end} markers`)
writeFileSync(doc, `${text.slice(0, text.indexOf(start) + start.length)}\n\n${body}${text.slice(text.indexOf(end))}`)
console.log(`docs/tui.md: ${files.length} captures from ${dir}`)
