import type { AgentEvent } from '../../core/agent/events.js'
import type { HealthStatus } from '../../core/model.js'
import type { AgentStore } from '../../core/store.js'

/**
 * The last check results of each instance, kept in memory by the TUI (the store keeps none):
 * at most `limit` results per instance, instances forgotten when removed, and at most
 * `maxInstances` instances (the least recently checked forgotten first). Fed by the store's
 * `event` stream: `check.result` (status, latency) and `health.changed` (the output of a failure).
 */
export interface CheckSample {
  at: number
  status: HealthStatus
  latencyMs: number
}

export interface CheckFailure {
  at: number
  status: HealthStatus
  output: string
}

export interface InstanceChecks {
  samples: CheckSample[]
  lastFailure?: CheckFailure
}

export const CHECK_HISTORY_LIMIT = 60
export const CHECK_HISTORY_INSTANCES = 20_000

/** The key of an event's instance: `service/id` with the full id, as the agent reports it. */
const keyOfEvent = (event: { service: string; id: string }): string => `${event.service}/${event.id}`

/** One instance's history after an event about it (pure; the arrays are copied, never changed). */
export function checksAfter(entry: InstanceChecks | undefined, event: AgentEvent, at: number, limit = CHECK_HISTORY_LIMIT): InstanceChecks | undefined {
  switch (event.type) {
    case 'check.result': {
      const samples = entry?.samples ?? []
      const sample = { at, status: event.status, latencyMs: event.latencyMs }
      return { ...entry, samples: samples.length >= limit ? [...samples.slice(samples.length - limit + 1), sample] : [...samples, sample] }
    }
    case 'health.changed':
      if (event.to === 'passing') return entry
      return { samples: entry?.samples ?? [], lastFailure: { at, status: event.to, output: event.output } }
    case 'instance.removed':
      return undefined
    default:
      return entry
  }
}

export class CheckHistory {
  private readonly entries = new Map<string, InstanceChecks>()

  constructor(
    private readonly limit = CHECK_HISTORY_LIMIT,
    private readonly maxInstances = CHECK_HISTORY_INSTANCES,
    private readonly now: () => number = Date.now,
  ) {}

  /** Follows the store's events until the returned function is called. */
  attach(store: Pick<AgentStore, 'on' | 'off'>): () => void {
    const listener = (event: AgentEvent) => this.record(event)
    store.on('event', listener)
    return () => store.off('event', listener)
  }

  record(event: AgentEvent): void {
    if (event.type !== 'check.result' && event.type !== 'health.changed' && event.type !== 'instance.removed') return
    const key = keyOfEvent(event)
    const before = this.entries.get(key)
    const after = checksAfter(before, event, this.now(), this.limit)
    if (after === before) return
    this.entries.delete(key)
    if (after === undefined) return
    this.entries.set(key, after) // re-inserted: the map's order is least recently updated first
    if (this.entries.size > this.maxInstances) this.entries.delete(this.entries.keys().next().value!)
  }

  get(key: string): InstanceChecks | undefined {
    return this.entries.get(key)
  }

  get size(): number {
    return this.entries.size
  }
}
