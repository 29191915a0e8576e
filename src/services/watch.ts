import { Agent } from '../core/agent/agent.js'
import type { AgentEvent } from '../core/agent/events.js'
import { LeaderElection } from '../core/cluster/election.js'
import { LeaderDuties } from '../core/cluster/leader-duties.js'
import { SwarmDuty } from '../core/cluster/swarm-duty.js'
import { createDockerClient } from '../core/docker/client.js'
import type { EventEmitter } from 'node:events'
import { SWARM_NODE, type Config, type EtcdConfigLayer } from '../core/config.js'
import { configAgentsKey, configNodeKey, configReloadKey } from '../core/keys.js'
import { configObject, type ConfigStatus } from '../core/registry.js'
import type { ViewChange } from '../core/view/view-state.js'
import type { Registry } from '../core/registry.js'
import type { AgentStore } from '../core/store.js'
import type { RegistryView } from '../core/view/registry-view.js'
import { openView } from './open-view.js'

export interface WatchOptions {
  config: Config
  version: string
  /** Every event and the registry view go into this one store; presenters subscribe to it. */
  store: AgentStore
  /** Aborts on SIGINT/SIGTERM/SIGHUP-less stop requests and `q`: the agent stops gracefully. */
  signal: AbortSignal
  /** Why it stopped (`q`, SIGTERM…), for the log. */
  stopReason?: () => string
  /** Called once the view is open, e.g. to start the DNS and HTTP servers over it. */
  onView?: (view: RegistryView, registry: Registry) => Promise<void> | void
  /**
   * Resolves the whole configuration again (flags > env > the given etcd layers > the YAML file,
   * re-read): at start, on SIGHUP (`reloads` emits 'reload'), and when the etcd layer changes.
   */
  resolveWith?: (layers: EtcdConfigLayer[]) => Config
  reloads?: EventEmitter<{ reload: [trigger: string] }>
  /** Told once the agent runs, e.g. to wire the live view's actions to it. */
  onAgent?: (agent: Agent, registry: Registry) => void
  /**
   * Whether something in the process reads every node's records: the live view, the DNS or HTTP
   * server. Without one, the view keeps only this node's Docker records (and Swarm's, with
   * --swarm) and widens to the whole registry only while this agent leads.
   */
  wholeRegistry: boolean
}

/**
 * Runs the agent, its campaign and the leader duties until `signal` aborts; the one
 * lifecycle owner. It opens the process's registry adapter and its one view, and hands
 * them to the agent, the leader duties, the store (and the servers). Stop order: resign
 * (the next leader is elected at once), then the agent revokes its lease (its instances
 * vanish at once). A fatal agent error (its node name taken) stops everything and rethrows.
 */
export async function runWatch(options: WatchOptions): Promise<void> {
  const { store } = options
  const emit = (event: AgentEvent): void => store.apply(event)
  const stopped = new Promise<'aborted'>((resolve) => options.signal.addEventListener('abort', () => resolve('aborted'), { once: true }))
  // A term that pauses (a late lease renewal) and resumes within a TTL keeps the widened view.
  const scoped = options.wholeRegistry
    ? {}
    : { nodes: options.config.agent.swarm ? [options.config.node, SWARM_NODE] : [options.config.node], narrowAfterMs: options.config.agent.ttlMs }
  const opened = await openView(options.config, emit, options.signal, scoped)
  if (!opened) return
  const { registry, view } = opened
  if (!view.whole) emit({ type: 'view.scope', whole: false, instances: view.state.size, durationMs: 0 })
  view.on('scope', (scope) => emit({ type: 'view.scope', ...scope }))
  let config = options.config
  const layersOf = (): EtcdConfigLayer[] => etcdLayers(view, config)
  if (options.resolveWith && layersOf().length > 0) {
    // The etcd layer counts from the start; a bad one is reported and the rest starts as given.
    try {
      config = options.resolveWith(layersOf())
    } catch (error) {
      emit({ type: 'config.rejected', error: (error as Error).message, trigger: 'start' })
    }
  }
  const release = followInStore(view, store)
  try {
    // Servers bind before the agent claims anything: a bad address fails with nothing to undo.
    await options.onView?.(view, registry)
  } catch (error) {
    release()
    await view.close()
    registry.close()
    throw error
  }
  const agent = new Agent({ config, version: options.version, registry, view })
  agent.on('event', emit)
  // All or nothing: resolved whole, applied by the agent or refused; every agent reports the
  // outcome under <prefix>/config/status/<node> (what `reload` waits for).
  const reconfigure = async (trigger: string): Promise<void> => {
    if (!options.resolveWith) return
    const at = new Date().toISOString()
    let status: ConfigStatus
    try {
      const changed = agent.applyConfig(options.resolveWith(layersOf()))
      emit({ type: 'config.applied', changed, trigger })
      status = { result: 'applied', trigger, at, changed, ...(agent.currentConfig.sources ? { sources: agent.currentConfig.sources } : {}) }
    } catch (error) {
      const message = (error as Error).message
      emit({ type: 'config.rejected', error: message, trigger })
      status = { result: 'rejected', trigger, at, error: message }
    }
    await registry.putConfigStatus(config.node, status, agent.leaseId).catch((error: Error) => emit({ type: 'error', message: `reporting the configuration: ${error.message}` }))
  }
  const onReload = (trigger: string): void => void reconfigure(trigger)
  options.reloads?.on('reload', onReload)
  const configKeys = new Set([configAgentsKey(config.prefix), configNodeKey(config.prefix, config.node)])
  const reloadKey = configReloadKey(config.prefix)
  const onConfigChange = (change: ViewChange): void => {
    if ([...change.config].some((key) => configKeys.has(key))) void reconfigure('etcd')
    if (change.config.has(reloadKey) && view.state.config(reloadKey) !== undefined) void reconfigure('reload --cluster')
  }
  view.on('change', onConfigChange)
  let fatal: Error | undefined
  const fatalSeen = new Promise<'fatal'>((resolve) => agent.once('fatal', (error) => ((fatal = error), resolve('fatal'))))
  const election = new LeaderElection(registry.client, config.prefix, config.node, config.agent.ttlMs)
  const duties = new LeaderDuties(registry, view, election, config.node, {
    ttlMs: config.agent.ttlMs,
    deregisterCriticalAfterMs: config.agent.deregisterCriticalAfterMs,
    checkConcurrency: config.agent.checkConcurrency,
  })
  wireLeaderEvents(election, duties, config.node, emit)
  const swarm = config.agent.swarm ? startSwarmDuty(registry, view, config, options.version, emit) : undefined
  try {
    const starting = agent.start()
    // A signal during start-up (e.g. while etcd is still unreachable) must still stop cleanly.
    const first = await Promise.race([starting.then(() => 'started' as const), stopped])
    if (first === 'aborted') {
      await agent.stop('signal during start-up')
      await starting.catch(() => undefined)
      return
    }
    election.start()
    swarm?.start()
    options.onAgent?.(agent, registry)
    // Report the configuration in force and where each setting came from (status --show-config).
    void reconfigure('start')
    await Promise.race([stopped, fatalSeen])
    duties.stop()
    await Promise.all([swarm?.stop(), election.resign()])
    await agent.stop(fatal ? `fatal: ${fatal.message}` : (options.stopReason?.() ?? 'signal'))
  } finally {
    options.reloads?.off('reload', onReload)
    view.off('change', onConfigChange)
    release()
    await view.close()
    registry.close()
    store.flush()
  }
  if (fatal) throw fatal
}

/** The etcd configuration layers in the view, most specific first; a value that is no JSON object is an error naming its key. */
function etcdLayers(view: RegistryView, config: Config): EtcdConfigLayer[] {
  const layers: EtcdConfigLayer[] = []
  for (const key of [configNodeKey(config.prefix, config.node), configAgentsKey(config.prefix)]) {
    const value = view.state.config(key)
    if (value !== undefined) layers.push({ key, values: configObject(key, value) })
  }
  return layers
}

/** The store shows the view: every change of an instance key is put or removed there. */
export function followInStore(view: RegistryView, store: AgentStore): () => void {
  for (const entry of view.snapshot().instances) store.putInstance(entry.key, entry.record)
  store.setNodes(view.snapshot().nodes.map((n) => n.record))
  const onChange = (change: { keys: ReadonlySet<string>; nodes: boolean }): void => {
    if (change.nodes) store.setNodes(view.snapshot().nodes.map((n) => n.record))
    for (const key of change.keys) {
      const entry = view.state.instance(key)
      if (entry) store.putInstance(key, entry.record)
      else store.removeInstance(key)
    }
  }
  view.on('change', onChange)
  return () => view.off('change', onChange)
}

/** Listing services, tasks and nodes fails after this long (a hung engine), and is retried. */
const SWARM_LIST_TIMEOUT_MS = 15_000

/** --swarm: the leader registers Swarm services' tasks under node `swarm` (core/cluster/swarm-duty.ts). */
function startSwarmDuty(registry: Registry, view: RegistryView, config: Config, version: string, emit: (event: AgentEvent) => void): SwarmDuty {
  const settings = config.agent.swarm ?? {}
  // Listings time out (a hung engine fails a refresh); the event streams must not.
  const dockers = { list: createDockerClient(config.docker, { timeoutMs: SWARM_LIST_TIMEOUT_MS }), events: createDockerClient(config.docker) }
  const duty = new SwarmDuty(registry, view, dockers, {
    version,
    node: config.node,
    ttlMs: config.agent.ttlMs,
    dockerHost: config.docker.host,
    exposedByDefault: config.agent.exposedByDefault,
    advertiseAddress: config.agent.advertiseAddress,
    resyncMs: config.agent.resyncMs,
    ...(settings.addressMode ? { addressMode: settings.addressMode } : {}),
    ...(settings.network ? { network: settings.network } : {}),
  })
  duty.on('registered', (instance) => emit({ type: 'instance.registered', instance }))
  duty.on('updated', (instance) => emit({ type: 'instance.updated', instance }))
  duty.on('removed', (removed) => emit({ type: 'instance.removed', ...removed }))
  duty.on('problem', ({ service, label, value, reason }) => emit({ type: 'container.problem', container: `swarm service ${service}`, label, value, reason }))
  duty.on('acting', (acting, term) => emit({ type: 'swarm.acting', acting, term: term ?? null }))
  duty.on('trouble', (message) => emit({ type: 'error', message }))
  return duty
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
