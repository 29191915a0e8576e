import dgram from 'node:dgram'
import net from 'node:net'
import dnsPacket, { type DecodedPacket, type Packet, type RecordType } from 'dns-packet'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { instanceRecord, keyOf } from '../../../test/support/instance-fixtures.js'
import { ViewState } from '../view/view-state.js'
import { RCODE } from './answer.js'
import { startDnsServer, type DnsServer, type DnsServerOptions } from './server.js'

/** Unit tests of the wire adapter over loopback sockets, with dns-packet as the client. */
const state = new ViewState()
for (let i = 0; i < 60; i += 1) {
  const record = instanceRecord({ id: `big-${i}`, service: 'big', address: `10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8000 + i })
  state.putInstance({ key: keyOf(record), record, modRevision: String(i + 1), createRevision: String(i + 1), lease: '1' })
}
const web = instanceRecord({ id: 'web-1', service: 'web', address: '10.0.0.1', port: 8080 })
state.putInstance({ key: keyOf(web), record: web, modRevision: '100', createRevision: '100', lease: '1' })
state.setRevision('100')
state.commit()

const servers: DnsServer[] = []
const sockets: dgram.Socket[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
  for (const socket of sockets.splice(0)) socket.close()
})

async function start(options: DnsServerOptions = {}): Promise<DnsServer> {
  const server = await startDnsServer(state, { port: 0, ...options })
  servers.push(server)
  return server
}

function query(name: string, type: string, extra: Partial<Packet> = {}): Packet {
  return { type: 'query', id: 777, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as RecordType }], ...extra }
}

/** Sends raw bytes over UDP and resolves with the reply, or undefined after `waitMs`. */
function udpRaw(port: number, bytes: Buffer, waitMs = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4')
    const timer = setTimeout(() => done(undefined), waitMs)
    const done = (reply: Buffer | undefined): void => {
      clearTimeout(timer)
      socket.close()
      resolve(reply)
    }
    socket.on('message', (reply) => done(reply))
    socket.send(bytes, port, '127.0.0.1')
  })
}

async function udpAsk(port: number, packet: Packet): Promise<DecodedPacket> {
  const reply = await udpRaw(port, dnsPacket.encode(packet))
  if (!reply) throw new Error('no UDP reply')
  return dnsPacket.decode(reply)
}

/** Opens one TCP connection, writes `bytes` (optionally one byte at a time), and collects `count` framed replies. */
function tcpExchange(port: number, bytes: Buffer, count: number, dribble = false): Promise<DecodedPacket[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let buffer = Buffer.alloc(0)
    const replies: DecodedPacket[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`got ${replies.length} of ${count} TCP replies`))
    }, 10_000)
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        replies.push(dnsPacket.decode(buffer.subarray(2, 2 + buffer.readUInt16BE(0))))
        buffer = buffer.subarray(2 + buffer.readUInt16BE(0))
      }
      if (replies.length === count) {
        clearTimeout(timer)
        socket.end()
        resolve(replies)
      }
    })
    socket.on('error', reject)
    socket.on('connect', async () => {
      if (!dribble) return void socket.write(bytes)
      for (const byte of bytes) {
        socket.write(Buffer.from([byte]))
        await new Promise((r) => setImmediate(r))
      }
    })
  })
}

const rcodeOf = (packet: Packet): number => (packet.flags ?? 0) & 0xf

describe('startDnsServer: UDP and TCP', () => {
  it('Given port 0, When started, Then UDP and TCP are bound on the same free port and answer', async () => {
    const server = await start()
    expect(server.udpPort).toBeGreaterThan(0)
    expect(server.tcpPort).toBe(server.udpPort)
    const reply = await udpAsk(server.udpPort, query('web.service.discovery', 'A'))
    expect(reply).toMatchObject({ id: 777, flag_aa: true, flag_qr: true, flag_rd: true, flag_tc: false })
    expect(reply.answers).toMatchObject([{ type: 'A', data: '10.0.0.1', ttl: 5 }])
  })

  it('Given one TCP connection, When several framed queries are sent at once and byte by byte, Then each gets its framed answer', async () => {
    const server = await start()
    const frames = Buffer.concat([dnsPacket.streamEncode({ ...query('web.service.discovery', 'A'), id: 1 }), dnsPacket.streamEncode({ ...query('nosuch.service.discovery', 'A'), id: 2 })])
    for (const dribble of [false, true]) {
      const replies = await tcpExchange(server.tcpPort, frames, 2, dribble)
      expect(replies.map((r) => [r.id, rcodeOf(r)]).sort()).toEqual([[1, RCODE.NOERROR], [2, RCODE.NXDOMAIN]])
    }
  })

  it('Given 60 instances, When A is asked over UDP without EDNS, Then it fits 512 bytes with TC set; with EDNS 4096 or over TCP it is complete', async () => {
    const server = await start()
    const raw = await udpRaw(server.udpPort, dnsPacket.encode(query('big.service.discovery', 'A')))
    expect(raw!.length).toBeLessThanOrEqual(512)
    const small = dnsPacket.decode(raw!)
    expect(small.flag_tc).toBe(true)
    expect(small.answers!.length).toBeGreaterThan(0)
    expect(small.answers!.length).toBeLessThan(60)
    const opt = { type: 'OPT' as const, name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }
    const edns = await udpAsk(server.udpPort, query('big.service.discovery', 'A', { additionals: [opt] }))
    expect(edns.flag_tc).toBe(false)
    expect(edns.answers).toHaveLength(60)
    const [full] = await tcpExchange(server.tcpPort, dnsPacket.streamEncode(query('big.service.discovery', 'A')), 1)
    expect(full.flag_tc).toBe(false)
    expect(full.answers).toHaveLength(60)
  })

  it('Given a truncated SRV answer, When it is cut, Then the additional section holds exactly the targets of the SRV records kept', async () => {
    const server = await start()
    const reply = await udpAsk(server.udpPort, query('big.service.discovery', 'SRV'))
    expect(reply.flag_tc).toBe(true)
    const targets = reply.answers!.map((rr) => (rr.type === 'SRV' ? rr.data.target : '')).sort()
    expect(reply.additionals!.map((rr) => rr.name).sort()).toEqual(targets)
  })
})

describe('startDnsServer: malformed and hostile input', () => {
  it.each([
    ['a header-only garbage packet', Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), RCODE.FORMERR],
    ['a short packet with an id', Buffer.from([0x12, 0x34, 0x01]), RCODE.FORMERR],
    ['two questions', Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0])]), RCODE.FORMERR],
    ['answer records in a query', Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 5, 0, 0, 0, 0]), RCODE.FORMERR],
  ])('Given %s, When sent over UDP, Then FORMERR with the id comes back', async (_what, bytes, rcode) => {
    const server = await start()
    const reply = await udpRaw(server.udpPort, bytes)
    expect(reply).toBeDefined()
    expect(reply!.readUInt16BE(0)).toBe(0x1234)
    expect(reply![2] & 0x80).toBe(0x80)
    expect(reply![3] & 0xf).toBe(rcode)
  })

  it.each([
    ['one byte', Buffer.from([0x12])],
    ['a response (QR set)', dnsPacket.encode({ ...query('web.service.discovery', 'A'), type: 'response' })],
  ])('Given %s, When sent over UDP, Then nothing comes back and the server keeps answering', async (_what, bytes) => {
    const server = await start()
    expect(await udpRaw(server.udpPort, bytes, 500)).toBeUndefined()
    expect((await udpAsk(server.udpPort, query('web.service.discovery', 'A'))).answers).toHaveLength(1)
  })

  it('Given a compression-pointer loop in the question, When sent, Then FORMERR and no hang', async () => {
    const server = await start()
    const header = Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
    const loop = Buffer.from([0xc0, 12, 0, 1, 0, 1]) // a name pointing at itself
    const reply = await udpRaw(server.udpPort, Buffer.concat([header, loop]))
    expect(reply![3] & 0xf).toBe(RCODE.FORMERR)
  })

  it('Given an idle TCP connection, When the idle timeout passes, Then the server closes it', async () => {
    const server = await start({ tcpIdleTimeoutMs: 200 })
    const socket = net.connect(server.tcpPort, '127.0.0.1')
    const closed = await new Promise<boolean>((resolve) => {
      socket.on('close', () => resolve(true))
      socket.on('error', () => undefined)
      setTimeout(() => resolve(false), 10_000)
    })
    expect(closed).toBe(true)
  })

  it('Given the connection limit is reached, When another client connects, Then it is closed at once', async () => {
    const server = await start({ maxTcpConnections: 1 })
    const first = net.connect(server.tcpPort, '127.0.0.1')
    await new Promise((resolve) => first.on('connect', resolve))
    await new Promise((resolve) => setTimeout(resolve, 100))
    const second = net.connect(server.tcpPort, '127.0.0.1')
    const closed = await new Promise<boolean>((resolve) => {
      second.on('close', () => resolve(true))
      second.on('error', () => undefined)
      setTimeout(() => resolve(false), 10_000)
    })
    first.destroy()
    expect(closed).toBe(true)
  })

  it('Given open TCP connections, When the server is closed, Then they are closed too and the port is released', async () => {
    const server = await startDnsServer(state, { port: 0 })
    const socket = net.connect(server.tcpPort, '127.0.0.1')
    await new Promise((resolve) => socket.on('connect', resolve))
    const closed = new Promise((resolve) => socket.on('close', resolve))
    await server.close()
    await closed
    const again = await startDnsServer(state, { port: server.udpPort })
    await again.close()
  })
})

describe('startDnsServer: forwarding', () => {
  /** A fake recursor: answers every query for `example.test` with 192.0.2.7, or stays silent. */
  async function fakeRecursor(silent = false, rcode = 0): Promise<number> {
    const socket = dgram.createSocket('udp4')
    sockets.push(socket)
    socket.on('message', (message, rinfo) => {
      if (silent) return
      const q = dnsPacket.decode(message)
      const reply = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | rcode, questions: q.questions, answers: rcode ? [] : [{ type: 'A', name: q.questions![0].name, ttl: 60, data: '192.0.2.7' }] })
      socket.send(reply, rinfo.port, rinfo.address)
    })
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
    return socket.address().port
  }

  it('Given no recursor, When a name outside the domain is asked, Then REFUSED', async () => {
    const server = await start()
    expect(rcodeOf(await udpAsk(server.udpPort, query('example.test', 'A')))).toBe(RCODE.REFUSED)
  })

  it('Given a silent recursor, then a REFUSING one, then a working one, When a name outside the domain is asked, Then the working one answers with the client id', async () => {
    const silent = await fakeRecursor(true)
    const refusing = await fakeRecursor(false, RCODE.REFUSED)
    const working = await fakeRecursor()
    const server = await start({ recursors: [`127.0.0.1:${silent}`, `127.0.0.1:${refusing}`, `127.0.0.1:${working}`], recursorTimeoutMs: 300 })
    const reply = await udpAsk(server.udpPort, query('example.test', 'A'))
    expect(reply.id).toBe(777)
    expect(rcodeOf(reply)).toBe(RCODE.NOERROR)
    expect(reply.answers).toMatchObject([{ type: 'A', data: '192.0.2.7' }])
    // Our own domain is never forwarded
    expect((await udpAsk(server.udpPort, query('web.service.discovery', 'A'))).answers).toMatchObject([{ data: '10.0.0.1' }])
  })

  it('Given only silent recursors, When a name outside the domain is asked, Then SERVFAIL with recursion available', async () => {
    const silent = await fakeRecursor(true)
    const server = await start({ recursors: [`127.0.0.1:${silent}`], recursorTimeoutMs: 200 })
    const reply = await udpAsk(server.udpPort, query('example.test', 'A'))
    expect(rcodeOf(reply)).toBe(RCODE.SERVFAIL)
    expect(reply.flag_ra).toBe(true)
  })

  it.each([['example.com:53:1'], ['dns.example:53'], ['127.0.0.1:99999']])('Given recursor %j, When starting, Then it is rejected', async (recursor) => {
    await expect(startDnsServer(state, { port: 0, recursors: [recursor] })).rejects.toThrow(/recursor/)
  })
})

describe('startDnsServer: port in use', () => {
  let blocker: net.Server
  let port: number
  beforeAll(async () => {
    blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()))
    port = (blocker.address() as net.AddressInfo).port
  })
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())))

  it('Given a fixed port whose TCP side is taken, When starting, Then it fails with EADDRINUSE and leaves nothing bound', async () => {
    await expect(startDnsServer(state, { port })).rejects.toMatchObject({ code: 'EADDRINUSE' })
    // The UDP side was released: a plain UDP bind on it works
    const probe = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject)
      probe.bind(port, '127.0.0.1', () => resolve())
    })
    probe.close()
  })
})

describe('startDnsServer: answers kept per snapshot', () => {
  it('Given the same question asked 20 times with different ids, When answered, Then each reply carries its own id and the answer of the view', async () => {
    const server = await start()
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => udpAsk(server.udpPort, query('web.service.discovery', 'A', { id: 1000 + i }))))
    expect(replies.map((r) => r.id)).toEqual(Array.from({ length: 20 }, (_, i) => 1000 + i))
    for (const reply of replies) expect(reply.answers?.map(addressOf)).toEqual(['10.0.0.1'])
  })

  it('Given an answer already sent, When the view changes, Then the next answer follows the change (nothing stale is re-sent)', async () => {
    const view = new ViewState()
    const one = instanceRecord({ id: 'api-1', service: 'api', address: '10.9.0.1', port: 80 })
    view.putInstance({ key: keyOf(one), record: one, modRevision: '1', createRevision: '1', lease: '1' })
    view.setRevision('1')
    view.commit()
    const server = await startDnsServer(view, { port: 0 })
    servers.push(server)
    for (let i = 0; i < 10; i++) expect((await udpAsk(server.udpPort, query('api.service.discovery', 'A'))).answers?.map(addressOf)).toEqual(['10.9.0.1'])
    const two = instanceRecord({ id: 'api-2', service: 'api', address: '10.9.0.2', port: 80 })
    view.putInstance({ key: keyOf(two), record: two, modRevision: '2', createRevision: '2', lease: '1' })
    view.setRevision('2')
    view.commit()
    const after = await udpAsk(server.udpPort, query('api.service.discovery', 'A'))
    expect(after.answers?.map(addressOf).sort()).toEqual(['10.9.0.1', '10.9.0.2'])
  })

  it('Given several instances, When one question is asked many times, Then more than one order comes back (answers still rotate)', async () => {
    const server = await start()
    const orders = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const reply = await udpAsk(server.udpPort, query('big.service.discovery', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 }] as Packet['additionals'] }))
      orders.add((reply.answers ?? []).map(addressOf).join(','))
    }
    expect(orders.size).toBeGreaterThan(1)
  })
})

/** An A/AAAA answer's address ('' for any other record). */
function addressOf(rr: { type: string; data?: unknown }): string {
  return rr.type === 'A' || rr.type === 'AAAA' ? String(rr.data) : ''
}
