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
  problem: [key: string, reason: string]
  disconnected: [error: unknown]
  resynced: [revision: string]
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

  private constructor(
    readonly registry: Registry,
    parseInstance: (raw: string, key: string) => ParseResult<InstanceRecord>,
    parseNode: (raw: string) => ParseResult<NodeRecord>,
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
    this.mirror = new PrefixMirror<Item>(registry.client, `${prefix}/`, parse)
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
  static async open(registry: Registry): Promise<RegistryView> {
    const view = new RegistryView(registry, await registry.instanceParser(), await registry.nodeParser())
    await view.mirror.start()
    view.state.setConnected(true)
    view.state.commit()
    return view
  }

  on<E extends keyof RegistryViewEvents>(event: E, listener: (...args: RegistryViewEvents[E]) => void): this {
    if (event === 'change') this.state.on('change', listener as (change: ViewChange) => void)
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

  get connected(): boolean {
    return this.mirror.isConnected
  }

  /** Tombstones the underlying mirror holds (its memory bound, for tests). */
  get tombstones(): number {
    return this.mirror.tombstoneCount
  }

  async close(): Promise<void> {
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
