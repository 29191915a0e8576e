import { Agent } from '../core/agent/agent.js'
import type { AgentEvent } from '../core/agent/events.js'
import { LeaderElection } from '../core/cluster/election.js'
import { LeaderDuties } from '../core/cluster/leader-duties.js'
import type { Config } from '../core/config.js'
import type { AgentStore } from '../core/store.js'

export interface WatchOptions {
  config: Config
  version: string
  /** Every event and the registry view go into this one store; presenters subscribe to it. */
  store: AgentStore
  /** Aborts on SIGINT/SIGTERM/`q`: the agent stops gracefully. */
  signal: AbortSignal
  /** Why it stopped (`q`, SIGTERM…), for the log. */
  stopReason?: () => string
}

/**
 * Runs the agent, its campaign and the leader duties until `signal` aborts; the one
 * lifecycle owner. Stop order: resign (the next leader is elected at once), then the
 * agent revokes its lease (its instances vanish at once).
 */
export async function runWatch(options: WatchOptions): Promise<void> {
  const { config } = options
  const { store } = options
  const emit = (event: AgentEvent): void => store.apply(event)
  const agent = new Agent({ config, version: options.version })
  agent.on('event', emit)
  const election = new LeaderElection(agent.registryClient.client, config.prefix, config.node, config.agent.ttlMs)
  const duties = new LeaderDuties(agent.registryClient, election, config.node, {
    ttlMs: config.agent.ttlMs,
    deregisterCriticalAfterMs: config.agent.deregisterCriticalAfterMs,
    checkConcurrency: config.agent.checkConcurrency,
  })
  wireLeaderEvents(election, duties, config.node, emit)

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
  // The cluster view for presenters: every instance in the registry, followed live.
  const mirror = agent.registryClient.watchInstances()
  mirror.on('put', (entry) => store.putInstance(entry.key, entry.value))
  mirror.on('delete', (entry) => store.removeInstance(entry.key))
  const following = mirror.start().catch((error) => emit({ type: 'error', message: `following the registry: ${(error as Error).message}` }))
  await stopped
  duties.stop()
  await election.resign()
  await following
  await mirror.close()
  await agent.stop(options.stopReason?.() ?? 'signal')
  store.flush()
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
