import { EventEmitter } from 'node:events'
import type Docker from 'dockerode'
import { backoffMs, withTimeout } from '../async.js'
import { FILTER_CHANGING_ACTIONS, type ContainerFilters } from './container-filter.js'
import { snapshotFromInspect, type ContainerSnapshot } from './snapshot.js'

/** A Docker event reduced to what the agent acts on. */
export interface ContainerEvent {
  containerId: string
  /** `start`, `die`, `kill`, `health_status`, `connect`… (health_status without its `: healthy` tail). */
  action: string
  /** Full action text, e.g. `health_status: healthy`. */
  rawAction: string
  attributes: Record<string, string>
  /** Event time in nanoseconds since the epoch, as Docker reports it. */
  timeNano: bigint
}

/** One inspection: the normalised snapshot plus what tells one run of the container from the next. */
export interface InspectedContainer {
  snapshot: ContainerSnapshot
  /** State.StartedAt: changes whenever the container (re)starts, also when no event said so. */
  startedAt: string
}

export interface DockerSourceEvents {
  event: [ContainerEvent]
  /** The event stream is (re)connected; a full resync must follow (the agent runs it). */
  connected: [{ reconnect: boolean }]
  disconnected: [{ error: string; retryInMs: number }]
}

/** Actions that change what a container should be registered as; everything else (exec_*, top, …) is noise. */
const CONTAINER_ACTIONS = ['start', 'restart', 'die', 'stop', 'kill', 'destroy', 'pause', 'unpause', 'rename', 'health_status', 'update', 'oom']
const NETWORK_ACTIONS = ['connect', 'disconnect']
/**
 * Podman's names for the same moments (its Docker-compatible /events, 4.3, recorded in
 * fixtures/podman-events.json): a container's end is `died` to its server-side filter (though
 * it is reported as `die`: asking for `die` alone gets none), its removal is `remove`
 * (Docker: `destroy`). Asked for in the filter as well: Docker validates only the filter's
 * keys, so names it never sends cost nothing there.
 */
const PODMAN_FILTER_ACTIONS = ['died', 'remove']
/** Podman's action names as Docker spells them, so the agent sees one vocabulary. */
const PODMAN_ACTION_ALIASES: Readonly<Record<string, string>> = { died: 'die', remove: 'destroy' }
/** Containers whose --filter answer is remembered at most (then the answers are asked again). */
const MATCH_CACHE_LIMIT = 10_000
/** With --filter: after a network (dis)connect, the container is looked at again this much later (Docker's list lags its event). */
const NETWORK_SETTLE_MS = 750
/** Podman emits health_status before the check it reports has updated the state: look again after this. */
export const PODMAN_HEALTH_SETTLE_MS = 750

/**
 * The Docker side: inspections on demand and a resilient event stream. Events are hints
 * ("look at this container now"), never the truth: the agent re-inspects. When the stream
 * ends (dockerd restart) it reconnects with backoff, resuming with `since` = the last event
 * seen, and says `connected { reconnect: true }` so the agent resyncs everything.
 */
export class DockerSource extends EventEmitter<DockerSourceEvents> {
  private stream?: NodeJS.ReadableStream & { destroy?: () => void }
  private lastTimeNano?: bigint
  private stopped = false
  private attempt = 0
  private everConnected = false
  private retryTimer?: NodeJS.Timeout
  /** Last health reported per container, so Podman's one-event-per-check-run becomes one event per change. */
  private readonly lastHealth = new Map<string, string>()
  private readonly settleTimers = new Map<string, NodeJS.Timeout>()
  /** The settle inspection in flight per container: an answer counts only while it is still this one. */
  private readonly settling = new Map<string, object>()
  /** The engine rejected status=restarting (Podman): list without it. */
  private noRestartingState = false
  /** With --filter: whether Docker said a container matches, until an event that may change it. */
  private readonly matching = new Map<string, boolean>()
  /**
   * With --filter: when each container was last named by an event that may change whether it
   * matches (a sequence number). An answer Docker gave to a question asked before that is not
   * remembered: it may describe the container as it was.
   */
  private readonly invalidatedAt = new Map<string, number>()
  private invalidations = 0
  private readonly networkSettleTimers = new Map<string, NodeJS.Timeout>()

  constructor(
    /** A client without a request timeout: /events is idle for long stretches. */
    private readonly docker: Docker,
    /** `watch --filter`: only containers Docker lists with these filters are this agent's. */
    private readonly filters?: ContainerFilters,
  ) {
    super()
  }

  /** Subscribes to events; resolves once the stream is open (or keeps retrying in the background). */
  async start(): Promise<void> {
    await this.connect()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.retryTimer)
    for (const timer of this.settleTimers.values()) clearTimeout(timer)
    this.settleTimers.clear()
    this.settling.clear()
    for (const timer of this.networkSettleTimers.values()) clearTimeout(timer)
    this.networkSettleTimers.clear()
    this.stream?.destroy?.()
    this.stream = undefined
  }

  /** Running (and paused) containers' ids (with --filter: those that match). */
  async listRunningIds(): Promise<string[]> {
    const asked = this.invalidations
    const ids = await this.listRunning()
    if (this.filters) {
      // A fresh answer from Docker for every container: the cache starts over from it, but for
      // containers an event named while the list was on its way.
      this.matching.clear()
      for (const id of ids) if (!this.changedSince(id, asked)) this.matching.set(id, true)
      if (this.invalidations === asked) this.invalidatedAt.clear()
    }
    return ids
  }

  /**
   * With --filter: asks Docker once whether the filters are valid (Docker and Podman reject an
   * unknown or malformed one with a 400 or 500 on every list). Resolves with the engine's words
   * when they were refused; when Docker can't be reached, the agent's retries take over.
   */
  async refusedFilters(): Promise<string | undefined> {
    if (!this.filters) return undefined
    try {
      // Bounded: this client has no request timeout, and a hung engine is the agent's retries' business.
      await withTimeout(this.docker.listContainers({ all: true, limit: 1, filters: this.filters } as Parameters<Docker['listContainers']>[0]), 5_000)
      return undefined
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode
      if (status !== 400 && status !== 500) return undefined
      const json = (error as { json?: { message?: unknown } }).json
      return typeof json?.message === 'string' ? json.message : String((error as Error).message).split('\n')[0]
    }
  }

  private changedSince(containerId: string, asked: number): boolean {
    return (this.invalidatedAt.get(containerId) ?? 0) > asked
  }

  private async listRunning(): Promise<string[]> {
    if (!this.noRestartingState) {
      try {
        const containers = await this.docker.listContainers({ filters: { ...this.filters, status: ['running', 'paused', 'restarting'] } })
        return containers.map((c) => c.Id)
      } catch (error) {
        if (!isUnknownStateError(error)) throw error
        // Podman has no "restarting" state and rejects the whole filter (HTTP 500 "unknown
        // container state: restarting"); its restarting containers are listed as running.
        this.noRestartingState = true
      }
    }
    const containers = await this.docker.listContainers({ filters: { ...this.filters, status: ['running', 'paused'] } })
    return containers.map((c) => c.Id)
  }

  /**
   * The container's snapshot, or undefined when it no longer exists (or, with --filter, does
   * not match: to this agent it is not there); other Docker errors throw.
   */
  async inspect(containerId: string): Promise<InspectedContainer | undefined> {
    if (this.filters && !(await this.matches(containerId))) return undefined
    try {
      const raw = await this.docker.getContainer(containerId).inspect()
      const startedAt = typeof raw.State?.StartedAt === 'string' ? raw.State.StartedAt : ''
      return { snapshot: snapshotFromInspect(raw), startedAt }
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined
      throw error
    }
  }

  /** Whether Docker lists the container with this agent's filters (asked once, until an event may change the answer). */
  private async matches(containerId: string): Promise<boolean> {
    const known = this.matching.get(containerId)
    if (known !== undefined) return known
    const asked = this.invalidations
    const listed = await this.docker.listContainers({ all: true, filters: { ...this.filters, id: [containerId] } })
    // Docker matches ids by prefix: only this very container counts.
    const found = listed.some((c) => c.Id === containerId || c.Id.startsWith(containerId))
    if (this.changedSince(containerId, asked)) return found
    if (this.matching.size >= MATCH_CACHE_LIMIT) this.matching.clear()
    this.matching.set(containerId, found)
    return found
  }

  private async connect(): Promise<void> {
    if (this.stopped) return
    const since = this.lastTimeNano === undefined ? undefined : formatSince(this.lastTimeNano)
    try {
      const stream = (await this.docker.getEvents({
        ...(since ? { since } : {}),
        filters: JSON.stringify({ type: ['container', 'network'], event: [...CONTAINER_ACTIONS, ...PODMAN_FILTER_ACTIONS, ...NETWORK_ACTIONS] }),
      } as unknown as Parameters<Docker['getEvents']>[0])) as NodeJS.ReadableStream & { destroy?: () => void }
      if (this.stopped) {
        stream.destroy?.()
        return
      }
      this.stream = stream
      this.attempt = 0
      const reconnect = this.everConnected
      this.everConnected = true
      this.follow(stream)
      this.emit('connected', { reconnect })
    } catch (error) {
      this.scheduleReconnect(error)
    }
  }

  private follow(stream: NodeJS.ReadableStream & { destroy?: () => void }): void {
    // A chunk may hold several events or half of one: split on newlines, keep the remainder.
    let buffer = ''
    let ended = false
    const end = (error: unknown): void => {
      if (ended) return
      ended = true
      if (this.stream === stream) this.stream = undefined
      if (!this.stopped) this.scheduleReconnect(error ?? new Error('event stream ended'))
    }
    stream.on('data', (chunk: Buffer | string) => {
      buffer += chunk.toString()
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim()
        buffer = buffer.slice(newline + 1)
        if (line) this.handleLine(line)
      }
    })
    stream.on('end', () => end(undefined))
    stream.on('close', () => end(undefined))
    stream.on('error', (error) => end(error))
  }

  private handleLine(line: string): void {
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch {
      return // not an event; Docker never sends this, a proxy might
    }
    const timeNano = eventTimeNano(raw)
    if (this.lastTimeNano === undefined || timeNano > this.lastTimeNano) this.lastTimeNano = timeNano
    for (const event of normalizeEvent(raw)) this.dispatch(event)
  }

  /**
   * Health events are deduplicated per container: Docker sends one per change, Podman one per
   * check run, and with the status from before that run (its event is written before the
   * result is). So a Podman health event is followed by one inspection once the check has
   * had time to finish, and the agent is told only when the status really changed.
   */
  private dispatch(event: ContainerEvent): void {
    const id = event.containerId
    // A new name or network may change whether the container matches --filter; a new run is asked about anew too.
    if (this.filters && (FILTER_CHANGING_ACTIONS.includes(event.action) || event.action === 'start')) {
      this.matching.delete(id)
      if (this.invalidatedAt.size >= MATCH_CACHE_LIMIT) this.invalidatedAt.clear()
      this.invalidatedAt.set(id, ++this.invalidations)
      // Docker reports a (dis)connect before its container list shows it: look once more a little later.
      if ((event.action === 'connect' || event.action === 'disconnect') && !this.networkSettleTimers.has(id)) {
        const timer = setTimeout(() => {
          this.networkSettleTimers.delete(id)
          if (this.stopped) return
          this.matching.delete(id)
          this.invalidatedAt.set(id, ++this.invalidations)
          this.emit('event', event)
        }, NETWORK_SETTLE_MS)
        timer.unref?.()
        this.networkSettleTimers.set(id, timer)
      }
    }
    if (event.action !== 'health_status') {
      // A new run (or its end) starts health over: the next status is news whatever it is.
      if (['start', 'restart', 'die', 'destroy'].includes(event.action)) {
        this.lastHealth.delete(id)
        // A look at the health of a run that ended is not wanted either, waiting or on its way.
        clearTimeout(this.settleTimers.get(id))
        this.settleTimers.delete(id)
        this.settling.delete(id)
      }
      this.emit('event', event)
      return
    }
    if (isPodmanEvent(event)) {
      this.settleHealth(id, event)
      return
    }
    this.passHealth(id, event)
  }

  /** Passes a health event on unless it repeats the status last passed on for the container. */
  private passHealth(id: string, event: ContainerEvent): void {
    const status = healthOf(event.rawAction)
    if (status !== undefined) {
      if (this.lastHealth.get(id) === status) return
      this.lastHealth.set(id, status)
    }
    this.emit('event', event)
  }

  private settleHealth(id: string, event: ContainerEvent): void {
    if (this.settleTimers.has(id)) return // one look covers every event until it runs
    const timer = setTimeout(() => {
      this.settleTimers.delete(id)
      // The answer counts only if no later look replaced this one and the run it looked at has
      // not ended meanwhile (start, restart, die and destroy drop it).
      const look = {}
      this.settling.set(id, look)
      const current = (): boolean => {
        if (this.stopped || this.settling.get(id) !== look) return false
        this.settling.delete(id)
        return true
      }
      // (Two handlers, not then + catch: a listener that throws is not the engine failing, and
      // surfaces as from any emit rather than being passed on as a second event.)
      void this.docker
        .getContainer(id)
        .inspect()
        .then(
          (raw) => {
            if (!current()) return
            const status = (raw as unknown as { State?: { Health?: { Status?: unknown } } }).State?.Health?.Status
            if (typeof status === 'string' && status) this.passHealth(id, { ...event, rawAction: `health_status: ${status}`, attributes: { ...event.attributes, health_status: status } })
          },
          (error: unknown) => {
            // Gone (404): its die/destroy event or the next resync tells the agent. Engine trouble
            // (a busy Podman can fail inspections for a while): the event's own status stands in,
            // repeats dropped as Docker's are, or every check run would reach the agent.
            if (!current() || (error as { statusCode?: number }).statusCode === 404) return
            this.passHealth(id, event)
          },
        )
    }, PODMAN_HEALTH_SETTLE_MS)
    timer.unref?.()
    this.settleTimers.set(id, timer)
  }

  private scheduleReconnect(error: unknown): void {
    if (this.stopped) return
    const retryInMs = backoffMs(this.attempt++, 250, 10_000)
    this.emit('disconnected', { error: describe(error), retryInMs })
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => void this.connect(), retryInMs)
  }
}

interface RawEvent {
  Type?: string
  Action?: string
  status?: string
  id?: string
  Actor?: { ID?: string; Attributes?: Record<string, string> }
  timeNano?: number | string
  time?: number
  /** Podman 4: the health status of a health_status event (Docker puts it in the action). */
  HealthStatus?: string
}

function eventTimeNano(value: unknown): bigint {
  const raw = (typeof value === 'object' && value !== null ? value : {}) as RawEvent
  try {
    return raw.timeNano !== undefined ? BigInt(raw.timeNano) : BigInt(raw.time ?? 0) * 1_000_000_000n
  } catch {
    return 0n
  }
}

/**
 * One line of GET /events → the event the agent acts on (none or one). Pure; Docker's and
 * Podman's spellings both read here:
 *   - Podman's `remove`/`died` are Docker's `destroy`/`die`;
 *   - Podman's network events name the container in Actor.ID (Docker: attribute `container`);
 *   - Podman's health status is in `HealthStatus` or an attribute, not the action text: it is
 *     put back as `health_status: <status>` (a stale one: see dispatch).
 * Not repairable here: Podman's kill event carries no `signal` and its `stop` event comes only
 * as the container exits, so nothing announces an exit early; the agent withdraws the
 * instances at `die`, as it does after a Docker SIGKILL.
 */
export function normalizeEvent(value: unknown): ContainerEvent[] {
  // An array: the caller loops, and an event that means nothing to the agent is simply none.
  if (typeof value !== 'object' || value === null) return []
  const raw = value as RawEvent
  const reported = String(raw.Action ?? raw.status ?? '')
  const timeNano = eventTimeNano(raw)
  const attributes: Record<string, string> = { ...(raw.Actor?.Attributes ?? {}) }
  const podman = isPodmanAttributes(attributes) || raw.HealthStatus !== undefined
  const reportedAction = reported.split(':')[0].trim()
  const alias = podman || !CONTAINER_ACTIONS.includes(reportedAction) ? PODMAN_ACTION_ALIASES[reportedAction] : undefined
  const action = alias ?? reportedAction
  // Logs and metrics (discovery_docker_events_total{action}) then count one vocabulary too.
  let rawAction = alias ?? reported
  if (raw.Type === 'network') {
    if (!NETWORK_ACTIONS.includes(action)) return []
    const containerId = attributes.container ?? (podman ? raw.Actor?.ID : undefined)
    return containerId ? [{ containerId, action, rawAction, attributes, timeNano }] : []
  }
  if (!CONTAINER_ACTIONS.includes(action)) return []
  const containerId = raw.Actor?.ID ?? raw.id
  if (!containerId) return []
  if (action === 'health_status' && !reported.includes(':')) {
    const status = raw.HealthStatus || attributes.health_status || attributes.healthStatus
    if (status) {
      attributes.health_status = status
      rawAction = `health_status: ${status}`
    }
  }
  return [{ containerId, action, rawAction, attributes, timeNano }]
}

/** Podman's events carry its pod's id (empty outside a pod) and the exit code on every container event. */
function isPodmanAttributes(attributes: Record<string, string>): boolean {
  return Object.hasOwn(attributes, 'podId') && Object.hasOwn(attributes, 'containerExitCode')
}

function isPodmanEvent(event: ContainerEvent): boolean {
  return isPodmanAttributes(event.attributes)
}

/** Podman's answer to a status filter naming a state it doesn't have. */
export function isUnknownStateError(error: unknown): boolean {
  const err = error as { statusCode?: number; message?: string; json?: { message?: string } } | undefined
  const text = `${err?.json?.message ?? ''} ${err?.message ?? ''}`
  return (err?.statusCode === 500 || err?.statusCode === 400) && /unknown container state/i.test(text)
}

/** `health_status: healthy` → healthy. */
function healthOf(rawAction: string): string | undefined {
  const colon = rawAction.indexOf(':')
  const status = colon >= 0 ? rawAction.slice(colon + 1).trim() : ''
  return status || undefined
}

/** Docker's `since` takes `<seconds>.<nanoseconds>`; resume just after the last event seen. */
function formatSince(timeNano: bigint): string {
  const seconds = timeNano / 1_000_000_000n
  const nanos = (timeNano % 1_000_000_000n).toString().padStart(9, '0')
  return `${seconds}.${nanos}`
}

function describe(error: unknown): string {
  const err = error as NodeJS.ErrnoException
  return err?.code ? `${err.code}${err.message ? `: ${err.message.split('\n')[0]}` : ''}` : String(err?.message ?? error).split('\n')[0]
}
