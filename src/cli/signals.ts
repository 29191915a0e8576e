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

/**
 * A reader that stops reading (a paused pager, a stuck consumer) must not grow a long-running
 * command's memory without end: once `limitBytes` wait in the stream's queue, further writes are
 * dropped (their callbacks still run) until it drains; `onResume` then hears how many were.
 */
export function boundOutput(stream: NodeJS.WriteStream, limitBytes: number, onResume: (dropped: number) => void): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
  let dropped = 0
  stream.write = ((chunk: unknown, encodingOrDone?: unknown, done?: unknown) => {
    if (stream.writableLength < limitBytes) return write(chunk, encodingOrDone, done)
    dropped++
    const callback = typeof encodingOrDone === 'function' ? encodingOrDone : done
    if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)())
    return false
  }) as typeof stream.write
  stream.on('drain', () => {
    if (dropped === 0) return
    const count = dropped
    dropped = 0
    onResume(count)
  })
}

/**
 * Waits until stdout and stderr have handed over what is queued, at most `graceMs`; then a
 * reader that stopped reading cannot keep a stopped command alive: it exits with what remains
 * unwritten dropped.
 */
export async function exitWhenFlushed(graceMs: number, streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): Promise<void> {
  const pending = streams.filter((stream) => stream.writableLength > 0)
  if (pending.length === 0) return
  let timer: NodeJS.Timeout | undefined
  const flushed = Promise.all(pending.map((stream) => new Promise((resolve) => stream.write('', resolve)))).then(() => true)
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))
  const done = await Promise.race([flushed, late])
  clearTimeout(timer)
  if (!done) process.exit(process.exitCode ?? 0)
}
