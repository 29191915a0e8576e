import { EventEmitter } from 'node:events'
import type { MaintenanceTarget } from '../keys.js'
import { instanceMarkKey, type MaintenanceMarks } from '../maintenance.js'
import type { MaintenanceRecord } from '../model.js'
import type { ViewInstance, ViewLeader, ViewNode, ViewSnapshot, ViewSource } from './types.js'

export interface ViewChange {
  /** Services whose instances changed. */
  services: ReadonlySet<string>
  /** Instance keys that changed (put or deleted). */
  keys: ReadonlySet<string>
  nodes: boolean
  leader: boolean
  maintenance: boolean
  /** Configuration keys (`<prefix>/config/…`) that changed. */
  config: ReadonlySet<string>
  revision: string
}

interface Waiter {
  service?: string
  after: bigint
  resolve: () => void
}

/**
 * The contents of a registry view, with no I/O: puts and deletes go in (from the etcd watch,
 * or from a test), immutable snapshots and change notifications come out. Changes applied in
 * one batch (one watch response) are announced once, after the batch.
 */
export class ViewState extends EventEmitter<{ change: [ViewChange] }> implements ViewSource {
  private readonly instances = new Map<string, ViewInstance>()
  private readonly nodes = new Map<string, ViewNode>()
  private readonly serviceIndex = new Map<string, string>()
  private leader?: ViewLeader
  private readonly marks = { nodes: new Map<string, MaintenanceRecord>(), services: new Map<string, MaintenanceRecord>(), instances: new Map<string, MaintenanceRecord>() }
  private marksSnapshot?: MaintenanceMarks
  private readonly configs = new Map<string, unknown>()
  private revision = 0n
  private connected = false
  private cached?: ViewSnapshot
  private waiters = new Set<Waiter>()
  private pending = { services: new Set<string>(), keys: new Set<string>(), nodes: false, leader: false, maintenance: false, config: new Set<string>(), any: false }

  snapshot = (): ViewSnapshot => {
    this.cached ??= { ...buildSnapshot(this.instances, this.nodes, this.serviceIndex, this.leader, this.revision, this.connected), maintenance: this.maintenance() }
    return this.cached
  }

  /** The instance at `key`, without building a snapshot. */
  instance(key: string): ViewInstance | undefined {
    return this.instances.get(key)
  }

  /** One node record by key, without building a snapshot. */
  node(key: string): ViewNode | undefined {
    return this.nodes.get(key)
  }

  /** Every instance of one node (the agent's own read-back), without building a snapshot. */
  instancesOfNode(node: string): ViewInstance[] {
    const out: ViewInstance[] = []
    for (const entry of this.instances.values()) if (entry.record.node === node) out.push(entry)
    return out
  }

  get size(): number {
    return this.instances.size
  }

  get currentRevision(): string {
    return this.revision.toString()
  }

  putInstance(entry: ViewInstance): void {
    const previous = this.instances.get(entry.key)
    this.instances.set(entry.key, entry)
    this.touchService(entry.record.service, entry.modRevision)
    if (previous && previous.record.service !== entry.record.service) this.touchService(previous.record.service, entry.modRevision)
    this.pending.keys.add(entry.key)
    this.dirty()
  }

  deleteInstance(key: string, revision: string): ViewInstance | undefined {
    const previous = this.instances.get(key)
    if (!previous) return undefined
    this.instances.delete(key)
    this.touchService(previous.record.service, revision)
    this.pending.keys.add(key)
    this.dirty()
    return previous
  }

  putNode(entry: ViewNode): void {
    this.nodes.set(entry.key, entry)
    this.pending.nodes = true
    this.dirty()
  }

  deleteNode(key: string): void {
    if (!this.nodes.delete(key)) return
    this.pending.nodes = true
    this.dirty()
  }

  setLeader(leader: ViewLeader | undefined): void {
    if (JSON.stringify(leader) === JSON.stringify(this.leader)) return
    this.leader = leader
    this.pending.leader = true
    this.dirty()
  }

  /** A configuration key's value (a JSON object), or undefined when it is absent. */
  config(key: string): unknown {
    return this.configs.get(key)
  }

  putConfig(key: string, value: unknown): void {
    this.configs.set(key, value)
    this.pending.config.add(key)
    this.dirty()
  }

  deleteConfig(key: string): void {
    if (!this.configs.delete(key)) return
    this.pending.config.add(key)
    this.dirty()
  }

  putMaintenance(target: MaintenanceTarget, mark: MaintenanceRecord): void {
    this.marksOf(target).set(markKey(target), mark)
    this.touchMarks()
  }

  deleteMaintenance(target: MaintenanceTarget): void {
    if (this.marksOf(target).delete(markKey(target))) this.touchMarks()
  }

  /** The maintenance marks now, without building a snapshot (the same object until they change). */
  maintenance(): MaintenanceMarks {
    this.marksSnapshot ??= { nodes: new Map(this.marks.nodes), services: new Map(this.marks.services), instances: new Map(this.marks.instances) }
    return this.marksSnapshot
  }

  private marksOf(target: MaintenanceTarget): Map<string, MaintenanceRecord> {
    return target.kind === 'node' ? this.marks.nodes : target.kind === 'service' ? this.marks.services : this.marks.instances
  }

  private touchMarks(): void {
    this.marksSnapshot = undefined
    this.pending.maintenance = true
    this.dirty()
  }

  setConnected(connected: boolean): void {
    if (this.connected === connected) return
    this.connected = connected
    this.dirty()
  }

  /** Moves the view's revision forward (never back): everything up to it is applied. */
  setRevision(revision: string | bigint): void {
    const value = BigInt(revision)
    if (value <= this.revision) return
    this.revision = value
    this.dirty()
  }

  /** Announces the changes applied since the last commit, and wakes the waiters they satisfy. */
  commit(): void {
    if (!this.pending.any) return
    const change: ViewChange = {
      services: this.pending.services,
      keys: this.pending.keys,
      nodes: this.pending.nodes,
      leader: this.pending.leader,
      maintenance: this.pending.maintenance,
      config: this.pending.config,
      revision: this.revision.toString(),
    }
    this.pending = { services: new Set(), keys: new Set(), nodes: false, leader: false, maintenance: false, config: new Set(), any: false }
    for (const waiter of [...this.waiters]) {
      const index = waiter.service === undefined ? this.revision : BigInt(this.serviceIndex.get(waiter.service) ?? '0')
      if (index > waiter.after) waiter.resolve()
    }
    this.emit('change', change)
  }

  waitForChange(options: { service?: string; afterRevision: string; timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    const after = parseRevision(options.afterRevision)
    const now = options.service === undefined ? this.revision : BigInt(this.serviceIndex.get(options.service) ?? '0')
    if (now > after || options.signal?.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', done)
        this.waiters.delete(waiter)
        resolve()
      }
      const waiter: Waiter = { service: options.service, after, resolve: done }
      const timer = setTimeout(done, Math.max(0, options.timeoutMs))
      options.signal?.addEventListener('abort', done, { once: true })
      this.waiters.add(waiter)
    })
  }

  private touchService(service: string, revision: string): void {
    const current = this.serviceIndex.get(service)
    if (current === undefined || BigInt(revision) > BigInt(current)) this.serviceIndex.set(service, revision)
    this.pending.services.add(service)
  }

  private dirty(): void {
    this.cached = undefined
    this.pending.any = true
  }
}

function markKey(target: MaintenanceTarget): string {
  return target.kind === 'node' ? target.node : target.kind === 'service' ? target.service : instanceMarkKey(target.service, target.id)
}

function parseRevision(text: string): bigint {
  try {
    return /^\d{1,20}$/.test(text) ? BigInt(text) : 0n
  } catch {
    return 0n
  }
}

function compareInstances(a: ViewInstance, b: ViewInstance): number {
  const ra = a.record
  const rb = b.record
  if (ra.service !== rb.service) return ra.service < rb.service ? -1 : 1
  if (ra.node !== rb.node) return ra.node < rb.node ? -1 : 1
  return ra.id < rb.id ? -1 : ra.id > rb.id ? 1 : 0
}

function buildSnapshot(
  instances: Map<string, ViewInstance>,
  nodes: Map<string, ViewNode>,
  serviceIndex: Map<string, string>,
  leader: ViewLeader | undefined,
  revision: bigint,
  connected: boolean,
): Omit<ViewSnapshot, 'maintenance'> {
  const sorted = [...instances.values()].sort(compareInstances)
  const services = new Map<string, ViewInstance[]>()
  for (const entry of sorted) {
    const list = services.get(entry.record.service)
    if (list) list.push(entry)
    else services.set(entry.record.service, [entry])
  }
  return {
    revision: revision.toString(),
    instances: sorted,
    services,
    serviceIndex: new Map(serviceIndex),
    nodes: [...nodes.values()].sort((a, b) => (a.record.node < b.record.node ? -1 : a.record.node > b.record.node ? 1 : 0)),
    ...(leader ? { leader } : {}),
    connected,
  }
}
