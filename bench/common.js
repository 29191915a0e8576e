// Shared helpers for the benchmarks (plain ESM, run against dist/ and the test environment).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
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
  return args[0].endsWith(`${path.sep}bin${path.sep}run.cjs`) ? [args[0], args.slice(1)] : [process.execPath, args]
}

/** A free TCP port on loopback (bound once, then released). */
export async function freePort() {
  const server = net.createServer()
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A long-running child with its output tail kept; stop() is SIGTERM, then SIGKILL after 5 s. */
export function startProcess(command, args, name) {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
  let output = ''
  const keep = (d) => (output = (output + d).slice(-4000))
  child.stdout.setEncoding('utf8').on('data', keep)
  child.stderr.setEncoding('utf8').on('data', keep)
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)))
  return {
    name,
    output: () => output,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A process's resident memory now and at its peak (VmRSS, VmHWM), in MB; zeros once it is gone. */
export function processMemory(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? 0)
    return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 }
  } catch {
    return { rssMb: 0, peakMb: 0 }
  }
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

/** SIGTERM to every child process, resolved once all have exited (one a signal ended already counts). */
export async function stopAll(children) {
  const gone = (child) => child.exitCode !== null || child.signalCode !== null
  for (const child of children) if (!gone(child)) child.kill('SIGTERM')
  await Promise.all(children.map((child) => new Promise((resolve) => (gone(child) ? resolve() : child.once('exit', resolve)))))
}
