import type { Config } from '../core/config.js'
import { forEachPrefixPage } from '../core/etcd.js'
import { fastInstanceAt } from '../core/instance-fast-path.js'
import { recordBelongsAt, servicePrefix, servicesPrefix } from '../core/keys.js'
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

/** One matching record of `list --json`: what it sorts by and its compact JSON text. */
interface JsonInstance {
  service: string
  id: string
  json: string
}

export interface InstanceJsonListing {
  count: number
  problems: RecordProblem[]
}

/**
 * `list --json` without holding the listing three times over. The pages of the registry are
 * validated as they arrive (the same checks as Registry.listInstances: the fast path, the schema
 * where it fails, the key a record must live at) and each matching record is kept only as its
 * compact JSON text, so the raw key-values and parsed objects of a page are garbage as soon as
 * the next page is handled. The array is then written in the list's order (service, then id)
 * in chunks that wait for the pipe to drain, never built as one string. Sorting needs every
 * record, so memory still grows with the output (one string per record), not with what etcd sent.
 */
export async function writeInstancesJson(
  config: Config,
  filter: InstanceFilter,
  out: NodeJS.WritableStream,
  options: { pretty: boolean; onProblem?: (problem: RecordProblem) => void },
): Promise<InstanceJsonListing> {
  if (filter.service) assertServiceName(filter.service)
  const registry = Registry.open(config.etcd, config.prefix)
  let records: JsonInstance[] = []
  const problems: RecordProblem[] = []
  try {
    const prefix = filter.service ? servicePrefix(registry.prefix, filter.service) : servicesPrefix(registry.prefix)
    // Records the fast path turned down, in key order (the order problems are reported in).
    const slow: { key: string; raw: string }[] = []
    const keep = (record: InstanceRecord): void => {
      if (matchesFilter(record, filter)) records.push({ service: record.service, id: record.id, json: JSON.stringify(record) })
    }
    await registry.call('listing instances', () =>
      forEachPrefixPage(
        registry.client,
        prefix,
        (kvs) => {
          for (const kv of kvs) {
            const key = kv.key.toString()
            const raw = kv.value.toString()
            const record = fastInstanceAt(registry.prefix, key, raw)
            if (record) keep(record)
            else slow.push({ key, raw })
          }
        },
        { onRestart: () => ((records = []), (slow.length = 0)) },
      ),
    )
    if (slow.length > 0) {
      // zod loads only when a record is not of the usual shape (see registry.ts).
      const { parseInstanceRecord } = await import('../core/schema.js')
      for (const { key, raw } of slow) {
        const parsed = parseInstanceRecord(raw)
        if (!parsed.ok) problems.push({ key, reason: parsed.reason })
        else if (!recordBelongsAt(registry.prefix, key, parsed.value)) {
          const v = parsed.value
          problems.push({ key, reason: `record names ${v.service}/${v.id} (node ${v.node}, ${v.source}) but lives at another key` })
        } else keep(parsed.value)
      }
    }
  } finally {
    registry.close()
  }
  // Warnings first, as when the command returned the array for oclif to print.
  if (options.onProblem) for (const problem of problems) options.onProblem(problem)
  records.sort((a, b) => (a.service === b.service ? compare(a.id, b.id) : compare(a.service, b.service)))
  await writeJsonArray(out, records, options.pretty)
  return { count: records.length, problems }
}


/** The array JSON.stringify(records) would give (or JSON.stringify(records, null, 2) when pretty), in chunks. */
async function writeJsonArray(out: NodeJS.WritableStream, records: JsonInstance[], pretty: boolean): Promise<void> {
  if (records.length === 0) return write(out, '[]\n')
  const CHUNK = 256 * 1024
  let chunk = pretty ? '[\n  ' : '['
  for (let i = 0; i < records.length; i++) {
    if (i > 0) chunk += pretty ? ',\n  ' : ','
    chunk += pretty ? JSON.stringify(JSON.parse(records[i].json), null, 2).replaceAll('\n', '\n  ') : records[i].json
    if (chunk.length >= CHUNK) {
      await write(out, chunk)
      chunk = ''
    }
  }
  await write(out, `${chunk}${pretty ? '\n]' : ']'}\n`)
}

/** Writes and, when the stream's buffer is full, waits for it to drain. */
function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  if (out.write(text)) return Promise.resolve()
  return new Promise((resolve) => out.once('drain', () => resolve()))
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
