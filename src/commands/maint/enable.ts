import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js'
import { describeTarget, enableMaintenance, maintenanceTarget } from '../../services/maint.js'

export default class MaintEnable extends BaseCommand {
  static override summary = 'Take a node, a service or one instance out of rotation, with a reason'
  static override description = `Stored in etcd (<prefix>/maintenance/…), so it holds across agent restarts and for the whole cluster. Instances it covers stay listed with status "maintenance" and the reason, and are left out wherever healthy instances are served (list --healthy, status, the resolver, DNS, HTTP).\n\n${EXIT_CODES_HELP}`
  static override examples = [
    '<%= config.bin %> maint enable --node host-3 --reason "kernel upgrade"',
    '<%= config.bin %> maint enable --service billing --reason "migration until 14:00"',
    '<%= config.bin %> maint enable --service web --id host-1:web:80 --reason "heap dump"',
  ]
  static override flags = {
    node: Flags.string({ summary: 'every instance of this node' }),
    service: Flags.string({ summary: 'every instance of this service (with --id: one instance of it)' }),
    id: Flags.string({ summary: 'the instance id (with --service)' }),
    reason: Flags.string({ summary: 'why (shown in list, status, the live view and Consul’s Notes)', required: true }),
  }

  async run(): Promise<{ target: string; reason: string; by: string; since: string }> {
    const { flags } = await this.parse(MaintEnable)
    const config = this.resolveConfig(flags)
    const target = maintenanceTarget(flags)
    const mark = await enableMaintenance(config, target, flags.reason)
    if (!this.jsonEnabled()) this.out(`${describeTarget(target)} in maintenance: ${mark.reason}`)
    return { target: describeTarget(target), ...mark }
  }
}
