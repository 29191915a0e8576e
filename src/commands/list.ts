import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { abortOnSignals } from '../cli/signals.js'
import type { RecordProblem } from '../core/registry.js'
import { listInstances, watchInstanceChanges, writeInstancesJson, type InstanceChange } from '../services/list.js'
import { formatInstanceLine, renderInstanceTable } from '../ui/instance-table.js'
import { stdoutIsTTY } from '../ui/output-mode.js'

export default class List extends BaseCommand {
  static override summary = 'Show registered instances'
  static override description = `A table sorted by service then id; --json gives the array of records. --watch prints the current set and then every change until interrupted (NDJSON lines with --json: {ts, type: added|updated|removed|ready|problem|disconnected|resynced, …}).\n\n${EXIT_CODES_HELP}`
  static override examples = [
    '<%= config.bin %> list',
    '<%= config.bin %> list web --healthy --json',
    '<%= config.bin %> list --tag v2 --node host-1',
    '<%= config.bin %> list web --watch --json',
  ]
  static override args = { service: Args.string({ description: 'only this service' }) }
  static override flags = {
    healthy: Flags.boolean({ summary: 'only instances whose health is passing' }),
    tag: Flags.string({ summary: 'only instances with this tag (repeatable: all must match)', multiple: true }),
    // Overrides the shared --node (this agent's name), which list has no use for.
    node: Flags.string({ summary: 'only instances on this node' }),
    watch: Flags.boolean({ summary: 'keep running and print every change' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(List)
    const config = this.resolveConfig(flags)
    const filter = { service: args.service, healthy: flags.healthy, tags: flags.tag, node: flags.node }
    if (flags.watch) {
      const t = this.theme
      const print = (change: InstanceChange): void => {
        if (this.jsonEnabled()) return this.out(JSON.stringify({ ts: new Date().toISOString(), ...change }))
        const ts = t.muted(new Date().toISOString())
        if (change.type === 'added' || change.type === 'updated' || change.type === 'removed') {
          const mark = { added: '+', updated: '~', removed: '-' }[change.type]
          this.out(`${ts} ${mark} ${formatInstanceLine(change.instance, t)}`)
        } else if (change.type === 'ready') this.out(`${ts} watching (${change.count} instance${change.count === 1 ? '' : 's'})`)
        else if (change.type === 'problem') this.progress(`${ts} skipped ${change.key}: ${change.reason}`)
        else if (change.type === 'disconnected') this.progress(`${ts} etcd disconnected (${change.reason}); keeping the last known set, retrying`)
        else this.progress(`${ts} etcd reconnected; resynced`)
      }
      await watchInstanceChanges(config, filter, print, abortOnSignals())
      return
    }
    if (this.jsonEnabled()) {
      // Written here, in chunks, rather than returned for oclif to stringify in one piece: the
      // same array (compact on a pipe, indented on a terminal) at 100,000 records too.
      const warn = (problem: RecordProblem): void => this.progress(`warning: skipped ${problem.key}: ${problem.reason}`)
      await writeInstancesJson(config, filter, process.stdout, { pretty: stdoutIsTTY(), onProblem: warn })
      return
    }
    const { instances, problems } = await listInstances(config, filter)
    for (const problem of problems) this.progress(`warning: skipped ${problem.key}: ${problem.reason}`)
    this.out(renderInstanceTable(instances, this.theme))
  }
}
