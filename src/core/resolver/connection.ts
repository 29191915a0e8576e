import { DEFAULTS, normalizeEndpoints, type EtcdConnection } from '../config.js'
import { UsageError } from '../errors.js'
import { Registry } from '../registry.js'
import { assertPrefix } from '../validate.js'

/**
 * How a library user reaches etcd: the same settings as the CLI's `--etcd-*` flags. Nothing is
 * read from the environment; pass `resolveConfig({ flags: {}, env: process.env, cwd: process.cwd() })`'s
 * `etcd` fields here to honour `DISCOVERY_*` / `ETCDCTL_*` as the CLI does.
 */
export interface EtcdOptions {
  /** `host:port` or `http(s)://host:port`, an array or a comma list; default `http://127.0.0.1:2379`. `host:port` becomes https when TLS files are given. */
  etcdEndpoints?: string | readonly string[]
  /** Path of the CA certificate (PEM) that signed the etcd server certificate. */
  cacert?: string
  /** Path of the client certificate (PEM); needs `key`. */
  cert?: string
  /** Path of the client key (PEM); needs `cert`. */
  key?: string
  /** etcd user, or `name:password` as etcdctl takes it. */
  user?: string
  password?: string
}

export interface RegistryOptions extends EtcdOptions {
  /** The registry prefix; default `/discovery`. */
  prefix?: string
  /**
   * An open registry to share (its connection and prefix are used, and the etcd options and
   * `prefix` above are ignored); whoever opened it closes it.
   */
  registry?: Registry
}

/** Validates and normalises the options into the connection the CLI would build from the same flags. */
export function etcdConnectionFrom(options: EtcdOptions): EtcdConnection {
  if (Boolean(options.cert) !== Boolean(options.key)) {
    throw new UsageError(`a client certificate needs its key: ${options.cert ? 'cert' : 'key'} is set but ${options.cert ? 'key' : 'cert'} is not`, {
      hint: 'pass both cert and key, or neither',
    })
  }
  const tls = Boolean(options.cacert || options.cert)
  const raw = options.etcdEndpoints
  const list = raw === undefined ? [...DEFAULTS.etcdEndpoints] : (typeof raw === 'string' ? raw.split(',') : [...raw]).map((e) => String(e).trim()).filter(Boolean)
  if (list.length === 0) throw new UsageError('etcdEndpoints is empty', { hint: "give at least one endpoint, e.g. '127.0.0.1:2379'" })
  const endpoints = normalizeEndpoints(list, tls, 'etcdEndpoints')

  let user = options.user
  let password = options.password
  if (user?.includes(':')) {
    const colon = user.indexOf(':')
    if (password === undefined) password = user.slice(colon + 1)
    user = user.slice(0, colon)
  }
  if (user === '') throw new UsageError('the etcd user name is empty', { hint: 'use name or name:password' })
  if (password !== undefined && !user) throw new UsageError('an etcd password is set but no user', { hint: 'set user as well' })

  return {
    endpoints,
    ...(options.cacert ? { cacert: options.cacert } : {}),
    ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    ...(user ? { user, password } : {}),
  }
}

/** The registry to use and whether the caller opened it (and so must close it). */
export function openRegistry(options: RegistryOptions): { registry: Registry; owned: boolean } {
  if (options.registry) return { registry: options.registry, owned: false }
  // Checked before the client opens, so a bad prefix leaves no connection behind.
  const prefix = assertPrefix(options.prefix ?? DEFAULTS.prefix)
  return { registry: Registry.open(etcdConnectionFrom(options), prefix), owned: true }
}
