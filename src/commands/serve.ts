import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { servingFlags } from '../cli/flags.js'
import { abortOnSignals } from '../cli/signals.js'
import { describeAgentEvent } from '../ui/event-text.js'
import { runServe } from '../services/serve.js'

export default class Serve extends BaseCommand {
  static override summary = 'Serve the registry over DNS and a read-only Consul HTTP API (no Docker, no campaign)'
  static override description = `For hosts that only consume: follows the registry in memory and answers DNS (Consul's name forms under --dns-domain) and the Consul catalog/health HTTP API, until Ctrl+C or SIGTERM. SIGHUP is ignored.\n\n${EXIT_CODES_HELP}`
  static override examples = [
    '<%= config.bin %> serve --dns-addr 127.0.0.1:8600 --http-addr 127.0.0.1:8500',
    '<%= config.bin %> serve --dns-addr 172.17.0.1:53 --dns-recursor 1.1.1.1',
  ]
  static override flags = servingFlags

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve)
    const config = this.resolveConfig(flags)
    process.on('SIGHUP', () => this.progress('SIGHUP ignored (serve has nothing to reload)'))
    await runServe({
      config,
      version: this.config.version,
      signal: abortOnSignals(),
      emit: (event) => this.progress(describeAgentEvent(event)),
      onListening: (servers) => {
        if (servers.dns) this.progress(`DNS on ${servers.dns.host}:${servers.dns.port} (udp+tcp), domain ${config.serve.dnsDomain}`)
        if (servers.http) this.progress(`Consul HTTP API on ${servers.http.url}`)
      },
    })
  }
}
