import { isIP } from 'node:net'
import { UsageError } from './errors.js'
import { CHECK_DEFAULTS, CHECK_LIMITS, RECORD_SCHEMA, initialHealth, withinCheckLimit, type CheckSpec, type InstanceRecord } from './model.js'
import { assertAddress, assertInstanceId, assertPort, assertServiceName, assertTag, clip, parseMetaPair } from './validate.js'

/** What `register` and `registerSelf` ask for: one instance that no Docker container backs. */
export interface ManualInstanceRequest {
  service: string
  address: string
  port: number | string
  id?: string
  tags?: string[]
  /** `key=value` pairs, as `--meta` takes them. */
  meta?: string[]
  ttlMs?: number
  keepalive?: boolean
  check?: {
    http?: string
    tcp?: boolean
    intervalMs?: number
    timeoutMs?: number
  }
}

/** The input names that errors mention: CLI flags for the CLI, option names for the library. */
export interface ManualFieldNames {
  address: string
  port: string
  id: string
  tag: string
  meta: string
  checkHttp: string
  checkTcp: string
  checkInterval: string
  checkTimeout: string
  keepalive: string
  ttl: string
}

export const CLI_FIELD_NAMES: ManualFieldNames = {
  address: '--address',
  port: '--port',
  id: '--id',
  tag: '--tag',
  meta: '--meta',
  checkHttp: '--check-http',
  checkTcp: '--check-tcp',
  checkInterval: '--check-interval',
  checkTimeout: '--check-timeout',
  keepalive: '--keepalive',
  ttl: '--ttl',
}

/** Validates everything and builds the record before anything touches etcd. */
export function buildManualRecord(
  request: ManualInstanceRequest,
  node: string,
  now = new Date(),
  names: ManualFieldNames = CLI_FIELD_NAMES,
): InstanceRecord {
  const service = assertServiceName(request.service)
  const address = assertManualAddress(request.address, names.address)
  const port = assertPort(request.port, names.port)
  const id = assertInstanceId(request.id ?? defaultManualInstanceId(service, address, port), request.id ? names.id : 'derived id')
  const tags = [...new Set((request.tags ?? []).map((t) => assertTag(t, names.tag)))]
  const meta = Object.fromEntries((request.meta ?? []).map((pair) => parseMetaPair(pair, names.meta)))
  const check = buildCheck(request, address, port, names)
  if (request.keepalive && request.ttlMs === undefined) {
    throw new UsageError(`${names.keepalive} needs ${names.ttl}`, { hint: `add e.g. ${names.ttl} 30s so the record has a lease to keep alive` })
  }
  const at = now.toISOString()
  return {
    schema: RECORD_SCHEMA,
    id,
    service,
    address,
    port,
    tags,
    meta,
    node,
    source: 'manual',
    ...(check ? { check } : {}),
    health: initialHealth(check !== undefined, now),
    registeredAt: at,
    updatedAt: at,
  }
}

/**
 * assertAddress accepts every RFC 1123 host name, and `999.1.1.1` is one by the letter. But
 * a name whose last label is all digits can never be a real host name (RFC 1123 §2.1): it is a
 * mistyped IPv4 address, and registering it would hand consumers an address that can't work.
 */
function assertManualAddress(value: string, what: string): string {
  const address = assertAddress(value, what)
  if (isIP(address) === 0 && /^\d+$/.test(address.replace(/\.$/, '').split('.').pop() ?? '')) {
    throw new UsageError(`${what} '${clip(value)}' is not a valid IP address (nor a host name: its last label is all digits)`, {
      hint: 'use e.g. 10.0.0.5, ::1 or db.internal',
    })
  }
  return address
}

/** `<service>-<address>-<port>`, the id a manual instance gets when none is given. */
export function defaultManualInstanceId(service: string, address: string, port: number): string {
  return `${service}-${address.replace(/[^A-Za-z0-9_.:-]/g, '-')}-${port}`
}

function buildCheck(request: ManualInstanceRequest, address: string, port: number, names: ManualFieldNames): CheckSpec | undefined {
  const check = request.check
  if (!check) return undefined
  if (check.http && check.tcp) throw new UsageError(`${names.checkHttp} and ${names.checkTcp} are exclusive`, { hint: 'choose one check' })
  if (!check.http && !check.tcp) {
    if (check.intervalMs !== undefined || check.timeoutMs !== undefined) {
      throw new UsageError(`${names.checkInterval}/${names.checkTimeout} need ${names.checkHttp} or ${names.checkTcp}`, { hint: `add a check, e.g. ${names.checkTcp}` })
    }
    return undefined
  }
  const interval = check.intervalMs ?? CHECK_DEFAULTS.interval
  const timeout = check.timeoutMs ?? Math.min(CHECK_DEFAULTS.timeout, interval)
  for (const [key, value, name] of [['interval', interval, names.checkInterval], ['timeout', timeout, names.checkTimeout]] as const) {
    if (!withinCheckLimit(key, value)) {
      const { min, max } = CHECK_LIMITS[key]
      throw new UsageError(`${name} ${value} ms is out of range`, { hint: `use ${min} ms to ${max / 3_600_000} h` })
    }
  }
  let target: string
  if (check.http) {
    let url: URL
    try {
      url = new URL(check.http)
    } catch {
      throw new UsageError(`${names.checkHttp} '${clip(check.http)}' is not a URL`, { hint: 'use e.g. http://10.0.0.5:8080/health' })
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`${names.checkHttp} '${clip(check.http)}' is not http or https`, { hint: 'use e.g. http://10.0.0.5:8080/health' })
    }
    target = url.toString()
  } else {
    target = `${address.includes(':') ? `[${address}]` : address}:${port}`
  }
  return { kind: check.http ? 'http' : 'tcp', target, ...CHECK_DEFAULTS, interval, timeout }
}
