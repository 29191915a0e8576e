import { ExponentialBackoff, handleWhen, retry } from 'cockatiel'

export interface RetryOptions {
  /** First wait, then growing exponentially (with jitter) up to `maxMs`. */
  initialMs: number
  maxMs: number
  maxAttempts?: number
  /** Errors worth another try; the others end the attempts at once. Default: all. */
  retryIf?: (error: unknown) => boolean
  /** Told before each wait, e.g. to say "retrying in Ns". */
  onRetry?: (error: unknown, delayMs: number, attempt: number) => void
}

/**
 * The one retry policy of the project (cockatiel): exponential backoff with jitter, for
 * connecting to etcd, claiming the node name and anything else that waits for a dependency.
 * Aborting `signal` stops the waiting and rejects.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions, signal?: AbortSignal): Promise<T> {
  const policy = retry(
    handleWhen((error) => options.retryIf?.(error) ?? true),
    { maxAttempts: options.maxAttempts ?? Number.POSITIVE_INFINITY, backoff: new ExponentialBackoff({ initialDelay: options.initialMs, maxDelay: options.maxMs }) },
  )
  const listener = policy.onRetry((reason) => {
    if ('error' in reason) options.onRetry?.(reason.error, reason.delay, reason.attempt)
  })
  // cockatiel stops retrying on abort but lets the current wait run out: end the wait at once.
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal?.reason ?? new Error('aborted'))
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
  aborted.catch(() => undefined)
  try {
    // …and never starts another attempt after it (cockatiel would run one more once its wait ends).
    const attemptUnlessAborted = ({ attempt }: { attempt: number }): Promise<T> => (signal?.aborted ? Promise.reject(signal.reason ?? new Error('aborted')) : fn(attempt))
    return await Promise.race([policy.execute(attemptUnlessAborted, signal), aborted])
  } finally {
    listener.dispose()
    if (onAbort) signal?.removeEventListener('abort', onAbort)
  }
}
