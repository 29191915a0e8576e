import type { MaintenanceTarget } from './keys.js'
import type { InstanceRecord, MaintenanceRecord } from './model.js'

/** Every maintenance mark in the registry, by what it covers. */
export interface MaintenanceMarks {
  nodes: ReadonlyMap<string, MaintenanceRecord>
  services: ReadonlyMap<string, MaintenanceRecord>
  /** `<service>/<id>` → mark (an id covers that service's instances with that id on any node). */
  instances: ReadonlyMap<string, MaintenanceRecord>
}

export const NO_MARKS: MaintenanceMarks = { nodes: new Map(), services: new Map(), instances: new Map() }

export const instanceMarkKey = (service: string, id: string): string => `${service}/${id}`

/**
 * Whether an instance is out of rotation on purpose, and why: an instance mark first (the
 * narrowest), then its service, then its node; a container's `discovery.maintenance` label
 * counts as an instance mark. Pure: the owner of the record reflects the answer into its health.
 */
export function maintenanceOf(record: Pick<InstanceRecord, 'service' | 'id' | 'node'>, marks: MaintenanceMarks, label?: MaintenanceRecord): { target: MaintenanceTarget; mark: MaintenanceRecord } | undefined {
  const instance = marks.instances.get(instanceMarkKey(record.service, record.id))
  if (instance) return { target: { kind: 'instance', service: record.service, id: record.id }, mark: instance }
  if (label) return { target: { kind: 'instance', service: record.service, id: record.id }, mark: label }
  const service = marks.services.get(record.service)
  if (service) return { target: { kind: 'service', service: record.service }, mark: service }
  const node = marks.nodes.get(record.node)
  if (node) return { target: { kind: 'node', node: record.node }, mark: node }
  return undefined
}

/** The health output of an instance in maintenance: why, since when and by whom. */
export function maintenanceOutput(found: { target: MaintenanceTarget; mark: MaintenanceRecord }): string {
  const what = found.target.kind === 'instance' ? 'instance' : found.target.kind === 'service' ? `service ${found.target.service}` : `node ${found.target.node}`
  return `maintenance (${what}): ${found.mark.reason} — by ${found.mark.by} since ${found.mark.since}`
}

/** Parses a stored mark, bounding what reaches a terminal; undefined for anything else. */
export function parseMaintenanceRecord(raw: string): MaintenanceRecord | undefined {
  try {
    const value = JSON.parse(raw) as Partial<MaintenanceRecord>
    if (typeof value.reason !== 'string' || typeof value.by !== 'string' || typeof value.since !== 'string') return undefined
    return { reason: value.reason.slice(0, 500), by: value.by.slice(0, 200), since: value.since.slice(0, 64) }
  } catch {
    return undefined
  }
}
