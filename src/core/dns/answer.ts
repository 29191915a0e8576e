import { isIP } from 'node:net'
import type { Answer, Packet, Question } from 'dns-packet'
import { isRoutable } from '../view/routable.js'
import type { ViewInstance, ViewSnapshot } from '../view/types.js'

/**
 * The DNS interface as one pure function: a decoded query and a registry snapshot in, the
 * response out. Name forms and answers follow Consul's DNS interface (see docs/dns.md), under
 * our own domain. No sockets, timers or clock: the server (server.ts) owns transport, size
 * limits and forwarding, and the shuffle takes its randomness from the caller.
 */
export interface DnsAnswerOptions {
  /** The normalised domain we are authoritative for, e.g. `discovery.` (see normaliseDomain). */
  domain: string
  /** TTL of every positive record, and the SOA minimum (the negative-caching TTL) unless negativeTtlSeconds says otherwise. */
  ttlSeconds: number
  /** SOA minimum: how long resolvers may cache NXDOMAIN and empty answers. Defaults to ttlSeconds. */
  negativeTtlSeconds?: number
  /** Serve only `passing` instances (else `warning` ones too), as isRoutable decides. */
  onlyPassing?: boolean
  /** Our datacenter label: names may carry it (`web.service.dc1.discovery.`). Defaults to `dc1`. */
  datacenter?: string
  /** Whether a recursor is configured: names outside the domain are then forwarded, else REFUSED. */
  hasRecursor?: boolean
  /** Most records of one answer (Consul's `a_record_limit`); 0 or unset: no limit (the server still truncates by size). */
  answerLimit?: number
  /** Uniform in [0, 1), for the per-answer shuffle; defaults to Math.random. */
  random?: () => number
}

export interface DnsAnswer {
  response: Packet
  /** The name is outside our domain and a recursor is configured: forward the query (`response` is the SERVFAIL to send if no recursor answers). */
  forward: boolean
}

/** The UDP payload size we advertise in EDNS0 and the most we send over UDP, whatever a client advertises. */
export const EDNS_UDP_PAYLOAD = 4096

// Header bits and codes (RFC 1035 4.1.1); dns-packet leaves opcode and rcode to the flags word.
const AA = 1 << 10
const RD = 1 << 8
const RA = 1 << 7
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const
const OPCODE_QUERY = 0
/** EDNS0 BADVERS is extended rcode 16: the OPT record carries its upper 8 bits (16 >> 4 = 1). */
const BADVERS_EXTENDED = 1

/** SOA timers as Consul's defaults (dns_config.soa): nothing transfers our zone, they only need to be sane. */
const SOA_REFRESH = 3600
const SOA_RETRY = 600
const SOA_EXPIRE = 86400
/** At most this many NS records for the apex, as Consul lists at most 3 servers. */
const MAX_NS = 3

const KINDS = new Set(['service', 'node', 'addr'])

/** `Discovery` → `discovery.`; `.` and empty names are rejected (we never serve the root). */
export function normaliseDomain(domain: string): string {
  const trimmed = domain.trim().toLowerCase().replace(/^\.+/, '').replace(/\.+$/, '')
  if (!trimmed) throw new Error(`DNS domain '${domain}' is empty`)
  for (const label of trimmed.split('.')) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) throw new Error(`DNS domain '${domain}' has an invalid label '${label}'`)
  }
  return `${trimmed}.`
}

export function answerDnsQuery(snapshot: ViewSnapshot, query: Packet, options: DnsAnswerOptions): DnsAnswer {
  const ctx = context(snapshot, query, options)
  const flags = query.flags ?? 0
  const opcode = (flags >> 11) & 0xf
  const questions = query.questions ?? []
  const opts = (query.additionals ?? []).filter((rr) => rr.type === 'OPT')

  if (opcode !== OPCODE_QUERY) return done(reply(ctx, RCODE.NOTIMP, { questions: questions.slice(0, 1), authoritative: false }))
  // One question per message is what every server implements (RFC 9619); a second OPT is a FORMERR by RFC 6891 6.1.1
  if (questions.length !== 1 || opts.length > 1) return done(reply(ctx, RCODE.FORMERR, { authoritative: false }))
  const question = questions[0]
  if (opts.length === 1 && 'ednsVersion' in opts[0] && opts[0].ednsVersion !== 0) {
    return done(reply(ctx, RCODE.NOERROR, { questions: [question], authoritative: false, badVersion: true }))
  }

  const qname = question.name.toLowerCase().replace(/\.$/, '')
  const apex = ctx.domain.replace(/\.$/, '')
  const inDomain = qname === apex || qname.endsWith(`.${apex}`)
  if (!inDomain) {
    if (ctx.hasRecursor) return { response: reply(ctx, RCODE.SERVFAIL, { questions: [question], authoritative: false }), forward: true }
    return done(reply(ctx, RCODE.REFUSED, { questions: [question], authoritative: false }))
  }
  const qclass = question.class ?? 'IN'
  if (qclass !== 'IN' && qclass !== 'ANY') return done(reply(ctx, RCODE.REFUSED, { questions: [question], authoritative: false }))
  if (question.type === 'AXFR' || question.type === 'IXFR') return done(reply(ctx, RCODE.NOTIMP, { questions: [question] }))

  const relative = qname === apex ? [] : qname.slice(0, qname.length - apex.length - 1).split('.')
  const result = lookup(ctx, relative, question)
  if (result.kind === 'nxdomain') return done(reply(ctx, RCODE.NXDOMAIN, { questions: [question], authorities: [soa(ctx)] }))
  if (result.answers.length === 0) return done(reply(ctx, RCODE.NOERROR, { questions: [question], authorities: [soa(ctx)] }))
  return done(reply(ctx, RCODE.NOERROR, { questions: [question], answers: result.answers, additionals: result.additionals }))
}

interface Context {
  snapshot: ViewSnapshot
  query: Packet
  domain: string
  datacenter: string
  ttl: number
  negativeTtl: number
  onlyPassing: boolean
  hasRecursor: boolean
  answerLimit: number
  random: () => number
}

function context(snapshot: ViewSnapshot, query: Packet, options: DnsAnswerOptions): Context {
  const ttl = clampTtl(options.ttlSeconds)
  return {
    snapshot,
    query,
    domain: options.domain.toLowerCase().endsWith('.') ? options.domain.toLowerCase() : `${options.domain.toLowerCase()}.`,
    datacenter: (options.datacenter ?? 'dc1').toLowerCase(),
    ttl,
    negativeTtl: options.negativeTtlSeconds === undefined ? ttl : clampTtl(options.negativeTtlSeconds),
    onlyPassing: options.onlyPassing ?? false,
    hasRecursor: options.hasRecursor ?? false,
    answerLimit: Math.max(0, Math.floor(options.answerLimit ?? 0)),
    random: options.random ?? Math.random,
  }
}

const done = (response: Packet): DnsAnswer => ({ response, forward: false })

type LookupResult = { kind: 'nxdomain' } | { kind: 'found'; answers: Answer[]; additionals: Answer[] }
const NXDOMAIN: LookupResult = { kind: 'nxdomain' }
const NODATA: LookupResult = { kind: 'found', answers: [], additionals: [] }

/**
 * Names are parsed from the right as Consul does: the rightmost `service`, `node` or `addr`
 * label is the kind, what follows it (before the domain) may only be our datacenter, what
 * precedes it is the service (with an optional tag), node or address. A rightmost `_label`
 * also ends a service name without `service` (`_web._tcp.discovery.`, which Consul takes for
 * SRV; we take it for every type, so an A query can't cache an NXDOMAIN that denies the SRV).
 */
function lookup(ctx: Context, labels: string[], question: Question): LookupResult {
  if (labels.length === 0) return apexRecords(ctx, question)
  let kind: string | undefined
  let at = -1
  for (let i = labels.length - 1; i >= 0; i -= 1) {
    if (KINDS.has(labels[i])) {
      kind = labels[i]
      at = i
      break
    }
    if (labels[i].startsWith('_')) {
      kind = 'service'
      at = i + 1
      break
    }
  }
  if (kind === undefined) {
    // `dc1.discovery.` exists (it has names below it): an empty non-terminal is NODATA, not NXDOMAIN (RFC 8020)
    return labels.length === 1 && labels[0] === ctx.datacenter ? NODATA : NXDOMAIN
  }
  const suffix = labels.slice(at + (labels[at] === kind ? 1 : 0))
  if (suffix.length > 1 || (suffix.length === 1 && suffix[0] !== ctx.datacenter)) return NXDOMAIN
  const parts = labels.slice(0, at)
  if (parts.length === 0) return NODATA // `service.discovery.` and the like: empty non-terminals
  const type: string = question.type
  switch (kind) {
    case 'service':
      return serviceRecords(ctx, parts, question.name, type)
    case 'node':
      return nodeRecords(ctx, parts.join('.'), question.name, type)
    default:
      return addrRecords(ctx, parts, question.name, type)
  }
}

function apexRecords(ctx: Context, question: Question): LookupResult {
  const qtype: string = question.type
  if (qtype === 'SOA') return { kind: 'found', answers: [soa(ctx, question.name)], additionals: [] }
  if (qtype !== 'NS' && qtype !== 'ANY') return NODATA
  // NS: live agents with an address, as Consul lists its servers (each agent can serve this zone)
  const withAddress = ctx.snapshot.nodes.filter((node) => node.record.address && isIP(node.record.address) && isHostName(node.record.node))
  const chosen = shuffle(withAddress, ctx.random).slice(0, MAX_NS)
  const answers: Answer[] = []
  const additionals: Answer[] = []
  for (const node of chosen) {
    const target = `${node.record.node.toLowerCase()}.node.${ctx.datacenter}.${ctx.domain}`
    answers.push({ type: 'NS', name: question.name, ttl: ctx.ttl, data: trimDot(target) })
    additionals.push(addressRecord(trimDot(target), node.record.address as string, ctx.ttl))
  }
  if (qtype === 'ANY') answers.unshift(soa(ctx, question.name))
  return { kind: 'found', answers, additionals }
}

interface ServiceQuery {
  service: string
  tag?: string
}

/**
 * `[tag.]<service>` or RFC 2782 `_<service>._<tag|tcp>`. Service names may hold dots
 * (`billing.api`): of the ways to split the labels, the longest service name that exists wins,
 * and the labels before it are the tag. `_tcp` is no filter (Consul's default protocol label);
 * any other `_<label>`, `_udp` included, filters by that tag as Consul does.
 */
function parseService(ctx: Context, parts: string[]): ServiceQuery | undefined {
  const services = ctx.snapshot.services
  const last = parts[parts.length - 1]
  if (parts.length >= 2 && parts[0].startsWith('_') && last.startsWith('_')) {
    const service = parts.slice(0, -1).join('.').slice(1)
    const protocol = last.slice(1)
    if (!services.has(service)) return undefined
    return protocol === 'tcp' ? { service } : { service, tag: protocol }
  }
  for (let start = 0; start < parts.length; start += 1) {
    const service = parts.slice(start).join('.')
    if (services.has(service)) return start === 0 ? { service } : { service, tag: parts.slice(0, start).join('.') }
  }
  return undefined
}

function serviceRecords(ctx: Context, parts: string[], qname: string, type: string): LookupResult {
  const parsed = parseService(ctx, parts)
  if (!parsed) return NXDOMAIN
  const all = ctx.snapshot.services.get(parsed.service) ?? []
  const tag = parsed.tag
  const tagged = tag === undefined ? all : all.filter((entry) => entry.record.tags.some((t) => t.toLowerCase() === tag))
  // The name exists while some instance carries it, whatever its health: then no routable one is NODATA
  if (tagged.length === 0) return NXDOMAIN
  const routable = shuffle(
    tagged.filter((entry) => isRoutable(entry.record, { onlyPassing: ctx.onlyPassing }) && usableAddress(entry.record.address)),
    ctx.random,
  )
  if (type === 'SRV') return srvRecords(ctx, routable, qname)
  if (type === 'A' || type === 'AAAA' || type === 'ANY') return addressRecords(ctx, routable, qname, type)
  return NODATA
}

/**
 * A/AAAA of the instances' addresses, one record per distinct address. Instances registered
 * with a host name are answered as Consul does: a CNAME to it, only when no instance has an
 * address of the asked family (a name can't own a CNAME and other records), and only one.
 */
function addressRecords(ctx: Context, instances: ViewInstance[], qname: string, type: string): LookupResult {
  const answers: Answer[] = []
  const seen = new Set<string>()
  let cname: Answer | undefined
  for (const { record } of instances) {
    const family = isIP(record.address)
    if (family === 0) {
      cname ??= { type: 'CNAME', name: qname, ttl: ctx.ttl, data: trimDot(record.address) }
      continue
    }
    if ((type === 'A' && family !== 4) || (type === 'AAAA' && family !== 6)) continue
    if (seen.has(record.address)) continue
    seen.add(record.address)
    answers.push(addressRecord(qname, record.address, ctx.ttl))
    if (answers.length === ctx.answerLimit) break
  }
  if (answers.length === 0 && cname) answers.push(cname)
  return { kind: 'found', answers, additionals: [] }
}

/**
 * SRV priority 1, weight 1 (Consul's defaults), one per distinct address and port. The target
 * of an IP is `<hex>.addr.<dc>.<domain>` (Consul's form, which we resolve too) and its A/AAAA
 * goes in the additional section so clients such as HAProxy need no second query; the target
 * of a host name is that name.
 */
function srvRecords(ctx: Context, instances: ViewInstance[], qname: string): LookupResult {
  const answers: Answer[] = []
  const additionals: Answer[] = []
  const seen = new Set<string>()
  const glued = new Set<string>()
  for (const { record } of instances) {
    const key = `${record.address}|${record.port}`
    if (seen.has(key)) continue
    seen.add(key)
    const ip = isIP(record.address) !== 0
    const target = ip ? `${hexAddress(record.address)}.addr.${ctx.datacenter}.${trimDot(ctx.domain)}` : trimDot(record.address)
    answers.push({ type: 'SRV', name: qname, ttl: ctx.ttl, data: { priority: 1, weight: 1, port: record.port, target } })
    if (ip && !glued.has(target)) {
      glued.add(target)
      additionals.push(addressRecord(target, record.address, ctx.ttl))
    }
    if (answers.length === ctx.answerLimit) break
  }
  return { kind: 'found', answers, additionals }
}

/** `<node>.node.<domain>`: the node's advertised address (NodeRecord.address); names may hold dots. */
function nodeRecords(ctx: Context, name: string, qname: string, type: string): LookupResult {
  const node = ctx.snapshot.nodes.find((entry) => entry.record.node.toLowerCase() === name)
  if (!node) return NXDOMAIN
  const address = node.record.address
  if (!address || !usableAddress(address)) return NODATA
  const family = isIP(address)
  if (family === 0) return type === 'A' || type === 'AAAA' || type === 'ANY' ? found([{ type: 'CNAME', name: qname, ttl: ctx.ttl, data: trimDot(address) }]) : NODATA
  if (type === 'ANY' || (type === 'A' && family === 4) || (type === 'AAAA' && family === 6)) return found([addressRecord(qname, address, ctx.ttl)])
  return NODATA
}

/** `<hex>.addr.<domain>`: the address an SRV target names (8 hex digits for IPv4, 32 for IPv6). */
function addrRecords(ctx: Context, parts: string[], qname: string, type: string): LookupResult {
  if (parts.length !== 1) return NXDOMAIN
  const address = parseHexAddress(parts[0])
  if (!address) return NXDOMAIN
  const family = isIP(address)
  if (type === 'ANY' || (type === 'A' && family === 4) || (type === 'AAAA' && family === 6)) return found([addressRecord(qname, address, ctx.ttl)])
  return NODATA
}

const found = (answers: Answer[]): LookupResult => ({ kind: 'found', answers, additionals: [] })

function soa(ctx: Context, name = ctx.domain): Answer {
  return {
    type: 'SOA',
    name: trimDot(name),
    // The SOA's own TTL is its minimum too: a resolver caches the negative answer no longer than that (RFC 2308 5)
    ttl: ctx.negativeTtl,
    data: {
      mname: `ns.${trimDot(ctx.domain)}`,
      rname: `hostmaster.${trimDot(ctx.domain)}`,
      // The registry revision: it moves whenever the registry does, and needs no clock
      serial: Number(BigInt.asUintN(32, BigInt(/^\d+$/.test(ctx.snapshot.revision) ? ctx.snapshot.revision : '0'))),
      refresh: SOA_REFRESH,
      retry: SOA_RETRY,
      expire: SOA_EXPIRE,
      minimum: ctx.negativeTtl,
    },
  }
}

interface ReplyParts {
  questions?: Question[]
  answers?: Answer[]
  authorities?: Answer[]
  additionals?: Answer[]
  authoritative?: boolean
  badVersion?: boolean
}

function reply(ctx: Context, rcode: number, parts: ReplyParts): Packet {
  const queryFlags = ctx.query.flags ?? 0
  const opcode = (queryFlags >> 11) & 0xf
  const flags = (opcode << 11) | ((parts.authoritative ?? true) ? AA : 0) | (queryFlags & RD) | (ctx.hasRecursor ? RA : 0) | rcode
  const additionals = [...(parts.additionals ?? [])]
  // A client that sent EDNS0 gets an OPT back with the payload size we accept (RFC 6891 6.1.1)
  if ((ctx.query.additionals ?? []).some((rr) => rr.type === 'OPT')) {
    additionals.push({ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_PAYLOAD, extendedRcode: parts.badVersion ? BADVERS_EXTENDED : 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] })
  }
  return {
    type: 'response',
    id: ctx.query.id ?? 0,
    flags,
    questions: parts.questions ?? [],
    answers: parts.answers ?? [],
    authorities: parts.authorities ?? [],
    additionals,
  }
}

function addressRecord(name: string, address: string, ttl: number): Answer {
  return { type: isIP(address) === 6 ? 'AAAA' : 'A', name, ttl, data: address }
}

/** Addresses we can put in a record: an IPv4, an IPv6 without a zone, or a valid host name. */
function usableAddress(address: string): boolean {
  if (isIP(address) !== 0) return !address.includes('%')
  return isHostName(address)
}

function isHostName(name: string): boolean {
  const trimmed = trimDot(name)
  if (trimmed.length === 0 || trimmed.length > 253) return false
  return trimmed.split('.').every((label) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(label))
}

function hexAddress(address: string): string {
  if (isIP(address) === 4) return address.split('.').map((octet) => Number(octet).toString(16).padStart(2, '0')).join('')
  return expandIPv6(address).map((group) => group.padStart(4, '0')).join('')
}

function parseHexAddress(label: string): string | undefined {
  if (/^[0-9a-f]{8}$/.test(label)) return [0, 2, 4, 6].map((i) => parseInt(label.slice(i, i + 2), 16)).join('.')
  if (/^[0-9a-f]{32}$/.test(label)) {
    const groups = Array.from({ length: 8 }, (_, i) => parseInt(label.slice(i * 4, i * 4 + 4), 16).toString(16))
    return groups.join(':')
  }
  return undefined
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, an embedded IPv4 tail converted). */
function expandIPv6(address: string): string[] {
  let text = address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4) {
    const octets = v4[1].split('.').map(Number)
    text = `${text.slice(0, v4.index)}${((octets[0] << 8) | octets[1]).toString(16)}:${((octets[2] << 8) | octets[3]).toString(16)}`
  }
  const [head, tail] = text.split('::')
  const left = head ? head.split(':') : []
  const right = tail === undefined ? [] : tail ? tail.split(':') : []
  const fill = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0')
  return [...left, ...fill, ...right]
}

/** Fisher–Yates on a copy: every answer is freshly ordered, so clients that take the first record spread out. */
function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.min(i, Math.floor(random() * (i + 1)))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

function clampTtl(seconds: number): number {
  return Number.isFinite(seconds) ? Math.min(2 ** 31 - 1, Math.max(0, Math.floor(seconds))) : 0
}

const trimDot = (name: string): string => (name.endsWith('.') && name.length > 1 ? name.slice(0, -1) : name)
