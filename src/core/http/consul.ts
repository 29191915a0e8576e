import { createHash } from 'node:crypto'
import type { HealthStatus, InstanceRecord } from '../model.js'
import { isRoutable } from '../view/routable.js'
import type { ViewInstance, ViewNode, ViewSnapshot } from '../view/types.js'

/**
 * The read-only subset of Consul's HTTP API (catalog, health, agent/self, status) and a
 * Prometheus http_sd answer, as pure functions of one registry snapshot. The server in
 * server.ts only parses the request, picks one of these and writes the answer; blocking
 * queries wait on the view there, never here.
 *
 * Shapes follow what Consul 1.x answers (field names, nulls vs empty maps, index rules) so
 * that its consumers — the Go `api` package inside Prometheus, consul-template, Traefik,
 * python-consul — read them unchanged.
 */

/** One answer: an HTTP status, a JSON body (a string is sent as text/plain) and the index it reflects. */
export interface ConsulAnswer {
  status: number
  body: unknown
  /** Decimal etcd revision the answer reflects (X-Consul-Index); never `0`. */
  index: string
}

export interface ConsulOptions {
  /** The one datacenter this agent answers for (Consul's `dc`). */
  datacenter: string
  /** This agent's node name (agent/self). */
  node: string
  /** This agent's version, shown in agent/self. */
  version?: string
}

/** The query parameters the answers understand, parsed once by `parseConsulQuery`. */
export interface ConsulQuery {
  dc?: string
  /** Every `tag` given: an instance must carry all of them. */
  tags: string[]
  /** `passing`: only instances whose checks all pass. */
  passing: boolean
  /** `node-meta=key:value` pairs: the node must carry all of them. */
  nodeMeta: Array<[string, string]>
  filter?: string
  /** `consistent`: refuse to answer from a view that lost etcd. */
  consistent: boolean
  /** http_sd only: `service` (repeatable); none means every service. */
  services: string[]
  /** http_sd only: `routable`, the DNS/resolver rule (passing or warning). */
  routable: boolean
}

/**
 * The version agent/self reports as Config.Version. Clients gate features on Consul's
 * version (e.g. the `filter` parameter came in 1.4); the API subset here is the 1.x one.
 */
export const CONSUL_COMPAT_VERSION = '1.15.0'

/** Prefix of every label our http_sd answer sets (Prometheus keeps `__meta_*` until relabelling ends). */
export const HTTP_SD_LABEL_PREFIX = '__meta_discovery_'

const NO_PATH_TO_DC = 'No path to datacenter'
const FILTER_UNSUPPORTED = 'filter is not supported by this read-only Consul API (discovery-agent); use tag, node-meta and passing instead'

/** Parses the query string (repeated keys kept). Presence-only flags (`?passing`) count as set unless `=false`/`=0`. */
export function parseConsulQuery(params: URLSearchParams): ConsulQuery {
  const flag = (name: string): boolean => {
    if (!params.has(name)) return false
    const value = params.get(name) ?? ''
    return value !== 'false' && value !== '0'
  }
  const nodeMeta: Array<[string, string]> = []
  for (const pair of params.getAll('node-meta')) {
    const at = pair.indexOf(':')
    nodeMeta.push(at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)])
  }
  const dc = params.get('dc')
  const filter = params.get('filter')
  return {
    ...(dc ? { dc } : {}),
    tags: params.getAll('tag'),
    passing: flag('passing'),
    nodeMeta,
    ...(filter ? { filter } : {}),
    consistent: flag('consistent'),
    services: params.getAll('service').filter((name) => name !== ''),
    routable: flag('routable'),
  }
}

/** A revision as Consul's index: decimal, at least 1 (clients treat 0 as "no index" and busy-loop). */
export function consulIndex(revision: string | undefined): string {
  if (revision === undefined || !/^\d+$/.test(revision)) return '1'
  const value = BigInt(revision)
  return value < 1n ? '1' : value.toString()
}

/** The index a service query reflects: the last change to that service, else the whole view's revision. */
export function serviceIndexOf(snapshot: ViewSnapshot, service: string): string {
  return consulIndex(snapshot.serviceIndex.get(service) ?? snapshot.revision)
}

/** Consul's health status for ours: `unknown` (not checked yet) is what Consul shows for a check that has not run. */
export function consulStatus(status: HealthStatus): 'passing' | 'warning' | 'critical' {
  // Consul shows maintenance as a critical `_service_maintenance` check (see serviceCheck).
  return status === 'unknown' || status === 'maintenance' ? 'critical' : status
}

/** GET /v1/agent/self: the parts clients read (Config.Datacenter for Prometheus, NodeName, Member). */
export function agentSelf(snapshot: ViewSnapshot, options: ConsulOptions): ConsulAnswer {
  const own = snapshot.nodes.find((entry) => entry.record.node === options.node)
  const address = own?.record.address ?? '127.0.0.1'
  const version = options.version ?? own?.record.version ?? ''
  return {
    status: 200,
    index: consulIndex(snapshot.revision),
    body: {
      Config: {
        Datacenter: options.datacenter,
        PrimaryDatacenter: options.datacenter,
        NodeName: options.node,
        NodeID: nodeId(options.node),
        Revision: `discovery-agent ${version}`.trim(),
        Server: false,
        Version: CONSUL_COMPAT_VERSION,
      },
      DebugConfig: {},
      Coord: null,
      Member: {
        Name: options.node,
        Addr: address,
        Port: 8301,
        Tags: { build: `${CONSUL_COMPAT_VERSION}:discovery-agent`, dc: options.datacenter, role: 'node', vsn: '2' },
        Status: 1,
        ProtocolMin: 1,
        ProtocolMax: 5,
        ProtocolCur: 2,
        DelegateMin: 2,
        DelegateMax: 5,
        DelegateCur: 4,
      },
      Meta: nodeMetaOf(),
      xDS: null,
    },
  }
}

/** GET /v1/catalog/services: every service with the union of its instances' tags. */
export function catalogServices(snapshot: ViewSnapshot, query: ConsulQuery, options: ConsulOptions): ConsulAnswer {
  const refused = refuse(snapshot, query, options)
  if (refused) return refused
  const nodes = nodeIndex(snapshot)
  const entries: Array<[string, string[]]> = []
  for (const [service, instances] of snapshot.services) {
    const kept = instances.filter((entry) => matchesNodeMeta(query, nodes, entry))
    if (kept.length === 0) continue
    const tags = new Set<string>()
    for (const entry of kept) for (const tag of entry.record.tags) tags.add(tag)
    entries.push([service, [...tags].sort()])
  }
  // fromEntries defines own properties: a service named `__proto__` stays a plain key.
  return { status: 200, index: consulIndex(snapshot.revision), body: Object.fromEntries(entries) }
}

/** GET /v1/catalog/service/:name: one flat entry per instance, node fields and service fields side by side. */
export function catalogService(snapshot: ViewSnapshot, name: string, query: ConsulQuery, options: ConsulOptions): ConsulAnswer {
  const refused = refuse(snapshot, query, options)
  if (refused) return refused
  const nodes = nodeIndex(snapshot)
  const body = selectInstances(snapshot, name, query, nodes).map((entry) => {
    const node = nodeFields(entry.record.node, nodes, entry, options)
    const record = entry.record
    return {
      ID: node.ID,
      Node: node.Node,
      Address: node.Address,
      Datacenter: node.Datacenter,
      TaggedAddresses: node.TaggedAddresses,
      NodeMeta: node.Meta,
      ServiceKind: '',
      ServiceID: record.id,
      ServiceName: record.service,
      ServiceTags: [...record.tags],
      ServiceAddress: record.address,
      ServiceTaggedAddresses: serviceTaggedAddresses(record),
      ServiceWeights: { Passing: 1, Warning: 1 },
      ServiceMeta: { ...record.meta },
      ServicePort: record.port,
      ServiceSocketPath: '',
      ServiceEnableTagOverride: false,
      ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} },
      ServiceConnect: {},
      CreateIndex: numericIndex(entry.createRevision),
      ModifyIndex: numericIndex(entry.modRevision),
    }
  })
  return { status: 200, index: serviceIndexOf(snapshot, name), body }
}

/** GET /v1/health/service/:name: `{Node, Service, Checks}` per instance, with a node check and the instance's check. */
export function healthService(snapshot: ViewSnapshot, name: string, query: ConsulQuery, options: ConsulOptions): ConsulAnswer {
  const refused = refuse(snapshot, query, options)
  if (refused) return refused
  const nodes = nodeIndex(snapshot)
  const body = selectInstances(snapshot, name, query, nodes)
    // Consul's `passing` drops an entry when any of its checks is not passing; our node check always
    // passes, so that is the instance's own status — the one routable rule, passing only.
    .filter((entry) => !query.passing || isRoutable(entry.record, { onlyPassing: true }))
    .map((entry) => ({
      Node: { ...nodeFields(entry.record.node, nodes, entry, options) },
      Service: agentService(entry, options),
      Checks: [nodeCheck(entry, nodes), serviceCheck(entry)],
    }))
  return { status: 200, index: serviceIndexOf(snapshot, name), body }
}

/** GET /v1/catalog/nodes: every live agent, plus nodes named only by instances (manual records). */
export function catalogNodes(snapshot: ViewSnapshot, query: ConsulQuery, options: ConsulOptions): ConsulAnswer {
  const refused = refuse(snapshot, query, options)
  if (refused) return refused
  const nodes = nodeIndex(snapshot)
  const body = allNodeNames(snapshot)
    .map((name) => nodeFields(name, nodes, firstInstanceOf(snapshot, name), options))
    .filter((node) => query.nodeMeta.every(([key, value]) => node.Meta[key] === value))
  return { status: 200, index: consulIndex(snapshot.revision), body }
}

/** GET /v1/catalog/node/:node: the node and its instances keyed by ID; `null` for a node nobody knows, as Consul does. */
export function catalogNode(snapshot: ViewSnapshot, name: string, query: ConsulQuery, options: ConsulOptions): ConsulAnswer {
  const refused = refuse(snapshot, query, options)
  if (refused) return refused
  const nodes = nodeIndex(snapshot)
  const instances = snapshot.instances.filter((entry) => entry.record.node === name)
  if (!nodes.has(name) && instances.length === 0) return { status: 200, index: consulIndex(snapshot.revision), body: null }
  return {
    status: 200,
    index: consulIndex(snapshot.revision),
    body: {
      Node: nodeFields(name, nodes, instances[0], options),
      Services: Object.fromEntries(instances.map((entry) => [entry.record.id, agentService(entry, options)])),
    },
  }
}

/** GET /v1/catalog/datacenters: ours, the only one. */
export function catalogDatacenters(snapshot: ViewSnapshot, options: ConsulOptions): ConsulAnswer {
  return { status: 200, index: consulIndex(snapshot.revision), body: [options.datacenter] }
}

/**
 * GET /v1/status/leader: `"host:port"` of the leading agent, `""` while there is none (as
 * Consul answers without a raft leader). The port is nominal: Consul's server RPC port.
 */
export function statusLeader(snapshot: ViewSnapshot): ConsulAnswer {
  const leader = snapshot.leader?.node
  const body = leader === undefined ? '' : rpcAddress(leaderAddress(snapshot, leader))
  return { status: 200, index: consulIndex(snapshot.revision), body }
}

/** GET /v1/status/peers: every live agent (each takes part in the election), as `"host:port"`. */
export function statusPeers(snapshot: ViewSnapshot): ConsulAnswer {
  const body = snapshot.nodes.map((entry) => rpcAddress(entry.record.address ?? entry.record.node))
  return { status: 200, index: consulIndex(snapshot.revision), body }
}

/**
 * GET /v1/prometheus/http_sd: Prometheus `http_sd_configs` target groups, one per instance (its
 * labels are its own). Filters as health/service: `service` (repeatable), `tag`, `node-meta`,
 * `passing` (passing only) or `routable` (passing or warning).
 */
export function prometheusHttpSd(snapshot: ViewSnapshot, query: ConsulQuery, options: ConsulOptions): ConsulAnswer {
  const refused = refuse(snapshot, query, options)
  if (refused) return refused
  const nodes = nodeIndex(snapshot)
  const names = query.services.length > 0 ? [...new Set(query.services)].sort() : [...snapshot.services.keys()]
  const groups: Array<{ targets: string[]; labels: Record<string, string> }> = []
  for (const name of names) {
    for (const entry of selectInstances(snapshot, name, query, nodes)) {
      const record = entry.record
      if (query.passing && !isRoutable(record, { onlyPassing: true })) continue
      if (query.routable && !isRoutable(record)) continue
      const labels: Array<[string, string]> = [
        ['service', record.service],
        ['instance_id', record.id],
        ['node', record.node],
        ['address', record.address],
        ['port', String(record.port)],
        ['health', record.health.status],
        ['tags', tagList(record.tags)],
        ['source', record.source],
        ['dc', options.datacenter],
      ]
      for (const [key, value] of Object.entries(record.meta)) labels.push([`meta_${sanitizeLabelName(key)}`, value])
      groups.push({
        targets: [joinHostPort(record.address, record.port)],
        labels: Object.fromEntries(labels.map(([key, value]) => [`${HTTP_SD_LABEL_PREFIX}${key}`, value])),
      })
    }
  }
  const index = query.services.length === 1 ? serviceIndexOf(snapshot, query.services[0]) : consulIndex(snapshot.revision)
  return { status: 200, index, body: groups }
}

/** Consul's answer to `filter`: a bad request, since this subset does not evaluate expressions. */
export function filterUnsupported(snapshot: ViewSnapshot): ConsulAnswer {
  return { status: 400, index: consulIndex(snapshot.revision), body: FILTER_UNSUPPORTED }
}

/**
 * Go's time.ParseDuration, which Consul uses for `wait`: `10s`, `5m`, `120000ms` (the Go
 * client's form), `1m30s`, `1.5h`. Returns milliseconds, or undefined when it is no duration.
 */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y
  const body = text.startsWith('+') ? text.slice(1) : text
  if (body.length === 0) return undefined
  part.lastIndex = 0
  let total = 0
  let match: RegExpExecArray | null
  while (part.lastIndex < body.length && (match = part.exec(body)) !== null) total += Number(match[1]) * units[match[2]]
  if (part.lastIndex !== body.length || !Number.isFinite(total)) return undefined
  return total
}

/** Consul's blocking-query bounds: 5 minutes unless `wait` says otherwise, never more than 10. */
export const DEFAULT_WAIT_MS = 5 * 60_000
export const MAX_WAIT_MS = 10 * 60_000

/** `?index=N&wait=D` as Consul reads them; a string is the 400 message for a malformed one. */
export function blockingWait(params: URLSearchParams, random: () => number): { index: bigint; timeoutMs: number } | undefined | string {
  const index = params.get('index')
  if (index === null) return undefined
  if (!/^\d{1,20}$/.test(index) || BigInt(index) > 0xffff_ffff_ffff_ffffn) return 'Invalid index'
  const waitText = params.get('wait')
  let wait = DEFAULT_WAIT_MS
  if (waitText !== null && waitText !== '') {
    const parsed = parseGoDuration(waitText)
    if (parsed === undefined) return 'Invalid wait time'
    wait = parsed
  }
  // Consul: at most 10 minutes, and a missing/zero wait means the default.
  if (wait <= 0) wait = DEFAULT_WAIT_MS
  wait = Math.min(wait, MAX_WAIT_MS)
  // Consul adds up to wait/16 at random so that many watchers of one change do not wake together.
  const jitter = Math.floor(random() * (wait / 16))
  return { index: BigInt(index), timeoutMs: wait + jitter }
}

/**
 * Whether a blocking query must wait: Consul returns at once for index 0 and for an answer
 * already past the client's index. An index beyond the whole view's revision can only come
 * from a store that went back (etcd restored, another cluster): answering at once hands the
 * client the lower index so it resets, as Consul wakes its blocked queries on a snapshot restore.
 */
export function mustWait(snapshot: ViewSnapshot, answer: ConsulAnswer, index: bigint): boolean {
  if (index === 0n) return false
  if (BigInt(answer.index) > index) return false
  const revision = BigInt(consulIndex(snapshot.revision))
  return index <= revision
}

/** Prometheus's strutil.SanitizeLabelName: anything outside `[a-zA-Z0-9_]` becomes `_`. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_')
}

/** net.JoinHostPort: IPv6 literals in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

// ---------------------------------------------------------------------------------------------

interface ConsulNode {
  ID: string
  Node: string
  Address: string
  Datacenter: string
  TaggedAddresses: Record<string, string>
  Meta: Record<string, string>
  CreateIndex: number
  ModifyIndex: number
}

/** The refusals every catalog/health answer shares: another datacenter, `filter`, `consistent` without etcd. */
function refuse(snapshot: ViewSnapshot, query: ConsulQuery, options: ConsulOptions): ConsulAnswer | undefined {
  const index = consulIndex(snapshot.revision)
  if (query.dc !== undefined && query.dc !== options.datacenter) return { status: 500, index, body: NO_PATH_TO_DC }
  if (query.filter !== undefined) return filterUnsupported(snapshot)
  // Consul's consistent mode needs a leader; ours needs the view's etcd watch (it serves stale contents otherwise).
  if (query.consistent && !snapshot.connected) return { status: 500, index, body: 'No cluster leader' }
  return undefined
}

function selectInstances(snapshot: ViewSnapshot, name: string, query: ConsulQuery, nodes: Map<string, ViewNode>): readonly ViewInstance[] {
  const instances = snapshot.services.get(name) ?? []
  return instances.filter((entry) => query.tags.every((tag) => entry.record.tags.includes(tag)) && matchesNodeMeta(query, nodes, entry))
}

function matchesNodeMeta(query: ConsulQuery, nodes: Map<string, ViewNode>, entry: ViewInstance): boolean {
  if (query.nodeMeta.length === 0) return true
  const meta = nodeMetaOf(nodes.get(entry.record.node))
  return query.nodeMeta.every(([key, value]) => meta[key] === value)
}

function nodeIndex(snapshot: ViewSnapshot): Map<string, ViewNode> {
  return new Map(snapshot.nodes.map((entry) => [entry.record.node, entry]))
}

function allNodeNames(snapshot: ViewSnapshot): string[] {
  const names = new Set(snapshot.nodes.map((entry) => entry.record.node))
  for (const entry of snapshot.instances) names.add(entry.record.node)
  return [...names].sort()
}

function firstInstanceOf(snapshot: ViewSnapshot, node: string): ViewInstance | undefined {
  return snapshot.instances.find((entry) => entry.record.node === node)
}

/** Consul's default node meta; kept so `node-meta=consul-network-segment:` selects every node as it does in Consul. */
function nodeMetaOf(_node?: ViewNode): Record<string, string> {
  return { 'consul-network-segment': '' }
}

/**
 * A node as Consul describes it. Its Address is what the agent advertises; a node with no
 * record (a manual record's node) or no advertised address falls back to its instance's
 * address, so consumers that use the node address when ServiceAddress is empty still reach it.
 */
function nodeFields(name: string, nodes: Map<string, ViewNode>, instance: ViewInstance | undefined, options: ConsulOptions): ConsulNode {
  const node = nodes.get(name)
  const address = node?.record.address ?? instance?.record.address ?? ''
  return {
    ID: nodeId(name),
    Node: name,
    Address: address,
    Datacenter: options.datacenter,
    TaggedAddresses: { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address },
    Meta: nodeMetaOf(node),
    CreateIndex: numericIndex(node?.createRevision ?? instance?.createRevision),
    ModifyIndex: numericIndex(node?.modRevision ?? instance?.modRevision),
  }
}

/** Consul's AgentService shape (health/service `Service`, catalog/node `Services`). */
function agentService(entry: ViewInstance, options: ConsulOptions): Record<string, unknown> {
  const record = entry.record
  return {
    Kind: '',
    ID: record.id,
    Service: record.service,
    Tags: [...record.tags],
    Meta: { ...record.meta },
    Port: record.port,
    Address: record.address,
    TaggedAddresses: serviceTaggedAddresses(record),
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
    Connect: {},
    PeerName: '',
    Datacenter: options.datacenter,
    CreateIndex: numericIndex(entry.createRevision),
    ModifyIndex: numericIndex(entry.modRevision),
  }
}

function serviceTaggedAddresses(record: InstanceRecord): Record<string, { address: string; port: number }> {
  const family = record.address.includes(':') ? 'lan_ipv6' : 'lan_ipv4'
  return { [family]: { address: record.address, port: record.port } }
}

/**
 * Consul's `serfHealth` check, present on every node. Our node liveness is its etcd lease: a
 * node record is there while the agent lives. A manual record's node has none and needs none.
 */
function nodeCheck(entry: ViewInstance, nodes: Map<string, ViewNode>): Record<string, unknown> {
  const node = nodes.get(entry.record.node)
  return {
    Node: entry.record.node,
    CheckID: 'serfHealth',
    Name: 'Serf Health Status',
    Status: 'passing',
    Notes: '',
    Output: node ? 'Agent alive and reachable' : 'Registered without an agent (manual record)',
    ServiceID: '',
    ServiceName: '',
    ServiceTags: [],
    Type: '',
    Interval: '',
    Timeout: '',
    ExposedPort: 0,
    Definition: {},
    CreateIndex: numericIndex(node?.createRevision ?? entry.createRevision),
    ModifyIndex: numericIndex(node?.modRevision ?? entry.createRevision),
  }
}

/** The instance's own check, as Consul's `service:<id>` check; an instance without a check still reports its health. */
function serviceCheck(entry: ViewInstance): Record<string, unknown> {
  const record = entry.record
  const check = record.check
  const maintenance = record.health.status === 'maintenance'
  return {
    Node: record.node,
    // Consul's own name and id for a service in maintenance mode, with the reason in Notes.
    CheckID: maintenance ? `_service_maintenance:${record.id}` : `service:${record.id}`,
    Name: maintenance ? 'Service Maintenance Mode' : `Service '${record.service}' check`,
    Status: consulStatus(record.health.status),
    Notes: record.health.status === 'unknown' ? 'not checked yet' : maintenance ? record.health.output : '',
    Output: record.health.output,
    ServiceID: record.id,
    ServiceName: record.service,
    ServiceTags: [...record.tags],
    Type: check?.kind ?? '',
    Interval: check ? goDuration(check.interval) : '',
    Timeout: check ? goDuration(check.timeout) : '',
    ExposedPort: 0,
    Definition: {},
    CreateIndex: numericIndex(entry.createRevision),
    ModifyIndex: numericIndex(entry.modRevision),
  }
}

/** Consul's check intervals print as Go durations: `10s`, `1m0s`, `500ms`. */
function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`
  const seconds = ms / 1000
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  const rest = Number((seconds - minutes * 60).toFixed(3))
  return minutes < 60 ? `${minutes}m${rest}s` : `${Math.floor(minutes / 60)}h${minutes % 60}m${rest}s`
}

/**
 * Consul's indexes are uint64 JSON numbers. etcd revisions fit in a double's exact range
 * for any realistic cluster (2^53 writes); past it the value is rounded, never wrapped.
 */
function numericIndex(revision: string | undefined): number {
  return Number(consulIndex(revision))
}

/** A stable UUID-shaped node ID from the node name (Consul's node IDs are UUIDs; ours are names). */
function nodeId(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

function leaderAddress(snapshot: ViewSnapshot, leader: string): string {
  return snapshot.nodes.find((entry) => entry.record.node === leader)?.record.address ?? leader
}

function rpcAddress(host: string): string {
  return joinHostPort(host, 8300)
}

/** Prometheus' Consul SD form: the tags joined and surrounded by the separator, so `,tag,` matches anywhere. */
function tagList(tags: readonly string[]): string {
  return tags.length === 0 ? ',,' : `,${tags.join(',')},`
}
