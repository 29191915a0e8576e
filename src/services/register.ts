import { UsageError } from '../core/errors.js'
import type { Config } from '../core/config.js'
import { explainEtcdFailure } from '../core/etcd.js'
import { instanceKey } from '../core/keys.js'
import { ManagedLease } from '../core/lease.js'
import { buildManualRecord as buildCoreManualRecord, defaultManualInstanceId, type ManualInstanceRequest } from '../core/manual-record.js'
import type { InstanceRecord } from '../core/model.js'
import { Registry } from '../core/registry.js'
import { assertInstanceId, assertServiceName } from '../core/validate.js'

/** The request `register` takes; the record is built by the core, shared with the library's registerSelf. */
export type RegisterRequest = ManualInstanceRequest

/** Validates everything and builds the record before anything touches etcd. */
export function buildManualRecord(request: RegisterRequest, node: string, now = new Date()): InstanceRecord {
  return buildCoreManualRecord(request, node, now)
}

export const defaultInstanceId = defaultManualInstanceId

export interface Registration {
  record: InstanceRecord
  key: string
  /** Present with --ttl: the lease the record is bound to. */
  lease?: ManagedLease
  registry: Registry
}

/** Writes the record (replacing one with the same id). With a TTL, binds it to a fresh lease. */
export async function registerInstance(config: Config, record: InstanceRecord, ttlMs?: number): Promise<Registration> {
  // Checked before anything is written; etcd refuses leases much shorter than its election timeout.
  if (ttlMs !== undefined && (ttlMs < 2_000 || ttlMs > 86_400_000)) {
    throw new UsageError(`--ttl ${ttlMs} ms is out of range`, { hint: 'use 2s to 24h, or leave it out for a record that stays until deregister' })
  }
  const registry = Registry.open(config.etcd, config.prefix)
  const key = instanceKey(registry.prefix, record.service, record.id)
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
      throw await explainEtcdFailure(error, config.etcd, 'registering')
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
  // Renewals are retried every fraction of a second during an outage: report it once, not each time.
  let failing = false
  lease.on('keepalive-failed', (_error, aliveFor) => {
    if (failing) return
    failing = true
    onLeaseEvent?.(`keepalive failed; lease alive for at most ${Math.ceil(aliveFor / 1000)}s more, retrying`)
  })
  lease.on('alive', () => {
    failing = false
    onLeaseEvent?.('keepalive works again')
  })
  lease.on('lost', (reason) => onLeaseEvent?.(`lease lost (${reason}); granting a new one and registering again`))
  lease.on('renewed', (id) => {
    failing = false
    onLeaseEvent?.(`registered again under lease ${id}`)
  })
  // Without a listener an 'error' event would throw and end the process; a failed re-put is retried.
  lease.on('error', (error) => onLeaseEvent?.(`writing the record again failed (${String((error as Error)?.message ?? error).split('\n')[0]}); retrying`))
  if (!signal.aborted) {
    // The lease's timers are unref'd (an agent has other work keeping it alive); here nothing
    // else would hold the event loop open, and Node would exit (code 13) at once with the lease
    // unrenewed. This handle keeps the process in the foreground until the signal.
    const hold = setInterval(() => undefined, 1 << 30)
    try {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
    } finally {
      clearInterval(hold)
    }
  }
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
