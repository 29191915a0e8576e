import { EventEmitter } from 'node:events'
import { explainEtcdFailure } from '../etcd.js'
import { isHealthy, type InstanceRecord } from '../model.js'
import type { MirrorEntry, PrefixMirror } from '../prefix-mirror.js'
import { assertServiceName } from '../validate.js'
import { openRegistry, type RegistryOptions } from './connection.js'

export interface ResolverOptions extends RegistryOptions {
  /** Only instances whose health is `passing` (default true); warning, unknown and critical ones are left out. */
  healthyOnly?: boolean
  /** Only instances that carry every one of these tags. */
  tags?: readonly string[]
}

export interface ResolverEvents {
  /** The table changed (an instance came, went, moved, or its health, tags or meta changed). */
  change: [instances: InstanceRecord[]]
  /** etcd can't be reached; the last known table is kept and served until it can. */
  disconnected: [error: unknown]
  /** etcd is back and the table was listed again: it equals etcd once more. */
  reconnected: []
  /** A record under the service that is not a valid schema-1 instance; it is left out. */
  problem: [key: string, reason: string]
}

export interface ResolverFilter {
  healthyOnly: boolean
  tags: readonly string[]
}

/** What the resolver follows: a PrefixMirror of one service's records (an interface, so tests can feed it). */
export type InstanceSource = Pick<PrefixMirror<InstanceRecord>, 'list' | 'isConnected' | 'on' | 'off'>

/**
 * A live, filtered table of one service's instances, following etcd with list-then-watch.
 * Create it with `createResolver`. While etcd is unreachable it keeps serving the last table.
 */
export class Resolver extends EventEmitter<ResolverEvents> {
  private table: InstanceRecord[] = []
  private fingerprint = ''
  /** Starts at a random place so that many clients don't all send their first call to the same instance. */
  private cursor = Math.floor(Math.random() * 1024)
  private stale: boolean
  private refreshQueued = false
  private closing?: Promise<void>
  private readonly detach: () => void

  /** Use `createResolver`; this constructor is for wiring a resolver to an already started source. */
  constructor(
    readonly service: string,
    source: InstanceSource,
    private readonly filter: ResolverFilter,
    private readonly onClose: () => Promise<void> | void = () => undefined,
  ) {
    super()
    this.stale = !source.isConnected
    const changed = (): void => this.queueRefresh(source)
    const disconnected = (error: unknown): void => {
      if (this.stale) return
      this.stale = true
      this.emit('disconnected', error)
    }
    const resynced = (): void => {
      this.refresh(source)
      if (!this.stale) return
      this.stale = false
      this.emit('reconnected')
    }
    const problem = (key: string, reason: string): void => void this.emit('problem', key, reason)
    source.on('put', changed)
    source.on('delete', changed)
    source.on('disconnected', disconnected)
    source.on('resynced', resynced)
    source.on('problem', problem)
    this.detach = () => {
      source.off('put', changed)
      source.off('delete', changed)
      source.off('disconnected', disconnected)
      source.off('resynced', resynced)
      source.off('problem', problem)
    }
    this.table = selectInstances(source.list(), filter)
    this.fingerprint = tableFingerprint(this.table)
  }

  /** The current instances (sorted by id), filtered as the options say. A copy: change it freely. */
  instances(): InstanceRecord[] {
    return [...this.table]
  }

  /** The next instance, round-robin; undefined when there is none. */
  pick(): InstanceRecord | undefined {
    if (this.table.length === 0) return undefined
    const index = this.cursor % this.table.length
    this.cursor = index + 1
    return this.table[index]
  }

  get size(): number {
    return this.table.length
  }

  /** False from a 'disconnected' event until the next 'reconnected': the table may be out of date. */
  get connected(): boolean {
    return !this.stale
  }

  /** Stops following etcd (and closes the connection if the resolver opened it). Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.detach()
      await this.onClose()
    })()
    return this.closing
  }

  /** One refresh per burst of events: a relist of 100 records emits one 'change', not 100. */
  private queueRefresh(source: InstanceSource): void {
    if (this.refreshQueued) return
    this.refreshQueued = true
    queueMicrotask(() => {
      this.refreshQueued = false
      this.refresh(source)
    })
  }

  private refresh(source: InstanceSource): void {
    if (this.closing) return
    const table = selectInstances(source.list(), this.filter)
    const fingerprint = tableFingerprint(table)
    this.table = table
    if (fingerprint === this.fingerprint) return
    this.fingerprint = fingerprint
    this.emit('change', [...table])
  }
}

/** The instances a resolver serves: filtered by health and tags, sorted by id so the order is stable. */
export function selectInstances(entries: readonly MirrorEntry<InstanceRecord>[], filter: ResolverFilter): InstanceRecord[] {
  return entries
    .map((entry) => entry.value)
    .filter((record) => (!filter.healthyOnly || isHealthy(record)) && filter.tags.every((tag) => record.tags.includes(tag)))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** What a consumer routes on. Health output and timestamps change on every check and are left out. */
export function tableFingerprint(instances: readonly InstanceRecord[]): string {
  return JSON.stringify(instances.map((i) => [i.id, i.address, i.port, i.health.status, i.tags, Object.entries(i.meta).sort(), i.node]))
}

/**
 * Follows the instances of `service` in etcd and resolves once the first list is loaded.
 *
 * ```ts
 * const web = await createResolver('web', { etcdEndpoints: '10.0.0.2:2379' })
 * const instance = web.pick() // round-robin over the healthy instances
 * web.on('change', (instances) => console.log(instances.length, 'instances'))
 * ```
 *
 * Throws a `UsageError` for bad options and an `UnavailableError` when etcd can't be reached
 * at start. Afterwards etcd outages never empty the table: 'disconnected' says it may be stale,
 * and 'reconnected' says it was listed again and equals etcd.
 */
export async function createResolver(service: string, options: ResolverOptions = {}): Promise<Resolver> {
  assertServiceName(service)
  const filter: ResolverFilter = { healthyOnly: options.healthyOnly ?? true, tags: [...(options.tags ?? [])] }
  const { registry, owned } = openRegistry(options)
  const mirror = registry.watchInstances(service)
  try {
    await mirror.start()
  } catch (error) {
    await mirror.close()
    if (owned) registry.close()
    throw await explainEtcdFailure(error, registry.connection, `loading the instances of ${service}`)
  }
  return new Resolver(service, mirror, filter, async () => {
    await mirror.close()
    if (owned) registry.close()
  })
}
