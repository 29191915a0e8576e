import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { NotFoundError } from '../core/errors.js'
import { deregisterInstance } from '../services/register.js'

export default class Deregister extends BaseCommand {
  static override summary = 'Remove one instance from the registry'
  static override description = `Deletes <prefix>/services/<service>/<id>. Exit 1 when there was no such instance, unless --missing-ok.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> deregister billing billing-10.0.0.5-8080', '<%= config.bin %> deregister web web-1 --missing-ok']
  static override args = {
    service: Args.string({ description: 'service name', required: true }),
    id: Args.string({ description: 'instance id', required: true }),
  }
  static override flags = {
    'missing-ok': Flags.boolean({ summary: 'exit 0 when the instance does not exist' }),
  }

  async run(): Promise<{ service: string; id: string; removed: boolean }> {
    const { args, flags } = await this.parse(Deregister)
    const removed = await deregisterInstance(this.resolveConfig(flags), args.service, args.id)
    if (!removed && !flags['missing-ok']) {
      throw new NotFoundError(`instance ${args.id} of service ${args.service} is not registered`, { hint: 'check the id with discovery-agent list, or pass --missing-ok' })
    }
    if (!this.jsonEnabled()) this.out(removed ? `removed ${args.service}/${args.id}` : `${args.service}/${args.id} was not registered`)
    return { service: args.service, id: args.id, removed }
  }
}
