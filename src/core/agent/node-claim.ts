import { randomUUID } from 'node:crypto'
import { readlinkSync } from 'node:fs'
import os from 'node:os'
import { UsageError } from '../errors.js'
import type { ManagedLease } from '../lease.js'
import type { NodeRecord } from '../model.js'
import type { MirrorEntry } from '../prefix-mirror.js'
import type { Registry } from '../registry.js'

export interface NodeIdentity {
  node: string
  version: string
  docker: string
  address?: string
  startedAt: string
}

/** How a claim found the name: free, or an earlier run of this node that is gone. */
export interface ClaimResult {
  lease: string
  /** The lease of the earlier run taken over (its records are ours to rebind), if any. */
  previousLease?: string
}

/** What decides whether the holder of a node name is alive. */
export interface HolderVerdict {
  verdict: 'mine' | 'dead' | 'live' | 'observe'
}

/**
 * The node name claim: `<prefix>/nodes/<node>` on this agent's lease, written only where no
 * live agent holds the name. Every run carries a random `instance` token, so:
 *   - a claim whose commit succeeded but whose reply was lost is recognised on the retry as
 *     our own write (no false "another agent claimed the name");
 *   - a re-put after a lease loss happens only while the key is absent or still ours, never
 *     over a newer agent that took the name meanwhile (then `reclaim` says so);
 *   - two live agents with equal pids (pid 1 in containers with one hostname) are told apart:
 *     a pid is compared only within the same pid namespace; otherwise the holder's lease is
 *     watched, and the name is taken over only when the lease runs out unrenewed.
 */
export class NodeClaim {
  readonly instance = randomUUID()
  private readonly pidNamespace = currentPidNamespace()

  constructor(
    private readonly registry: Registry,
    private readonly lease: ManagedLease,
    private readonly identity: NodeIdentity,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  get key(): string {
    return `${this.registry.prefix}/nodes/${this.identity.node}`
  }

  /**
   * One attempt: grants the lease if none, reads the key, and claims it when free or ours.
   * Throws a UsageError when a live agent holds the name; etcd failures propagate (the caller
   * retries, and the retry recognises a claim that did commit).
   */
  async claimOnce(): Promise<ClaimResult> {
    const leaseId = this.lease.id ?? (await this.lease.start())
    const existing = await this.registry.getNode(this.identity.node)
    let previousLease: string | undefined
    if (existing) {
      if (existing.value.instance === this.instance) {
        // Our own claim committed on an earlier attempt whose reply was lost.
        return { lease: leaseId }
      }
      const verdict = judgeHolder(existing.value, { hostname: os.hostname(), pid: process.pid, pidNamespace: this.pidNamespace, alive: processAlive })
      if (verdict === 'observe' && (await this.holderRenews(existing))) throw this.taken(existing.value)
      if (verdict === 'live') throw this.taken(existing.value)
      previousLease = existing.value.lease !== '0' ? existing.value.lease : undefined
    }
    const [result] = await this.registry.applyGuarded([
      { kind: 'put', key: this.key, value: JSON.stringify(this.record(leaseId)), lease: leaseId, expect: existing ? { modRevision: existing.modRevision } : { absent: true } },
    ])
    if (!result.ok) {
      // Someone wrote the key between our read and our write: read again and judge anew.
      throw new ClaimRaceError()
    }
    return { lease: leaseId, ...(previousLease ? { previousLease } : {}) }
  }

  /**
   * After a new lease was granted: puts the node record back, only where the key is absent or
   * still ours. False when another agent holds the name now (this one must stop).
   */
  async reclaim(): Promise<boolean> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const leaseId = this.lease.id
      if (!leaseId) return true
      const existing = await this.registry.getNode(this.identity.node)
      // Another agent's claim: this one must stop. Our own old record (its lease expiring) is ours to replace.
      if (existing && existing.value.instance !== this.instance) return false
      const [result] = await this.registry.applyGuarded([
        { kind: 'put', key: this.key, value: JSON.stringify(this.record(leaseId)), lease: leaseId, expect: existing ? { modRevision: existing.modRevision } : { absent: true } },
      ])
      if (result.ok) {
        return true
      }
      // The key moved between the read and the write (etcd deleting our expired record, most
      // likely): read it again and judge anew rather than conclude someone took the name.
    }
    throw new ClaimRaceError()
  }

  record(leaseId: string): NodeRecord {
    return {
      schema: 1,
      node: this.identity.node,
      version: this.identity.version,
      pid: process.pid,
      hostname: os.hostname(),
      startedAt: this.identity.startedAt,
      ttl: this.lease.ttlSeconds,
      lease: leaseId,
      docker: this.identity.docker,
      instance: this.instance,
      ...(this.pidNamespace ? { pidNamespace: this.pidNamespace } : {}),
      ...(this.identity.address ? { address: this.identity.address } : {}),
    }
  }

  /** Watches the holder's lease until it runs out (dead) or is seen renewed (live). */
  private async holderRenews(holder: MirrorEntry<NodeRecord>): Promise<boolean> {
    const leaseId = holder.lease
    if (!leaseId || leaseId === '0') return false
    const client = this.registry.client.leaseClient
    let expiresAt: number | undefined
    for (let i = 0; i < 200; i++) {
      const response = await client.leaseTimeToLive({ ID: leaseId })
      const ttl = Number(response.TTL)
      if (ttl <= 0) return false
      const estimate = Date.now() + ttl * 1000
      // TTLs are whole seconds: a jump of more than that is a renewal.
      if (expiresAt !== undefined && estimate - expiresAt > 1_500) return true
      expiresAt = Math.min(expiresAt ?? estimate, estimate)
      await this.sleep(500)
    }
    return true
  }

  private taken(other: NodeRecord): UsageError {
    return new UsageError(`another agent is already running as node ${this.identity.node} (pid ${other.pid} on ${other.hostname}, started ${other.startedAt})`, {
      hint: 'stop that agent, or give this one a unique --node name',
    })
  }
}

/** A claim lost a race with another writer; the caller reads and judges again. */
export class ClaimRaceError extends Error {
  constructor() {
    super('the node record changed while it was being claimed')
  }
}

/**
 * Pure: whether the agent that holds a node name is alive, from what its record says.
 *   - same host and pid namespace, its pid is ours → an earlier run of this very process slot: dead
 *   - same host and pid namespace, its pid runs → live; its pid is gone → dead
 *   - anything else (another host, another container) → watch its lease (`observe`)
 */
export function judgeHolder(
  holder: Pick<NodeRecord, 'hostname' | 'pid' | 'pidNamespace'>,
  self: { hostname: string; pid: number; pidNamespace?: string; alive: (pid: number) => boolean },
): 'dead' | 'live' | 'observe' {
  const sameSpace = holder.hostname === self.hostname && holder.pidNamespace !== undefined && holder.pidNamespace === self.pidNamespace
  if (!sameSpace) return 'observe'
  if (holder.pid === self.pid) return 'dead'
  return self.alive(holder.pid) ? 'live' : 'dead'
}

function currentPidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return undefined
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
