import { describe, expect, it } from 'vitest'
import { withRetries } from './retry.js'

describe('withRetries', () => {
  it('Given a call that fails twice, When retried, Then it succeeds on the third attempt and each retry is told', async () => {
    let calls = 0
    const told: number[] = []
    const value = await withRetries(async () => {
      if (++calls < 3) throw new Error('not yet')
      return 'ok'
    }, { initialMs: 1, maxMs: 5, onRetry: (_e, _d, attempt) => told.push(attempt) })
    expect(value).toBe('ok')
    expect(told).toEqual([1, 2])
  })

  it('Given an error the caller does not retry, When it happens, Then it is thrown at once', async () => {
    let calls = 0
    await expect(withRetries(async () => {
      calls++
      throw new TypeError('final')
    }, { initialMs: 1, maxMs: 5, retryIf: (e) => !(e instanceof TypeError) })).rejects.toThrow('final')
    expect(calls).toBe(1)
  })

  it('Given a long wait between attempts, When the signal aborts, Then it rejects at once', async () => {
    const controller = new AbortController()
    const started = performance.now()
    const running = withRetries(async () => {
      throw new Error('down')
    }, { initialMs: 60_000, maxMs: 60_000 }, controller.signal)
    setTimeout(() => controller.abort(), 20)
    await expect(running).rejects.toBeDefined()
    expect(performance.now() - started).toBeLessThan(5_000)
  })
})
