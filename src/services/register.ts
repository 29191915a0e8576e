import type { Config } from '../core/config.js'
import { etcdUnavailable } from '../core/etcd.js'
import { instanceKey } from '../core/keys.js'
import { ManagedLease } from '../core/lease.js'
import { CHECK_DEFAULTS, initialHealth, type CheckSpec, type InstanceRecord } from '../core/model.js'
import { Registry } from '../core/registry.js'
import { UsageError } from '../core/errors.js'
import { assertAddress, assertInstanceId, assertPort, assertServiceName, assertTag, parseMetaPair } from '../core/validate.js'

export interface RegisterRequest {
  service: string
  address: string
  port: number | string
  id?: string
  tags?: string[]
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

/** Validates everything and builds the record before anything touches etcd. */
export function buildManualRecord(request: RegisterRequest, node: string, now = new Date()): InstanceRecord {
  const service = assertServiceName(request.service)
  const address = assertAddress(request.address, '--address')
  const port = assertPort(request.port, '--port')
  const id = assertInstanceId(request.id ?? defaultInstanceId(service, address, port), request.id ? '--id' : 'derived id')
  const tags = [...new Set((request.tags ?? []).map((t) => assertTag(t)))]
  const meta = Object.fromEntries((request.meta ?? []).map((pair) => parseMetaPair(pair)))
  const check = buildCheck(request, address, port)
  if (request.keepalive && request.ttlMs === undefined) {
    throw new UsageError('--keepalive needs --ttl', { hint: 'add e.g. --ttl 30s so the record has a lease to keep alive' })
  }
  const at = now.toISOString()
  return {
    schema: 1,
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

export function defaultInstanceId(service: string, address: string, port: number): string {
  return `${service}-${address.replace(/[^A-Za-z0-9_.:-]/g, '-')}-${port}`
}

function buildCheck(request: RegisterRequest, address: string, port: number): CheckSpec | undefined {
  const check = request.check
  if (!check) return undefined
  if (check.http && check.tcp) throw new UsageError('--check-http and --check-tcp are exclusive', { hint: 'choose one check' })
  if (!check.http && !check.tcp) {
    if (check.intervalMs !== undefined || check.timeoutMs !== undefined) {
      throw new UsageError('--check-interval/--check-timeout need --check-http or --check-tcp', { hint: 'add a check, e.g. --check-tcp' })
    }
    return undefined
  }
  const interval = check.intervalMs ?? CHECK_DEFAULTS.interval
  const timeout = check.timeoutMs ?? Math.min(CHECK_DEFAULTS.timeout, interval)
  let target: string
  if (check.http) {
    let url: URL
    try {
      url = new URL(check.http)
    } catch {
      throw new UsageError(`--check-http '${check.http}' is not a URL`, { hint: 'use e.g. http://10.0.0.5:8080/health' })
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`--check-http '${check.http}' is not http or https`, { hint: 'use e.g. http://10.0.0.5:8080/health' })
    }
    target = url.toString()
  } else {
    target = `${address.includes(':') ? `[${address}]` : address}:${port}`
  }
  return { kind: check.http ? 'http' : 'tcp', target, ...CHECK_DEFAULTS, interval, timeout }
}

export interface Registration {
  record: InstanceRecord
  key: string
  /** Present with --ttl: the lease the record is bound to. */
  lease?: ManagedLease
  registry: Registry
}

/** Writes the record (replacing one with the same id). With a TTL, binds it to a fresh lease. */
export async function registerInstance(config: Config, record: InstanceRecord, ttlMs?: number): Promise<Registration> {
  const registry = Registry.open(config.etcd, config.prefix)
  const key = instanceKey(config.prefix, record.service, record.id)
  try {
    if (ttlMs === undefined) {
      await registry.putInstance(record)
      return { record, key, registry }
    }
    const lease = new ManagedLease(registry.client, { ttlMs })
    try {
      await lease.start()
      await lease.put(key, JSON.stringify(record))
    } catch (error) {
      lease.release()
      throw etcdUnavailable(error, config.etcd, 'registering')
    }
    return { record, key, lease, registry }
  } catch (error) {
    registry.close()
    throw error
  }
}

/** Keeps the lease alive until `signal` aborts, then revokes it (the record vanishes at once). */
export async function keepRegistrationAlive(registration: Registration, signal: AbortSignal, onLeaseEvent?: (text: string) => void): Promise<void> {
  const lease = registration.lease
  if (!lease) return
  lease.on('keepalive-failed', (_error, aliveFor) => onLeaseEvent?.(`keepalive failed; lease alive for at most ${Math.ceil(aliveFor / 1000)}s more, retrying`))
  lease.on('lost', (reason) => onLeaseEvent?.(`lease lost (${reason}); granting a new one and registering again`))
  lease.on('renewed', (id) => onLeaseEvent?.(`registered again under lease ${id}`))
  if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  await lease.revoke()
}

export async function deregisterInstance(config: Config, service: string, id: string): Promise<boolean> {
  assertServiceName(service)
  assertInstanceId(id)
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    return await registry.deleteInstance(service, id)
  } finally {
    registry.close()
  }
}
