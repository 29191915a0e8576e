import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js'
import { printable } from '../../core/text.js'
import { describeTarget, listMaintenance, type MaintenanceEntry } from '../../services/maint.js'

export default class MaintList extends BaseCommand {
  static override summary = 'Show what is in maintenance, since when, why and by whom'
  static override description = `One line per mark, with the number of instances it covers now.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> maint list', '<%= config.bin %> maint list --json']

  async run(): Promise<MaintenanceEntry[]> {
    const { flags } = await this.parse(MaintList)
    const entries = await listMaintenance(this.resolveConfig(flags))
    if (!this.jsonEnabled()) {
      if (entries.length === 0) this.out(this.theme.muted('nothing is in maintenance'))
      for (const e of entries) this.out(printable(`${describeTarget(e.target)}: ${e.reason} — by ${e.by} since ${e.since} (${e.instances} instance${e.instances === 1 ? '' : 's'})`))
    }
    return entries
  }
}
