import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { abortOnSignals } from '../cli/signals.js'
import { runWatch } from '../services/watch.js'
import { formatEventJson, formatEventLine } from '../ui/event-printers.js'

export default class Watch extends BaseCommand {
  static override summary = 'Run the agent: Docker → registry, health checks, leader election'
  static override description = `Runs in the foreground until Ctrl+C / SIGTERM (which revoke this node's lease, so its instances vanish at once). An Ink view on a terminal, timestamped lines when output is not a terminal, NDJSON events with --json. --dev starts a throwaway single-member etcd first.\n\n${EXIT_CODES_HELP}`
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
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Watch)
    const config = this.resolveConfig(flags)
    const json = this.jsonEnabled()
    const theme = this.theme
    await runWatch({
      config,
      version: this.config.version,
      signal: abortOnSignals(),
      onEvent: (event) => {
        const line = json ? formatEventJson(event) : formatEventLine(event, theme)
        if (line) process.stdout.write(`${line}\n`)
      },
    })
  }
}
