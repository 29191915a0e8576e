import { EventEmitter } from 'node:events'
import { EtcdLeaseInvalidError, type Etcd3, type Lease } from 'etcd3'

/** Re-puts after a re-grant run this many at a time, so 1000 keys don't open 1000 calls at once. */
const REPUT_BATCH = 64
/** Keepalives sent at once when retrying after a failed renewal. */
const HEDGED_RENEWALS = 3

export interface ManagedLeaseOptions {
  ttlMs: number
  /** How often to renew; default TTL/3. */
  keepAliveEveryMs?: number
  now?: () => number
}

export interface ManagedLeaseEvents {
  /** A keepalive failed; `aliveForMs` says how much of the TTL may remain. */
  'keepalive-failed': [error: unknown, aliveForMs: number]
  /** A keepalive succeeded again after one or more failed (the same lease lives on). */
  alive: []
  /** The lease is gone (expired or revoked by etcd); keys bound to it are gone too. */
  lost: [reason: string]
  /** A new lease was granted after a loss and every owned key was put again (failed puts are retried). */
  renewed: [leaseId: string]
  /** A put of an owned key failed during recovery; it is retried on the next renewal. */
  error: [error: unknown]
}

/**
 * One lease that the owner keeps alive and never loses quietly.
 *
 * etcd3's own keepalive reports `lost` only after up to 2×TTL. This helper renews with
 * `keepaliveOnce` (with a deadline; each call goes to a randomly chosen member) every TTL/3,
 * retries within a fraction of a second after a failure (so a dead member costs one fast
 * failure, not a third of the TTL), and declares the lease lost as soon as etcd says its TTL
 * is 0 or no renewal has succeeded for a whole TTL. It then grants a new lease and puts every
 * owned key again; keys are deterministic, so a re-put is safe and never duplicates a key.
 */
export class ManagedLease extends EventEmitter<ManagedLeaseEvents> {
  private lease?: Lease
  private leaseId?: string
  private readonly owned = new Map<string, string>()
  /** Owned keys still to be put under the current lease (after a re-grant, or a failed re-put). */
  private readonly pending = new Set<string>()
  /** Keys being re-put right now, and those of them `delete()` removed meanwhile (to delete again). */
  private readonly reputting = new Set<string>()
  private readonly deleted = new Set<string>()
  /** put() calls in flight, by the lease they name (a replaced lease is not revoked under them). */
  private readonly inFlight = new Map<string, number>()
  /** The lease replaced by a re-grant; revoked once every key moved to the new one. */
  private replacedLease?: Lease
  private replacedId?: string
  private recovering = false
  private failing = false
  private timer?: NodeJS.Timeout
  private lastOkAt = 0
  private lostFlag = false
  private closed = false
  private ticking = false
  private readonly now: () => number

  constructor(
    private readonly client: Etcd3,
    private readonly options: ManagedLeaseOptions,
  ) {
    super()
    this.now = options.now ?? (() => performance.now())
  }

  get ttlSeconds(): number {
    return Math.max(1, Math.ceil(this.options.ttlMs / 1000))
  }

  get id(): string | undefined {
    return this.lostFlag ? undefined : this.leaseId
  }

  /** True while a renewal succeeded less than one TTL ago. */
  get alive(): boolean {
    return !this.lostFlag && this.leaseId !== undefined && this.now() - this.lastOkAt < this.options.ttlMs
  }

  /** Milliseconds since the last successful renewal. */
  get sinceRenewalMs(): number {
    return this.now() - this.lastOkAt
  }

  /** Grants the lease and starts renewing it. Throws if etcd can't be reached. */
  async start(): Promise<string> {
    const id = await this.grant()
    this.schedule(this.renewEveryMs)
    return id
  }

  /**
   * Puts a key bound to this lease and remembers it, so it is put again after a loss. When the
   * lease is lost (before or during the call) the key is queued for the re-put that follows the
   * re-grant instead of failing: the caller's key lands either way. Rejects on network errors.
   */
  async put(key: string, value: string): Promise<void> {
    if (this.closed) throw new Error('lease is closed (revoked or released)')
    this.owned.set(key, value)
    this.deleted.delete(key)
    if (this.leaseId === undefined) throw new Error('lease is not granted (not started)')
    if (this.lostFlag) {
      this.pending.add(key)
      return
    }
    const id = this.leaseId
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1)
    try {
      await this.client.put(key).value(value).lease(id).exec()
    } catch (error) {
      // A re-grant while the call was out: whatever became of it, the re-put covers this key
      // (a put that landed on the replaced lease but whose reply was lost included).
      if (id !== this.leaseId) {
        this.requeue(key)
        return
      }
      if (!(error instanceof EtcdLeaseInvalidError)) throw error
      // etcd no longer knows the lease: recover now (this key is owned, so it is re-put).
      this.markLost('etcd reports the lease expired')
      return
    } finally {
      const left = (this.inFlight.get(id) ?? 1) - 1
      if (left > 0) this.inFlight.set(id, left)
      else this.inFlight.delete(id)
    }
    // delete() ran while the call was out: the put may have landed after it.
    if (!this.owned.has(key)) {
      await this.client.delete().key(key).exec()
      return
    }
    // Landed on a lease replaced while the call was in flight: move it to the current one
    // (the replaced lease is revoked once nothing is left on it).
    if (id !== this.leaseId) this.requeue(key)
  }

  /** Queues an owned key for the next flush under the current lease. */
  private requeue(key: string): void {
    if (!this.owned.has(key) || this.closed) return
    this.pending.add(key)
    if (!this.ticking) this.schedule(0)
  }

  /** Forgets a key and deletes it from etcd. */
  async delete(key: string): Promise<void> {
    this.owned.delete(key)
    this.pending.delete(key)
    if (this.reputting.has(key)) this.deleted.add(key)
    await this.client.delete().key(key).exec()
  }

  /** Forgets a key without touching etcd (someone else removed it or owns it now). */
  forget(key: string): void {
    this.owned.delete(key)
    this.pending.delete(key)
    this.deleted.delete(key)
  }

  /** Remembers a key whose write the caller made itself (e.g. in a guarded transaction). */
  remember(key: string, value: string): void {
    this.owned.set(key, value)
    this.deleted.delete(key)
  }


  /** A write bound to `leaseId` was refused because etcd no longer knows the lease: recover now. */
  reportInvalid(leaseId: string): void {
    if (leaseId === this.leaseId) this.markLost('etcd reports the lease expired')
  }

  /** Stops renewing and revokes: every key bound to the lease vanishes at once. */
  async revoke(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    const leases = [this.lease, this.replacedLease].filter((l): l is Lease => l !== undefined)
    this.lease = undefined
    this.replacedLease = undefined
    // Revoking a lease etcd already dropped is harmless (etcd3 ignores "lease not found").
    await Promise.all(leases.map((lease) => lease.revoke({ deadline: Date.now() + 2_000 }).catch(() => undefined)))
  }

  /** Stops renewing without revoking: keys expire after the TTL (what a crash looks like). */
  release(): void {
    this.closed = true
    clearTimeout(this.timer)
    this.lease?.release()
    this.replacedLease?.release()
  }

  private get renewEveryMs(): number {
    return this.options.keepAliveEveryMs ?? Math.max(200, Math.floor(this.options.ttlMs / 3))
  }

  /** After a failure, try again soon: the next call most likely goes to a healthy member. */
  private get retryEveryMs(): number {
    return Math.min(this.renewEveryMs, 250)
  }

  private async grant(): Promise<string> {
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false })
    // etcd3 reports grant failures through the promise; keep its emitter from throwing.
    lease.on('lost', () => undefined)
    // The TTL runs from when etcd granted it, which is no earlier than now.
    const sentAt = this.now()
    const id = await lease.grant()
    this.lease = lease
    this.leaseId = id
    this.lastOkAt = sentAt
    this.lostFlag = false
    this.failing = false
    return id
  }

  private schedule(delayMs: number): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.tick(), delayMs)
    this.timer.unref?.()
  }

  private async tick(): Promise<void> {
    if (this.closed || this.ticking) return
    this.ticking = true
    let ok = true
    try {
      if (!this.lostFlag) ok = await this.renew()
      if (this.lostFlag && !this.closed) ok = await this.recover()
      if (!this.lostFlag && !this.closed && (this.pending.size > 0 || this.recovering)) ok = (await this.flushPending()) && ok
    } catch (error) {
      // Nothing above should throw; if it does, keep renewing rather than die silently.
      ok = false
      if (this.listenerCount('error') > 0) this.emit('error', error)
    } finally {
      this.ticking = false
      // Keys queued while this tick ran (a put that landed on a replaced lease) go at once.
      const queued = ok && this.pending.size > 0 && !this.lostFlag
      this.schedule(queued ? 0 : ok ? this.renewEveryMs : this.retryEveryMs)
    }
  }

  /** One keepalive; true when it succeeded (or the lease is known lost and recovery should run). */
  private async renew(): Promise<boolean> {
    const lease = this.lease
    if (!lease) return true
    // Short per-call deadline so a frozen member costs a fraction of the TTL, not all of it.
    const deadlineMs = Math.max(300, Math.floor(this.options.ttlMs / 4))
    const sentAt = this.now()
    try {
      // After a failure the retry is hedged: etcd3 sends each call to a member of its own choice,
      // so with one member frozen, one call waiting out its deadline there no longer starves the
      // lease — the first answer wins (two misses in a row used to outlast a short TTL).
      const calls = Array.from({ length: this.failing ? HEDGED_RENEWALS : 1 }, () => lease.keepaliveOnce({ deadline: Date.now() + deadlineMs }))
      const response = await Promise.any(calls).catch((error: unknown) => {
        throw error instanceof AggregateError ? (error.errors.find((e) => e instanceof EtcdLeaseInvalidError) ?? error.errors[0]) : error
      })
      if (lease !== this.lease) return true
      if (Number(response.TTL) <= 0) {
        this.markLost('etcd reports the lease expired')
        return true
      }
      this.lastOkAt = sentAt
      if (this.failing) {
        this.failing = false
        this.emit('alive')
      }
      return true
    } catch (error) {
      if (lease !== this.lease || this.closed) return true
      if (error instanceof EtcdLeaseInvalidError) {
        this.markLost('etcd reports the lease expired')
        return true
      }
      this.failing = true
      const aliveFor = this.options.ttlMs - this.sinceRenewalMs
      this.emit('keepalive-failed', error, Math.max(0, aliveFor))
      if (aliveFor <= 0) this.markLost(`no renewal for ${Math.round(this.sinceRenewalMs)} ms (TTL ${this.options.ttlMs} ms)`)
      return false
    }
  }

  private markLost(reason: string): void {
    if (this.lostFlag || this.closed) return
    this.lostFlag = true
    this.lease?.release()
    this.emit('lost', reason)
    // Recover at once rather than after a whole renewal interval (unless a tick is running: it will).
    if (!this.ticking) this.schedule(0)
  }

  /** Grants a new lease and queues every owned key to be put under it; false if etcd is still unreachable. */
  private async recover(): Promise<boolean> {
    const old = this.lease
    const oldId = this.leaseId
    try {
      await this.grant()
    } catch {
      return false
    }
    if (this.closed) {
      // revoke() ran while the grant was in flight: don't leave a lease nobody renews or revokes.
      await this.lease?.revoke({ deadline: Date.now() + 2_000 }).catch(() => undefined)
      return true
    }
    if (old && old !== this.lease) {
      this.replacedLease = old
      this.replacedId = oldId
    }
    for (const key of this.owned.keys()) this.pending.add(key)
    this.recovering = true
    return true
  }

  /** Puts every pending key under the current lease, a batch at a time; true when none failed. */
  private async flushPending(): Promise<boolean> {
    const id = this.leaseId!
    const keys = [...this.pending]
    let allOk = true
    for (let i = 0; i < keys.length && !this.lostFlag && !this.closed; i += REPUT_BATCH) {
      const results = await Promise.all(keys.slice(i, i + REPUT_BATCH).map((key) => this.reput(key, id)))
      allOk &&= results.every(Boolean)
    }
    if (this.lostFlag || this.closed) return allOk
    if (this.recovering) {
      // One full pass done: report it; keys that failed stay pending and are retried.
      this.recovering = false
      this.emit('renewed', id)
    }
    if (this.pending.size === 0 && this.replacedLease && !this.inFlight.has(this.replacedId ?? '')) {
      // Every key moved to the new lease, so the old one holds none: drop it if etcd still has it.
      const replaced = this.replacedLease
      this.replacedLease = undefined
      void replaced.revoke({ deadline: Date.now() + 2_000 }).catch(() => undefined)
    }
    return allOk
  }

  private async reput(key: string, id: string): Promise<boolean> {
    const value = this.owned.get(key)
    if (value === undefined) {
      this.pending.delete(key)
      return true
    }
    this.reputting.add(key)
    try {
      await this.client.put(key).value(value).lease(id).exec()
      if (this.owned.get(key) === value) this.pending.delete(key)
      // delete() ran while this put was in flight: the put may have landed after it.
      if (this.deleted.has(key)) await this.client.delete().key(key).exec()
      return true
    } catch (error) {
      if (error instanceof EtcdLeaseInvalidError && id === this.leaseId) this.markLost('etcd reports the lease expired')
      if (!this.closed && this.listenerCount('error') > 0) this.emit('error', error)
      return false
    } finally {
      this.reputting.delete(key)
      this.deleted.delete(key)
    }
  }
}
