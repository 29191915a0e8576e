import { randomInt } from 'node:crypto'
import dgram from 'node:dgram'
import net from 'node:net'
import dnsPacket, { type Answer, type Packet } from 'dns-packet'
import type { ViewSnapshot, ViewSource } from '../view/types.js'
import { answerDnsQuery, EDNS_UDP_PAYLOAD, normaliseDomain, RCODE, type DnsAnswerOptions } from './answer.js'

/**
 * The DNS server: UDP and TCP on one host:port, a thin adapter over answerDnsQuery. Every
 * query is answered from the view's current snapshot (memory, never an etcd read); this file
 * only owns the wire: framing, size limits and truncation, forwarding to recursors, and the
 * bounds that keep a hostile client from blocking the event loop or growing memory.
 */
export interface DnsServerOptions {
  /** Address to bind (UDP and TCP). Default `127.0.0.1`. */
  host?: string
  /** Port to bind (UDP and TCP); 0 picks a free one. Default 8600 (Consul's). */
  port?: number
  /** The domain we answer for. Default `discovery`. */
  domain?: string
  /** TTL of positive answers in seconds. Default 5 (see docs/dns.md for why). */
  ttlSeconds?: number
  /** SOA minimum (negative caching) in seconds. Default: ttlSeconds. */
  negativeTtlSeconds?: number
  /** Serve only passing instances (else warning ones too). Default false. */
  onlyPassing?: boolean
  /** Datacenter label names may carry. Default `dc1`. */
  datacenter?: string
  /** Where names outside the domain are forwarded, `ip:port` or `ip` (port 53), tried in order. Default none: REFUSED. */
  recursors?: string[]
  /** How long one recursor has to answer before the next is tried. Default 2000 ms (Consul's recursor_timeout). */
  recursorTimeoutMs?: number
  /** Most records in one answer; 0 for no count limit (size still limits). Default 0. */
  answerLimit?: number
  /** A TCP connection with no traffic for this long is closed. Default 10000 ms. */
  tcpIdleTimeoutMs?: number
  /** Open TCP connections at most; more are closed at once. Default 256. */
  maxTcpConnections?: number
  /** Forwarded queries in flight at most (each holds a socket); more are answered SERVFAIL. Default 256. */
  maxForwardsInFlight?: number
  /** Errors that do not stop the server (a failed send, a socket error), e.g. to log them. */
  onError?: (error: Error) => void
  /** Uniform in [0, 1) for the answer shuffle. Default Math.random. */
  random?: () => number
}

export interface DnsServer {
  host: string
  /** The bound ports (the same one for both once started). */
  udpPort: number
  tcpPort: number
  /** Closes both sockets, open TCP connections and forwarding sockets. */
  close(): Promise<void>
}

export const DNS_DEFAULTS = {
  host: '127.0.0.1',
  port: 8600,
  domain: 'discovery.',
  ttlSeconds: 5,
  datacenter: 'dc1',
  recursorTimeoutMs: 2000,
  tcpIdleTimeoutMs: 10_000,
  maxTcpConnections: 256,
  maxForwardsInFlight: 256,
} as const

/** RFC 1035 limit of a UDP message without EDNS0. */
const CLASSIC_UDP_LIMIT = 512
/** A TCP message is framed by a 16-bit length. */
const TCP_LIMIT = 65_535
/** Queries of one TCP connection being answered at once; reading pauses past it. */
const TCP_PIPELINE = 16
/** Binding UDP and TCP to one free port can race with other processes: tries before giving up. */
const BIND_ATTEMPTS = 10
/**
 * A query has one question and at most a few additional records (OPT, a TSIG): we never read
 * answer or authority records, and refusing to decode them caps what a crafted packet (long
 * chains of compression pointers) can cost.
 */
const MAX_QUERY_ADDITIONALS = 4

type Transport = 'udp' | 'tcp'

interface Recursor {
  host: string
  port: number
  family: 4 | 6
}

export async function startDnsServer(view: ViewSource, options: DnsServerOptions = {}): Promise<DnsServer> {
  const host = options.host ?? DNS_DEFAULTS.host
  const recursors = (options.recursors ?? []).map(parseRecursor)
  const answerOptions: DnsAnswerOptions = {
    domain: normaliseDomain(options.domain ?? DNS_DEFAULTS.domain),
    ttlSeconds: options.ttlSeconds ?? DNS_DEFAULTS.ttlSeconds,
    ...(options.negativeTtlSeconds !== undefined ? { negativeTtlSeconds: options.negativeTtlSeconds } : {}),
    onlyPassing: options.onlyPassing ?? false,
    datacenter: (options.datacenter ?? DNS_DEFAULTS.datacenter).toLowerCase(),
    hasRecursor: recursors.length > 0,
    answerLimit: options.answerLimit ?? 0,
    ...(options.random ? { random: options.random } : {}),
  }
  const recursorTimeoutMs = options.recursorTimeoutMs ?? DNS_DEFAULTS.recursorTimeoutMs
  const idleMs = options.tcpIdleTimeoutMs ?? DNS_DEFAULTS.tcpIdleTimeoutMs
  const maxConnections = options.maxTcpConnections ?? DNS_DEFAULTS.maxTcpConnections
  const maxForwards = options.maxForwardsInFlight ?? DNS_DEFAULTS.maxForwardsInFlight
  const report = (error: unknown): void => options.onError?.(error instanceof Error ? error : new Error(String(error)))

  const connections = new Set<net.Socket>()
  const forwardSockets = new Set<dgram.Socket>()
  let closed = false
  // Answers depend only on the snapshot and the query's bytes after its id: one snapshot's
  // encoded answers are kept and re-sent with the asker's id. Each question keeps up to
  // SHUFFLES differently shuffled encodings, picked at random, so answers still rotate.
  const random = options.random ?? Math.random
  let cachedFor: ViewSnapshot | undefined
  const cache = new Map<string, Buffer[]>()

  /** One query in, the bytes to send back out (undefined: send nothing). Never throws. */
  async function handle(message: Buffer, transport: Transport): Promise<Buffer | undefined> {
    try {
      // An id is needed to answer at all; a message with QR set is a response, and answering those could loop between servers
      if (message.length < 2 || (message.length >= 3 && (message[2] & 0x80) !== 0)) return undefined
      if (message.length < 12) return headerOnly(message, RCODE.FORMERR)
      const counts = [4, 6, 8, 10].map((offset) => message.readUInt16BE(offset))
      if (counts[0] !== 1 || counts[1] !== 0 || counts[2] !== 0 || counts[3] > MAX_QUERY_ADDITIONALS) return headerOnly(message, RCODE.FORMERR)
      const snapshot = view.snapshot()
      if (snapshot !== cachedFor) {
        cache.clear()
        cachedFor = snapshot
      }
      const key = `${transport}${message.toString('latin1', 2)}`
      const variants = cache.get(key)
      if (variants && variants.length >= SHUFFLES) return withId(variants[Math.floor(random() * variants.length)], message)
      let query: Packet
      try {
        query = dnsPacket.decode(message)
      } catch {
        return headerOnly(message, RCODE.FORMERR)
      }
      const limit = sizeLimit(query, transport)
      const { response, forward } = answerDnsQuery(snapshot, query, answerOptions)
      if (forward) {
        const upstream = await forwardQuery(message)
        if (upstream) return upstream.length <= limit ? upstream : fitUpstream(upstream, limit)
      }
      const encoded = encodeWithin(response, limit)
      if (variants) variants.push(encoded)
      else if (cache.size < MAX_CACHED_QUESTIONS) cache.set(key, [encoded])
      return encoded
    } catch (error) {
      report(error)
      return headerOnly(message, RCODE.SERVFAIL)
    }
  }

  /** Tries the recursors in order over UDP; the first NOERROR or NXDOMAIN answer wins (others may just be a broken upstream). */
  async function forwardQuery(message: Buffer): Promise<Buffer | undefined> {
    if (forwardSockets.size >= maxForwards) return undefined
    for (const recursor of recursors) {
      if (closed) return undefined
      const reply = await askRecursor(recursor, message)
      if (reply && ((reply[3] & 0xf) === RCODE.NOERROR || (reply[3] & 0xf) === RCODE.NXDOMAIN)) return reply
    }
    return undefined
  }

  function askRecursor(recursor: Recursor, message: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      // A fresh socket (random source port) and a random id per upstream query: a spoofed reply must guess both
      const socket = dgram.createSocket(recursor.family === 6 ? 'udp6' : 'udp4')
      forwardSockets.add(socket)
      const id = randomInt(0, 65_536)
      const clientId = message.readUInt16BE(0)
      const outgoing = Buffer.from(message)
      outgoing.writeUInt16BE(id, 0)
      const finish = (reply?: Buffer): void => {
        clearTimeout(timer)
        forwardSockets.delete(socket)
        socket.removeAllListeners('message')
        socket.close(() => undefined)
        resolve(reply)
      }
      const timer = setTimeout(() => finish(), recursorTimeoutMs)
      socket.on('error', (error) => {
        report(error)
        finish()
      })
      socket.on('message', (reply, rinfo) => {
        if (rinfo.address !== recursor.host || rinfo.port !== recursor.port) return
        if (reply.length < 12 || reply.readUInt16BE(0) !== id || (reply[2] & 0x80) === 0) return
        const back = Buffer.from(reply)
        back.writeUInt16BE(clientId, 0)
        finish(back)
      })
      socket.send(outgoing, recursor.port, recursor.host, (error) => {
        if (error) {
          report(error)
          finish()
        }
      })
    })
  }

  const makeUdp = (): dgram.Socket => {
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4')
    udp.on('message', (message, rinfo) => {
      void handle(message, 'udp').then((out) => {
        if (out && !closed) udp.send(out, rinfo.port, rinfo.address, (error) => error && report(error))
      })
    })
    return udp
  }

  const makeTcp = (): net.Server => net.createServer((socket) => {
    if (closed || connections.size >= maxConnections) {
      socket.destroy()
      return
    }
    connections.add(socket)
    socket.setNoDelay(true)
    socket.setTimeout(idleMs, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('close', () => connections.delete(socket))
    let chunks: Buffer[] = []
    let size = 0
    let frameLength = -1
    let inFlight = 0

    const take = (count: number): Buffer => {
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)
      const head = Buffer.from(all.subarray(0, count))
      const rest = all.subarray(count)
      chunks = rest.length > 0 ? [rest] : []
      size -= count
      return head
    }

    // Frames are answered as they complete; reading pauses while too many are being answered or
    // the client is not reading its answers, so what one connection holds stays bounded.
    const drain = (): void => {
      while (!socket.destroyed && inFlight < TCP_PIPELINE && !socket.writableNeedDrain) {
        if (frameLength < 0) {
          if (size < 2) break
          frameLength = take(2).readUInt16BE(0)
        }
        if (size < frameLength) break
        const message = take(frameLength)
        frameLength = -1
        inFlight += 1
        void handle(message, 'tcp').then((out) => {
          inFlight -= 1
          if (out && !socket.destroyed) {
            const frame = Buffer.alloc(2 + out.length)
            frame.writeUInt16BE(out.length, 0)
            out.copy(frame, 2)
            socket.write(frame)
          }
          drain()
        })
      }
      if (socket.destroyed) return
      if (inFlight >= TCP_PIPELINE || socket.writableNeedDrain) socket.pause()
      else socket.resume()
    }
    socket.on('drain', drain)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      drain()
    })
  })

  const { udp, tcp, port } = await bindBoth(makeUdp, makeTcp, host, options.port ?? DNS_DEFAULTS.port)
  udp.on('error', report)
  tcp.on('error', report)

  return {
    host,
    udpPort: port,
    tcpPort: port,
    close: async () => {
      if (closed) return
      closed = true
      for (const socket of connections) socket.destroy()
      for (const socket of forwardSockets) socket.close(() => undefined)
      forwardSockets.clear()
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ])
    },
  }
}

/** Binds UDP, then TCP on the same port; with port 0, a port whose TCP side is taken is given up and another tried. */
async function bindBoth(makeUdp: () => dgram.Socket, makeTcp: () => net.Server, host: string, port: number): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 1; ; attempt += 1) {
    const udp = makeUdp()
    await new Promise<void>((resolve, reject) => {
      udp.once('error', (error) => {
        // A socket whose bind failed is not running: close() would throw, and there is nothing to release
        reject(error)
      })
      udp.bind({ address: host, port, exclusive: true }, () => {
        udp.removeAllListeners('error')
        resolve()
      })
    })
    const bound = udp.address().port
    const tcp = makeTcp()
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen({ host, port: bound, exclusive: true }, () => {
          tcp.off('error', reject)
          resolve()
        })
      })
      return { udp, tcp, port: bound }
    } catch (error) {
      await new Promise<void>((resolve) => udp.close(() => resolve()))
      if (port !== 0 || attempt >= BIND_ATTEMPTS || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
    }
  }
}

/** The most bytes we may send: 512 over UDP, or what the client's EDNS0 OPT advertises (at most EDNS_UDP_PAYLOAD); 64 KiB over TCP. */
/** Differently shuffled encodings kept per question (per snapshot). */
const SHUFFLES = 8
/** Distinct questions cached per snapshot; past it, answers are computed each time. */
const MAX_CACHED_QUESTIONS = 10_000

/** A cached answer re-sent to another asker: the same bytes with its id. */
function withId(encoded: Buffer, query: Buffer): Buffer {
  const out = Buffer.from(encoded)
  out[0] = query[0]
  out[1] = query[1]
  return out
}

function sizeLimit(query: Packet, transport: Transport): number {
  if (transport === 'tcp') return TCP_LIMIT
  const opt = (query.additionals ?? []).find((rr) => rr.type === 'OPT')
  if (!opt || !('udpPayloadSize' in opt)) return CLASSIC_UDP_LIMIT
  return Math.min(EDNS_UDP_PAYLOAD, Math.max(CLASSIC_UDP_LIMIT, opt.udpPayloadSize))
}

/**
 * Encodes the response within `limit` bytes. When it doesn't fit, TC is set and answers are
 * dropped from the end (they are shuffled, so which ones go is random) until it does, with the
 * additional records kept only for the answers left: a client that honours TC retries over TCP
 * and gets them all, one that doesn't still gets a usable subset.
 */
function encodeWithin(response: Packet, limit: number): Buffer {
  const whole = dnsPacket.encode(response)
  if (whole.length <= limit) return whole
  const answers = response.answers ?? []
  const additionals = response.additionals ?? []
  const opt = additionals.filter((rr) => rr.type === 'OPT')
  const build = (count: number): Packet => {
    const kept = answers.slice(0, count)
    const targets = new Set(kept.map(targetOf).filter((name): name is string => name !== undefined))
    return {
      ...response,
      flags: (response.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
      answers: kept,
      authorities: [],
      additionals: [...additionals.filter((rr) => rr.type !== 'OPT' && targets.has(rr.name.toLowerCase())), ...opt],
    }
  }
  let low = 0
  let high = answers.length
  while (low < high) {
    const middle = Math.ceil((low + high) / 2)
    if (dnsPacket.encodingLength(build(middle)) <= limit) low = middle
    else high = middle - 1
  }
  return dnsPacket.encode(build(low))
}

function targetOf(rr: Answer): string | undefined {
  if (rr.type === 'SRV') return rr.data.target.toLowerCase()
  if (rr.type === 'NS' || rr.type === 'CNAME') return rr.data.toLowerCase()
  return undefined
}

/** An upstream answer too big for the client's UDP limit: the same answer, truncated. */
function fitUpstream(reply: Buffer, limit: number): Buffer {
  try {
    return encodeWithin(dnsPacket.decode(reply), limit)
  } catch {
    return headerOnly(reply, RCODE.SERVFAIL, true)
  }
}

/** A response of just a header (FORMERR, SERVFAIL), for a message we could not or would not decode. */
function headerOnly(message: Buffer, rcode: number, truncated = false): Buffer {
  const out = Buffer.alloc(12)
  out.writeUInt16BE(message.readUInt16BE(0), 0)
  const opcode = message.length >= 3 ? (message[2] >> 3) & 0xf : 0
  const rd = message.length >= 3 ? message[2] & 0x01 : 0
  out[2] = 0x80 | (opcode << 3) | rd | (truncated ? 0x02 : 0)
  out[3] = rcode & 0xf
  return out
}

function parseRecursor(text: string): Recursor {
  const trimmed = text.trim()
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed)
  let host: string
  let port = 53
  if (bracketed) {
    host = bracketed[1]
    if (bracketed[2]) port = Number(bracketed[2])
  } else if (net.isIPv6(trimmed)) {
    host = trimmed
  } else {
    const [name, portText, ...rest] = trimmed.split(':')
    if (rest.length > 0) throw new Error(`recursor '${text}' is not ip[:port]`)
    host = name
    if (portText !== undefined) port = Number(portText)
  }
  const family = net.isIP(host)
  if (family === 0) throw new Error(`recursor '${text}' must be an IP address (with an optional :port)`)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`recursor '${text}' has an invalid port`)
  return { host, port, family: family as 4 | 6 }
}
