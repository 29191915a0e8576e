import { EventEmitter } from 'node:events'
import type Docker from 'dockerode'
import { backoffMs } from '../async.js'
import { swarmNodeAddresses, swarmServiceFromInspect, swarmTaskFromInspect, swarmToInstances, type SwarmBuildOptions, type SwarmBuildResult } from './swarm.js'

export type SwarmRole = 'manager' | 'worker' | 'inactive'

/** What this engine is in Swarm terms (GET /info): only a manager can list services and tasks. */
export async function swarmRole(docker: Docker): Promise<SwarmRole> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }
  if (info.Swarm?.LocalNodeState !== 'active') return 'inactive'
  return info.Swarm.ControlAvailable ? 'manager' : 'worker'
}

export interface SwarmSourceOptions extends SwarmBuildOptions {
  /** Full refresh period: the Docker API has no task events, so task changes are polled (default 2 s). */
  pollMs?: number
  /** Events within this window share one refresh (default 150 ms). */
  debounceMs?: number
}

export interface SwarmSnapshot extends SwarmBuildResult {
  /** When the services, tasks and nodes were read (ms since the epoch). */
  at: number
}

export interface SwarmSourceEvents {
  /** Every refresh whose instances (or skips/problems) differ from the previous one; the first always. */
  snapshot: [SwarmSnapshot]
  error: [{ error: string; retryInMs: number }]
}

/**
 * The Swarm side, on a manager: the desired instances of every service, refreshed on service,
 * node and task-container events (hints) and every `pollMs` (the truth: Docker has no task
 * events, and a task on another node changes without an event here). Each snapshot is the
 * whole desired set; the consumer diffs it against the registry, as the container agent's
 * resync does.
 */
export class SwarmSource extends EventEmitter<SwarmSourceEvents> {
  private stopped = false
  private pollTimer?: NodeJS.Timeout
  private debounceTimer?: NodeJS.Timeout
  private streams: (NodeJS.ReadableStream & { destroy?: () => void })[] = []
  private refreshing?: Promise<SwarmSnapshot | undefined>
  private again = false
  private last?: string
  private attempt = 0

  constructor(
    /** For listings: a client with a request timeout, so a hung engine fails a refresh instead of stopping the polls. */
    private readonly docker: Docker,
    private readonly options: SwarmSourceOptions,
    /** For the event streams: a client without a request timeout (they are idle for long stretches). */
    private readonly events: Docker = docker,
  ) {
    super()
  }

  async start(): Promise<SwarmSnapshot | undefined> {
    const first = await this.refresh()
    void this.subscribe()
    this.schedulePoll()
    return first
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.pollTimer)
    clearTimeout(this.debounceTimer)
    for (const stream of this.streams) stream.destroy?.()
  }

  /** Reads services, tasks and nodes now; concurrent calls share one read (plus one more after it). */
  refresh(): Promise<SwarmSnapshot | undefined> {
    if (this.refreshing) {
      this.again = true
      return this.refreshing
    }
    this.refreshing = (async () => {
      let snapshot: SwarmSnapshot | undefined
      try {
        do {
          this.again = false
          snapshot = await this.readOnce()
        } while (this.again && !this.stopped)
        this.attempt = 0
      } catch (error) {
        this.emit('error', { error: describe(error), retryInMs: this.options.pollMs ?? 2_000 })
      } finally {
        this.refreshing = undefined
      }
      return snapshot
    })()
    return this.refreshing
  }

  private async readOnce(): Promise<SwarmSnapshot> {
    const at = Date.now()
    const [services, tasks, nodes] = await Promise.all([
      this.docker.listServices(),
      // Tasks meant to run and tasks being stopped: the builder keeps a stopping one while it is the last.
      this.docker.listTasks({ filters: { 'desired-state': ['running', 'shutdown'] } } as unknown as Parameters<Docker['listTasks']>[0]),
      this.docker.listNodes(),
    ])
    const result = swarmToInstances(
      { services: services.map(swarmServiceFromInspect), tasks: tasks.map(swarmTaskFromInspect), nodeAddresses: swarmNodeAddresses(nodes) },
      this.options,
    )
    const snapshot = { ...result, at }
    const key = JSON.stringify(result)
    if (key !== this.last && !this.stopped) {
      this.last = key
      this.emit('snapshot', snapshot)
    }
    return snapshot
  }

  private schedulePoll(): void {
    if (this.stopped) return
    this.pollTimer = setTimeout(() => {
      void this.refresh().finally(() => this.schedulePoll())
    }, this.options.pollMs ?? 2_000)
    this.pollTimer.unref?.()
  }

  private hint(): void {
    if (this.stopped || this.debounceTimer) return
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined
      void this.refresh()
    }, this.options.debounceMs ?? 150)
  }

  private async subscribe(): Promise<void> {
    if (this.stopped) return
    try {
      const stream = (await this.events.getEvents({
        filters: JSON.stringify({ type: ['container'], label: ['com.docker.swarm.service.id'] }),
      } as unknown as Parameters<Docker['getEvents']>[0])) as NodeJS.ReadableStream & { destroy?: () => void }
      if (this.stopped) {
        stream.destroy?.()
        return
      }
      this.streams = [stream]
      // A label filter would drop service and node events (they carry no such label): ask for them apart.
      const services = (await this.events.getEvents({ filters: JSON.stringify({ type: ['service', 'node'] }) } as unknown as Parameters<Docker['getEvents']>[0])) as NodeJS.ReadableStream & {
        destroy?: () => void
      }
      const streams = [stream, services]
      if (this.stopped) {
        // stop() ran while the second stream was being opened: it could only close the first.
        for (const s of streams) s.destroy?.()
        return
      }
      this.streams = streams
      let ended = false
      const end = () => {
        if (ended) return
        ended = true
        for (const s of streams) s.destroy?.()
        if (this.stopped) return
        const retryInMs = backoffMs(this.attempt++, 250, 10_000)
        setTimeout(() => void this.subscribe(), retryInMs).unref?.()
      }
      for (const s of streams) {
        s.on('data', () => this.hint())
        s.on('end', end)
        s.on('close', end)
        s.on('error', end)
      }
      this.hint() // whatever happened while unsubscribed
    } catch (error) {
      const retryInMs = backoffMs(this.attempt++, 250, 10_000)
      this.emit('error', { error: describe(error), retryInMs })
      setTimeout(() => void this.subscribe(), retryInMs).unref?.()
    }
  }
}

function describe(error: unknown): string {
  const err = error as NodeJS.ErrnoException & { json?: { message?: string } }
  return (err?.json?.message ?? err?.message ?? String(error)).split('\n')[0]
}
