/** An AbortSignal that fires on the first SIGINT or SIGTERM; the lifecycle owner reacts to it. */
export function abortOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): AbortSignal {
  const controller = new AbortController()
  const onSignal = (): void => {
    for (const s of signals) process.off(s, onSignal)
    controller.abort()
  }
  for (const s of signals) process.on(s, onSignal)
  return controller.signal
}

/**
 * A reader that goes away (`watch --json | head -1`) must not kill or wedge a long-running
 * command: after EPIPE its output is dropped and the process goes on (stopped by its signals).
 */
export function survivePipeClose(stream: NodeJS.WriteStream = process.stdout, onClosed?: () => void): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error
    // Dropped, but "written": callers waiting for the write's callback (the exit flush) go on.
    stream.write = ((_chunk: unknown, encodingOrDone?: unknown, done?: unknown) => {
      const callback = typeof encodingOrDone === 'function' ? encodingOrDone : done
      if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)())
      return true
    }) as typeof stream.write
    onClosed?.()
  })
}
