import { RECORD_SCHEMA, type CheckSpec, type DesiredInstance, type Health, type HealthStatus, type InstanceRecord } from '../model.js'

/**
 * The agent's reconciler: desired instances (from the builder, with the health their
 * sources give) + what etcd holds → a plan of owner-guarded puts and deletes. Pure: no
 * etcd, no Docker, no timers; the clock is an input.
 *
 * Ownership: a Docker record belongs to the agent of the node it names (`source: docker`,
 * `node`), at the key under that node. A record at a wanted key that is not ours (a manual
 * record, or one naming another node) is never overwritten: it becomes a `conflict`. A
 * record of ours is put only over the revision we saw (`expect.modRevision`), and a new one
 * only where the key is absent, so a stale view can make a write fail, never a wrong one.
 */

/** Health as its source reports it; `pending` when no result is known yet (a check not run yet). */
export interface SourcedHealth {
  status: HealthStatus
  output: string
  pending?: boolean
}

/**
 * The health an instance's source gives it now: paused → critical; no check → passing; a
 * Docker HEALTHCHECK → its status; else the scheduler's last verdict, or pending.
 */
export function sourcedHealth(input: {
  check?: CheckSpec
  paused: boolean
  dockerHealth?: 'starting' | 'healthy' | 'unhealthy'
  checkHealth?: { status: HealthStatus; output: string }
}): SourcedHealth {
  if (input.paused) return { status: 'critical', output: 'container paused' }
  if (!input.check) return { status: 'passing', output: 'no check' }
  if (input.check.kind === 'docker') {
    const status = input.dockerHealth === 'healthy' ? 'passing' : input.dockerHealth === 'unhealthy' ? 'critical' : 'unknown'
    return { status, output: input.dockerHealth ? `docker HEALTHCHECK: ${input.dockerHealth}` : 'docker HEALTHCHECK: no status yet' }
  }
  if (input.checkHealth && input.checkHealth.status !== 'unknown') return { status: input.checkHealth.status, output: input.checkHealth.output }
  return { status: 'unknown', output: 'not checked yet', pending: true }
}

export interface WantedInstance {
  key: string
  instance: DesiredInstance
  health: SourcedHealth
}

/** What etcd holds at a key, as the view (or our own acknowledged write) last saw it. */
export interface HeldRecord {
  record: InstanceRecord
  modRevision: string
  lease: string
}

export interface ReconcileInput {
  node: string
  leaseId: string
  /** ISO time for timestamps of what changes now. */
  now: string
  wanted: readonly WantedInstance[]
  /** What etcd holds, by key: every wanted key that exists, and every key in `scope`. */
  held: ReadonlyMap<string, HeldRecord>
  /** Keys this pass may delete when not wanted (this node's keys that the pass is about). */
  scope: Iterable<string>
}

export type Guard = { absent: true } | { modRevision: string }

export type PlanStep =
  | { op: 'put'; key: string; record: InstanceRecord; expect: Guard; change: 'registered' | 'updated' | 'health' | 'rebind'; previous?: InstanceRecord }
  | { op: 'delete'; key: string; expect: { modRevision: string }; record: InstanceRecord }
  /** A wanted key is held by a record that is not this node's: left alone and reported. */
  | { op: 'conflict'; key: string; holder: InstanceRecord; wanted: DesiredInstance }

export function ownedBy(record: Pick<InstanceRecord, 'source' | 'node'>, node: string): boolean {
  return record.source === 'docker' && record.node === node
}

export function planReconcile(input: ReconcileInput): PlanStep[] {
  const plan: PlanStep[] = []
  const wantedKeys = new Set<string>()
  for (const want of input.wanted) {
    wantedKeys.add(want.key)
    const held = input.held.get(want.key)
    if (held && !ownedBy(held.record, input.node)) {
      plan.push({ op: 'conflict', key: want.key, holder: held.record, wanted: want.instance })
      continue
    }
    const previous = held?.record
    const record = buildRecord(input.node, want, previous, input.now)
    if (!held) {
      plan.push({ op: 'put', key: want.key, record, expect: { absent: true }, change: 'registered' })
      continue
    }
    const contentSame = sameContent(held.record, record)
    if (contentSame && held.lease === input.leaseId) continue
    const change = contentSame ? 'rebind' : sameContent({ ...held.record, health: record.health }, record) ? 'health' : 'updated'
    plan.push({ op: 'put', key: want.key, record: contentSame ? held.record : record, expect: { modRevision: held.modRevision }, change, previous })
  }
  for (const key of input.scope) {
    if (wantedKeys.has(key)) continue
    const held = input.held.get(key)
    if (!held || !ownedBy(held.record, input.node)) continue
    plan.push({ op: 'delete', key, expect: { modRevision: held.modRevision }, record: held.record })
  }
  return plan
}

/** The record to hold for a wanted instance, keeping what has not changed (registeredAt, health since). */
export function buildRecord(node: string, want: WantedInstance, previous: InstanceRecord | undefined, now: string): InstanceRecord {
  const { instance } = want
  const record: InstanceRecord = {
    schema: RECORD_SCHEMA,
    id: instance.id,
    service: instance.service,
    address: instance.address,
    port: instance.port,
    tags: instance.tags,
    meta: instance.meta,
    node,
    source: 'docker',
    ...(instance.container ? { container: instance.container } : {}),
    ...(instance.check ? { check: instance.check } : {}),
    health: nextHealth(want.health, previous?.health, now),
    registeredAt: previous?.registeredAt ?? now,
    updatedAt: now,
  }
  return previous && sameContent(previous, record) ? { ...record, updatedAt: previous.updatedAt } : record
}

/**
 * How often a check's output alone (same status) is written: most outputs change with every
 * run ("HTTP 200 in 4 ms"), which would rewrite every checked record at every resync. Consul's
 * `check_update_interval` (default 5 m) defers output-only syncs the same way; a change of
 * status is written at once, with its output.
 */
export const OUTPUT_UPDATE_INTERVAL_MS = 5 * 60_000

/**
 * Health to store: the source's, keeping `since` while the status holds. A check that has
 * not run yet keeps what the record already says (a takeover keeps the last run's health); a
 * new output under the same status waits until the stored one is OUTPUT_UPDATE_INTERVAL_MS old.
 */
export function nextHealth(source: SourcedHealth, previous: Health | undefined, now: string): Health {
  if (source.pending && previous && previous.status !== 'unknown' && previous.status !== 'maintenance') return previous
  if (previous && previous.status === source.status) {
    if (previous.output === source.output) return previous
    const age = Date.parse(now) - Date.parse(previous.updatedAt)
    if (age >= 0 && age < OUTPUT_UPDATE_INTERVAL_MS) return previous
  }
  return { status: source.status, output: source.output, updatedAt: now, since: previous && previous.status === source.status ? previous.since : now }
}

/** Equal apart from `updatedAt` and health timestamps other than `since`. */
export function sameContent(a: InstanceRecord, b: InstanceRecord): boolean {
  const strip = (r: InstanceRecord): string =>
    JSON.stringify({ ...r, schema: undefined, updatedAt: undefined, health: { status: r.health.status, output: r.health.output, since: r.health.since } })
  return strip(a) === strip(b) && a.schema === b.schema
}
