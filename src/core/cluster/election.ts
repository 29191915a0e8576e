import { EventEmitter } from 'node:events'
import type { Etcd3, Watcher } from 'etcd3'
import { delay } from '../async.js'
import { withRetries } from '../retry.js'
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
   * Whether this agent may act as leader right now. False once its lease has gone 3/4 of
   * the TTL without a successful renewal (at the latest a quarter TTL before etcd could expire
   * the key and elect someone else) or is known lost; true again once renewed (if it still
   * leads). One failed renewal alone (a dead member answering "refused") doesn't end acting:
   * the lease retries within a fraction of a second.
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
 * early-warning ManagedLease, and `acting` ends while a quarter of the TTL is still left.
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
  /** Follows the campaign lease's clock (see armGuard). */
  private guard?: NodeJS.Timeout
  /** Aborts retry waits, so resign() never waits out a backoff. */
  private readonly stopping = new AbortController()

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

  /**
   * Whether this agent may act as leader at this instant. Besides the last `acting` event it
   * asks the lease clock itself: after a stall (GC pause, SIGSTOP) timers fire in a burst, and
   * a check or write due in that burst must not run before the renewal that would reveal the
   * loss has even been sent.
   */
  get isActing(): boolean {
    return this.actingNow && this.leaseSafe()
  }

  get term(): string | undefined {
    return this.isActing ? this.myTerm : undefined
  }

  /** The campaign lease while acting: leader-written records bound to it go with this term. */
  get leaseId(): string | undefined {
    return this.isActing ? this.lease?.id : undefined
  }

  get ttlSeconds(): number {
    return Math.max(1, Math.ceil(this.ttlMs / 1000))
  }

  /** The compare a fenced write must carry: this agent's campaign key at its term. */
  fence(): { key: string; createRevision: string } | undefined {
    if (!this.isActing || !this.myKey || !this.myTerm) return undefined
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
    this.stopping.abort()
    clearTimeout(this.guard)
    this.setActing(false)
    await this.campaigning?.catch(() => undefined)
    const watcher = this.watcher
    this.watcher = undefined
    // Both at once: a graceful stop waits for this before revoking the agent's own lease.
    await Promise.all([this.lease?.revoke(), watcher ? Promise.race([watcher.cancel().catch(() => undefined), delay(1_000)]) : undefined])
  }

  // ------------------------------------------------------------------ campaign

  private async campaign(): Promise<void> {
    await this.retrying('campaign', async () => {
      const lease = new ManagedLease(this.client, { ttlMs: this.ttlMs })
      try {
        const leaseId = await lease.start()
        if (this.stopped) {
          await lease.revoke()
          return
        }
        const key = `${electionPrefix(this.prefix)}${BigInt(leaseId).toString(16)}`
        const term = await this.putCampaignKey(key, leaseId)
        this.lease = lease
        this.myKey = key
        this.myTerm = term
        // A failed renewal is retried at once; acting ends only when the safe margin is gone.
        lease.on('keepalive-failed', () => {
          if (!this.leaseSafe()) this.setActing(false)
        })
        lease.on('alive', () => void this.refresh())
        this.armGuard(lease)
        lease.on('lost', (reason) => {
          // The key went with the lease: campaign again at the back of the line.
          this.setActing(false)
          this.emit('trouble', `campaign lease lost (${reason}); campaigning again`, 0)
          this.myKey = undefined
          this.myTerm = undefined
          // Declared lost locally (no renewal for a TTL) is not always lost in etcd: a new etcd
          // leader extends every lease. Revoke it (a no-op if it expired) so a key nobody acts
          // for doesn't hold the lead for another TTL.
          void lease.revoke()
          if (!this.stopped) this.campaigning = this.campaign()
        })
        await this.refresh()
      } catch (error) {
        // Never leave a lease renewing behind a failed attempt: if the put landed but its
        // answer was lost, the key on it would lead forever with nobody acting for it.
        void lease.revoke()
        throw error
      }
    })
  }

  /** Runs `attempt` until it succeeds or the election stops, with the project's one retry policy. */
  private async retrying(what: string, attempt: () => Promise<void>): Promise<void> {
    await withRetries(attempt, {
      initialMs: 250,
      maxMs: 5_000,
      retryIf: () => !this.stopped,
      onRetry: (error, retryInMs) => this.emit('trouble', `${what}: ${describeCause(error).cause}`, retryInMs),
    }, this.stopping.signal).catch(() => undefined)
  }


  /**
   * Puts the campaign key on a fresh lease; returns its create revision (the term). When the
   * answer is lost (a timeout while etcd elects a new raft leader) the put may still have
   * landed: look before giving up, so the agent keeps its place in line.
   */
  private async putCampaignKey(key: string, leaseId: string): Promise<string> {
    try {
      const result = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(this.node).lease(leaseId))
        .commit()
      if (!result.succeeded) throw new Error(`campaign key ${key} already exists`)
      return result.header.revision
    } catch (error) {
      const kv = (await this.client.get(key).exec().catch(() => undefined))?.kvs[0]
      if (kv && kv.lease === leaseId && kv.value.toString() === this.node) return kv.create_revision
      throw error
    }
  }

  // ------------------------------------------------------------------ observe

  private async observe(): Promise<void> {
    if (this.observing) return
    this.observing = true
    await this.retrying('observe', async () => {
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
    })
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
          const mine = leader !== undefined && leader.key === this.myKey && this.leaseSafe()
          this.setActing(mine)
        } catch (error) {
          // A failed read says nothing about our key: while it exists, no key with a lower
          // create revision can appear, so a leader stays leader. Only the lease decides.
          if (!this.leaseSafe()) this.setActing(false)
          this.emit('trouble', `reading the leader: ${describeCause(error).cause}`, 500)
          await delay(500, this.stopping.signal)
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

  /**
   * True while the campaign lease was renewed less than 3/4 TTL ago. Renewals run every TTL/3
   * with a TTL/4 deadline, so a healthy lease never drops under it, and acting stops a quarter
   * TTL before etcd could expire the key (the renewal time counts from when it was sent).
   */
  private leaseSafe(): boolean {
    const lease = this.lease
    return lease !== undefined && lease.alive && lease.sinceRenewalMs < this.safeMs
  }

  private get safeMs(): number {
    return Math.floor((this.ttlMs * 3) / 4)
  }

  /**
   * Watches the clock of one campaign lease, from the campaign until the lease is lost: acting
   * ends when the safe part runs out unrenewed (a renewal that hangs, a stalled event loop,
   * SIGSTOP), and resumes when a renewal makes it safe again while the key still leads — a
   * late success emits no `alive`, so nothing else would notice.
   */
  private armGuard(lease: ManagedLease): void {
    clearTimeout(this.guard)
    if (this.stopped || this.lease !== lease || lease.id === undefined) return
    const waitMs = this.leaseSafe() ? this.safeMs - lease.sinceRenewalMs + 1 : Math.min(250, Math.max(50, Math.floor(this.ttlMs / 12)))
    this.guard = setTimeout(() => {
      if (this.stopped || this.lease !== lease) return
      if (!this.leaseSafe()) this.setActing(false)
      else if (!this.actingNow && this.myKey !== undefined && this.current?.key === this.myKey) void this.refresh()
      this.armGuard(lease)
    }, waitMs)
    this.guard.unref?.()
  }
}

/** Who leads, read once (for `status`). */
export async function readLeader(client: Etcd3, prefix: string): Promise<LeaderInfo | undefined> {
  const response = await client.getAll().prefix(electionPrefix(prefix)).sort('Create', 'Ascend').limit(1).exec()
  const kv = response.kvs[0]
  return kv ? { node: kv.value.toString(), term: kv.create_revision, key: kv.key.toString() } : undefined
}
