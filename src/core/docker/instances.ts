import { bodyPatternProblem } from '../health/body-pattern.js'
import { isIP } from 'node:net'
import { formatDuration, parseDuration } from '../duration.js'
import { splitTags } from '../config.js'
import { CHECK_DEFAULTS, CHECK_LIMITS, withinCheckLimit, type CheckSpec, type DesiredInstance } from '../model.js'
import { clip, instanceIdProblem, serviceNameProblem } from '../validate.js'
import { comparePorts, formatPort, parsePortKey, type ContainerPort, type ContainerSnapshot, type HostBinding } from './snapshot.js'
import { isSwarmTaskContainer } from './swarm.js'

/**
 * The pure Docker → instances builder: one container snapshot in, the instances it
 * should be registered as out. Malformed labels become `problems`, never exceptions, so
 * one bad container can't stop the agent (README "What gets registered").
 */
export interface BuildOptions {
  /** The agent's node name, used in ids: `<node>:<container-name>:<container-port>` (+ ':udp'). */
  node: string
  addressMode: 'published' | 'container'
  /** Container mode: the network whose IP is registered (default: the first, by name, with an IP). */
  network?: string
  /** Used when a binding's HostIp is unspecific (0.0.0.0, ::, ''). */
  advertiseAddress?: string
  /** The host's primary IPv4, the last fallback. */
  hostAddress: string
  /** false: only containers labelled `discovery.enable=true` are registered. */
  exposedByDefault: boolean
  /** Registrator `-tags`: added to every instance's tags, after the container's own. Default none. */
  extraTags?: readonly string[]
  /**
   * Registrator `-explicit`: only ports with an explicit service name (SERVICE_NAME,
   * SERVICE_<port>_NAME, discovery.service, discovery.<port>.service) or a container with
   * `discovery.enable=true` are registered. Default false.
   */
  explicit?: boolean
  /** Registrator `-useIpFromLabel`: the label whose value (an IP, a `/prefix` suffix allowed) is the registered address. */
  ipFromLabel?: string
  /** With `--swarm`: a Swarm task's container is the Swarm source's to register (by the leader), not this host's. */
  skipSwarmTasks?: boolean
}

export interface LabelProblem {
  container: string
  /** The label key; Registrator env vars read as `SERVICE_NAME (env)`; `image` for the image reference. */
  label: string
  /** Clipped: a 100 KiB label must not flood logs or the TUI. */
  value: string
  reason: string
}

export interface BuildResult {
  instances: DesiredInstance[]
  problems: LabelProblem[]
  /** Set when no instance was built: why (opted out, not running, paused, no published ports…). */
  skipped?: string
}

export const LABEL_PREFIX = 'discovery.'
const META_PREFIX = 'discovery.meta.'
const META_KEY_RE = /^[A-Za-z0-9_.-]{1,128}$/
const MAX_VALUE = 4096
const MAX_TAG = 256
const MAX_PATH = 2048
const MAX_NAME = 63

const CHECK_KEYS = ['http', 'tcp', 'exec', 'interval', 'timeout', 'failures', 'successes', 'initial-delay', 'expect-status', 'expect-body']
const KNOWN_LABELS = new Set([
  'discovery.enable',
  'discovery.service',
  'discovery.tags',
  'discovery.port',
  ...CHECK_KEYS.map((key) => `discovery.check.${key}`),
])
const PER_PORT_LABEL_RE = /^discovery\.\d{1,5}\.(service|tags)$/

/**
 * Registrator's keys with a meaning of their own (the rest of SERVICE_* become meta): the
 * fields of its service object and the check attributes its Consul backend reads.
 */
const REGISTRATOR_CHECK_KEYS = [
  'check_http',
  'check_https',
  'check_tcp',
  'check_cmd',
  'check_script',
  'check_ttl',
  'check_interval',
  'check_timeout',
  'check_initial_status',
  'check_deregister_after',
] as const
const REGISTRATOR_KEYS: ReadonlySet<string> = new Set(['name', 'tags', 'id', 'ignore', ...REGISTRATOR_CHECK_KEYS])
const REGISTRATOR_PREFIX = 'SERVICE_'

const TRUE_WORDS = ['true', '1', 'yes', 'on']
const FALSE_WORDS = ['false', '0', 'no', 'off']

/** A value read from a label or an env var, remembered with its origin for problem reports. */
interface Setting {
  key: string
  value: string
  origin: 'label' | 'env'
}

/**
 * SERVICE_* as Registrator reads them (bridge/util.go serviceMetaData): the key after
 * `SERVICE_` lower-cased is the attribute (`SERVICE_REGION` → `region`); `SERVICE_<port>_<KEY>`
 * is `<key>` for that container port only and wins over `SERVICE_<KEY>`; an env var wins over
 * a label of the same name. Blank values of the keys in REGISTRATOR_KEYS count as unset.
 */
interface RegistratorKeys {
  global: ReadonlyMap<string, Setting>
  /** By container port as written in the key (`80`), then attribute. */
  byPort: ReadonlyMap<string, ReadonlyMap<string, Setting>>
}

/** Where one instance is reached: address and port as registered. */
interface Endpoint extends ContainerPort {
  address: string
  port: number
}

type Addressing =
  | { kind: 'published'; endpoints: Endpoint[] }
  /** Host networking and container mode: one address for every port, the container port is the port. */
  | { kind: 'host' | 'container'; address: string; endpoints: Endpoint[] }

type GlobalName = { kind: 'explicit'; name: string; setting: Setting } | { kind: 'image'; base: string } | { kind: 'invalid' }

interface CheckTiming {
  interval: number
  timeout: number
  failuresBeforeCritical: number
  successesBeforePassing: number
  initialDelay: number
}

type CheckPlan =
  | { kind: 'http'; path: string; scheme: 'http' | 'https'; expectStatus?: string; expectBody?: string }
  | { kind: 'tcp' }
  /** `interpolate`: SERVICE_CHECK_SCRIPT's $SERVICE_IP and $SERVICE_PORT become the registered address and port. */
  | { kind: 'exec'; command: string; interpolate?: boolean }
  | { kind: 'docker' }

interface Check {
  plan?: CheckPlan
  timing: CheckTiming
}

/** Collects problems, one per label: the same bad label met for every port is still one mistake. */
class ProblemList {
  readonly items: LabelProblem[] = []
  private readonly seen = new Set<string>()

  constructor(private readonly container: string) {}

  add(setting: Setting, reason: string): void {
    this.addRaw(setting.origin === 'env' ? `${setting.key} (env)` : setting.key, setting.value, reason)
  }

  addRaw(label: string, value: string, reason: string): void {
    if (this.seen.has(label)) return
    this.seen.add(label)
    this.items.push({ container: this.container, label: clip(label, 120), value: clip(value), reason })
  }
}

export function containerToInstances(snapshot: ContainerSnapshot, options: BuildOptions): BuildResult {
  const notRoutable = stateSkipReason(snapshot)
  // A container that isn't running is not looked at further, so its labels aren't reported yet.
  if (notRoutable) return { instances: [], problems: [], skipped: notRoutable }

  const problems = new ProblemList(snapshot.name)
  const done = (skipped: string): BuildResult => ({ instances: [], problems: problems.items, skipped })
  const keys = readRegistratorKeys(snapshot)
  if (options.skipSwarmTasks && isSwarmTaskContainer(snapshot.labels)) return done('a Swarm task: registered from its service by the leader (--swarm)')

  const optedOut = optOutReason(snapshot, keys, options.exposedByDefault, problems)
  if (optedOut) return done(optedOut)
  reportUnknownLabels(snapshot, problems)

  const addressing = resolveAddressing(snapshot, options)
  if ('skipped' in addressing) return done(addressing.skipped)
  // Sorted here, not trusted from the snapshot: callers may build snapshots by hand.
  const selected = [...selectPorts(snapshot, addressing, problems)].sort(comparePorts)
  if (selected.length === 0) return done(noPortsReason(addressing.kind))

  // Like Registrator, the `-<port>` suffix depends on the ports found before per-port ignores
  // and -explicit, so ignoring one port doesn't rename the others.
  const group = selected.length > 1
  const notIgnored = selected.filter((endpoint) => !portIgnored(keys, endpoint.containerPort))
  if (notIgnored.length === 0) return done('every port is ignored (SERVICE_<port>_IGNORE)')
  const kept = options.explicit && !enabledByLabel(snapshot) ? notIgnored.filter((endpoint) => hasExplicitName(snapshot, keys, endpoint.containerPort)) : notIgnored
  if (kept.length === 0) return done('no explicit service name (explicit mode: set SERVICE_NAME, SERVICE_<port>_NAME or discovery.service)')

  const globalId = resolveGlobalId(keys, kept.filter((endpoint) => !keys.byPort.get(String(endpoint.containerPort))?.has('id')).length, problems)
  const globalName = resolveGlobalName(snapshot, keys, problems)
  const labelMeta = resolveLabelMeta(snapshot, problems)
  const labelAddress = addressFromLabel(snapshot, options.ipFromLabel, problems)
  const extraTags = options.extraTags ?? []
  // Docker's userland proxy accepts a connection on a published port even when nothing listens
  // behind it, so a TCP check of a published port connects to the container's own address.
  const direct = addressing.kind === 'published' ? containerAddress(snapshot, options.network) : undefined
  const tcpProbeAddress = direct && 'address' in direct ? direct.address : undefined

  const instances: DesiredInstance[] = []
  const usedIds = new Set<string>()
  for (const found of kept) {
    const endpoint = labelAddress ? { ...found, address: labelAddress } : found
    const port = endpoint.containerPort
    const service = resolveServiceName(snapshot, keys, endpoint, globalName, group, problems)
    const id = service === undefined ? undefined : resolveId(keys, endpoint, globalId, usedIds, options.node, snapshot.name, problems)
    // Everything else is still read, so every problem of the container is reported at once.
    const ownTags = resolveTags(first(label(snapshot, `discovery.${port}.tags`), keys.byPort.get(String(port))?.get('tags')), problems) ??
      resolveTags(first(label(snapshot, 'discovery.tags'), keys.global.get('tags')), problems) ??
      []
    // Registrator appends its -tags, then `udp` for a UDP port.
    const tags = [...new Set([...ownTags, ...extraTags, ...(endpoint.protocol === 'udp' ? ['udp'] : [])])]
    const check = resolveCheck(snapshot, keys, port, problems)
    const spec = checkFor(check, snapshot, endpoint, tcpProbeAddress)
    const meta = { ...resolveAttributes(keys, port, problems), ...labelMeta }
    if (service === undefined || id === undefined) continue
    usedIds.add(id)
    instances.push({
      id,
      service,
      address: endpoint.address,
      port: endpoint.port,
      tags,
      meta,
      container: { id: snapshot.id, name: snapshot.name, image: snapshot.image, port, protocol: endpoint.protocol },
      ...(spec ? { check: spec } : {}),
    })
  }
  if (instances.length === 0) return done('no port could be registered because of the label problems reported')
  return { instances, problems: problems.items }
}

export function defaultInstanceId(node: string, containerName: string, port: ContainerPort): string {
  const suffix = port.protocol === 'tcp' ? '' : `:${port.protocol}`
  return `${node}:${containerName}:${port.containerPort}${suffix}`
}

/**
 * Registrator's default name: the image's base name without registry, namespace, tag or
 * digest (`registry:5000/team/web:1.2` → `web`), made into a DNS label because image
 * names may hold `_`, dots or upper case. Undefined when nothing usable is left.
 */
export function serviceNameFromImage(image: string, maxLength = MAX_NAME): string | undefined {
  const withoutDigest = image.split('@')[0]
  const base = withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1).split(':')[0]
  const name = base
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxLength)
    .replace(/-+$/, '')
  return name.length > 0 ? name : undefined
}

function stateSkipReason(snapshot: ContainerSnapshot): string | undefined {
  const { state } = snapshot
  // Paused and restarting containers report Running=true but can't serve traffic.
  if (state.paused) return 'paused'
  if (state.restarting) return 'restarting'
  if (!state.running) return `not running (${state.status || 'unknown state'})`
  return undefined
}

function optOutReason(snapshot: ContainerSnapshot, keys: RegistratorKeys, exposedByDefault: boolean, problems: ProblemList): string | undefined {
  const enable = label(snapshot, 'discovery.enable')
  const enabled = enable ? parseBool(enable.value) : undefined
  if (enable && enabled === undefined) {
    problems.add(enable, `is not true or false; treated as unset (exposed by default: ${exposedByDefault})`)
  }
  if (enabled === false) return 'opted out (discovery.enable=false)'
  if (enabled === true) return undefined
  const ignore = keys.global.get('ignore')
  // Registrator ignores on any non-empty value; an explicit false word is read as "don't ignore".
  if (ignore && parseBool(ignore.value) !== false) return `opted out (${ignore.key}=${clip(ignore.value, 20)})`
  if (!exposedByDefault) return 'not enabled (exposed-by-default is off and discovery.enable is not true)'
  return undefined
}

/** Typos in our own namespace would otherwise be silently ignored, e.g. `discovery.servcie`. */
function reportUnknownLabels(snapshot: ContainerSnapshot, problems: ProblemList): void {
  for (const key of Object.keys(snapshot.labels).sort()) {
    if (!key.startsWith(LABEL_PREFIX) || key.startsWith(META_PREFIX)) continue
    if (KNOWN_LABELS.has(key) || PER_PORT_LABEL_RE.test(key)) continue
    problems.addRaw(key, snapshot.labels[key], 'is not a discovery label; ignored')
  }
}

function resolveAddressing(snapshot: ContainerSnapshot, options: BuildOptions): Addressing | { skipped: string } {
  const fallback = options.advertiseAddress || options.hostAddress
  if (snapshot.networkMode === 'host') {
    // The container shares the host's stack: its ports are host ports on the host's address.
    if (!fallback) return { skipped: 'host networking, but neither an advertise address nor a host address is known' }
    return { kind: 'host', address: fallback, endpoints: portsAt(fallback, containerPorts(snapshot)) }
  }
  if (options.addressMode === 'container') {
    const ip = containerAddress(snapshot, options.network)
    if ('skipped' in ip) return ip
    return { kind: 'container', address: ip.address, endpoints: portsAt(ip.address, containerPorts(snapshot)) }
  }
  const endpoints: Endpoint[] = []
  for (const published of snapshot.ports) {
    const binding = preferredBinding(published.bindings)
    if (!binding) continue
    const address = isUnspecific(binding.hostIp) ? fallback : binding.hostIp
    if (!address) return { skipped: `port ${formatPort(published)} is published on every address, but neither an advertise address nor a host address is known` }
    endpoints.push({ containerPort: published.containerPort, protocol: published.protocol, address, port: binding.hostPort })
  }
  return { kind: 'published', endpoints }
}

/** Exposed ports plus bound ones (a `-p` port needn't be in the image's EXPOSE), sorted. */
function containerPorts(snapshot: ContainerSnapshot): ContainerPort[] {
  const byKey = new Map<string, ContainerPort>()
  for (const port of [...snapshot.exposedPorts, ...snapshot.ports]) {
    byKey.set(formatPort(port), { containerPort: port.containerPort, protocol: port.protocol })
  }
  return [...byKey.values()].sort(comparePorts)
}

function portsAt(address: string, ports: ContainerPort[]): Endpoint[] {
  return ports.map((port) => ({ ...port, address, port: port.containerPort }))
}

function containerAddress(snapshot: ContainerSnapshot, network: string | undefined): { address: string } | { skipped: string } {
  const ipOf = (name: string): string | undefined => {
    const settings = Object.hasOwn(snapshot.networks, name) ? snapshot.networks[name] : undefined
    return settings?.ipAddress || settings?.globalIPv6Address || undefined
  }
  if (network) {
    // An IP on another network would be unreachable for whoever chose --network, so don't guess.
    if (!Object.hasOwn(snapshot.networks, network)) return { skipped: `not attached to network '${network}'` }
    const address = ipOf(network)
    return address ? { address } : { skipped: `no IP address on network '${network}'` }
  }
  for (const name of Object.keys(snapshot.networks).sort()) {
    const address = ipOf(name)
    if (address) return { address }
  }
  return { skipped: `no container IP address (network mode '${snapshot.networkMode}')` }
}

/** Docker binds one port on 0.0.0.0 and :: alike; register it once, IPv4 first. */
function preferredBinding(bindings: HostBinding[]): HostBinding | undefined {
  return bindings.find((binding) => isIP(binding.hostIp) !== 6) ?? bindings[0]
}

function isUnspecific(hostIp: string): boolean {
  return hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::'
}

function noPortsReason(kind: Addressing['kind']): string {
  if (kind === 'published') return 'no published ports'
  if (kind === 'host') return 'no exposed ports (host networking)'
  return 'no exposed ports'
}

/**
 * `discovery.port` narrows several ports to one (`8080`, or `53/udp`). In host and
 * container mode the address is known for any port, so it may also name a port the
 * image doesn't EXPOSE (as Traefik allows); a published port must actually be published.
 */
function selectPorts(snapshot: ContainerSnapshot, addressing: Addressing, problems: ProblemList): Endpoint[] {
  const all = addressing.endpoints
  const setting = label(snapshot, 'discovery.port')
  if (!setting) return all
  const wanted = parsePortKey(setting.value)
  if (!wanted) {
    problems.add(setting, 'is not a port number (use e.g. 8080 or 53/udp); using every port')
    return all
  }
  const protocolGiven = setting.value.includes('/')
  const matches = all.filter((endpoint) => endpoint.containerPort === wanted.containerPort && (!protocolGiven || endpoint.protocol === wanted.protocol))
  if (matches.length > 0) return matches
  if (addressing.kind !== 'published') return [{ ...wanted, address: addressing.address, port: wanted.containerPort }]
  const published = all.map(formatPort).join(', ') || 'none'
  problems.add(setting, `is not a published port of this container (published: ${published}); using every port`)
  return all
}

function portIgnored(keys: RegistratorKeys, containerPort: number): boolean {
  const ignore = keys.byPort.get(String(containerPort))?.get('ignore')
  return ignore !== undefined && parseBool(ignore.value) !== false
}

function enabledByLabel(snapshot: ContainerSnapshot): boolean {
  const enable = label(snapshot, 'discovery.enable')
  return enable !== undefined && parseBool(enable.value) === true
}

/** Registrator's -explicit: a name given for this port or for the whole container. */
function hasExplicitName(snapshot: ContainerSnapshot, keys: RegistratorKeys, containerPort: number): boolean {
  const settings = [label(snapshot, 'discovery.service'), label(snapshot, `discovery.${containerPort}.service`), portKey(keys, containerPort, 'name')]
  return settings.some((setting) => setting !== undefined)
}

/**
 * Registrator's -useIpFromLabel: the label's value, without a `/<prefix length>` suffix, is the
 * address of every port. A container without the label keeps the usual address.
 */
function addressFromLabel(snapshot: ContainerSnapshot, labelName: string | undefined, problems: ProblemList): string | undefined {
  if (!labelName) return undefined
  const setting = label(snapshot, labelName)
  if (!setting) return undefined
  const value = setting.value.trim()
  const slash = value.lastIndexOf('/')
  const address = slash >= 0 ? value.slice(0, slash) : value
  if (isIP(address) === 0) {
    problems.add(setting, 'is not an IP address (use e.g. 10.0.0.5 or 10.0.0.5/24); using the usual address')
    return undefined
  }
  return address
}

/**
 * SERVICE_ID: every port that has no SERVICE_<port>_ID takes it, so it may serve one such
 * port only; one id for several instances would make them overwrite each other.
 */
function resolveGlobalId(keys: RegistratorKeys, portsWithoutOwnId: number, problems: ProblemList): string | undefined {
  const setting = keys.global.get('id')
  if (!setting || portsWithoutOwnId === 0) return undefined
  if (portsWithoutOwnId > 1) {
    problems.add(setting, `applies only to a container with one port, this one has ${portsWithoutOwnId} without a SERVICE_<port>_ID; using the default ids`)
    return undefined
  }
  return validId(setting, problems)
}

function resolveId(keys: RegistratorKeys, endpoint: Endpoint, globalId: string | undefined, used: ReadonlySet<string>, node: string, containerName: string, problems: ProblemList): string | undefined {
  const own = keys.byPort.get(String(endpoint.containerPort))?.get('id')
  const chosen = own ? validId(own, problems) : globalId
  if (chosen !== undefined && !used.has(chosen)) return chosen
  if (chosen !== undefined) {
    // e.g. SERVICE_53_ID on a container with 53/tcp and 53/udp: the second port can't share the id.
    problems.add(own ?? keys.global.get('id')!, `gives port ${formatPort(endpoint)} the id of another port of this container; using the default id`)
  }
  const id = defaultInstanceId(node, containerName, endpoint)
  const idProblem = instanceIdProblem(id)
  if (idProblem) {
    problems.addRaw('instance id', id, `${idProblem}; port ${formatPort(endpoint)} is not registered (check --node)`)
    return undefined
  }
  return id
}

function validId(setting: Setting, problems: ProblemList): string | undefined {
  const id = setting.value.trim()
  const problem = instanceIdProblem(id)
  if (problem) {
    problems.add(setting, `${problem}; using the default id`)
    return undefined
  }
  return id
}

function resolveGlobalName(snapshot: ContainerSnapshot, keys: RegistratorKeys, problems: ProblemList): GlobalName {
  const setting = first(label(snapshot, 'discovery.service'), keys.global.get('name'))
  if (setting) {
    const name = setting.value.trim()
    const problem = serviceNameProblem(name)
    // No fallback to the image name: registering under a name the user didn't choose is worse than not registering.
    if (problem) {
      problems.add(setting, `${problem}; the container's ports without a per-port name are not registered`)
      return { kind: 'invalid' }
    }
    return { kind: 'explicit', name, setting }
  }
  const base = serviceNameFromImage(snapshot.image)
  if (base === undefined) {
    problems.addRaw('image', snapshot.image, 'gives no usable service name; set discovery.service')
    return { kind: 'invalid' }
  }
  return { kind: 'image', base }
}

function resolveServiceName(snapshot: ContainerSnapshot, keys: RegistratorKeys, endpoint: Endpoint, global: GlobalName, group: boolean, problems: ProblemList): string | undefined {
  const port = endpoint.containerPort
  const perPort = first(label(snapshot, `discovery.${port}.service`), keys.byPort.get(String(port))?.get('name'))
  if (perPort) {
    const name = perPort.value.trim()
    const problem = serviceNameProblem(name)
    if (problem) {
      problems.add(perPort, `${problem}; port ${port} is not registered`)
      return undefined
    }
    return name
  }
  const suffix = group ? `-${port}` : ''
  if (global.kind === 'invalid') return undefined
  if (global.kind === 'image') {
    // Shorten the image name rather than fail: the user never chose it.
    const base = serviceNameFromImage(global.base, MAX_NAME - suffix.length) ?? global.base
    return `${base}${suffix}`
  }
  const name = `${global.name}${suffix}`
  const problem = serviceNameProblem(name)
  if (problem) {
    problems.add(global.setting, `${problem} once '${suffix}' is appended for a container with several ports; set discovery.${port}.service`)
    return undefined
  }
  return name
}

/**
 * A comma list as Registrator splits it (`\,` keeps a comma in the tag), trimmed, empties
 * dropped, deduplicated; undefined when unset or unusable.
 */
function resolveTags(setting: Setting | undefined, problems: ProblemList): string[] | undefined {
  if (!setting) return undefined
  if (setting.value.length > MAX_VALUE) {
    problems.add(setting, `is longer than ${MAX_VALUE} characters; ignored`)
    return undefined
  }
  const tags: string[] = []
  let dropped = 0
  for (const tag of splitTags(setting.value)) {
    if (tag.length > MAX_TAG || /[\u0000-\u001f\u007f]/.test(tag)) {
      dropped += 1
      continue
    }
    if (!tags.includes(tag)) tags.push(tag)
  }
  if (dropped > 0) problems.add(setting, `${dropped} tag(s) longer than ${MAX_TAG} characters or holding control characters were dropped`)
  return tags
}

/** `discovery.meta.<key>` labels: the same for every port, and they win over Registrator attributes. */
function resolveLabelMeta(snapshot: ContainerSnapshot, problems: ProblemList): Record<string, string> {
  const entries: [string, string][] = []
  for (const key of Object.keys(snapshot.labels).sort()) {
    if (!key.startsWith(META_PREFIX)) continue
    const setting: Setting = { key, value: snapshot.labels[key], origin: 'label' }
    const metaKey = metaEntry(setting, key.slice(META_PREFIX.length), problems)
    if (metaKey !== undefined) entries.push([metaKey, setting.value])
  }
  // fromEntries defines own properties, so a key like `__proto__` is kept as data.
  return Object.fromEntries(entries)
}

/**
 * Registrator's Attrs of one port: every SERVICE_<KEY> and SERVICE_<port>_<KEY> that is not
 * one of its own keys, named as Registrator names it (the lower-cased key), per-port first.
 */
function resolveAttributes(keys: RegistratorKeys, containerPort: number, problems: ProblemList): Record<string, string> {
  const merged = new Map(keys.global)
  for (const [name, setting] of keys.byPort.get(String(containerPort)) ?? []) merged.set(name, setting)
  const entries: [string, string][] = []
  for (const [name, setting] of [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (REGISTRATOR_KEYS.has(name)) continue
    const metaKey = metaEntry(setting, name, problems)
    if (metaKey !== undefined) entries.push([metaKey, setting.value])
  }
  return Object.fromEntries(entries)
}

function metaEntry(setting: Setting, metaKey: string, problems: ProblemList): string | undefined {
  if (!META_KEY_RE.test(metaKey)) {
    problems.add(setting, 'has a meta key that may hold only letters, digits and _ . - (1 to 128 characters); dropped')
    return undefined
  }
  if (setting.value.length > MAX_VALUE) {
    problems.add(setting, `is longer than ${MAX_VALUE} characters; dropped`)
    return undefined
  }
  return metaKey
}

/**
 * The check of one port. `discovery.check.*` labels apply to every port; SERVICE_CHECK_* and
 * SERVICE_<port>_CHECK_* are read per port as Registrator's Consul backend reads them.
 */
function resolveCheck(snapshot: ContainerSnapshot, keys: RegistratorKeys, containerPort: number, problems: ProblemList): Check {
  const attr = (name: string): Setting | undefined => portKey(keys, containerPort, name)
  const timing: CheckTiming = {
    interval: durationOf(first(label(snapshot, 'discovery.check.interval'), attr('check_interval')), 'interval', problems),
    timeout: durationOf(first(label(snapshot, 'discovery.check.timeout'), attr('check_timeout')), 'timeout', problems),
    failuresBeforeCritical: countOf(label(snapshot, 'discovery.check.failures'), 'failuresBeforeCritical', problems),
    successesBeforePassing: countOf(label(snapshot, 'discovery.check.successes'), 'successesBeforePassing', problems),
    initialDelay: durationOf(label(snapshot, 'discovery.check.initial-delay'), 'initialDelay', problems),
  }
  reportUnmappedCheckKeys(attr, problems)
  const plan = resolveCheckPlan(snapshot, attr, problems)
  if (plan) return { plan, timing }
  return snapshot.hasHealthcheck ? { plan: { kind: 'docker' }, timing } : { timing }
}

/** Consul check settings with no counterpart here: said once each, never silently dropped. */
function reportUnmappedCheckKeys(attr: (name: string) => Setting | undefined, problems: ProblemList): void {
  const status = attr('check_initial_status')
  if (status) {
    problems.add(status, "has no equivalent: an instance with a check starts 'unknown' and its first result decides (one without a check is passing); ignored")
  }
  const deregister = attr('check_deregister_after')
  if (deregister) {
    problems.add(deregister, 'has no per-container equivalent: start the agent with --deregister-critical-after instead; ignored')
  }
}

/**
 * The explicit check, if any. Our labels win as a group: once any `discovery.check.<kind>`
 * label is set, SERVICE_CHECK_* kinds are not read, so `discovery.check.tcp=false` can
 * switch off a Registrator check too. An invalid one leaves the container without an
 * explicit check (a Docker HEALTHCHECK still applies).
 */
function resolveCheckPlan(snapshot: ContainerSnapshot, attr: (name: string) => Setting | undefined, problems: ProblemList): CheckPlan | undefined {
  const http = label(snapshot, 'discovery.check.http')
  const tcp = label(snapshot, 'discovery.check.tcp')
  const exec = label(snapshot, 'discovery.check.exec')
  if (http || tcp || exec) {
    const plans: [Setting, CheckPlan | undefined][] = []
    if (http) plans.push([http, httpPlan(snapshot, http, 'http', problems)])
    if (tcp) plans.push([tcp, tcpPlan(tcp, problems)])
    if (exec) plans.push([exec, execPlan(exec, problems)])
    const defined = plans.filter(([, plan]) => plan !== undefined)
    for (const [setting] of defined.slice(1)) {
      problems.add(setting, `ignored: ${defined[0][0].key} is also set and a container has one check`)
    }
    return defined[0]?.[1]
  }
  // Registrator's Consul backend takes the first of: HTTP, HTTPS, CMD, SCRIPT, TTL, TCP.
  const serviceHttp = attr('check_http')
  if (serviceHttp) return httpPlan(snapshot, serviceHttp, 'http', problems)
  const serviceHttps = attr('check_https')
  if (serviceHttps) return httpPlan(snapshot, serviceHttps, 'https', problems)
  const serviceCmd = attr('check_cmd')
  if (serviceCmd) return execPlan(serviceCmd, problems)
  const serviceScript = attr('check_script')
  if (serviceScript) {
    const plan = execPlan(serviceScript, problems)
    return plan && { ...plan, interpolate: true }
  }
  const serviceTtl = attr('check_ttl')
  if (serviceTtl) {
    // A TTL check waits for the service to report in to Consul's API: nothing here would.
    problems.add(serviceTtl, 'is a Consul TTL check (the service must heartbeat Consul), which has no equivalent here; use an HTTP, TCP or CMD check or a HEALTHCHECK')
  }
  const serviceTcp = attr('check_tcp')
  if (serviceTcp) return tcpPlan(serviceTcp, problems)
  return undefined
}

function httpPlan(snapshot: ContainerSnapshot, setting: Setting, scheme: 'http' | 'https', problems: ProblemList): CheckPlan | undefined {
  const path = setting.value.trim()
  if (path.length > MAX_PATH || !/^\/[^\s\u0000-\u001f\u007f]*$/.test(path)) {
    problems.add(setting, `is not a URL path (start with /, no spaces, at most ${MAX_PATH} characters); no ${scheme.toUpperCase()} check`)
    return undefined
  }
  const plan: CheckPlan = { kind: 'http', path, scheme }
  const status = label(snapshot, 'discovery.check.expect-status')
  if (status) {
    const value = status.value.replace(/\s+/g, '')
    if (/^[1-5]\d\d(-[1-5]\d\d)?(,[1-5]\d\d(-[1-5]\d\d)?)*$/.test(value)) plan.expectStatus = value
    else problems.add(status, 'is not a status list such as 200-399 or 200,204; using the default 200-399')
  }
  const body = label(snapshot, 'discovery.check.expect-body')
  if (body) {
    const problem = bodyPatternProblem(body.value)
    if (!problem) plan.expectBody = body.value
    else problems.add(body, `${problem}; the body is not checked`)
  }
  return plan
}

function tcpPlan(setting: Setting, problems: ProblemList): CheckPlan | undefined {
  const enabled = parseBool(setting.value)
  if (enabled === undefined) problems.add(setting, 'is not true or false; no TCP check')
  return enabled ? { kind: 'tcp' } : undefined
}

function execPlan(setting: Setting, problems: ProblemList): Extract<CheckPlan, { kind: 'exec' }> | undefined {
  const command = setting.value.trim()
  if (command.length > MAX_VALUE || command.includes('\u0000')) {
    problems.add(setting, `is longer than ${MAX_VALUE} characters or holds a NUL character; no exec check`)
    return undefined
  }
  return { kind: 'exec', command }
}

function checkFor(check: Check, snapshot: ContainerSnapshot, endpoint: Endpoint, tcpProbeAddress?: string): CheckSpec | undefined {
  const { plan, timing } = check
  const docker = (): CheckSpec | undefined => (snapshot.hasHealthcheck ? { kind: 'docker', target: snapshot.name, ...CHECK_DEFAULTS } : undefined)
  if (!plan) return undefined
  const bracketed = (address: string): string => (isIP(address) === 6 ? `[${address}]` : address)
  switch (plan.kind) {
    case 'docker':
      return docker()
    case 'exec': {
      // Registrator's Consul backend put the registered address and port into a script check.
      const command = plan.interpolate ? plan.command.replaceAll('$SERVICE_IP', endpoint.address).replaceAll('$SERVICE_PORT', String(endpoint.port)) : plan.command
      return { kind: 'exec', target: command, container: snapshot.id, ...timing }
    }
    case 'http':
    case 'tcp': {
      // An HTTP or TCP probe of a UDP port can only fail, so such ports keep what Docker knows.
      if (endpoint.protocol !== 'tcp') return docker()
      const hostPort = `${bracketed(endpoint.address)}:${endpoint.port}`
      if (plan.kind === 'tcp') {
        const target = tcpProbeAddress ? `${bracketed(tcpProbeAddress)}:${endpoint.containerPort}` : hostPort
        return { kind: 'tcp', target, ...timing }
      }
      return {
        kind: 'http',
        target: `${plan.scheme}://${hostPort}${plan.path}`,
        ...timing,
        ...(plan.expectStatus ? { expectStatus: plan.expectStatus } : {}),
        ...(plan.expectBody ? { expectBody: plan.expectBody } : {}),
      }
    }
  }
}

/** A check duration within the bounds records are read back with (CHECK_LIMITS), else the default. */
function durationOf(setting: Setting | undefined, key: 'interval' | 'timeout' | 'initialDelay', problems: ProblemList): number {
  const fallback = CHECK_DEFAULTS[key]
  if (!setting) return fallback
  const { min, max } = CHECK_LIMITS[key]
  try {
    const ms = parseDuration(setting.value, setting.key, { allowZero: min === 0 })
    if (withinCheckLimit(key, ms)) return ms
  } catch {
    // parseDuration's message quotes the whole value; the problem below clips it instead.
  }
  problems.add(setting, `is not a duration from ${formatDuration(min)} to ${formatDuration(max)} (use e.g. 250ms, 10s, 2m, 1h); using ${formatDuration(fallback)}`)
  return fallback
}

function countOf(setting: Setting | undefined, key: 'failuresBeforeCritical' | 'successesBeforePassing', problems: ProblemList): number {
  const fallback = CHECK_DEFAULTS[key]
  if (!setting) return fallback
  const text = setting.value.trim()
  if (/^\d{1,6}$/.test(text) && withinCheckLimit(key, Number(text))) return Number(text)
  problems.add(setting, `is not a whole number from ${CHECK_LIMITS[key].min} to ${CHECK_LIMITS[key].max}; using ${fallback}`)
  return fallback
}

function parseBool(value: string): boolean | undefined {
  const word = value.trim().toLowerCase()
  if (TRUE_WORDS.includes(word)) return true
  if (FALSE_WORDS.includes(word)) return false
  return undefined
}

/** A label; empty values count as unset, as Registrator reads them. */
function label(snapshot: ContainerSnapshot, key: string): Setting | undefined {
  // Own properties only: a lookup of e.g. `constructor` must not find Object.prototype's.
  if (!Object.hasOwn(snapshot.labels, key)) return undefined
  const value = snapshot.labels[key]
  return value.trim() === '' ? undefined : { key, value, origin: 'label' }
}

function readRegistratorKeys(snapshot: ContainerSnapshot): RegistratorKeys {
  const global = new Map<string, Setting>()
  const byPort = new Map<string, Map<string, Setting>>()
  // Labels first, then env vars over them; within one source the first key in sorted order
  // wins, so SERVICE_Name and SERVICE_NAME on one container resolve the same way every time.
  for (const [origin, source] of [['label', snapshot.labels], ['env', snapshot.env]] as const) {
    const seen = new Set<string>()
    for (const key of Object.keys(source).sort()) {
      if (!key.startsWith(REGISTRATOR_PREFIX)) continue
      const value = source[key]
      const rest = key.slice(REGISTRATOR_PREFIX.length).toLowerCase()
      const underscore = rest.indexOf('_')
      const head = underscore > 0 ? rest.slice(0, underscore) : ''
      const perPort = /^\d+$/.test(head)
      const name = perPort ? rest.slice(underscore + 1) : rest
      // Blank name, id, tags… count as unset; a blank attribute is still an (empty) attribute.
      if (REGISTRATOR_KEYS.has(name) && value.trim() === '') continue
      const scope = perPort ? head : ''
      if (seen.has(`${scope}/${name}`)) continue
      seen.add(`${scope}/${name}`)
      let target = global
      if (perPort) {
        target = byPort.get(head) ?? new Map<string, Setting>()
        byPort.set(head, target)
      }
      target.set(name, { key, value, origin })
    }
  }
  return { global, byPort }
}

/** A Registrator key for one port: SERVICE_<port>_<KEY> over SERVICE_<KEY>. */
function portKey(keys: RegistratorKeys, containerPort: number, name: string): Setting | undefined {
  return keys.byPort.get(String(containerPort))?.get(name) ?? keys.global.get(name)
}

function first(...settings: (Setting | undefined)[]): Setting | undefined {
  return settings.find((setting) => setting !== undefined)
}
