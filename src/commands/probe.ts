import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { UsageError } from '../core/errors.js'

export default class Probe extends BaseCommand {
  static override summary = 'Health-check targets once, or until healthy with --wait (a CI gate)'
  static override description = `Targets: http(s)://host:port/path, tcp://host:port, docker://<container>, or --service <name> for every registered instance.\n\n${EXIT_CODES_HELP}`
  static override examples = [
    '<%= config.bin %> probe http://127.0.0.1:8080/health --wait 60s',
    '<%= config.bin %> probe tcp://db.internal:5432 --timeout 2s',
  ]
  static override strict = false
  static override args = { target: Args.string({ description: 'target URL (repeatable)' }) }
  static override flags = {
    service: Flags.string({ summary: 'probe every registered instance of this service' }),
    all: Flags.boolean({ summary: 'with --service: every instance must pass (default: any one)' }),
    timeout: Flags.string({ summary: 'per-attempt timeout (default 5s)' }),
    'expect-status': Flags.string({ summary: 'accepted HTTP statuses, e.g. 200 or 200-299 (default 200-399)' }),
    'expect-body': Flags.string({ summary: 'regular expression the HTTP body must match' }),
    exec: Flags.string({ summary: 'with docker://: run this command in the container instead of reading its HEALTHCHECK' }),
    wait: Flags.string({ summary: 'retry until healthy or this deadline, e.g. 60s' }),
    interval: Flags.string({ summary: 'with --wait: time between attempts (default 1s)' }),
  }

  async run(): Promise<void> {
    await this.parse(Probe)
    throw new UsageError('probe is not implemented yet', { hint: 'it lands with the health checks' })
  }
}
