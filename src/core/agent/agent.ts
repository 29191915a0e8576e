import { EventEmitter } from 'node:events'
import os from 'node:os'
import type Docker from 'dockerode'
import { backoffMs, delay } from '../async.js'
import type { Config } from '../config.js'
import { createDockerClient } from '../docker/client.js'
import { containerToInstances, type BuildOptions } from '../docker/instances.js'
import type { ContainerSnapshot } from '../docker/snapshot.js'
import { DockerSource, type ContainerEvent } from '../docker/source.js'
import { describeCause } from '../etcd.js'
import { UnavailableError, UsageError } from '../errors.js'
import { dockerHealthToStatus, execCheck, httpCheck, tcpCheck, createCheckAgents, destroyCheckAgents, type CheckAgents, type CheckResult } from '../health/checks.js'
import { HealthScheduler } from '../health/scheduler.js'
import { instanceKey, nodeKey } from '../keys.js'
import { ManagedLease } from '../lease.js'
import { initialHealth, type DesiredInstance, type Health, type InstanceRecord, type NodeRecord } from '../model.js'
import { primaryIPv4 } from '../net.js'
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
  /** Set by a terminating `kill`: instances withdrawn before the process exits. */
  draining: boolean
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
  /** What this agent believes etcd holds for its keys (written by it, or found at start). */
  private readonly applied = new Map<string, InstanceRecord>()
  /** Desired instance per key (without health/timestamps), for health updates. */
  private readonly desired = new Map<string, { instance: DesiredInstance; containerId: string; paused: boolean }>()
  /** Health per key from checks; docker-HEALTHCHECK and no-check instances derive theirs. */
  private readonly health = new Map<string, Health>()
  /** Keys removed by --deregister-critical-after; they come back when they pass again. */
  private readonly deregisteredCritical = new Set<string>()
  private readonly work = new Map<string, { running: Promise<void>; again: boolean; event?: ContainerEvent; startedAt: number }>()
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

  /** Like a crash, for tests and `--dev` teardown: stop without revoking. */
  abandon(): void {
    this.stopped = true
    clearInterval(this.resyncTimer)
    clearInterval(this.criticalTimer)
    this.source.stop()
    this.scheduler.stop()
    this.lease.release()
    destroyCheckAgents(this.checkAgents)
    this.registry.close()
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
          const sameHostDead = other.hostname === os.hostname() && other.pid !== process.pid && !processAlive(other.pid)
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
        const { cause, hint } = describeCause((error as { cause?: unknown }).cause ?? error)
        // Wrong credentials or certificates won't fix themselves: fail with exit 3.
        if (/authentication|permission|TLS|certificate/i.test(cause)) {
          throw new UnavailableError(`etcd refused the agent at ${this.config.etcd.endpoints.join(',')}: ${cause}`, { hint })
        }
        const retryInMs = backoffMs(attempt, 500, 10_000)
        this.etcdUp = false
        this.emitEvent({ type: 'etcd.disconnected', endpoints: this.config.etcd.endpoints, error: cause, retryInMs })
        await delay(retryInMs)
      }
    }
  }

  /** Records this node left in etcd (an earlier run, or this run before a lease loss). */
  private async loadOwnRecords(): Promise<void> {
    const listing = await this.registry.listInstances()
    for (const entry of listing.entries) {
      const record = entry.value
      if (record.node === this.node && record.source === 'docker') this.applied.set(entry.key, record)
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
    this.emitEvent({ type: 'docker.event', action: event.rawAction, container: event.attributes.name ?? event.containerId.slice(0, 12) })
    const entry = this.containers.get(event.containerId)
    if (event.action === 'kill' && TERMINATING_SIGNALS.has(event.attributes.signal ?? '')) {
      // Drain: withdraw before the process exits, so consumers stop routing to it.
      if (entry && !entry.draining) {
        entry.draining = true
        void this.enqueue(event.containerId, event)
      }
      return
    }
    if (entry && (event.action === 'start' || event.action === 'restart' || event.action === 'die' || event.action === 'destroy' || event.action === 'unpause')) {
      entry.draining = false
    }
    void this.enqueue(event.containerId, event)
  }

  /** One worker per container: events arriving while it runs collapse into one more pass. */
  private enqueue(containerId: string, event?: ContainerEvent): Promise<void> {
    const current = this.work.get(containerId)
    if (current) {
      current.again = true
      current.event = event ?? current.event
      return current.running
    }
    const slot = { running: Promise.resolve(), again: false, event, startedAt: performance.now() }
    slot.running = (async () => {
      try {
        do {
          slot.again = false
          const startedAt = slot.startedAt
          slot.startedAt = performance.now()
          await this.processContainer(containerId, startedAt)
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

  private async processContainer(containerId: string, startedAt: number): Promise<void> {
    const entry = this.containers.get(containerId)
    let snapshot: ContainerSnapshot | undefined
    if (!entry?.draining) {
      try {
        snapshot = await this.source.inspect(containerId)
      } catch (error) {
        this.emitEvent({ type: 'error', message: `inspecting ${containerId.slice(0, 12)}: ${(error as Error).message}` })
        return // Docker trouble: the resync after reconnect settles it
      }
    }
    const wanted = snapshot ? this.buildInstances(snapshot) : []
    await this.applyContainer(containerId, snapshot, wanted, startedAt)
  }

  private buildInstances(snapshot: ContainerSnapshot): { instance: DesiredInstance; paused: boolean }[] {
    const paused = snapshot.state.paused
    // A paused container stays listed but critical (Docker keeps reporting its last health).
    const view = paused ? { ...snapshot, state: { ...snapshot.state, paused: false, running: true } } : snapshot
    const result = containerToInstances(view, this.buildOptions)
    for (const problem of result.problems) this.emitEvent({ type: 'container.problem', ...problem })
    return result.instances.map((instance) => ({ instance, paused }))
  }

  private async applyContainer(
    containerId: string,
    snapshot: ContainerSnapshot | undefined,
    wanted: { instance: DesiredInstance; paused: boolean }[],
    startedAt = performance.now(),
  ): Promise<{ written: number; removed: number }> {
    let entry = this.containers.get(containerId)
    if (!entry && wanted.length > 0) {
      entry = { name: snapshot?.name ?? containerId, keys: new Set(), draining: false }
      this.containers.set(containerId, entry)
    }
    const nextKeys = new Set<string>()
    let written = 0
    let removed = 0
    const writes: Promise<void>[] = []
    for (const { instance, paused } of wanted) {
      const key = instanceKey(this.config.prefix, instance.service, instance.id)
      nextKeys.add(key)
      this.desired.set(key, { instance, containerId, paused })
      this.syncCheck(key, instance, paused)
      if (this.deregisteredCritical.has(key)) continue
      const record = this.recordFor(key, instance, snapshot, paused)
      if (record) {
        written++
        writes.push(this.writeRecord(key, record, startedAt))
      }
    }
    for (const key of entry?.keys ?? []) {
      if (nextKeys.has(key)) continue
      removed++
      writes.push(this.removeKey(key, entry?.draining ? 'draining: container is stopping' : snapshot ? 'port no longer registered' : 'container gone', startedAt))
    }
    await Promise.all(writes)
    if (entry) {
      entry.keys = nextKeys
      if (snapshot) entry.name = snapshot.name
      if (nextKeys.size === 0 && !entry.draining) this.containers.delete(containerId)
    }
    return { written, removed }
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
    switch (check.kind) {
      case 'http':
        return httpCheck({ url: check.target, timeoutMs: check.timeout, expectStatus: check.expectStatus, expectBody: check.expectBody, agent: this.checkAgents })
      case 'tcp': {
        const { host, port } = splitHostPort(check.target)
        return tcpCheck({ host, port, timeoutMs: check.timeout })
      }
      case 'exec':
        return execCheck({ docker: this.docker, container: check.container ?? instance.container?.id ?? '', command: check.target, timeoutMs: check.timeout })
      default:
        return Promise.resolve({ status: 'unknown', output: `unsupported check kind ${check.kind}`, latencyMs: 0 })
    }
  }

  private onHealthChange(key: string, health: Health): void {
    this.health.set(key, health)
    const desired = this.desired.get(key)
    if (!desired || this.stopped) return
    const previous = this.applied.get(key)
    this.emitEvent({
      type: 'health.changed',
      service: desired.instance.service,
      id: desired.instance.id,
      from: previous?.health.status ?? 'unknown',
      to: health.status,
      output: health.output,
    })
    if (health.status === 'passing' && this.deregisteredCritical.delete(key)) {
      // Back from a critical deregistration: register again.
    }
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
    try {
      await this.lease.put(key, JSON.stringify(record))
    } catch (error) {
      // Keep the desired state; the resync after etcd returns puts it again.
      this.applied.set(key, previous ?? record)
      if (!previous) this.applied.delete(key)
      this.onEtcdError(error)
      return
    }
    const latencyMs = startedAt === undefined ? undefined : Math.round((performance.now() - startedAt) * 100) / 100
    if (!previous) this.emitEvent({ type: 'instance.registered', instance: record, latencyMs })
    else if (previous.health.status !== record.health.status || !sameContent({ ...previous, health: record.health }, record)) {
      this.emitEvent({ type: 'instance.updated', instance: record })
    }
  }

  private async removeKey(key: string, reason: string, startedAt?: number): Promise<void> {
    const previous = this.applied.get(key)
    this.applied.delete(key)
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
    const service = previous?.service ?? desired?.instance.service ?? key.split('/').at(-2) ?? ''
    const id = previous?.id ?? desired?.instance.id ?? key.split('/').at(-1) ?? ''
    const latencyMs = startedAt === undefined ? undefined : Math.round((performance.now() - startedAt) * 100) / 100
    this.emitEvent({ type: 'instance.removed', service, id, reason, latencyMs })
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
   * Level-triggered truth: every running container is inspected and applied; containers that
   * are gone are removed; and etcd is read back so that any record of this node that nothing
   * backs (an old lease, a missed event, someone's manual delete) is fixed.
   */
  private async resync(): Promise<void> {
    const started = performance.now()
    const ids = await this.source.listRunningIds()
    const snapshots = new Map<string, ContainerSnapshot | undefined>()
    for (let i = 0; i < ids.length; i += INSPECT_CONCURRENCY) {
      const batch = ids.slice(i, i + INSPECT_CONCURRENCY)
      const results = await Promise.all(batch.map((id) => this.source.inspect(id).catch(() => undefined)))
      batch.forEach((id, n) => snapshots.set(id, results[n]))
    }
    let written = 0
    let removed = 0
    const desiredKeys = new Set<string>()
    for (const [id, snapshot] of snapshots) {
      if (this.work.has(id)) {
        // An event is being handled for it right now; that pass is fresher than this one.
        for (const key of this.containers.get(id)?.keys ?? []) desiredKeys.add(key)
        continue
      }
      const draining = this.containers.get(id)?.draining
      const wanted = snapshot && !draining ? this.buildInstances(snapshot) : []
      const result = await this.applyContainer(id, snapshot, wanted)
      written += result.written
      removed += result.removed
      for (const key of this.containers.get(id)?.keys ?? []) desiredKeys.add(key)
    }
    for (const id of [...this.containers.keys()]) {
      if (snapshots.has(id) || this.work.has(id)) continue
      const result = await this.applyContainer(id, undefined, [])
      removed += result.removed
    }
    // Read etcd back: put what is missing or different, delete what nothing backs.
    const listing = await this.registry.listInstances()
    const inEtcd = new Map<string, InstanceRecord>()
    for (const entry of listing.entries) {
      if (entry.value.node === this.node && entry.value.source === 'docker') inEtcd.set(entry.key, entry.value)
    }
    for (const [key, record] of inEtcd) {
      if (desiredKeys.has(key) || this.deregisteredCritical.has(key)) continue
      if ([...this.work.keys()].some((id) => this.containers.get(id)?.keys.has(key))) continue
      this.applied.set(key, record)
      removed++
      await this.removeKey(key, 'no running container backs it')
    }
    for (const key of desiredKeys) {
      if (this.deregisteredCritical.has(key)) continue
      const mine = this.applied.get(key)
      const theirs = inEtcd.get(key)
      const leaseOk = listing.entries.find((e) => e.key === key)?.lease === this.lease.id
      if (mine && (!theirs || !sameContent(mine, theirs) || !leaseOk)) {
        written++
        await this.writeRecord(key, mine)
      }
    }
    if (this.previousLease) {
      await this.revokeLease(this.previousLease)
      this.previousLease = undefined
    }
    this.emitEvent({
      type: 'resync',
      containers: snapshots.size,
      instances: desiredKeys.size,
      written,
      removed,
      durationMs: Math.round(performance.now() - started),
    })
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

function splitHostPort(target: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target)
  return match ? { host: match[1], port: Number(match[2]) } : { host: target, port: 0 }
}
