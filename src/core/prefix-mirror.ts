import { EventEmitter } from 'node:events'
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import { delay } from './async.js'
import { forEachPrefixPage } from './etcd.js'
import { withRetries } from './retry.js'
import type { ParseResult } from './model.js'

export interface MirrorEntry<T> {
  key: string
  value: T
  modRevision: string
  createRevision: string
  lease: string
}

export interface PrefixMirrorEvents<T> {
  /** The first full list is loaded (once). */
  ready: []
  put: [entry: MirrorEntry<T>, previous: MirrorEntry<T> | undefined]
  /** `revision`: of the delete (or of the listing that found the key gone). */
  delete: [previous: MirrorEntry<T>, revision: string]
  /** A value under the prefix that is not a valid record: reported and left out, never a crash. */
  problem: [key: string, reason: string]
  /** The watch stream broke; the mirror keeps its last known contents until it relists. */
  disconnected: [error: unknown]
  /** A relist after a reconnect or compaction completed; the mirror equals etcd again. */
  resynced: [revision: string]
  /** A relist or one watch response was applied: the mirror reflects etcd up to `revision`. */
  batch: [revision: string]
}

/**
 * A local copy of everything under one etcd prefix that always converges to what etcd holds.
 *
 * List, then watch from the list's revision + 1. etcd3's watcher resumes by itself after a
 * reconnect; on top of that the mirror relists after every reconnect and after a watch is
 * cancelled (compaction), and applies each change only if it is newer than what it already
 * applied for that key, so replays and relists are idempotent.
 *
 * Memory stays bounded by what is under the prefix: a deleted key leaves a tombstone only
 * while a relist is in flight (the one case where an older listing could resurrect it), and
 * after each relist everything at or below its revision is judged by the listing alone. A
 * listing is applied page by page, so the raw key-values of one page are held at a time.
 *
 * A scope (a predicate on keys) narrows what is kept: keys outside it are dropped before they
 * are parsed, from listings and from the watch alike. Narrowing drops what is held outside
 * the new scope; widening relists, since what was dropped was never kept.
 */
export class PrefixMirror<T> extends EventEmitter<PrefixMirrorEvents<T>> {
  private readonly entries = new Map<string, MirrorEntry<T>>()
  /** Deletes seen while a relist is in flight, so its older listing can't bring the key back. */
  private readonly tombstones = new Map<string, bigint>()
  /** The revision of the last completed relist: an absent key's event at or below it is already judged. */
  private floor = -1n
  private relistsInFlight = 0
  private watcher?: Watcher
  private closed = false
  private relisting?: Promise<void>
  private reopenAfterRelist = false
  private disconnected = false
  private retryTimer?: NodeJS.Timeout
  /** The revision the mirror reflects etcd at (the last listing or watch response applied). */
  private revision = '0'
  /** The latest setScope's: aborted by the next one and by close(), ending a widening's retries. */
  private rescoping?: AbortController
  /** False from a setScope until its widening relist completed (whole reads false meanwhile). */
  private listedWhole = true

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly parse: (raw: string, key: string) => ParseResult<T>,
    /** Runs once before the first list, e.g. to load what `parse` needs. */
    private readonly prepare?: () => Promise<void>,
    /** Only keys for which this holds are kept (all when undefined); see setScope. */
    private scope?: (key: string) => boolean,
  ) {
    super()
    this.on('batch', (revision) => (this.revision = revision))
  }

  /** Whether the mirror holds every key under its prefix: no scope, and no widening still listing. */
  get whole(): boolean {
    return this.scope === undefined && this.listedWhole
  }

  /**
   * Keeps only the keys `scope` accepts from now on (every key when undefined). A narrower scope
   * drops what it no longer accepts at once ('delete' events, then a 'batch') and resolves true.
   * A wider one relists, retrying while etcd is unreachable, and resolves true once the mirror
   * holds everything the new scope accepts, or false when closed or overtaken by another
   * setScope first. Call it only with a scope that contains the old one (widening) or is
   * contained in it (narrowing).
   */
  async setScope(scope: ((key: string) => boolean) | undefined, widening: boolean): Promise<boolean> {
    // The new scope filters at once: the watch's changes count from now, the relist fills in the rest.
    this.scope = scope
    this.listedWhole = false
    this.rescoping?.abort()
    const rescoping = (this.rescoping = new AbortController())
    if (!widening) {
      let dropped = false
      for (const [key, entry] of [...this.entries]) {
        if (scope?.(key) !== false) continue
        this.entries.delete(key)
        this.emit('delete', entry, this.revision)
        dropped = true
      }
      if (dropped) this.emit('batch', this.revision)
      return true
    }
    try {
      // close() or the next setScope aborts the retries, and their wait.
      await withRetries(() => this.relist(), { initialMs: 200, maxMs: 5_000 }, rescoping.signal)
    } catch {
      return false
    }
    if (rescoping.signal.aborted) return false
    this.listedWhole = scope === undefined
    return true
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
    this.rescoping?.abort()
    clearTimeout(this.retryTimer)
    const watcher = this.watcher
    this.watcher = undefined
    if (watcher) await Promise.race([watcher.cancel(), delay(1000)]).catch(() => undefined)
  }

  /** Tombstones kept now (for tests of the memory bound). */
  get tombstoneCount(): number {
    return this.tombstones.size
  }

  private async relist(): Promise<bigint> {
    this.relistsInFlight++
    try {
      let present = new Set<string>()
      const revision = BigInt(
        await forEachPrefixPage(
          this.client,
          this.prefix,
          (kvs) => {
            for (const kv of kvs) {
              const key = kv.key.toString()
              present.add(key)
              this.applyPut(kv, true, key)
            }
          },
          // A compaction restarted the read: what the older pages put is judged by the new one.
          { onRestart: () => (present = new Set()) },
        ),
      )
      for (const [key, previous] of [...this.entries]) {
        if (present.has(key)) continue
        if (BigInt(previous.modRevision) > revision) continue
        this.entries.delete(key)
        this.emit('delete', previous, revision.toString())
      }
      if (revision > this.floor) this.floor = revision
      this.emit('batch', revision.toString())
      return revision
    } finally {
      if (--this.relistsInFlight === 0) this.tombstones.clear()
    }
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
    // etcd3 emits a response's puts and deletes before its own 'data' listener returns to ours.
    watcher.on('data', (response) => this.emit('batch', String(response.header.revision)))
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

  private applyPut(kv: IKeyValue, fromListing = false, key = kv.key.toString()): void {
    if (this.scope && !this.scope(key)) return
    const revision = BigInt(kv.mod_revision)
    const previous = this.entries.get(key)
    if (previous) {
      if (revision <= BigInt(previous.modRevision)) return
    } else {
      if (!fromListing && revision <= this.floor) return
      if (revision <= (this.tombstones.get(key) ?? -1n)) return
    }
    const parsed = this.parse(kv.value.toString(), key)
    if (!parsed.ok) {
      this.emit('problem', key, parsed.reason)
      if (previous) {
        this.entries.delete(key)
        this.emit('delete', previous, kv.mod_revision)
      }
      return
    }
    const entry: MirrorEntry<T> = { key, value: parsed.value, modRevision: kv.mod_revision, createRevision: kv.create_revision, lease: kv.lease }
    this.entries.set(key, entry)
    this.emit('put', entry, previous)
  }

  private applyDelete(kv: IKeyValue): void {
    const key = kv.key.toString()
    const revision = BigInt(kv.mod_revision)
    if (this.relistsInFlight > 0 && revision > (this.tombstones.get(key) ?? -1n)) this.tombstones.set(key, revision)
    const previous = this.entries.get(key)
    if (!previous || revision <= BigInt(previous.modRevision)) return
    this.entries.delete(key)
    this.emit('delete', previous, kv.mod_revision)
  }
}
