import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import type { Node as YamlNode } from 'yaml'
import { parseDuration } from './duration.js'
import { UsageError, isDiscoveryError } from './errors.js'
import { assertAddress, assertNodeName, assertPort, assertPrefix, clip } from './validate.js'
import { parseContainerFilters, type ContainerFilters } from './docker/container-filter.js'

/**
 * The one place settings are resolved: flag > DISCOVERY_* env > ecosystem env
 * (ETCDCTL_*, DOCKER_*) > YAML config file > default. The environment, the working
 * directory and the file reader are parameters so the precedence is unit-testable.
 */
export interface EtcdConnection {
  endpoints: string[]
  cacert?: string
  cert?: string
  key?: string
  user?: string
  password?: string
}

export interface DockerConnection {
  /** `unix:///var/run/docker.sock`, `tcp://host:2376`, … */
  host: string
  certPath?: string
  tlsVerify: boolean
}

export type AddressMode = 'published' | 'container'

export interface AgentSettings {
  ttlMs: number
  resyncMs: number
  addressMode: AddressMode
  network?: string
  advertiseAddress?: string
  exposedByDefault: boolean
  deregisterCriticalAfterMs?: number
  metricsPort?: number
  metricsHost: string
  checkConcurrency: number
  /** Added to every Docker instance's tags (Registrator `-tags`). */
  extraTags?: string[]
  /** Register only ports with an explicit service name (Registrator `-explicit`). */
  explicit?: boolean
  /** The container label holding the address to register (Registrator `-useIpFromLabel`). */
  ipFromLabel?: string
  /** `--swarm`: the leader registers Swarm services' tasks (on a manager); every agent leaves task containers to it. */
  swarm?: SwarmSettings
  /** `--filter`: only the containers Docker lists with these filters are this agent's (docker ps --filter syntax). */
  containerFilters?: ContainerFilters
}

export interface SwarmSettings {
  /** published, task or vip; default per service (published with host-mode ports, else task). */
  addressMode?: 'published' | 'task' | 'vip'
  /** The overlay network whose addresses are registered (task, vip). */
  network?: string
}

/** The read side: DNS and the Consul-shaped HTTP API (watch and serve). */
export interface ServeSettings {
  dns?: ListenAddress
  dnsDomain: string
  dnsTtlSeconds: number
  dnsOnlyPassing: boolean
  dnsRecursors: string[]
  http?: ListenAddress
  httpToken?: string
  datacenter: string
}

export interface ListenAddress {
  host: string
  port: number
}

export interface Config {
  etcd: EtcdConnection
  prefix: string
  docker: DockerConnection
  node: string
  /** The config file that was read, if any. */
  configFile?: string
  agent: AgentSettings
  serve: ServeSettings
  /** Where each setting that is not a default came from (`--resync`, `DISCOVERY_TTL`, `etcd …`, `config file …`). */
  sources?: Record<string, string>
}

type Kind = 'string' | 'list' | 'tags' | 'duration' | 'port' | 'int' | 'bool' | 'address' | 'enum'

interface SettingDef {
  /** Flag name without dashes; also the config-file key. */
  flag: string
  env: string[]
  kind: Kind
  values?: readonly string[]
  /** Durations: the range accepted, in ms (every duration is also below Node's 2^31 ms timer limit). */
  range?: { min: number; max: number; allowZero?: boolean }
  /** Never echoed in an error message. */
  secret?: boolean
}

/** Every setting that may come from a flag, the environment or the config file. */
export const SETTINGS: readonly SettingDef[] = [
  { flag: 'etcd-endpoints', env: ['DISCOVERY_ETCD_ENDPOINTS', 'ETCDCTL_ENDPOINTS'], kind: 'list' },
  { flag: 'etcd-cacert', env: ['DISCOVERY_ETCD_CACERT', 'ETCDCTL_CACERT'], kind: 'string' },
  { flag: 'etcd-cert', env: ['DISCOVERY_ETCD_CERT', 'ETCDCTL_CERT'], kind: 'string' },
  { flag: 'etcd-key', env: ['DISCOVERY_ETCD_KEY', 'ETCDCTL_KEY'], kind: 'string' },
  { flag: 'etcd-user', env: ['DISCOVERY_ETCD_USER', 'ETCDCTL_USER'], kind: 'string' },
  { flag: 'etcd-password', env: ['DISCOVERY_ETCD_PASSWORD', 'ETCDCTL_PASSWORD'], kind: 'string', secret: true },
  { flag: 'prefix', env: ['DISCOVERY_PREFIX'], kind: 'string' },
  { flag: 'docker-host', env: ['DISCOVERY_DOCKER_HOST', 'DOCKER_HOST'], kind: 'string' },
  { flag: 'docker-cert-path', env: ['DOCKER_CERT_PATH'], kind: 'string' },
  { flag: 'docker-tls-verify', env: ['DOCKER_TLS_VERIFY'], kind: 'bool' },
  { flag: 'node', env: ['DISCOVERY_NODE'], kind: 'string' },
  // etcd refuses leases much shorter than its election timeout; a day is already far past any use.
  { flag: 'ttl', env: ['DISCOVERY_TTL'], kind: 'duration', range: { min: 2_000, max: 86_400_000 } },
  { flag: 'resync', env: ['DISCOVERY_RESYNC'], kind: 'duration', range: { min: 100, max: 86_400_000 } },
  { flag: 'address-mode', env: ['DISCOVERY_ADDRESS_MODE'], kind: 'enum', values: ['published', 'container'] },
  { flag: 'network', env: ['DISCOVERY_NETWORK'], kind: 'string' },
  { flag: 'advertise-address', env: ['DISCOVERY_ADVERTISE_ADDRESS'], kind: 'address' },
  { flag: 'exposed-by-default', env: ['DISCOVERY_EXPOSED_BY_DEFAULT'], kind: 'bool' },
  { flag: 'deregister-critical-after', env: ['DISCOVERY_DEREGISTER_CRITICAL_AFTER'], kind: 'duration', range: { min: 1_000, max: 30 * 86_400_000 } },
  { flag: 'metrics-port', env: ['DISCOVERY_METRICS_PORT'], kind: 'port' },
  { flag: 'metrics-host', env: ['DISCOVERY_METRICS_HOST'], kind: 'address' },
  { flag: 'check-concurrency', env: ['DISCOVERY_CHECK_CONCURRENCY'], kind: 'int' },
  { flag: 'tags', env: ['DISCOVERY_TAGS'], kind: 'tags' },
  { flag: 'explicit', env: ['DISCOVERY_EXPLICIT'], kind: 'bool' },
  { flag: 'use-ip-from-label', env: ['DISCOVERY_USE_IP_FROM_LABEL'], kind: 'string' },
  { flag: 'filter', env: ['DISCOVERY_FILTER'], kind: 'list' },
  { flag: 'swarm', env: ['DISCOVERY_SWARM'], kind: 'bool' },
  { flag: 'swarm-address-mode', env: ['DISCOVERY_SWARM_ADDRESS_MODE'], kind: 'enum', values: ['published', 'task', 'vip'] },
  { flag: 'swarm-network', env: ['DISCOVERY_SWARM_NETWORK'], kind: 'string' },
  { flag: 'dns-addr', env: ['DISCOVERY_DNS_ADDR'], kind: 'string' },
  { flag: 'dns-domain', env: ['DISCOVERY_DNS_DOMAIN'], kind: 'string' },
  { flag: 'dns-ttl', env: ['DISCOVERY_DNS_TTL'], kind: 'duration', range: { min: 0, max: 86_400_000, allowZero: true } },
  { flag: 'dns-only-passing', env: ['DISCOVERY_DNS_ONLY_PASSING'], kind: 'bool' },
  { flag: 'dns-recursor', env: ['DISCOVERY_DNS_RECURSOR'], kind: 'list' },
  { flag: 'http-addr', env: ['DISCOVERY_HTTP_ADDR'], kind: 'string' },
  { flag: 'http-token', env: ['DISCOVERY_HTTP_TOKEN'], kind: 'string', secret: true },
  { flag: 'datacenter', env: ['DISCOVERY_DATACENTER'], kind: 'string' },
]

const SETTING_BY_FLAG = new Map(SETTINGS.map((s) => [s.flag, s]))

export const DEFAULTS = {
  etcdEndpoints: ['http://127.0.0.1:2379'],
  prefix: '/discovery',
  dockerHost: 'unix:///var/run/docker.sock',
  ttlMs: 10_000,
  resyncMs: 30_000,
  metricsHost: '127.0.0.1',
  checkConcurrency: 64,
  dnsDomain: 'discovery.',
  /** Half the default lease TTL: a dead agent's instances leave DNS caches within TTL + 5 s (docs/dns.md). */
  dnsTtlSeconds: 5,
  datacenter: 'dc1',
} as const

/**
 * Settings an agent applies while running (from the etcd layer, SIGHUP or `reload`) without a
 * new lease and without touching instances that did not change. The others — the node name,
 * the etcd connection and prefix, the Docker host, the lease TTL, the listen addresses — are
 * read once, at start: changing them needs a restart.
 */
export const HOT_SETTINGS: ReadonlySet<string> = new Set([
  'resync',
  'deregister-critical-after',
  'check-concurrency',
  'address-mode',
  'network',
  'advertise-address',
  'exposed-by-default',
  'tags',
  'explicit',
  'use-ip-from-label',
])

/** One etcd layer: `<prefix>/config/agents` (all agents) or `<prefix>/config/nodes/<node>` (one). */
export interface EtcdConfigLayer {
  key: string
  values: Record<string, unknown>
}

export interface ResolveInput {
  /** Flag values by flag name (`etcd-endpoints`); undefined when the flag was not given. */
  flags: Record<string, unknown>
  /** Explicit `--config` path, if given. */
  configFlag?: string
  env: NodeJS.ProcessEnv
  cwd: string
  hostname?: string
  readFile?: (file: string) => string
  fileExists?: (file: string) => boolean
  /** The etcd layers, most specific first (the node's, then all agents'). */
  etcdLayers?: EtcdConfigLayer[]
}

type Raw = { value: unknown; from: string }

/** Where a value came from, best first: a flag, DISCOVERY_* env, ecosystem env, the config file. */
type Rank = 0 | 1 | 2 | 3 | 4
type RankedRaw = Raw & { rank: Rank }

export function resolveConfig(input: ResolveInput): Config {
  const readFile = input.readFile ?? ((file: string) => readFileSync(file, 'utf8'))
  const fileExists = input.fileExists ?? existsSync
  const { file, values: fileValues } = loadConfigFile(input, readFile, fileExists)

  const pick = (flag: string): RankedRaw | undefined => {
    const def = SETTING_BY_FLAG.get(flag)!
    const fromFlag = input.flags[flag]
    if (fromFlag !== undefined && fromFlag !== '') return { value: fromFlag, from: `--${flag}`, rank: 0 }
    for (const name of def.env) {
      const value = input.env[name]
      if (value !== undefined && value !== '') return { value, from: name, rank: name.startsWith('DISCOVERY_') ? 1 : 2 }
    }
    // The etcd layer (<prefix>/config/nodes/<node> over <prefix>/config/agents), between env and file.
    for (const layer of input.etcdLayers ?? []) {
      if (Object.hasOwn(layer.values, flag) && layer.values[flag] !== undefined) return { value: layer.values[flag], from: `etcd ${layer.key}: '${flag}'`, rank: 3 }
    }
    if (file && fileValues[flag] !== undefined) return { value: fileValues[flag], from: fileSource(file, flag), rank: 4 }
    return undefined
  }
  for (const layer of input.etcdLayers ?? []) {
    for (const key of Object.keys(layer.values)) {
      const def = SETTING_BY_FLAG.get(key)
      if (!def) throw new UsageError(`etcd ${layer.key}: unknown setting '${clip(key)}'`, { hint: `settings: ${[...HOT_SETTINGS].join(', ')}` })
      if (!HOT_SETTINGS.has(key)) throw new UsageError(`etcd ${layer.key}: '${key}' cannot come from etcd (it is read once, at start)`, { hint: `settings that can: ${[...HOT_SETTINGS].join(', ')}` })
    }
  }
  const get = <T>(flag: string, fallback: T): T | CoercedValue => {
    const raw = pick(flag)
    return raw === undefined ? fallback : coerce(SETTING_BY_FLAG.get(flag)!, raw)
  }

  const cacert = get('etcd-cacert', undefined) as string | undefined
  const certRaw = pick('etcd-cert')
  const keyRaw = pick('etcd-key')
  if ((certRaw === undefined) !== (keyRaw === undefined)) {
    const given = (certRaw ?? keyRaw)!
    const missing = certRaw ? 'key' : 'certificate'
    throw new UsageError(`a client certificate needs its key: ${given.from} is set but no client ${missing} is`, {
      hint: 'pass both --etcd-cert and --etcd-key (or ETCDCTL_CERT and ETCDCTL_KEY)',
    })
  }
  const cert = certRaw && (coerce(SETTING_BY_FLAG.get('etcd-cert')!, certRaw) as string)
  const key = keyRaw && (coerce(SETTING_BY_FLAG.get('etcd-key')!, keyRaw) as string)
  const tls = cacert !== undefined || cert !== undefined
  const endpointsRaw = pick('etcd-endpoints')
  const endpoints = endpointsRaw
    ? normalizeEndpoints(coerce(SETTING_BY_FLAG.get('etcd-endpoints')!, endpointsRaw) as string[], tls, endpointsRaw.from)
    : [...DEFAULTS.etcdEndpoints]

  const { user, password } = resolveEtcdUser(pick('etcd-user'), pick('etcd-password'))

  const prefix = get('prefix', DEFAULTS.prefix) as string
  const dockerHost = get('docker-host', DEFAULTS.dockerHost) as string
  const nodeRaw = get('node', undefined) as string | undefined
  const node = assertNodeName(nodeRaw ?? sanitizeHostname(input.hostname ?? os.hostname()))

  // The docker CLI turns TLS verification on for any non-empty DOCKER_TLS_VERIFY, even "0".
  const tlsVerifyRaw = pick('docker-tls-verify')
  const tlsVerify =
    tlsVerifyRaw === undefined ? false : tlsVerifyRaw.from === 'DOCKER_TLS_VERIFY' || (coerce(SETTING_BY_FLAG.get('docker-tls-verify')!, tlsVerifyRaw) as boolean)

  const sources: Record<string, string> = {}
  for (const def of SETTINGS) {
    const raw = pick(def.flag)
    if (raw) sources[def.flag] = raw.from
  }
  return {
    etcd: { endpoints, cacert, cert, key, user, password },
    prefix,
    docker: {
      host: dockerHost,
      certPath: get('docker-cert-path', undefined) as string | undefined,
      tlsVerify,
    },
    node,
    configFile: file,
    sources,
    agent: {
      ttlMs: get('ttl', DEFAULTS.ttlMs) as number,
      resyncMs: get('resync', DEFAULTS.resyncMs) as number,
      addressMode: get('address-mode', 'published') as AddressMode,
      network: get('network', undefined) as string | undefined,
      advertiseAddress: get('advertise-address', undefined) as string | undefined,
      exposedByDefault: get('exposed-by-default', true) as boolean,
      deregisterCriticalAfterMs: get('deregister-critical-after', undefined) as number | undefined,
      metricsPort: get('metrics-port', undefined) as number | undefined,
      metricsHost: get('metrics-host', DEFAULTS.metricsHost) as string,
      checkConcurrency: get('check-concurrency', DEFAULTS.checkConcurrency) as number,
      extraTags: get('tags', []) as string[],
      explicit: get('explicit', false) as boolean,
      ipFromLabel: get('use-ip-from-label', undefined) as string | undefined,
      ...filtersOf(pick('filter')),
      ...swarmOf(get('swarm', false) as boolean, get('swarm-address-mode', undefined) as SwarmSettings['addressMode'], get('swarm-network', undefined) as string | undefined, node),
    },
    serve: {
      ...optionalListen('dns', pick('dns-addr')),
      dnsDomain: domainOf(pick('dns-domain')),
      dnsTtlSeconds: Math.round((get('dns-ttl', DEFAULTS.dnsTtlSeconds * 1000) as number) / 1000),
      dnsOnlyPassing: get('dns-only-passing', false) as boolean,
      dnsRecursors: ((get('dns-recursor', []) as string[]) ?? []).map((r) => recursorOf(r)),
      ...optionalListen('http', pick('http-addr')),
      ...(pick('http-token') ? { httpToken: String(pick('http-token')!.value) } : {}),
      datacenter: datacenterOf(pick('datacenter')),
    },
  }
}

/** The node name Swarm services' instances are registered under (by the leader, on its campaign lease). */
function filtersOf(raw: Raw | undefined): { containerFilters?: ContainerFilters } {
  if (!raw) return {}
  const containerFilters = parseContainerFilters(coerce(SETTING_BY_FLAG.get('filter')!, raw) as string[], raw.from)
  return containerFilters ? { containerFilters } : {}
}

export const SWARM_NODE = 'swarm'

function swarmOf(on: boolean, addressMode: SwarmSettings['addressMode'], network: string | undefined, node: string): { swarm?: SwarmSettings } {
  if (!on) {
    if (addressMode || network) throw new UsageError(`--swarm-${addressMode ? 'address-mode' : 'network'} needs --swarm`, { hint: 'add --swarm (or drop the Swarm settings)' })
    return {}
  }
  if (node === SWARM_NODE) throw new UsageError(`--node ${SWARM_NODE}: with --swarm that name holds the Swarm services' instances`, { hint: 'give this agent its host name or another --node' })
  return { swarm: { ...(addressMode ? { addressMode } : {}), ...(network ? { network } : {}) } }
}

/** `host:port`, `[v6]:port` or `:port` (loopback) → a listen address; anything else names its source. */
export function parseListenAddress(text: string, what: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim())
  const port = match ? Number(match[3]) : NaN
  if (!match || port > 65_535) {
    throw new UsageError(`${what} '${clip(text)}' is not host:port`, { hint: 'use e.g. 127.0.0.1:8600, [::1]:8600 or :8600' })
  }
  const host = match[1] ?? (match[2] || '127.0.0.1')
  return { host: fromSource(what, () => assertAddress(host)), port }
}

function optionalListen<K extends 'dns' | 'http'>(key: K, raw: RankedRaw | undefined): Partial<Record<K, ListenAddress>> {
  if (!raw) return {}
  return { [key]: parseListenAddress(String(raw.value), raw.from) } as Partial<Record<K, ListenAddress>>
}

function domainOf(raw: RankedRaw | undefined): string {
  if (!raw) return DEFAULTS.dnsDomain
  const text = String(raw.value).trim().toLowerCase().replace(/\.?$/, '.')
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+$/.test(text) || text.length > 200) {
    throw new UsageError(`${raw.from} '${clip(String(raw.value))}' is not a DNS domain`, { hint: "use e.g. 'discovery' or 'sd.example.internal'" })
  }
  return text
}

function datacenterOf(raw: RankedRaw | undefined): string {
  if (!raw) return DEFAULTS.datacenter
  const text = String(raw.value)
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(text)) throw new UsageError(`${raw.from} '${clip(text)}' is not a datacenter name`, { hint: "use a DNS label such as 'dc1'" })
  return text
}

/** A recursor as `ip`, `ip:port`, `v6` or `[v6]:port` (port 53 by default) → `host:port`. */
function recursorOf(text: string): string {
  const t = text.trim()
  const bareV6 = !t.startsWith('[') && (t.match(/:/g)?.length ?? 0) > 1
  const withPort = /^[\d.]+$/.test(t) ? `${t}:53` : bareV6 ? `[${t}]:53` : t
  const parsed = parseListenAddress(withPort, '--dns-recursor')
  return parsed.host.includes(':') ? `[${parsed.host}]:${parsed.port}` : `${parsed.host}:${parsed.port}`
}

/**
 * `--etcd-user name:password` (etcdctl's form) carries a password; it loses only to a password
 * from a better source, and to an explicit `--etcd-password` given at the same level.
 */
function resolveEtcdUser(userRaw: RankedRaw | undefined, passwordRaw: RankedRaw | undefined): { user?: string; password?: string } {
  let user = userRaw && String(coerce(SETTING_BY_FLAG.get('etcd-user')!, userRaw))
  let password = passwordRaw && String(coerce(SETTING_BY_FLAG.get('etcd-password')!, passwordRaw))
  if (userRaw && user?.includes(':')) {
    const colon = user.indexOf(':')
    const embedded = user.slice(colon + 1)
    user = user.slice(0, colon)
    if (!passwordRaw || userRaw.rank < passwordRaw.rank) password = embedded
  }
  if (userRaw && !user) {
    throw new UsageError(`${userRaw.from}: the etcd user name is empty`, { hint: 'use name or name:password' })
  }
  if (password !== undefined && !user) {
    throw new UsageError(`an etcd password is set (${passwordRaw!.from}) but no user`, { hint: 'set --etcd-user (or DISCOVERY_ETCD_USER) as well' })
  }
  return { user, password }
}

type CoercedValue = string | string[] | number | boolean

function fileSource(file: string, key: string): string {
  return `config file ${file}: key '${key}'`
}

function coerce(def: SettingDef, raw: Raw): CoercedValue {
  const value = coerceKind(def, raw)
  const what = raw.from
  // Settings with rules of their own are checked here too, so a bad value names its source.
  switch (def.flag) {
    case 'prefix':
      return fromSource(what, () => assertPrefix(value as string))
    case 'node':
      return fromSource(what, () => assertNodeName(value as string))
    case 'docker-host':
      return normalizeDockerHost(value as string, what)
    case 'etcd-endpoints':
      // Checked now for scheme and path; http or https is chosen once TLS settings are known.
      normalizeEndpoints(value as string[], false, what)
      return value
    case 'use-ip-from-label': {
      const name = (value as string).trim()
      if (name.length === 0 || name.length > 256 || /[\s=\u0000-\u001f\u007f]/.test(name)) {
        throw new UsageError(`${what}: '${clip(name)}' is not a label name`, { hint: 'use the label key, e.g. com.example.ip' })
      }
      return name
    }
    default:
      return value
  }
}

/** Prefixes a validation error with where the value came from (`DISCOVERY_PREFIX: …`). */
function fromSource<T>(what: string, check: () => T): T {
  try {
    return check()
  } catch (error) {
    if (!isDiscoveryError(error)) throw error
    throw new UsageError(`${what}: ${error.message}`, { hint: error.hint, cause: error })
  }
}

function coerceKind(def: SettingDef, raw: Raw): CoercedValue {
  const what = raw.from
  const { value } = raw
  if (def.secret && typeof value !== 'string' && typeof value !== 'number') {
    throw new UsageError(`${what}: the value is not a string (not shown: it is a secret)`, { hint: 'quote it in the config file' })
  }
  switch (def.kind) {
    case 'list': {
      if (Array.isArray(value) && value.some((item) => typeof item !== 'string' && typeof item !== 'number')) throw badType(what, value, 'a list of strings')
      if (!Array.isArray(value) && typeof value !== 'string') throw badType(what, value, 'a comma-separated list')
      const items = Array.isArray(value) ? value.map(String) : value.split(',')
      const list = items.map((s) => s.trim()).filter((s) => s.length > 0)
      if (list.length === 0) throw new UsageError(`${what}: the list is empty`, { hint: 'give at least one value' })
      return list
    }
    case 'tags': {
      if (Array.isArray(value) && value.some((item) => typeof item !== 'string' && typeof item !== 'number')) throw badType(what, value, 'a list of tags')
      if (!Array.isArray(value) && typeof value !== 'string') throw badType(what, value, 'a comma-separated list of tags')
      // A string is split as Registrator splits -tags (`\,` keeps a comma); list items are tags as written.
      const tags = Array.isArray(value) ? value.map((item) => String(item).trim()).filter((tag) => tag.length > 0) : splitTags(value)
      const bad = tags.find((tag) => tag.length > 256 || /[\u0000-\u001f\u007f]/.test(tag))
      if (bad !== undefined) throw new UsageError(`${what}: tag '${clip(bad)}' is too long or holds a control character`, { hint: 'use short tags such as v2 or primary' })
      return [...new Set(tags)]
    }
    case 'duration':
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a duration such as 10s')
      return withinRange(def, parseDuration(value, what, { allowZero: def.range?.allowZero }), what)
    case 'port':
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a port number')
      return assertPort(value, what)
    case 'int': {
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a positive integer')
      const text = String(value).trim()
      const n = Number(text)
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
        throw new UsageError(`${what}: '${clip(text)}' is not a positive integer`, { hint: 'use e.g. 64' })
      }
      return n
    }
    case 'bool':
      if (typeof value !== 'string' && typeof value !== 'boolean') throw badType(what, value, 'true or false')
      return parseBool(value, what)
    case 'address':
      if (typeof value !== 'string') throw badType(what, value, 'an IP address or host name')
      return assertAddress(value, what)
    case 'enum': {
      if (typeof value !== 'string') throw badType(what, value, `one of ${def.values!.join(', ')}`)
      if (!def.values!.includes(value)) {
        throw new UsageError(`${what}: '${clip(value)}' is not one of ${def.values!.join(', ')}`, { hint: `use ${def.values!.join(' or ')}` })
      }
      return value
    }
    case 'string':
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a string')
      return String(value)
  }
}

function badType(what: string, value: unknown, expected: string): UsageError {
  return new UsageError(`${what}: ${clip(JSON.stringify(value) ?? String(value))} is not ${expected}`, { hint: `set it to ${expected}` })
}

function withinRange(def: SettingDef, ms: number, what: string): number {
  const range = def.range
  if (!range || (ms >= range.min && ms <= range.max)) return ms
  const show = (n: number): string => (n >= 3_600_000 ? `${n / 3_600_000}h` : n >= 1_000 ? `${n / 1_000}s` : `${n}ms`)
  throw new UsageError(`${what}: ${show(ms)} is out of range`, { hint: `use ${show(range.min)} to ${show(range.max)}` })
}

/**
 * A comma-separated tag list as Registrator splits SERVICE_TAGS and -tags: a comma after a
 * backslash (`\,`) stays in the tag. Tags are trimmed and empty ones dropped; order is kept.
 */
export function splitTags(text: string): string[] {
  const tags: string[] = []
  let current = ''
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    if (char === '\\' && text[i + 1] === ',') {
      current += ','
      i += 1
    } else if (char === ',') {
      tags.push(current)
      current = ''
    } else {
      current += char
    }
  }
  tags.push(current)
  return tags.map((tag) => tag.trim()).filter((tag) => tag.length > 0)
}

export function parseBool(value: unknown, what: string): boolean {
  if (typeof value === 'boolean') return value
  const text = String(value).trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(text)) return true
  if (['0', 'false', 'no', 'off'].includes(text)) return false
  throw new UsageError(`${what}: '${clip(String(value))}' is not true or false`, { hint: 'use true or false' })
}

/**
 * etcdctl's `host:port` → `http://host:port` (https when TLS is configured); URLs are checked
 * for scheme, host and port, and the port defaults to 2379. `from` names where the value came
 * from, for the error.
 */
export function normalizeEndpoints(endpoints: string[], tls: boolean, from = '--etcd-endpoints'): string[] {
  return endpoints.map((endpoint) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${tls ? 'https' : 'http'}://${endpoint}`
    let url: URL
    try {
      url = new URL(withScheme)
    } catch {
      throw new UsageError(`${from}: '${clip(endpoint)}' is not an endpoint`, { hint: 'use host:port or http(s)://host:port' })
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`${from}: '${clip(endpoint)}' has scheme ${url.protocol} (etcd speaks http or https)`, { hint: 'use http://host:port or https://host:port' })
    }
    if (!url.hostname) throw new UsageError(`${from}: '${clip(endpoint)}' has no host`, { hint: 'use host:port' })
    if (url.username || url.password) {
      throw new UsageError(`${from}: '${clip(endpoint.replace(/\/\/[^@/]*@/, '//…@'))}' holds credentials`, { hint: 'pass them with --etcd-user and --etcd-password' })
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      throw new UsageError(`${from}: '${clip(endpoint)}' has a path`, { hint: 'use only scheme://host:port' })
    }
    // URL drops a port that is the scheme's default (http://h:80 → port ''), so read it from the text.
    const authority = withScheme.replace(/^[^:]+:\/\//, '').split(/[/?#]/)[0]
    const port = url.port || /:(\d+)$/.exec(authority)?.[1] || '2379'
    if (Number(port) === 0) throw new UsageError(`${from}: '${clip(endpoint)}' has port 0`, { hint: 'use the client port, e.g. 2379' })
    return `${url.protocol}//${url.hostname}:${Number(port)}`
  })
}

/**
 * Accepts `unix:///path`, a bare socket path, `tcp://host[:port]`, `http(s)://host[:port]`,
 * as the docker CLI does; a missing port is left to the client (2375, or 2376 with TLS).
 */
export function normalizeDockerHost(host: string, from = 'docker host'): string {
  const text = host.trim()
  if (text.startsWith('/')) return `unix://${text}`
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(text)
  if (!match) {
    throw new UsageError(`${from}: '${clip(host)}' is not unix:///path or tcp://host:port`, { hint: 'use e.g. unix:///var/run/docker.sock' })
  }
  const scheme = match[1].toLowerCase()
  if (scheme === 'unix') {
    if (!match[2].startsWith('/') || match[2].length < 2) {
      throw new UsageError(`${from}: '${clip(host)}' needs an absolute socket path`, { hint: 'use e.g. unix:///var/run/docker.sock' })
    }
    return `unix://${match[2]}`
  }
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') {
    throw new UsageError(`${from}: '${clip(host)}' has scheme ${scheme}:// (use unix:// or tcp://)`, { hint: 'use e.g. unix:///var/run/docker.sock or tcp://10.0.0.2:2376' })
  }
  // A non-special scheme keeps the port as written (URL drops :80 for http://).
  let url: URL | undefined
  try {
    url = new URL(`tcp://${match[2]}`)
  } catch {
    url = undefined
  }
  if (!url || !url.hostname || url.username || url.password || url.port === '0') {
    throw new UsageError(`${from}: '${clip(host)}' needs host:port`, { hint: 'use e.g. tcp://10.0.0.2:2376' })
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) {
    throw new UsageError(`${from}: '${clip(host)}' has a path`, { hint: 'use only tcp://host:port' })
  }
  return `${scheme}://${url.host.toLowerCase()}`
}

function sanitizeHostname(hostname: string): string {
  const cleaned = hostname.replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 200)
  return cleaned.length > 0 ? cleaned : 'node'
}

export function defaultConfigPaths(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const xdg = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config')
  return [path.join(cwd, 'discovery-agent.yaml'), path.join(xdg, 'discovery-agent', 'config.yaml')]
}

function loadConfigFile(
  input: ResolveInput,
  readFile: (file: string) => string,
  fileExists: (file: string) => boolean,
): { file?: string; values: Record<string, unknown> } {
  const explicit = input.configFlag ? { path: input.configFlag, from: '--config' } : input.env.DISCOVERY_CONFIG ? { path: input.env.DISCOVERY_CONFIG, from: 'DISCOVERY_CONFIG' } : undefined
  let file: string | undefined
  if (explicit) {
    file = path.resolve(input.cwd, explicit.path)
    if (!fileExists(file)) throw new UsageError(`${explicit.from}: config file ${file} does not exist`, { hint: `fix ${explicit.from} or create the file` })
  } else {
    file = defaultConfigPaths(input.env, input.cwd).find((candidate) => fileExists(candidate))
  }
  if (!file) return { values: {} }
  let text: string
  try {
    text = readFile(file)
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    throw new UsageError(`config file ${file} cannot be read (${reason})`, { hint: 'check the path and its permissions' })
  }
  // The YAML parser loads only when there is a file to read: most runs have none (cold start).
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml')
  const { isMap, isScalar, isSeq } = yaml
  const doc = yaml.parseDocument(text)
  if (doc.errors.length > 0) {
    // The first line holds the reason and `at line L, column C`; the rest is a source excerpt.
    const reason = doc.errors[0].message
      .split('\n')[0]
      .replace(/:$/, '')
      .replace(/^Source contains multiple documents; please use YAML\.parseAllDocuments\(\)/, 'it holds several documents (--- separators; keep one)')
    throw new UsageError(`config file ${file} is not valid YAML: ${reason}`, { hint: 'fix the YAML syntax' })
  }
  const root = doc.contents
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return { file, values: {} }
  if (!isMap(root)) {
    throw new UsageError(`config file ${file} must be a mapping of settings, not ${isSeq(root) ? 'a list' : 'a single value'}`, {
      hint: 'write one setting per line, e.g. "etcd-endpoints: [127.0.0.1:2379]"',
    })
  }
  const values: Record<string, unknown> = {}
  for (const pair of root.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : pair.key)
    const def = SETTING_BY_FLAG.get(key)
    if (!def) {
      const suggestion = suggestKey(key)
      throw new UsageError(`config file ${file}: unknown key '${clip(key)}'`, {
        hint: suggestion ? `did you mean '${suggestion}'?` : `known keys: ${SETTINGS.map((s) => s.flag).join(', ')}`,
      })
    }
    const value = yamlValue(yaml, pair.value as YamlNode | null)
    if (value === undefined) continue
    // Validate now, naming the file and key, even for settings the running command does not use.
    coerce(def, { value, from: fileSource(file, key) })
    values[key] = value
  }
  return { file, values }
}

/**
 * Scalars as the text that was written, so `etcd-password: 0123` stays "0123" and is not the
 * number 123; an empty value (`key:` or `key: ~`) counts as not set. Mappings stay objects
 * and are rejected by the setting's type check.
 */
function yamlValue(yaml: typeof import('yaml'), node: YamlNode | null): unknown {
  const { isScalar, isSeq } = yaml
  if (node === null || node === undefined) return undefined
  if (isScalar(node)) {
    if (node.value === null || node.value === undefined) return undefined
    if (typeof node.value === 'string') return node.value
    return typeof node.source === 'string' ? node.source : String(node.value)
  }
  if (isSeq(node)) return node.items.map((item) => yamlValue(yaml, item as YamlNode | null) ?? '')
  return node.toJSON()
}

/** `etcd_endpoints`, `etcdEndpoints`, `ETCD-ENDPOINTS` → `etcd-endpoints`, when that is a key. */
function suggestKey(key: string): string | undefined {
  const kebab = key
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase()
  return SETTING_BY_FLAG.has(kebab) ? kebab : undefined
}
