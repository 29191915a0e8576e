import { z } from 'zod'
import { instanceIdProblem, serviceNameProblem } from './validate.js'

/**
 * Schema-1 records as they are stored in etcd (JSON). Durations inside `check` are
 * milliseconds; timestamps are ISO-8601 strings.
 */
export const HEALTH_STATUSES = ['passing', 'warning', 'critical', 'unknown'] as const
export type HealthStatus = (typeof HEALTH_STATUSES)[number]

export const CHECK_KINDS = ['http', 'tcp', 'exec', 'docker'] as const
export type CheckKind = (typeof CHECK_KINDS)[number]

const serviceName = z.string().refine((s) => serviceNameProblem(s) === undefined, 'invalid service name')
const instanceId = z.string().refine((s) => instanceIdProblem(s) === undefined, 'invalid instance id')

export const checkSpecSchema = z.object({
  kind: z.enum(CHECK_KINDS),
  /** http(s) URL, host:port for tcp, the command for exec, the container for docker. */
  target: z.string(),
  interval: z.number().int().positive(),
  timeout: z.number().int().positive(),
  failuresBeforeCritical: z.number().int().positive(),
  successesBeforePassing: z.number().int().positive(),
  initialDelay: z.number().int().nonnegative(),
  /** http only: accepted statuses, e.g. `200-399` or `200,204`. */
  expectStatus: z.string().optional(),
  /** http only: a regular expression the body must match. */
  expectBody: z.string().optional(),
  /** exec only: the container the command runs in. */
  container: z.string().optional(),
})
export type CheckSpec = z.infer<typeof checkSpecSchema>

export const healthSchema = z.object({
  status: z.enum(HEALTH_STATUSES),
  output: z.string(),
  updatedAt: z.string(),
  since: z.string(),
})
export type Health = z.infer<typeof healthSchema>

export const containerRefSchema = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  port: z.number().int(),
  protocol: z.enum(['tcp', 'udp', 'sctp']),
})
export type ContainerRef = z.infer<typeof containerRefSchema>

export const instanceRecordSchema = z.object({
  schema: z.literal(1),
  id: instanceId,
  service: serviceName,
  address: z.string().min(1),
  port: z.number().int().min(0).max(65_535),
  tags: z.array(z.string()),
  meta: z.record(z.string(), z.string()),
  node: z.string(),
  source: z.enum(['docker', 'manual']),
  container: containerRefSchema.optional(),
  check: checkSpecSchema.optional(),
  health: healthSchema,
  registeredAt: z.string(),
  updatedAt: z.string(),
})
export type InstanceRecord = z.infer<typeof instanceRecordSchema>

export const nodeRecordSchema = z.object({
  schema: z.literal(1),
  node: z.string(),
  version: z.string(),
  pid: z.number().int(),
  hostname: z.string(),
  startedAt: z.string(),
  /** Lease TTL in seconds and the lease id (hex) the node's records are bound to. */
  ttl: z.number(),
  lease: z.string(),
  docker: z.string().optional(),
})
export type NodeRecord = z.infer<typeof nodeRecordSchema>

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string }

function parseWith<T>(schema: z.ZodType<T>, raw: string): ParseResult<T> {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  const result = schema.safeParse(json)
  if (result.success) return { ok: true, value: result.data }
  const issue = result.error.issues[0]
  return { ok: false, reason: `${issue.path.join('.') || 'record'}: ${issue.message}` }
}

/** Records are validated when read: a corrupt or foreign value is reported, never trusted. */
export const parseInstanceRecord = (raw: string): ParseResult<InstanceRecord> => parseWith(instanceRecordSchema, raw)
export const parseNodeRecord = (raw: string): ParseResult<NodeRecord> => parseWith(nodeRecordSchema, raw)

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

/** Check defaults (Kubernetes/Consul-like): every 10 s, 5 s timeout, 3 failures → critical, 1 success → passing. */
export const CHECK_DEFAULTS = {
  interval: 10_000,
  timeout: 5_000,
  failuresBeforeCritical: 3,
  successesBeforePassing: 1,
  initialDelay: 0,
} as const
