import { EventEmitter } from 'node:events'
import type Docker from 'dockerode'
import { backoffMs } from '../async.js'
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

  constructor(
    /** A client without a request timeout: /events is idle for long stretches. */
    private readonly docker: Docker,
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
    this.stream?.destroy?.()
    this.stream = undefined
  }

  /** Running (and paused) containers' ids. */
  async listRunningIds(): Promise<string[]> {
    const containers = await this.docker.listContainers({ filters: { status: ['running', 'paused', 'restarting'] } })
    return containers.map((c) => c.Id)
  }

  /** The container's snapshot, or undefined when it no longer exists; other Docker errors throw. */
  async inspect(containerId: string): Promise<InspectedContainer | undefined> {
    try {
      const raw = await this.docker.getContainer(containerId).inspect()
      const startedAt = typeof raw.State?.StartedAt === 'string' ? raw.State.StartedAt : ''
      return { snapshot: snapshotFromInspect(raw), startedAt }
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined
      throw error
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return
    const since = this.lastTimeNano === undefined ? undefined : formatSince(this.lastTimeNano)
    try {
      const stream = (await this.docker.getEvents({
        ...(since ? { since } : {}),
        filters: JSON.stringify({ type: ['container', 'network'], event: [...CONTAINER_ACTIONS, ...NETWORK_ACTIONS] }),
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
    let raw: { Type?: string; Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; timeNano?: number | string; time?: number }
    try {
      raw = JSON.parse(line)
    } catch {
      return // not an event; Docker never sends this, a proxy might
    }
    const rawAction = raw.Action ?? raw.status ?? ''
    const timeNano = raw.timeNano !== undefined ? BigInt(raw.timeNano) : BigInt(raw.time ?? 0) * 1_000_000_000n
    if (this.lastTimeNano === undefined || timeNano > this.lastTimeNano) this.lastTimeNano = timeNano
    const attributes = raw.Actor?.Attributes ?? {}
    const action = rawAction.split(':')[0].trim()
    let containerId: string | undefined
    if (raw.Type === 'network') {
      if (!NETWORK_ACTIONS.includes(action)) return
      containerId = attributes.container
    } else {
      if (!CONTAINER_ACTIONS.includes(action)) return
      containerId = raw.Actor?.ID ?? raw.id
    }
    if (!containerId) return
    this.emit('event', { containerId, action, rawAction, attributes, timeNano })
  }

  private scheduleReconnect(error: unknown): void {
    if (this.stopped) return
    const retryInMs = backoffMs(this.attempt++, 250, 10_000)
    this.emit('disconnected', { error: describe(error), retryInMs })
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => void this.connect(), retryInMs)
  }
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
