import { EventEmitter } from 'node:events'
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import { delay } from './async.js'
import { rangePrefix } from './etcd.js'
import type { ParseResult } from './model.js'

export interface MirrorEntry<T> {
  key: string
  value: T
  modRevision: string
  lease: string
}

export interface PrefixMirrorEvents<T> {
  /** The first full list is loaded (once). */
  ready: []
  put: [entry: MirrorEntry<T>, previous: MirrorEntry<T> | undefined]
  delete: [previous: MirrorEntry<T>]
  /** A value under the prefix that is not a valid record: reported and left out, never a crash. */
  problem: [key: string, reason: string]
  /** The watch stream broke; the mirror keeps its last known contents until it relists. */
  disconnected: [error: unknown]
  /** A relist after a reconnect or compaction completed; the mirror equals etcd again. */
  resynced: [revision: string]
}

/**
 * A local copy of everything under one etcd prefix that always converges to what etcd holds.
 *
 * List, then watch from the list's revision + 1. etcd3's watcher resumes by itself after a
 * reconnect; on top of that the mirror relists after every reconnect and after a watch is
 * cancelled (compaction), and applies each change only if it is newer than what it already
 * applied for that key, so replays and relists are idempotent.
 */
export class PrefixMirror<T> extends EventEmitter<PrefixMirrorEvents<T>> {
  private readonly entries = new Map<string, MirrorEntry<T>>()
  /** Highest revision applied per key, for puts and deletes alike. */
  private readonly seen = new Map<string, bigint>()
  private watcher?: Watcher
  private closed = false
  private relisting?: Promise<void>
  private reopenAfterRelist = false
  private disconnected = false
  private retryTimer?: NodeJS.Timeout

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly parse: (raw: string, key: string) => ParseResult<T>,
    /** Runs once before the first list, e.g. to load what `parse` needs. */
    private readonly prepare?: () => Promise<void>,
  ) {
    super()
  }

  /** Loads the initial list (throws if etcd can't be reached) and starts watching. */
  async start(): Promise<void> {
    await this.prepare?.()
    const revision = await this.relist()
    await this.openWatcher(revision)
    this.emit('ready')
  }

  values(): T[] {
    return [...this.entries.values()].map((e) => e.value)
  }

  list(): MirrorEntry<T>[] {
    return [...this.entries.values()]
  }

  get(key: string): MirrorEntry<T> | undefined {
    return this.entries.get(key)
  }

  get size(): number {
    return this.entries.size
  }

  get isConnected(): boolean {
    return !this.disconnected
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.retryTimer)
    const watcher = this.watcher
    this.watcher = undefined
    if (watcher) await Promise.race([watcher.cancel(), delay(1000)]).catch(() => undefined)
  }

  private async relist(): Promise<bigint> {
    const response = await rangePrefix(this.client, this.prefix)
    const revision = BigInt(response.revision)
    const present = new Set<string>()
    for (const kv of response.kvs) {
      const key = kv.key.toString()
      present.add(key)
      this.applyPut(kv)
    }
    for (const key of [...this.entries.keys()]) {
      if (present.has(key)) continue
      if ((this.seen.get(key) ?? -1n) > revision) continue
      this.seen.set(key, revision)
      const previous = this.entries.get(key)!
      this.entries.delete(key)
      this.emit('delete', previous)
    }
    return revision
  }

  private async openWatcher(fromRevision: bigint): Promise<void> {
    const watcher = await this.client
      .watch()
      .prefix(this.prefix)
      .startRevision(String(fromRevision + 1n))
      .create()
    if (this.closed) {
      await watcher.cancel().catch(() => undefined)
      return
    }
    this.watcher = watcher
    watcher.on('put', (kv) => this.applyPut(kv))
    watcher.on('delete', (kv) => this.applyDelete(kv))
    watcher.on('disconnected', (error) => {
      if (!this.disconnected) {
        this.disconnected = true
        this.emit('disconnected', error)
      }
    })
    watcher.on('connected', () => {
      if (!this.disconnected) return
      this.disconnected = false
      this.scheduleRelist(false)
    })
    // A cancelled watch (compaction, or a server-side error) never resumes: relist and watch anew.
    watcher.on('error', () => {
      if (this.watcher !== watcher) return
      this.watcher = undefined
      void watcher.cancel().catch(() => undefined)
      this.scheduleRelist(true)
    })
  }

  private scheduleRelist(reopenWatcher: boolean, attempt = 0): void {
    if (this.closed) return
    if (this.relisting) {
      // A watch cancelled (compaction) while a relist runs, e.g. the one its reconnect started,
      // must still be reopened afterwards, or the mirror would silently stop following etcd.
      if (reopenWatcher) this.reopenAfterRelist = true
      return
    }
    this.relisting = (async () => {
      try {
        const revision = await this.relist()
        if (reopenWatcher) await this.openWatcher(revision)
        this.emit('resynced', String(revision))
      } catch (error) {
        if (!this.disconnected) {
          this.disconnected = true
          this.emit('disconnected', error)
        }
        const wait = Math.min(5_000, 200 * 2 ** attempt)
        this.retryTimer = setTimeout(() => {
          this.relisting = undefined
          this.scheduleRelist(reopenWatcher, attempt + 1)
        }, wait)
        this.retryTimer.unref?.()
        return
      }
      if (reopenWatcher) this.disconnected = false
      this.relisting = undefined
      if (this.reopenAfterRelist) {
        this.reopenAfterRelist = false
        if (!this.watcher) this.scheduleRelist(true)
      }
    })()
  }

  private applyPut(kv: IKeyValue): void {
    const key = kv.key.toString()
    const revision = BigInt(kv.mod_revision)
    if (revision <= (this.seen.get(key) ?? -1n)) return
    this.seen.set(key, revision)
    const previous = this.entries.get(key)
    const parsed = this.parse(kv.value.toString(), key)
    if (!parsed.ok) {
      this.emit('problem', key, parsed.reason)
      if (previous) {
        this.entries.delete(key)
        this.emit('delete', previous)
      }
      return
    }
    const entry: MirrorEntry<T> = { key, value: parsed.value, modRevision: kv.mod_revision, lease: kv.lease }
    this.entries.set(key, entry)
    this.emit('put', entry, previous)
  }

  private applyDelete(kv: IKeyValue): void {
    const key = kv.key.toString()
    const revision = BigInt(kv.mod_revision)
    if (revision <= (this.seen.get(key) ?? -1n)) return
    this.seen.set(key, revision)
    const previous = this.entries.get(key)
    if (!previous) return
    this.entries.delete(key)
    this.emit('delete', previous)
  }
}
