import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js'
import { changeLayer } from '../../services/config-layer.js'

export default class ConfigUnset extends BaseCommand {
  static override summary = 'Remove a setting from the etcd configuration'
  static override description = `Agents fall back to their YAML file or the default for it.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> config unset resync', '<%= config.bin %> config unset tags --for-node host-1']
  static override args = { setting: Args.string({ description: 'setting name', required: true }) }
  static override flags = { 'for-node': Flags.string({ summary: "one node's layer instead of every agent's" }) }

  async run(): Promise<{ key: string; values: Record<string, unknown>; changed: boolean }> {
    const { args, flags } = await this.parse(ConfigUnset)
    const result = await changeLayer(this.resolveConfig(flags), args.setting, undefined, flags['for-node'])
    if (!this.jsonEnabled()) this.out(result.changed ? `${args.setting} removed from ${result.key}` : `${args.setting} was not set`)
    return result
  }
}
