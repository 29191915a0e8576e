import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { CHECK_DEFAULTS, type CheckSpec } from '../model.js'
import type { CheckResult, CheckStatus } from './checks.js'
import { HealthScheduler, type HealthChangeEvent, type HealthResultEvent } from './scheduler.js'

const INTERVAL = 1000

function spec(overrides: Partial<CheckSpec> = {}): CheckSpec {
  return { kind: 'tcp', target: '127.0.0.1:80', ...CHECK_DEFAULTS, interval: INTERVAL, timeout: 500, ...overrides }
}

const result = (status: CheckStatus, output = status): CheckResult => ({ status, output, latencyMs: 1 })

/** A runner that answers from a script, repeating the last entry. */
function scripted(statuses: CheckStatus[]): { run: () => Promise<CheckResult>; calls: () => number } {
  let calls = 0
  return {
    run: () => Promise.resolve(result(statuses[Math.min(calls++, statuses.length - 1)])),
    calls: () => calls,
  }
}

function record(scheduler: HealthScheduler): { changes: HealthChangeEvent[]; results: HealthResultEvent[] } {
  const changes: HealthChangeEvent[] = []
  const results: HealthResultEvent[] = []
  scheduler.on('change', (event) => changes.push(event))
  scheduler.on('result', (event) => results.push(event))
  return { changes, results }
}

describe('HealthScheduler', () => {
  let scheduler: HealthScheduler

  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    scheduler?.stop()
    vi.useRealTimers()
  })

  describe('thresholds', () => {
    it('Given failuresBeforeCritical 3, When checks fail, Then unknown turns critical only on the third failure', async () => {
      // Given
      scheduler = new HealthScheduler({ random: () => 0 })
      const { changes } = record(scheduler)
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 3 }), scripted(['critical']).run)
      // When / Then
      await vi.advanceTimersByTimeAsync(0)
      expect(scheduler.health('web-1')?.status).toBe('unknown')
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('unknown')
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('critical')
      expect(changes).toHaveLength(1)
      expect(changes[0]).toMatchObject({ id: 'web-1', previous: 'unknown', health: { status: 'critical', output: 'critical' } })
    })

    it('Given successesBeforePassing 2, When a critical check recovers, Then it turns passing on the second success', async () => {
      // Given a check that is critical after one failure
      scheduler = new HealthScheduler({ random: () => 0 })
      const { changes } = record(scheduler)
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 1, successesBeforePassing: 2 }), scripted(['critical', 'passing']).run)
      await vi.advanceTimersByTimeAsync(0)
      expect(scheduler.health('web-1')?.status).toBe('critical')
      // When it succeeds once, Then it stays critical; twice, Then passing
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('critical')
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('passing')
      expect(changes.map((change) => [change.previous, change.health.status])).toEqual([
        ['unknown', 'critical'],
        ['critical', 'passing'],
      ])
    })

    it('Given defaults (1 success), When the first run passes, Then unknown turns passing at once', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      scheduler.upsert('web-1', spec(), scripted(['passing']).run)
      await vi.advanceTimersByTimeAsync(0)
      expect(scheduler.health('web-1')).toMatchObject({ status: 'passing', output: 'passing' })
    })

    it('Given a passing check, When failures are interrupted by a success, Then the streak restarts', async () => {
      // Given
      scheduler = new HealthScheduler({ random: () => 0 })
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 2 }), scripted(['passing', 'critical', 'passing', 'critical', 'critical']).run)
      // When / Then
      await vi.advanceTimersByTimeAsync(0)
      await vi.advanceTimersByTimeAsync(3 * INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('passing')
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('critical')
    })

    it('Given a passing check, When a run warns, Then it is warning at once, and passing again after the success threshold', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const { changes } = record(scheduler)
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 3 }), scripted(['passing', 'warning', 'passing']).run)
      await vi.advanceTimersByTimeAsync(0)
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('warning')
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(changes.map((change) => change.health.status)).toEqual(['passing', 'warning', 'passing'])
    })

    it('Given a runner that reports unknown (Docker still starting), When it runs, Then the status and streaks are untouched', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 2 }), scripted(['critical', 'unknown', 'critical']).run)
      await vi.advanceTimersByTimeAsync(0)
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')).toMatchObject({ status: 'unknown', output: 'unknown' })
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('critical')
    })
  })

  describe('events', () => {
    it('Given a steadily passing check, When it runs 5 times, Then change fires once and result five times', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const { changes, results } = record(scheduler)
      scheduler.upsert('web-1', spec(), scripted(['passing']).run)
      await vi.advanceTimersByTimeAsync(4 * INTERVAL)
      expect(results).toHaveLength(5)
      expect(changes).toHaveLength(1)
      // The output and updatedAt follow every run; since only the status change.
      const health = scheduler.health('web-1')
      expect(health?.since).toBe(changes[0].health.since)
    })

    it('Given a runner that rejects, When it runs, Then the result is critical with the error message', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const { results } = record(scheduler)
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 1 }), () => Promise.reject(new Error('boom\nstack')))
      await vi.advanceTimersByTimeAsync(0)
      expect(results[0].result).toMatchObject({ status: 'critical', output: 'boom' })
      expect(scheduler.health('web-1')?.status).toBe('critical')
    })

    it('Given a runner that never settles, When the timeout passes, Then the run is critical "timeout after N ms"', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const { results } = record(scheduler)
      scheduler.upsert('web-1', spec({ timeout: 200, failuresBeforeCritical: 1 }), () => new Promise<CheckResult>(() => {}))
      await vi.advanceTimersByTimeAsync(199)
      expect(results).toHaveLength(0)
      await vi.advanceTimersByTimeAsync(1)
      expect(results[0].result).toMatchObject({ status: 'critical', output: 'timeout after 200 ms' })
      expect(scheduler.running).toBe(0)
    })
  })

  describe('timing', () => {
    it('Given 1000 checks added at once, When they first run, Then jitter spreads them over the interval', async () => {
      // Given
      scheduler = new HealthScheduler({ concurrency: 1000 })
      const { results } = record(scheduler)
      const t0 = performance.now()
      for (let i = 0; i < 1000; i++) scheduler.upsert(`web-${i}`, spec(), scripted(['passing']).run)
      // When
      await vi.advanceTimersByTimeAsync(INTERVAL - 1)
      // Then every check ran once, within the first interval, and no tenth of it holds more than a fifth of them
      expect(results).toHaveLength(1000)
      const buckets = new Array<number>(10).fill(0)
      for (const event of results) buckets[Math.floor(((event.scheduledAt - t0) / INTERVAL) * 10)]++
      expect(Math.min(...buckets)).toBeGreaterThan(0)
      expect(Math.max(...buckets)).toBeLessThan(200)
    })

    it('Given initialDelay, When the check is added, Then the first run waits for it plus the jitter', async () => {
      scheduler = new HealthScheduler({ random: () => 0.5 })
      const { results } = record(scheduler)
      const t0 = performance.now()
      scheduler.upsert('web-1', spec({ initialDelay: 3000 }), scripted(['passing']).run)
      await vi.advanceTimersByTimeAsync(3499)
      expect(results).toHaveLength(0)
      await vi.advanceTimersByTimeAsync(1)
      expect(results[0].scheduledAt - t0).toBe(3500)
    })

    it('Given runs that take 300 ms, When they repeat, Then they are scheduled from the due time, not from completion', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const { results } = record(scheduler)
      const t0 = performance.now()
      const slow = (): Promise<CheckResult> => new Promise((resolve) => setTimeout(() => resolve(result('passing')), 300))
      scheduler.upsert('web-1', spec(), slow)
      await vi.advanceTimersByTimeAsync(5 * INTERVAL)
      expect(results.map((event) => event.scheduledAt - t0)).toEqual([0, 1000, 2000, 3000, 4000])
      expect(results.every((event) => event.startedAt === event.scheduledAt)).toBe(true)
    })

    it('Given a run still in flight when its next time comes, When that time comes, Then it is skipped, not stacked', async () => {
      // Given a runner that holds until released, with a timeout longer than the interval
      scheduler = new HealthScheduler({ random: () => 0 })
      const skips: number[] = []
      scheduler.on('skip', (event) => skips.push(event.scheduledAt))
      let calls = 0
      let release: (value: CheckResult) => void = () => {}
      scheduler.upsert('web-1', spec({ timeout: 10_000 }), () => {
        calls++
        return new Promise((resolve) => (release = resolve))
      })
      // When three due times pass
      await vi.advanceTimersByTimeAsync(2 * INTERVAL)
      // Then one run, two skips
      expect(calls).toBe(1)
      expect(skips).toHaveLength(2)
      expect(scheduler.running).toBe(1)
      // And after it finishes, the next due time runs again
      release(result('passing'))
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(calls).toBe(2)
    })
  })

  describe('concurrency', () => {
    it('Given a limit of 5 and 50 checks due at once, When they run, Then at most 5 are in flight and all run FIFO', async () => {
      // Given
      scheduler = new HealthScheduler({ concurrency: 5, random: () => 0 })
      let inFlight = 0
      let maxInFlight = 0
      const started: string[] = []
      for (let i = 0; i < 50; i++) {
        const id = `web-${String(i).padStart(2, '0')}`
        scheduler.upsert(id, spec({ timeout: 5000, interval: 60_000 }), async () => {
          started.push(id)
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          await new Promise((resolve) => setTimeout(resolve, 100))
          inFlight--
          return result('passing')
        })
      }
      // When
      await vi.advanceTimersByTimeAsync(0)
      expect(scheduler.running).toBe(5)
      await vi.advanceTimersByTimeAsync(1000)
      // Then
      expect(maxInFlight).toBe(5)
      expect(started).toHaveLength(50)
      expect(started).toEqual([...started].sort())
      expect(scheduler.running).toBe(0)
    })

    it('Given checks waiting in the queue, When they finally start, Then result.startedAt shows the wait as slip', async () => {
      scheduler = new HealthScheduler({ concurrency: 1, random: () => 0 })
      const { results } = record(scheduler)
      const slow = (): Promise<CheckResult> => new Promise((resolve) => setTimeout(() => resolve(result('passing')), 100))
      scheduler.upsert('a', spec({ interval: 60_000 }), slow)
      scheduler.upsert('b', spec({ interval: 60_000 }), slow)
      await vi.advanceTimersByTimeAsync(200)
      const b = results.find((event) => event.id === 'b')
      expect(b && b.startedAt - b.scheduledAt).toBe(100)
    })
  })

  describe('upsert and remove', () => {
    it('Given a check, When it is removed, Then it never runs again and its health is gone', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const runner = scripted(['passing'])
      scheduler.upsert('web-1', spec(), runner.run)
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(runner.calls()).toBe(2)
      expect(scheduler.remove('web-1')).toBe(true)
      await vi.advanceTimersByTimeAsync(5 * INTERVAL)
      expect(runner.calls()).toBe(2)
      expect(scheduler.health('web-1')).toBeUndefined()
      expect(scheduler.remove('web-1')).toBe(false)
    })

    it('Given a run in flight, When the check is removed, Then its late result emits nothing', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const { changes, results } = record(scheduler)
      let release: (value: CheckResult) => void = () => {}
      scheduler.upsert('web-1', spec(), () => new Promise((resolve) => (release = resolve)))
      await vi.advanceTimersByTimeAsync(0)
      scheduler.remove('web-1')
      release(result('passing'))
      await vi.advanceTimersByTimeAsync(0)
      expect(results).toHaveLength(0)
      expect(changes).toHaveLength(0)
      expect(scheduler.running).toBe(0)
    })

    it('Given a passing check, When upserted again with an identical spec, Then state and timing are kept', async () => {
      // Given a check that passed at t=0
      scheduler = new HealthScheduler({ random: () => 0 })
      const { results } = record(scheduler)
      const t0 = performance.now()
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 2 }), scripted(['passing', 'critical']).run)
      await vi.advanceTimersByTimeAsync(500)
      const before = scheduler.health('web-1')
      // When re-upserted with an equal (not the same) spec object and a new runner
      const second = scripted(['critical'])
      scheduler.upsert('web-1', spec({ failuresBeforeCritical: 2 }), second.run)
      // Then the health object is unchanged and the next run is still at t=1000, with the new runner
      expect(scheduler.health('web-1')).toBe(before)
      await vi.advanceTimersByTimeAsync(500)
      expect(results.map((event) => event.scheduledAt - t0)).toEqual([0, 1000])
      expect(second.calls()).toBe(1)
      // And the failure streak continued across the upsert: one more failure makes it critical
      await vi.advanceTimersByTimeAsync(INTERVAL)
      expect(scheduler.health('web-1')?.status).toBe('critical')
    })

    it('Given a check, When upserted with a changed spec, Then timing restarts and the status is kept until the new check decides', async () => {
      // Given a passing check
      scheduler = new HealthScheduler({ random: () => 0 })
      const { results } = record(scheduler)
      const t0 = performance.now()
      scheduler.upsert('web-1', spec(), scripted(['passing']).run)
      await vi.advanceTimersByTimeAsync(500)
      // When the interval changes
      scheduler.upsert('web-1', spec({ interval: 2000, failuresBeforeCritical: 1, initialDelay: 100 }), scripted(['critical']).run)
      // Then it is still passing until the new check's first run, 100 ms after the upsert
      expect(scheduler.health('web-1')?.status).toBe('passing')
      await vi.advanceTimersByTimeAsync(100)
      expect(results.map((event) => event.scheduledAt - t0)).toEqual([0, 600])
      expect(scheduler.health('web-1')?.status).toBe('critical')
      await vi.advanceTimersByTimeAsync(2000)
      expect(results.map((event) => event.scheduledAt - t0)).toEqual([0, 600, 2600])
    })

    it('Given a stopped scheduler, When runs would be due, Then nothing runs and upsert is refused', async () => {
      scheduler = new HealthScheduler({ random: () => 0 })
      const runner = scripted(['passing'])
      scheduler.upsert('web-1', spec(), runner.run)
      await vi.advanceTimersByTimeAsync(0)
      scheduler.stop()
      await vi.advanceTimersByTimeAsync(5 * INTERVAL)
      expect(runner.calls()).toBe(1)
      expect(scheduler.size).toBe(0)
      expect(() => scheduler.upsert('web-2', spec(), runner.run)).toThrow(/after stop/)
    })

    it('Given a spec object, When upserted, Then the scheduler does not mutate it', () => {
      scheduler = new HealthScheduler()
      const input = Object.freeze(spec())
      expect(() => scheduler.upsert('web-1', input, scripted(['passing']).run)).not.toThrow()
    })
  })
})
