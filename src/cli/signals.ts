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
