import { EventEmitter } from 'node:events'
import type { Etcd3 } from 'etcd3'
import { backoffMs, delay } from '../async.js'
import { describeCause } from '../etcd.js'
import { createCheckAgents, destroyCheckAgents, runStoredCheck, type CheckAgents, type CheckResult } from '../health/checks.js'
import { HealthScheduler } from '../health/scheduler.js'
import { leaderStatePrefix } from '../keys.js'
import type { Health, InstanceRecord, NodeRecord } from '../model.js'
import type { MirrorEntry, PrefixMirror } from '../prefix-mirror.js'
import { Registry } from '../registry.js'
import type { LeaderElection } from './election.js'

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
  private session?: Session
  /** When the current term began: a term that pauses (a failed renewal) and resumes keeps it. */
  private termStart?: { term: string; since: string }

  constructor(
    private readonly registry: Registry,
    private readonly election: LeaderElection,
    private readonly node: string,
    private readonly options: LeaderDutiesOptions,
  ) {
    super()
    election.on('acting', (acting, term) => {
      if (acting && term) this.begin(term)
      else this.end()
    })
  }

  get running(): boolean {
    return this.session !== undefined
  }

  stop(): void {
    this.end()
  }

  private begin(term: string): void {
    if (this.session?.term === term) return
    this.end()
    if (this.termStart?.term !== term) this.termStart = { term, since: new Date().toISOString() }
    this.session = new Session(this, this.registry, this.election, this.node, term, this.termStart.since, this.options)
    void this.session.start().catch((error) => this.emit('trouble', `leader duties: ${(error as Error).message}`))
  }

  private end(): void {
    const session = this.session
    this.session = undefined
    session?.stop()
  }
}

/** One term's worth of leader work; thrown away when the term ends. */
class Session {
  private instances?: PrefixMirror<InstanceRecord>
  private nodes?: PrefixMirror<NodeRecord>
  private readonly scheduler: HealthScheduler
  private readonly agents: CheckAgents
  private readonly timers: NodeJS.Timeout[] = []
  private readonly nodeMissingSince = new Map<string, number>()
  private stopped = false
  private readonly client: Etcd3

  constructor(
    private readonly owner: LeaderDuties,
    private readonly registry: Registry,
    private readonly election: LeaderElection,
    private readonly node: string,
    readonly term: string,
    private readonly since: string,
    private readonly options: LeaderDutiesOptions,
  ) {
    this.client = registry.client
    this.scheduler = new HealthScheduler({ concurrency: options.checkConcurrency })
    this.agents = createCheckAgents()
  }

  async start(): Promise<void> {
    await this.writeLeaderInfo()
    // Stopped while the first write was in flight: open no watchers that stop() can't close.
    if (this.stopped) return
    this.timers.push(setInterval(() => void this.writeLeaderInfo(), Math.max(1_000, Math.floor(this.options.ttlMs / 3))))
    this.scheduler.on('change', ({ id, health }) => void this.writeHealth(id, health))
    // A term that begins during an etcd hiccup must not go without checks and GC for its whole
    // length: load the mirrors until it works (or the term ends).
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.openMirrors()
        break
      } catch (error) {
        this.closeMirrors()
        const retryInMs = backoffMs(attempt, 250, 5_000)
        this.owner.emit('trouble', `leader duties: loading the registry failed (${describeCause(error).cause}); retrying in ${retryInMs} ms`)
        await delay(retryInMs)
      }
    }
    if (this.stopped) return this.closeMirrors()
    const gcEvery = this.options.gcEveryMs ?? Math.min(5_000, Math.max(250, Math.floor(this.options.ttlMs / 3)))
    this.timers.push(setInterval(() => void this.collectGarbage(), gcEvery))
    void this.collectGarbage()
  }

  private async openMirrors(): Promise<void> {
    const instances = this.registry.watchInstances()
    const nodes = this.registry.watchNodes()
    this.instances = instances
    this.nodes = nodes
    instances.on('put', (entry) => this.onInstance(entry))
    // The grace TTL of a node runs from when its node record went (or an orphan appeared), not
    // from the next collection pass; what the first load finds starts its grace at that load.
    nodes.on('delete', ({ value }) => {
      if (!this.nodeMissingSince.has(value.node)) this.nodeMissingSince.set(value.node, Date.now())
    })
    nodes.on('put', ({ value }) => this.nodeMissingSince.delete(value.node))
    instances.on('delete', (entry) => {
      if (this.scheduler.has(entry.key)) this.scheduler.remove(entry.key)
    })
    await nodes.start()
    await instances.start()
  }

  private closeMirrors(): void {
    void this.instances?.close()
    void this.nodes?.close()
    this.instances = undefined
    this.nodes = undefined
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    for (const timer of this.timers) clearInterval(timer)
    this.scheduler.stop()
    destroyCheckAgents(this.agents)
    this.closeMirrors()
  }

  private onInstance(entry: MirrorEntry<InstanceRecord>): void {
    if (this.stopped) return
    const record = entry.value
    if (record.source === 'docker' && this.nodes && !this.nodeMissingSince.has(record.node) && !this.nodes.values().some((n) => n.node === record.node)) {
      this.nodeMissingSince.set(record.node, Date.now())
    }
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
    const record = this.instances?.get(key)?.value
    const check = record?.check
    if (!check) return Promise.resolve({ status: 'unknown', output: 'instance gone', latencyMs: 0 })
    return runStoredCheck(check, { agents: this.agents })
  }

  private async writeHealth(key: string, health: Health): Promise<void> {
    const entry = this.instances?.get(key)
    if (!entry || this.stopped) return
    const record = entry.value
    if (record.health.status === health.status && record.health.output === health.output) return
    const next: InstanceRecord = {
      ...record,
      health: { status: health.status, output: health.output, updatedAt: health.updatedAt, since: record.health.status === health.status ? record.health.since : health.since },
      updatedAt: new Date().toISOString(),
    }
    const ok = await this.fencedPut(key, JSON.stringify(next), entry.modRevision, entry.lease, `health ${record.health.status} → ${health.status}`)
    if (ok) this.owner.emit('health.changed', { service: record.service, id: record.id, from: record.health.status, to: health.status, output: health.output })
  }

  private async collectGarbage(): Promise<void> {
    if (this.stopped || !this.instances || !this.nodes) return
    const now = Date.now()
    const live = new Set(this.nodes.values().map((n) => n.node))
    for (const name of [...this.nodeMissingSince.keys()]) if (live.has(name)) this.nodeMissingSince.delete(name)
    for (const entry of this.instances.list()) {
      const record = entry.value
      if (record.source === 'docker' && !live.has(record.node)) {
        const missingSince = this.nodeMissingSince.get(record.node) ?? now
        this.nodeMissingSince.set(record.node, missingSince)
        // Give a starting or restarting agent one TTL to put its node record back.
        if (now - missingSince >= this.options.ttlMs) {
          await this.fencedDelete(entry, `node ${record.node} has no live agent`)
        }
      } else if (record.source === 'manual' && record.health.status === 'critical' && this.options.deregisterCriticalAfterMs !== undefined) {
        if (now - Date.parse(record.health.since) >= this.options.deregisterCriticalAfterMs) {
          await this.fencedDelete(entry, `critical for longer than ${Math.round(this.options.deregisterCriticalAfterMs / 1000)}s`)
        }
      }
    }
  }

  private async writeLeaderInfo(): Promise<void> {
    if (this.stopped) return
    const info: LeaderInfoRecord = { node: this.node, term: this.term, since: this.since, heartbeatAt: new Date().toISOString() }
    await this.fencedPut(leaderInfoKey(this.registry.prefix), JSON.stringify(info), undefined, '0', 'leader heartbeat')
  }

  private async fencedDelete(entry: MirrorEntry<InstanceRecord>, reason: string): Promise<void> {
    const fence = this.election.fence()
    if (!fence || fence.createRevision !== this.term || this.stopped) return
    try {
      const result = await this.client
        .if(fence.key, 'Create', '==', fence.createRevision)
        .and(entry.key, 'Mod', '==', entry.modRevision)
        .then(this.client.delete().key(entry.key))
        .commit()
      this.owner.emit('fenced-write', { key: entry.key, term: this.term, op: 'delete', ok: result.succeeded, reason })
      if (result.succeeded) this.owner.emit('gc', { service: entry.value.service, id: entry.value.id, reason })
    } catch (error) {
      this.owner.emit('trouble', `garbage collection: ${(error as Error).message}`)
    }
  }

  /** A put only the current leader may make; with `expectMod`, only if the record is unchanged since read. */
  private async fencedPut(key: string, value: string, expectMod: string | undefined, lease: string, reason: string): Promise<boolean> {
    const fence = this.election.fence()
    if (!fence || fence.createRevision !== this.term || this.stopped) return false
    try {
      let txn = this.client.if(fence.key, 'Create', '==', fence.createRevision)
      if (expectMod) txn = txn.and(key, 'Mod', '==', expectMod)
      const put = this.client.put(key).value(value)
      const result = await txn.then(lease && lease !== '0' ? put.lease(lease) : put).commit()
      this.owner.emit('fenced-write', { key, term: this.term, op: 'put', ok: result.succeeded, reason })
      return result.succeeded
    } catch (error) {
      this.owner.emit('trouble', `leader write: ${(error as Error).message}`)
      return false
    }
  }
}
