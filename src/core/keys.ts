import { assertInstanceId, assertNodeName, assertServiceName } from './validate.js'

/**
 * The key layout. Every key the project writes is built here, after validation.
 *
 *   <prefix>/services/<service>/<id>          manual records (register): cluster-wide ids, no owner lease
 *   <prefix>/services/<service>/<node>/<id>   Docker records: owned by <node>'s agent, on its lease
 *   <prefix>/nodes/<node>                     node records, on the agent's lease
 *
 * The node in a Docker record's key is what makes the same explicit id (a Registrator
 * SERVICE_ID) on two hosts two instances, each host touching only its own.
 */
export const SCHEMA = 2

export const servicesPrefix = (prefix: string): string => `${prefix}/services/`
export const servicePrefix = (prefix: string, service: string): string => `${prefix}/services/${assertServiceName(service)}/`
export const nodesPrefix = (prefix: string): string => `${prefix}/nodes/`
export const electionPrefix = (prefix: string): string => `${prefix}/election/`
/** The Swarm election's base: its campaign keys are `<prefix>/swarm/election/<lease-id>` (apart from the cluster election's). */
export const swarmBase = (prefix: string): string => `${prefix}/swarm`
/** Leader-fenced state (e.g. when a manual instance first turned critical) lives here. */
export const leaderStatePrefix = (prefix: string): string => `${prefix}/leader/`

/** The key of a manual record (and of a schema-1 record of any source). */
export function instanceKey(prefix: string, service: string, id: string): string {
  return `${servicePrefix(prefix, service)}${assertInstanceId(id)}`
}

/** The key of a Docker record: under its owner node. */
export function dockerInstanceKey(prefix: string, service: string, node: string, id: string): string {
  return `${servicePrefix(prefix, service)}${assertNodeName(node)}/${assertInstanceId(id)}`
}

/** Where a record belongs: Docker records under their node, manual ones at `<service>/<id>`. */
export function recordKey(prefix: string, record: { service: string; id: string; node: string; source: 'docker' | 'manual' }): string {
  return record.source === 'docker' ? dockerInstanceKey(prefix, record.service, record.node, record.id) : instanceKey(prefix, record.service, record.id)
}

/** Maintenance marks: `<prefix>/maintenance/nodes/<node>`, `…/services/<service>`, `…/instances/<service>/<id>`. */
export const maintenancePrefix = (prefix: string): string => `${prefix}/maintenance/`

export type MaintenanceTarget = { kind: 'node'; node: string } | { kind: 'service'; service: string } | { kind: 'instance'; service: string; id: string }

export function maintenanceKey(prefix: string, target: MaintenanceTarget): string {
  const base = maintenancePrefix(prefix)
  switch (target.kind) {
    case 'node':
      return `${base}nodes/${assertNodeName(target.node)}`
    case 'service':
      return `${base}services/${assertServiceName(target.service)}`
    case 'instance':
      return `${base}instances/${assertServiceName(target.service)}/${assertInstanceId(target.id)}`
  }
}

export function parseMaintenanceKey(prefix: string, key: string): MaintenanceTarget | undefined {
  const base = maintenancePrefix(prefix)
  if (!key.startsWith(base)) return undefined
  const parts = key.slice(base.length).split('/')
  if (parts.some((p) => p.length === 0)) return undefined
  if (parts[0] === 'nodes' && parts.length === 2) return { kind: 'node', node: parts[1] }
  if (parts[0] === 'services' && parts.length === 2) return { kind: 'service', service: parts[1] }
  if (parts[0] === 'instances' && parts.length === 3) return { kind: 'instance', service: parts[1], id: parts[2] }
  return undefined
}

/** The etcd configuration layers: all agents, and one node's. */
export const configAgentsKey = (prefix: string): string => `${prefix}/config/agents`
export const configNodeKey = (prefix: string, node: string): string => `${prefix}/config/nodes/${assertNodeName(node)}`
/** Where each agent reports the outcome of its last configuration change (for `reload`). */
export const configStatusKey = (prefix: string, node: string): string => `${prefix}/config/status/${assertNodeName(node)}`
/** Written by `reload --cluster`: every agent re-reads its file and reports. */
export const configReloadKey = (prefix: string): string => `${prefix}/config/reload`

export function nodeKey(prefix: string, node: string): string {
  return `${nodesPrefix(prefix)}${assertNodeName(node)}`
}

/** `<prefix>/services/<service>/[<node>/]<id>` → its parts, or undefined for anything else. */
export function parseInstanceKey(prefix: string, key: string): { service: string; node?: string; id: string } | undefined {
  const base = servicesPrefix(prefix)
  if (!key.startsWith(base)) return undefined
  const rest = key.slice(base.length).split('/')
  if (rest.some((part) => part.length === 0)) return undefined
  if (rest.length === 2) return { service: rest[0], id: rest[1] }
  if (rest.length === 3) return { service: rest[0], node: rest[1], id: rest[2] }
  return undefined
}

/** Whether a record may live at `key`: its own service and id, under its node when it is a schema-2 Docker record. */
export function recordBelongsAt(prefix: string, key: string, record: { service: string; id: string; node: string; source: string; schema: number }): boolean {
  const where = parseInstanceKey(prefix, key)
  if (!where || where.service !== record.service || where.id !== record.id) return false
  if (where.node === undefined) return record.source === 'manual' || record.schema === 1
  return record.source === 'docker' && where.node === record.node
}
