import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { UsageError } from '../core/errors.js'

export default class Status extends BaseCommand {
  static override summary = 'Cluster overview: leader, nodes, instance counts by health'
  static override description = `Shows the elected leader (node, term, since), every agent node and the instance totals.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json']

  async run(): Promise<void> {
    await this.parse(Status)
    throw new UsageError('status is not implemented yet', { hint: 'use discovery-agent list for now' })
  }
}
