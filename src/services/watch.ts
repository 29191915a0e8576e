import { Agent } from '../core/agent/agent.js'
import type { AgentEvent } from '../core/agent/events.js'
import { LeaderElection } from '../core/cluster/election.js'
import { LeaderDuties } from '../core/cluster/leader-duties.js'
import type { Config } from '../core/config.js'

export interface WatchOptions {
  config: Config
  version: string
  /** Receives every agent event (presenters subscribe here). */
  onEvent: (event: AgentEvent) => void
  /** Aborts on SIGINT/SIGTERM/`q`: the agent stops gracefully. */
  signal: AbortSignal
}

/**
 * Runs the agent, its campaign and the leader duties until `signal` aborts; the one
 * lifecycle owner. Stop order: resign (the next leader is elected at once), then the
 * agent revokes its lease (its instances vanish at once).
 */
export async function runWatch(options: WatchOptions): Promise<void> {
  const { config } = options
  const agent = new Agent({ config, version: options.version })
  agent.on('event', options.onEvent)
  const election = new LeaderElection(agent.registryClient.client, config.prefix, config.node, config.agent.ttlMs)
  const duties = new LeaderDuties(agent.registryClient, election, config.node, {
    ttlMs: config.agent.ttlMs,
    deregisterCriticalAfterMs: config.agent.deregisterCriticalAfterMs,
    checkConcurrency: config.agent.checkConcurrency,
  })
  wireLeaderEvents(election, duties, config.node, options.onEvent)

  const stopped = new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }))
  const starting = agent.start()
  // A signal during start-up (e.g. while etcd is still unreachable) must still stop cleanly.
  const first = await Promise.race([starting.then(() => 'started' as const), stopped.then(() => 'aborted' as const)])
  if (first === 'aborted') {
    await agent.stop('signal during start-up')
    await starting.catch(() => undefined)
    return
  }
  election.start()
  await stopped
  duties.stop()
  await election.resign()
  await agent.stop('signal')
}

function wireLeaderEvents(election: LeaderElection, duties: LeaderDuties, node: string, emit: (event: AgentEvent) => void): void {
  election.on('leader', (leader) => emit({ type: 'leader.changed', leader: leader?.node ?? null, term: leader?.term ?? null, self: leader?.node === node }))
  election.on('acting', (acting, term) => emit({ type: 'leader.acting', acting, term: term ?? null }))
  election.on('trouble', (message, retryInMs) => emit({ type: 'election.trouble', message, retryInMs }))
  duties.on('health.changed', (change) => emit({ type: 'health.changed', ...change }))
  duties.on('gc', ({ service, id, reason }) => emit({ type: 'instance.removed', service, id, reason: `leader: ${reason}` }))
  duties.on('fenced-write', (write) => emit({ type: 'leader.write', ...write }))
  duties.on('trouble', (message) => emit({ type: 'error', message }))
}
