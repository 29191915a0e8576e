import type { Config } from '../core/config.js'
import { readLeader } from '../core/cluster/election.js'
import type { LeaderInfoRecord } from '../core/cluster/leader-duties.js'
import type { HealthStatus } from '../core/model.js'
import { Registry, type ConfigStatus } from '../core/registry.js'

export type HealthCounts = Record<HealthStatus, number>

export interface NodeStatus {
  node: string
  leader: boolean
  version: string
  hostname: string
  pid: number
  startedAt: string
  ttl: number
  instances: HealthCounts & { total: number }
  /** The agent's report of its last configuration change: outcome, changed keys, the source of each setting. */
  config?: ConfigStatus
}

export interface ClusterStatus {
  leader: { node: string; term: string; since: string | null } | null
  nodes: NodeStatus[]
  services: number
  instances: HealthCounts & { total: number; healthy: number }
  /** Instances of nodes that have no live agent (manual registrations have node = who registered them). */
  orphans: number
}

const emptyCounts = (): HealthCounts & { total: number } => ({ passing: 0, warning: 0, critical: 0, unknown: 0, maintenance: 0, total: 0 })

/** Cluster overview: the leader, nodes and instances, read side by side. */
export async function readClusterStatus(config: Config): Promise<ClusterStatus> {
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    const [leader, infoRaw, nodes, instances] = await Promise.all([
      registry.call('reading the leader', () => readLeader(registry.client, config.prefix)),
      registry.getLeaderInfo(),
      registry.listNodes(),
      registry.listInstances(),
    ])
    let since: string | null = null
    if (leader && infoRaw) {
      try {
        const info = JSON.parse(infoRaw) as LeaderInfoRecord
        if (info.term === leader.term) since = info.since
      } catch {
        // a corrupt info record only costs the "since"
      }
    }
    const reports = await Promise.all(nodes.entries.map(({ value }) => registry.getConfigStatus(value.node).catch(() => undefined)))
    const byNode = new Map<string, NodeStatus>()
    for (const [i, { value }] of nodes.entries.entries()) {
      byNode.set(value.node, {
        node: value.node,
        leader: leader?.node === value.node,
        version: value.version,
        hostname: value.hostname,
        pid: value.pid,
        startedAt: value.startedAt,
        ttl: value.ttl,
        instances: emptyCounts(),
        ...(reports[i] ? { config: reports[i] } : {}),
      })
    }
    const totals = { ...emptyCounts(), healthy: 0 }
    const services = new Set<string>()
    let orphans = 0
    for (const { value } of instances.entries) {
      services.add(value.service)
      totals[value.health.status]++
      totals.total++
      if (value.health.status === 'passing') totals.healthy++
      const node = byNode.get(value.node)
      if (node) {
        node.instances[value.health.status]++
        node.instances.total++
      } else if (value.source === 'docker') orphans++
    }
    return {
      leader: leader ? { node: leader.node, term: leader.term, since } : null,
      nodes: [...byNode.values()].sort((a, b) => (a.node < b.node ? -1 : 1)),
      services: services.size,
      instances: totals,
      orphans,
    }
  } finally {
    registry.close()
  }
}

