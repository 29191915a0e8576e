import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { parseDuration } from './duration.js'
import { UsageError } from './errors.js'
import { assertAddress, assertNodeName, assertPort, assertPrefix, clip } from './validate.js'

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
}

export interface Config {
  etcd: EtcdConnection
  prefix: string
  docker: DockerConnection
  node: string
  /** The config file that was read, if any. */
  configFile?: string
  agent: AgentSettings
}

type Kind = 'string' | 'list' | 'duration' | 'port' | 'int' | 'bool' | 'address' | 'enum'

interface SettingDef {
  /** Flag name without dashes; also the config-file key. */
  flag: string
  env: string[]
  kind: Kind
  values?: readonly string[]
}

/** Every setting that may come from a flag, the environment or the config file. */
export const SETTINGS: readonly SettingDef[] = [
  { flag: 'etcd-endpoints', env: ['DISCOVERY_ETCD_ENDPOINTS', 'ETCDCTL_ENDPOINTS'], kind: 'list' },
  { flag: 'etcd-cacert', env: ['DISCOVERY_ETCD_CACERT', 'ETCDCTL_CACERT'], kind: 'string' },
  { flag: 'etcd-cert', env: ['DISCOVERY_ETCD_CERT', 'ETCDCTL_CERT'], kind: 'string' },
  { flag: 'etcd-key', env: ['DISCOVERY_ETCD_KEY', 'ETCDCTL_KEY'], kind: 'string' },
  { flag: 'etcd-user', env: ['DISCOVERY_ETCD_USER', 'ETCDCTL_USER'], kind: 'string' },
  { flag: 'etcd-password', env: ['DISCOVERY_ETCD_PASSWORD', 'ETCDCTL_PASSWORD'], kind: 'string' },
  { flag: 'prefix', env: ['DISCOVERY_PREFIX'], kind: 'string' },
  { flag: 'docker-host', env: ['DISCOVERY_DOCKER_HOST', 'DOCKER_HOST'], kind: 'string' },
  { flag: 'docker-cert-path', env: ['DOCKER_CERT_PATH'], kind: 'string' },
  { flag: 'docker-tls-verify', env: ['DOCKER_TLS_VERIFY'], kind: 'bool' },
  { flag: 'node', env: ['DISCOVERY_NODE'], kind: 'string' },
  { flag: 'ttl', env: ['DISCOVERY_TTL'], kind: 'duration' },
  { flag: 'resync', env: ['DISCOVERY_RESYNC'], kind: 'duration' },
  { flag: 'address-mode', env: ['DISCOVERY_ADDRESS_MODE'], kind: 'enum', values: ['published', 'container'] },
  { flag: 'network', env: ['DISCOVERY_NETWORK'], kind: 'string' },
  { flag: 'advertise-address', env: ['DISCOVERY_ADVERTISE_ADDRESS'], kind: 'address' },
  { flag: 'exposed-by-default', env: ['DISCOVERY_EXPOSED_BY_DEFAULT'], kind: 'bool' },
  { flag: 'deregister-critical-after', env: ['DISCOVERY_DEREGISTER_CRITICAL_AFTER'], kind: 'duration' },
  { flag: 'metrics-port', env: ['DISCOVERY_METRICS_PORT'], kind: 'port' },
  { flag: 'metrics-host', env: ['DISCOVERY_METRICS_HOST'], kind: 'address' },
  { flag: 'check-concurrency', env: ['DISCOVERY_CHECK_CONCURRENCY'], kind: 'int' },
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
} as const

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
}

type Raw = { value: unknown; from: string }

export function resolveConfig(input: ResolveInput): Config {
  const readFile = input.readFile ?? ((file: string) => readFileSync(file, 'utf8'))
  const fileExists = input.fileExists ?? existsSync
  const { file, values: fileValues } = loadConfigFile(input, readFile, fileExists)

  const pick = (flag: string): Raw | undefined => {
    const def = SETTING_BY_FLAG.get(flag)!
    const fromFlag = input.flags[flag]
    if (fromFlag !== undefined && fromFlag !== '') return { value: fromFlag, from: `--${flag}` }
    for (const name of def.env) {
      const value = input.env[name]
      if (value !== undefined && value !== '') return { value, from: name }
    }
    if (file && fileValues[flag] !== undefined) return { value: fileValues[flag], from: `${file}: ${flag}` }
    return undefined
  }
  const get = <T>(flag: string, fallback: T): T | ReturnType<typeof coerce> => {
    const raw = pick(flag)
    return raw === undefined ? fallback : coerce(SETTING_BY_FLAG.get(flag)!, raw)
  }

  const cacert = get('etcd-cacert', undefined) as string | undefined
  const cert = get('etcd-cert', undefined) as string | undefined
  const key = get('etcd-key', undefined) as string | undefined
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError(`--etcd-cert and --etcd-key must be given together (only --etcd-${cert ? 'cert' : 'key'} is set)`, {
      hint: 'pass both the client certificate and its key',
    })
  }
  const tls = cacert !== undefined || cert !== undefined
  const endpointsRaw = pick('etcd-endpoints')
  const endpoints = endpointsRaw
    ? normalizeEndpoints(coerce(SETTING_BY_FLAG.get('etcd-endpoints')!, endpointsRaw) as string[], tls, endpointsRaw.from)
    : [...DEFAULTS.etcdEndpoints]

  let user = get('etcd-user', undefined) as string | undefined
  let password = get('etcd-password', undefined) as string | undefined
  if (user?.includes(':')) {
    const colon = user.indexOf(':')
    password ??= user.slice(colon + 1)
    user = user.slice(0, colon)
  }
  if (password !== undefined && !user) {
    throw new UsageError('an etcd password is set but no user', { hint: 'set --etcd-user (or DISCOVERY_ETCD_USER) as well' })
  }

  const prefixRaw = pick('prefix')
  const prefix = assertPrefix(prefixRaw ? String(prefixRaw.value) : DEFAULTS.prefix)

  const dockerHost = normalizeDockerHost(String(get('docker-host', DEFAULTS.dockerHost)))
  const nodeRaw = get('node', undefined) as string | undefined
  const node = assertNodeName(nodeRaw ?? sanitizeHostname(input.hostname ?? os.hostname()))

  const checkConcurrency = get('check-concurrency', DEFAULTS.checkConcurrency) as number
  return {
    etcd: { endpoints, cacert, cert, key, user, password },
    prefix,
    docker: {
      host: dockerHost,
      certPath: get('docker-cert-path', undefined) as string | undefined,
      tlsVerify: get('docker-tls-verify', false) as boolean,
    },
    node,
    configFile: file,
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
      checkConcurrency,
    },
  }
}

function coerce(def: SettingDef, raw: Raw): string | string[] | number | boolean {
  const what = raw.from
  const { value } = raw
  switch (def.kind) {
    case 'list': {
      const items = Array.isArray(value) ? value.map(String) : String(value).split(',')
      const list = items.map((s) => s.trim()).filter((s) => s.length > 0)
      if (list.length === 0) throw new UsageError(`${what}: the list is empty`, { hint: 'give at least one value' })
      return list
    }
    case 'duration':
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a duration such as 10s')
      return parseDuration(value, what)
    case 'port':
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a port number')
      return assertPort(value, what)
    case 'int': {
      const n = Number(value)
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what}: '${clip(String(value))}' is not a positive integer`, { hint: 'use e.g. 64' })
      return n
    }
    case 'bool':
      return parseBool(value, what)
    case 'address':
      return assertAddress(String(value), what)
    case 'enum': {
      const text = String(value)
      if (!def.values!.includes(text)) {
        throw new UsageError(`${what}: '${clip(text)}' is not one of ${def.values!.join(', ')}`, { hint: `use ${def.values!.join(' or ')}` })
      }
      return text
    }
    case 'string':
      if (typeof value !== 'string' && typeof value !== 'number') throw badType(what, value, 'a string')
      return String(value)
  }
}

function badType(what: string, value: unknown, expected: string): UsageError {
  return new UsageError(`${what}: ${clip(JSON.stringify(value) ?? String(value))} is not ${expected}`, { hint: `set it to ${expected}` })
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
 * for scheme, host and port. `from` names where the value came from, for the error.
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
    if ((url.pathname !== '/' && url.pathname !== '') || url.search) {
      throw new UsageError(`${from}: '${clip(endpoint)}' has a path`, { hint: 'use only scheme://host:port' })
    }
    const port = url.port || '2379'
    return `${url.protocol}//${url.hostname}:${port}`
  })
}

/** Accepts `unix:///path`, a bare socket path, `tcp://host:port`, `http(s)://host:port`. */
export function normalizeDockerHost(host: string): string {
  if (host.startsWith('/')) return `unix://${host}`
  const match = /^(unix|tcp|http|https):\/\/(.+)$/.exec(host)
  if (!match) {
    throw new UsageError(`docker host '${clip(host)}' is not unix:///path or tcp://host:port`, { hint: 'use e.g. unix:///var/run/docker.sock' })
  }
  if (match[1] !== 'unix' && !/^[^/:]+:\d+\/?$|^\[[0-9a-f:]+\]:\d+\/?$/i.test(match[2])) {
    throw new UsageError(`docker host '${clip(host)}' needs host:port`, { hint: 'use e.g. tcp://10.0.0.2:2376' })
  }
  return host
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
  const explicit = input.configFlag ?? (input.env.DISCOVERY_CONFIG || undefined)
  let file: string | undefined
  if (explicit) {
    file = path.resolve(input.cwd, explicit)
    if (!fileExists(file)) throw new UsageError(`config file ${file} does not exist`, { hint: 'fix --config / DISCOVERY_CONFIG or create the file' })
  } else {
    file = defaultConfigPaths(input.env, input.cwd).find((candidate) => fileExists(candidate))
  }
  if (!file) return { values: {} }
  let text: string
  try {
    text = readFile(file)
  } catch (error) {
    throw new UsageError(`config file ${file} cannot be read: ${(error as Error).message}`, { hint: 'check the path and its permissions' })
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (error) {
    throw new UsageError(`config file ${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`, { hint: 'fix the YAML syntax' })
  }
  if (doc === null || doc === undefined) return { file, values: {} }
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UsageError(`config file ${file} must be a mapping of settings`, { hint: 'write e.g. "etcd-endpoints: [127.0.0.1:2379]"' })
  }
  const values = doc as Record<string, unknown>
  for (const [key, value] of Object.entries(values)) {
    const def = SETTING_BY_FLAG.get(key)
    if (!def) {
      throw new UsageError(`config file ${file}: unknown key '${clip(key)}'`, { hint: `known keys: ${SETTINGS.map((s) => s.flag).join(', ')}` })
    }
    // Validate now, naming the file and key, even for settings the running command does not use.
    coerce(def, { value, from: `config file ${file}: key '${key}'` })
  }
  return { file, values }
}
