import type Dockerode from 'dockerode'

/**
 * The normalised view of one container that the instance builder needs. Built from
 * `docker inspect` JSON, whose shape varies across engine versions (fields missing,
 * `null` where an empty map is meant), so the builder never has to guess.
 */
export type PortProtocol = 'tcp' | 'udp' | 'sctp'
export type ContainerHealth = 'starting' | 'healthy' | 'unhealthy'

export interface ContainerPort {
  containerPort: number
  protocol: PortProtocol
}

export interface HostBinding {
  /** As Docker reports it: '0.0.0.0', '::' or '' mean "every address". */
  hostIp: string
  hostPort: number
}

/** A container port from NetworkSettings.Ports; `bindings` is empty when it is exposed but not published. */
export interface PublishedPort extends ContainerPort {
  bindings: HostBinding[]
}

export interface ContainerNetwork {
  ipAddress?: string
  globalIPv6Address?: string
}

export interface ContainerState {
  running: boolean
  paused: boolean
  restarting: boolean
  /** Docker's status word: created, running, paused, restarting, removing, exited, dead. */
  status: string
  health?: ContainerHealth
}

export interface ContainerSnapshot {
  id: string
  /** Without Docker's leading '/'. */
  name: string
  /** Config.Image: the reference the container was created from, e.g. 'registry:5000/team/web:1.2'. */
  image: string
  labels: Record<string, string>
  env: Record<string, string>
  state: ContainerState
  /** A HEALTHCHECK is configured and not disabled with `NONE`. */
  hasHealthcheck: boolean
  /** Config.ExposedPorts, sorted by port then protocol. */
  exposedPorts: ContainerPort[]
  /** NetworkSettings.Ports, sorted by port then protocol. */
  ports: PublishedPort[]
  /** HostConfig.NetworkMode: 'default', 'bridge', 'host', 'none', 'container:<id>' or a network name. */
  networkMode: string
  /** NetworkSettings.Networks by name, with empty addresses left out. */
  networks: Record<string, ContainerNetwork>
  /** Config.StopTimeout in seconds, when set (`docker run --stop-timeout`). */
  stopTimeout?: number
}

const PROTOCOLS: readonly string[] = ['tcp', 'udp', 'sctp']
const HEALTH: readonly string[] = ['starting', 'healthy', 'unhealthy']

/** '80/tcp', '53/udp' or a bare '80' (tcp, as Docker reads it); anything else is undefined. */
export function parsePortKey(key: string): ContainerPort | undefined {
  const match = /^(\d{1,5})(?:\/([a-z]+))?$/.exec(key.trim().toLowerCase())
  if (!match) return undefined
  const containerPort = Number(match[1])
  const protocol = match[2] ?? 'tcp'
  if (containerPort < 1 || containerPort > 65_535 || !PROTOCOLS.includes(protocol)) return undefined
  return { containerPort, protocol: protocol as PortProtocol }
}

export function comparePorts(a: ContainerPort, b: ContainerPort): number {
  return a.containerPort - b.containerPort || PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol)
}

/** `80/tcp`, the form Docker and users write. */
export function formatPort(port: ContainerPort): string {
  return `${port.containerPort}/${port.protocol}`
}

export function snapshotFromInspect(inspect: Dockerode.ContainerInspectInfo): ContainerSnapshot {
  // Read through `unknown`: the typings promise fields that real engines omit or send as null.
  const raw = asObject(inspect as unknown)
  const config = asObject(raw.Config)
  const state = asObject(raw.State)
  const hostConfig = asObject(raw.HostConfig)
  const networkSettings = asObject(raw.NetworkSettings)
  const health = asObject(state.Health)
  const healthStatus = asString(health.Status)

  return {
    id: asString(raw.Id),
    name: asString(raw.Name).replace(/^\//, ''),
    image: asString(config.Image),
    labels: stringRecord(config.Labels),
    env: envRecord(config.Env),
    state: {
      running: state.Running === true,
      paused: state.Paused === true,
      restarting: state.Restarting === true,
      status: asString(state.Status),
      ...(HEALTH.includes(healthStatus) ? { health: healthStatus as ContainerHealth } : {}),
    },
    hasHealthcheck: hasHealthcheck(config.Healthcheck, state.Health),
    ...(typeof config.StopTimeout === 'number' && Number.isInteger(config.StopTimeout) && config.StopTimeout >= 0 ? { stopTimeout: Math.min(config.StopTimeout, 3600) } : {}),
    exposedPorts: Object.keys(asObject(config.ExposedPorts))
      .map(parsePortKey)
      .filter((port): port is ContainerPort => port !== undefined)
      .sort(comparePorts),
    ports: publishedPorts(networkSettings.Ports),
    networkMode: asString(hostConfig.NetworkMode) || 'default',
    networks: networks(networkSettings.Networks, networkSettings.IPAddress, networkSettings.GlobalIPv6Address, asString(hostConfig.NetworkMode)),
  }
}

function hasHealthcheck(healthcheck: unknown, stateHealth: unknown): boolean {
  const test = asObject(healthcheck).Test
  if (Array.isArray(test) && test.length > 0) return test[0] !== 'NONE'
  // Older engines may report health without the config that produced it. Podman reports
  // `Health: {Status: ""}` for every container, with or without a check: no status, no check.
  return typeof stateHealth === 'object' && stateHealth !== null && asString((stateHealth as Record<string, unknown>).Status) !== ''
}

function publishedPorts(ports: unknown): PublishedPort[] {
  const result: PublishedPort[] = []
  for (const [key, bindings] of Object.entries(asObject(ports))) {
    const port = parsePortKey(key)
    if (!port) continue
    result.push({ ...port, bindings: hostBindings(bindings) })
  }
  return result.sort(comparePorts)
}

function hostBindings(bindings: unknown): HostBinding[] {
  if (!Array.isArray(bindings)) return []
  const result: HostBinding[] = []
  for (const binding of bindings) {
    const entry = asObject(binding)
    const hostPort = Number(asString(entry.HostPort))
    // A binding without a real host port can't be reached, so it isn't a binding.
    if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65_535) continue
    result.push({ hostIp: asString(entry.HostIp), hostPort })
  }
  return result
}

/**
 * NetworkSettings.Networks, or when an engine leaves it empty but still reports the legacy
 * top-level address (Podman can: `Networks: {}` beside `IPAddress`), that address under the
 * network mode's name. An empty map stays empty: host and none have no address of their own.
 */
function networks(value: unknown, legacyIPv4?: unknown, legacyIPv6?: unknown, networkMode?: string): Record<string, ContainerNetwork> {
  const named = Object.entries(asObject(value))
  if (named.length === 0) {
    const ipAddress = asString(legacyIPv4)
    const globalIPv6Address = asString(legacyIPv6)
    if (!ipAddress && !globalIPv6Address) return {}
    const name = networkMode && networkMode !== 'default' && !networkMode.startsWith('container:') ? networkMode : 'bridge'
    return { [name]: { ...(ipAddress ? { ipAddress } : {}), ...(globalIPv6Address ? { globalIPv6Address } : {}) } }
  }
  const entries = named
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, settings]): [string, ContainerNetwork] => {
      const net = asObject(settings)
      const ipAddress = asString(net.IPAddress)
      const globalIPv6Address = asString(net.GlobalIPv6Address)
      return [name, { ...(ipAddress ? { ipAddress } : {}), ...(globalIPv6Address ? { globalIPv6Address } : {}) }]
    })
  return Object.fromEntries(entries)
}

function envRecord(env: unknown): Record<string, string> {
  if (!Array.isArray(env)) return {}
  const entries: [string, string][] = []
  for (const item of env) {
    if (typeof item !== 'string') continue
    const eq = item.indexOf('=')
    // `FOO` without '=' is how Docker passes "unset"; it has no value to read.
    if (eq <= 0) continue
    entries.push([item.slice(0, eq), item.slice(eq + 1)])
  }
  // fromEntries defines own properties, so a key like `__proto__` stays a plain key.
  return Object.fromEntries(entries)
}

function stringRecord(value: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries(asObject(value)).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

function asString(value: unknown): string {
  return typeof value === 'string' ? value : ''
}
