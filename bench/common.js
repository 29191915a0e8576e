// Shared helpers for the benchmarks (plain ESM, run against dist/ and the test environment).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export function testEnv() {
  const dir = process.env.DISCOVERY_TESTENV_DIR ?? '/tmp/discovery-testenv'
  return JSON.parse(readFileSync(path.join(dir, 'env.json'), 'utf8'))
}

export function percentile(values, p) {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

export const round = (n, digits = 1) => (n === null || n === undefined ? null : Math.round(n * 10 ** digits) / 10 ** digits)

export function printRows(rows) {
  for (const r of rows) console.log(`${r.ok === undefined ? 'info' : r.ok ? 'pass' : 'FALLS SHORT'}  ${r.metric}: ${r.value} ${r.unit ?? ''} (budget ${r.budget ?? '—'}) ${r.note ?? ''}`)
}

/** True when this module is the script node was started with. */
export function isMain(url) {
  return process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(url)
}

/** Wall-clock milliseconds with sub-millisecond resolution. */
export function makeWallClock() {
  const offset = Date.now() - performance.now()
  return () => offset + performance.now()
}

/** Polls a synchronous predicate every `everyMs` until it returns a truthy value. */
export function waitUntil(predicate, timeoutMs, what, everyMs = 2) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const tick = () => {
      const value = predicate()
      if (value) return resolve(value)
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      setTimeout(tick, everyMs)
    }
    tick()
  })
}

/**
 * How to spawn `args`: the CLI's bin runs as an installed bin does (its shebang carries the
 * agent's Node flags); any other script runs under this Node.
 */
export function commandFor(args) {
  return args[0].endsWith(`${path.sep}bin${path.sep}run.js`) ? [args[0], args.slice(1)] : [process.execPath, args]
}
