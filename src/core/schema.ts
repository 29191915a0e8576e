import { z } from 'zod'
import { CHECK_KINDS, CHECK_LIMITS, HEALTH_STATUSES, type CheckLimitKey, type CheckSpec, type ContainerRef, type Health, type InstanceRecord, type NodeRecord, type ParseResult } from './model.js'
import { instanceIdProblem, serviceNameProblem } from './validate.js'

/** The zod schemas of model.ts's records: validation of what is read from etcd. */
const serviceName = z.string().refine((s) => serviceNameProblem(s) === undefined, 'invalid service name')
const instanceId = z.string().refine((s) => instanceIdProblem(s) === undefined, 'invalid instance id')

function limited(key: CheckLimitKey) {
  return z.number().int().min(CHECK_LIMITS[key].min).max(CHECK_LIMITS[key].max)
}

export const checkSpecSchema = z.object({
  kind: z.enum(CHECK_KINDS),
  /** http(s) URL, host:port for tcp, the command for exec, the container for docker. */
  target: z.string(),
  interval: limited('interval'),
  timeout: limited('timeout'),
  failuresBeforeCritical: limited('failuresBeforeCritical'),
  successesBeforePassing: limited('successesBeforePassing'),
  initialDelay: limited('initialDelay'),
  /** http only: accepted statuses, e.g. `200-399` or `200,204`. */
  expectStatus: z.string().optional(),
  /** http only: a regular expression the body must match. */
  expectBody: z.string().optional(),
  /** exec only: the container the command runs in. */
  container: z.string().optional(),
})

export const healthSchema = z.object({
  status: z.enum(HEALTH_STATUSES),
  output: z.string(),
  updatedAt: z.string(),
  since: z.string(),
})

export const containerRefSchema = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  port: z.number().int(),
  protocol: z.enum(['tcp', 'udp', 'sctp']),
})

export const instanceRecordSchema = z.object({
  schema: z.union([z.literal(1), z.literal(2)]),
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
  address: z.string().max(255).optional(),
  instance: z.string().max(64).optional(),
  pidNamespace: z.string().max(64).optional(),
})

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

// The schemas and the plain types in model.ts must describe the same records.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const sameShapes: [
  Same<z.infer<typeof checkSpecSchema>, CheckSpec>,
  Same<z.infer<typeof healthSchema>, Health>,
  Same<z.infer<typeof containerRefSchema>, ContainerRef>,
  Same<z.infer<typeof instanceRecordSchema>, InstanceRecord>,
  Same<z.infer<typeof nodeRecordSchema>, NodeRecord>,
] = [true, true, true, true, true]
void sameShapes
