import os from 'node:os'
import type { Config } from '../core/config.js'
import { UsageError } from '../core/errors.js'
import type { MaintenanceTarget } from '../core/keys.js'
import { maintenanceOf } from '../core/maintenance.js'
import type { InstanceRecord, MaintenanceRecord } from '../core/model.js'
import { Registry } from '../core/registry.js'
import { assertInstanceId, assertNodeName, assertServiceName, clip } from '../core/validate.js'

export interface MaintenanceSelector {
  node?: string
  service?: string
  id?: string
}

export interface MaintenanceEntry {
  target: MaintenanceTarget
  reason: string
  by: string
  since: string
  /** Instances the mark covers now. */
  instances: number
}

/** `--node`, `--service`, or `--service` with `--id`: exactly one target, validated before any write. */
export function maintenanceTarget(selector: MaintenanceSelector): MaintenanceTarget {
  const { node, service, id } = selector
  if (node !== undefined && (service !== undefined || id !== undefined)) throw new UsageError('--node goes alone, without --service or --id', { hint: 'mark a node, a service, or one instance (--service with --id)' })
  if (node !== undefined) return { kind: 'node', node: assertNodeName(node) }
  if (id !== undefined && service === undefined) throw new UsageError(`--id ${clip(id)} needs --service`, { hint: 'e.g. --service web --id web-1' })
  if (service !== undefined && id !== undefined) return { kind: 'instance', service: assertServiceName(service), id: assertInstanceId(id) }
  if (service !== undefined) return { kind: 'service', service: assertServiceName(service) }
  throw new UsageError('say what goes into maintenance: --node, --service, or --service with --id', { hint: 'e.g. discovery-agent maint enable --service web --reason "deploy"' })
}

export function describeTarget(target: MaintenanceTarget): string {
  return target.kind === 'node' ? `node ${target.node}` : target.kind === 'service' ? `service ${target.service}` : `instance ${target.service}/${target.id}`
}

/** Marks the target as in maintenance (the agents and the leader take its instances out of rotation). */
export async function enableMaintenance(config: Config, target: MaintenanceTarget, reason: string, now = new Date()): Promise<MaintenanceRecord> {
  const text = reason.trim()
  if (text.length === 0) throw new UsageError('--reason is empty', { hint: 'say why, e.g. --reason "kernel upgrade"' })
  if (text.length > 500) throw new UsageError(`--reason is ${text.length} characters long`, { hint: 'keep it under 500 characters' })
  const mark: MaintenanceRecord = { reason: text, by: `${safeUser()}@${os.hostname()}`, since: now.toISOString() }
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    await registry.putMaintenance(target, mark)
    return mark
  } finally {
    registry.close()
  }
}

export async function disableMaintenance(config: Config, target: MaintenanceTarget): Promise<boolean> {
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    return await registry.deleteMaintenance(target)
  } finally {
    registry.close()
  }
}

/** Every mark, with how many instances it covers now. */
export async function listMaintenance(config: Config): Promise<MaintenanceEntry[]> {
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    const [marks, listing] = await Promise.all([registry.listMaintenance(), registry.listInstances()])
    const records: InstanceRecord[] = listing.entries.map((e) => e.value)
    return marks.map(({ target, mark }) => {
      const only = { nodes: new Map(), services: new Map(), instances: new Map() } as Parameters<typeof maintenanceOf>[1] & { nodes: Map<string, MaintenanceRecord>; services: Map<string, MaintenanceRecord>; instances: Map<string, MaintenanceRecord> }
      if (target.kind === 'node') only.nodes.set(target.node, mark)
      else if (target.kind === 'service') only.services.set(target.service, mark)
      else only.instances.set(`${target.service}/${target.id}`, mark)
      return { target, ...mark, instances: records.filter((r) => maintenanceOf(r, only)).length }
    })
  } finally {
    registry.close()
  }
}

function safeUser(): string {
  try {
    return os.userInfo().username
  } catch {
    return process.env.USER ?? 'unknown'
  }
}
