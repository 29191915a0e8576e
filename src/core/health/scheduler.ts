import { EventEmitter } from 'node:events'
import { initialHealth, type CheckSpec, type Health, type HealthStatus } from '../model.js'
import type { CheckResult } from './checks.js'

export interface HealthChangeEvent {
  id: string
  health: Health
  previous: HealthStatus
}

export interface HealthResultEvent {
  id: string
  result: CheckResult
  /** Monotonic ms (the scheduler's `now`): when the run was due. `startedAt - scheduledAt` is the slip, queueing included. */
  scheduledAt: number
  startedAt: number
}

export interface HealthSkipEvent {
  id: string
  scheduledAt: number
  /** The previous run of this check was still running or queued, so this one was dropped. */
  reason: 'in-flight'
}

export interface HealthSchedulerEvents {
  change: [HealthChangeEvent]
  result: [HealthResultEvent]
  skip: [HealthSkipEvent]
}

export interface HealthSchedulerOptions {
  /** At most this many checks in flight; the rest wait FIFO. Default 64. */
  concurrency?: number
  /** Monotonic clock in ms for scheduling. Default `performance.now()` (faked by vitest's fake timers). */
  now?: () => number
  /** Wall clock for `Health.updatedAt`/`since`. Default `new Date()`. */
  clock?: () => Date
  /** [0, 1) source for the first-run jitter. Default Math.random. */
  random?: () => number
}

export const DEFAULT_CHECK_CONCURRENCY = 64

type Runner = () => Promise<CheckResult>

interface Entry {
  readonly id: string
  spec: CheckSpec
  run: Runner
  /** Bumped when the spec changes, so runs started under the old spec are ignored. */
  generation: number
  timer: NodeJS.Timeout | undefined
  nextAt: number
  /** Queued or running: a due time that finds it busy is skipped, never stacked. */
  busy: boolean
  successes: number
  failures: number
  health: Health
}

interface Job {
  entry: Entry
  generation: number
  scheduledAt: number
}

/**
 * Runs one check per instance id with Kubernetes/Consul semantics: first run after
 * `initialDelay` plus a random jitter within the interval, then every `interval` on the
 * monotonic clock measured from the scheduled time (so slip does not accumulate),
 * `timeout` enforced per run, `failuresBeforeCritical`/`successesBeforePassing`
 * consecutive results to change status, warnings passed straight through.
 *
 * Emits `change` only when a status changes, `result` after every run, `skip` when a run
 * is dropped because the previous one is still busy.
 */
export class HealthScheduler extends EventEmitter<HealthSchedulerEvents> {
  private readonly entries = new Map<string, Entry>()
  private readonly queue: Job[] = []
  private queueHead = 0
  private inFlight = 0
  private stopped = false
  private concurrency: number
  private readonly now: () => number
  private readonly clock: () => Date
  private readonly random: () => number

  constructor(options: HealthSchedulerOptions = {}) {
    super()
    const concurrency = options.concurrency ?? DEFAULT_CHECK_CONCURRENCY
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`)
    this.concurrency = concurrency
    this.now = options.now ?? (() => performance.now())
    this.clock = options.clock ?? (() => new Date())
    this.random = options.random ?? Math.random
  }

  /**
   * Adds or updates the check for `id`. The same spec again keeps status, counters and
   * timing (only the runner is replaced, e.g. for a new agent). A changed spec restarts
   * timing and counters but keeps the last status until the new check decides, so a
   * label edit does not flap a healthy instance to unknown (Consul keeps a re-registered
   * check's status the same way).
   */
  upsert(id: string, spec: CheckSpec, run: Runner): void {
    if (this.stopped) throw new Error('HealthScheduler.upsert after stop()')
    const existing = this.entries.get(id)
    if (existing && sameSpec(existing.spec, spec)) {
      existing.run = run
      return
    }
    if (existing) {
      clearTimeout(existing.timer)
      existing.generation++
      existing.spec = { ...spec }
      existing.run = run
      existing.busy = false
      existing.successes = 0
      existing.failures = 0
      this.scheduleFirst(existing)
      return
    }
    const entry: Entry = {
      id,
      spec: { ...spec },
      run,
      generation: 0,
      timer: undefined,
      nextAt: 0,
      busy: false,
      successes: 0,
      failures: 0,
      health: Object.freeze(initialHealth(true, this.clock())),
    }
    this.entries.set(id, entry)
    this.scheduleFirst(entry)
  }

  /** Stops the check for `id`; a run in flight finishes but its result is ignored. */
  remove(id: string): boolean {
    const entry = this.entries.get(id)
    if (!entry) return false
    clearTimeout(entry.timer)
    entry.generation++
    this.entries.delete(id)
    return true
  }

  /** Stops every check. Runs in flight finish on their own timeouts; their results are ignored. */
  stop(): void {
    this.stopped = true
    for (const id of [...this.entries.keys()]) this.remove(id)
    this.queue.length = 0
    this.queueHead = 0
  }

  /** Changes how many checks may be in flight at once (a hot configuration change). */
  setConcurrency(concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`)
    this.concurrency = concurrency
    this.pump()
  }

  health(id: string): Health | undefined {
    return this.entries.get(id)?.health
  }

  has(id: string): boolean {
    return this.entries.has(id)
  }

  get size(): number {
    return this.entries.size
  }

  /** Checks running now (for metrics and tests). */
  get running(): number {
    return this.inFlight
  }

  private scheduleFirst(entry: Entry): void {
    // Jitter within one interval spreads 1000 checks added at once over the interval.
    const jitter = Math.floor(this.random() * entry.spec.interval)
    entry.nextAt = this.now() + entry.spec.initialDelay + jitter
    this.arm(entry)
  }

  private arm(entry: Entry): void {
    const delay = Math.max(0, entry.nextAt - this.now())
    const generation = entry.generation
    entry.timer = setTimeout(() => this.due(entry, generation), delay)
  }

  private due(entry: Entry, generation: number): void {
    if (!this.isCurrent(entry, generation)) return
    const scheduledAt = entry.nextAt
    // Next time from the schedule, not from now or from completion; if the loop was
    // stalled past whole intervals, those slots are dropped rather than fired in a burst.
    const interval = entry.spec.interval
    const now = this.now()
    let next = scheduledAt + interval
    if (next <= now) next += Math.ceil((now - next) / interval) * interval
    if (next <= now) next += interval
    entry.nextAt = next
    this.arm(entry)

    if (entry.busy) {
      this.emit('skip', { id: entry.id, scheduledAt, reason: 'in-flight' })
      return
    }
    entry.busy = true
    this.queue.push({ entry, generation, scheduledAt })
    this.pump()
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead++]
      if (this.isCurrent(job.entry, job.generation)) this.start(job)
    }
    // Compact now and then so a long-running agent's queue array doesn't grow forever.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead)
      this.queueHead = 0
    } else if (this.queueHead === this.queue.length) {
      this.queue.length = 0
      this.queueHead = 0
    }
  }

  private start(job: Job): void {
    const { entry, generation, scheduledAt } = job
    const { spec, run } = entry
    const startedAt = this.now()
    this.inFlight++
    void runWithTimeout(run, spec.timeout).then((result) => {
      // The slot is freed even if a listener throws, so one bad listener can't stall every check.
      try {
        if (!this.isCurrent(entry, generation)) return
        entry.busy = false
        const previous = entry.health.status
        this.apply(entry, result)
        this.emit('result', { id: entry.id, result, scheduledAt, startedAt })
        if (entry.health.status !== previous) this.emit('change', { id: entry.id, health: entry.health, previous })
      } finally {
        this.inFlight--
        this.pump()
      }
    })
  }

  private apply(entry: Entry, result: CheckResult): void {
    const { spec } = entry
    const current = entry.health.status
    let status = current
    switch (result.status) {
      case 'passing':
        entry.successes++
        entry.failures = 0
        if (current !== 'passing' && entry.successes >= spec.successesBeforePassing) status = 'passing'
        break
      case 'critical':
        entry.failures++
        entry.successes = 0
        if (current !== 'critical' && entry.failures >= spec.failuresBeforeCritical) status = 'critical'
        break
      case 'warning':
        // A warning is neither a success nor a failure in a row: it shows at once and breaks both streaks.
        entry.successes = 0
        entry.failures = 0
        status = 'warning'
        break
      case 'unknown':
        // No verdict (a Docker HEALTHCHECK still starting): counts for nothing.
        break
    }
    const at = this.clock().toISOString()
    // A new frozen object each time: events and health() hand it out, nobody can edit our state.
    entry.health = Object.freeze({
      status,
      output: result.output,
      updatedAt: at,
      since: status === current ? entry.health.since : at,
    })
  }

  private isCurrent(entry: Entry, generation: number): boolean {
    return !this.stopped && entry.generation === generation && this.entries.get(entry.id) === entry
  }
}

/**
 * A run that rejects or outlives its timeout is a critical result, never an exception.
 * The timeout frees the concurrency slot even if the runner ignores its own deadline, so
 * a hung runner can't starve every other check.
 */
function runWithTimeout(run: Runner, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now()
  return new Promise<CheckResult>((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'critical', output: `timeout after ${timeoutMs} ms`, latencyMs: timeoutMs }), timeoutMs)
    const settle = (result: CheckResult): void => {
      clearTimeout(timer)
      resolve(result)
    }
    let pending: Promise<CheckResult>
    try {
      pending = run()
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(settle, (error: unknown) =>
      settle({
        status: 'critical',
        output: error instanceof Error ? error.message.split('\n')[0] : String(error),
        latencyMs: Math.round(performance.now() - started),
      }),
    )
  })
}

// A record, not a list, so adding a field to CheckSpec fails to compile until it's compared here.
const SPEC_FIELDS: Record<keyof CheckSpec, true> = {
  kind: true,
  target: true,
  interval: true,
  timeout: true,
  failuresBeforeCritical: true,
  successesBeforePassing: true,
  initialDelay: true,
  expectStatus: true,
  expectBody: true,
  container: true,
}
const SPEC_KEYS = Object.keys(SPEC_FIELDS) as (keyof CheckSpec)[]

function sameSpec(a: CheckSpec, b: CheckSpec): boolean {
  return SPEC_KEYS.every((key) => a[key] === b[key])
}
