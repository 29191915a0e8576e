import { EventEmitter } from 'node:events'
import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { servingFlags } from '../cli/flags.js'
import { abortOnSignals, boundOutput, exitWhenFlushed, survivePipeClose } from '../cli/signals.js'
import type { Config } from '../core/config.js'
import { UsageError } from '../core/errors.js'
import { AgentStore } from '../core/store.js'
import type { InstanceRecord } from '../core/model.js'
import { startServers, type Servers } from '../services/serve.js'
import { agentActions, type AgentActions } from '../services/tui-actions.js'
import { runWatch } from '../services/watch.js'
import { startPresenter } from '../ui/run-presenter.js'

/** Output queued for a reader that does not read, per stream, before writes are dropped. */
const OUTPUT_LIMIT_BYTES = 4 * 1024 * 1024
/** After a stop, how long a slow reader gets to take the rest of the output. */
const EXIT_GRACE_MS = 2_000

export default class Watch extends BaseCommand {
  static override summary = 'Run the agent: Docker → registry, health checks, leader election'
  static override description = `Runs in the foreground until q, Ctrl+C or SIGTERM, which resign leadership and revoke this node's lease, so its instances vanish at once. A live view on a terminal, timestamped lines when output is not a terminal (or CI / TERM=dumb), NDJSON events with --json. --dev starts a throwaway single-member etcd first.\n\n${EXIT_CODES_HELP}`
  static override examples = [
    '<%= config.bin %> watch',
    '<%= config.bin %> watch --dev',
    '<%= config.bin %> watch --etcd-endpoints 10.0.0.1:2379 --ttl 15s --metrics-port 9464 --json',
  ]
  static override flags = {
    dev: Flags.boolean({ summary: 'start a throwaway local etcd (needs the etcd binary on PATH) and use it' }),
    ttl: Flags.string({ summary: 'lease TTL of this agent (env DISCOVERY_TTL; default 10s)' }),
    resync: Flags.string({ summary: 'full resync interval (env DISCOVERY_RESYNC; default 30s)' }),
    'address-mode': Flags.string({ summary: 'published (host ports) or container (container IP and port)', options: ['published', 'container'] }),
    network: Flags.string({ summary: 'with --address-mode container: the network whose IP to register' }),
    'advertise-address': Flags.string({ summary: 'address to register when a port is published on all interfaces' }),
    'exposed-by-default': Flags.boolean({ summary: 'register containers without discovery.enable=true (default on)', allowNo: true }),
    'deregister-critical-after': Flags.string({ summary: 'remove instances critical for this long, e.g. 5m' }),
    'metrics-port': Flags.string({ summary: 'serve Prometheus /metrics and /healthz on this port' }),
    'metrics-host': Flags.string({ summary: 'address for the metrics server (default 127.0.0.1)' }),
    'check-concurrency': Flags.string({ summary: 'most health checks in flight at once (default 64)' }),
    tags: Flags.string({ summary: 'tags added to every container instance, comma-separated, \\, keeps a comma (Registrator -tags)' }),
    explicit: Flags.boolean({ summary: 'register only ports with an explicit service name: SERVICE_NAME, SERVICE_<port>_NAME, discovery.service (Registrator -explicit)', allowNo: true }),
    'use-ip-from-label': Flags.string({ summary: 'register the address held in this container label, e.g. 10.0.0.5/24 (Registrator -useIpFromLabel)' }),
    filter: Flags.string({
      summary: 'own only the containers Docker lists with this filter, docker ps syntax: label=team=a, name=web, ancestor=, network=, publish=, expose=, volume=, is-task= (repeatable; env DISCOVERY_FILTER, comma-separated)',
      multiple: true,
    }),
    swarm: Flags.boolean({ summary: 'register Docker Swarm services: one agent on a manager, elected among them, registers their tasks under node "swarm"; task containers are left to it', allowNo: true }),
    'swarm-address-mode': Flags.string({ summary: 'with --swarm: published (host-mode ports), task (task address on --swarm-network) or vip; default per service', options: ['published', 'task', 'vip'] }),
    'swarm-network': Flags.string({ summary: 'with --swarm: the overlay network whose addresses are registered' }),
    ...servingFlags,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Watch)
    let config = this.resolveConfig(flags)
    if (flags.dev && flags['etcd-endpoints']) {
      throw new UsageError('--dev starts its own etcd, so it does not take --etcd-endpoints', { hint: 'drop one of the two flags' })
    }
    const dev = flags.dev ? await (await import('../core/dev-etcd.js')).startDevEtcd() : undefined
    // --dev uses its own etcd, and serves DNS and HTTP on Consul's ports unless told otherwise.
    const withDev = (c: Config): Config =>
      dev ? { ...c, etcd: { endpoints: [dev.endpoint] }, serve: { ...c.serve, dns: c.serve.dns ?? { host: '127.0.0.1', port: 8600 }, http: c.serve.http ?? { host: '127.0.0.1', port: 8500 } } } : c
    config = withDev(config)
    if (dev) this.progress(`--dev: started a throwaway etcd at ${dev.endpoint} (data in ${dev.dataDir}, removed on exit)`)
    const store = new AgentStore({ node: config.node, dockerHost: config.docker.host, etcdEndpoints: config.etcd.endpoints, coalesceMs: 50 })
    const controller = new AbortController()
    let stopReason = 'signal'
    survivePipeClose(process.stdout, () => store.apply({ type: 'error', message: 'stdout was closed by its reader; output dropped, the agent goes on' }))
    // A reader that stops reading costs at most OUTPUT_LIMIT_BYTES of memory per stream.
    for (const [stream, name] of [[process.stdout, 'stdout'], [process.stderr, 'stderr']] as const) {
      boundOutput(stream, OUTPUT_LIMIT_BYTES, (dropped) => store.apply({ type: 'error', message: `${name}'s reader fell behind: ${dropped} writes dropped` }))
    }
    // SIGHUP re-reads the configuration (a closed SSH session sends it too: it never kills the agent).
    const reloads = new EventEmitter<{ reload: [trigger: string] }>()
    process.on('SIGHUP', () => reloads.emit('reload', 'SIGHUP'))
    abortOnSignals().addEventListener('abort', () => controller.abort(), { once: true })
    const metricsPort = config.agent.metricsPort
    const metrics =
      metricsPort === undefined
        ? undefined
        : await (await import('../services/metrics-server.js')).startMetricsServer(store, { host: config.agent.metricsHost, port: metricsPort, version: this.config.version }).catch((error: NodeJS.ErrnoException) => {
            throw new UsageError(`--metrics-port ${metricsPort}: cannot listen on ${config.agent.metricsHost} (${error.code ?? error.message})`, { hint: 'choose a free port' })
          })
    if (metrics) this.progress(`metrics at ${metrics.url}/metrics, health at ${metrics.url}/healthz`)
    // The live view's actions reach the agent once it runs (until then they say so).
    let agentSide: AgentActions | undefined
    const starting = (): Promise<never> => Promise.reject(new Error('the agent is still starting'))
    const actions = {
      checkNow: (record: InstanceRecord) => agentSide?.checkNow(record) ?? starting(),
      maintenance: (record: InstanceRecord, on: boolean) => agentSide?.maintenance(record, on) ?? starting(),
      deregister: (record: InstanceRecord) => agentSide?.deregister(record) ?? starting(),
    }
    const presenter = await startPresenter(
      this.outputMode,
      store,
      this.theme,
      () => {
        stopReason = 'q pressed'
        controller.abort()
      },
      { actions },
    )
    try {
      let servers: Servers | undefined
      await runWatch({
        config,
        version: this.config.version,
        store,
        signal: controller.signal,
        stopReason: () => stopReason,
        // The live view and the servers read every node's records; log lines only this node's.
        wholeRegistry: this.outputMode === 'tty' || config.serve.dns !== undefined || config.serve.http !== undefined,
        reloads,
        resolveWith: (layers) => withDev(this.resolveConfig(flags, layers)),
        onView: async (view) => {
          servers = await startServers(view, config, this.config.version)
          if (servers.dns) this.progress(`DNS on ${servers.dns.host}:${servers.dns.port} (udp+tcp), domain ${config.serve.dnsDomain}`)
          if (servers.http) this.progress(`Consul HTTP API on ${servers.http.url}`)
          store.setServing({ ...(servers.dns ? { dns: `${servers.dns.host}:${servers.dns.port}` } : {}), ...(servers.http ? { http: servers.http.url } : {}) })
        },
        onAgent: (agent, registry) => {
          agentSide = agentActions(agent, registry)
        },
      }).finally(() => servers?.close())
    } finally {
      await presenter.close()
      await metrics?.close()
      await dev?.stop()
    }
    // Stopped: a reader that no longer reads must not keep the process alive.
    await exitWhenFlushed(EXIT_GRACE_MS)
  }
}
