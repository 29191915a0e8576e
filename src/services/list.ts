import type { Config } from '../core/config.js'
import type { InstanceRecord } from '../core/model.js'
import type { RecordProblem } from '../core/registry.js'
import { Registry } from '../core/registry.js'
import { assertServiceName } from '../core/validate.js'

export interface InstanceFilter {
  service?: string
  healthy?: boolean
  tags?: string[]
  node?: string
}

export function matchesFilter(record: InstanceRecord, filter: InstanceFilter): boolean {
  if (filter.service && record.service !== filter.service) return false
  // model.ts's isHealthy, inlined: importing model.ts would load zod into every `list` (see registry.ts).
  if (filter.healthy && record.health.status !== 'passing') return false
  if (filter.node && record.node !== filter.node) return false
  if (filter.tags && !filter.tags.every((tag) => record.tags.includes(tag))) return false
  return true
}

export function sortInstances(records: InstanceRecord[]): InstanceRecord[] {
  return [...records].sort((a, b) => (a.service === b.service ? compare(a.id, b.id) : compare(a.service, b.service)))
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export interface InstanceListing {
  instances: InstanceRecord[]
  problems: RecordProblem[]
}

export async function listInstances(config: Config, filter: InstanceFilter): Promise<InstanceListing> {
  if (filter.service) assertServiceName(filter.service)
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    const listing = await registry.listInstances(filter.service)
    return {
      instances: sortInstances(listing.entries.map((e) => e.value).filter((r) => matchesFilter(r, filter))),
      problems: listing.problems,
    }
  } finally {
    registry.close()
  }
}

export type InstanceChange =
  | { type: 'added' | 'updated'; instance: InstanceRecord }
  | { type: 'removed'; instance: InstanceRecord }
  | { type: 'ready'; count: number }
  | { type: 'problem'; key: string; reason: string }
  | { type: 'disconnected'; reason: string }
  | { type: 'resynced' }

/**
 * Prints the current set, then every change, until `signal` aborts. A record that stops
 * matching the filter (e.g. turns critical under --healthy) is reported as removed.
 */
export async function watchInstanceChanges(
  config: Config,
  filter: InstanceFilter,
  onChange: (change: InstanceChange) => void,
  signal: AbortSignal,
): Promise<void> {
  if (filter.service) assertServiceName(filter.service)
  const registry = Registry.open(config.etcd, config.prefix, { retries: 3 })
  const mirror = registry.watchInstances(filter.service)
  const visible = new Map<string, InstanceRecord>()
  let ready = false
  const pending: InstanceRecord[] = []
  mirror.on('put', (entry) => {
    const record = entry.value
    const was = visible.get(entry.key)
    if (matchesFilter(record, filter)) {
      visible.set(entry.key, record)
      if (!ready) pending.push(record)
      else onChange({ type: was ? 'updated' : 'added', instance: record })
    } else if (was) {
      visible.delete(entry.key)
      if (ready) onChange({ type: 'removed', instance: was })
    }
  })
  mirror.on('delete', (previous) => {
    const was = visible.get(previous.key)
    if (!was) return
    visible.delete(previous.key)
    if (ready) onChange({ type: 'removed', instance: was })
  })
  mirror.on('problem', (key, reason) => onChange({ type: 'problem', key, reason }))
  mirror.on('disconnected', (error) => onChange({ type: 'disconnected', reason: String((error as Error)?.message ?? error).split('\n')[0] }))
  mirror.on('resynced', () => onChange({ type: 'resynced' }))
  try {
    await registry.call('watching instances', () => mirror.start())
    for (const record of sortInstances([...visible.values()])) onChange({ type: 'added', instance: record })
    pending.length = 0
    ready = true
    onChange({ type: 'ready', count: visible.size })
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  } finally {
    await mirror.close()
    registry.close()
  }
}
