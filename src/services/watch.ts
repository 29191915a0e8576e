import { Agent } from '../core/agent/agent.js'
import type { AgentEvent } from '../core/agent/events.js'
import type { Config } from '../core/config.js'

export interface WatchOptions {
  config: Config
  version: string
  /** Receives every agent event (presenters subscribe here). */
  onEvent: (event: AgentEvent) => void
  /** Aborts on SIGINT/SIGTERM/`q`: the agent stops gracefully. */
  signal: AbortSignal
}

/** Runs the agent until `signal` aborts; the one lifecycle owner. */
export async function runWatch(options: WatchOptions): Promise<void> {
  const agent = new Agent({ config: options.config, version: options.version })
  agent.on('event', options.onEvent)
  const stopped = new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }))
  const starting = agent.start()
  // A signal during start-up (e.g. while etcd is still unreachable) must still stop cleanly.
  const first = await Promise.race([starting.then(() => 'started' as const), stopped.then(() => 'aborted' as const)])
  if (first === 'aborted') {
    await agent.stop('signal during start-up')
    await starting.catch(() => undefined)
    return
  }
  await stopped
  await agent.stop('signal')
}
