import { splitTags } from '../config.js'
import type { DesiredInstance } from '../model.js'
import { clip, instanceIdProblem, serviceNameProblem } from '../validate.js'
import { parsePortKey, type PortProtocol } from './snapshot.js'

/**
 * The pure Swarm → instances builder: services, tasks and nodes as the Docker API answers them
 * (GET /services, /tasks, /nodes on a manager) in, the instances to register out. One instance
 * per running task and port, id `swarm:<task id>:<port>` (stable for the task's life, the same
 * on every manager, so a new leader re-registers the same keys); or, in VIP mode, one per
 * service and port, id `swarm:<service id>:vip:<port>`.
 *
 * Labels are the service's own (Spec.Labels: `deploy.labels` in a stack file), read the way
 * Traefik's Swarm provider reads its own: container labels of tasks are not consulted.
 */

export type SwarmAddressMode = 'vip' | 'task' | 'published'

export interface SwarmBuildOptions {
  /**
   * vip: the service's virtual IP on `network` (ingress-published ports: the published port at
   * the advertise address); task: each task's address on `network`; published: each task's
   * host-mode published ports at its node's address. Default: published for services with
   * host-mode ports, else task.
   */
  addressMode?: SwarmAddressMode
  /** The overlay network whose addresses are registered (vip, task). Default: the first by name, ingress last. */
  network?: string
  /** false: only services labelled `discovery.enable=true`. */
  exposedByDefault: boolean
  /** Where ingress-published ports are reached in vip mode (every node routes them). */
  advertiseAddress?: string
}

export interface SwarmPort {
  protocol: PortProtocol
  targetPort: number
  publishedPort?: number
  publishMode: 'ingress' | 'host'
}

export interface SwarmService {
  id: string
  name: string
  labels: Record<string, string>
  image: string
  endpointMode: 'vip' | 'dnsrr'
  ports: SwarmPort[]
  /** By network id. */
  virtualIPs: Record<string, string>
}

export interface SwarmTask {
  id: string
  serviceId: string
  slot?: number
  nodeId: string
  /** Status.State: new … starting, running, complete, shutdown, failed, rejected, orphaned, remove. */
  state: string
  desiredState: string
  containerId?: string
  /** Addresses by network name (prefix length cut). */
  addresses: Record<string, string>
  /** Network name by id, from the attachments. */
  networkNames: Record<string, string>
  hostPorts: SwarmPort[]
}

export interface SwarmInput {
  services: SwarmService[]
  tasks: SwarmTask[]
  /** Node address by node id (Status.Addr). */
  nodeAddresses: Record<string, string>
}

export interface SwarmProblem {
  service: string
  label: string
  value: string
  reason: string
}

export interface SwarmBuildResult {
  instances: DesiredInstance[]
  problems: SwarmProblem[]
  /** Services that gave no instance, with why. */
  skipped: { service: string; reason: string }[]
}

// ------------------------------------------------------------------ reading API answers

export function swarmServiceFromInspect(raw: unknown): SwarmService {
  const r = asObject(raw)
  const spec = asObject(r.Spec)
  const endpoint = asObject(r.Endpoint)
  const endpointSpec = asObject(asObject(spec.EndpointSpec).Mode ? spec.EndpointSpec : endpoint.Spec)
  const containerSpec = asObject(asObject(spec.TaskTemplate).ContainerSpec)
  const ports = (Array.isArray(endpoint.Ports) ? endpoint.Ports : Array.isArray(endpointSpec.Ports) ? endpointSpec.Ports : []).map(swarmPort).filter((p): p is SwarmPort => p !== undefined)
  const virtualIPs: Record<string, string> = {}
  for (const vip of Array.isArray(endpoint.VirtualIPs) ? endpoint.VirtualIPs : []) {
    const v = asObject(vip)
    const addr = asString(v.Addr).split('/')[0]
    if (asString(v.NetworkID) && addr) virtualIPs[asString(v.NetworkID)] = addr
  }
  return {
    id: asString(r.ID),
    name: asString(spec.Name),
    labels: stringRecord(spec.Labels),
    image: asString(containerSpec.Image).split('@')[0],
    endpointMode: asString(endpointSpec.Mode) === 'dnsrr' ? 'dnsrr' : 'vip',
    ports,
    virtualIPs,
  }
}

export function swarmTaskFromInspect(raw: unknown): SwarmTask {
  const r = asObject(raw)
  const status = asObject(r.Status)
  const addresses: Record<string, string> = {}
  const networkNames: Record<string, string> = {}
  for (const attachment of Array.isArray(r.NetworksAttachments) ? r.NetworksAttachments : []) {
    const a = asObject(attachment)
    const network = asObject(a.Network)
    const name = asString(asObject(network.Spec).Name)
    if (name && asString(network.ID)) networkNames[asString(network.ID)] = name
    const first = Array.isArray(a.Addresses) ? asString(a.Addresses[0]).split('/')[0] : ''
    if (name && first) addresses[name] = first
  }
  const portStatus = asObject(status.PortStatus)
  const containerId = asString(asObject(status.ContainerStatus).ContainerID)
  return {
    id: asString(r.ID),
    serviceId: asString(r.ServiceID),
    ...(typeof r.Slot === 'number' ? { slot: r.Slot } : {}),
    nodeId: asString(r.NodeID),
    state: asString(status.State),
    desiredState: asString(r.DesiredState),
    ...(containerId ? { containerId } : {}),
    addresses,
    networkNames,
    hostPorts: (Array.isArray(portStatus.Ports) ? portStatus.Ports : []).map(swarmPort).filter((p): p is SwarmPort => p !== undefined),
  }
}

/** Node id → Status.Addr, for ready nodes. */
export function swarmNodeAddresses(rawNodes: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  for (const node of Array.isArray(rawNodes) ? rawNodes : []) {
    const n = asObject(node)
    const status = asObject(n.Status)
    const addr = asString(status.Addr)
    if (asString(n.ID) && addr && addr !== '0.0.0.0' && asString(status.State) === 'ready') out[asString(n.ID)] = addr
  }
  return out
}

function swarmPort(value: unknown): SwarmPort | undefined {
  const p = asObject(value)
  const protocol = asString(p.Protocol) || 'tcp'
  const targetPort = Number(p.TargetPort)
  if (!['tcp', 'udp', 'sctp'].includes(protocol) || !validPort(targetPort)) return undefined
  const published = Number(p.PublishedPort)
  return {
    protocol: protocol as PortProtocol,
    targetPort,
    ...(validPort(published) ? { publishedPort: published } : {}),
    publishMode: asString(p.PublishMode) === 'host' ? 'host' : 'ingress',
  }
}

// ------------------------------------------------------------------ the builder

/** Tasks that serve: running and meant to. */
const serving = (t: SwarmTask): boolean => t.state === 'running' && t.desiredState === 'running'
/** Tasks being stopped (rolling update, scale down) whose container still runs. */
const leaving = (t: SwarmTask): boolean => t.state === 'running' && t.desiredState !== 'running'

export function swarmToInstances(input: SwarmInput, options: SwarmBuildOptions): SwarmBuildResult {
  const result: SwarmBuildResult = { instances: [], problems: [], skipped: [] }
  const tasksByService = new Map<string, SwarmTask[]>()
  for (const task of input.tasks) tasksByService.set(task.serviceId, [...(tasksByService.get(task.serviceId) ?? []), task])

  for (const service of [...input.services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const problems: SwarmProblem[] = []
    const built = buildService(service, tasksByService.get(service.id) ?? [], input, options, problems)
    result.problems.push(...problems)
    if ('skipped' in built) result.skipped.push({ service: service.name, reason: built.skipped })
    else result.instances.push(...built.instances)
  }
  return result
}

function buildService(service: SwarmService, tasks: SwarmTask[], input: SwarmInput, options: SwarmBuildOptions, problems: SwarmProblem[]): { instances: DesiredInstance[] } | { skipped: string } {
  const problem = (label: string, reason: string) => problems.push({ service: service.name, label, value: clip(service.labels[label] ?? '', 100), reason })
  const enable = service.labels['discovery.enable']
  const enabled = enable === undefined ? undefined : parseBool(enable)
  if (enable !== undefined && enabled === undefined) problem('discovery.enable', 'is not true or false; treated as unset')
  if (enabled === false) return { skipped: 'opted out (discovery.enable=false)' }
  if (enabled !== true && !options.exposedByDefault) return { skipped: 'not enabled (exposed-by-default is off and discovery.enable is not true)' }

  const labelled: string | undefined = service.labels['discovery.service']
  const labelProblem = labelled === undefined ? undefined : serviceNameProblem(labelled)
  if (labelProblem) problem('discovery.service', labelProblem)
  const name = labelled !== undefined && !labelProblem ? labelled : swarmServiceName(service.name)
  if (!name) return { skipped: `service name '${clip(service.name, 40)}' cannot be made a registry name` }

  const tags = service.labels['discovery.tags'] ? splitTags(service.labels['discovery.tags']) : []
  const meta: Record<string, string> = {}
  for (const [key, value] of Object.entries(service.labels)) {
    if (key.startsWith('discovery.meta.') && /^[A-Za-z0-9_.-]{1,128}$/.test(key.slice('discovery.meta.'.length))) meta[key.slice('discovery.meta.'.length)] = clip(value, 4096)
  }
  meta['swarm.service'] = service.name

  const mode: SwarmAddressMode = options.addressMode ?? autoMode(service, tasks)
  const ports = chosenPorts(service, mode, problem)
  if (ports.length === 0) return { skipped: 'no port: set discovery.port on the service (deploy label), or publish or declare one' }

  if (mode === 'vip') {
    if (service.endpointMode === 'dnsrr') return { skipped: 'endpoint mode dnsrr has no virtual IP (use task addresses)' }
    const instances: DesiredInstance[] = []
    for (const port of ports) {
      const ingress = port.publishMode === 'ingress' && port.publishedPort !== undefined && !options.network
      const address = ingress ? options.advertiseAddress : vipOn(service, tasks, options.network)
      if (!address) return { skipped: ingress ? 'an ingress-published port needs --advertise-address' : `no virtual IP${options.network ? ` on network '${options.network}'` : ''}` }
      const id = `swarm:${service.id}:vip:${port.targetPort}${port.protocol === 'tcp' ? '' : `:${port.protocol}`}`
      instances.push({ id, service: name, address, port: ingress ? port.publishedPort! : port.targetPort, tags: [...tags], meta: { ...meta } })
    }
    return { instances }
  }

  // One instance per task; a task being stopped stays only while no other task serves, so a
  // rolling update (either order) never empties the service while a task is up.
  const live = tasks.filter(serving)
  const chosen = live.length > 0 ? live : tasks.filter(leaving)
  if (chosen.length === 0) return { skipped: 'no running task' }
  const instances: DesiredInstance[] = []
  for (const task of [...chosen].sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || (a.id < b.id ? -1 : 1))) {
    for (const port of ports) {
      const endpoint = mode === 'published' ? publishedEndpoint(task, port, input) : taskEndpoint(task, port, options.network)
      if (!endpoint) continue
      const id = `swarm:${task.id}:${port.targetPort}${port.protocol === 'tcp' ? '' : `:${port.protocol}`}`
      if (instanceIdProblem(id)) continue
      instances.push({
        id,
        service: name,
        address: endpoint.address,
        port: endpoint.port,
        tags: [...tags],
        meta: { ...meta, 'swarm.task': task.id, 'swarm.node': task.nodeId, ...(task.slot !== undefined ? { 'swarm.slot': String(task.slot) } : {}) },
        ...(task.containerId
          ? { container: { id: task.containerId, name: `${service.name}.${task.slot ?? task.nodeId}.${task.id}`, image: service.image, port: port.targetPort, protocol: port.protocol } }
          : {}),
      })
    }
  }
  if (instances.length === 0) return { skipped: mode === 'published' ? 'no host-mode published port on a known node' : `no task address${options.network ? ` on network '${options.network}'` : ''}` }
  return { instances }
}

/** discovery.port, else declared ports (published ones in published mode), else Traefik's port label. */
function chosenPorts(service: SwarmService, mode: SwarmAddressMode, problem: (label: string, reason: string) => void): SwarmPort[] {
  const label = service.labels['discovery.port']
  if (label !== undefined) {
    const parsed = parsePortKey(label)
    if (!parsed) problem('discovery.port', 'is not a port (80, 53/udp)')
    else {
      const declared = service.ports.find((p) => p.targetPort === parsed.containerPort && p.protocol === parsed.protocol)
      return [declared ?? { protocol: parsed.protocol, targetPort: parsed.containerPort, publishMode: 'ingress' }]
    }
  }
  const declared = mode === 'published' ? service.ports.filter((p) => p.publishMode === 'host') : service.ports
  const unique = new Map<string, SwarmPort>()
  for (const p of declared) if (!unique.has(`${p.targetPort}/${p.protocol}`)) unique.set(`${p.targetPort}/${p.protocol}`, p)
  if (unique.size > 0) return [...unique.values()].sort((a, b) => a.targetPort - b.targetPort)
  for (const [key, value] of Object.entries(service.labels)) {
    if (/^traefik\.(http|tcp|udp)\.services\.[^.]+\.loadbalancer\.server\.port$/.test(key) || key === 'traefik.port') {
      const port = Number(value)
      if (validPort(port)) return [{ protocol: key.startsWith('traefik.udp.') ? 'udp' : 'tcp', targetPort: port, publishMode: 'ingress' }]
    }
  }
  return []
}

/**
 * Host-mode ports: published. Else a task address on a network of its own: task. Else (only
 * the routing mesh's ingress network) the ingress-published port: vip.
 */
function autoMode(service: SwarmService, tasks: SwarmTask[]): SwarmAddressMode {
  if (service.ports.some((p) => p.publishMode === 'host')) return 'published'
  const ownNetwork = tasks.some((t) => Object.keys(t.addresses).some((n) => n !== INGRESS))
  if (!ownNetwork && service.ports.some((p) => p.publishMode === 'ingress' && p.publishedPort !== undefined)) return 'vip'
  return 'task'
}

/** The routing mesh's network: its addresses only carry ingress traffic, never registered. */
const INGRESS = 'ingress'

function networkOrder(names: string[], wanted: string | undefined): string[] {
  if (wanted) return names.includes(wanted) ? [wanted] : []
  return names.filter((n) => n !== INGRESS).sort()
}

function taskEndpoint(task: SwarmTask, port: SwarmPort, network: string | undefined): { address: string; port: number } | undefined {
  const [name] = networkOrder(Object.keys(task.addresses), network)
  return name ? { address: task.addresses[name], port: port.targetPort } : undefined
}

function publishedEndpoint(task: SwarmTask, port: SwarmPort, input: SwarmInput): { address: string; port: number } | undefined {
  // Docker may list a host-mode port twice (IPv4 and IPv6 bindings); the first is the IPv4 one.
  const bound = task.hostPorts.find((p) => p.targetPort === port.targetPort && p.protocol === port.protocol && p.publishedPort !== undefined)
  const address = input.nodeAddresses[task.nodeId]
  return bound && address ? { address, port: bound.publishedPort! } : undefined
}

function vipOn(service: SwarmService, tasks: SwarmTask[], network: string | undefined): string | undefined {
  const names: Record<string, string> = {}
  for (const task of tasks) Object.assign(names, task.networkNames)
  const byName = Object.fromEntries(Object.entries(service.virtualIPs).map(([id, ip]) => [names[id] ?? id, ip]))
  const [name] = networkOrder(Object.keys(byName), network)
  return name ? byName[name] : undefined
}

/** `stack_web` → `stack-web`; what is left must be a registry name. */
export function swarmServiceName(name: string): string | undefined {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '')
  return cleaned && !serviceNameProblem(cleaned) ? cleaned : undefined
}

/** A container that is a Swarm task: the container agent leaves it to the Swarm source (no double registration). */
export function isSwarmTaskContainer(labels: Record<string, string>): boolean {
  return Object.hasOwn(labels, 'com.docker.swarm.task.id')
}

function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(v)) return true
  if (['false', '0', 'no', 'off'].includes(v)) return false
  return undefined
}

function validPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65_535
}

function stringRecord(value: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries(asObject(value)).filter((e): e is [string, string] => typeof e[1] === 'string'))
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}

function asString(value: unknown): string {
  return typeof value === 'string' ? value : ''
}
