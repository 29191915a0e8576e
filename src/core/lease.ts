import { EventEmitter } from 'node:events'
import type { Etcd3, Lease } from 'etcd3'

export interface ManagedLeaseOptions {
  ttlMs: number
  /** How often to renew; default TTL/3 as DESIGN.md says. */
  keepAliveEveryMs?: number
  now?: () => number
}

export interface ManagedLeaseEvents {
  /** A keepalive failed; `aliveForMs` says how much of the TTL may remain. */
  'keepalive-failed': [error: unknown, aliveForMs: number]
  /** The lease is gone (expired or revoked by etcd); keys bound to it are gone too. */
  lost: [reason: string]
  /** A new lease was granted after a loss and every owned key was put again. */
  renewed: [leaseId: string]
  /** A renewal succeeded after one or more failed (etcd is reachable again). */
  alive: []
  /** A put of an owned key failed during recovery. */
  error: [error: unknown]
}

/**
 * One lease that the owner keeps alive and never loses quietly.
 *
 * etcd3's own keepalive reports `lost` only after up to 2×TTL. This helper renews with
 * `keepaliveOnce` (with a deadline, and retried on another member by the client's policy)
 * every TTL/3, and declares the lease lost as soon as etcd says its TTL is 0 or no renewal
 * has succeeded for a whole TTL. It then grants a new lease and puts every owned key again;
 * keys are deterministic, so a re-put is safe.
 */
export class ManagedLease extends EventEmitter<ManagedLeaseEvents> {
  private lease?: Lease
  private leaseId?: string
  private readonly owned = new Map<string, string>()
  private timer?: NodeJS.Timeout
  private lastOkAt = 0
  private lostFlag = false
  private closed = false
  private ticking = false
  private failing = false
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
    this.schedule()
    return id
  }

  /** Puts a key bound to this lease and remembers it, so it is put again after a loss. */
  async put(key: string, value: string): Promise<void> {
    this.owned.set(key, value)
    const id = this.requireId()
    await this.client.put(key).value(value).lease(id).exec()
  }

  /** Forgets a key and deletes it from etcd. */
  async delete(key: string): Promise<void> {
    this.owned.delete(key)
    await this.client.delete().key(key).exec()
  }

  /** Forgets a key without touching etcd (someone else removed it or owns it now). */
  forget(key: string): void {
    this.owned.delete(key)
  }

  /** Remembers a key whose write the caller made itself (e.g. in a guarded transaction). */
  remember(key: string, value: string): void {
    this.owned.set(key, value)
  }

  ownedKeys(): ReadonlyMap<string, string> {
    return this.owned
  }

  /** Stops renewing and revokes: every key bound to the lease vanishes at once. */
  async revoke(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    const lease = this.lease
    this.lease = undefined
    if (lease && !this.lostFlag) await lease.revoke({ deadline: Date.now() + 2_000 }).catch(() => undefined)
  }

  /** Stops renewing without revoking: keys expire after the TTL (what a crash looks like). */
  release(): void {
    this.closed = true
    clearTimeout(this.timer)
    this.lease?.release()
  }

  private requireId(): string {
    if (this.leaseId === undefined || this.lostFlag) throw new Error('lease is not granted (lost or not started)')
    return this.leaseId
  }

  private async grant(): Promise<string> {
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false })
    // etcd3 reports grant failures through the promise; keep its emitter from throwing.
    lease.on('lost', () => undefined)
    const id = await lease.grant()
    this.lease = lease
    this.leaseId = id
    this.lastOkAt = this.now()
    this.lostFlag = false
    return id
  }

  private schedule(): void {
    if (this.closed) return
    const every = this.options.keepAliveEveryMs ?? Math.max(200, Math.floor(this.options.ttlMs / 3))
    this.timer = setTimeout(() => void this.tick(), every)
    this.timer.unref?.()
  }

  private async tick(): Promise<void> {
    if (this.closed || this.ticking) return
    this.ticking = true
    try {
      if (this.lostFlag) {
        await this.recover()
      } else {
        await this.renew()
      }
    } finally {
      this.ticking = false
      this.schedule()
    }
  }

  private async renew(): Promise<void> {
    const lease = this.lease
    if (!lease) return
    const budget = Math.max(500, Math.floor(this.options.ttlMs / 3))
    try {
      const response = await lease.keepaliveOnce({ deadline: Date.now() + budget })
      if (Number(response.TTL) <= 0) return this.markLost('etcd reports the lease expired')
      this.lastOkAt = this.now()
      if (this.failing) {
        this.failing = false
        this.emit('alive')
      }
    } catch (error) {
      const name = (error as Error)?.name
      if (name === 'EtcdLeaseInvalidError') return this.markLost('etcd reports the lease expired')
      const aliveFor = this.options.ttlMs - this.sinceRenewalMs
      this.failing = true
      this.emit('keepalive-failed', error, Math.max(0, aliveFor))
      if (aliveFor <= 0) this.markLost(`no renewal for ${Math.round(this.sinceRenewalMs)} ms (TTL ${this.options.ttlMs} ms)`)
    }
  }

  private markLost(reason: string): void {
    if (this.lostFlag) return
    this.lostFlag = true
    this.lease?.release()
    this.emit('lost', reason)
    // Try at once rather than after a whole renewal interval.
    setImmediate(() => void this.tick())
  }

  private async recover(): Promise<void> {
    try {
      await this.grant()
    } catch {
      return // etcd still unreachable; next tick tries again
    }
    const id = this.leaseId!
    for (const [key, value] of this.owned) {
      try {
        await this.client.put(key).value(value).lease(id).exec()
      } catch (error) {
        this.emit('error', error)
      }
    }
    this.emit('renewed', id)
  }
}
