/**
 * Schema-1 records as they are stored in etcd (JSON). Durations inside `check` are
 * milliseconds; timestamps are ISO-8601 strings. Plain types and constants only: the zod
 * schemas that validate records live in schema.ts and load only when a record needs them.
 */
/** `maintenance`: taken out of rotation on purpose (maint enable or the discovery.maintenance label), never served. */
export const HEALTH_STATUSES = ['passing', 'warning', 'critical', 'unknown', 'maintenance'] as const
export type HealthStatus = (typeof HEALTH_STATUSES)[number]

export const CHECK_KINDS = ['http', 'tcp', 'exec', 'docker'] as const
export type CheckKind = (typeof CHECK_KINDS)[number]

/** A health check as stored in a record. */
export interface CheckSpec {
  kind: CheckKind
  /** http(s) URL, host:port for tcp, the command for exec, the container for docker. */
  target: string
  interval: number
  timeout: number
  failuresBeforeCritical: number
  successesBeforePassing: number
  initialDelay: number
  /** http only: accepted statuses, e.g. `200-399` or `200,204`. */
  expectStatus?: string
  /** http only: a regular expression the body must match. */
  expectBody?: string
  /** exec only: the container the command runs in. */
  container?: string
}

export interface Health {
  status: HealthStatus
  output: string
  updatedAt: string
  since: string
}

export interface ContainerRef {
  id: string
  name: string
  image: string
  port: number
  protocol: 'tcp' | 'udp' | 'sctp'
}

/**
 * `schema` 2 (written since 0.2): Docker records live at `<prefix>/services/<service>/<node>/<id>`,
 * owned by their node's agent and lease; manual records stay at `<prefix>/services/<service>/<id>`.
 * Schema-1 records (every record at `<service>/<id>`) are still read.
 */
export const RECORD_SCHEMA = 2
export interface InstanceRecord {
  schema: 1 | 2
  id: string
  service: string
  address: string
  port: number
  tags: string[]
  meta: Record<string, string>
  node: string
  source: 'docker' | 'manual'
  container?: ContainerRef
  check?: CheckSpec
  health: Health
  registeredAt: string
  updatedAt: string
}

export interface NodeRecord {
  schema: 1
  node: string
  version: string
  pid: number
  hostname: string
  startedAt: string
  /** Lease TTL in seconds and the lease id the node's records are bound to. */
  ttl: number
  lease: string
  docker?: string
  /** Random per agent process: tells this run's claim from another's, even with equal pids. */
  instance?: string
  /** The pid namespace (`/proc/self/ns/pid`), so a pid is compared only where it means the same process. */
  pidNamespace?: string
  /** The address this agent advertises for its host (DNS `<node>.node.<domain>`, Consul's Node Address). */
  address?: string
}

/** `<prefix>/maintenance/…`: who took what out of rotation, when and why. */
export interface MaintenanceRecord {
  reason: string
  /** user@host that enabled it (or `label` for a container label). */
  by: string
  since: string
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string }

export const isHealthy = (record: Pick<InstanceRecord, 'health'>): boolean => record.health.status === 'passing'

/** The instance a source wants registered, before timestamps and health are attached. */
export interface DesiredInstance {
  id: string
  service: string
  address: string
  port: number
  tags: string[]
  meta: Record<string, string>
  container?: ContainerRef
  check?: CheckSpec
}

/** Health a new record starts with: no check → passing (registered means routable), else unknown until checked. */
export function initialHealth(hasCheck: boolean, now: Date): Health {
  const at = now.toISOString()
  return hasCheck
    ? { status: 'unknown', output: 'not checked yet', updatedAt: at, since: at }
    : { status: 'passing', output: 'no check', updatedAt: at, since: at }
}

/**
 * Bounds of every check number, wherever it comes from (labels, register flags, records in
 * etcd): milliseconds for durations. Below 100 ms a check is a busy loop; above a day it is
 * not a health check; and Node timers above 2^31 ms fire at once.
 */
export const CHECK_LIMITS = {
  interval: { min: 100, max: 86_400_000 },
  timeout: { min: 100, max: 3_600_000 },
  initialDelay: { min: 0, max: 86_400_000 },
  failuresBeforeCritical: { min: 1, max: 1_000 },
  successesBeforePassing: { min: 1, max: 1_000 },
} as const

export type CheckLimitKey = keyof typeof CHECK_LIMITS

export function withinCheckLimit(key: CheckLimitKey, value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= CHECK_LIMITS[key].min && value <= CHECK_LIMITS[key].max
}

/** Check defaults (Kubernetes/Consul-like): every 10 s, 5 s timeout, 3 failures → critical, 1 success → passing. */
export const CHECK_DEFAULTS = {
  interval: 10_000,
  timeout: 5_000,
  failuresBeforeCritical: 3,
  successesBeforePassing: 1,
  initialDelay: 0,
} as const
