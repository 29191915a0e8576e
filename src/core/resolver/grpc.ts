import { backoffMs } from '../async.js'
import type { InstanceRecord } from '../model.js'
import { DEFAULTS } from '../config.js'
import { UsageError } from '../errors.js'
import type { Registry } from '../registry.js'
import { assertPrefix, clip, serviceNameProblem } from '../validate.js'
import { etcdConnectionFrom, openRegistry, type RegistryOptions } from './connection.js'
import { createResolver, type Resolver } from './resolver.js'

/**
 * The gRPC side of the consumer library: a `@grpc/grpc-js` name resolver for
 * `discovery:///<service>`. grpc-js is never imported statically here; the caller passes its own
 * module (resolvers are registered per grpc-js module instance) or it is imported on first use.
 *
 * The types below are the parts of grpc-js's resolver API (1.14) this module relies on, written
 * out so that the package's types don't pin the caller's grpc-js version.
 */
export const DISCOVERY_SCHEME = 'discovery'

/** The parts of the `@grpc/grpc-js` module used here (structural, so any grpc-js 1.14-compatible module fits). */
export interface GrpcModule {
  experimental: { registerResolver(scheme: string, resolverClass: unknown): void }
  status: { UNAVAILABLE: number }
  Metadata: new () => unknown
}

export interface GrpcUri {
  scheme?: string
  authority?: string
  path: string
}

export interface GrpcEndpoint {
  addresses: { host: string; port: number }[]
}

export type StatusOr<T> = { ok: true; value: T } | { ok: false; error: { code: number; details: string; metadata: unknown } }

export interface GrpcServiceConfig {
  loadBalancingConfig: Record<string, object>[]
  methodConfig: []
}

/** grpc-js's ResolverListener (1.14): the endpoints or an error, attributes, service config, a note for error messages. */
export type ResolverListener = (
  endpoints: StatusOr<GrpcEndpoint[]>,
  attributes: Record<string, unknown>,
  serviceConfig: StatusOr<GrpcServiceConfig> | null,
  resolutionNote: string,
) => boolean

export interface GrpcResolverOptions extends RegistryOptions {
  /** Your `@grpc/grpc-js` module (`import * as grpc from '@grpc/grpc-js'`); default: the one this package resolves. */
  grpc?: GrpcModule
  /** The URI scheme to register; default `discovery`. */
  scheme?: string
  /** Only healthy (passing) instances; default true. */
  healthyOnly?: boolean
  /** Only instances that carry every one of these tags. */
  tags?: readonly string[]
  /**
   * The load-balancing policy the resolver tells channels to use. Default: none, so the channel's
   * own `grpc.service_config` option decides (grpc-js's default is pick_first).
   */
  loadBalancing?: 'round_robin' | 'pick_first'
}

export interface GrpcResolverRegistration {
  readonly scheme: string
  /** Services that at least one channel follows right now. */
  services(): string[]
  /**
   * Stops following etcd for every channel and closes the etcd connection. Channels still open
   * keep their last address list. (grpc-js has no way to unregister a scheme.)
   */
  close(): Promise<void>
}

/** Shares one Resolver per service among the channels that dial it, and one etcd connection among those. */
export interface ResolverPool {
  /** The shared resolver; on success the caller must `release` it once. A rejected acquire needs no release. */
  acquire(service: string): Promise<Resolver>
  release(service: string): void
}

/**
 * Registers the `discovery` scheme with grpc-js, so `new Client('discovery:///web', credentials)`
 * connects to the healthy instances of `web` and follows every change.
 *
 * ```ts
 * import * as grpc from '@grpc/grpc-js'
 * await registerGrpcResolver({ grpc, etcdEndpoints: '10.0.0.2:2379', loadBalancing: 'round_robin' })
 * const client = new EchoClient('discovery:///echo', grpc.credentials.createInsecure())
 * ```
 *
 * Channels to one service share one watch. When a service has no (healthy) instance, calls
 * fail with UNAVAILABLE ("discovery: no healthy instances of 'echo'") or, with `waitForReady`,
 * wait until an instance appears. When etcd can't be reached the channel keeps the last known list.
 */
export async function registerGrpcResolver(options: GrpcResolverOptions = {}): Promise<GrpcResolverRegistration> {
  const grpc = options.grpc ?? (await importGrpc())
  const scheme = options.scheme ?? DISCOVERY_SCHEME
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) {
    throw new UsageError(`scheme '${clip(scheme)}' is not a URI scheme`, { hint: "use lower-case letters, digits, '+', '.' or '-', e.g. 'discovery'" })
  }
  // Bad endpoints, TLS settings or prefix are reported now rather than on the first call.
  if (!options.registry) {
    etcdConnectionFrom(options)
    assertPrefix(options.prefix ?? DEFAULTS.prefix)
  }
  const pool = new SharedResolvers(options)
  grpc.experimental.registerResolver(scheme, discoveryResolverClass(grpc, pool, options))
  return {
    scheme,
    services: () => pool.services(),
    close: () => pool.close(),
  }
}

async function importGrpc(): Promise<GrpcModule> {
  const module = (await import('@grpc/grpc-js')) as unknown as GrpcModule & { default?: GrpcModule }
  return module.experimental ? module : module.default!
}

const EMPTY_LIST_CONFIG: StatusOr<GrpcServiceConfig> = { ok: true, value: { loadBalancingConfig: [{ round_robin: {} }], methodConfig: [] } }

/** What grpc-js's `registerResolver` takes (its ResolverConstructor). */
export interface GrpcResolverClass {
  new (target: GrpcUri, listener: ResolverListener, channelOptions: unknown): { updateResolution(): void; destroy(): void }
  getDefaultAuthority(target: GrpcUri): string
}

/** A resolver class bound to one pool: grpc-js constructs one per channel (per ResolvingLoadBalancer). */
export function discoveryResolverClass(grpc: GrpcModule, pool: ResolverPool, options: Pick<GrpcResolverOptions, 'loadBalancing'> = {}): GrpcResolverClass {
  const serviceConfig: StatusOr<GrpcServiceConfig> | null = options.loadBalancing
    ? { ok: true, value: { loadBalancingConfig: [{ [options.loadBalancing]: {} }], methodConfig: [] } }
    : null

  return class DiscoveryResolver {
    private readonly service?: string
    private readonly targetError?: string
    /** Bumped by destroy(): callbacks of an older generation are dropped. */
    private generation = 0
    private active = false
    private resolver?: Resolver
    private retryTimer?: NodeJS.Timeout
    private attempt = 0
    private lastSent?: string
    private detach?: () => void

    constructor(
      target: GrpcUri,
      private readonly listener: ResolverListener,
      _channelOptions: unknown,
    ) {
      if (typeof listener !== 'function') {
        throw new Error('discovery-agent: this @grpc/grpc-js uses an older resolver API; use @grpc/grpc-js 1.14 or later')
      }
      const service = serviceFromTarget(target)
      const problem = serviceNameProblem(service)
      if (problem) this.targetError = `discovery: '${service}' in target ${targetText(target)} is not a service name: it ${problem}`
      else this.service = service
    }

    static getDefaultAuthority(target: GrpcUri): string {
      return serviceFromTarget(target)
    }

    updateResolution(): void {
      if (this.targetError) {
        this.sendError(this.targetError)
        return
      }
      // Push-based: once following the service, every change is sent as it happens, so a
      // re-resolution request (a connection failed) has nothing new to fetch. Answering it
      // anyway would loop: grpc-js resets its re-resolution backoff on every result.
      if (this.active) return
      this.active = true
      this.acquire()
    }

    destroy(): void {
      this.generation += 1
      this.active = false
      this.lastSent = undefined
      clearTimeout(this.retryTimer)
      this.detach?.()
      this.detach = undefined
      if (this.resolver) {
        this.resolver = undefined
        pool.release(this.service!)
      }
    }

    private acquire(): void {
      const generation = this.generation
      const service = this.service!
      pool.acquire(service).then(
        (resolver) => {
          if (generation !== this.generation) {
            pool.release(service)
            return
          }
          this.attempt = 0
          this.resolver = resolver
          const changed = (): void => this.sendTable(false)
          resolver.on('change', changed)
          resolver.on('disconnected', changed)
          resolver.on('reconnected', changed)
          this.detach = () => {
            resolver.off('change', changed)
            resolver.off('disconnected', changed)
            resolver.off('reconnected', changed)
          }
          this.sendTable(true)
        },
        (error: unknown) => {
          if (generation !== this.generation) return
          const message = String((error as Error)?.message ?? error).split('\n')[0]
          this.sendError(`discovery: cannot load the instances of '${service}': ${message}`)
          // Like grpc-js's DNS resolver, retry on our own with backoff while the channel wants us.
          this.retryTimer = setTimeout(() => {
            if (generation === this.generation) this.acquire()
          }, backoffMs(this.attempt++, 500, 10_000))
          this.retryTimer.unref?.()
        },
      )
    }

    /** Sends the table when the addresses changed (or always, when asked to). */
    private sendTable(always: boolean): void {
      const resolver = this.resolver
      if (!resolver) return
      const instances = resolver.instances()
      const endpoints = instancesToEndpoints(instances)
      const note = resolutionNote(resolver, instances.length)
      // The note only matters for an empty list (it is the error calls fail with); re-sending
      // an unchanged list would make round_robin rebuild its children for nothing.
      const signature = endpoints.length === 0 ? note : JSON.stringify(endpoints)
      if (!always && signature === this.lastSent) return
      this.lastSent = signature
      if (endpoints.length > 0) {
        this.deliver([{ ok: true, value: endpoints }], note)
        return
      }
      // No instance. grpc-js needs two nudges to fail calls clearly instead of using a backend
      // that is gone: the empty list makes round_robin drop its children, and the error that
      // follows puts it in TRANSIENT_FAILURE with this reason (an empty list alone leaves it IDLE,
      // where calls wait for their deadline). pick_first ignores both and keeps its connection to
      // the last pick, so for the empty list round_robin is prescribed: the switch of policy
      // replaces pick_first. The next non-empty list brings the channel's own policy back.
      this.deliver([{ ok: true, value: [] }, this.unavailable(note)], note, EMPTY_LIST_CONFIG)
    }

    private sendError(details: string): void {
      this.lastSent = undefined
      this.deliver([this.unavailable(details)], details)
    }

    private unavailable(details: string): StatusOr<GrpcEndpoint[]> {
      return { ok: false, error: { code: grpc.status.UNAVAILABLE, details, metadata: new grpc.Metadata() } }
    }

    /** Never synchronously inside updateResolution, as grpc-js requires. */
    private deliver(results: StatusOr<GrpcEndpoint[]>[], note: string, config: StatusOr<GrpcServiceConfig> | null = serviceConfig): void {
      const generation = this.generation
      process.nextTick(() => {
        for (const result of results) {
          if (generation !== this.generation) return
          this.listener(result, {}, config, note)
        }
      })
    }
  }
}

/** `discovery:///web` and `discovery:web` name the service `web`. */
export function serviceFromTarget(target: GrpcUri): string {
  return target.path.replace(/^\/+/, '')
}

function targetText(target: GrpcUri): string {
  return `${target.scheme ?? ''}:${target.authority !== undefined ? `//${target.authority}/` : ''}${target.path}`
}

/** One endpoint per instance, in the resolver's (id) order. */
export function instancesToEndpoints(instances: readonly InstanceRecord[]): GrpcEndpoint[] {
  return instances.map((instance) => ({ addresses: [{ host: instance.address, port: instance.port }] }))
}

function resolutionNote(resolver: Resolver, count: number): string {
  const where = `'${resolver.service}'`
  const stale = resolver.connected ? '' : ' (etcd unreachable: last known list)'
  return count === 0 ? `discovery: no healthy instances of ${where}${stale}` : `discovery: ${count} instance(s) of ${where}${stale}`
}

class SharedResolvers implements ResolverPool {
  private registry?: Registry
  private readonly entries = new Map<string, { promise: Promise<Resolver>; users: number }>()
  private closed = false

  constructor(private readonly options: GrpcResolverOptions) {}

  services(): string[] {
    return [...this.entries.keys()]
  }

  acquire(service: string): Promise<Resolver> {
    if (this.closed) return Promise.reject(new Error('the discovery resolver registration was closed'))
    let entry = this.entries.get(service)
    if (!entry) {
      const promise = this.open(service)
      const created = { promise, users: 0 }
      entry = created
      this.entries.set(service, created)
      promise.catch(() => {
        // Every waiting channel gets the rejection and retries on its own; forget the entry.
        if (this.entries.get(service) === created) this.entries.delete(service)
        this.closeRegistryIfUnused()
      })
    }
    entry.users += 1
    return entry.promise
  }

  release(service: string): void {
    const entry = this.entries.get(service)
    if (!entry) return
    entry.users -= 1
    if (entry.users > 0) return
    this.entries.delete(service)
    void entry.promise
      .then((resolver) => resolver.close(), () => undefined)
      .finally(() => this.closeRegistryIfUnused())
  }

  async close(): Promise<void> {
    this.closed = true
    const entries = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(entries.map((entry) => entry.promise.then((resolver) => resolver.close(), () => undefined)))
    this.closeRegistryIfUnused()
  }

  private async open(service: string): Promise<Resolver> {
    const { healthyOnly, tags } = this.options
    if (this.options.registry) return createResolver(service, { registry: this.options.registry, healthyOnly, tags })
    this.registry ??= openRegistry({ ...this.options, registry: undefined }).registry
    return createResolver(service, { registry: this.registry, healthyOnly, tags })
  }

  /** One etcd connection while any channel follows a service; none when no channel does, so the process can exit. */
  private closeRegistryIfUnused(): void {
    if (this.entries.size > 0 || !this.registry) return
    this.registry.close()
    this.registry = undefined
  }
}
