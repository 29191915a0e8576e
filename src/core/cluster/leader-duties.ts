import { EventEmitter } from 'node:events'
import { createCheckAgents, destroyCheckAgents, runStoredCheck, type CheckAgents, type CheckResult } from '../health/checks.js'
import { HealthScheduler } from '../health/scheduler.js'
import { leaderStatePrefix } from '../keys.js'
import type { Health, InstanceRecord } from '../model.js'
import type { Registry } from '../registry.js'
import type { ViewInstance } from '../view/types.js'
import type { RegistryView } from '../view/registry-view.js'
import type { ViewChange } from '../view/view-state.js'
import { maintenanceOf, maintenanceOutput } from '../maintenance.js'
import type { LeaderElection } from './election.js'
import { TermSessions, type TermSession } from './term-sessions.js'

export interface LeaderDutiesOptions {
  ttlMs: number
  deregisterCriticalAfterMs?: number
  checkConcurrency?: number
  /** How often to garbage-collect; default TTL/3 (at least 250 ms, at most 5 s). */
  gcEveryMs?: number
}

export interface LeaderInfoRecord {
  node: string
  term: string
  since: string
  heartbeatAt: string
}

export interface LeaderDutiesEvents {
  /** A leader-only write: `ok` false when the fence refused it (no longer leader, or the record moved on). */
  'fenced-write': [{ key: string; term: string; op: 'put' | 'delete'; ok: boolean; reason: string }]
  'health.changed': [{ service: string; id: string; from: Health['status']; to: Health['status']; output: string }]
  'gc': [{ service: string; id: string; reason: string }]
  'trouble': [message: string]
}

export const leaderInfoKey = (prefix: string): string => `${leaderStatePrefix(prefix)}info`

/**
 * What only the leader does, started when the election says this agent may act and stopped
 * the moment it may not:
 *   - run the checks of `source: manual` instances that carry one (one prober per external
 *     service, like Consul ESM) and write their health;
 *   - garbage-collect `source: docker` records whose node has had no live node record for a
 *     TTL, and manual records critical for longer than --deregister-critical-after;
 *   - keep `<prefix>/leader/info` (node, term, since) fresh.
 * Every write is fenced by the election term, and each is safe to repeat, so two leaders for
 * a moment (one of them refused by the fence) is harmless.
 */
export class LeaderDuties extends EventEmitter<LeaderDutiesEvents> {
  private readonly sessions: TermSessions
  /** When the current term began: a term that pauses (a failed renewal) and resumes keeps it. */
  private termStart?: { term: string; since: string }

  constructor(registry: Registry, view: RegistryView, election: LeaderElection, node: string, options: LeaderDutiesOptions) {
    super()
    this.sessions = new TermSessions(
      election,
      (term) => {
        if (this.termStart?.term !== term) this.termStart = { term, since: new Date().toISOString() }
        return new Session(this, registry, view, election, node, term, this.termStart.since, options)
      },
      (error) => this.emit('trouble', `leader duties: ${(error as Error).message}`),
    )
  }

  get running(): boolean {
    return this.sessions.running
  }

  stop(): void {
    this.sessions.stop()
  }
}

/** One term's worth of leader work; thrown away when the term ends. */
class Session implements TermSession {
  private readonly scheduler: HealthScheduler
  private readonly agents: CheckAgents
  private readonly timers: NodeJS.Timeout[] = []
  /** Monotonic time a node's record was first found missing (clock steps can't shorten a grace). */
  private readonly nodeMissingSince = new Map<string, number>()
  /** Monotonic time this term first saw each manual record critical: a failover restarts the count, never shortens it. */
  private readonly criticalSince = new Map<string, number>()
  private readonly onChange = (change: ViewChange): void => this.onViewChange(change)
  private stopped = false
  /** Gives back the whole registry this term held (a scoped follower's view narrows again). */
  private releaseWhole?: () => void
  private readonly ended = new AbortController()

  constructor(
    private readonly owner: LeaderDuties,
    private readonly registry: Registry,
    private readonly view: RegistryView,
    private readonly election: LeaderElection,
    private readonly node: string,
    readonly term: string,
    private readonly since: string,
    private readonly options: LeaderDutiesOptions,
  ) {
    this.scheduler = new HealthScheduler({ concurrency: options.checkConcurrency })
    this.agents = createCheckAgents()
  }

  async start(): Promise<void> {
    await this.writeLeaderInfo()
    if (this.stopped) return
    this.timers.push(setInterval(() => void this.writeLeaderInfo(), Math.max(1_000, Math.floor(this.options.ttlMs / 3))))
    // The other duties read the whole registry: a follower's scoped view widens first (a relist);
    // a term that ends meanwhile gives the widening up.
    const release = await this.view.holdWhole(this.ended.signal)
    if (!release) return
    if (this.stopped) return release()
    this.releaseWhole = release
    this.scheduler.on('change', ({ id, health }) => void this.writeHealth(id, health))
    this.view.on('change', this.onChange)
    for (const entry of this.view.snapshot().instances) this.onInstance(entry)
    const gcEvery = this.options.gcEveryMs ?? Math.min(5_000, Math.max(250, Math.floor(this.options.ttlMs / 3)))
    this.timers.push(setInterval(() => void this.collectGarbage(), gcEvery))
    void this.collectGarbage()
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.ended.abort()
    this.view.off('change', this.onChange)
    this.releaseWhole?.()
    for (const timer of this.timers) clearInterval(timer)
    this.scheduler.stop()
    destroyCheckAgents(this.agents)
  }

  private onViewChange(change: ViewChange): void {
    if (this.stopped) return
    // A mark set or lifted: every manual record may go in or out of rotation.
    if (change.maintenance) for (const entry of this.view.snapshot().instances) if (entry.record.source === 'manual') void this.syncMaintenance(entry)
    for (const key of change.keys) {
      const entry = this.view.state.instance(key)
      if (entry) this.onInstance(entry)
      else {
        if (this.scheduler.has(key)) this.scheduler.remove(key)
        this.criticalSince.delete(key)
      }
    }
  }

  private onInstance(entry: ViewInstance): void {
    const record = entry.record
    if (record.source === 'manual' && record.health.status === 'critical') {
      if (!this.criticalSince.has(entry.key)) this.criticalSince.set(entry.key, performance.now())
    } else {
      this.criticalSince.delete(entry.key)
    }
    if (record.source === 'manual') void this.syncMaintenance(entry)
    const check = record.check
    if (record.source !== 'manual' || !check || (check.kind !== 'http' && check.kind !== 'tcp')) {
      if (this.scheduler.has(entry.key)) this.scheduler.remove(entry.key)
      return
    }
    this.scheduler.upsert(entry.key, check, () => this.runCheck(entry.key))
    // A re-registration resets health to unknown; put back what the checks already know.
    const known = this.scheduler.health(entry.key)
    if (known && known.status !== 'unknown' && known.status !== record.health.status) void this.writeHealth(entry.key, known)
  }

  private runCheck(key: string): Promise<CheckResult> {
    // Due in the burst of timers after a stall while the lease may have run out: probe nothing
    // until the election has decided (an unknown result counts for nothing).
    if (this.election.fence()?.createRevision !== this.term) return Promise.resolve({ status: 'unknown', output: 'not acting as leader', latencyMs: 0 })
    const check = this.view.state.instance(key)?.record.check
    if (!check) return Promise.resolve({ status: 'unknown', output: 'instance gone', latencyMs: 0 })
    return runStoredCheck(check, { agents: this.agents })
  }

  /**
   * Manual records belong to no agent, so the leader reflects maintenance marks into them: in
   * maintenance while a mark covers them; out of it to what the checks know (or passing when
   * they have no check, or unknown until their check runs).
   */
  private async syncMaintenance(entry: ViewInstance): Promise<void> {
    const record = entry.record
    const found = maintenanceOf(record, this.view.state.maintenance())
    if (found) {
      const output = maintenanceOutput(found)
      if (record.health.status === 'maintenance' && record.health.output === output) return
      const now = new Date().toISOString()
      await this.writeHealth(entry.key, { status: 'maintenance', output, updatedAt: now, since: now }, true)
      return
    }
    if (record.health.status !== 'maintenance') return
    const now = new Date().toISOString()
    const known = this.scheduler.health(entry.key)
    const back: Health = known && known.status !== 'unknown' ? known : record.check ? { status: 'unknown', output: 'not checked yet', updatedAt: now, since: now } : { status: 'passing', output: 'no check', updatedAt: now, since: now }
    await this.writeHealth(entry.key, back, true)
  }

  private async writeHealth(key: string, health: Health, maintenanceChange = false): Promise<void> {
    const entry = this.view.state.instance(key)
    if (!entry || this.stopped) return
    const record = entry.record
    // While a mark covers it, check results don't take it back into rotation.
    if (!maintenanceChange && maintenanceOf(record, this.view.state.maintenance())) return
    if (record.health.status === health.status && record.health.output === health.output) return
    const next: InstanceRecord = {
      ...record,
      health: { status: health.status, output: health.output, updatedAt: health.updatedAt, since: record.health.status === health.status ? record.health.since : health.since },
      updatedAt: new Date().toISOString(),
    }
    const ok = await this.fenced(
      { kind: 'put', key, value: JSON.stringify(next), lease: entry.lease, expect: { modRevision: entry.modRevision } },
      `health ${record.health.status} → ${health.status}`,
    )
    if (ok) this.owner.emit('health.changed', { service: record.service, id: record.id, from: record.health.status, to: health.status, output: health.output })
  }

  private async collectGarbage(): Promise<void> {
    if (this.stopped || !this.view.connected) return
    const snapshot = this.view.snapshot()
    const now = performance.now()
    const live = new Set(snapshot.nodes.map((n) => n.record.node))
    for (const name of [...this.nodeMissingSince.keys()]) if (live.has(name)) this.nodeMissingSince.delete(name)
    for (const entry of snapshot.instances) {
      const record = entry.record
      if (record.source === 'docker' && !live.has(record.node)) {
        const missingSince = this.nodeMissingSince.get(record.node) ?? now
        this.nodeMissingSince.set(record.node, missingSince)
        // Give a starting or restarting agent one TTL to put its node record back.
        if (now - missingSince >= this.options.ttlMs) await this.fencedDelete(entry, `node ${record.node} has no live agent`)
      } else if (record.source === 'manual' && record.health.status === 'critical' && this.options.deregisterCriticalAfterMs !== undefined) {
        const since = this.criticalSince.get(entry.key)
        if (since !== undefined && now - since >= this.options.deregisterCriticalAfterMs) {
          await this.fencedDelete(entry, `critical for longer than ${Math.round(this.options.deregisterCriticalAfterMs / 1000)}s`)
        }
      }
    }
  }

  private async writeLeaderInfo(): Promise<void> {
    if (this.stopped) return
    const info: LeaderInfoRecord = { node: this.node, term: this.term, since: this.since, heartbeatAt: new Date().toISOString() }
    await this.fenced({ kind: 'put', key: leaderInfoKey(this.registry.prefix), value: JSON.stringify(info) }, 'leader heartbeat')
  }

  private async fencedDelete(entry: ViewInstance, reason: string): Promise<void> {
    const ok = await this.fenced({ kind: 'delete', key: entry.key, expect: { modRevision: entry.modRevision } }, reason)
    if (ok) this.owner.emit('gc', { service: entry.record.service, id: entry.record.id, reason })
  }

  /** A write only the current leader may make (and, with a guard, only on the record as read). */
  private async fenced(op: Parameters<Registry['fenced']>[1], reason: string): Promise<boolean> {
    const fence = this.election.fence()
    if (!fence || fence.createRevision !== this.term || this.stopped) return false
    try {
      const ok = await this.registry.fenced(fence, op)
      this.owner.emit('fenced-write', { key: op.key, term: this.term, op: op.kind, ok, reason })
      return ok
    } catch (error) {
      this.owner.emit('trouble', `leader ${op.kind}: ${(error as Error).message}`)
      return false
    }
  }
}
