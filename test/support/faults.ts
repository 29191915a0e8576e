import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type Dockerode from 'dockerode'
import { Etcd3 } from 'etcd3'
import { AgentProcess } from './agent-harness.js'
import { startCli, waitFor } from './cli.js'
import { testEnv } from './env.js'

/**
 * Fault-injection kit for test/faults: labelled containers with every option the scenarios
 * need, agents against any etcd, the test environment's fault commands, a private 3-member
 * etcd cluster (for faults that would disturb other tests on the shared one), and a Docker
 * socket proxy that can silently swallow the event stream.
 */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Short, unique per test file: container names and node names stay readable. */
export function faultTag(): string {
  return `${process.pid % 100_000}${randomBytes(2).toString('hex')}`
}

export interface FaultRunOptions {
  labels?: Record<string, string>
  env?: Record<string, string>
  /** Container ports published on 127.0.0.1 with a free host port (default ['80/tcp']; [] for none). */
  publish?: string[]
  /** Container ports exposed but not published. */
  expose?: string[]
  cmd?: string[]
  restart?: 'always' | 'on-failure' | 'no'
  autoRemove?: boolean
  healthcheck?: { test: string[]; intervalMs: number; timeoutMs?: number; retries?: number }
  /** HostConfig.NetworkMode (a network name, bridge, host…). */
  network?: string
  stopTimeout?: number
  /** Leave it created, not started. */
  noStart?: boolean
  /** Leave out discovery.enable=true (the agents here run with --no-exposed-by-default). */
  notEnabled?: boolean
}

/**
 * One test file's containers on one daemon: named `f-<short>-<tag>`, labelled
 * `fault-test=<tag>`, and (unless told otherwise) `discovery.enable=true`, so agents run with
 * --no-exposed-by-default register these and never another test's containers.
 */
export class FaultContainers {
  readonly labels: Record<string, string>

  constructor(
    readonly docker: Dockerode,
    readonly tag: string,
  ) {
    this.labels = { 'fault-test': tag }
  }

  name(short: string): string {
    return `f-${short}-${this.tag}`
  }

  /** The oracle's scope: records of this file's containers (by the name suffix). */
  readonly owns = (record: { value?: { container?: { name?: string } } }): boolean => record.value?.container?.name?.endsWith(`-${this.tag}`) === true

  async create(short: string, options: FaultRunOptions = {}): Promise<Dockerode.Container> {
    const publish = (options.publish ?? ['80/tcp']).map((p) => (p.includes('/') ? p : `${p}/tcp`))
    const expose = (options.expose ?? []).map((p) => (p.includes('/') ? p : `${p}/tcp`))
    const exposed = Object.fromEntries([...publish, ...expose].map((p) => [p, {}]))
    const bindings = Object.fromEntries(publish.map((p) => [p, [{ HostIp: '127.0.0.1', HostPort: '' }]]))
    const hc = options.healthcheck
    return this.docker.createContainer({
      Image: testEnv().image,
      name: this.name(short),
      Labels: { ...this.labels, ...(options.notEnabled ? {} : { 'discovery.enable': 'true' }), ...options.labels },
      Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(options.cmd ? { Cmd: options.cmd } : {}),
      ...(options.stopTimeout !== undefined ? { StopTimeout: options.stopTimeout } : {}),
      ...(hc
        ? { Healthcheck: { Test: hc.test, Interval: hc.intervalMs * 1e6, Timeout: (hc.timeoutMs ?? 2_000) * 1e6, Retries: hc.retries ?? 1, StartPeriod: 0 } }
        : {}),
      ExposedPorts: exposed,
      HostConfig: {
        PortBindings: bindings,
        ...(options.restart ? { RestartPolicy: { Name: options.restart } } : {}),
        ...(options.autoRemove ? { AutoRemove: true } : {}),
        ...(options.network ? { NetworkMode: options.network } : {}),
      },
    })
  }

  async run(short: string, options: FaultRunOptions = {}): Promise<{ name: string; id: string; container: Dockerode.Container }> {
    const container = await this.create(short, options)
    if (!options.noStart) await container.start()
    return { name: this.name(short), id: container.id, container }
  }

  async remove(short: string): Promise<void> {
    await this.docker.getContainer(this.name(short)).remove({ force: true })
  }

  async removeAll(): Promise<void> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`fault-test=${this.tag}`] } }).catch(() => [])
    for (let i = 0; i < list.length; i += 16) {
      await Promise.all(list.slice(i, i + 16).map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)))
    }
  }
}

// ---------------------------------------------------------------------------- agents

export interface FaultAgentOptions {
  prefix: string
  node: string
  dockerHost: string
  /** Default: the shared 3-member cluster. */
  etcdEndpoints?: string[]
  /** Extra flags after the defaults (--json, endpoints, prefix, node, docker host). */
  args?: string[]
  env?: Record<string, string | undefined>
  /** Wait for the first resync (default). */
  waitReady?: boolean
}

/** `watch --json` as a child process, against any etcd (the harness's startAgent is tied to the shared cluster). */
export async function startFaultAgent(options: FaultAgentOptions): Promise<AgentProcess> {
  const endpoints = options.etcdEndpoints ?? testEnv().etcdEndpoints
  const args = ['watch', '--json', '--etcd-endpoints', endpoints.join(','), '--prefix', options.prefix, '--node', options.node, '--docker-host', options.dockerHost, ...(options.args ?? [])]
  // vitest sets NODE_ENV=test, which makes oclif try to load tsx to run src/ (it then falls back
  // to dist/): ~70 MB more resident memory and a slower start. Agents here run as users run them.
  const agent = new AgentProcess(startCli(args, { env: { NODE_ENV: undefined, ...options.env } }), options.node, options.prefix)
  if (options.waitReady !== false) {
    const ready = agent.waitForEvent((e) => e.type === 'resync', `first resync of ${options.node}`, 60_000)
    const exited = agent.proc.exited.then((code) => {
      throw new Error(`agent ${options.node} exited with ${code} before its first resync: ${agent.proc.stderr || agent.proc.stdout}`)
    })
    await Promise.race([ready, exited])
  }
  return agent
}

/** Resident memory of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN)
  return Math.round((kb / 1024) * 10) / 10
}

// ---------------------------------------------------------------------------- environment

/** scripts/testenv.sh with arguments (etcd-kill N, docker2-stop, …). */
export function testenv(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [testEnv().script, ...args], { timeout: 120_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`testenv ${args.join(' ')}: ${stderr || error.message}`)) : resolve(),
    )
  })
}

export function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    )
  })
}

export function ctl(endpoints: string[], args: string[]): Promise<string> {
  return run('etcdctl', ['--endpoints', endpoints.join(','), '--command-timeout=3s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } })
}

/** The client ports (of `ports`) a process holds established TCP connections to. */
export function connectedPorts(pid: number, ports: number[]): Promise<number[]> {
  return run('ss', ['-tnpH', 'state', 'established']).then((stdout) => {
    const found = new Set<number>()
    for (const line of stdout.split('\n')) {
      if (!line.includes(`pid=${pid},`)) continue
      const peer = line.trim().split(/\s+/)[3] ?? ''
      const port = Number(peer.slice(peer.lastIndexOf(':') + 1))
      if (ports.includes(port)) found.add(port)
    }
    return [...found].sort()
  })
}

// ---------------------------------------------------------------------------- private etcd

/**
 * A 3-member etcd cluster of this test file's own, on free loopback ports, for faults that
 * would disturb other tests on the shared cluster (quorum loss, compaction).
 */
export class PrivateEtcd {
  readonly dir: string
  readonly clientPorts: number[]
  readonly peerPorts: number[]
  private readonly members: (ChildProcess | undefined)[] = [undefined, undefined, undefined]
  /** If the test process ends without stop() (a crash, vitest torn down), don't leave members behind. */
  private readonly onExit = (): void => {
    for (const member of this.members) member?.kill('SIGKILL')
  }

  private constructor(base: number) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'fault-etcd-'))
    this.clientPorts = [base, base + 1, base + 2]
    this.peerPorts = [base + 100, base + 101, base + 102]
    process.once('exit', this.onExit)
  }

  /** An etcd3 client on this cluster with a deadline on every call, so a frozen member can't hang a test. */
  client(endpoints = this.endpoints): Etcd3 {
    return new Etcd3({ hosts: endpoints, dialTimeout: 2_000, defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 3_000 }) })
  }

  get endpoints(): string[] {
    return this.clientPorts.map((p) => `http://127.0.0.1:${p}`)
  }

  endpoint(n: number): string {
    return this.endpoints[n - 1]
  }

  /** Starts three members on the first free block of ports and waits until the cluster is healthy. */
  static async start(): Promise<PrivateEtcd> {
    for (const base of [24_701, 24_711, 24_721, 24_731, 24_741, 25_701, 25_711, 25_721]) {
      const ports = [base, base + 1, base + 2, base + 100, base + 101, base + 102]
      if (!(await Promise.all(ports.map(portFree))).every(Boolean)) continue
      const cluster = new PrivateEtcd(base)
      for (const n of [1, 2, 3]) cluster.startMember(n)
      await cluster.waitHealthy()
      return cluster
    }
    throw new Error('no free block of ports for a private etcd cluster')
  }

  startMember(n: number): void {
    if (this.members[n - 1] && this.members[n - 1]!.exitCode === null && this.members[n - 1]!.signalCode === null) return
    const i = n - 1
    const data = path.join(this.dir, `m${n}`)
    const state = existsSync(path.join(data, 'member')) ? 'existing' : 'new'
    mkdirSync(data, { recursive: true })
    const cluster = this.peerPorts.map((p, j) => `p${j + 1}=http://127.0.0.1:${p}`).join(',')
    const log = openSync(path.join(this.dir, `m${n}.log`), 'a')
    const child = spawn(
      'etcd',
      [
        '--name', `p${n}`, '--data-dir', data,
        '--listen-client-urls', this.endpoint(n), '--advertise-client-urls', this.endpoint(n),
        '--listen-peer-urls', `http://127.0.0.1:${this.peerPorts[i]}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${this.peerPorts[i]}`,
        '--initial-cluster', cluster, '--initial-cluster-token', `fault-${path.basename(this.dir)}`, '--initial-cluster-state', state,
        '--heartbeat-interval', '100', '--election-timeout', '1000',
      ],
      { stdio: ['ignore', log, log] },
    )
    closeSync(log)
    this.members[i] = child
  }

  /** SIGKILL one member and wait until it is gone. */
  async kill(n: number): Promise<void> {
    const child = this.members[n - 1]
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await gone
  }

  pause(n: number): void {
    this.members[n - 1]?.kill('SIGSTOP')
  }

  resume(n: number): void {
    this.members[n - 1]?.kill('SIGCONT')
  }

  /** Waits until every member (or the given ones) answers health checks. */
  async waitHealthy(members = [1, 2, 3], timeoutMs = 60_000): Promise<void> {
    await waitFor(
      () => ctl(members.map((n) => this.endpoint(n)), ['endpoint', 'health']).then(() => true),
      timeoutMs,
      `private etcd members ${members.join(',')} healthy (logs in ${this.dir})`,
      250,
    )
  }

  /** 1-based index of the raft leader (asking each member alone, so a dead one doesn't matter). */
  async leader(): Promise<number> {
    for (const n of [1, 2, 3]) {
      // Simple output: endpoint, id (hex), version, db size, is leader, is learner, …
      const out = await ctl([this.endpoint(n)], ['endpoint', 'status']).catch(() => undefined)
      if (out?.split(', ')[4] === 'true') return n
    }
    throw new Error('the private cluster has no raft leader')
  }

  /** Moves raft leadership off member `n` (a no-op when it doesn't lead), so that killing it is a follower's loss. */
  async moveLeaderAwayFrom(n: number): Promise<void> {
    if ((await this.leader()) !== n) return
    const target = n === 1 ? 2 : 1
    const members = await ctl([this.endpoint(n)], ['member', 'list'])
    const id = members.split('\n').find((line) => line.split(', ')[2] === `p${target}`)?.split(', ')[0]
    if (!id) throw new Error(`member p${target} not found in:\n${members}`)
    await ctl([this.endpoint(n)], ['move-leader', id])
    await waitFor(async () => (await this.leader()) === target, 10_000, `raft leadership to move to member ${target}`, 100)
  }

  async revision(): Promise<string> {
    const out = JSON.parse(await ctl(this.endpoints, ['get', '/', '-w', 'json'])) as { header: { revision: number | string } }
    return String(out.header.revision)
  }

  async stop(): Promise<void> {
    process.off('exit', this.onExit)
    for (const n of [1, 2, 3]) await this.kill(n).catch(() => undefined)
    if (!process.env.FAULT_KEEP_ETCD) rmSync(this.dir, { recursive: true, force: true })
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

// ---------------------------------------------------------------------------- docker socket proxy

/**
 * A unix-socket proxy in front of a dockerd. `swallowEvents()` keeps the agent's `/events`
 * connection open but drops everything dockerd sends on it: the agent misses every event
 * without any sign of trouble (a half-open connection, a stalled proxy). Inspections and
 * listings still pass through.
 */
export class DockerSocketProxy {
  readonly path: string
  private readonly server: net.Server
  private readonly sockets = new Set<net.Socket>()
  private swallowing = false
  eventStreams = 0

  constructor(private readonly upstream: string) {
    this.path = path.join(mkdtempSync(path.join(os.tmpdir(), 'fault-docker-')), 'docker.sock')
    this.server = net.createServer((client) => this.accept(client))
  }

  get host(): string {
    return `unix://${this.path}`
  }

  start(): Promise<this> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.path, () => resolve(this))
    })
  }

  swallowEvents(on = true): void {
    this.swallowing = on
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise((resolve) => this.server.close(resolve))
    rmSync(path.dirname(this.path), { recursive: true, force: true })
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.upstream)
    this.sockets.add(client)
    this.sockets.add(upstream)
    let events = false
    client.on('data', (chunk: Buffer) => {
      if (!events && /^GET [^\r\n]*\/events[?\s]/.test(chunk.toString('latin1', 0, 512))) {
        events = true
        this.eventStreams++
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (events && this.swallowing) return
      client.write(chunk)
    })
    const end = (): void => {
      client.destroy()
      upstream.destroy()
      this.sockets.delete(client)
      this.sockets.delete(upstream)
    }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
  }
}
