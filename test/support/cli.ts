import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { testEnv } from './env.js'

export const BIN = path.resolve('bin/run.cjs')
const TEST_CODE_CACHE = path.join(os.tmpdir(), `discovery-test-code-cache-${process.getuid?.() ?? 'user'}`)

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Environment for a CLI run: no inherited DISCOVERY_, ETCDCTL_ or DOCKER_ variables and no colour, plus `extra`. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('DISCOVERY_') && !k.startsWith('ETCDCTL_') && !k.startsWith('DOCKER_') && k !== 'FORCE_COLOR') env[k] = v
  }
  env.NO_COLOR = '1'
  // vitest sets NODE_ENV=test, which makes oclif look for a TypeScript loader: the CLI under
  // test must start as a user's would.
  delete env.NODE_ENV
  env.DISCOVERY_TESTENV_JSON = process.env.DISCOVERY_TESTENV_JSON
  // The CLI's code cache (bin/code-cache.cjs) in a folder of the test run's, not the user's ~/.cache.
  env.DISCOVERY_COMPILE_CACHE = TEST_CODE_CACHE
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

/** Runs the built CLI (dist/) once and collects its output and exit code. */
export function runCli(args: string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: cliEnv(options.env), timeout: options.timeoutMs ?? 60_000, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** Starts a long-running CLI (watch, list --watch, register --keepalive); collect output as it comes. */
export function startCli(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): LiveProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(options.env), cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  return new LiveProcess(child)
}

export class LiveProcess {
  stdout = ''
  stderr = ''
  readonly exited: Promise<number | null>

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))))
  }

  get pid(): number {
    return this.child.pid!
  }

  lines(): string[] {
    return this.stdout.split('\n').filter(Boolean)
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    try {
      this.child.kill(signal)
    } catch {
      // already gone
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    this.kill(signal)
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** A fresh registry prefix per test, so tests never see each other's keys. */
export function uniquePrefix(label = 't'): string {
  return `/test-${label}-${randomBytes(4).toString('hex')}`
}

export function etcdFlags(prefix: string): string[] {
  return ['--etcd-endpoints', testEnv().etcdEndpoints.join(','), '--prefix', prefix]
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (generous bounds, no flaky timing). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 15_000, what = 'condition', everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await fn()
      if (value) return value as NonNullable<T>
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** etcdctl against the test cluster; returns stdout. */
export function etcdctl(args: string[], endpoints = testEnv().etcdEndpoints): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', ['--endpoints', endpoints.join(','), ...args], { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`etcdctl ${args.join(' ')} failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
  })
}

/** Every key under a prefix, as etcdctl sees it. */
export async function keysUnder(prefix: string): Promise<string[]> {
  const out = await etcdctl(['get', '--prefix', '--keys-only', prefix])
  return out.split('\n').filter(Boolean)
}

/** NDJSON lines as objects; a line still being written (not yet valid JSON) is skipped. */
export function parseJsonLines<T>(lines: string[]): T[] {
  const out: T[] = []
  for (const line of lines) {
    try {
      out.push(JSON.parse(line) as T)
    } catch {
      // a partial last line
    }
  }
  return out
}
