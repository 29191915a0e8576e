import { EventEmitter } from 'node:events'
import os from 'node:os'
import { DEFAULTS } from '../config.js'
import { parseDuration } from '../duration.js'
import { explainEtcdFailure } from '../etcd.js'
import { instanceKey } from '../keys.js'
import { ManagedLease } from '../lease.js'
import { buildManualRecord, type ManualFieldNames } from '../manual-record.js'
import type { InstanceRecord } from '../model.js'
import type { Registry } from '../registry.js'
import { assertNodeName } from '../validate.js'
import { openRegistry, type RegistryOptions } from './connection.js'

export interface RegisterSelfOptions extends RegistryOptions {
  service: string
  /** The address consumers should dial: an IP address or a host name. */
  address: string
  port: number
  /** Default `<service>-<address>-<port>`. */
  id?: string
  tags?: readonly string[]
  meta?: Readonly<Record<string, string>>
  /** A check the elected agent leader runs against this instance (as `register --check-…`). */
  check?: {
    /** An http(s) URL; 200–399 is passing. */
    http?: string
    /** A TCP connect to address:port. */
    tcp?: boolean
    /** `10s`, `500ms`, or a number of seconds; default 10s. */
    interval?: string | number
    /** Default 5s (at most the interval). */
    timeout?: string | number
  }
  /** Lease TTL: `10s`, `2m`, or a number of seconds; default 10s. The record vanishes this long after the process dies. */
  ttl?: string | number
  /** The node the record names; default the host name. */
  node?: string
}

export interface SelfRegistrationEvents {
  /** A keepalive failed; the lease (and the record) lives at most `aliveForMs` more unless one succeeds. */
  'keepalive-failed': [error: unknown, aliveForMs: number]
  /** Keepalives work again. */
  alive: []
  /** The lease expired (etcd was unreachable for a whole TTL): the record is gone until re-registered. */
  lost: [reason: string]
  /** A new lease was granted and the record written again (automatic after 'lost'). */
  renewed: [leaseId: string]
  /** Writing the record again failed; it is retried. Emitted only when you listen for it. */
  error: [error: unknown]
}

const OPTION_NAMES: ManualFieldNames = {
  address: 'address',
  port: 'port',
  id: 'id',
  tag: 'tags',
  meta: 'meta',
  checkHttp: 'check.http',
  checkTcp: 'check.tcp',
  checkInterval: 'check.interval',
  checkTimeout: 'check.timeout',
  keepalive: 'keepalive',
  ttl: 'ttl',
}

/** A registration of this process, bound to a lease it keeps alive. `close()` deregisters. */
export class SelfRegistration extends EventEmitter<SelfRegistrationEvents> {
  private closing?: Promise<void>

  constructor(
    readonly record: InstanceRecord,
    /** The etcd key of the record. */
    readonly key: string,
    private readonly lease: ManagedLease,
    private readonly registry: Registry,
    private readonly ownsRegistry: boolean,
  ) {
    super()
    lease.on('keepalive-failed', (error, aliveFor) => this.emit('keepalive-failed', error, aliveFor))
    lease.on('alive', () => this.emit('alive'))
    lease.on('lost', (reason) => this.emit('lost', reason))
    lease.on('renewed', (id) => this.emit('renewed', id))
    lease.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error)
    })
  }

  get id(): string {
    return this.record.id
  }

  get service(): string {
    return this.record.service
  }

  /** The lease id (decimal) the record is bound to now; undefined while it is lost. */
  get leaseId(): string | undefined {
    return this.lease.id
  }

  /** Revokes the lease: the record vanishes from etcd at once. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.lease.revoke()
      } finally {
        if (this.ownsRegistry) this.registry.close()
      }
    })()
    return this.closing
  }
}

/**
 * Registers this process as an instance of `service`, bound to a lease that is kept alive in
 * the background (renewed every TTL/3, re-granted and re-written after an outage). The record
 * vanishes when `close()` revokes the lease, or within the TTL if the process dies.
 *
 * ```ts
 * const me = await registerSelf({ service: 'web', address: '10.0.0.5', port: 8080, etcdEndpoints: '10.0.0.2:2379' })
 * process.once('SIGTERM', () => void me.close().then(() => process.exit(0)))
 * ```
 *
 * The keepalive timers don't hold the event loop open: your server does. Throws a `UsageError`
 * for bad input (nothing is written) and an `UnavailableError` when etcd can't be reached.
 */
export async function registerSelf(options: RegisterSelfOptions): Promise<SelfRegistration> {
  const ttlMs = parseDuration(options.ttl ?? DEFAULTS.ttlMs / 1000, 'ttl')
  const node = assertNodeName(options.node ?? defaultNodeName())
  const check = options.check && {
    http: options.check.http,
    tcp: options.check.tcp,
    intervalMs: options.check.interval === undefined ? undefined : parseDuration(options.check.interval, 'check.interval'),
    timeoutMs: options.check.timeout === undefined ? undefined : parseDuration(options.check.timeout, 'check.timeout'),
  }
  const record = buildManualRecord(
    {
      service: options.service,
      address: options.address,
      port: options.port,
      id: options.id,
      tags: [...(options.tags ?? [])],
      meta: Object.entries(options.meta ?? {}).map(([key, value]) => `${key}=${value}`),
      ttlMs,
      check,
    },
    node,
    new Date(),
    OPTION_NAMES,
  )
  const { registry, owned } = openRegistry(options)
  const key = instanceKey(registry.prefix, record.service, record.id)
  const lease = new ManagedLease(registry.client, { ttlMs })
  try {
    await lease.start()
    await lease.put(key, JSON.stringify(record))
  } catch (error) {
    // Revoke rather than release: a lease granted just before a failed put must not linger.
    await lease.revoke()
    if (owned) registry.close()
    throw await explainEtcdFailure(error, registry.connection, `registering ${record.service}/${record.id}`)
  }
  return new SelfRegistration(record, key, lease, registry, owned)
}

/** The host name, made a valid node name (as the CLI's default `--node`). */
function defaultNodeName(): string {
  const cleaned = os.hostname().replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 200)
  return cleaned.length > 0 ? cleaned : 'node'
}
