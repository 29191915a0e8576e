import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js'
import { printable } from '../../core/text.js'
import { getLayer } from '../../services/config-layer.js'

export default class ConfigGet extends BaseCommand {
  static override summary = 'Show the configuration agents read from etcd'
  static override description = `The etcd layer of the configuration: <prefix>/config/agents for every agent, <prefix>/config/nodes/<node> with --for-node. Flags and environment variables of an agent override it; it overrides the agent's YAML file.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> config get', '<%= config.bin %> config get --for-node host-1 --json']
  static override flags = { 'for-node': Flags.string({ summary: "one node's layer instead of every agent's" }) }

  async run(): Promise<{ key: string; values: Record<string, unknown> }> {
    const { flags } = await this.parse(ConfigGet)
    const layer = await getLayer(this.resolveConfig(flags), flags['for-node'])
    if (!this.jsonEnabled()) {
      const entries = Object.entries(layer.values)
      if (entries.length === 0) this.out(this.theme.muted(`${layer.key}: nothing set`))
      for (const [key, value] of entries) this.out(printable(`${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`))
    }
    return layer
  }
}
