import { execFile, spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import type { InstanceRecord, NodeRecord } from '../../src/core/model.js'
import type { ViewState } from '../../src/core/view/view-state.js'
import { keyOf } from './instance-fixtures.js'

/** What `dig` printed, parsed: header status and flags, and each section's records. */
export interface DigResult {
  status: string
  flags: string[]
  answer: DigRecord[]
  authority: DigRecord[]
  additional: DigRecord[]
  raw: string
}

export interface DigRecord {
  name: string
  ttl: number
  type: string
  data: string
}

/** Runs `dig` with `args` (e.g. `@127.0.0.1 -p 8600 web.service.discovery A`) and parses its output. */
export function dig(args: string[], timeoutMs = 20_000): Promise<DigResult> {
  return new Promise((resolve, reject) => {
    execFile('dig', ['+time=3', '+tries=2', ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error && !stdout) return reject(new Error(`dig ${args.join(' ')} failed: ${stderr || error.message}`))
      resolve(parseDig(stdout))
    })
  })
}

export function parseDig(text: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? 'NONE'
  const flags = (/;; flags: ([a-z ]*);/.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean)
  const sections: Record<string, DigRecord[]> = { ANSWER: [], AUTHORITY: [], ADDITIONAL: [] }
  let current: DigRecord[] | undefined
  for (const line of text.split('\n')) {
    const header = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line)
    if (header) {
      current = sections[header[1]]
      continue
    }
    if (!line.trim() || line.startsWith(';')) {
      if (!line.trim()) current = undefined
      continue
    }
    const parts = line.trim().split(/\s+/)
    if (current && parts.length >= 5) current.push({ name: parts[0], ttl: Number(parts[1]), type: parts[3], data: parts.slice(4).join(' ') })
  }
  return { status, flags, answer: sections.ANSWER, authority: sections.AUTHORITY, additional: sections.ADDITIONAL, raw: text }
}

/** A child process with its output kept, stopped by pid (SIGTERM, then SIGKILL). */
export class Spawned {
  readonly output: string[] = []
  private exited = false
  constructor(readonly child: ChildProcess, readonly name: string) {
    child.stdout?.on('data', (chunk: Buffer) => this.keep(chunk))
    child.stderr?.on('data', (chunk: Buffer) => this.keep(chunk))
    child.on('exit', () => {
      this.exited = true
    })
  }

  get running(): boolean {
    return !this.exited && this.child.exitCode === null
  }

  text(): string {
    return this.output.join('')
  }

  async stop(): Promise<void> {
    if (!this.running) return
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }

  private keep(chunk: Buffer): void {
    // Keep the tail only: a chatty process can't grow the test's memory
    this.output.push(chunk.toString())
    if (this.output.length > 500) this.output.splice(0, this.output.length - 500)
  }
}

export function spawnProcess(command: string, args: string[], name = command): Spawned {
  return new Spawned(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }), name)
}

/** An HTTP server on 127.0.0.1 (port 0) that counts the requests it gets and names itself in the body. */
export interface CountingBackend {
  port: number
  hits: number
  close(): Promise<void>
}

export async function countingBackend(name: string): Promise<CountingBackend> {
  const backend: CountingBackend = { port: 0, hits: 0, close: async () => undefined }
  const server = http.createServer((req, res) => {
    backend.hits += 1
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' })
    res.end(name)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  backend.port = (server.address() as AddressInfo).port
  backend.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return backend
}

/** GET `url`, resolving with the status and body (never rejects: errors are status 0). */
export function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', () => resolve({ status: 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (error) => resolve({ status: 0, body: error.message }))
  })
}

/** Puts instance records (and nodes) into a ViewState as the registry view would, in one batch. */
export function putRecords(state: ViewState, records: InstanceRecord[], nodes: NodeRecord[] = []): void {
  let revision = BigInt(state.currentRevision)
  for (const record of records) {
    revision += 1n
    state.putInstance({ key: keyOf(record), record, modRevision: revision.toString(), createRevision: revision.toString(), lease: '0' })
  }
  for (const node of nodes) {
    revision += 1n
    state.putNode({ key: `/discovery/nodes/${node.node}`, record: node, modRevision: revision.toString(), createRevision: revision.toString(), lease: '0' })
  }
  state.setRevision(revision)
  state.commit()
}

/** Which process holds a port (from `ss`), for a clear failure when a bind is refused. */
export function whoHoldsPort(port: number): Promise<string> {
  return new Promise((resolve) => {
    execFile('ss', ['-Hlnptu', `sport = :${port}`], (error, stdout) => resolve(error ? `ss failed: ${error.message}` : stdout.trim() || 'nothing listed by ss'))
  })
}

/** Sends one command to a unix socket (e.g. HAProxy's stats socket) and resolves with all it writes back before closing. */
export function unixCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let out = ''
    const timer = setTimeout(() => socket.destroy(new Error(`no answer on ${socketPath} within ${timeoutMs} ms`)), timeoutMs)
    socket.on('connect', () => socket.write(command))
    socket.on('data', (chunk: Buffer) => (out += chunk.toString()))
    socket.on('end', () => {
      clearTimeout(timer)
      resolve(out)
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/**
 * The `addr:port` of the backend's servers HAProxy has up (operational state 2, none of the
 * maintenance or drain admin flags 0x3f, 0x20 being maintenance for a failed resolution;
 * 0x40 only records that the name came from an SRV record), from `show servers state` on its
 * stats socket: the stats page leaves the address of resolved servers out.
 */
export async function haproxyUpServers(socketPath: string): Promise<string[]> {
  const text = await unixCommand(socketPath, 'show servers state be\n')
  const lines = text.split('\n')
  const header = lines.find((line) => line.startsWith('# be_id'))
  if (!header) return []
  const columns = header.slice(2).split(' ')
  const col = (name: string): number => columns.indexOf(name)
  return lines
    .filter((line) => line && !line.startsWith('#') && line.includes(' '))
    .map((line) => line.split(' '))
    .filter((f) => f.length === columns.length && f[col('srv_op_state')] === '2' && (Number(f[col('srv_admin_state')]) & 0x3f) === 0)
    .map((f) => `${f[col('srv_addr')]}:${f[col('srv_port')]}`)
    .sort()
}
