import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants as fsConstants, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { delay } from './async.js'
import { UnavailableError, UsageError } from './errors.js'
import { freePorts } from './net.js'

/**
 * A throwaway single-member etcd for `watch --dev`: loopback only, free ports, a temporary
 * data dir, gone again after `stop()`.
 */
export interface DevEtcd {
  /** Client URL, e.g. `http://127.0.0.1:41234`. */
  endpoint: string
  /** The temporary data dir; removed by `stop()`. */
  dataDir: string
  pid: number
  /** Stops etcd (SIGTERM, then SIGKILL) and removes the data dir. Safe to call twice. */
  stop(): Promise<void>
}

export interface DevEtcdOptions {
  /** Where `etcd` is looked up (its PATH); defaults to `process.env`. */
  env?: NodeJS.ProcessEnv
  /** An explicit etcd binary instead of the one on PATH. */
  etcdBinary?: string
  /** Parent of the temporary data dir; defaults to the OS temp dir. */
  tmpDir?: string
  /** How long to wait for etcd to answer /health. */
  startTimeoutMs?: number
  /** Each line etcd writes to stderr (its log), e.g. to show it with DEBUG. */
  onLog?: (line: string) => void
}

const INSTALL_HINT = 'install etcd (Debian: apt-get install etcd-server) or pass --etcd-endpoints'
const START_HINT = 'pass --etcd-endpoints to use a running etcd instead'
const START_ATTEMPTS = 3
const LOG_TAIL_LINES = 20

export async function startDevEtcd(options: DevEtcdOptions = {}): Promise<DevEtcd> {
  const env = options.env ?? process.env
  const binary = options.etcdBinary ?? findOnPath('etcd', env)
  if (!binary) {
    throw new UsageError('--dev needs the etcd binary, and there is none on PATH', { hint: INSTALL_HINT })
  }
  const dataDir = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'discovery-dev-etcd-'))
  try {
    // Free ports are found by binding port 0 and releasing it, so another process may take one
    // before etcd binds it: then etcd exits at once and a fresh pair is tried.
    for (let attempt = 1; ; attempt += 1) {
      const started = await startOnce(binary, dataDir, env, options)
      if (started.ok) return started.etcd
      await rm(path.join(dataDir, 'member'), { recursive: true, force: true })
      if (!started.portClash || attempt >= START_ATTEMPTS) throw started.error
    }
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true })
    throw error
  }
}

type StartResult = { ok: true; etcd: DevEtcd } | { ok: false; error: Error; portClash: boolean }

async function startOnce(binary: string, dataDir: string, env: NodeJS.ProcessEnv, options: DevEtcdOptions): Promise<StartResult> {
  const [clientPort, peerPort] = await freePorts(2)
  const clientUrl = `http://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${peerPort}`
  const args = [
    '--name', 'dev',
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `dev=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', `discovery-dev-${randomBytes(4).toString('hex')}`,
  ]
  // etcd reads ETCD_* variables as flags; a stray ETCD_NAME or ETCD_DATA_DIR must not steer it.
  // Nor does it inherit our credentials (DISCOVERY_*, ETCDCTL_*: a password passed as a flag
  // lives in DISCOVERY_ETCD_PASSWORD by now) or anything else of ours it has no use for.
  const childEnv = Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('ETCD_') && !name.startsWith('ETCDCTL_') && !name.startsWith('DISCOVERY_')))
  const child = spawn(binary, args, { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] })
  const tail: string[] = []
  let partial = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      options.onLog?.(line)
      tail.push(line)
      if (tail.length > LOG_TAIL_LINES) tail.shift()
    }
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', (error) => resolve({ code: null, signal: null, error }))
  })
  // If this process ends without stop(), etcd must not outlive it.
  const killOnExit = (): void => void child.kill('SIGKILL')
  process.once('exit', killOnExit)

  const startTimeoutMs = options.startTimeoutMs ?? 20_000
  const deadline = Date.now() + startTimeoutMs
  let gone: Awaited<typeof exited> | undefined
  void exited.then((result) => (gone = result))
  while (!gone) {
    if (await answersHealth(clientUrl)) {
      return { ok: true, etcd: devEtcd(child, exited, killOnExit, clientUrl, dataDir) }
    }
    if (Date.now() > deadline) {
      await terminate(child, exited)
      process.off('exit', killOnExit)
      const error = new UnavailableError(`the dev etcd did not answer ${clientUrl}/health within ${Math.round(startTimeoutMs / 1000)}s${lastWords(tail)}`, { hint: START_HINT })
      return { ok: false, portClash: false, error }
    }
    await delay(100)
  }
  process.off('exit', killOnExit)
  if (partial) tail.push(partial)
  const log = tail.join('\n')
  const why = gone.error ? gone.error.message : `exit ${gone.code ?? gone.signal}`
  return {
    ok: false,
    portClash: /address already in use/i.test(log),
    error: new UnavailableError(`the dev etcd (${binary}) stopped at start-up (${why})${lastWords(tail)}`, { hint: START_HINT }),
  }
}

function devEtcd(
  child: ChildProcess,
  exited: Promise<unknown>,
  killOnExit: () => void,
  endpoint: string,
  dataDir: string,
): DevEtcd {
  let stopping: Promise<void> | undefined
  return {
    endpoint,
    dataDir,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        await terminate(child, exited)
        process.off('exit', killOnExit)
        await rm(dataDir, { recursive: true, force: true })
      })()
      return stopping
    },
  }
}

/** SIGTERM (etcd shuts down cleanly), then SIGKILL if it has not gone within 5 s. */
async function terminate(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  try {
    await exited
  } finally {
    clearTimeout(timer)
  }
}

/** etcd's last log line that says something, for the error. */
function lastWords(tail: string[]): string {
  const line = [...tail].reverse().find((l) => /error|fatal|panic|cannot|failed/i.test(l)) ?? tail[tail.length - 1]
  if (!line) return ''
  const message = extractMessage(line)
  return `: ${message.length > 200 ? `${message.slice(0, 200)}…` : message}`
}

/** etcd 3.4 logs `date time I | pkg: message`; 3.5 logs JSON with `msg` and `error`. */
function extractMessage(line: string): string {
  try {
    const json = JSON.parse(line) as { msg?: string; error?: string }
    if (json.msg) return json.error ? `${json.msg}: ${json.error}` : json.msg
  } catch {
    // not JSON
  }
  return line.replace(/^\S+ \S+ [A-Z] \| /, '').trim()
}

function answersHealth(clientUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(`${clientUrl}/health`, { timeout: 1_000 }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      response.on('end', () => {
        try {
          resolve(response.statusCode === 200 && (JSON.parse(body) as { health?: string }).health === 'true')
        } catch {
          resolve(false)
        }
      })
      response.on('error', () => resolve(false))
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve(false))
  })
}


/** The first executable `name` in env.PATH, or undefined. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      if (!statSync(candidate).isFile()) continue
      accessSync(candidate, fsConstants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}
