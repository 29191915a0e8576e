import { isIP } from 'node:net'
import type Dockerode from 'dockerode'
import type { Etcd3 } from 'etcd3'

/**
 * The convergence oracle: Docker's truth against what etcd holds.
 *
 * For every test host (a docker daemon and the node name of the agent that watches it) it
 * lists the running containers that carry the test's labels, inspects them, and works out on
 * its own which instance records they should give, then reads every record under the prefix
 * and reports:
 *   - missing: a record Docker's truth calls for is not in etcd;
 *   - phantom: a record of one of these nodes that nothing running backs;
 *   - wrong:   a record at the right key with the wrong container, address, port or health,
 *              or not bound to the node's live lease.
 *
 * It is written independently of src/ (no import of the product's builder): an oracle that
 * reused the code under test would agree with it by construction. It models the rules of
 * the README ("What gets registered") that decide keys and addresses (opt-out, published vs
 * container addresses, discovery.port, service names, SERVICE_ID, the name and id rules);
 * tags, meta and check settings are not compared. Where the right answer can't be known
 * from Docker alone (the result of an HTTP/TCP/exec check, an address behind a 0.0.0.0
 * binding without an advertise address) that field is not judged.
 */

export type HealthStatus = 'passing' | 'warning' | 'critical' | 'unknown'

export interface OracleHost {
  /** The --node of the agent watching this daemon. */
  node: string
  docker: Dockerode
  /** As the agent's --address-mode (default published). */
  addressMode?: 'published' | 'container'
  /** As the agent's --network, with container mode. */
  network?: string
  /** As the agent's --exposed-by-default (default true). */
  exposedByDefault?: boolean
  /** As the agent's --advertise-address; without it the address behind a 0.0.0.0 binding is not judged. */
  advertiseAddress?: string
}

export interface StoredRecord {
  key: string
  lease: string
  modRevision: string
  /** The parsed JSON value (undefined when the value is not JSON). */
  value: RecordValue | undefined
  raw: string
}

export interface RecordValue {
  id?: string
  service?: string
  address?: string
  port?: number
  node?: string
  source?: string
  container?: { id?: string; name?: string; port?: number; protocol?: string }
  health?: { status?: string }
}

export interface OracleInput {
  etcd: Etcd3
  prefix: string
  hosts: OracleHost[]
  /** Docker's truth: the running containers carrying every one of these labels. */
  labels: Record<string, string>
  /**
   * Which records of the hosts' nodes belong to this test (default: all of them). Lets a test
   * share a daemon with other tests' containers without judging theirs.
   */
  scope?: (record: StoredRecord) => boolean
}

export interface ExpectedInstance {
  key: string
  node: string
  service: string
  id: string
  /** The containers that may back this key: one, or several when their labels collide. */
  containers: { id: string; name: string }[]
  /** undefined: not determinable from Docker alone. */
  address?: string
  port: number
  /** Health statuses the record may have; undefined: not determinable (an HTTP/TCP/exec check). */
  health?: HealthStatus[]
  /** Why the health is what it must be, for the report. */
  healthWhy: string
  /** A paused container's record may also be absent. */
  optional: boolean
}

export interface OracleReport {
  ok: boolean
  missing: string[]
  phantom: string[]
  wrong: string[]
  expected: ExpectedInstance[]
  records: StoredRecord[]
  /** Containers of the truth set and what the oracle made of each (for the report). */
  containers: { node: string; name: string; state: string; instances: number; note?: string }[]
}

const INSPECT_CONCURRENCY = 16

/** One pass: Docker's truth now, etcd now, the difference. */
export async function checkOracle(input: OracleInput): Promise<OracleReport> {
  const expected = new Map<string, ExpectedInstance>()
  /** Every container's own expectation per key, for keys whose labels collide. */
  const candidates = new Map<string, ExpectedInstance[]>()
  const containers: OracleReport['containers'] = []
  for (const host of input.hosts) {
    const infos = await inspectLabelled(host.docker, input.labels)
    for (const info of infos) {
      const { instances, note } = expectedInstances(host, info, input.prefix)
      containers.push({ node: host.node, name: info.Name.replace(/^\//, ''), state: stateWord(info), instances: instances.length, note })
      for (const instance of instances) {
        candidates.set(instance.key, [...(candidates.get(instance.key) ?? []), instance])
        const existing = expected.get(instance.key)
        if (!existing) expected.set(instance.key, { ...instance, containers: [...instance.containers] })
        else existing.containers.push(...instance.containers) // a collision: either may hold the key
      }
    }
  }

  const nodes = new Set(input.hosts.map((h) => h.node))
  const [servicesResponse, nodesResponse] = await Promise.all([
    input.etcd.getAll().prefix(`${input.prefix}/services/`).exec(),
    input.etcd.getAll().prefix(`${input.prefix}/nodes/`).exec(),
  ])
  const nodeLeases = new Map<string, string>()
  for (const kv of nodesResponse.kvs) nodeLeases.set(kv.key.toString().slice(`${input.prefix}/nodes/`.length), kv.lease)

  const records: StoredRecord[] = servicesResponse.kvs.map((kv) => {
    const raw = kv.value.toString()
    let value: RecordValue | undefined
    try {
      value = JSON.parse(raw) as RecordValue
    } catch {
      value = undefined
    }
    return { key: kv.key.toString(), lease: kv.lease, modRevision: kv.mod_revision, value, raw }
  })
  const scope = input.scope ?? (() => true)
  // Judged: whatever sits at an expected key, and every docker record of these nodes in scope.
  const mine = records.filter((r) => expected.has(r.key) || (r.value?.node !== undefined && nodes.has(r.value.node) && r.value.source !== 'manual' && scope(r)))

  const missing: string[] = []
  const phantom: string[] = []
  const wrong: string[] = []
  const byKey = new Map(mine.map((r) => [r.key, r]))
  for (const want of expected.values()) {
    const got = byKey.get(want.key)
    if (!got) {
      if (!want.optional) missing.push(`${short(input.prefix, want.key)} (container ${want.containers.map((c) => c.name).join(' or ')}, want ${want.address ?? '?'}:${want.port}, ${want.healthWhy})`)
      continue
    }
    // On a collision the record is judged against the container that holds it.
    const holder = candidates.get(want.key)?.find((c) => c.containers.some((k) => k.id === got.value?.container?.id))
    const problems = judge(holder ?? want, got, nodeLeases.get(want.node))
    if (problems.length > 0) wrong.push(`${short(input.prefix, want.key)}: ${problems.join('; ')}`)
  }
  for (const record of mine) {
    // Ownership: a Docker record lives under its node, names that node, and is on that node's lease.
    const keyNode = record.key.slice(`${input.prefix}/services/`.length).split('/')
    const owner = record.value?.node ?? ''
    if (record.value?.source === 'docker' && (keyNode.length !== 3 || keyNode[1] !== owner || (nodeLeases.has(owner) && record.lease !== nodeLeases.get(owner)))) {
      wrong.push(`${short(input.prefix, record.key)}: owned by a node that does not run it (record node ${owner}, lease ${record.lease}, node lease ${nodeLeases.get(owner) ?? 'none'})`)
    }
  }
  for (const record of mine) {
    if (expected.has(record.key)) continue
    const v = record.value
    phantom.push(`${short(input.prefix, record.key)} (node ${v?.node ?? '?'}, container ${v?.container?.name ?? '?'} ${v?.container?.id?.slice(0, 12) ?? ''}, ${v?.address ?? '?'}:${v?.port ?? '?'}, ${v?.health?.status ?? '?'})`)
  }
  return { ok: missing.length + phantom.length + wrong.length === 0, missing, phantom, wrong, expected: [...expected.values()], records: mine, containers }
}

export interface ConvergeOptions {
  withinMs: number
  everyMs?: number
}

/** One oracle pass may not hang the test (a frozen etcd member, a stuck daemon): it fails instead. */
const PASS_TIMEOUT_MS = 10_000

function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Polls the oracle until it passes; on timeout throws with the last difference. Returns the
 * passing report and how long it took.
 */
export async function expectConverged(input: OracleInput, options: ConvergeOptions): Promise<OracleReport & { tookMs: number }> {
  const started = Date.now()
  let last: OracleReport | undefined
  let lastError: unknown
  for (;;) {
    lastError = undefined
    try {
      last = await bounded(checkOracle(input), PASS_TIMEOUT_MS, 'an oracle pass (Docker or etcd)')
      if (last.ok) return { ...last, tookMs: Date.now() - started }
    } catch (error) {
      lastError = error
    }
    if (Date.now() - started > options.withinMs) {
      const detail = last ? formatReport(last) : ''
      const trouble = lastError ? `\nlast oracle error: ${(lastError as Error).message}` : ''
      throw new Error(`registry did not converge to Docker's truth within ${options.withinMs} ms\n${detail}${trouble}`)
    }
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 250))
  }
}

/** The difference, one line per finding, for error messages and logs. */
export function formatReport(report: OracleReport): string {
  const lines = [
    `oracle: ${report.ok ? 'PASS' : 'FAIL'}: ${report.expected.length} expected, ${report.records.length} in etcd; ${report.missing.length} missing, ${report.phantom.length} phantom, ${report.wrong.length} wrong`,
    ...report.missing.map((m) => `  missing  ${m}`),
    ...report.phantom.map((p) => `  phantom  ${p}`),
    ...report.wrong.map((w) => `  wrong    ${w}`),
  ]
  return lines.join('\n')
}

// ---------------------------------------------------------------------------- Docker side

async function inspectLabelled(docker: Dockerode, labels: Record<string, string>): Promise<Dockerode.ContainerInspectInfo[]> {
  // Default listing: running, paused and restarting containers (not exited or created).
  // (status named: Podman's default listing leaves paused containers out)
  const list = await docker.listContainers({ filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`), status: ['running', 'paused'] } })
  const out: Dockerode.ContainerInspectInfo[] = []
  for (let i = 0; i < list.length; i += INSPECT_CONCURRENCY) {
    const batch = await Promise.all(
      list.slice(i, i + INSPECT_CONCURRENCY).map((c) =>
        docker
          .getContainer(c.Id)
          .inspect()
          .catch((error: { statusCode?: number }) => {
            if (error.statusCode === 404) return undefined // removed since the listing
            throw error
          }),
      ),
    )
    for (const info of batch) if (info) out.push(info)
  }
  return out
}

function stateWord(info: Dockerode.ContainerInspectInfo): string {
  const s = info.State
  return s.Paused ? 'paused' : s.Restarting ? 'restarting' : s.Running ? 'running' : s.Status
}

interface Port {
  port: number
  protocol: string
}

interface Endpoint extends Port {
  address?: string
  hostPort: number
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const INSTANCE_ID = /^[A-Za-z0-9_.:-]{1,200}$/

function validServiceName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => DNS_LABEL.test(label))
}

function validInstanceId(id: string): boolean {
  return INSTANCE_ID.test(id) && id !== '.' && id !== '..'
}

function parseBool(value: string | undefined): boolean | undefined {
  const word = value?.trim().toLowerCase()
  if (word === undefined) return undefined
  if (['true', '1', 'yes', 'on'].includes(word)) return true
  if (['false', '0', 'no', 'off'].includes(word)) return false
  return undefined
}

function parsePort(text: string): Port | undefined {
  const match = /^(\d{1,5})(?:\/([a-z]+))?$/.exec(text.trim().toLowerCase())
  if (!match) return undefined
  const port = Number(match[1])
  const protocol = match[2] ?? 'tcp'
  if (port < 1 || port > 65_535 || !['tcp', 'udp', 'sctp'].includes(protocol)) return undefined
  return { port, protocol }
}

/** The instances one container must give, per the README; `note` says why none when none. */
export function expectedInstances(host: OracleHost, info: Dockerode.ContainerInspectInfo, prefix: string): { instances: ExpectedInstance[]; note?: string } {
  const name = info.Name.replace(/^\//, '')
  const state = info.State
  if (!state.Running || state.Restarting) return { instances: [], note: 'not running' }
  const paused = state.Paused === true

  const labels: Record<string, string> = { ...(info.Config.Labels ?? {}) }
  const env: Record<string, string> = {}
  for (const item of info.Config.Env ?? []) {
    const eq = item.indexOf('=')
    if (eq > 0) env[item.slice(0, eq)] = item.slice(eq + 1)
  }
  // Empty values count as unset; a label wins over an env var of the same (Registrator) name.
  const labelOf = (key: string): string | undefined => (Object.hasOwn(labels, key) && labels[key].trim() !== '' ? labels[key] : undefined)
  const registrator = (key: string): string | undefined => labelOf(key) ?? (Object.hasOwn(env, key) && env[key].trim() !== '' ? env[key] : undefined)

  const enable = parseBool(labelOf('discovery.enable'))
  if (enable === false) return { instances: [], note: 'discovery.enable=false' }
  if (enable !== true) {
    const ignore = registrator('SERVICE_IGNORE')
    if (ignore !== undefined && parseBool(ignore) !== false) return { instances: [], note: 'SERVICE_IGNORE' }
    if (host.exposedByDefault === false) return { instances: [], note: 'not enabled and exposed-by-default is off' }
  }

  const endpoints = containerEndpoints(host, info)
  if (!endpoints) return { instances: [], note: 'no address' }
  let selected = endpoints
  const wantedPort = labelOf('discovery.port')
  if (wantedPort !== undefined) {
    const wanted = parsePort(wantedPort)
    const withProtocol = wantedPort.includes('/')
    const matches = wanted ? endpoints.filter((e) => e.port === wanted.port && (!withProtocol || e.protocol === wanted.protocol)) : []
    if (matches.length > 0) selected = matches
    else if (wanted && (host.addressMode === 'container' || info.HostConfig?.NetworkMode === 'host')) selected = [{ ...wanted, address: info.HostConfig?.NetworkMode === 'host' ? host.advertiseAddress : containerIp(host, info), hostPort: wanted.port }]
    // else: an invalid or unpublished port is reported and every port is used
  }
  if (selected.length === 0) return { instances: [], note: 'no ports' }
  const group = selected.length > 1
  const kept = selected.filter((e) => {
    const ignore = registrator(`SERVICE_${e.port}_IGNORE`)
    return !(ignore !== undefined && parseBool(ignore) !== false)
  })

  const explicitName = labelOf('discovery.service') ?? registrator('SERVICE_NAME')
  const explicitId = (() => {
    const id = registrator('SERVICE_ID')?.trim()
    return id !== undefined && kept.length === 1 && validInstanceId(id) ? id : undefined
  })()
  const imageBase = imageBaseName(info.Config.Image)
  const hasCheck = ['discovery.check.http', 'discovery.check.tcp', 'discovery.check.exec'].some((k) => labelOf(k) !== undefined) || registrator('SERVICE_CHECK_HTTP') !== undefined || registrator('SERVICE_CHECK_TCP') !== undefined
  const test = info.Config.Healthcheck?.Test
  // (a status, not just the key: Podman reports State.Health {Status: ''} on every container)
  const dockerCheck = Array.isArray(test) && test.length > 0 ? test[0] !== 'NONE' : Boolean(info.State.Health?.Status)

  const instances: ExpectedInstance[] = []
  for (const endpoint of kept) {
    const perPort = labelOf(`discovery.${endpoint.port}.service`) ?? registrator(`SERVICE_${endpoint.port}_NAME`)
    let service: string | undefined
    if (perPort !== undefined) service = validServiceName(perPort.trim()) ? perPort.trim() : undefined
    else if (explicitName !== undefined) {
      const base = explicitName.trim()
      service = validServiceName(base) ? `${base}${group ? `-${endpoint.port}` : ''}` : undefined
      if (service !== undefined && !validServiceName(service)) service = undefined
    } else if (imageBase !== undefined) {
      const suffix = group ? `-${endpoint.port}` : ''
      service = `${imageBase.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`
    }
    if (service === undefined) continue
    const id = explicitId ?? `${host.node}:${name}:${endpoint.port}${endpoint.protocol === 'tcp' ? '' : `:${endpoint.protocol}`}`
    if (!validInstanceId(id)) continue

    let health: HealthStatus[] | undefined
    let healthWhy: string
    if (paused) {
      health = ['critical']
      healthWhy = 'paused: critical or absent'
    } else if (hasCheck) {
      health = undefined
      healthWhy = 'any health (a discovery check decides)'
    } else if (dockerCheck) {
      const status = info.State.Health?.Status
      health = status === 'healthy' ? ['passing'] : status === 'unhealthy' ? ['critical'] : ['unknown']
      healthWhy = `Docker HEALTHCHECK ${status ?? 'no status'}`
    } else {
      health = ['passing']
      healthWhy = 'no check: passing'
    }
    instances.push({
      key: `${prefix}/services/${service}/${host.node}/${id}`,
      node: host.node,
      service,
      id,
      containers: [{ id: info.Id, name }],
      address: endpoint.address,
      port: endpoint.hostPort,
      health,
      healthWhy,
      optional: paused,
    })
  }
  return { instances, note: instances.length === 0 ? 'labels give no valid name or id' : undefined }
}

/** Where each port is reached, per the host's address mode; undefined when there is no address at all. */
function containerEndpoints(host: OracleHost, info: Dockerode.ContainerInspectInfo): Endpoint[] | undefined {
  const portsMap = (info.NetworkSettings?.Ports ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>
  const exposed = Object.keys(info.Config.ExposedPorts ?? {})
  const allPorts = (): Port[] => {
    const seen = new Map<string, Port>()
    for (const key of [...exposed, ...Object.keys(portsMap)]) {
      const p = parsePort(key)
      if (p) seen.set(`${p.port}/${p.protocol}`, p)
    }
    return sortPorts([...seen.values()])
  }
  if (info.HostConfig?.NetworkMode === 'host') {
    return allPorts().map((p) => ({ ...p, address: host.advertiseAddress, hostPort: p.port }))
  }
  if (host.addressMode === 'container') {
    const ip = containerIp(host, info)
    if (!ip) return undefined
    return allPorts().map((p) => ({ ...p, address: ip, hostPort: p.port }))
  }
  const out: Endpoint[] = []
  for (const [key, bindings] of Object.entries(portsMap)) {
    const p = parsePort(key)
    if (!p || !Array.isArray(bindings)) continue
    const usable = bindings.filter((b) => {
      const n = Number(b.HostPort)
      return Number.isInteger(n) && n >= 1 && n <= 65_535
    })
    const binding = usable.find((b) => isIP(b.HostIp ?? '') !== 6) ?? usable[0]
    if (!binding) continue
    const hostIp = binding.HostIp ?? ''
    const unspecific = hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::'
    out.push({ ...p, address: unspecific ? host.advertiseAddress : hostIp, hostPort: Number(binding.HostPort) })
  }
  return sortPorts(out)
}

function containerIp(host: OracleHost, info: Dockerode.ContainerInspectInfo): string | undefined {
  const networks = (info.NetworkSettings?.Networks ?? {}) as Record<string, { IPAddress?: string; GlobalIPv6Address?: string }>
  const ipOf = (n: string): string | undefined => networks[n]?.IPAddress || networks[n]?.GlobalIPv6Address || undefined
  if (host.network) return Object.hasOwn(networks, host.network) ? ipOf(host.network) : undefined
  for (const n of Object.keys(networks).sort()) {
    const ip = ipOf(n)
    if (ip) return ip
  }
  return undefined
}

function sortPorts<T extends Port>(ports: T[]): T[] {
  const order = ['tcp', 'udp', 'sctp']
  return [...ports].sort((a, b) => a.port - b.port || order.indexOf(a.protocol) - order.indexOf(b.protocol))
}

/** Registrator's default: the image's base name, made a DNS label. */
function imageBaseName(image: string): string | undefined {
  const noDigest = image.split('@')[0]
  const base = noDigest.slice(noDigest.lastIndexOf('/') + 1).split(':')[0]
  const name = base.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '')
  return name || undefined
}

// ---------------------------------------------------------------------------- comparison

function judge(want: ExpectedInstance, got: StoredRecord, nodeLease: string | undefined): string[] {
  const v = got.value
  if (!v) return ['value is not JSON']
  const problems: string[] = []
  if (v.node !== want.node) problems.push(`node ${v.node} ≠ ${want.node}`)
  if (v.service !== want.service || v.id !== want.id) problems.push(`record names ${v.service}/${v.id}, lives at ${want.service}/${want.id}`)
  if (!want.containers.some((c) => c.id === v.container?.id)) {
    problems.push(`container ${v.container?.name ?? '?'} ${v.container?.id?.slice(0, 12) ?? '?'} ≠ ${want.containers.map((c) => `${c.name} ${c.id.slice(0, 12)}`).join(' or ')}`)
  }
  if (want.address !== undefined && v.address !== want.address) problems.push(`address ${v.address} ≠ ${want.address}`)
  if (v.port !== want.port) problems.push(`port ${v.port} ≠ ${want.port}`)
  if (want.health && !want.health.includes(v.health?.status as HealthStatus)) problems.push(`health ${v.health?.status} ≠ ${want.health.join('|')} (${want.healthWhy})`)
  if (nodeLease === undefined) problems.push(`no node record for ${want.node}`)
  else if (got.lease === '0' || got.lease !== nodeLease) problems.push(`lease ${got.lease} ≠ the node's live lease ${nodeLease}`)
  return problems
}

function short(prefix: string, key: string): string {
  return key.startsWith(`${prefix}/services/`) ? key.slice(`${prefix}/services/`.length) : key
}
