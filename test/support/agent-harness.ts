import { randomBytes } from 'node:crypto'
import Dockerode from 'dockerode'
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import { createEtcdClient } from '../../src/core/etcd.js'
import type { InstanceRecord, NodeRecord } from '../../src/core/model.js'
import { etcdFlags, parseJsonLines, startCli, waitFor, type LiveProcess } from './cli.js'
import { testEnv } from './env.js'

/**
 * Helpers for the agent's integration tests: real containers on a real dockerd (tracked and
 * removed by label), `watch --json` agents read through their NDJSON events, and etcd read
 * and watched directly.
 */

export function dockerAt(host: string): Dockerode {
  if (!host.startsWith('unix://')) throw new Error(`tests use unix sockets, got ${host}`)
  return new Dockerode({ socketPath: host.slice('unix://'.length) })
}

export function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(3).toString('hex')}`
}

export interface RunOptions {
  labels?: Record<string, string>
  env?: Record<string, string>
  /** Container ports to publish on 127.0.0.1 with a free host port (default [80]). */
  publish?: string[]
  cmd?: string[]
  restartAlways?: boolean
  /** Seconds dockerd waits after SIGTERM before SIGKILL (docker stop, daemon shutdown). */
  stopTimeout?: number
  /** A Docker HEALTHCHECK: a shell command run every `intervalMs`. */
  healthcheck?: { command: string; intervalMs: number }
}

/** Containers created by one test file on one daemon, all labelled and all removed at the end. */
export class Containers {
  readonly label: string

  constructor(
    readonly docker: Dockerode,
    readonly tag: string,
  ) {
    this.label = `discovery-test-agent=${tag}`
  }

  name(short: string): string {
    return `agent-${short}-${this.tag}`
  }

  async create(short: string, options: RunOptions = {}): Promise<Dockerode.Container> {
    const publish = options.publish ?? ['80/tcp']
    const exposed = Object.fromEntries(publish.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}]))
    const bindings = Object.fromEntries(Object.keys(exposed).map((p) => [p, [{ HostIp: '127.0.0.1', HostPort: '' }]]))
    return this.docker.createContainer({
      Image: testEnv().image,
      name: this.name(short),
      Labels: { 'discovery-test-agent': this.tag, ...options.labels },
      Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(options.cmd ? { Cmd: options.cmd } : {}),
      ...(options.stopTimeout !== undefined ? { StopTimeout: options.stopTimeout } : {}),
      ...(options.healthcheck
        ? { Healthcheck: { Test: ['CMD-SHELL', options.healthcheck.command], Interval: options.healthcheck.intervalMs * 1e6, Timeout: 2e9, Retries: 1, StartPeriod: 0 } }
        : {}),
      ExposedPorts: exposed,
      HostConfig: {
        PortBindings: bindings,
        ...(options.restartAlways ? { RestartPolicy: { Name: 'always' } } : {}),
      },
    })
  }

  /** Creates and starts; returns the container's name and its inspect data. */
  async run(short: string, options: RunOptions = {}): Promise<{ name: string; id: string; container: Dockerode.Container }> {
    const container = await this.create(short, options)
    await container.start()
    return { name: this.name(short), id: container.id, container }
  }

  /** The host port a container port is published on, as dockerd reports it now. */
  async hostPort(name: string, port = '80/tcp'): Promise<number> {
    const info = await this.docker.getContainer(name).inspect()
    const binding = info.NetworkSettings.Ports?.[port]?.[0]
    if (!binding) throw new Error(`${name} publishes no ${port}`)
    return Number(binding.HostPort)
  }

  async removeAll(): Promise<void> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [this.label] } }).catch(() => [])
    await Promise.all(list.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)))
  }
}

// ------------------------------------------------------------------ agents

export type AgentEventLine = { type: string; ts: string } & Record<string, unknown>

export class AgentProcess {
  constructor(
    readonly proc: LiveProcess,
    readonly node: string,
    readonly prefix: string,
  ) {}

  get pid(): number {
    return this.proc.pid
  }

  events(): AgentEventLine[] {
    return parseJsonLines<AgentEventLine>(this.proc.lines())
  }

  eventsOf(type: string): AgentEventLine[] {
    return this.events().filter((e) => e.type === type)
  }

  /** Waits for the n-th event (counting from 1) matching the predicate. */
  async waitForEvent(predicate: (event: AgentEventLine) => boolean, what: string, timeoutMs = 30_000, n = 1): Promise<AgentEventLine> {
    return waitFor(() => this.events().filter(predicate)[n - 1], timeoutMs, `${what}; agent stderr: ${this.proc.stderr.slice(-2000)}`)
  }

  /** Waits for `count` resync passes that finish after now (each lists every running container). */
  async waitForResyncs(count = 2, timeoutMs = 30_000): Promise<void> {
    const seen = this.eventsOf('resync').length
    await waitFor(() => this.eventsOf('resync').length >= seen + count, timeoutMs, `${count} resync(s) of ${this.node}`)
  }

  get lease(): string {
    const started = this.eventsOf('agent.started')[0]
    if (!started) throw new Error(`agent ${this.node} has not started`)
    return String(started.lease)
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return this.proc.stop(signal)
  }
}

export interface StartAgentOptions {
  prefix: string
  node: string
  dockerHost?: string
  args?: string[]
  /** Wait for the first resync (default) so containers already running are registered. */
  waitReady?: boolean
}

export async function startAgent(options: StartAgentOptions): Promise<AgentProcess> {
  const args = ['watch', '--json', ...etcdFlags(options.prefix), '--node', options.node, '--docker-host', options.dockerHost ?? testEnv().dockerHost, ...(options.args ?? [])]
  const agent = new AgentProcess(startCli(args), options.node, options.prefix)
  if (options.waitReady !== false) {
    const ready = agent.waitForEvent((e) => e.type === 'resync', `first resync of ${options.node}`, 60_000)
    const exited = agent.proc.exited.then((code) => {
      throw new Error(`agent ${options.node} exited with ${code} before its first resync: ${agent.proc.stderr || agent.proc.stdout}`)
    })
    await Promise.race([ready, exited])
  }
  return agent
}

// ------------------------------------------------------------------ etcd

/** With deadlines and retries on another member: other tests stop and freeze etcd members meanwhile. */
export function etcdClient(): Etcd3 {
  return createEtcdClient({ endpoints: testEnv().etcdEndpoints }, { callTimeoutMs: 3_000, retries: 3 })
}

export interface StoredInstance {
  key: string
  record: InstanceRecord
  lease: string
  modRevision: string
}

/** Every instance record under the prefix (optionally only one node's). */
export async function instancesUnder(etcd: Etcd3, prefix: string, node?: string): Promise<StoredInstance[]> {
  const response = await etcd.getAll().prefix(`${prefix}/services/`).exec()
  const out: StoredInstance[] = []
  for (const kv of response.kvs) {
    const record = JSON.parse(kv.value.toString()) as InstanceRecord
    if (node !== undefined && record.node !== node) continue
    out.push({ key: kv.key.toString(), record, lease: kv.lease, modRevision: kv.mod_revision })
  }
  return out
}

/** The record of one container's port, if registered. */
export async function instanceOf(etcd: Etcd3, prefix: string, containerName: string, port = 80): Promise<StoredInstance | undefined> {
  const all = await instancesUnder(etcd, prefix)
  return all.find((i) => i.record.container?.name === containerName && i.record.container.port === port)
}

export async function nodeRecord(etcd: Etcd3, prefix: string, node: string): Promise<{ record: NodeRecord; lease: string } | undefined> {
  const kv = (await etcd.get(`${prefix}/nodes/${node}`).exec()).kvs[0]
  return kv ? { record: JSON.parse(kv.value.toString()) as NodeRecord, lease: kv.lease } : undefined
}

export interface WatchedChange {
  type: 'put' | 'delete'
  key: string
  modRevision: string
  lease: string
}

/** Records every put and delete under a prefix from the moment `start()` resolves. */
export class PrefixRecorder {
  readonly changes: WatchedChange[] = []
  private watcher?: Watcher

  constructor(
    private readonly etcd: Etcd3,
    private readonly prefix: string,
  ) {}

  async start(): Promise<this> {
    this.watcher = await this.etcd.watch().prefix(this.prefix).create()
    const record = (type: WatchedChange['type']) => (kv: IKeyValue) =>
      this.changes.push({ type, key: kv.key.toString(), modRevision: kv.mod_revision, lease: kv.lease })
    this.watcher.on('put', record('put'))
    this.watcher.on('delete', record('delete'))
    return this
  }

  deletesOf(keys: Iterable<string>): WatchedChange[] {
    const wanted = new Set(keys)
    return this.changes.filter((c) => c.type === 'delete' && wanted.has(c.key))
  }

  async stop(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined)
  }
}
