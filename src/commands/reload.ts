import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { parseDuration } from '../core/duration.js'
import { UnavailableError, UsageError } from '../core/errors.js'
import { printable } from '../core/text.js'
import { reloadAgents, type ReloadResult } from '../services/config-layer.js'

export default class Reload extends BaseCommand {
  static override summary = "Make agents re-read their configuration and report the result"
  static override description = `Without --cluster: signals the agent of this host's node (SIGHUP) and waits for its report. With --cluster: every live agent re-reads its file and the etcd layer. Exit 0 when every agent applied it, 2 when one rejected it (it keeps the configuration in force), 3 when one did not answer in time.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> reload', '<%= config.bin %> reload --cluster --timeout 10s']
  static override flags = {
    cluster: Flags.boolean({ summary: 'every live agent, not only this host’s' }),
    timeout: Flags.string({ summary: 'how long to wait for the reports (default 10s)' }),
  }

  async run(): Promise<ReloadResult[]> {
    const { flags } = await this.parse(Reload)
    const timeoutMs = flags.timeout === undefined ? 10_000 : parseDuration(flags.timeout, '--timeout')
    const results = await reloadAgents(this.resolveConfig(flags), { cluster: flags.cluster, timeoutMs })
    if (!this.jsonEnabled()) {
      for (const { node, status } of results) {
        const line = !status ? `${node}: no report within ${Math.round(timeoutMs / 1000)}s` : status.result === 'applied' ? `${node}: applied${status.changed?.length ? ` (${status.changed.join(', ')} changed)` : ' (nothing changed)'}` : `${node}: rejected: ${status.error}`
        this.out(printable(line))
      }
    }
    const rejected = results.find((r) => r.status?.result === 'rejected')
    if (rejected) throw new UsageError(`${rejected.node} rejected the configuration: ${rejected.status?.error}`, { hint: 'fix the named setting; the agent keeps the configuration in force' })
    const silent = results.find((r) => !r.status)
    if (silent) throw new UnavailableError(`${silent.node} did not report within ${Math.round(timeoutMs / 1000)}s`, { hint: 'check that the agent runs (discovery-agent status)' })
    return results
  }
}
