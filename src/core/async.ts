/** Rejects with an ETIMEDOUT error when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message = `timed out after ${ms} ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(message), { code: 'ETIMEDOUT' })), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Exponential backoff with full jitter: attempt 0 → ~base, capped at `max`. */
export function backoffMs(attempt: number, base = 250, max = 10_000): number {
  const ceiling = Math.min(max, base * 2 ** attempt)
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
}

/** A promise that resolves when `signal` aborts (never rejects), and the removal of its listener. */
export function whenAborted(signal: AbortSignal): { promise: Promise<void>; dispose: () => void } {
  let onAbort = (): void => undefined
  const promise = new Promise<void>((resolve) => {
    onAbort = () => resolve()
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) }
}
