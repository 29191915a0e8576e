import { EventEmitter } from 'node:events'
import type { Etcd3, Watcher } from 'etcd3'
import { backoffMs, delay } from '../async.js'
import { describeCause } from '../etcd.js'
import { electionPrefix } from '../keys.js'
import { ManagedLease } from '../lease.js'

export interface LeaderInfo {
  node: string
  /** The election term: the create revision of the leader's campaign key. */
  term: string
  key: string
}

export interface ElectionEvents {
  /** Who leads changed (or the first observation). */
  leader: [leader: LeaderInfo | undefined]
  /**
   * Whether this agent may act as leader right now. False the moment a renewal of its lease
   * fails, before etcd could expire the key and elect someone else; true again once renewed
   * (if it still leads).
   */
  acting: [acting: boolean, term: string | undefined]
  /** etcd trouble while campaigning or observing; the election retries by itself. */
  trouble: [message: string, retryInMs: number]
}

/**
 * Leader election with a lease and transactions of our own, on the same scheme as etcd's
 * concurrency package (and etcd3's `Election`): each candidate puts
 * `<prefix>/election/<lease-id>` bound to its lease; the key with the lowest create
 * revision leads, and that revision is the term. Written here rather than with etcd3's
 * `Election` because that one keeps a 60 s default TTL, reports a lost lease only after up
 * to 2×TTL, and never emits `disconnected` on its observer. Here the lease is the
 * early-warning ManagedLease, so `acting` turns false at the first failed renewal.
 *
 * Fencing: a leader-only write is a transaction guarded by `fence()`: "my campaign key still
 * has create revision = term". Keys with a lower create revision can't appear later, so that
 * single compare proves the writer still leads; a paused or partitioned ex-leader whose
 * lease expired fails it.
 */
export class LeaderElection extends EventEmitter<ElectionEvents> {
  private lease?: ManagedLease
  private myKey?: string
  private myTerm?: string
  private watcher?: Watcher
  private current?: LeaderInfo
  private actingNow = false
  private stopped = false
  private campaigning?: Promise<void>
  private observing = false
  private refreshQueued = false
  private refreshRunning?: Promise<void>

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly node: string,
    private readonly ttlMs: number,
  ) {
    super()
  }

  get leader(): LeaderInfo | undefined {
    return this.current
  }

  get isActing(): boolean {
    return this.actingNow
  }

  get term(): string | undefined {
    return this.actingNow ? this.myTerm : undefined
  }

  /** The compare a fenced write must carry: this agent's campaign key at its term. */
  fence(): { key: string; createRevision: string } | undefined {
    if (!this.actingNow || !this.myKey || !this.myTerm) return undefined
    return { key: this.myKey, createRevision: this.myTerm }
  }

  /** Starts observing and campaigning; returns at once (both retry in the background). */
  start(): void {
    void this.observe()
    this.campaigning = this.campaign()
  }

  /** Resigns: revokes the campaign lease, so the next candidate leads within a round trip. */
  async resign(): Promise<void> {
    this.stopped = true
    this.setActing(false)
    await this.campaigning?.catch(() => undefined)
    await this.lease?.revoke()
    const watcher = this.watcher
    this.watcher = undefined
    if (watcher) await Promise.race([watcher.cancel().catch(() => undefined), delay(1_000)])
  }

  /** Stops without resigning (what a crash looks like): the key expires after the TTL. */
  abandon(): void {
    this.stopped = true
    this.setActing(false)
    this.lease?.release()
    void this.watcher?.cancel().catch(() => undefined)
  }

  // ------------------------------------------------------------------ campaign

  private async campaign(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const lease = new ManagedLease(this.client, { ttlMs: this.ttlMs })
        const leaseId = await lease.start()
        if (this.stopped) {
          await lease.revoke()
          return
        }
        const key = `${electionPrefix(this.prefix)}${BigInt(leaseId).toString(16)}`
        const result = await this.client
          .if(key, 'Create', '==', 0)
          .then(this.client.put(key).value(this.node).lease(leaseId))
          .commit()
        if (!result.succeeded) throw new Error('campaign key already exists')
        this.lease = lease
        this.myKey = key
        this.myTerm = result.header.revision
        lease.on('keepalive-failed', () => this.setActing(false))
        lease.on('alive', () => void this.refresh())
        lease.on('lost', () => {
          // The key went with the lease: campaign again at the back of the line.
          this.setActing(false)
          this.myKey = undefined
          this.myTerm = undefined
          lease.release()
          if (!this.stopped) this.campaigning = this.campaign()
        })
        await this.refresh()
        return
      } catch (error) {
        const retryInMs = backoffMs(attempt, 250, 5_000)
        this.emit('trouble', `campaign: ${describeCause(error).cause}`, retryInMs)
        await delay(retryInMs)
      }
    }
  }

  // ------------------------------------------------------------------ observe

  private async observe(): Promise<void> {
    if (this.observing) return
    this.observing = true
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const watcher = await this.client.watch().prefix(electionPrefix(this.prefix)).create()
        if (this.stopped) {
          await watcher.cancel().catch(() => undefined)
          return
        }
        this.watcher = watcher
        watcher.on('put', () => void this.refresh())
        watcher.on('delete', () => void this.refresh())
        watcher.on('connected', () => void this.refresh())
        // The watcher's own 'disconnected' is the only early sign for followers; act on it.
        watcher.on('disconnected', () => this.emit('trouble', 'observer disconnected from etcd', 0))
        watcher.on('error', () => {
          this.watcher = undefined
          this.observing = false
          if (!this.stopped) void this.observe()
        })
        await this.refresh()
        return
      } catch (error) {
        const retryInMs = backoffMs(attempt, 250, 5_000)
        this.emit('trouble', `observe: ${describeCause(error).cause}`, retryInMs)
        await delay(retryInMs)
      }
    }
  }

  /** Reads who leads now (the lowest create revision under the election prefix). */
  private refresh(): Promise<void> {
    if (this.refreshRunning) {
      this.refreshQueued = true
      return this.refreshRunning
    }
    this.refreshRunning = (async () => {
      do {
        this.refreshQueued = false
        try {
          const response = await this.client
            .getAll()
            .prefix(electionPrefix(this.prefix))
            .sort('Create', 'Ascend')
            .limit(1)
            .exec()
          const kv = response.kvs[0]
          const leader = kv ? { node: kv.value.toString(), term: kv.create_revision, key: kv.key.toString() } : undefined
          if (leader?.key !== this.current?.key || leader?.term !== this.current?.term) {
            this.current = leader
            this.emit('leader', leader)
          }
          const mine = leader !== undefined && leader.key === this.myKey && this.lease?.alive === true
          this.setActing(mine)
        } catch (error) {
          this.setActing(false)
          this.emit('trouble', `reading the leader: ${describeCause(error).cause}`, 500)
          await delay(500)
          this.refreshQueued = !this.stopped
        }
      } while (this.refreshQueued && !this.stopped)
      this.refreshRunning = undefined
    })()
    return this.refreshRunning
  }

  private setActing(acting: boolean): void {
    const next = acting && !this.stopped
    if (next === this.actingNow) return
    this.actingNow = next
    this.emit('acting', next, next ? this.myTerm : undefined)
  }
}

/** Who leads, read once (for `status`). */
export async function readLeader(client: Etcd3, prefix: string): Promise<LeaderInfo | undefined> {
  const response = await client.getAll().prefix(electionPrefix(prefix)).sort('Create', 'Ascend').limit(1).exec()
  const kv = response.kvs[0]
  return kv ? { node: kv.value.toString(), term: kv.create_revision, key: kv.key.toString() } : undefined
}
