import { Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { formatAge } from '../core/duration.js'
import { printable } from '../core/text.js'
import { readClusterStatus, type ClusterStatus } from '../services/status.js'

export default class Status extends BaseCommand {
  static override summary = 'Cluster overview: leader, nodes, instance counts by health'
  static override description = `Shows the elected leader (node, term, since), every agent node with its instance counts, and the totals. "healthy" counts only passing instances.\n\n${EXIT_CODES_HELP}`
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --show-config']
  static override flags = {
    'show-config': Flags.boolean({ summary: "each agent's configuration: its last change and where every setting came from" }),
  }

  async run(): Promise<ClusterStatus> {
    const { flags } = await this.parse(Status)
    const status = await readClusterStatus(this.resolveConfig(flags))
    if (!this.jsonEnabled()) this.out(renderStatus(status, this.theme))
    if (!this.jsonEnabled() && flags['show-config']) this.out(renderConfigs(status))
    return status
  }

}

function renderStatus(status: ClusterStatus, theme: BaseCommand['theme']): string {
  const now = Date.now()
  const lines: string[] = []
  lines.push(
    status.leader
      ? `Leader: ${theme.leader(printable(status.leader.node))} (term ${status.leader.term}${status.leader.since ? `, since ${status.leader.since}, ${formatAge(now - Date.parse(status.leader.since))}` : ''})`
      : `Leader: ${theme.critical('none')} (no agent is campaigning)`,
  )
  const i = status.instances
  lines.push(`Instances: ${i.total} in ${status.services} service${status.services === 1 ? '' : 's'}: ${theme.passing(`${i.passing} passing`)}, ${theme.warning(`${i.warning} warning`)}, ${theme.critical(`${i.critical} critical`)}, ${theme.unknown(`${i.unknown} unknown`)}${i.maintenance ? `, ${theme.warning(`${i.maintenance} in maintenance`)}` : ''} (${i.healthy} healthy)`)
  if (status.orphans > 0) lines.push(theme.warning(`! ${status.orphans} docker instance(s) belong to nodes with no live agent (the leader removes them)`))
  lines.push('')
  if (status.nodes.length === 0) {
    lines.push(theme.muted('no agents are running'))
  } else {
    const rows = status.nodes.map((n) => [
      `${n.node}${n.leader ? ' ★' : ''}`,
      n.version,
      `${n.hostname}:${n.pid}`,
      formatAge(now - Date.parse(n.startedAt)),
      `${n.ttl}s`,
      `${n.instances.total} (${n.instances.passing}✓ ${n.instances.critical}✗ ${n.instances.warning + n.instances.unknown}?)`,
    ].map(printable))
    const header = ['NODE', 'VERSION', 'HOST:PID', 'UP', 'TTL', 'INSTANCES']
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
    const fmt = (cells: string[]): string => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')
    lines.push(theme.bold(fmt(header)))
    for (const [r, row] of rows.entries()) lines.push(status.nodes[r].leader ? theme.leader(fmt(row)) : fmt(row))
  }
  return lines.join('\n')
}

function renderConfigs(status: ClusterStatus): string {
  const lines: string[] = ['']
  for (const node of status.nodes) {
    const report = node.config
    if (!report) {
      lines.push(`${node.node}: no configuration report (an agent older than 0.2, or none since it started)`)
      continue
    }
    lines.push(`${node.node}: last change ${report.result} (${report.trigger}, ${report.at})${report.error ? `: ${report.error}` : report.changed?.length ? `: ${report.changed.join(', ')} changed` : ''}`)
    for (const [setting, from] of Object.entries(report.sources ?? {})) lines.push(`  ${setting.padEnd(26)} from ${from}`)
  }
  return lines.map(printable).join('\n')
}
