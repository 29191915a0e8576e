import { EventEmitter } from 'node:events'
import type Docker from 'dockerode'
import { HOT_SETTINGS, type Config } from '../config.js'
import { diffConfig } from '../config-diff.js'
import { createDockerClient } from '../docker/client.js'
import { containerToInstances, type BuildOptions, type LabelProblem } from '../docker/instances.js'
import type { ContainerSnapshot } from '../docker/snapshot.js'
import { formatContainerFilters } from '../docker/container-filter.js'
import { DockerSource, type ContainerEvent, type InspectedContainer } from '../docker/source.js'
import { describeCause, explainEtcdFailure } from '../etcd.js'
import { UsageError } from '../errors.js'
import { clip } from '../validate.js'
import { createCheckAgents, destroyCheckAgents, runStoredCheck, type CheckAgents, type CheckResult } from '../health/checks.js'
import { HealthScheduler } from '../health/scheduler.js'
import { dockerInstanceKey } from '../keys.js'
import { ManagedLease } from '../lease.js'
import type { DesiredInstance, InstanceRecord, ParseResult } from '../model.js'
import { primaryIPv4 } from '../net.js'
import type { GuardedOp, Registry } from '../registry.js'
import { HeldRecords } from './held.js'
import { withRetries } from '../retry.js'
import type { RegistryView } from '../view/registry-view.js'
import type { ViewChange } from '../view/view-state.js'
import { maintenanceOf, maintenanceOutput } from '../maintenance.js'
import type { AgentEvent } from './events.js'
import { ClaimRaceError, NodeClaim } from './node-claim.js'
import { planReconcile, sourcedHealth, type HeldRecord, type PlanStep, type WantedInstance } from './reconcile.js'

export interface AgentOptions {
  config: Config
  version: string
  /** The process's registry adapter and its one view, opened by the lifecycle owner. */
  registry: Registry
  view: RegistryView
  /** Override for tests; default: the host's primary IPv4. */
  hostAddress?: string
  /** Injected for tests; default: a client from config.docker without a timeout. */
  docker?: Docker
  /** Monotonic clock in ms (tests fake it); default performance.now. */
  clock?: () => number
}

/** One run of a container, as its last pass saw it. */
interface ContainerRun {
  name: string
  startedAt: string
  instances: { key: string; instance: DesiredInstance }[]
  paused: boolean
  dockerHealth?: ContainerSnapshot['state']['health']
  stopTimeoutMs?: number
  /** The container's `discovery.maintenance` label: its instances are out of rotation, with this reason. */
  maintenance?: string
}

/** A terminating `kill`: instances withdrawn until the container dies or the grace period ends. */
interface Drain {
  startedAt?: string
  /** Monotonic time after which a container still running gets its instances back. */
  until: number
  timer: NodeJS.Timeout
}

/** The one worker of a container: passes run one at a time, and events during a pass collapse into one more. */
interface WorkSlot {
  running: Promise<void>
  again: boolean
  /** Monotonic time the oldest event not yet handled arrived (undefined: a resync pass). */
  pendingSince?: number
}

/** Our acknowledged write, until the view has caught up with it. */

/** Signals that end a process; a `kill` with another signal (HUP for a reload, USR1…) is not a stop. */
const TERMINATING_SIGNALS = new Set(['9', '15', '2', '3', 'SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT', 'KILL', 'TERM', 'INT', 'QUIT'])
const INSPECT_CONCURRENCY = 8
/** Docker's own default for `docker stop`. */
const DEFAULT_STOP_GRACE_MS = 10_000

/**
 * The agent loop: Docker's truth → desired instances (builder) → plan (reconciler) → etcd
 * (registry), level-triggered.
 *
 * Events say which container to look at now (inspected and written at once: no debounce);
 * a full resync after every (re)connect and every `resync` interval makes etcd equal to what
 * runs, whatever events were missed. What etcd holds comes from the process's one registry
 * view (plus our own writes it has not shown yet); this loop keeps only what Docker said.
 */
export class Agent extends EventEmitter<{ event: [AgentEvent]; fatal: [Error] }> {
  private config: Config
  private readonly registry: Registry
  private readonly view: RegistryView
  private readonly lease: ManagedLease
  private readonly claim: NodeClaim
  private readonly docker: Docker
  private readonly source: DockerSource
  private readonly scheduler: HealthScheduler
  private readonly checkAgents: CheckAgents
  private buildOptions: BuildOptions
  private readonly clock: () => number
  private readonly containers = new Map<string, ContainerRun>()
  /** Which container backs each key of this node. */
  private readonly keyOwner = new Map<string, string>()
  private readonly draining = new Map<string, Drain>()
  private readonly reportedProblems = new Map<string, Set<string>>()
  private readonly reportedConflicts = new Set<string>()
  /** Monotonic time each key turned critical, for --deregister-critical-after. */
  private readonly criticalSince = new Map<string, number>()
  /** Keys withdrawn by --deregister-critical-after until their health is no longer critical. */
  private readonly withheld = new Set<string>()
  /** What etcd holds at this node's keys: the view, or our writes and read-backs it has not caught up with. */
  private readonly held: HeldRecords
  private parse?: (raw: string, key: string) => ParseResult<InstanceRecord>
  private readonly work = new Map<string, WorkSlot>()
  private readonly tally = { written: 0, removed: 0 }
  private readonly aborter = new AbortController()
  private retryTimer?: NodeJS.Timeout
  private resyncTimer?: NodeJS.Timeout
  private criticalTimer?: NodeJS.Timeout
  private resyncing?: Promise<void>
  private resyncAgain = false
  private previousLease?: string
  private stopped = false
  private etcdUp = true
  private dockerUp = false

  constructor(private readonly options: AgentOptions) {
    super()
    this.config = options.config
    this.registry = options.registry
    this.view = options.view
    this.held = new HeldRecords(() => this.view.state, (raw, key) => this.parse?.(raw, key) ?? { ok: false, reason: 'not started' })
    this.clock = options.clock ?? (() => performance.now())
    this.lease = new ManagedLease(this.registry.client, { ttlMs: this.config.agent.ttlMs })
    this.docker = options.docker ?? createDockerClient(this.config.docker)
    this.source = new DockerSource(this.docker, this.config.agent.containerFilters)
    this.scheduler = new HealthScheduler({ concurrency: this.config.agent.checkConcurrency })
    this.checkAgents = createCheckAgents()
    const hostAddress = options.hostAddress ?? primaryIPv4()
    this.buildOptions = buildOptionsOf(this.config, hostAddress)
    this.claim = new NodeClaim(
      this.registry,
      this.lease,
      { node: this.config.node, version: options.version, docker: this.config.docker.host, address: this.config.agent.advertiseAddress ?? hostAddress, startedAt: new Date().toISOString() },
      (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    )
  }

  get node(): string {
    return this.config.node
  }

  /** The configuration in force. */
  get currentConfig(): Config {
    return this.config
  }

  /**
   * Applies a new configuration while running: all of it or nothing. Only settings in
   * HOT_SETTINGS may differ (a change to another, e.g. the node name or the etcd connection,
   * rejects the whole change). No new lease, and a resync that writes only what changed: an
   * instance the change does not touch is neither removed nor re-added. Returns the changed keys.
   */
  applyConfig(next: Config): string[] {
    const { hot, restart } = diffConfig(this.config, next, HOT_SETTINGS)
    if (restart.length > 0) throw new UsageError(`${restart.join(', ')} cannot change while the agent runs`, { hint: 'restart the agent for that, or leave those settings as they were' })
    if (hot.length === 0) return []
    const previous = this.config
    this.config = next
    this.buildOptions = buildOptionsOf(next, this.buildOptions.hostAddress)
    if (next.agent.checkConcurrency !== previous.agent.checkConcurrency) this.scheduler.setConcurrency(next.agent.checkConcurrency)
    if (next.agent.resyncMs !== previous.agent.resyncMs) {
      clearInterval(this.resyncTimer)
      this.resyncTimer = setInterval(() => void this.requestResync(), next.agent.resyncMs)
    }
    if (next.agent.deregisterCriticalAfterMs !== previous.agent.deregisterCriticalAfterMs) {
      clearInterval(this.criticalTimer)
      this.criticalTimer = undefined
      if (next.agent.deregisterCriticalAfterMs !== undefined) this.criticalTimer = setInterval(() => this.withdrawLongCritical(), Math.min(1_000, next.agent.deregisterCriticalAfterMs))
      else {
        // No withdrawal any more: what it held back comes back.
        this.withheld.clear()
      }
    }
    void this.requestResync()
    return hot
  }

  get leaseId(): string | undefined {
    return this.lease.id
  }

  get connections(): { docker: boolean; etcd: boolean } {
    return { docker: this.dockerUp, etcd: this.etcdUp && this.lease.alive }
  }

  /** Connects (retrying while etcd is unreachable), claims the node name, and starts the loop. */
  async start(): Promise<void> {
    // A filter Docker refuses would fail every list and inspect: say so now, before claiming the node.
    const refused = await this.source.refusedFilters()
    if (refused !== undefined) {
      throw new UsageError(`--filter ${formatContainerFilters(this.config.agent.containerFilters).join(' ')}: Docker refused it: ${clip(refused, 200)}`, {
        hint: 'use docker ps --filter syntax that this engine takes, e.g. label=team=a',
      })
    }
    this.parse = await this.registry.instanceParser()
    const claimed = await this.claimNode()
    this.previousLease = claimed.previousLease
    this.etcdUp = true
    this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
    this.emitEvent({ type: 'agent.started', node: this.node, lease: claimed.lease, docker: this.config.docker.host, etcd: this.config.etcd.endpoints })
    this.wireEvents()
    // A maintenance mark set or lifted anywhere: put this node's records in or out of rotation.
    this.view.on('change', this.onViewChange)
    await this.source.start()
    this.resyncTimer = setInterval(() => void this.requestResync(), this.config.agent.resyncMs)
    if (this.config.agent.deregisterCriticalAfterMs !== undefined) {
      this.criticalTimer = setInterval(() => this.withdrawLongCritical(), Math.min(1_000, this.config.agent.deregisterCriticalAfterMs))
    }
  }

  /** Graceful stop: checks off, Docker stream closed, lease revoked (instances vanish at once). */
  async stop(reason = 'signal'): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.aborter.abort()
    this.emitEvent({ type: 'agent.stopping', reason })
    clearInterval(this.resyncTimer)
    clearInterval(this.criticalTimer)
    clearTimeout(this.retryTimer)
    for (const drain of this.draining.values()) clearTimeout(drain.timer)
    this.view.off('change', this.onViewChange)
    this.source.stop()
    this.scheduler.stop()
    await this.lease.revoke()
    destroyCheckAgents(this.checkAgents)
    this.emitEvent({ type: 'agent.stopped' })
  }

  private readonly onViewChange = (change: ViewChange): void => {
    if (change.maintenance && !this.stopped) void this.reconcileAll()
  }

  /**
   * Runs one of this node's checks now, out of its schedule (the live view's `c`), and returns
   * its result; the schedule and the recorded health go on as before.
   */
  async checkNow(record: Pick<InstanceRecord, 'service' | 'id' | 'node' | 'source'>): Promise<CheckResult> {
    if (record.source === 'manual') throw new Error('the elected leader checks manual records, on its schedule')
    if (record.node !== this.node) throw new Error(`node ${record.node}'s agent checks its own instances`)
    const key = dockerInstanceKey(this.config.prefix, record.service, record.node, record.id)
    const owner = this.keyOwner.get(key)
    const instance = owner ? this.containers.get(owner)?.instances.find((i) => i.key === key)?.instance : undefined
    if (!instance) throw new Error('no running container backs it now')
    if (!instance.check) throw new Error('it has no check: it is passing while its container runs')
    if (instance.check.kind === 'docker') throw new Error('its Docker HEALTHCHECK runs inside the container, on Docker’s schedule')
    return this.runCheck(instance)
  }

  // ---------------------------------------------------------------- start-up

  private async claimNode(): Promise<{ lease: string; previousLease?: string }> {
    try {
      return await withRetries(() => this.claim.claimOnce(), {
        initialMs: 250,
        maxMs: 10_000,
        retryIf: (error) => !(error instanceof UsageError) && !this.stopped,
        onRetry: (error, delayMs) => {
          if (error instanceof ClaimRaceError) return
          this.etcdUp = false
          this.emitEvent({ type: 'etcd.disconnected', endpoints: this.config.etcd.endpoints, error: describeCause((error as { cause?: unknown }).cause ?? error).cause, retryInMs: delayMs })
        },
      }, this.aborter.signal)
    } catch (error) {
      if (error instanceof UsageError) throw error
      // Wrong credentials or certificates won't fix themselves: exit 3 naming the endpoint and cause.
      throw await explainEtcdFailure(error, this.config.etcd, 'connecting to etcd')
    }
  }

  private wireEvents(): void {
    this.source.on('connected', ({ reconnect }) => {
      this.dockerUp = true
      this.emitEvent({ type: 'docker.connected', host: this.config.docker.host, reconnect })
      void this.requestResync()
    })
    this.source.on('disconnected', ({ error, retryInMs }) => {
      this.dockerUp = false
      this.emitEvent({ type: 'docker.disconnected', host: this.config.docker.host, error, retryInMs })
    })
    this.source.on('event', (event) => this.onDockerEvent(event))
    this.scheduler.on('change', ({ id }) => void this.reconcileKeys([id]))
    this.scheduler.on('result', ({ id, result, scheduledAt, startedAt }) => {
      const owner = this.keyOwner.get(id)
      const instance = owner ? this.containers.get(owner)?.instances.find((i) => i.key === id)?.instance : undefined
      if (!instance) return
      this.emitEvent({ type: 'check.result', service: instance.service, id: instance.id, status: result.status, latencyMs: result.latencyMs, slipMs: Math.max(0, Math.round(startedAt - scheduledAt)) })
    })
    this.lease.on('keepalive-failed', (error) => this.onEtcdError(error))
    this.lease.on('lost', (reason) => {
      this.etcdUp = false
      this.emitEvent({ type: 'lease.lost', reason })
    })
    this.lease.on('renewed', (leaseId) => void this.onNewLease(leaseId))
    this.lease.on('alive', () => this.onEtcdOk())
    this.lease.on('error', (error) => this.onEtcdError(error))
  }

  /** A new lease after a loss: the node name first (never over a newer holder), then every record. */
  private async onNewLease(leaseId: string): Promise<void> {
    try {
      // Retried until it lands (a call right after a stall or partition may time out): without
      // its node record this agent's records would be garbage to the leader.
      const ours = await withRetries(() => this.claim.reclaim(), {
        initialMs: 200,
        maxMs: 2_000,
        retryIf: () => !this.stopped && this.lease.id === leaseId,
        onRetry: (error) => this.onEtcdError(error),
      }, this.aborter.signal)
      if (!ours) {
        this.emit('fatal', new UsageError(`another agent took node name ${this.node} while this one was cut off from etcd`, { hint: 'give each agent a unique --node name' }))
        return
      }
    } catch (error) {
      this.onEtcdError(error)
      return
    }
    this.etcdUp = true
    this.emitEvent({ type: 'lease.renewed', lease: leaseId })
    this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
    await this.reconcileAll()
  }

  // ---------------------------------------------------------------- Docker events

  private onDockerEvent(event: ContainerEvent): void {
    if (this.stopped) return
    const receivedAt = this.clock()
    const id = event.containerId
    const network = event.action === 'connect' || event.action === 'disconnect'
    this.emitEvent({ type: 'docker.event', action: event.rawAction, container: (!network && event.attributes.name) || id.slice(0, 12) })
    if (event.action === 'kill' && TERMINATING_SIGNALS.has(event.attributes.signal ?? '')) this.beginDrain(id)
    else if (event.action === 'start' || event.action === 'restart') this.endDrain(id)
    void this.enqueue(id, receivedAt)
  }

  /**
   * Withdraws the container's instances before its process exits, so consumers stop routing
   * to it. A kill that does not stop it (PID 1 ignoring TERM, QUIT for a thread dump) ends the
   * drain after the container's stop timeout (else Docker's 10 s): its instances come back.
   */
  private beginDrain(containerId: string): void {
    if (this.draining.has(containerId)) return
    const run = this.containers.get(containerId)
    const graceMs = run?.stopTimeoutMs ?? DEFAULT_STOP_GRACE_MS
    const timer = setTimeout(() => void this.enqueue(containerId), graceMs + 50)
    timer.unref?.()
    this.draining.set(containerId, { startedAt: run?.startedAt, until: this.clock() + graceMs, timer })
  }

  private endDrain(containerId: string): void {
    const drain = this.draining.get(containerId)
    if (!drain) return
    clearTimeout(drain.timer)
    this.draining.delete(containerId)
  }

  /** Runs a pass for the container now, or once more right after the pass in progress. */
  private enqueue(containerId: string, eventAt?: number): Promise<void> {
    const current = this.work.get(containerId)
    if (current) {
      if (!current.again) current.pendingSince = eventAt
      else current.pendingSince ??= eventAt
      current.again = true
      return current.running
    }
    const slot: WorkSlot = { running: Promise.resolve(), again: false, pendingSince: eventAt }
    slot.running = (async () => {
      try {
        do {
          slot.again = false
          const since = slot.pendingSince
          slot.pendingSince = undefined
          await this.processContainer(containerId, since)
        } while (slot.again && !this.stopped)
      } catch (error) {
        this.emitEvent({ type: 'error', message: `container ${containerId.slice(0, 12)}: ${(error as Error).message}` })
      } finally {
        this.work.delete(containerId)
      }
    })()
    this.work.set(containerId, slot)
    return slot.running
  }

  /** One pass: what Docker says about the container now → its instances in etcd. */
  private async processContainer(containerId: string, since?: number): Promise<void> {
    const run = this.containers.get(containerId)
    const drain = this.draining.get(containerId)
    if (drain && run && run.instances.length > 0 && this.clock() < drain.until && run.startedAt === drain.startedAt) {
      // A drain just began: withdraw at once, without waiting for an inspection.
      await this.applyContainer(containerId, run, [], 'draining: container is stopping', since, true)
      return
    }
    let inspected: InspectedContainer | undefined
    try {
      inspected = await this.source.inspect(containerId)
    } catch (error) {
      this.emitEvent({ type: 'error', message: `inspecting ${containerId.slice(0, 12)}: ${(error as Error).message}` })
      return // Docker trouble, not an answer: keep what is registered; the resync after reconnect settles it
    }
    const snapshot = inspected?.snapshot
    let draining = false
    if (drain) {
      drain.startedAt ??= inspected?.startedAt
      const sameRun = snapshot !== undefined && snapshot.state.running && inspected!.startedAt === drain.startedAt
      draining = sameRun && this.clock() < drain.until
      if (!draining) this.endDrain(containerId)
    }
    if (!snapshot) this.reportedProblems.delete(containerId)
    const next: ContainerRun | undefined = snapshot && !draining ? this.runFrom(containerId, inspected!) : undefined
    const reason = draining
      ? 'draining: container is stopping'
      : !snapshot
        ? 'container gone'
        : !snapshot.state.running || snapshot.state.restarting
          ? `container ${snapshot.state.status || 'stopped'}`
          : 'port no longer registered'
    await this.applyContainer(containerId, run, next?.instances ?? [], reason, since, draining, next)
  }

  private runFrom(containerId: string, inspected: InspectedContainer): ContainerRun {
    const { snapshot } = inspected
    const paused = snapshot.state.paused
    // A paused container stays listed but critical (Docker keeps reporting its last health).
    const view = paused ? { ...snapshot, state: { ...snapshot.state, paused: false, running: true } } : snapshot
    const result = containerToInstances(view, this.buildOptions)
    const problems = [...result.problems]
    const instances: ContainerRun['instances'] = []
    for (const instance of result.instances) {
      const key = dockerInstanceKey(this.config.prefix, instance.service, this.node, instance.id)
      const owner = this.keyOwner.get(key)
      // Two containers of this host claiming one id (a copied SERVICE_ID): the first keeps it.
      if (owner && owner !== containerId && this.containers.has(owner)) {
        problems.push({ container: snapshot.name, label: 'instance id', value: instance.id, reason: `already registered by container ${this.containers.get(owner)?.name ?? owner.slice(0, 12)}; give each container its own id` })
        continue
      }
      instances.push({ key, instance })
    }
    this.reportProblems(containerId, problems)
    return {
      name: snapshot.name,
      startedAt: inspected.startedAt,
      instances,
      paused,
      ...(snapshot.state.health ? { dockerHealth: snapshot.state.health } : {}),
      ...(snapshot.stopTimeout !== undefined ? { stopTimeoutMs: snapshot.stopTimeout * 1000 } : {}),
      ...(snapshot.labels['discovery.maintenance']?.trim() ? { maintenance: snapshot.labels['discovery.maintenance'].trim().slice(0, 500) } : {}),
    }
  }

  /** Reports each label problem once per container run: a resync that finds the same ones stays quiet. */
  private reportProblems(containerId: string, problems: LabelProblem[]): void {
    const before = this.reportedProblems.get(containerId)
    const now = new Set<string>()
    for (const problem of problems) {
      const signature = `${problem.label}\u0000${problem.value}\u0000${problem.reason}`
      now.add(signature)
      if (!before?.has(signature)) this.emitEvent({ type: 'container.problem', ...problem })
    }
    if (now.size > 0) this.reportedProblems.set(containerId, now)
    else this.reportedProblems.delete(containerId)
  }

  /**
   * Records what the pass found (the run, its keys and checks) and reconciles the keys it
   * had and has. A container with nothing to register leaves nothing behind.
   */
  private async applyContainer(
    containerId: string,
    previous: ContainerRun | undefined,
    wanted: ContainerRun['instances'],
    removalReason: string,
    since: number | undefined,
    draining: boolean,
    next?: ContainerRun,
  ): Promise<void> {
    const nextKeys = new Set(wanted.map((w) => w.key))
    const scope = new Set([...(previous?.instances.map((i) => i.key) ?? []), ...nextKeys])
    for (const key of scope) {
      if (nextKeys.has(key)) continue
      if (this.keyOwner.get(key) === containerId) this.keyOwner.delete(key)
      if (this.scheduler.has(key)) this.scheduler.remove(key)
      this.criticalSince.delete(key)
      this.withheld.delete(key)
      this.reportedConflicts.delete(key)
    }
    if (next) {
      this.containers.set(containerId, next)
      for (const { key, instance } of next.instances) {
        this.keyOwner.set(key, containerId)
        this.syncCheck(key, instance, next.paused)
      }
    } else if (draining && previous) {
      // Keep the run (for the drain's grace timer) but with nothing registered.
      this.containers.set(containerId, { ...previous, instances: [] })
    } else {
      this.containers.delete(containerId)
    }
    await this.reconcile(scope, removalReason, since)
  }

  // ---------------------------------------------------------------- health

  private syncCheck(key: string, instance: DesiredInstance, paused: boolean): void {
    const check = instance.check
    if (!check || check.kind === 'docker' || paused) {
      if (this.scheduler.has(key)) this.scheduler.remove(key)
      return
    }
    this.scheduler.upsert(key, check, () => this.runCheck(instance))
  }

  private runCheck(instance: DesiredInstance): Promise<CheckResult> {
    const check = instance.check!
    return runStoredCheck(check, { agents: this.checkAgents, docker: this.docker, container: check.container ?? instance.container?.id })
  }

  /** The wanted instance for a key with its health from whichever source it follows; undefined when withheld. */
  private wantedFor(key: string): WantedInstance | undefined {
    const owner = this.keyOwner.get(key)
    const run = owner ? this.containers.get(owner) : undefined
    const entry = run?.instances.find((i) => i.key === key)
    if (!run || !entry) return undefined
    let health = sourcedHealth({ check: entry.instance.check, paused: run.paused, dockerHealth: run.dockerHealth, checkHealth: this.scheduler.health(key) })
    // Out of rotation on purpose (a mark in etcd, or the container's label) wins over any check.
    const label = run.maintenance ? { reason: run.maintenance, by: 'label discovery.maintenance', since: run.startedAt } : undefined
    const maintenance = maintenanceOf({ service: entry.instance.service, id: entry.instance.id, node: this.node }, this.view.state.maintenance(), label)
    if (maintenance) health = { status: 'maintenance', output: maintenanceOutput(maintenance) }
    this.trackCritical(key, health.status === 'critical')
    if (this.withheld.has(key)) return undefined
    return { key, instance: entry.instance, health }
  }

  /** Every return from critical, whatever decided it (a check, HEALTHCHECK, unpause, restart), ends a withdrawal. */
  private trackCritical(key: string, critical: boolean): void {
    if (!critical) {
      this.criticalSince.delete(key)
      this.withheld.delete(key)
    } else if (!this.criticalSince.has(key)) {
      this.criticalSince.set(key, this.clock())
    }
  }

  private withdrawLongCritical(): void {
    const after = this.config.agent.deregisterCriticalAfterMs
    if (after === undefined || this.stopped) return
    const now = this.clock()
    const due: string[] = []
    for (const [key, since] of this.criticalSince) {
      if (this.withheld.has(key) || now - since < after) continue
      this.withheld.add(key)
      due.push(key)
    }
    if (due.length > 0) void this.reconcile(new Set(due), `critical for longer than ${Math.round(after / 1000)}s`)
  }

  // ---------------------------------------------------------------- reconcile

  private reconcileKeys(keys: string[]): Promise<void> {
    return this.reconcile(new Set(keys), 'no running container backs it')
  }

  /** Every key of this node: what runs against what the view (and our writes) say etcd holds. */
  private reconcileAll(): Promise<void> {
    this.held.forgetSeen()
    const scope = new Set<string>(this.keyOwner.keys())
    for (const entry of this.view.state.instancesOfNode(this.node)) if (entry.record.source === 'docker') scope.add(entry.key)
    for (const key of this.held.keys()) scope.add(key)
    return this.reconcile(scope, 'no running container backs it')
  }

  private async reconcile(scope: Set<string>, removalReason: string, since?: number): Promise<void> {
    const leaseId = this.lease.id
    if (this.stopped || !leaseId) return
    const wanted: WantedInstance[] = []
    const held = new Map<string, HeldRecord>()
    for (const key of scope) {
      const want = this.wantedFor(key)
      if (want) wanted.push(want)
      const h = this.held.at(key)
      if (h) held.set(key, h)
    }
    const plan = planReconcile({ node: this.node, leaseId, now: new Date().toISOString(), wanted, held, scope })
    await this.applyPlan(plan, leaseId, removalReason, since)
  }

  private async applyPlan(plan: PlanStep[], leaseId: string, removalReason: string, since?: number): Promise<void> {
    const steps: Exclude<PlanStep, { op: 'conflict' }>[] = []
    for (const step of plan) {
      if (step.op !== 'conflict') {
        steps.push(step)
        this.reportedConflicts.delete(step.key)
        continue
      }
      if (this.reportedConflicts.has(step.key)) continue
      this.reportedConflicts.add(step.key)
      const holder = step.holder.source === 'manual' ? 'a manual record (register)' : `node ${step.holder.node}`
      this.emitEvent({ type: 'container.problem', container: step.wanted.container?.name ?? '', label: 'instance id', value: step.wanted.id, reason: `the key is held by ${holder}; left untouched` })
    }
    if (steps.length === 0) return
    const ops: GuardedOp[] = steps.map((step) =>
      step.op === 'put'
        ? { kind: 'put', key: step.key, value: JSON.stringify(step.record), lease: leaseId, expect: step.expect }
        : { kind: 'delete', key: step.key, expect: step.expect },
    )
    let results
    try {
      results = await this.registry.applyGuarded(ops)
    } catch (error) {
      // Desired state stays; the reconcile after etcd returns (renewal, resync) writes it.
      this.onEtcdError(error)
      return
    }
    this.onEtcdOk()
    const latencyMs = since === undefined ? undefined : Math.round((this.clock() - since) * 100) / 100
    const retry: string[] = []
    results.forEach((result, i) => {
      const step = steps[i]
      if (!result.ok) {
        if (result.reason === 'lease') {
          this.lease.reportInvalid(leaseId)
          return
        }
        if (result.reason !== 'moved') return
        // What the key holds now, read in the same transaction: the retry plans from it rather
        // than wait for the view (whose watch may sit on a frozen member).
        this.held.observed(step.key, result.current, result.revision)
        retry.push(step.key)
        return
      }
      if (step.op === 'delete') {
        this.held.wrote(step.key, result.revision)
        this.tally.removed++
        this.emitEvent({ type: 'instance.removed', service: step.record.service, id: step.record.id, reason: removalReason, latencyMs })
        return
      }
      this.held.wrote(step.key, result.revision, { record: step.record, lease: leaseId })
      if (step.change === 'rebind') return
      this.tally.written++
      this.reportWrite(step.record, step.change, step.previous, latencyMs)
    })
    if (retry.length > 0) this.retrySoon(retry)
  }

  private reportWrite(record: InstanceRecord, change: 'registered' | 'updated' | 'health', previous: InstanceRecord | undefined, latencyMs?: number): void {
    if (change === 'registered' || !previous) {
      this.emitEvent({ type: 'instance.registered', instance: record, latencyMs })
      return
    }
    if (previous.health.status !== record.health.status) {
      this.emitEvent({ type: 'health.changed', service: record.service, id: record.id, from: previous.health.status, to: record.health.status, output: record.health.output })
    }
    if (change === 'updated') this.emitEvent({ type: 'instance.updated', instance: record })
  }

  /** A guard refused a write (the view was behind): look again with what the refusal read. */
  private retrySoon(keys: string[]): void {
    if (this.stopped) return
    const pending = new Set(keys)
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => void this.reconcile(pending, 'no running container backs it'), 200)
    this.retryTimer.unref?.()
  }

  private onEtcdOk(): void {
    if (this.etcdUp || !this.lease.alive) return
    this.etcdUp = true
    this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
    void this.requestResync()
  }

  private onEtcdError(error: unknown): void {
    const { cause } = describeCause((error as { cause?: unknown })?.cause ?? error)
    if (this.etcdUp) {
      this.etcdUp = false
      this.emitEvent({ type: 'etcd.disconnected', endpoints: this.config.etcd.endpoints, error: cause })
    }
  }

  // ---------------------------------------------------------------- resync

  /** Runs a full resync now, or once more right after the one in progress. */
  requestResync(): Promise<void> {
    if (this.stopped) return Promise.resolve()
    if (this.resyncing) {
      this.resyncAgain = true
      return this.resyncing
    }
    this.resyncing = (async () => {
      try {
        do {
          this.resyncAgain = false
          await this.resync()
        } while (this.resyncAgain && !this.stopped)
      } catch (error) {
        this.emitEvent({ type: 'error', message: `resync failed: ${(error as Error).message}` })
      } finally {
        this.resyncing = undefined
      }
    })()
    return this.resyncing
  }

  /**
   * Level-triggered truth: every running container (and every one this agent knows of) gets a
   * pass, then every key of this node is reconciled against the view, so a record that nothing
   * backs (an old lease, a missed event, a manual delete) is fixed. Reads no etcd: the view is
   * the read-back, so a resync costs this node's writes, not the cluster's size.
   */
  private async resync(): Promise<void> {
    const started = this.clock()
    const before = { ...this.tally }
    const running = await this.source.listRunningIds()
    const targets = [...new Set([...running, ...this.containers.keys(), ...this.draining.keys(), ...this.reportedProblems.keys()])]
    for (let i = 0; i < targets.length && !this.stopped; i += INSPECT_CONCURRENCY) {
      await Promise.all(targets.slice(i, i + INSPECT_CONCURRENCY).map((id) => this.enqueue(id)))
    }
    if (this.stopped) return
    await this.reconcileAll()
    if (this.previousLease) {
      // Every record of the earlier run is rebound or removed by now: its lease holds nothing we want.
      const old = this.previousLease
      this.previousLease = undefined
      await this.registry.client.leaseClient.leaseRevoke({ ID: old }).catch(() => undefined)
    }
    let instances = 0
    for (const run of this.containers.values()) instances += run.instances.length
    this.emitEvent({
      type: 'resync',
      containers: running.length,
      instances,
      written: this.tally.written - before.written,
      removed: this.tally.removed - before.removed,
      durationMs: Math.round(this.clock() - started),
    })
  }

  private emitEvent(event: AgentEvent): void {
    this.emit('event', event)
  }
}

function buildOptionsOf(config: Config, hostAddress: string): BuildOptions {
  return {
    node: config.node,
    addressMode: config.agent.addressMode,
    network: config.agent.network,
    advertiseAddress: config.agent.advertiseAddress,
    hostAddress,
    exposedByDefault: config.agent.exposedByDefault,
    extraTags: config.agent.extraTags,
    explicit: config.agent.explicit,
    ipFromLabel: config.agent.ipFromLabel,
    skipSwarmTasks: config.agent.swarm !== undefined,
  }
}
