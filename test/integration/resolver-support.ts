import type { InstanceRecord } from '../../src/core/model.js'
import type { Resolver } from '../../src/core/resolver/resolver.js'

/**
 * Waits until the resolver's table satisfies `ok`, checking now and on each 'change' (no
 * polling); returns the table and the time since `since` (a performance.now() taken before the
 * write). Fails with the last table after `timeoutMs`.
 */
export function tableWhere(
  resolver: Resolver,
  ok: (instances: InstanceRecord[]) => boolean,
  timeoutMs = 5_000,
  what = 'the expected table',
  since = performance.now(),
): Promise<{ instances: InstanceRecord[]; ms: number }> {
  const started = since
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const instances = resolver.instances()
      if (!ok(instances)) return false
      cleanup()
      resolve({ instances, ms: Math.round(performance.now() - started) })
      return true
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; table: ${JSON.stringify(ids(resolver.instances()))}`))
    }, timeoutMs)
    const onChange = (): void => void check()
    const cleanup = (): void => {
      clearTimeout(timer)
      resolver.off('change', onChange)
    }
    resolver.on('change', onChange)
    check()
  })
}

/** Resolves with the time it took when the resolver emits `event`. */
export function nextEvent(resolver: Resolver, event: 'disconnected' | 'reconnected', timeoutMs: number): Promise<number> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      resolver.off(event, done)
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`))
    }, timeoutMs)
    function done(): void {
      clearTimeout(timer)
      resolve(Math.round(performance.now() - started))
    }
    resolver.once(event, done)
  })
}

export const ids = (instances: readonly InstanceRecord[]): string[] => instances.map((i) => i.id)

export const sameIds = (expected: string[]) => (instances: InstanceRecord[]): boolean => JSON.stringify(ids(instances)) === JSON.stringify([...expected].sort())
