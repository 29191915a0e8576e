#!/usr/bin/env node
// Health-check capacity: 1000 HTTP checks at a 1 s interval through the agent's own
// HealthScheduler + httpCheck (keep-alive agents), from dist/core/health/*.js.
//
// Three processes, so each one's CPU is its own:
//   - the targets: 10 node:http servers on 127.0.0.1 (keep-alive), in a child process;
//   - the floor: a bare keep-alive prober (node:http, one timer per target, spread evenly
//     over the second, response drained), in a child process;
//   - the subject: HealthScheduler + httpCheck, in a child process.
// Each checker warms up, then is measured for BENCH_MEASURE_MS (default 20 s): CPU share of
// one core from process.cpuUsage(), and schedule slip (startedAt − scheduledAt from the
// scheduler's `result` events; for the floor, timer fire time − due time).
//
// Budget: ≤ 15% of one core, p99 slip ≤ 20 ms.
//
// The checkers and the target servers run at nice -10 when permitted (BENCH_PRIORITY=0: off),
// so other work on a shared machine does not decide the slip.
//
// Usage: node bench/probe-capacity.js          (prints the rows; exit 1 if a budget is missed)
//        BENCH_CHECKS=1000 BENCH_MEASURE_MS=20000 BENCH_WARMUP_MS=4000 node bench/probe-capacity.js
// Needs a build: npx tsc -p tsconfig.build.json
import { fork } from 'node:child_process'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const ROOT = path.resolve(path.dirname(SELF), '..')
const DIST_HEALTH = path.join(ROOT, 'dist/core/health')

const BUDGET = { cpuPct: 15, p99SlipMs: 20 }
const SERVERS = 10
const INTERVAL_MS = 1_000
const TIMEOUT_MS = 1_000

// ------------------------------------------------------------------ helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function percentile(values, p) {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

const round = (n, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n)

/** Forks this file in a role; resolves with the child and its first message. */
function forkRole(role, payload, env = {}) {
  const child = fork(SELF, ['--role', role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } })
  const first = new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`bench role ${role} exited (${code}) before reporting`)))
    child.once('error', reject)
  })
  if (payload !== undefined) child.send(payload)
  return { child, first }
}

/**
 * The measurement window [from, to) on the performance.now() clock (the scheduler's own).
 * Runs are attributed to it by their due time, so a stall around an edge neither adds nor
 * loses checks; results of runs due inside it are awaited for one timeout after its end.
 */
function createWindow() {
  const window = { from: Infinity, to: Infinity }
  window.contains = (dueAt) => dueAt >= window.from && dueAt < window.to
  return window
}

/** Warms up, then measures the process's CPU share over the window. */
async function measureWindow(window, { warmupMs, measureMs }) {
  await sleep(warmupMs)
  const cpu0 = process.cpuUsage()
  window.from = performance.now()
  await sleep(measureMs)
  const cpu = process.cpuUsage(cpu0)
  window.to = performance.now()
  const wallMs = window.to - window.from
  await sleep(TIMEOUT_MS + 200)
  // The 1-minute load average at the end: slip on a machine busy with other work is the machine's, not ours.
  return { cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100, wallMs, load: os.loadavg()[0], priority: os.getPriority() }
}

function urlsFor(ports, checks) {
  return Array.from({ length: checks }, (_, i) => `http://127.0.0.1:${ports[i % ports.length]}/health/${i}`)
}

// ------------------------------------------------------------------ roles (child processes)

/**
 * The checkers and the target servers run at the same raised priority when allowed (root), so
 * other work on a shared machine disturbs neither checker and the targets answer as on a quiet
 * machine (a starved target fills the scheduler's concurrency limit, and queued runs slip).
 * BENCH_PRIORITY=0 turns it off.
 */
function raisePriority(priority) {
  if (!priority) return
  try {
    os.setPriority(priority)
  } catch {
    // Not permitted: measure at normal priority.
  }
}

async function serversRole() {
  const servers = []
  for (let i = 0; i < SERVERS; i++) {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' })
      res.end('ok')
    })
    // Longer than any idle gap in the checkers' pools, so no socket is closed under them.
    server.keepAliveTimeout = 120_000
    server.headersTimeout = 125_000
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
  }
  process.send({ ports: servers.map((s) => s.address().port) })
  process.on('disconnect', () => process.exit(0))
}

/** The floor: one timer per target, due times spread evenly over the second, keep-alive GETs. */
async function floorRole({ ports, checks, warmupMs, measureMs }) {
  const agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' })
  const urls = urlsFor(ports, checks).map((u) => new URL(u))
  const slips = []
  const window = createWindow()
  let stopped = false
  let done = 0
  let failed = 0
  const start = performance.now() + 50
  const fire = (i, dueAt) => {
    if (stopped) return
    const now = performance.now()
    const counted = window.contains(dueAt)
    if (counted) slips.push(now - dueAt)
    let next = dueAt + INTERVAL_MS
    if (next <= now) next += Math.ceil((now - next) / INTERVAL_MS) * INTERVAL_MS
    setTimeout(() => fire(i, next), next - now)
    const req = http.get(urls[i], { agent }, (res) => {
      res.resume()
      res.on('end', () => {
        if (!counted) return
        done++
        if (res.statusCode !== 200) failed++
      })
    })
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timeout')))
    req.on('error', () => {
      if (counted) failed++
    })
  }
  for (let i = 0; i < checks; i++) {
    const dueAt = start + (i * INTERVAL_MS) / checks
    setTimeout(() => fire(i, dueAt), dueAt - performance.now())
  }
  const measured = await measureWindow(window, { warmupMs, measureMs })
  stopped = true
  agent.destroy()
  process.send({ ...measured, p50: percentile(slips, 50), p99: percentile(slips, 99), max: Math.max(...slips), done, failed, skips: 0 })
}

/** The subject: the agent's HealthScheduler running httpCheck with keep-alive agents. */
async function schedulerRole({ ports, checks, warmupMs, measureMs }) {
  const { HealthScheduler } = await import(pathToFileURL(path.join(DIST_HEALTH, 'scheduler.js')).href)
  const { httpCheck, createCheckAgents, destroyCheckAgents } = await import(pathToFileURL(path.join(DIST_HEALTH, 'checks.js')).href)
  const agents = createCheckAgents()
  const scheduler = new HealthScheduler()
  const slips = []
  const window = createWindow()
  let done = 0
  let failed = 0
  let skips = 0
  let lastFailure = ''
  scheduler.on('result', (event) => {
    if (!window.contains(event.scheduledAt)) return
    slips.push(event.startedAt - event.scheduledAt)
    done++
    if (event.result.status !== 'passing') {
      failed++
      lastFailure = event.result.output
    }
  })
  scheduler.on('skip', (event) => {
    if (window.contains(event.scheduledAt)) skips++
  })
  const spec = { kind: 'http', interval: INTERVAL_MS, timeout: TIMEOUT_MS, failuresBeforeCritical: 3, successesBeforePassing: 1, initialDelay: 0 }
  urlsFor(ports, checks).forEach((url, i) => {
    scheduler.upsert(`check-${i}`, { ...spec, target: url }, () => httpCheck({ url, timeoutMs: TIMEOUT_MS, agent: agents }))
  })
  const measured = await measureWindow(window, { warmupMs, measureMs })
  scheduler.stop()
  destroyCheckAgents(agents)
  process.send({ ...measured, p50: percentile(slips, 50), p99: percentile(slips, 99), max: Math.max(...slips), done, failed, skips, lastFailure })
}

// ------------------------------------------------------------------ the run

/** Measures the floor and the scheduler in one run; returns rows `{ metric, value, unit, budget, ok, note }`. */
export async function run(options = {}) {
  const checks = Number(options.checks ?? process.env.BENCH_CHECKS ?? 1000)
  const warmupMs = Number(options.warmupMs ?? process.env.BENCH_WARMUP_MS ?? 4_000)
  const measureMs = Number(options.measureMs ?? process.env.BENCH_MEASURE_MS ?? 20_000)
  const priority = Number(options.priority ?? process.env.BENCH_PRIORITY ?? -10)
  const log = options.log ?? ((line) => process.stderr.write(`bench/probe-capacity: ${line}\n`))

  const servers = forkRole('servers', undefined, { BENCH_PRIORITY: String(priority) })
  try {
    const { ports } = await servers.first
    const measure = async (role) => {
      log(`${role}: ${checks} checks every ${INTERVAL_MS} ms, warm-up ${warmupMs} ms, measuring ${measureMs} ms`)
      const { child, first } = forkRole(role, { ports, checks, warmupMs, measureMs, priority })
      try {
        return await first
      } finally {
        child.kill()
      }
    }
    const floor = await measure('floor')
    const subject = await measure('scheduler')
    if (subject.lastFailure) log(`scheduler: last failed check said: ${subject.lastFailure}`)
    return rowsFor(floor, subject, checks, measureMs)
  } finally {
    servers.child.kill()
  }
}

function rowsFor(floor, subject, checks, measureMs) {
  const expected = Math.round((checks * measureMs) / INTERVAL_MS)
  const checkNote = (r) => `${r.done} checks in ${round(r.wallMs / 1000)} s (expected ~${expected}), ${r.failed} failed, ${r.skips} skipped`
  return [
    { metric: 'floor CPU (bare keep-alive prober)', value: round(floor.cpuPct), unit: '% of one core', budget: '', ok: true, note: checkNote(floor) },
    { metric: 'floor timer slip p99', value: round(floor.p99, 2), unit: 'ms', budget: '', ok: true, note: `p50 ${round(floor.p50, 2)} ms, max ${round(floor.max, 1)} ms; load average ${round(floor.load, 2)} on ${os.availableParallelism()} cores, nice ${floor.priority}` },
    {
      metric: 'scheduler CPU (HealthScheduler + httpCheck)',
      value: round(subject.cpuPct),
      unit: '% of one core',
      budget: `≤ ${BUDGET.cpuPct}`,
      ok: subject.cpuPct <= BUDGET.cpuPct,
      note: `${round(subject.cpuPct / floor.cpuPct, 2)}× floor`,
    },
    {
      metric: 'scheduler schedule slip p99',
      value: round(subject.p99, 2),
      unit: 'ms',
      budget: `≤ ${BUDGET.p99SlipMs}`,
      ok: subject.p99 <= BUDGET.p99SlipMs,
      note: `p50 ${round(subject.p50, 2)} ms, max ${round(subject.max, 1)} ms; load average ${round(subject.load, 2)}, nice ${subject.priority}; floor p99 ${round(floor.p99, 2)} ms`,
    },
    {
      metric: 'scheduler checks completed',
      value: subject.done,
      unit: 'checks',
      budget: 'none failed or skipped',
      ok: subject.failed === 0 && subject.skips === 0 && subject.done >= expected * 0.99,
      note: checkNote(subject),
    },
  ]
}

function printRows(rows) {
  const cols = ['metric', 'value', 'unit', 'budget', 'ok', 'note']
  const cells = rows.map((r) => cols.map((c) => (c === 'ok' ? (r.ok ? 'ok' : 'OVER') : String(r[c] ?? ''))))
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)))
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()
  console.log(line(cols))
  for (const row of cells) console.log(line(row))
}

// ------------------------------------------------------------------ entry point

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  const [flag, role] = process.argv.slice(2)
  if (flag === '--role' && role === 'servers') {
    raisePriority(Number(process.env.BENCH_PRIORITY ?? -10))
    await serversRole()
  } else if (flag === '--role' && (role === 'floor' || role === 'scheduler')) {
    const payload = await new Promise((resolve) => process.once('message', resolve))
    raisePriority(payload.priority)
    await (role === 'floor' ? floorRole(payload) : schedulerRole(payload))
    process.disconnect()
  } else {
    const rows = await run()
    printRows(rows)
    process.exitCode = rows.every((r) => r.ok) ? 0 : 1
  }
}
