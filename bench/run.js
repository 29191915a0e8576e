#!/usr/bin/env node
// One command for every benchmark: `npm run bench` (after `npm run env:up` and a build).
// Runs each bench module in turn, prints one table of measured value, budget and
// pass / falls short, writes bench/results/latest.json, and with --update-readme rewrites the
// README's performance section between its markers. `npm run bench -- list failover` runs a subset.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const SUITES = ['registration', 'sigkill-expiry', 'failover', 'probe-capacity', 'memory', 'cold-start', 'list', 'dns', 'http-api', 'resync-reads', 'scaling', 'tui', 'list-100k', 'registry-100k']

const args = process.argv.slice(2)
const updateReadme = args.includes('--update-readme')
const only = args.filter((a) => !a.startsWith('--'))
const suites = only.length > 0 ? SUITES.filter((s) => only.includes(s)) : SUITES

execFileSync('bash', [path.join(root, 'scripts/testenv.sh'), 'up'], { stdio: ['ignore', 'ignore', 'inherit'] })

const started = Date.now()
const rows = []
for (const suite of suites) {
  const t0 = Date.now()
  process.stderr.write(`bench: ${suite}…\n`)
  try {
    const mod = await import(path.join(here, `${suite}.js`))
    const result = await mod.run()
    for (const row of result) rows.push({ suite, ...row })
  } catch (error) {
    rows.push({ suite, metric: `${suite} failed to run`, value: null, unit: '', budget: '', ok: false, note: String(error?.message ?? error).split('\n')[0] })
  }
  process.stderr.write(`bench: ${suite} done in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`)
}

const machine = `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`
const date = new Date().toISOString().slice(0, 10)
const table = renderTable(rows)
process.stdout.write(`${table}\n\n${rows.filter((r) => r.ok === false).length} of ${rows.length} fall short · ${machine} · ${date} · ${((Date.now() - started) / 1000).toFixed(0)} s\n`)

mkdirSync(path.join(here, 'results'), { recursive: true })
const latestPath = path.join(here, 'results', 'latest.json')
// A subset run replaces only its own suites' rows in the saved results (and the README).
let allRows = rows
if (only.length > 0) {
  try {
    const previous = JSON.parse(readFileSync(latestPath, 'utf8')).rows ?? []
    allRows = SUITES.flatMap((suite) => (suites.includes(suite) ? rows : previous).filter((r) => r.suite === suite))
  } catch {
    // no earlier results: keep this run's rows
  }
}
writeFileSync(latestPath, `${JSON.stringify({ date, machine, durationSeconds: Math.round((Date.now() - started) / 1000), rows: allRows }, null, 2)}\n`)

if (updateReadme) {
  const readmePath = path.join(root, 'README.md')
  const readme = readFileSync(readmePath, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const i = readme.indexOf(start)
  const j = readme.indexOf(end)
  if (i < 0 || j < 0) throw new Error('README has no bench markers')
  const body = `${start}\nMeasured by \`npm run bench\` on ${date} (${machine}).\n\n${renderMarkdown(allRows)}\n${end}`
  writeFileSync(readmePath, readme.slice(0, i) + body + readme.slice(j + end.length))
  process.stderr.write('bench: README performance section updated\n')
}

function fmt(value, unit) {
  if (value === null || value === undefined) return '—'
  const n = typeof value === 'number' ? (Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2)) : String(value)
  return unit ? `${n} ${unit}` : n
}

function renderTable(list) {
  const header = ['metric', 'measured', 'budget', 'result', 'note']
  const body = list.map((r) => [r.metric, fmt(r.value, r.unit), r.budget ?? '', r.ok === undefined || r.ok === null ? 'info' : r.ok ? 'pass' : 'FALLS SHORT', r.note ?? ''])
  const widths = header.map((h, c) => Math.min(c === 4 ? 70 : 60, Math.max(h.length, ...body.map((row) => String(row[c]).length))))
  const line = (cells) => cells.map((cell, c) => String(cell).slice(0, widths[c]).padEnd(widths[c])).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')
}

function renderMarkdown(list) {
  const esc = (s) => String(s ?? '').replace(/\|/g, '\\|')
  return [
    '| metric | measured | budget | result | note |',
    '|---|---|---|---|---|',
    ...list.map((r) => `| ${esc(r.metric)} | ${esc(fmt(r.value, r.unit))} | ${esc(r.budget)} | ${r.ok === undefined || r.ok === null ? 'info' : r.ok ? 'pass' : '**falls short**'} | ${esc(r.note)} |`),
  ].join('\n')
}
