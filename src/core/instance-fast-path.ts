import { withinCheckLimit, type InstanceRecord, type NodeRecord } from './model.js'
import { recordBelongsAt } from './keys.js'
import { instanceIdProblem, serviceNameProblem } from './validate.js'

/**
 * A hand-written check for the common case of reading a well-formed instance record.
 *
 * Validating 10,000 records with the zod schema costs 150–300 ms in a fresh process (the
 * schema runs cold; warm it is ~40 ms), which alone would break the `list --json` budget
 * (≤ 1.5× a bare etcd3 get). This function accepts a value only when it has exactly the shape
 * `instanceRecordSchema` accepts and no key the schema would strip; anything else returns
 * undefined and the caller falls back to the schema, which also explains what is wrong. So it
 * may be stricter than the schema, never looser — instance-fast-path.test.ts holds it to that.
 */
export function fastInstanceRecord(json: unknown): InstanceRecord | undefined {
  if (!isPlainObject(json)) return undefined
  let required = 0
  for (const key in json) {
    if (!Object.hasOwn(json, key)) continue
    const value = json[key]
    switch (key) {
      case 'schema':
        if (value !== 1 && value !== 2) return undefined
        required++
        break
      case 'id':
        if (typeof value !== 'string' || instanceIdProblem(value) !== undefined) return undefined
        required++
        break
      case 'service':
        if (typeof value !== 'string' || serviceNameProblem(value) !== undefined) return undefined
        required++
        break
      case 'address':
        if (typeof value !== 'string' || value.length === 0) return undefined
        required++
        break
      case 'port':
        if (!isInt(value) || value < 0 || value > 65_535) return undefined
        required++
        break
      case 'tags':
        if (!Array.isArray(value) || !value.every((tag) => typeof tag === 'string')) return undefined
        required++
        break
      case 'meta':
        if (!isStringMap(value)) return undefined
        required++
        break
      case 'node':
      case 'registeredAt':
      case 'updatedAt':
        if (typeof value !== 'string') return undefined
        required++
        break
      case 'source':
        if (value !== 'docker' && value !== 'manual') return undefined
        required++
        break
      case 'health':
        if (!isHealth(value)) return undefined
        required++
        break
      case 'container':
        if (!isContainerRef(value)) return undefined
        break
      case 'check':
        if (!isCheckSpec(value)) return undefined
        break
      default:
        return undefined
    }
  }
  return required === 12 ? (json as unknown as InstanceRecord) : undefined
}

type Json = Record<string, unknown>

// Copies of model.ts's enums: importing them would load zod, which this module exists to avoid.
// Should model.ts gain a value, records using it merely take the (correct) schema path.
const HEALTH_STATUSES: readonly unknown[] = ['passing', 'warning', 'critical', 'unknown', 'maintenance']
const CHECK_KINDS: readonly unknown[] = ['http', 'tcp', 'exec', 'docker']

function isPlainObject(value: unknown): value is Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value)

function hasOnly(value: Json, allowed: ReadonlySet<string>): boolean {
  for (const key in value) if (Object.hasOwn(value, key) && !allowed.has(key)) return false
  return true
}

function isStringMap(value: unknown): boolean {
  if (!isPlainObject(value)) return false
  for (const key in value) {
    // `__proto__` and friends are the schema's business.
    if (!Object.hasOwn(value, key) || key === '__proto__' || typeof value[key] !== 'string') return false
  }
  return true
}

const HEALTH_KEYS = new Set(['status', 'output', 'updatedAt', 'since'])
function isHealth(value: unknown): boolean {
  return (
    isPlainObject(value) &&
    hasOnly(value, HEALTH_KEYS) &&
    HEALTH_STATUSES.includes(value.status) &&
    typeof value.output === 'string' &&
    typeof value.updatedAt === 'string' &&
    typeof value.since === 'string'
  )
}

const CONTAINER_KEYS = new Set(['id', 'name', 'image', 'port', 'protocol'])
function isContainerRef(value: unknown): boolean {
  return (
    isPlainObject(value) &&
    hasOnly(value, CONTAINER_KEYS) &&
    typeof value.id === 'string' &&
    typeof value.name === 'string' &&
    typeof value.image === 'string' &&
    isInt(value.port) &&
    (value.protocol === 'tcp' || value.protocol === 'udp' || value.protocol === 'sctp')
  )
}

const CHECK_KEYS = new Set(['kind', 'target', 'interval', 'timeout', 'failuresBeforeCritical', 'successesBeforePassing', 'initialDelay', 'expectStatus', 'expectBody', 'container'])
function isCheckSpec(value: unknown): boolean {
  if (!isPlainObject(value) || !hasOnly(value, CHECK_KEYS)) return false
  const optionalString = (s: unknown): boolean => s === undefined || typeof s === 'string'
  return (
    CHECK_KINDS.includes(value.kind) &&
    typeof value.target === 'string' &&
    withinCheckLimit('interval', value.interval) &&
    withinCheckLimit('timeout', value.timeout) &&
    withinCheckLimit('failuresBeforeCritical', value.failuresBeforeCritical) &&
    withinCheckLimit('successesBeforePassing', value.successesBeforePassing) &&
    withinCheckLimit('initialDelay', value.initialDelay) &&
    optionalString(value.expectStatus) &&
    optionalString(value.expectBody) &&
    optionalString(value.container)
  )
}

/** A well-formed record read at `key` that lives where its own service, id (and node) say, or undefined: then the schema decides why not. */
export function fastInstanceAt(prefix: string, key: string, raw: string): InstanceRecord | undefined {
  const record = fastInstanceRecord(parseOrUndefined(raw))
  return record && recordBelongsAt(prefix, key, record) ? record : undefined
}

/**
 * The same for a node record (`nodeRecordSchema`): exactly its shape or undefined, never looser.
 * `status` reads every node record, and loading zod for a few of them cost more than the reads.
 * Its loop is fastInstanceRecord's, written out again on purpose: one loop over a table of
 * validators measured ~20% slower than the switch over 100,000 instance records (interleaved runs).
 */
export function fastNodeRecord(raw: string): NodeRecord | undefined {
  const json = parseOrUndefined(raw)
  if (!isPlainObject(json)) return undefined
  let required = 0
  for (const key in json) {
    if (!Object.hasOwn(json, key)) continue
    const value = json[key]
    switch (key) {
      case 'schema':
        if (value !== 1) return undefined
        required++
        break
      case 'node':
      case 'version':
      case 'hostname':
      case 'startedAt':
      case 'lease':
        if (typeof value !== 'string') return undefined
        required++
        break
      case 'pid':
        if (!isInt(value)) return undefined
        required++
        break
      case 'ttl':
        if (typeof value !== 'number' || !Number.isFinite(value)) return undefined
        required++
        break
      case 'docker':
        if (typeof value !== 'string') return undefined
        break
      case 'address':
        if (typeof value !== 'string' || value.length > 255) return undefined
        break
      case 'instance':
      case 'pidNamespace':
        if (typeof value !== 'string' || value.length > 64) return undefined
        break
      default:
        return undefined
    }
  }
  return required === 8 ? (json as unknown as NodeRecord) : undefined
}

function parseOrUndefined(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown
  } catch {
    return undefined
  }
}
