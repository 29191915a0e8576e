import { describe, expect, it } from 'vitest'
import { instanceRecord } from '../../../test/support/instance-fixtures.js'
import type { InstanceRecord, NodeRecord } from '../model.js'
import type { ViewSnapshot } from '../view/types.js'
import { ViewState } from '../view/view-state.js'
import {
  agentSelf,
  blockingWait,
  catalogDatacenters,
  catalogNode,
  catalogNodes,
  catalogService,
  catalogServices,
  consulIndex,
  consulStatus,
  DEFAULT_WAIT_MS,
  healthService,
  joinHostPort,
  MAX_WAIT_MS,
  mustWait,
  parseConsulQuery,
  parseGoDuration,
  prometheusHttpSd,
  sanitizeLabelName,
  serviceIndexOf,
  statusLeader,
  statusPeers,
  type ConsulQuery,
} from './consul.js'

const OPTIONS = { datacenter: 'dc1', node: 'node-a', version: '0.2.0' }
const q = (text = ''): ConsulQuery => parseConsulQuery(new URLSearchParams(text))

function nodeRecord(node: string, address?: string): NodeRecord {
  return { schema: 1, node, version: '0.2.0', pid: 1, hostname: node, startedAt: '2024-05-01T12:00:00.000Z', ttl: 10, lease: '7', ...(address ? { address } : {}) }
}

interface Put {
  record: InstanceRecord
  create: number
  mod?: number
}

/** A snapshot built through the real ViewState: instances with their revisions, nodes, leader, revision. */
function snapshotOf(puts: Put[], extra: { nodes?: NodeRecord[]; leader?: string; revision?: number; connected?: boolean; deleted?: Array<[string, number]> } = {}): ViewSnapshot {
  const view = new ViewState()
  for (const put of puts) {
    const key = `/d/services/${put.record.service}/${put.record.id}`
    view.putInstance({ key, record: put.record, createRevision: String(put.create), modRevision: String(put.mod ?? put.create), lease: '0' })
  }
  for (const [key, revision] of extra.deleted ?? []) view.deleteInstance(key, String(revision))
  for (const node of extra.nodes ?? []) view.putNode({ key: `/d/nodes/${node.node}`, record: node, createRevision: '2', modRevision: '3', lease: '7' })
  if (extra.leader) view.setLeader({ node: extra.leader, term: '1', since: '2024-05-01T12:00:00.000Z' })
  view.setRevision(String(extra.revision ?? 100))
  view.setConnected(extra.connected ?? true)
  view.commit()
  return view.snapshot()
}

const web1 = instanceRecord({ id: 'a:web-1', node: 'node-a', address: '10.0.0.1', port: 8080, tags: ['v1', 'blue'], meta: { team: 'pay', 'build.sha': 'abc' } })
const web2 = instanceRecord({ id: 'b:web-2', node: 'node-b', address: '10.0.0.2', port: 8081, tags: ['v1'], status: 'warning' })
const web3 = instanceRecord({ id: 'b:web-3', node: 'node-b', address: 'fd00::3', port: 8082, tags: [], status: 'critical' })
const web4 = instanceRecord({ id: 'c:web-4', node: 'node-c', address: '10.0.0.4', port: 8083, tags: ['v2'], status: 'unknown', check: { kind: 'http', target: 'http://x/', interval: 10_000, timeout: 5_000, failuresBeforeCritical: 3, successesBeforePassing: 1, initialDelay: 0 } })
const db1 = instanceRecord({ id: 'a:db-1', service: 'db', node: 'node-a', address: '10.0.0.1', port: 5432, tags: ['primary'] })
const ALL: Put[] = [
  { record: web1, create: 10, mod: 12 },
  { record: web2, create: 20 },
  { record: web3, create: 30 },
  { record: web4, create: 40, mod: 44 },
  { record: db1, create: 50 },
]
const NODES = [nodeRecord('node-a', '192.168.1.1'), nodeRecord('node-b')]

describe('catalogServices', () => {
  it('Given instances of two services, When listed, Then each maps to the sorted union of its tags, at the view revision', () => {
    // Given
    const snapshot = snapshotOf(ALL, { nodes: NODES, revision: 60 })
    // When
    const answer = catalogServices(snapshot, q(), OPTIONS)
    // Then
    expect(answer).toEqual({ status: 200, index: '60', body: { db: ['primary'], web: ['blue', 'v1', 'v2'] } })
  })

  it.each([
    ['another datacenter', 'dc=dc2', 500, 'No path to datacenter'],
    ['our datacenter', 'dc=dc1', 200, undefined],
    ['a filter expression', 'filter=ServiceName%3D%3Dweb', 400, /filter is not supported/],
    ['a consistent read while etcd is lost', 'consistent', 500, 'No cluster leader'],
  ])('Given %s, When asked, Then the status is Consul\'s', (_what, params, status, message) => {
    // Given a view that lost its etcd watch (only matters for `consistent`)
    const snapshot = snapshotOf(ALL, { connected: false })
    // When
    const answer = catalogServices(snapshot, q(params), OPTIONS)
    // Then
    expect(answer.status).toBe(status)
    if (message) expect(answer.body).toMatch(message)
  })

  it('Given a service named like an Object prototype key, When listed, Then it is a plain own key', () => {
    const snapshot = snapshotOf([{ record: instanceRecord({ id: 'p', service: '__proto__' }), create: 5 }])
    const body = catalogServices(snapshot, q(), OPTIONS).body as Record<string, unknown>
    expect(Object.keys(body)).toEqual(['__proto__'])
    expect(JSON.stringify(body)).toBe('{"__proto__":[]}')
  })
})

describe('catalogService', () => {
  it('Given one instance on a node with an advertised address, When asked, Then the entry has every field Consul returns', () => {
    // Given
    const snapshot = snapshotOf(ALL, { nodes: NODES })
    // When
    const answer = catalogService(snapshot, 'db', q(), OPTIONS)
    // Then
    expect(answer.status).toBe(200)
    expect(answer.index).toBe('50')
    expect(answer.body).toEqual([
      {
        ID: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
        Node: 'node-a',
        Address: '192.168.1.1',
        Datacenter: 'dc1',
        TaggedAddresses: { lan: '192.168.1.1', lan_ipv4: '192.168.1.1', wan: '192.168.1.1', wan_ipv4: '192.168.1.1' },
        NodeMeta: { 'consul-network-segment': '' },
        ServiceKind: '',
        ServiceID: 'a:db-1',
        ServiceName: 'db',
        ServiceTags: ['primary'],
        ServiceAddress: '10.0.0.1',
        ServiceTaggedAddresses: { lan_ipv4: { address: '10.0.0.1', port: 5432 } },
        ServiceWeights: { Passing: 1, Warning: 1 },
        ServiceMeta: {},
        ServicePort: 5432,
        ServiceSocketPath: '',
        ServiceEnableTagOverride: false,
        ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} },
        ServiceConnect: {},
        CreateIndex: 50,
        ModifyIndex: 50,
      },
    ])
  })

  it.each([
    ['no tag', '', ['a:web-1', 'b:web-2', 'b:web-3', 'c:web-4']],
    ['one tag', 'tag=v1', ['a:web-1', 'b:web-2']],
    ['two tags, all must match', 'tag=v1&tag=blue', ['a:web-1']],
    ['a tag nobody has', 'tag=nope', []],
    ['a node-meta pair every node has', 'node-meta=consul-network-segment:', ['a:web-1', 'b:web-2', 'b:web-3', 'c:web-4']],
    ['a node-meta pair no node has', 'node-meta=rack:r1', []],
  ])('Given web instances, When filtered by %s, Then only the matching ones come back (health ignored, as the catalog does)', (_what, params, ids) => {
    const answer = catalogService(snapshotOf(ALL, { nodes: NODES }), 'web', q(params), OPTIONS)
    expect((answer.body as Array<{ ServiceID: string }>).map((entry) => entry.ServiceID)).toEqual(ids)
  })

  it.each([
    ['an existing service', 'web', '44'],
    ['an unknown service', 'nope', '100'],
    ['a service whose last instance went', 'gone', '77'],
  ])('Given %s, When asked, Then the index is its last change (else the view revision)', (_what, name, index) => {
    // Given a service `gone` whose only instance was deleted at revision 77
    const gone = instanceRecord({ id: 'g', service: 'gone' })
    const snapshot = snapshotOf([...ALL, { record: gone, create: 70 }], { deleted: [['/d/services/gone/g', 77]], revision: 100 })
    // When
    const answer = catalogService(snapshot, name, q(), OPTIONS)
    // Then
    expect(answer.index).toBe(index)
    if (name !== 'web') expect(answer.body).toEqual([])
  })

  it('Given an instance on a node without a record, When asked, Then the node address falls back to the instance address', () => {
    const answer = catalogService(snapshotOf(ALL, { nodes: NODES }), 'web', q('tag=v2'), OPTIONS)
    expect(answer.body).toMatchObject([{ Node: 'node-c', Address: '10.0.0.4', ServiceAddress: '10.0.0.4' }])
  })
})

describe('healthService', () => {
  it.each([
    ['passing', 'passing', 'a:web-1'],
    ['warning', 'warning', 'b:web-2'],
    ['critical', 'critical', 'b:web-3'],
    ['unknown (not checked yet)', 'critical', 'c:web-4'],
  ])('Given an instance %s, When its health is asked, Then its service check says %s beside a passing serfHealth', (_status, consul, id) => {
    // Given
    const snapshot = snapshotOf(ALL, { nodes: NODES })
    // When
    const entries = healthService(snapshot, 'web', q(), OPTIONS).body as Array<{ Service: { ID: string }; Checks: Array<Record<string, unknown>> }>
    const entry = entries.find((candidate) => candidate.Service.ID === id)
    // Then
    expect(entry?.Checks).toHaveLength(2)
    expect(entry?.Checks[0]).toMatchObject({ CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', ServiceID: '', ServiceName: '' })
    expect(entry?.Checks[1]).toMatchObject({ CheckID: `service:${id}`, Status: consul, ServiceID: id, ServiceName: 'web', Node: expect.any(String) })
  })

  it.each([
    ['no filter: every instance, whatever its health (Consul\'s default)', '', ['a:web-1', 'b:web-2', 'b:web-3', 'c:web-4']],
    ['passing', 'passing', ['a:web-1']],
    ['passing=1 (the Go and Python clients\' form)', 'passing=1', ['a:web-1']],
    ['passing=false', 'passing=false', ['a:web-1', 'b:web-2', 'b:web-3', 'c:web-4']],
    ['passing and a tag', 'passing&tag=v1', ['a:web-1']],
  ])('Given web instances in every health, When asked with %s, Then those come back', (_what, params, ids) => {
    const entries = healthService(snapshotOf(ALL, { nodes: NODES }), 'web', q(params), OPTIONS).body as Array<{ Service: { ID: string } }>
    expect(entries.map((entry) => entry.Service.ID)).toEqual(ids)
  })

  it('Given an instance with a check, When asked, Then Node, Service and the check carry Consul\'s fields', () => {
    const [entry] = healthService(snapshotOf(ALL, { nodes: NODES }), 'web', q('tag=v2'), OPTIONS).body as Array<Record<string, Record<string, unknown> | Array<Record<string, unknown>>>>
    expect(entry.Node).toMatchObject({ Node: 'node-c', Address: '10.0.0.4', Datacenter: 'dc1', Meta: { 'consul-network-segment': '' } })
    expect(entry.Service).toMatchObject({ ID: 'c:web-4', Service: 'web', Tags: ['v2'], Address: '10.0.0.4', Port: 8083, Meta: {}, EnableTagOverride: false, CreateIndex: 40, ModifyIndex: 44 })
    expect((entry.Checks as Array<Record<string, unknown>>)[1]).toMatchObject({ Name: "Service 'web' check", Type: 'http', Interval: '10s', Timeout: '5s', Output: 'HTTP 200 OK', ServiceTags: ['v2'] })
  })

  it('Given an unknown service, When its health is asked, Then the answer is [] with 200', () => {
    expect(healthService(snapshotOf(ALL), 'nope', q(), OPTIONS)).toEqual({ status: 200, index: '100', body: [] })
  })
})

describe('catalogNodes and catalogNode', () => {
  it('Given live agents and a node known only from its instances, When nodes are listed, Then all come back sorted', () => {
    const answer = catalogNodes(snapshotOf(ALL, { nodes: NODES }), q(), OPTIONS)
    expect((answer.body as Array<{ Node: string; Address: string }>).map((node) => [node.Node, node.Address])).toEqual([
      ['node-a', '192.168.1.1'],
      ['node-b', '10.0.0.2'],
      ['node-c', '10.0.0.4'],
    ])
  })

  it.each([
    ['a node with instances', 'node-a', ['a:db-1', 'a:web-1']],
    ['an unknown node', 'nope', undefined],
  ])('Given %s, When it is asked, Then its services come back keyed by ID (null when unknown, as Consul does)', (_what, name, ids) => {
    const answer = catalogNode(snapshotOf(ALL, { nodes: NODES }), name, q(), OPTIONS)
    expect(answer.status).toBe(200)
    if (ids === undefined) expect(answer.body).toBeNull()
    else expect(Object.keys((answer.body as { Services: object }).Services)).toEqual(ids)
  })
})

describe('status, datacenters and agent/self', () => {
  it.each([
    ['no leader', undefined, ''],
    ['a leader with an advertised address', 'node-a', '192.168.1.1:8300'],
    ['a leader without one', 'node-b', 'node-b:8300'],
  ])('Given %s, When the leader is asked, Then the answer is %j', (_what, leader, expected) => {
    expect(statusLeader(snapshotOf([], { nodes: NODES, leader })).body).toBe(expected)
  })

  it('Given two agents, When peers are asked, Then both come back as host:port', () => {
    expect(statusPeers(snapshotOf([], { nodes: NODES })).body).toEqual(['192.168.1.1:8300', 'node-b:8300'])
  })

  it('Given our datacenter, When datacenters are asked, Then only it comes back', () => {
    expect(catalogDatacenters(snapshotOf([]), { ...OPTIONS, datacenter: 'east' }).body).toEqual(['east'])
  })

  it('Given this agent\'s node, When agent/self is asked, Then Config carries the datacenter and node name Prometheus reads', () => {
    const body = agentSelf(snapshotOf([], { nodes: NODES }), OPTIONS).body as { Config: Record<string, unknown>; Member: Record<string, unknown> }
    expect(body.Config).toMatchObject({ Datacenter: 'dc1', NodeName: 'node-a', Server: false, Revision: 'discovery-agent 0.2.0' })
    expect(body.Member).toMatchObject({ Name: 'node-a', Addr: '192.168.1.1', Status: 1 })
  })
})

describe('prometheusHttpSd', () => {
  it('Given instances, When http_sd is asked, Then each is one target group with __meta_discovery_* labels', () => {
    const groups = prometheusHttpSd(snapshotOf(ALL, { nodes: NODES }), q('service=web&tag=blue'), OPTIONS)
    expect(groups).toEqual({
      status: 200,
      index: '44',
      body: [
        {
          targets: ['10.0.0.1:8080'],
          labels: {
            __meta_discovery_service: 'web',
            __meta_discovery_instance_id: 'a:web-1',
            __meta_discovery_node: 'node-a',
            __meta_discovery_address: '10.0.0.1',
            __meta_discovery_port: '8080',
            __meta_discovery_health: 'passing',
            __meta_discovery_tags: ',v1,blue,',
            __meta_discovery_source: 'docker',
            __meta_discovery_dc: 'dc1',
            __meta_discovery_meta_team: 'pay',
            __meta_discovery_meta_build_sha: 'abc',
          },
        },
      ],
    })
  })

  it.each([
    ['every service', '', ['db:10.0.0.1:5432', 'web:10.0.0.1:8080', 'web:10.0.0.2:8081', 'web:[fd00::3]:8082', 'web:10.0.0.4:8083']],
    ['passing only', 'passing', ['db:10.0.0.1:5432', 'web:10.0.0.1:8080']],
    ['routable (passing or warning)', 'routable&service=web', ['web:10.0.0.1:8080', 'web:10.0.0.2:8081']],
    ['an unknown service', 'service=nope', []],
  ])('Given instances in every health, When http_sd asks for %s, Then those targets come back', (_what, params, targets) => {
    const groups = prometheusHttpSd(snapshotOf(ALL), q(params), OPTIONS).body as Array<{ targets: string[]; labels: Record<string, string> }>
    expect(groups.map((group) => `${group.labels.__meta_discovery_service}:${group.targets[0]}`)).toEqual(targets)
    for (const group of groups) for (const name of Object.keys(group.labels)) expect(name).toMatch(/^__meta_[a-zA-Z0-9_]*$/)
  })
})

describe('helpers', () => {
  it.each([
    [undefined, '1'],
    ['0', '1'],
    ['', '1'],
    ['7', '7'],
    ['18446744073709551615', '18446744073709551615'],
  ])('Given revision %j, When it becomes a Consul index, Then it is %s (never 0)', (revision, index) => {
    expect(consulIndex(revision)).toBe(index)
  })

  it('Given an empty view, When a service index is asked, Then it is 1, not 0', () => {
    expect(serviceIndexOf(snapshotOf([], { revision: 0 }), 'web')).toBe('1')
  })

  it.each([
    ['passing', 'passing'],
    ['warning', 'warning'],
    ['critical', 'critical'],
    ['unknown', 'critical'],
  ] as const)('Given our status %s, When mapped, Then Consul sees %s', (ours, theirs) => {
    expect(consulStatus(ours)).toBe(theirs)
  })

  it.each([
    ['10s', 10_000],
    ['5m', 300_000],
    ['120000ms', 120_000],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['0', 0],
    ['250us', 0.25],
    ['10', undefined],
    ['', undefined],
    ['-5s', undefined],
    ['5 s', undefined],
    ['5d', undefined],
  ])('Given wait %j, When parsed as a Go duration, Then it is %j ms', (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms)
  })

  it.each([
    ['no index: not blocking', '', undefined],
    ['an index with no wait: 5 minutes', 'index=5', { index: 5n, timeoutMs: DEFAULT_WAIT_MS }],
    ['wait=30s', 'index=5&wait=30s', { index: 5n, timeoutMs: 30_000 }],
    ['wait above 10 minutes: clamped', 'index=5&wait=1h', { index: 5n, timeoutMs: MAX_WAIT_MS }],
    ['a bad index', 'index=abc', 'Invalid index'],
    ['a negative index', 'index=-1', 'Invalid index'],
    ['a bad wait', 'index=5&wait=soon', 'Invalid wait time'],
  ])('Given %s, When the blocking parameters are read (no jitter), Then they are %j', (_what, params, expected) => {
    expect(blockingWait(new URLSearchParams(params), () => 0)).toEqual(expected)
  })

  it.each([
    ['30s', 0.999, 30_000 + Math.floor(0.999 * 30_000 / 16)],
    ['10m', 0.5, MAX_WAIT_MS + MAX_WAIT_MS / 32],
  ])('Given wait=%s and the largest jitter draw, When read, Then up to wait/16 is added as Consul does', (wait, draw, timeoutMs) => {
    expect(blockingWait(new URLSearchParams(`index=1&wait=${wait}`), () => draw)).toEqual({ index: 1n, timeoutMs })
  })

  it.each([
    ['index 0 (first call)', 0n, '40', false],
    ['an index behind the answer', 39n, '40', false],
    ['the answer\'s index', 40n, '40', true],
    ['an index between the answer and the view revision', 90n, '40', true],
    ['an index past the whole view (the store went back)', 101n, '40', false],
  ])('Given %s, When deciding whether to block, Then it is %s', (_what, index, answerIndex, expected) => {
    expect(mustWait(snapshotOf([], { revision: 100 }), { status: 200, body: [], index: answerIndex }, index)).toBe(expected)
  })

  it('Given an empty view (revision 0, index 1), When a client blocks on index 1, Then it waits instead of spinning', () => {
    expect(mustWait(snapshotOf([], { revision: 0 }), { status: 200, body: [], index: '1' }, 1n)).toBe(true)
  })

  it.each([
    ['team.name', 'team_name'],
    ['a-b/c', 'a_b_c'],
    ['ok_1', 'ok_1'],
  ])('Given meta key %j, When made a label name, Then it is %j', (key, label) => {
    expect(sanitizeLabelName(key)).toBe(label)
  })

  it.each([
    ['10.0.0.1', 80, '10.0.0.1:80'],
    ['fd00::1', 80, '[fd00::1]:80'],
  ])('Given host %s, When joined with port %d, Then it is %s', (host, port, text) => {
    expect(joinHostPort(host, port)).toBe(text)
  })
})
