import dnsPacket, { type Answer, type Packet, type RecordType } from 'dns-packet'
import { describe, expect, it } from 'vitest'
import { instanceRecord, keyOf } from '../../../test/support/instance-fixtures.js'
import type { HealthStatus, InstanceRecord, NodeRecord } from '../model.js'
import { ViewState } from '../view/view-state.js'
import type { ViewSnapshot } from '../view/types.js'
import { answerDnsQuery, normaliseDomain, RCODE, type DnsAnswerOptions } from './answer.js'

const DOMAIN = 'discovery.'
const BASE: DnsAnswerOptions = { domain: DOMAIN, ttlSeconds: 5, datacenter: 'dc1', random: () => 0 }

function inst(id: string, service: string, address: string, port: number, status: HealthStatus = 'passing', tags: string[] = [], node = 'node-a'): InstanceRecord {
  return instanceRecord({ id, service, address, port, status, tags, node })
}

function nodeRecord(node: string, address?: string): NodeRecord {
  return { schema: 1, node, version: '0.1.0', pid: 1, hostname: node, startedAt: '2024-05-01T12:00:00.000Z', ttl: 10, lease: '1', ...(address ? { address } : {}) }
}

/** The registry every test reads, unless it builds its own. */
function view(records: InstanceRecord[], nodes: NodeRecord[] = [], revision = 42): ViewSnapshot {
  const state = new ViewState()
  records.forEach((record, i) => state.putInstance({ key: keyOf(record), record, modRevision: String(i + 1), createRevision: String(i + 1), lease: '1' }))
  for (const node of nodes) state.putNode({ key: `/discovery/nodes/${node.node}`, record: node, modRevision: '1', createRevision: '1', lease: '1' })
  state.setRevision(String(revision))
  state.commit()
  return state.snapshot()
}

const REGISTRY = view(
  [
    inst('web-1', 'web', '10.0.0.1', 8080, 'passing', ['primary', 'Blue']),
    inst('web-2', 'web', '10.0.0.2', 8081, 'warning', ['udp']),
    inst('web-3', 'web', '10.0.0.3', 8082, 'critical', ['primary']),
    inst('web-4', 'web', '10.0.0.4', 8083, 'unknown'),
    inst('web-5', 'web', '10.0.0.1', 9090, 'passing', [], 'node-b'),
    inst('web6-1', 'web6', 'fd00::1', 80),
    inst('db-1', 'db', '10.0.1.1', 5432, 'critical'),
    inst('db-2', 'db', '10.0.1.2', 5432, 'unknown', ['primary']),
    inst('api-1', 'api', '10.0.2.1', 80, 'passing', ['billing', 'x']),
    inst('bapi-1', 'billing.api', '10.0.3.1', 80, 'passing', ['v2']),
    inst('ext-1', 'ext', 'db.example.com', 5432),
    inst('mixed-1', 'mixed', 'db.example.com', 5432),
    inst('mixed-2', 'mixed', '10.0.4.1', 5432),
  ],
  [nodeRecord('node-a', '192.168.1.10'), nodeRecord('node-b', 'fd00::b'), nodeRecord('node-c')],
)

function query(name: string, type: string, extra: Partial<Packet> = {}): Packet {
  return { type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as RecordType, class: 'IN' }], ...extra }
}

/** Answers, and checks the response survives the wire (encode → decode) as the server sends it. */
function ask(name: string, type: string, options: Partial<DnsAnswerOptions> = {}, snapshot = REGISTRY, extra: Partial<Packet> = {}) {
  const { response, forward } = answerDnsQuery(snapshot, query(name, type, extra), { ...BASE, ...options })
  const wire = dnsPacket.decode(dnsPacket.encode(response))
  return { wire, forward, rcode: (wire.flags ?? 0) & 0xf, answers: wire.answers ?? [], authorities: wire.authorities ?? [], additionals: wire.additionals ?? [] }
}

const data = (records: Answer[]): unknown[] => records.map((rr) => ('data' in rr ? rr.data : undefined))
const sorted = (values: unknown[]): unknown[] => [...values].map((v) => JSON.stringify(v)).sort()

describe('answerDnsQuery: service lookups', () => {
  it.each([
    // [name, type, expected rcode, expected answer data (any order)]
    ['web.service.discovery', 'A', RCODE.NOERROR, ['10.0.0.1', '10.0.0.2']],
    ['web.service.dc1.discovery', 'A', RCODE.NOERROR, ['10.0.0.1', '10.0.0.2']],
    ['WEB.Service.DISCOVERY.', 'A', RCODE.NOERROR, ['10.0.0.1', '10.0.0.2']],
    ['web.service.dc2.discovery', 'A', RCODE.NXDOMAIN, []],
    ['web.service.x.dc1.discovery', 'A', RCODE.NXDOMAIN, []],
    ['web6.service.discovery', 'AAAA', RCODE.NOERROR, ['fd00::1']],
    ['web6.service.discovery', 'A', RCODE.NOERROR, []],
    ['web.service.discovery', 'AAAA', RCODE.NOERROR, []],
    ['web.service.discovery', 'TXT', RCODE.NOERROR, []],
    ['primary.web.service.discovery', 'A', RCODE.NOERROR, ['10.0.0.1']],
    ['blue.web.service.discovery', 'A', RCODE.NOERROR, ['10.0.0.1']],
    ['nosuchtag.web.service.discovery', 'A', RCODE.NXDOMAIN, []],
    ['nosuch.service.discovery', 'A', RCODE.NXDOMAIN, []],
    ['db.service.discovery', 'A', RCODE.NOERROR, []],
    ['primary.db.service.discovery', 'A', RCODE.NOERROR, []],
    ['billing.api.service.discovery', 'A', RCODE.NOERROR, ['10.0.3.1']],
    ['v2.billing.api.service.discovery', 'A', RCODE.NOERROR, ['10.0.3.1']],
    ['x.api.service.discovery', 'A', RCODE.NOERROR, ['10.0.2.1']],
    ['_web._tcp.service.discovery', 'A', RCODE.NOERROR, ['10.0.0.1', '10.0.0.2']],
    ['_web._udp.service.discovery', 'A', RCODE.NOERROR, ['10.0.0.2']],
    ['_api._billing.service.discovery', 'A', RCODE.NOERROR, ['10.0.2.1']],
    ['_billing.api._tcp.service.discovery', 'A', RCODE.NOERROR, ['10.0.3.1']],
    ['_web._nosuchtag.service.discovery', 'A', RCODE.NXDOMAIN, []],
    ['_web._tcp.discovery', 'A', RCODE.NOERROR, ['10.0.0.1', '10.0.0.2']],
    ['_nosuch._tcp.discovery', 'A', RCODE.NXDOMAIN, []],
    ['_web._tcp.dc2.discovery', 'A', RCODE.NXDOMAIN, []],
    ['service.discovery', 'A', RCODE.NOERROR, []],
    ['service.dc1.discovery', 'A', RCODE.NOERROR, []],
    ['dc1.discovery', 'A', RCODE.NOERROR, []],
    ['whatever.discovery', 'A', RCODE.NXDOMAIN, []],
    ['web.services.discovery', 'A', RCODE.NXDOMAIN, []],
  ])('Given the registry, When %s %s is asked, Then rcode %i with %j', (name, type, rcode, expected) => {
    const result = ask(name, type)
    expect(result.rcode).toBe(rcode)
    expect(result.wire.flags! & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy()
    expect(sorted(data(result.answers))).toEqual(sorted(expected))
    // Every answer owns the asked name, verbatim (case kept, as clients compare it)
    for (const rr of result.answers) expect(rr.name).toBe(name.replace(/\.$/, ''))
    if (expected.length === 0) {
      // Negative answers (NXDOMAIN and NODATA) carry the SOA whose minimum is the negative TTL
      expect(result.authorities).toHaveLength(1)
      expect(result.authorities[0]).toMatchObject({ type: 'SOA', name: 'discovery', ttl: 5, data: { minimum: 5, mname: 'ns.discovery', rname: 'hostmaster.discovery', serial: 42 } })
    } else {
      expect(result.authorities).toEqual([])
      for (const rr of result.answers) expect(rr).toMatchObject({ ttl: 5, class: 'IN' })
    }
  })

  it('Given only-passing, When web is asked, Then the warning instance is left out', () => {
    expect(sorted(data(ask('web.service.discovery', 'A', { onlyPassing: true }).answers))).toEqual(sorted(['10.0.0.1']))
    expect(ask('_web._udp.service.discovery', 'A', { onlyPassing: true })).toMatchObject({ rcode: RCODE.NOERROR, answers: [] })
  })

  it('Given two instances on one address with different ports, When SRV is asked, Then one SRV each and one glue record for the shared target', () => {
    const result = ask('web.service.discovery', 'SRV')
    expect(result.rcode).toBe(RCODE.NOERROR)
    expect(sorted(data(result.answers))).toEqual(sorted([
      { priority: 1, weight: 1, port: 8080, target: '0a000001.addr.dc1.discovery' },
      { priority: 1, weight: 1, port: 9090, target: '0a000001.addr.dc1.discovery' },
      { priority: 1, weight: 1, port: 8081, target: '0a000002.addr.dc1.discovery' },
    ]))
    expect(sorted(result.additionals.map((rr) => [rr.name, rr.type, 'data' in rr ? rr.data : undefined]))).toEqual(sorted([
      ['0a000001.addr.dc1.discovery', 'A', '10.0.0.1'],
      ['0a000002.addr.dc1.discovery', 'A', '10.0.0.2'],
    ]))
  })

  it.each([
    ['_web._tcp.service.discovery', [8080, 8081, 9090]],
    ['_web._tcp.discovery', [8080, 8081, 9090]],
    ['_web._tcp.dc1.discovery', [8080, 8081, 9090]],
    ['_web._primary.service.discovery', [8080]],
    ['primary.web.service.dc1.discovery', [8080]],
  ])('Given RFC 2782 and tag forms, When %s SRV is asked, Then the ports are %j', (name, ports) => {
    const result = ask(name, 'SRV')
    expect(result.rcode).toBe(RCODE.NOERROR)
    expect(result.answers.map((rr) => (rr.type === 'SRV' ? rr.data.port : 0)).sort()).toEqual(ports)
  })

  it('Given an IPv6 instance, When SRV is asked, Then its target is the 32-hex-digit addr name and it resolves back', () => {
    const srv = ask('web6.service.discovery', 'SRV')
    expect(data(srv.answers)).toEqual([{ priority: 1, weight: 1, port: 80, target: 'fd000000000000000000000000000001.addr.dc1.discovery' }])
    expect(srv.additionals).toMatchObject([{ type: 'AAAA', name: 'fd000000000000000000000000000001.addr.dc1.discovery', data: 'fd00::1' }])
    expect(data(ask('fd000000000000000000000000000001.addr.dc1.discovery', 'AAAA').answers)).toEqual(['fd00::1'])
  })

  it.each([
    ['0a000001.addr.dc1.discovery', 'A', RCODE.NOERROR, ['10.0.0.1']],
    ['0a000001.addr.discovery', 'A', RCODE.NOERROR, ['10.0.0.1']],
    ['0a000001.addr.discovery', 'AAAA', RCODE.NOERROR, []],
    ['0a00000g.addr.discovery', 'A', RCODE.NXDOMAIN, []],
    ['x.0a000001.addr.discovery', 'A', RCODE.NXDOMAIN, []],
  ])('Given an SRV target name, When %s %s is asked, Then rcode %i with %j', (name, type, rcode, expected) => {
    const result = ask(name, type)
    expect(result.rcode).toBe(rcode)
    expect(data(result.answers)).toEqual(expected)
  })

  it('Given an instance registered with a host name, When A and SRV are asked, Then A is a CNAME to it and the SRV target is the name, without glue', () => {
    expect(ask('ext.service.discovery', 'A').answers).toMatchObject([{ type: 'CNAME', name: 'ext.service.discovery', data: 'db.example.com' }])
    const srv = ask('ext.service.discovery', 'SRV')
    expect(data(srv.answers)).toEqual([{ priority: 1, weight: 1, port: 5432, target: 'db.example.com' }])
    expect(srv.additionals).toEqual([])
    // With an address of the asked family as well, the CNAME is left out (a name holds a CNAME or other data, never both)
    expect(ask('mixed.service.discovery', 'A').answers).toMatchObject([{ type: 'A', data: '10.0.4.1' }])
  })

  it('Given unusable addresses, When asked, Then those instances are skipped rather than breaking the response', () => {
    const snapshot = view([inst('bad-1', 'bad', 'not a host!', 80), inst('bad-2', 'bad', 'fe80::1%eth0', 80), inst('ok-1', 'bad', '10.9.9.9', 80)])
    expect(data(ask('bad.service.discovery', 'A', {}, snapshot).answers)).toEqual(['10.9.9.9'])
    expect(data(ask('bad.service.discovery', 'SRV', {}, snapshot).answers)).toHaveLength(1)
  })

  it('Given a random source, When asked twice with different draws, Then the order follows it and the set stays the same', () => {
    const many = view(Array.from({ length: 6 }, (_, i) => inst(`m-${i}`, 'many', `10.1.0.${i + 1}`, 80)))
    const first = data(ask('many.service.discovery', 'A', { random: () => 0 }, many).answers)
    const last = data(ask('many.service.discovery', 'A', { random: () => 0.999 }, many).answers)
    expect(first).not.toEqual(last)
    expect(sorted(first)).toEqual(sorted(last))
    // Math.random by default: still the whole set
    expect(sorted(data(ask('many.service.discovery', 'A', { random: undefined }, many).answers))).toEqual(sorted(first))
  })

  it('Given an answer limit, When a service with more instances is asked, Then at most that many records come back (A and SRV)', () => {
    const many = view(Array.from({ length: 6 }, (_, i) => inst(`m-${i}`, 'many', `10.1.0.${i + 1}`, 80)))
    expect(ask('many.service.discovery', 'A', { answerLimit: 3 }, many).answers).toHaveLength(3)
    const srv = ask('many.service.discovery', 'SRV', { answerLimit: 2 }, many)
    expect(srv.answers).toHaveLength(2)
    expect(srv.additionals).toHaveLength(2)
  })

  it('Given a query and a snapshot, When answered, Then neither is modified', () => {
    const q = query('web.service.discovery', 'SRV')
    const before = JSON.stringify(q)
    const instancesBefore = REGISTRY.services.get('web')!.map((entry) => entry.record.id)
    answerDnsQuery(REGISTRY, q, { ...BASE, random: () => 0.5 })
    expect(JSON.stringify(q)).toBe(before)
    expect(REGISTRY.services.get('web')!.map((entry) => entry.record.id)).toEqual(instancesBefore)
  })
})

describe('answerDnsQuery: nodes and the apex', () => {
  it.each([
    ['node-a.node.discovery', 'A', RCODE.NOERROR, ['192.168.1.10']],
    ['NODE-A.node.dc1.discovery', 'A', RCODE.NOERROR, ['192.168.1.10']],
    ['node-a.node.discovery', 'AAAA', RCODE.NOERROR, []],
    ['node-b.node.discovery', 'AAAA', RCODE.NOERROR, ['fd00::b']],
    ['node-c.node.discovery', 'A', RCODE.NOERROR, []],
    ['node-z.node.discovery', 'A', RCODE.NXDOMAIN, []],
    ['node.discovery', 'A', RCODE.NOERROR, []],
  ])('Given nodes, When %s %s is asked, Then rcode %i with %j', (name, type, rcode, expected) => {
    const result = ask(name, type)
    expect(result.rcode).toBe(rcode)
    expect(data(result.answers)).toEqual(expected)
  })

  it('Given the apex, When SOA is asked, Then the SOA is the answer', () => {
    const result = ask('discovery', 'SOA', { negativeTtlSeconds: 2 })
    expect(result.rcode).toBe(RCODE.NOERROR)
    expect(result.answers).toMatchObject([{ type: 'SOA', name: 'discovery', ttl: 2, data: { mname: 'ns.discovery', minimum: 2, serial: 42 } }])
  })

  it('Given nodes with addresses, When NS is asked at the apex, Then they are the name servers, with glue', () => {
    const result = ask('discovery', 'NS')
    expect(sorted(data(result.answers))).toEqual(sorted(['node-a.node.dc1.discovery', 'node-b.node.dc1.discovery']))
    expect(sorted(result.additionals.map((rr) => [rr.name, 'data' in rr ? rr.data : '']))).toEqual(sorted([['node-a.node.dc1.discovery', '192.168.1.10'], ['node-b.node.dc1.discovery', 'fd00::b']]))
  })

  it('Given a name below the apex, When SOA is asked, Then it is NODATA with the SOA in authority (the SOA lives at the apex)', () => {
    const result = ask('web.service.discovery', 'SOA')
    expect(result).toMatchObject({ rcode: RCODE.NOERROR, answers: [], authorities: [{ type: 'SOA' }] })
  })

  it('Given another domain than the default, When asked, Then names are answered under it', () => {
    expect(data(ask('web.service.consul', 'A', { domain: normaliseDomain('Consul') }).answers)).toHaveLength(2)
    expect(ask('web.service.discovery', 'A', { domain: 'consul.' }).rcode).toBe(RCODE.REFUSED)
  })
})

describe('answerDnsQuery: outside the domain and bad queries', () => {
  it('Given no recursor, When a name outside the domain is asked, Then REFUSED, not authoritative', () => {
    const result = ask('example.test', 'A')
    expect(result).toMatchObject({ rcode: RCODE.REFUSED, forward: false, answers: [] })
    expect(result.wire.flags! & dnsPacket.AUTHORITATIVE_ANSWER).toBe(0)
    expect(result.wire.flags! & dnsPacket.RECURSION_AVAILABLE).toBe(0)
    // A name that merely ends like the domain is outside it
    expect(ask('notdiscovery', 'A').rcode).toBe(RCODE.REFUSED)
  })

  it('Given a recursor, When a name outside the domain is asked, Then it is to be forwarded (SERVFAIL if nobody answers) and recursion is available', () => {
    const result = ask('example.test', 'A', { hasRecursor: true })
    expect(result).toMatchObject({ forward: true, rcode: RCODE.SERVFAIL })
    expect(result.wire.flags! & dnsPacket.RECURSION_AVAILABLE).toBeTruthy()
    expect(ask('web.service.discovery', 'A', { hasRecursor: true }).forward).toBe(false)
  })

  it.each([
    ['two questions', { questions: [{ name: 'web.service.discovery', type: 'A' as const }, { name: 'db.service.discovery', type: 'A' as const }] }, RCODE.FORMERR],
    ['no question', { questions: [] }, RCODE.FORMERR],
    ['opcode STATUS', { flags: 2 << 11 }, RCODE.NOTIMP],
    ['opcode NOTIFY', { flags: 4 << 11 }, RCODE.NOTIMP],
  ])('Given %s, When answered, Then the rcode is %#', (_what, extra, rcode) => {
    const { response } = answerDnsQuery(REGISTRY, { ...query('web.service.discovery', 'A'), ...extra } as Packet, BASE)
    const wire = dnsPacket.decode(dnsPacket.encode(response))
    expect((wire.flags ?? 0) & 0xf).toBe(rcode)
    expect(wire.id).toBe(4242)
    expect(wire.answers).toEqual([])
  })

  it.each([
    ['AXFR', RCODE.NOTIMP],
    ['IXFR', RCODE.NOTIMP],
  ])('Given a zone transfer (%s), When answered, Then NOTIMP', (type, rcode) => {
    expect(ask('discovery', type).rcode).toBe(rcode)
  })

  it('Given a non-IN class, When answered, Then REFUSED', () => {
    const { response } = answerDnsQuery(REGISTRY, { ...query('web.service.discovery', 'A'), questions: [{ name: 'web.service.discovery', type: 'A', class: 'CH' }] }, BASE)
    expect((response.flags ?? 0) & 0xf).toBe(RCODE.REFUSED)
  })

  it('Given EDNS0 in the query, When answered, Then an OPT comes back with our payload size; a version other than 0 gets BADVERS', () => {
    const opt: Answer = { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }
    const ok = ask('web.service.discovery', 'A', {}, REGISTRY, { additionals: [opt] })
    expect(ok.additionals).toMatchObject([{ type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0 }])
    expect(ok.answers).toHaveLength(2)
    const bad = ask('web.service.discovery', 'A', {}, REGISTRY, { additionals: [{ ...opt, ednsVersion: 1 }] })
    expect(bad.additionals).toMatchObject([{ type: 'OPT', extendedRcode: 1 }])
    expect(bad.answers).toEqual([])
    expect(ask('web.service.discovery', 'A', {}, REGISTRY, { additionals: [opt, opt] }).rcode).toBe(RCODE.FORMERR)
  })

  it.each([
    ['Discovery', 'discovery.'],
    ['.discovery.', 'discovery.'],
    ['my.Zone', 'my.zone.'],
  ])('Given domain %j, When normalised, Then %j', (input, output) => {
    expect(normaliseDomain(input)).toBe(output)
  })

  it.each(['', '.', 'bad_label', 'a..b'])('Given domain %j, When normalised, Then it is rejected', (input) => {
    expect(() => normaliseDomain(input)).toThrow(/DNS domain/)
  })
})
