import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js'
import { NotFoundError } from '../../core/errors.js'
import { describeTarget, disableMaintenance, maintenanceTarget } from '../../services/maint.js'

export default class MaintDisable extends BaseCommand {
  static override summary = 'Put a node, a service or one instance back into rotation'
  static override description = `Lifts the mark; its instances return to the health their checks give them. Exit 1 when there was no such mark, unless --missing-ok.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> maint disable --node host-3', '<%= config.bin %> maint disable --service web --id host-1:web:80']
  static override flags = {
    node: Flags.string({ summary: 'the node' }),
    service: Flags.string({ summary: 'the service (with --id: one instance of it)' }),
    id: Flags.string({ summary: 'the instance id (with --service)' }),
    'missing-ok': Flags.boolean({ summary: 'exit 0 when there was no such mark' }),
  }

  async run(): Promise<{ target: string; removed: boolean }> {
    const { flags } = await this.parse(MaintDisable)
    const target = maintenanceTarget(flags)
    const removed = await disableMaintenance(this.resolveConfig(flags), target)
    if (!removed && !flags['missing-ok']) throw new NotFoundError(`${describeTarget(target)} is not in maintenance`, { hint: 'see discovery-agent maint list, or pass --missing-ok' })
    if (!this.jsonEnabled()) this.out(removed ? `${describeTarget(target)} back in rotation` : `${describeTarget(target)} was not in maintenance`)
    return { target: describeTarget(target), removed }
  }
}
