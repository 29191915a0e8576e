import { EventEmitter } from 'node:events'
import os from 'node:os'
import type Docker from 'dockerode'
import { backoffMs, delay } from '../async.js'
import type { Config } from '../config.js'
import { createDockerClient } from '../docker/client.js'
import { containerToInstances, type BuildOptions, type LabelProblem } from '../docker/instances.js'
import type { ContainerSnapshot } from '../docker/snapshot.js'
import { DockerSource, type ContainerEvent, type InspectedContainer } from '../docker/source.js'
import { describeCause, explainEtcdFailure } from '../etcd.js'
import { UnavailableError, UsageError } from '../errors.js'
import { createCheckAgents, destroyCheckAgents, dockerHealthToStatus, runStoredCheck, type CheckAgents, type CheckResult } from '../health/checks.js'
import { HealthScheduler } from '../health/scheduler.js'
import { instanceKey, nodeKey } from '../keys.js'
import { ManagedLease } from '../lease.js'
import { initialHealth, type DesiredInstance, type Health, type InstanceRecord, type NodeRecord } from '../model.js'
import { primaryIPv4 } from '../net.js'
import type { MirrorEntry } from '../prefix-mirror.js'
import { Registry } from '../registry.js'
import type { AgentEvent } from './events.js'

export interface AgentOptions {
  config: Config
  version: string
  /** Override for tests; default: the host's primary IPv4. */
  hostAddress?: string
  /** Injected for tests; default: a client from config.docker without a timeout. */
  docker?: Docker
}

interface ContainerEntry {
  name: string
  /** Instance keys this container currently backs. */
  keys: Set<string>
  /** State.StartedAt of the run these keys belong to. */
  startedAt: string
}

/** Set by a terminating `kill`: the instances are withdrawn before the process exits. */
interface Drain {
  /** The run being stopped (State.StartedAt). A later run of the same container is not drained,
   *  even when its `start` event was missed (e.g. across a dockerd restart). */
  startedAt?: string
}

/** The one worker of a container: passes run one at a time, and events during a pass collapse into one more. */
interface WorkSlot {
  running: Promise<void>
  again: boolean
  /** Monotonic time the oldest event not yet handled arrived (undefined: a resync pass). */
  pendingSince?: number
}

/** Signals that end a process; a `kill` with another signal (HUP for a reload) is not a stop. */
const TERMINATING_SIGNALS = new Set(['9', '15', '2', '3', 'SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT', 'KILL', 'TERM', 'INT', 'QUIT'])
const INSPECT_CONCURRENCY = 8

/**
 * The agent loop: Docker's truth → desired instances → etcd, level-triggered.
 *
 * Events say which container to look at now (inspected and written at once: no debounce);
 * a full resync after every (re)connect and every `resync` interval makes etcd equal to
 * what runs, whatever events were missed. Every write of this node is bound to one lease;
 * writes that change nothing are skipped.
 */
export class Agent extends EventEmitter<{ event: [AgentEvent] }> {
  private readonly config: Config
  private readonly registry: Registry
  private readonly lease: ManagedLease
  private readonly docker: Docker
  private readonly source: DockerSource
  private readonly scheduler: HealthScheduler
  private readonly checkAgents: CheckAgents
  private readonly buildOptions: BuildOptions
  private readonly containers = new Map<string, ContainerEntry>()
  private readonly draining = new Map<string, Drain>()
  /** Label problems already reported per container, so a resync doesn't report them again. */
  private readonly reportedProblems = new Map<string, Set<string>>()
  /** What this agent believes etcd holds for its keys (written by it, or found at start). */
  private readonly applied = new Map<string, InstanceRecord>()
  /** Desired instance per key (without health/timestamps), for health updates. */
  private readonly desired = new Map<string, { instance: DesiredInstance; containerId: string; paused: boolean }>()
  /** Health per key from checks; docker-HEALTHCHECK and no-check instances derive theirs. */
  private readonly health = new Map<string, Health>()
  /** Keys removed by --deregister-critical-after; they come back when they pass again. */
  private readonly deregisteredCritical = new Set<string>()
  private readonly work = new Map<string, WorkSlot>()
  /** Successful writes and removals, for the resync summary. */
  private readonly tally = { written: 0, removed: 0 }
  /** Per key: puts in flight, and when the last one finished (a resync's read-back ignores keys put since it read). */
  private readonly putsInFlight = new Map<string, number>()
  private readonly putDoneSeq = new Map<string, number>()
  private putSeq = 0
  private resyncTimer?: NodeJS.Timeout
  private criticalTimer?: NodeJS.Timeout
  private resyncing?: Promise<void>
  private resyncAgain = false
  private previousLease?: string
  private stopped = false
  private etcdUp = true
  private dockerUp = false
  private readonly startedAt = new Date()

  constructor(private readonly options: AgentOptions) {
    super()
    this.config = options.config
    this.registry = Registry.open(this.config.etcd, this.config.prefix, { retries: 2, callTimeoutMs: 3_000 })
    this.lease = new ManagedLease(this.registry.client, { ttlMs: this.config.agent.ttlMs })
    this.docker = options.docker ?? createDockerClient(this.config.docker)
    this.source = new DockerSource(this.docker)
    this.scheduler = new HealthScheduler({ concurrency: this.config.agent.checkConcurrency })
    this.checkAgents = createCheckAgents()
    this.buildOptions = {
      node: this.config.node,
      addressMode: this.config.agent.addressMode,
      network: this.config.agent.network,
      advertiseAddress: this.config.agent.advertiseAddress,
      hostAddress: options.hostAddress ?? primaryIPv4(),
      exposedByDefault: this.config.agent.exposedByDefault,
    }
  }

  get node(): string {
    return this.config.node
  }

  get leaseId(): string | undefined {
    return this.lease.id
  }

  get connections(): { docker: boolean; etcd: boolean } {
    return { docker: this.dockerUp, etcd: this.etcdUp && this.lease.alive }
  }

  /** The registry client, for components that share the agent's connection (election, store). */
  get registryClient(): Registry {
    return this.registry
  }

  /** Connects (retrying while etcd is unreachable), claims the node name, and starts the loop. */
  async start(): Promise<void> {
    const previousLease = await this.claimNode()
    this.wireEvents()
    await this.loadOwnRecords()
    // Records of an earlier run are put again under the new lease by the first resync; only
    // then is the old lease revoked, taking any stale key still bound to it along.
    this.previousLease = previousLease
    await this.source.start()
    this.resyncTimer = setInterval(() => this.requestResync(), this.config.agent.resyncMs)
    if (this.config.agent.deregisterCriticalAfterMs !== undefined) {
      this.criticalTimer = setInterval(() => this.deregisterLongCritical(), Math.min(1_000, this.config.agent.deregisterCriticalAfterMs))
    }
  }

  /** Graceful stop: checks off, Docker stream closed, lease revoked (instances vanish at once). */
  async stop(reason = 'signal'): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.emitEvent({ type: 'agent.stopping', reason })
    clearInterval(this.resyncTimer)
    clearInterval(this.criticalTimer)
    this.source.stop()
    this.scheduler.stop()
    await this.lease.revoke()
    destroyCheckAgents(this.checkAgents)
    this.registry.close()
    this.emitEvent({ type: 'agent.stopped' })
  }

  // ---------------------------------------------------------------- start-up

  /**
   * Grants the lease and writes the node record only if no live agent holds the name. An
   * earlier run of this node on this host whose process is gone (a crash, SIGKILL) is taken
   * over without deleting its records: they are put again under the new lease.
   */
  private async claimNode(): Promise<string | undefined> {
    const key = nodeKey(this.config.prefix, this.node)
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new UnavailableError('stopped before etcd could be reached')
      try {
        const existing = await this.registry.getNode(this.node)
        let previousLease: string | undefined
        if (existing) {
          const other = existing.value
          // An earlier run on this host whose process is gone. Its pid may equal ours (an agent
          // restarted in a container is pid 1 again): no other live process can hold our pid.
          const sameHostDead = other.hostname === os.hostname() && (other.pid === process.pid || !processAlive(other.pid))
          if (!sameHostDead) {
            throw new UsageError(
              `another agent is already running as node ${this.node} (pid ${other.pid} on ${other.hostname}, started ${other.startedAt})`,
              { hint: 'stop that agent, or give this one a unique --node name' },
            )
          }
          previousLease = existing.lease !== '0' ? existing.lease : undefined
        }
        const leaseId = await this.lease.start()
        const record: NodeRecord = {
          schema: 1,
          node: this.node,
          version: this.options.version,
          pid: process.pid,
          hostname: os.hostname(),
          startedAt: this.startedAt.toISOString(),
          ttl: this.lease.ttlSeconds,
          lease: leaseId,
          docker: this.config.docker.host,
        }
        const value = JSON.stringify(record)
        const client = this.registry.client
        const txn = existing
          ? client.if(key, 'Mod', '==', existing.modRevision).then(client.put(key).value(value).lease(leaseId))
          : client.if(key, 'Version', '==', 0).then(client.put(key).value(value).lease(leaseId))
        const result = await txn.commit()
        if (!result.succeeded) {
          this.lease.release()
          throw new UsageError(`another agent claimed node name ${this.node} at the same moment`, { hint: 'give each agent a unique --node name' })
        }
        this.lease.remember(key, value)
        this.etcdUp = true
        this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
        this.emitEvent({ type: 'agent.started', node: this.node, lease: leaseId, docker: this.config.docker.host, etcd: this.config.etcd.endpoints })
        return previousLease
      } catch (error) {
        if (error instanceof UsageError) throw error
        // Wrong credentials or certificates won't fix themselves: fail with exit 3, naming the
        // endpoint and the cause (grpc-js hides TLS causes; explainEtcdFailure digs them out).
        const explained = await explainEtcdFailure(error, this.config.etcd, 'connecting to etcd')
        if (/authentication|permission|TLS|certificate/i.test(explained.message)) throw explained
        const { cause } = describeCause((error as { cause?: unknown }).cause ?? error)
        const retryInMs = backoffMs(attempt, 500, 10_000)
        this.etcdUp = false
        this.emitEvent({ type: 'etcd.disconnected', endpoints: this.config.etcd.endpoints, error: cause, retryInMs })
        await delay(retryInMs)
      }
    }
  }

  /** Records this node left in etcd (an earlier run, or this run before a lease loss). */
  private async loadOwnRecords(): Promise<void> {
    // Knowing them lets a takeover keep each record as it is (registeredAt, health) instead of
    // writing it anew. Worth a few retries, not a failed start: the first resync's read-back
    // fixes whatever is left, so after a few tries the agent goes on without them.
    for (let attempt = 0; ; attempt++) {
      try {
        const listing = await this.registry.listInstances()
        for (const entry of listing.entries) {
          const record = entry.value
          if (record.node === this.node && record.source === 'docker') this.applied.set(entry.key, record)
        }
        if (attempt > 0) this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
        return
      } catch (error) {
        const { cause } = describeCause((error as { cause?: unknown }).cause ?? error)
        if (attempt >= 4 || this.stopped) {
          this.emitEvent({ type: 'error', message: `reading this node's earlier records failed (${cause}); the first resync settles them` })
          return
        }
        const retryInMs = backoffMs(attempt, 250, 2_000)
        this.emitEvent({ type: 'etcd.disconnected', endpoints: this.config.etcd.endpoints, error: cause, retryInMs })
        await delay(retryInMs)
      }
    }
  }

  private async revokeLease(leaseId: string): Promise<void> {
    try {
      await this.registry.client.leaseClient.leaseRevoke({ ID: leaseId })
    } catch {
      // Already expired: nothing bound to it remains.
    }
  }

  private wireEvents(): void {
    this.source.on('connected', ({ reconnect }) => {
      this.dockerUp = true
      this.emitEvent({ type: 'docker.connected', host: this.config.docker.host, reconnect })
      this.requestResync()
    })
    this.source.on('disconnected', ({ error, retryInMs }) => {
      this.dockerUp = false
      this.emitEvent({ type: 'docker.disconnected', host: this.config.docker.host, error, retryInMs })
    })
    this.source.on('event', (event) => this.onDockerEvent(event))
    this.scheduler.on('change', ({ id, health }) => this.onHealthChange(id, health))
    this.scheduler.on('result', ({ id, result, scheduledAt, startedAt }) => {
      const desired = this.desired.get(id)
      if (!desired) return
      this.emitEvent({
        type: 'check.result',
        service: desired.instance.service,
        id: desired.instance.id,
        status: result.status,
        latencyMs: result.latencyMs,
        slipMs: Math.max(0, Math.round(startedAt - scheduledAt)),
      })
    })
    this.lease.on('keepalive-failed', (error) => {
      if (this.etcdUp) {
        this.etcdUp = false
        this.emitEvent({ type: 'etcd.disconnected', endpoints: this.config.etcd.endpoints, error: describeCause(error).cause })
      }
    })
    this.lease.on('lost', (reason) => {
      this.etcdUp = false
      this.emitEvent({ type: 'lease.lost', reason })
    })
    this.lease.on('renewed', (leaseId) => {
      this.etcdUp = true
      this.emitEvent({ type: 'lease.renewed', lease: leaseId })
      this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
      this.requestResync()
    })
    this.lease.on('alive', () => {
      if (this.etcdUp) return
      this.etcdUp = true
      this.emitEvent({ type: 'etcd.connected', endpoints: this.config.etcd.endpoints })
      this.requestResync()
    })
    this.lease.on('error', (error) => this.onEtcdError(error))
  }

  // ---------------------------------------------------------------- events

  private onDockerEvent(event: ContainerEvent): void {
    if (this.stopped) return
    const receivedAt = performance.now()
    const id = event.containerId
    // Network events name the network, not the container.
    const network = event.action === 'connect' || event.action === 'disconnect'
    this.emitEvent({ type: 'docker.event', action: event.rawAction, container: (!network && event.attributes.name) || id.slice(0, 12) })
    if (event.action === 'kill' && TERMINATING_SIGNALS.has(event.attributes.signal ?? '')) {
      // Drain: withdraw before the process exits, so consumers stop routing to it.
      if (!this.draining.has(id)) this.draining.set(id, { startedAt: this.containers.get(id)?.startedAt })
    } else if (event.action === 'start' || event.action === 'restart') {
      this.draining.delete(id)
    }
    void this.enqueue(id, receivedAt)
  }

  /**
   * Runs a pass for the container now, or once more right after the pass in progress. All work
   * on one container (events and resyncs alike) goes through here, so passes never overlap and a
   * slow pass can't overwrite a fresher one.
   */
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
    const entry = this.containers.get(containerId)
    const drain = this.draining.get(containerId)
    if (drain && entry && entry.keys.size > 0) {
      // The drain path skips the inspection: removal is what is wanted, at once.
      await this.applyContainer(containerId, undefined, [], 'draining: container is stopping', since)
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
    if (drain) {
      drain.startedAt ??= inspected?.startedAt
      const sameRun = inspected !== undefined && inspected.snapshot.state.running && inspected.startedAt === drain.startedAt
      if (!sameRun) this.draining.delete(containerId)
    }
    const draining = this.draining.has(containerId)
    if (!snapshot) this.reportedProblems.delete(containerId)
    const wanted = snapshot && !draining ? this.buildInstances(snapshot) : []
    const reason = draining
      ? 'draining: container is stopping'
      : !snapshot
        ? 'container gone'
        : !snapshot.state.running || snapshot.state.restarting
          ? `container ${snapshot.state.status || 'stopped'}`
          : 'port no longer registered'
    await this.applyContainer(containerId, inspected, wanted, reason, since)
  }

  private buildInstances(snapshot: ContainerSnapshot): { instance: DesiredInstance; paused: boolean }[] {
    const paused = snapshot.state.paused
    // A paused container stays listed but critical (Docker keeps reporting its last health).
    const view = paused ? { ...snapshot, state: { ...snapshot.state, paused: false, running: true } } : snapshot
    const result = containerToInstances(view, this.buildOptions)
    const problems = [...result.problems]
    const instances = result.instances.filter((instance) => {
      // Two containers claiming one id (a copied SERVICE_ID) would overwrite each other's record
      // on every pass: the first keeps it, the second is reported and left out.
      const key = instanceKey(this.config.prefix, instance.service, instance.id)
      const owner = this.desired.get(key)?.containerId
      if (!owner || owner === snapshot.id || !this.containers.get(owner)?.keys.has(key)) return true
      problems.push({
        container: snapshot.name,
        label: 'instance id',
        value: instance.id,
        reason: `already registered by container ${this.containers.get(owner)?.name ?? owner.slice(0, 12)}; give each container its own id`,
      })
      return false
    })
    this.reportProblems(snapshot.id, problems)
    return instances.map((instance) => ({ instance, paused }))
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

  private async applyContainer(
    containerId: string,
    inspected: InspectedContainer | undefined,
    wanted: { instance: DesiredInstance; paused: boolean }[],
    removalReason: string,
    since?: number,
  ): Promise<void> {
    const snapshot = inspected?.snapshot
    let entry = this.containers.get(containerId)
    if (!entry && wanted.length > 0) {
      entry = { name: snapshot?.name ?? containerId, keys: new Set(), startedAt: inspected?.startedAt ?? '' }
      this.containers.set(containerId, entry)
    }
    const nextKeys = new Set<string>()
    const writes: Promise<void>[] = []
    for (const { instance, paused } of wanted) {
      const key = instanceKey(this.config.prefix, instance.service, instance.id)
      nextKeys.add(key)
      this.desired.set(key, { instance, containerId, paused })
      this.syncCheck(key, instance, paused)
      if (this.deregisteredCritical.has(key)) continue
      const record = this.recordFor(key, instance, snapshot, paused)
      if (record) writes.push(this.writeRecord(key, record, since))
    }
    for (const key of entry?.keys ?? []) {
      if (nextKeys.has(key)) continue
      writes.push(this.removeKey(key, removalReason, since))
    }
    await Promise.all(writes)
    if (entry) {
      entry.keys = nextKeys
      if (inspected) {
        entry.name = inspected.snapshot.name
        entry.startedAt = inspected.startedAt
      }
      if (nextKeys.size === 0) this.containers.delete(containerId)
    }
  }

  /** The record to write for `key`, or undefined when etcd already holds the same content. */
  private recordFor(key: string, instance: DesiredInstance, snapshot: ContainerSnapshot | undefined, paused: boolean): InstanceRecord | undefined {
    const previous = this.applied.get(key)
    const health = this.healthFor(key, instance, snapshot, paused, previous?.health)
    const now = new Date().toISOString()
    const record: InstanceRecord = {
      schema: 1,
      id: instance.id,
      service: instance.service,
      address: instance.address,
      port: instance.port,
      tags: instance.tags,
      meta: instance.meta,
      node: this.node,
      source: 'docker',
      ...(instance.container ? { container: instance.container } : {}),
      ...(instance.check ? { check: instance.check } : {}),
      health,
      registeredAt: previous?.registeredAt ?? now,
      updatedAt: now,
    }
    if (previous && sameContent(previous, record)) return undefined
    return record
  }

  private healthFor(key: string, instance: DesiredInstance, snapshot: ContainerSnapshot | undefined, paused: boolean, previous?: Health): Health {
    const at = new Date().toISOString()
    const keep = (status: Health['status'], output: string): Health =>
      previous && previous.status === status && previous.output === output
        ? previous
        : { status, output, updatedAt: at, since: previous && previous.status === status ? previous.since : at }
    if (paused) return keep('critical', 'container paused')
    const check = instance.check
    if (!check) return keep('passing', 'no check')
    if (check.kind === 'docker') {
      const docker = snapshot?.state.health
      const status = dockerHealthToStatus(docker)
      return keep(status, docker ? `docker HEALTHCHECK: ${docker}` : 'docker HEALTHCHECK: no status yet')
    }
    const fromChecks = this.health.get(key)
    if (fromChecks) return keep(fromChecks.status, fromChecks.output)
    return previous?.status && previous.status !== 'unknown' ? previous : initialHealth(true, new Date(at))
  }

  // ---------------------------------------------------------------- health

  private syncCheck(key: string, instance: DesiredInstance, paused: boolean): void {
    const check = instance.check
    if (!check || check.kind === 'docker' || paused) {
      if (this.scheduler.has(key)) this.scheduler.remove(key)
      this.health.delete(key)
      return
    }
    this.scheduler.upsert(key, check, () => this.runCheck(instance))
  }

  private runCheck(instance: DesiredInstance): Promise<CheckResult> {
    const check = instance.check!
    return runStoredCheck(check, { agents: this.checkAgents, docker: this.docker, container: check.container ?? instance.container?.id })
  }

  private onHealthChange(key: string, health: Health): void {
    this.health.set(key, health)
    const desired = this.desired.get(key)
    if (!desired || this.stopped) return
    // Back from a critical deregistration: passing registers it again.
    if (health.status === 'passing') this.deregisteredCritical.delete(key)
    if (this.deregisteredCritical.has(key)) return
    const record = this.recordFor(key, desired.instance, undefined, desired.paused)
    if (record) void this.writeRecord(key, record)
  }

  private deregisterLongCritical(): void {
    const after = this.config.agent.deregisterCriticalAfterMs
    if (after === undefined || this.stopped) return
    const now = Date.now()
    for (const [key, record] of this.applied) {
      if (record.health.status !== 'critical' || this.deregisteredCritical.has(key)) continue
      if (now - Date.parse(record.health.since) < after) continue
      this.deregisteredCritical.add(key)
      void this.removeKey(key, `critical for longer than ${Math.round(after / 1000)}s`)
    }
  }

  // ---------------------------------------------------------------- writes

  private async writeRecord(key: string, record: InstanceRecord, startedAt?: number): Promise<void> {
    const previous = this.applied.get(key)
    this.applied.set(key, record)
    this.putsInFlight.set(key, (this.putsInFlight.get(key) ?? 0) + 1)
    try {
      await this.lease.put(key, JSON.stringify(record))
    } catch (error) {
      // Keep the desired state; the resync after etcd returns puts it again.
      this.applied.set(key, previous ?? record)
      if (!previous) this.applied.delete(key)
      this.onEtcdError(error)
      return
    } finally {
      const left = this.putsInFlight.get(key)! - 1
      if (left > 0) this.putsInFlight.set(key, left)
      else this.putsInFlight.delete(key)
      this.putDoneSeq.set(key, ++this.putSeq)
    }
    this.tally.written++
    this.onEtcdOk()
    const latencyMs = startedAt === undefined ? undefined : Math.round((performance.now() - startedAt) * 100) / 100
    if (!previous) {
      this.emitEvent({ type: 'instance.registered', instance: record, latencyMs })
      return
    }
    // Reported once the registry says so, whatever decided it (a check, Docker's HEALTHCHECK, a pause).
    if (previous.health.status !== record.health.status) {
      this.emitEvent({ type: 'health.changed', service: record.service, id: record.id, from: previous.health.status, to: record.health.status, output: record.health.output })
    }
    if (!sameContent({ ...previous, health: record.health }, record)) this.emitEvent({ type: 'instance.updated', instance: record })
  }

  private async removeKey(key: string, reason: string, startedAt?: number): Promise<void> {
    const previous = this.applied.get(key)
    this.applied.delete(key)
    this.putDoneSeq.delete(key)
    const desired = this.desired.get(key)
    if (!this.deregisteredCritical.has(key)) {
      this.desired.delete(key)
      if (this.scheduler.has(key)) this.scheduler.remove(key)
      this.health.delete(key)
    }
    try {
      await this.lease.delete(key)
    } catch (error) {
      this.onEtcdError(error)
      return
    }
    this.tally.removed++
    this.onEtcdOk()
    const service = previous?.service ?? desired?.instance.service ?? key.split('/').at(-2) ?? ''
    const id = previous?.id ?? desired?.instance.id ?? key.split('/').at(-1) ?? ''
    const latencyMs = startedAt === undefined ? undefined : Math.round((performance.now() - startedAt) * 100) / 100
    this.emitEvent({ type: 'instance.removed', service, id, reason, latencyMs })
  }

  /**
   * A write went through: etcd is back even if no lease renewal failed in between (a write can
   * fail on its own, e.g. on a frozen member). Writes that failed meanwhile are redone by a resync.
   */
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
   * pass through its worker, and etcd is read back so that any record of this node that nothing
   * backs (an old lease, a missed event, someone's manual delete) is fixed.
   */
  private async resync(): Promise<void> {
    const started = performance.now()
    const before = { ...this.tally }
    const running = await this.source.listRunningIds()
    const targets = [...new Set([...running, ...this.containers.keys(), ...this.draining.keys(), ...this.reportedProblems.keys()])]
    for (let i = 0; i < targets.length && !this.stopped; i += INSPECT_CONCURRENCY) {
      await Promise.all(targets.slice(i, i + INSPECT_CONCURRENCY).map((id) => this.enqueue(id)))
    }
    if (this.stopped) return
    // Read etcd back: delete what nothing backs, put what is missing or different.
    const seqAtListing = this.putSeq
    const listing = await this.registry.listInstances()
    const inEtcd = new Map<string, MirrorEntry<InstanceRecord>>()
    for (const entry of listing.entries) {
      if (entry.value.node === this.node && entry.value.source === 'docker') inEtcd.set(entry.key, entry)
    }
    for (const [key, entry] of inEtcd) {
      // `desired` is read now, not before the listing: a pass that registered a container meanwhile is respected.
      if (this.desired.has(key) || this.deregisteredCritical.has(key)) continue
      await this.removeUnbacked(key, entry)
    }
    for (const key of [...this.desired.keys()]) {
      if (this.deregisteredCritical.has(key)) continue
      // Put by a pass since the listing was read (or being put now): the listing can't judge it.
      if (this.putsInFlight.has(key) || (this.putDoneSeq.get(key) ?? 0) > seqAtListing) continue
      const mine = this.applied.get(key)
      const theirs = inEtcd.get(key)
      if (mine && (!theirs || !sameContent(mine, theirs.value) || theirs.lease !== this.lease.id)) await this.writeRecord(key, mine)
    }
    if (this.previousLease) {
      await this.revokeLease(this.previousLease)
      this.previousLease = undefined
    }
    this.emitEvent({
      type: 'resync',
      containers: running.length,
      instances: this.desired.size,
      written: this.tally.written - before.written,
      removed: this.tally.removed - before.removed,
      durationMs: Math.round(performance.now() - started),
    })
  }

  /** Deletes a record of this node that no container backs, unless it was written again since it was read. */
  private async removeUnbacked(key: string, entry: MirrorEntry<InstanceRecord>): Promise<void> {
    this.applied.delete(key)
    this.putDoneSeq.delete(key)
    this.lease.forget(key)
    const client = this.registry.client
    try {
      const result = await client.if(key, 'Mod', '==', entry.modRevision).then(client.delete().key(key)).commit()
      if (!result.succeeded) return
    } catch (error) {
      this.onEtcdError(error)
      return
    }
    this.tally.removed++
    this.emitEvent({ type: 'instance.removed', service: entry.value.service, id: entry.value.id, reason: 'no running container backs it' })
  }

  private emitEvent(event: AgentEvent): void {
    this.emit('event', event)
  }
}

/** Equal apart from `updatedAt` (and health timestamps when the status and output are the same). */
function sameContent(a: InstanceRecord, b: InstanceRecord): boolean {
  const strip = (r: InstanceRecord): string =>
    JSON.stringify({ ...r, updatedAt: undefined, health: { status: r.health.status, output: r.health.output, since: r.health.since } })
  return strip(a) === strip(b)
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
