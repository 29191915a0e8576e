import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js'
import { changeLayer } from '../../services/config-layer.js'

export default class ConfigSet extends BaseCommand {
  static override summary = 'Set a setting for every agent (or one node) in etcd; running agents apply it at once'
  static override description = `Validated as the agents validate it (exit 2 and nothing written for a bad value). Settings agents apply while running: resync, deregister-critical-after, check-concurrency, address-mode, network, advertise-address, exposed-by-default, tags, explicit, use-ip-from-label.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> config set resync 10s', '<%= config.bin %> config set check-concurrency 32 --for-node host-1']
  static override args = {
    setting: Args.string({ description: 'setting name (as the flag, without dashes)', required: true }),
    value: Args.string({ description: 'its value, as on the command line', required: true }),
  }
  static override flags = { 'for-node': Flags.string({ summary: "set it for one node only" }) }

  async run(): Promise<{ key: string; values: Record<string, unknown>; changed: boolean }> {
    const { args, flags } = await this.parse(ConfigSet)
    const result = await changeLayer(this.resolveConfig(flags), args.setting, args.value, flags['for-node'])
    if (!this.jsonEnabled()) this.out(result.changed ? `${args.setting} set in ${result.key}` : `${args.setting} was already ${args.value}`)
    return result
  }
}
