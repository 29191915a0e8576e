import { EventEmitter } from 'node:events'
import os from 'node:os'
import type Docker from 'dockerode'
import { SWARM_NODE } from '../config.js'
import { SwarmSource, swarmRole, type SwarmRole, type SwarmSnapshot, type SwarmSourceOptions } from '../docker/swarm-source.js'
import { dockerInstanceKey, nodeKey, swarmBase } from '../keys.js'
import { maintenanceOf, maintenanceOutput } from '../maintenance.js'
import type { InstanceRecord, NodeRecord } from '../model.js'
import type { Fence, GuardedOp, Registry } from '../registry.js'
import type { RegistryView } from '../view/registry-view.js'
import type { ViewChange } from '../view/view-state.js'
import { HeldRecords } from '../agent/held.js'
import { planReconcile, type HeldRecord, type WantedInstance } from '../agent/reconcile.js'
import { LeaderElection } from './election.js'
import { TermSessions, type TermSession } from './term-sessions.js'

export interface SwarmDutyOptions extends SwarmSourceOptions {
  version: string
  /** This agent's node name and lease TTL: it campaigns in the Swarm election under them. */
  node: string
  ttlMs: number
  /** The engine's address as the agent names it (for the `swarm` node record). */
  dockerHost: string
  /** How often the engine is asked whether it is a Swarm manager (default 10 s). */
  roleEveryMs?: number
  /** How often the latest snapshot is reconciled again even if nothing changed (drift: a record deleted by hand). Default 30 s. */
  resyncMs?: number
}

/** The engine clients: listings with a request timeout, event streams without one. */
export interface SwarmDockers {
  list: Docker
  events: Docker
}

export interface SwarmDutyEvents {
  registered: [InstanceRecord]
  updated: [InstanceRecord]
  removed: [{ service: string; id: string; reason: string }]
  /** A service whose labels could not be used as given (reported once per distinct problem). */
  problem: [{ service: string; label: string; value: string; reason: string }]
  /** This agent started or stopped leading Swarm registration. */
  acting: [acting: boolean, term: string | undefined]
  trouble: [message: string]
}

/**
 * Docker Swarm services, registered by one agent on a manager. Only managers can list services
 * and tasks, so the agents whose engine is a manager elect a Swarm leader among themselves
 * (a second election, under `<prefix>/swarm/election/`); an agent on a worker, or one whose
 * engine is demoted, does not campaign (and withdraws). The Swarm leader's SwarmSource turns
 * services and tasks into desired instances, and the agent's pure reconciler plans them
 * against what the view (and our own writes) say etcd holds under node `swarm`. Every write is
 * fenced by the Swarm term and bound to its campaign lease, so an ex-leader cannot write and
 * the records go with its lease; the next leader writes the same keys (ids come from task ids).
 * A node record for `swarm` on the same lease keeps the cluster leader's garbage collection off them.
 */
export class SwarmDuty extends EventEmitter<SwarmDutyEvents> {
  private election?: LeaderElection
  private sessions?: TermSessions
  private roleTimer?: NodeJS.Timeout
  private reportedRole?: SwarmRole
  private stopped = false

  constructor(
    private readonly registry: Registry,
    private readonly view: RegistryView,
    private readonly dockers: SwarmDockers,
    private readonly options: SwarmDutyOptions,
  ) {
    super()
  }

  get running(): boolean {
    return this.sessions?.running ?? false
  }

  /** Asks the engine for its role now and every `roleEveryMs`; campaigns while it is a manager. */
  start(): void {
    void this.checkRole()
  }

  /** Stops registering and resigns (the Swarm records go with the campaign lease at once). */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.roleTimer)
    await this.withdraw()
  }

  private get roleEveryMs(): number {
    return this.options.roleEveryMs ?? 10_000
  }

  private async checkRole(): Promise<void> {
    if (this.stopped) return
    let role: SwarmRole | undefined
    try {
      role = await swarmRole(this.dockers.list)
    } catch (error) {
      this.emit('trouble', `swarm: asking the engine for its Swarm role: ${(error as Error).message.split('\n')[0]} (asking again in ${Math.round(this.roleEveryMs / 1000)}s)`)
    }
    if (this.stopped) return
    if (role === 'manager' && !this.election) this.campaign()
    if (role !== undefined && role !== 'manager') {
      if (this.election) await this.withdraw()
      if (this.reportedRole !== role) {
        this.emit('trouble', `--swarm: this engine is ${role === 'worker' ? 'a Swarm worker' : 'not in a Swarm'}; only managers register Swarm services, so this agent does not campaign for it (asking again every ${Math.round(this.roleEveryMs / 1000)}s)`)
      }
    }
    if (role !== undefined) this.reportedRole = role
    if (this.stopped) return
    this.roleTimer = setTimeout(() => void this.checkRole(), this.roleEveryMs)
    this.roleTimer.unref?.()
  }

  private campaign(): void {
    const election = new LeaderElection(this.registry.client, swarmBase(this.registry.prefix), this.options.node, this.options.ttlMs)
    this.election = election
    election.on('acting', (acting, term) => this.emit('acting', acting, term))
    election.on('trouble', (message) => this.emit('trouble', `swarm election: ${message}`))
    this.sessions = new TermSessions(
      election,
      (term) => new SwarmSession(this, this.registry, this.view, election, this.dockers, term, this.options),
      (error) => this.emit('trouble', `swarm: ${(error as Error).message}`),
    )
    election.start()
  }

  private async withdraw(): Promise<void> {
    const election = this.election
    this.sessions?.stop()
    this.sessions = undefined
    this.election = undefined
    await election?.resign()
  }
}

/** How long the view gets to show our `swarm` node record before its absence means it was deleted. */
const NODE_RECHECK_MS = 5_000
/** A session whose first listing failed tries again after this long. */
const RETRY_START_MS = 5_000

/** One term of Swarm registration; thrown away when the term ends. */
class SwarmSession implements TermSession {
  private source?: SwarmSource
  private readonly held: HeldRecords
  private parse?: Awaited<ReturnType<Registry['instanceParser']>>
  private latest?: SwarmSnapshot
  private applying = false
  private again = false
  private stopped = false
  private startTimer?: NodeJS.Timeout
  private retryTimer?: NodeJS.Timeout
  private readonly reported = new Set<string>()
  /** When this session last wrote the `swarm` node record (monotonic ms; 0: not yet). */
  private nodeWrittenAt = 0
  private resyncTimer?: NodeJS.Timeout
  private readonly onViewChange = (change: ViewChange): void => {
    // A maintenance mark set or lifted: Swarm instances go in or out of rotation.
    if (change.maintenance) void this.apply()
  }

  constructor(
    private readonly owner: SwarmDuty,
    private readonly registry: Registry,
    private readonly view: RegistryView,
    private readonly election: LeaderElection,
    private readonly dockers: SwarmDockers,
    readonly term: string,
    private readonly options: SwarmDutyOptions,
  ) {
    this.held = new HeldRecords(() => this.view.state, (raw, key) => this.parse?.(raw, key) ?? { ok: false, reason: 'not started' })
  }

  async start(): Promise<void> {
    try {
      this.parse = await this.registry.instanceParser()
      if (this.stopped) return
      // A retry after a failed start begins afresh.
      this.source?.stop()
      clearInterval(this.resyncTimer)
      this.view.off('change', this.onViewChange)
      this.view.on('change', this.onViewChange)
      this.resyncTimer = setInterval(() => void this.apply(), this.options.resyncMs ?? 30_000)
      this.resyncTimer.unref?.()
      this.source = new SwarmSource(this.dockers.list, this.options, this.dockers.events)
      this.source.on('snapshot', (snapshot) => this.onSnapshot(snapshot))
      this.source.on('error', ({ error, retryInMs }) => this.owner.emit('trouble', `swarm: ${error} (retrying in ${Math.round(retryInMs / 100) / 10}s)`))
      await this.source.start()
    } catch (error) {
      if (this.stopped) return
      this.owner.emit('trouble', `swarm: ${(error as Error).message} (retrying in ${Math.round(RETRY_START_MS / 1000)}s)`)
      this.startTimer = setTimeout(() => void this.start(), RETRY_START_MS)
      this.startTimer.unref?.()
    }
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.startTimer)
    clearTimeout(this.retryTimer)
    clearInterval(this.resyncTimer)
    this.view.off('change', this.onViewChange)
    this.source?.stop()
  }

  private onSnapshot(snapshot: SwarmSnapshot): void {
    this.latest = snapshot
    for (const problem of snapshot.problems) {
      const id = `${problem.service}\0${problem.label}\0${problem.reason}`
      if (this.reported.has(id)) continue
      this.reported.add(id)
      this.owner.emit('problem', problem)
    }
    void this.apply()
  }

  /** Reconciles the latest snapshot; one pass at a time, and one more if a snapshot came meanwhile. */
  private async apply(): Promise<void> {
    if (this.applying) {
      this.again = true
      return
    }
    this.applying = true
    try {
      do {
        this.again = false
        await this.reconcile()
      } while (this.again && !this.stopped)
    } catch (error) {
      this.owner.emit('trouble', `swarm: writing the registry: ${(error as Error).message}`)
      this.retrySoon(1_000)
    } finally {
      this.applying = false
    }
  }

  private async reconcile(): Promise<void> {
    const snapshot = this.latest
    const fence = this.election.fence()
    const leaseId = this.election.leaseId
    if (!snapshot || this.stopped || !fence || fence.createRevision !== this.term || !leaseId) return
    // The `swarm` node record: at the start of the term, and again whenever the view (given a
    // few seconds to show our write) lacks it or shows it on another lease — deleted by hand, the
    // cluster leader would collect every Swarm record a TTL later.
    const nodeSeen = this.view.state.node(nodeKey(this.registry.prefix, SWARM_NODE))
    const settled = performance.now() - this.nodeWrittenAt > NODE_RECHECK_MS
    if (this.nodeWrittenAt === 0 || (settled && this.view.connected && nodeSeen?.lease !== leaseId)) {
      if (await this.writeNode(fence, leaseId)) this.nodeWrittenAt = performance.now()
    }
    if (this.stopped) return
    const prefix = this.registry.prefix
    const marks = this.view.state.maintenance()
    const wanted: WantedInstance[] = snapshot.instances.map((instance) => {
      const found = maintenanceOf({ service: instance.service, id: instance.id, node: SWARM_NODE }, marks)
      return {
        key: dockerInstanceKey(prefix, instance.service, SWARM_NODE, instance.id),
        instance,
        health: found ? { status: 'maintenance', output: maintenanceOutput(found) } : { status: 'passing', output: 'swarm task running' },
      }
    })
    this.held.forgetSeen()
    const scope = new Set<string>(wanted.map((w) => w.key))
    for (const entry of this.view.state.instancesOfNode(SWARM_NODE)) if (entry.record.source === 'docker') scope.add(entry.key)
    for (const key of this.held.keys()) scope.add(key)
    const held = new Map<string, HeldRecord>()
    for (const key of scope) {
      const h = this.held.at(key)
      if (h) held.set(key, h)
    }
    const plan = planReconcile({ node: SWARM_NODE, leaseId, now: new Date().toISOString(), wanted, held, scope })
    const steps = plan.filter((step): step is Exclude<typeof step, { op: 'conflict' }> => step.op !== 'conflict')
    // A conflict that is gone may be reported again if it comes back (and the set stays bounded).
    for (const step of steps) this.reported.delete(`conflict\0${step.key}`)
    for (const step of plan) {
      if (step.op !== 'conflict') continue
      const id = `conflict\0${step.key}`
      if (this.reported.has(id)) continue
      this.reported.add(id)
      this.owner.emit('problem', { service: step.wanted.service, label: 'instance id', value: step.wanted.id, reason: `the key is held by ${step.holder.source === 'manual' ? 'a manual record (register)' : `node ${step.holder.node}`}; left untouched` })
    }
    if (steps.length === 0) return
    const ops: GuardedOp[] = steps.map((step) =>
      step.op === 'put' ? { kind: 'put', key: step.key, value: JSON.stringify(step.record), lease: leaseId, expect: step.expect } : { kind: 'delete', key: step.key, expect: step.expect },
    )
    const results = await this.registry.applyGuarded(ops, { fence })
    let refused = false
    results.forEach((result, i) => {
      const step = steps[i]
      if (!result.ok) {
        if (result.reason === 'moved') {
          this.held.observed(step.key, result.current, result.revision)
          refused = true
        }
        // fenced: no longer leader (the session ends with the term); lease: the election re-campaigns.
        return
      }
      if (step.op === 'delete') {
        this.held.wrote(step.key, result.revision)
        this.owner.emit('removed', { service: step.record.service, id: step.record.id, reason: 'swarm: no running task' })
        return
      }
      this.held.wrote(step.key, result.revision, { record: step.record, lease: leaseId })
      if (step.change === 'registered' || !step.previous) this.owner.emit('registered', step.record)
      else if (step.change !== 'rebind') this.owner.emit('updated', step.record)
    })
    if (refused) this.retrySoon(200)
  }

  /** `<prefix>/nodes/swarm` on the campaign lease: Swarm's records have a live node while a leader writes them. */
  private async writeNode(fence: Fence, leaseId: string): Promise<boolean> {
    const record: NodeRecord = {
      schema: 1,
      node: SWARM_NODE,
      version: this.options.version,
      pid: process.pid,
      hostname: os.hostname(),
      startedAt: new Date().toISOString(),
      ttl: this.election.ttlSeconds,
      lease: leaseId,
      docker: this.options.dockerHost,
      instance: `swarm-term-${this.term}`,
    }
    try {
      return await this.registry.fenced(fence, { kind: 'put', key: nodeKey(this.registry.prefix, SWARM_NODE), value: JSON.stringify(record), lease: leaseId })
    } catch (error) {
      this.owner.emit('trouble', `swarm: writing node ${SWARM_NODE}: ${(error as Error).message}`)
      return false
    }
  }

  private retrySoon(ms: number): void {
    if (this.stopped) return
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => void this.apply(), ms)
    this.retryTimer.unref?.()
  }
}
