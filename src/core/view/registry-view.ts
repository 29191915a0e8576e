import { EventEmitter } from 'node:events'
import { whenAborted } from '../async.js'
import type { ParseResult, InstanceRecord, MaintenanceRecord, NodeRecord } from '../model.js'
import { leaderStatePrefix, maintenancePrefix, nodesPrefix, parseMaintenanceKey, servicesPrefix, type MaintenanceTarget } from '../keys.js'
import { parseMaintenanceRecord } from '../maintenance.js'
import { PrefixMirror, type MirrorEntry } from '../prefix-mirror.js'
import type { Registry } from '../registry.js'
import type { ViewSnapshot, ViewSource } from './types.js'
import { ViewState, type ViewChange } from './view-state.js'

type Item =
  | { kind: 'instance'; record: InstanceRecord }
  | { kind: 'node'; record: NodeRecord }
  | { kind: 'leader'; node: string; term: string; since: string }
  | { kind: 'maintenance'; target: MaintenanceTarget; mark: MaintenanceRecord }
  | { kind: 'config'; value: unknown }
  | { kind: 'other' }

export interface RegistryViewEvents {
  change: [ViewChange]
  /** The view widened to the whole registry or narrowed to its scope again (see holdWhole). */
  scope: [{ whole: boolean; instances: number; durationMs: number }]
  problem: [key: string, reason: string]
  disconnected: [error: unknown]
  resynced: [revision: string]
}

export interface RegistryViewOptions {
  /**
   * Keep only these nodes' Docker records (and everything that is not a Docker record: manual
   * records, node records, maintenance marks, configuration, the leader's info). For an agent that
   * serves nothing and shows no live view: its memory and start-up no longer grow with the
   * registry. holdWhole() widens it for as long as someone needs everything (the leader duties).
   */
  nodes?: readonly string[]
  /** How long a scoped view stays whole after the last holdWhole release (default 10 s). */
  narrowAfterMs?: number
}

/**
 * The one view of the registry in a process: a single list-then-watch of everything under
 * `<prefix>/` (instances, nodes, the leader's info), turned into a ViewState. The lifecycle
 * owner opens it once and hands it to every reader: the agent's read-back, the store, the
 * leader duties, the DNS and HTTP servers.
 */
export class RegistryView implements ViewSource {
  readonly state = new ViewState()
  private readonly mirror: PrefixMirror<Item>
  private readonly scope?: (key: string) => boolean
  /** Holders of the whole registry (holdWhole); the scope applies while there are none. */
  private holders = 0
  /** The widening relist in progress, if any. */
  private widening?: Promise<void>
  private narrowTimer?: NodeJS.Timeout
  private readonly narrowAfterMs: number
  private closed = false
  private readonly scopeEvents = new EventEmitter<Pick<RegistryViewEvents, 'scope'>>()

  private constructor(
    readonly registry: Registry,
    parseInstance: (raw: string, key: string) => ParseResult<InstanceRecord>,
    parseNode: (raw: string) => ParseResult<NodeRecord>,
    options: RegistryViewOptions,
  ) {
    const prefix = registry.prefix
    const services = servicesPrefix(prefix)
    const nodes = nodesPrefix(prefix)
    const leaderInfo = `${leaderStatePrefix(prefix)}info`
    const maintenance = maintenancePrefix(prefix)
    const configBase = `${prefix}/config/`
    const parse = (raw: string, key: string): ParseResult<Item> => {
      if (key.startsWith(services)) {
        const parsed = parseInstance(raw, key)
        return parsed.ok ? { ok: true, value: { kind: 'instance', record: parsed.value } } : parsed
      }
      if (key.startsWith(nodes)) {
        const parsed = parseNode(raw)
        return parsed.ok ? { ok: true, value: { kind: 'node', record: parsed.value } } : parsed
      }
      if (key === leaderInfo) return parseLeader(raw)
      if (key.startsWith(configBase)) {
        // Judged where it is used (a bad value is a config.rejected, not a broken view).
        try {
          return { ok: true, value: { kind: 'config', value: JSON.parse(raw) as unknown } }
        } catch {
          return { ok: true, value: { kind: 'config', value: raw } }
        }
      }
      if (key.startsWith(maintenance)) {
        const target = parseMaintenanceKey(prefix, key)
        const mark = parseMaintenanceRecord(raw)
        return target && mark ? { ok: true, value: { kind: 'maintenance', target, mark } } : { ok: false, reason: 'not a maintenance mark ({reason, by, since} at maintenance/nodes|services|instances/…)' }
      }
      return { ok: true, value: { kind: 'other' } }
    }
    this.scope = options.nodes ? nodeScope(prefix, options.nodes) : undefined
    this.narrowAfterMs = options.narrowAfterMs ?? 10_000
    this.mirror = new PrefixMirror<Item>(registry.client, `${prefix}/`, parse, undefined, this.scope)
    this.mirror.on('put', (entry) => this.onPut(entry))
    this.mirror.on('delete', (entry, revision) => this.onDelete(entry, revision))
    this.mirror.on('batch', (revision) => {
      this.state.setRevision(revision)
      this.state.setConnected(this.mirror.isConnected)
      this.state.commit()
    })
    this.mirror.on('disconnected', () => {
      this.state.setConnected(false)
      this.state.commit()
    })
  }

  /** Lists the registry (throws if etcd can't be reached) and follows it. */
  static async open(registry: Registry, options: RegistryViewOptions = {}): Promise<RegistryView> {
    const view = new RegistryView(registry, await registry.instanceParser(), await registry.nodeParser(), options)
    await view.mirror.start()
    view.state.setConnected(true)
    view.state.commit()
    return view
  }

  on<E extends keyof RegistryViewEvents>(event: E, listener: (...args: RegistryViewEvents[E]) => void): this {
    if (event === 'change') this.state.on('change', listener as (change: ViewChange) => void)
    else if (event === 'scope') this.scopeEvents.on('scope', listener as (scope: RegistryViewEvents['scope'][0]) => void)
    else this.mirror.on(event as 'problem', listener as (key: string, reason: string) => void)
    return this
  }

  off(event: 'change', listener: (change: ViewChange) => void): this {
    this.state.off(event, listener)
    return this
  }

  snapshot = (): ViewSnapshot => this.state.snapshot()

  waitForChange(options: { service?: string; afterRevision: string; timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    return this.state.waitForChange(options)
  }

  /** Whether the view holds every record now (not scoped, or widened by a holder). */
  get whole(): boolean {
    return this.mirror.whole
  }

  /**
   * Widens a scoped view to the whole registry until the returned release is called; resolves
   * once the view holds everything (a relist, retried while etcd is unreachable). The last
   * release narrows it again, after `narrowAfterMs` (a leader's term that pauses at a late lease
   * renewal and resumes keeps the view instead of relisting). On a view that was never scoped,
   * or once closed, it resolves at once. When `signal` aborts first (the term ended while etcd
   * was unreachable), it resolves undefined, and a widening nobody else waits for is dropped
   * when the grace is over.
   */
  holdWhole(): Promise<() => void>
  holdWhole(signal: AbortSignal): Promise<(() => void) | undefined>
  async holdWhole(signal?: AbortSignal): Promise<(() => void) | undefined> {
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      if (--this.holders > 0 || !this.scope || this.closed) return
      clearTimeout(this.narrowTimer)
      // Also for a hold given up while still listing: a term that resumes within the grace joins
      // that widening; one that ended stops it when the grace is over.
      this.narrowTimer = setTimeout(() => this.narrow(), this.narrowAfterMs)
      this.narrowTimer.unref()
    }
    this.holders++
    clearTimeout(this.narrowTimer)
    try {
      // A widening overtaken by a narrowing ends unfinished: widen again while someone holds.
      while (this.scope && !this.closed && !this.mirror.whole) {
        if (signal?.aborted) {
          release()
          return undefined
        }
        this.widening ??= this.widen()
        if (!signal) {
          await this.widening
          continue
        }
        const abort = whenAborted(signal)
        try {
          await Promise.race([this.widening, abort.promise])
        } finally {
          abort.dispose()
        }
      }
    } catch (error) {
      release()
      throw error
    }
    return release
  }

  private async widen(): Promise<void> {
    const started = performance.now()
    let done: boolean
    try {
      done = await this.mirror.setScope(undefined, true)
    } finally {
      this.widening = undefined
    }
    if (done) this.scopeEvents.emit('scope', { whole: true, instances: this.state.size, durationMs: Math.round(performance.now() - started) })
  }

  private narrow(): void {
    if (this.holders > 0 || this.closed || !this.scope) return
    // Cancels a widening still listing (its setScope resolves false).
    void this.mirror.setScope(this.scope, false)
    this.scopeEvents.emit('scope', { whole: false, instances: this.state.size, durationMs: 0 })
  }

  get connected(): boolean {
    return this.mirror.isConnected
  }

  /** Tombstones the underlying mirror holds (its memory bound, for tests). */
  get tombstones(): number {
    return this.mirror.tombstoneCount
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.narrowTimer)
    await this.mirror.close()
  }

  private onPut(entry: MirrorEntry<Item>): void {
    const item = entry.value
    const common = { key: entry.key, modRevision: entry.modRevision, createRevision: entry.createRevision, lease: entry.lease }
    if (item.kind === 'instance') this.state.putInstance({ ...common, record: item.record })
    else if (item.kind === 'node') this.state.putNode({ ...common, record: item.record })
    else if (item.kind === 'leader') this.state.setLeader({ node: item.node, term: item.term, since: item.since })
    else if (item.kind === 'maintenance') this.state.putMaintenance(item.target, item.mark)
    else if (item.kind === 'config') this.state.putConfig(entry.key, item.value)
  }

  private onDelete(entry: MirrorEntry<Item>, revision: string): void {
    const item = entry.value
    if (item.kind === 'instance') this.state.deleteInstance(entry.key, revision)
    else if (item.kind === 'node') this.state.deleteNode(entry.key)
    else if (item.kind === 'leader') this.state.setLeader(undefined)
    else if (item.kind === 'maintenance') this.state.deleteMaintenance(item.target)
    else if (item.kind === 'config') this.state.deleteConfig(entry.key)
  }
}

/** Keys kept by a view scoped to `nodes`: every key but other nodes' Docker records (`services/<service>/<node>/<id>`). */
export function nodeScope(prefix: string, nodes: readonly string[]): (key: string) => boolean {
  const services = servicesPrefix(prefix)
  const kept = new Set(nodes)
  return (key) => {
    if (!key.startsWith(services)) return true
    const first = key.indexOf('/', services.length)
    const second = first < 0 ? -1 : key.indexOf('/', first + 1)
    // <service>/<id>: a manual record (or one of schema 1), cluster-wide and kept.
    if (second < 0) return true
    return kept.has(key.slice(first + 1, second))
  }
}

function parseLeader(raw: string): ParseResult<Item> {
  try {
    const value = JSON.parse(raw) as { node?: unknown; term?: unknown; since?: unknown }
    if (typeof value.node === 'string' && typeof value.term === 'string' && typeof value.since === 'string') {
      return { ok: true, value: { kind: 'leader', node: value.node.slice(0, 253), term: value.term.slice(0, 32), since: value.since.slice(0, 64) } }
    }
  } catch {
    // reported below
  }
  return { ok: false, reason: 'leader info is not {node, term, since}' }
}
