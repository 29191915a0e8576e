import { EventEmitter } from 'node:events'
import type { AgentEvent } from './agent/events.js'
import type { InstanceRecord, NodeRecord } from './model.js'

export interface LogEntry {
  id: number
  at: string
  level: 'info' | 'warn' | 'error'
  type: AgentEvent['type']
  /** The event as logged (this node's instance ids shortened); presenters put it into words. */
  event: AgentEvent
}

export interface ConnectionState {
  connected: boolean
  /** Last error while disconnected, with "retrying in" when known. */
  detail?: string
}

export interface AgentState {
  node: string
  dockerHost: string
  etcdEndpoints: string[]
  docker: ConnectionState
  etcd: ConnectionState
  leader: { node: string; term: string; since: string; self: boolean } | null
  /** This agent may act as leader right now. */
  acting: boolean
  /** Every instance in the registry (the cluster view), sorted by service then id. */
  instances: InstanceRecord[]
  /** Every live agent's node record (version, start, lease TTL), sorted by node. */
  nodes: NodeRecord[]
  /** Where this agent serves DNS and the Consul HTTP API, once it does. */
  serving: { dns?: string; http?: string }
  /** Append-only log; `logBase` ids before the first entry have been dropped. */
  log: LogEntry[]
  startedAt: string
  stopping: boolean
}

export interface AgentStoreOptions {
  node: string
  dockerHost: string
  etcdEndpoints: string[]
  /** Log entries kept in memory. */
  logLimit?: number
  /** Emissions are coalesced: at most one per this many ms (0 = once per tick). */
  coalesceMs?: number
  now?: () => Date
}

/** Event types that change no view (they feed metrics only). */
const SILENT: ReadonlySet<AgentEvent['type']> = new Set(['check.result', 'docker.event', 'leader.write'])

/**
 * The one store every presenter reads: the TUI, the line printers, the metrics. The agent,
 * the election and a registry mirror publish into it; it keeps an immutable snapshot and
 * emits `change` only when something changed, coalescing bursts into one emission, so
 * 1000 events cost a few renders, not a thousand.
 */
export class AgentStore extends EventEmitter<{ change: []; event: [AgentEvent] }> {
  private state: AgentState
  private readonly instances = new Map<string, InstanceRecord>()
  /** This agent's instances as its own events last reported them, by service/id. */
  private readonly reported = new Map<string, InstanceRecord>()
  private instancesDirty = false
  /** Where each key sits in `state.instances`, and what changed since: records replaced in place, or keys added/removed. */
  private sortedIndex = new Map<string, number>()
  private readonly replaced = new Map<string, InstanceRecord>()
  private structural = false
  private dirty = false
  private timer?: NodeJS.Timeout
  private nextLogId = 1
  private readonly logLimit: number
  private readonly coalesceMs: number
  private readonly now: () => Date

  constructor(options: AgentStoreOptions) {
    super()
    this.logLimit = options.logLimit ?? 500
    this.coalesceMs = options.coalesceMs ?? 0
    this.now = options.now ?? (() => new Date())
    this.state = {
      node: options.node,
      dockerHost: options.dockerHost,
      etcdEndpoints: options.etcdEndpoints,
      docker: { connected: false, detail: 'connecting' },
      etcd: { connected: false, detail: 'connecting' },
      leader: null,
      acting: false,
      instances: [],
      nodes: [],
      serving: {},
      log: [],
      startedAt: this.now().toISOString(),
      stopping: false,
    }
  }

  /** The current snapshot; the same object until something changes (for useSyncExternalStore). */
  getSnapshot = (): AgentState => this.state

  subscribe = (listener: () => void): (() => void) => {
    this.on('change', listener)
    return () => this.off('change', listener)
  }

  /** Applies one agent event: connection and leader state, and a log line for notable events. */
  apply(event: AgentEvent): void {
    this.emit('event', event)
    if (SILENT.has(event.type)) return
    if (this.restatesHealthChange(event)) return
    const s = this.state
    const patch: Partial<AgentState> = {}
    switch (event.type) {
      case 'docker.connected':
        patch.docker = { connected: true }
        break
      case 'docker.disconnected':
        patch.docker = { connected: false, detail: `${event.error}; retrying in ${Math.ceil(event.retryInMs / 1000)}s` }
        break
      case 'etcd.connected':
      case 'lease.renewed':
        patch.etcd = { connected: true }
        break
      case 'etcd.disconnected':
        patch.etcd = { connected: false, detail: event.retryInMs !== undefined ? `${event.error}; retrying in ${Math.ceil(event.retryInMs / 1000)}s` : `${event.error}; retrying` }
        break
      case 'lease.lost':
        patch.etcd = { connected: false, detail: `lease lost: ${event.reason}` }
        break
      case 'leader.changed': {
        // The same leader and term reported again keeps its "since": it has led all along.
        const same = s.leader && s.leader.node === event.leader && s.leader.term === event.term
        patch.leader = event.leader && event.term ? { node: event.leader, term: event.term, since: same ? s.leader!.since : this.now().toISOString(), self: event.self } : null
        break
      }
      case 'leader.acting':
        patch.acting = event.acting
        break
      case 'agent.stopping':
        patch.stopping = true
        break
      default:
        break
    }
    const changed = Object.entries(patch).some(([key, value]) => JSON.stringify(s[key as keyof AgentState]) !== JSON.stringify(value))
    if (changed) this.state = { ...this.state, ...patch }
    this.appendLog(event)
  }

  /** The registry view: an instance was put (added or changed). */
  putInstance(key: string, record: InstanceRecord): void {
    const previous = this.instances.get(key)
    if (previous && JSON.stringify(previous) === JSON.stringify(record)) return
    this.instances.set(key, record)
    // The key fixes service and id, so a new record at a known key keeps its place in the order.
    if (previous && this.sortedIndex.has(key)) this.replaced.set(key, record)
    else this.structural = true
    this.instancesDirty = true
    this.schedule()
  }

  removeInstance(key: string): void {
    if (!this.instances.delete(key)) return
    this.structural = true
    this.instancesDirty = true
    this.schedule()
  }

  /** The registry view's node records (replaced whole: there are few). */
  setNodes(nodes: NodeRecord[]): void {
    if (JSON.stringify(nodes) === JSON.stringify(this.state.nodes)) return
    this.state = { ...this.state, nodes }
    this.dirty = true
    this.schedule()
  }

  setServing(serving: { dns?: string; http?: string }): void {
    this.state = { ...this.state, serving }
    this.dirty = true
    this.schedule()
  }

  /** Pushes pending changes out now (tests, and before exit). */
  flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.instancesDirty) {
      this.instancesDirty = false
      this.state = { ...this.state, instances: this.orderedInstances() }
      this.replaced.clear()
      this.structural = false
      this.dirty = true
    }
    if (!this.dirty) return
    this.dirty = false
    this.emit('change')
  }

  /**
   * An `instance.updated` whose record differs from the last one only in health restates the
   * `health.changed` logged just before it: no second log line. Tracks this agent's records
   * as its events report them (not the registry mirror, which may already hold the new one).
   */
  private restatesHealthChange(event: AgentEvent): boolean {
    switch (event.type) {
      case 'instance.registered':
        this.reported.set(`${event.instance.service}/${event.instance.id}`, event.instance)
        return false
      case 'instance.updated': {
        const key = `${event.instance.service}/${event.instance.id}`
        const previous = this.reported.get(key)
        this.reported.set(key, event.instance)
        return previous !== undefined && previous.health.status !== event.instance.health.status && sameButHealth(previous, event.instance)
      }
      case 'instance.removed':
        this.reported.delete(`${event.service}/${event.id}`)
        return false
      default:
        return false
    }
  }

  private appendLog(event: AgentEvent): void {
    const level: LogEntry['level'] =
      event.type === 'error' || event.type === 'lease.lost' || event.type.endsWith('disconnected')
        ? 'error'
        : event.type === 'container.problem' || event.type === 'election.trouble' || event.type === 'config.rejected' || (event.type === 'health.changed' && event.to !== 'passing')
          ? 'warn'
          : 'info'
    const entry: LogEntry = { id: this.nextLogId++, at: this.now().toISOString(), level, type: event.type, event: withShortIds(event, this.state.node) }
    const log = this.state.log.length >= this.logLimit ? [...this.state.log.slice(this.state.log.length - this.logLimit + 1), entry] : [...this.state.log, entry]
    this.state = { ...this.state, log }
    this.dirty = true
    this.schedule()
  }

  /**
   * Every instance, by service then id. Health changes only replace records at known keys: the
   * previous order is patched in place (10,000 instances: one copy, not a sort per change).
   */
  private orderedInstances(): InstanceRecord[] {
    if (!this.structural) {
      const next = this.state.instances.slice()
      for (const [key, record] of this.replaced) next[this.sortedIndex.get(key)!] = record
      return next
    }
    const entries = [...this.instances.entries()].sort(([, a], [, b]) => compareRecords(a, b))
    this.sortedIndex = new Map(entries.map(([key], i) => [key, i]))
    return entries.map(([, record]) => record)
  }

  private schedule(): void {
    if (this.timer) return
    this.timer = setTimeout(() => this.flush(), this.coalesceMs)
  }
}

/** The store's order of instances: service, then id. */
export function compareRecords(a: InstanceRecord, b: InstanceRecord): number {
  return a.service === b.service ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.service < b.service ? -1 : 1
}

function sameButHealth(a: InstanceRecord, b: InstanceRecord): boolean {
  return JSON.stringify({ ...a, health: null, updatedAt: null }) === JSON.stringify({ ...b, health: null, updatedAt: null })
}

/**
 * The event with this node's instance ids shortened as the TUI table shows them
 * (`node:container:port` → `container:port`): the header already names the node, and an
 * 80-column log line has no room to repeat it.
 */
function withShortIds(event: AgentEvent, node: string): AgentEvent {
  const short = (id: string): string => (id.startsWith(`${node}:`) && id.length > node.length + 1 ? id.slice(node.length + 1) : id)
  switch (event.type) {
    case 'instance.registered':
    case 'instance.updated':
      return { ...event, instance: { ...event.instance, id: short(event.instance.id) } }
    case 'instance.removed':
    case 'health.changed':
      return { ...event, id: short(event.id) }
    default:
      return event
  }
}
