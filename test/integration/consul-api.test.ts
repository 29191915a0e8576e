import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHttpApi, type HttpApi } from '../../src/core/http/server.js'
import type { InstanceRecord, NodeRecord } from '../../src/core/model.js'
import { testPorts } from '../support/ports.js'
import type { ViewSource } from '../../src/core/view/types.js'
import { ViewState } from '../../src/core/view/view-state.js'
import { waitFor, type LiveProcess } from '../support/cli.js'
import { PrometheusServer, runPythonConsul, startPythonConsul, type PrometheusTarget } from '../support/consul-consumers.js'
import { instanceRecord } from '../support/instance-fixtures.js'

/**
 * The read-only Consul API against consumers nobody here wrote: the python-consul library and
 * the Prometheus server (consul_sd_configs with its blocking queries, and http_sd_configs),
 * plus the blocking protocol itself with plain fetch. The server is fed by an in-memory
 * ViewState the tests change; every instance address is loopback (nothing listens there, so
 * Prometheus' scrapes, if any, fail locally).
 */
const view = new ViewState()
let revision = 100
const processes: LiveProcess[] = []
const apis: HttpApi[] = []
const prometheusServers: PrometheusServer[] = []
// Blocking waits in flight through the server (a leak would keep this above 0).
let activeWaits = 0
const counted: ViewSource = {
  snapshot: () => view.snapshot(),
  waitForChange: (options) => {
    activeWaits += 1
    return view.waitForChange(options).finally(() => (activeWaits -= 1))
  },
}

let api: HttpApi
let ports: number[]

/** Applies one batch at the next revision, as a watch response would. */
function change(apply: (rev: string) => void): string {
  revision += 1
  const rev = String(revision)
  apply(rev)
  view.setRevision(rev)
  view.commit()
  return rev
}

function put(record: InstanceRecord): string {
  return change((rev) => {
    const existing = view.instance(keyOf(record))
    view.putInstance({ key: keyOf(record), record, modRevision: rev, createRevision: existing?.createRevision ?? rev, lease: '0' })
  })
}

function remove(record: InstanceRecord): string {
  return change((rev) => view.deleteInstance(keyOf(record), rev))
}

const keyOf = (record: InstanceRecord): string => `/test/services/${record.service}/${record.id}`

function nodeRecord(node: string): NodeRecord {
  return { schema: 1, node, version: '0.2.0', pid: 1, hostname: node, startedAt: new Date().toISOString(), ttl: 10, lease: '1', address: '127.0.0.1' }
}

let web1: InstanceRecord
let web2: InstanceRecord
let db1: InstanceRecord

beforeAll(async () => {
  // Instance ports nothing listens on (loopback only); the last ones are for the API and Prometheus.
  ports = await testPorts(6)
  web1 = instanceRecord({ id: 'node-a:web-1', node: 'node-a', address: '127.0.0.1', port: ports[0], tags: ['v1'], meta: { team: 'pay' } })
  web2 = instanceRecord({ id: 'node-b:web-2', node: 'node-b', address: '127.0.0.1', port: ports[1], tags: ['v1', 'canary'], status: 'warning' })
  db1 = instanceRecord({ id: 'node-a:db-1', service: 'db', node: 'node-a', address: '127.0.0.1', port: ports[2], tags: ['primary'] })
  change((rev) => {
    for (const record of [web1, web2, db1]) view.putInstance({ key: keyOf(record), record, modRevision: rev, createRevision: rev, lease: '0' })
    for (const node of ['node-a', 'node-b']) view.putNode({ key: `/test/nodes/${node}`, record: nodeRecord(node), modRevision: rev, createRevision: rev, lease: '1' })
    view.setLeader({ node: 'node-a', term: '1', since: new Date().toISOString() })
    view.setConnected(true)
  })
  api = await startHttpApi(counted, {
    port: 0,
    node: 'node-a',
    version: '0.2.0',
    extraRoutes: { '/healthz': (_request, response) => response.end('ok\n') },
  })
  apis.push(api)
})

afterAll(async () => {
  for (const child of processes) await child.stop('SIGKILL', 5_000)
  for (const server of prometheusServers) await server.stop()
  for (const server of apis) await server.close()
})

async function get(path: string, init: RequestInit = {}, base = api.url): Promise<{ status: number; index: string | null; headers: Headers; text: string }> {
  const response = await fetch(`${base}${path}`, init)
  return { status: response.status, index: response.headers.get('x-consul-index'), headers: response.headers, text: await response.text() }
}

describe('python-consul against the API', () => {
  it('Given web (passing + warning) and db, When python-consul reads the catalog, health, status and agent, Then it gets what Consul would give it', async () => {
    // When
    const [result] = (await runPythonConsul(api.port, 'one-shot')) as Array<Record<string, unknown>>
    // Then: catalog.services maps each service to its tags
    expect(result.services).toEqual({ db: ['primary'], web: ['canary', 'v1'] })
    expect(Number(result.servicesIndex)).toBeGreaterThan(0)
    // and catalog.service lists both web instances with their address and port
    expect((result.service as Array<Record<string, unknown>>).map((entry) => [entry.ServiceID, entry.ServiceAddress, entry.ServicePort])).toEqual([
      ['node-a:web-1', '127.0.0.1', ports[0]],
      ['node-b:web-2', '127.0.0.1', ports[1]],
    ])
    // and health.service(passing=True) keeps only the passing one (warning is not passing)
    const healthy = result.healthy as Array<{ Service: { ID: string }; Checks: Array<{ CheckID: string; Status: string }> }>
    expect(healthy.map((entry) => entry.Service.ID)).toEqual(['node-a:web-1'])
    expect(healthy[0].Checks.map((check) => [check.CheckID, check.Status])).toEqual([['serfHealth', 'passing'], ['service:node-a:web-1', 'passing']])
    expect((result.tagged as unknown[]).length).toBe(2)
    // and status and agent/self answer like a Consul agent's
    expect(result.leader).toBe('127.0.0.1:8300')
    expect(result.peers).toEqual(['127.0.0.1:8300', '127.0.0.1:8300'])
    expect((result.self as { Config: Record<string, unknown> }).Config).toMatchObject({ Datacenter: 'dc1', NodeName: 'node-a' })
  })

  it('Given a blocking health.service on web, When db changes, Then it keeps waiting; When web changes, Then it returns with a higher index and the new instance', async () => {
    // Given python-consul blocked on web's current index (wait 30s)
    const child = startPythonConsul(api.port, 'block')
    processes.push(child)
    const ready = await waitFor(() => child.lines()[0], 30_000, 'python-consul to read the index of web')
    const before = Number((JSON.parse(ready) as { ready: string }).ready)
    await waitFor(() => activeWaits > 0, 10_000, 'the blocking call to reach the server')
    // When another service changes
    put({ ...db1, tags: ['primary', 'moved'] })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // Then the call is still blocked
    expect(child.lines()).toHaveLength(1)
    // When web changes (an instance is added)
    const web3 = instanceRecord({ id: 'node-b:web-3', node: 'node-b', address: '127.0.0.1', port: ports[2], tags: ['v2'] })
    put(web3)
    // Then it returns, well before its 30 s wait, with a higher index and the new instance
    const line = await waitFor(() => child.lines()[1], 20_000, 'the blocking call to return')
    const after = JSON.parse(line) as { index: string; ids: string[]; seconds: number }
    expect(Number(after.index)).toBeGreaterThan(before)
    expect(after.ids).toContain('node-b:web-3')
    expect(after.seconds).toBeLessThan(25)
    expect(await child.exited).toBe(0)
    remove(web3)
  })
})

describe('blocking queries with plain fetch', () => {
  it('Given the current index of web, When db changes, Then the request stays blocked; When web changes, Then it returns with a higher X-Consul-Index', async () => {
    // Given
    const first = await get('/v1/health/service/web')
    const index = Number(first.index)
    expect(index).toBeGreaterThan(0)
    expect(first.headers.get('x-consul-knownleader')).toBe('true')
    expect(first.headers.get('x-consul-lastcontact')).toBe('0')
    let settled = false
    const blocked = get(`/v1/health/service/web?index=${index}&wait=30s`).finally(() => (settled = true))
    await waitFor(() => activeWaits > 0, 10_000, 'the request to block')
    // When another service changes
    put({ ...db1, port: ports[3] })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // Then it is still blocked
    expect(settled).toBe(false)
    // When web changes
    put({ ...web1, tags: ['v1', 'blue'] })
    // Then it returns with the new contents and a higher index
    const answer = await blocked
    expect(answer.status).toBe(200)
    expect(Number(answer.index)).toBeGreaterThan(index)
    expect(answer.text).toContain('"blue"')
  })

  it.each(['/v1/catalog/services', '/v1/catalog/service/web', '/v1/health/service/web?passing=1', '/v1/catalog/nodes'])(
    'Given %s, When read as the Go api package (inside Prometheus and consul-template) reads it, Then X-Consul-Index, -LastContact and -KnownLeader parse',
    async (path) => {
      const answer = await get(path)
      expect(answer.status).toBe(200)
      // parseQueryMeta: ParseUint on the index and on LastContact (an absent LastContact fails the call), KnownLeader == "true"
      expect(answer.index).toMatch(/^[1-9]\d*$/)
      expect(answer.headers.get('x-consul-lastcontact')).toMatch(/^\d+$/)
      expect(answer.headers.get('x-consul-knownleader')).toBe('true')
      expect(answer.headers.get('content-type')).toBe('application/json')
    },
  )

  it('Given the catalog index, When any service changes, Then /v1/catalog/services returns', async () => {
    const first = await get('/v1/catalog/services')
    const blocked = get(`/v1/catalog/services?index=${first.index}&wait=30s`)
    await waitFor(() => activeWaits > 0, 10_000, 'the request to block')
    put({ ...db1, tags: ['primary', 'replica-ready'] })
    const answer = await blocked
    expect(Number(answer.index)).toBeGreaterThan(Number(first.index))
    expect(JSON.parse(answer.text)).toMatchObject({ db: ['primary', 'replica-ready'] })
  })

  it.each([
    ['index 0', () => '0'],
    ['an index past the whole view (the store went back)', () => String(revision + 1000)],
    ['an index behind the answer', () => '1'],
  ])('Given %s, When a blocking request comes, Then it returns at once', async (_what, index) => {
    const started = Date.now()
    const answer = await get(`/v1/health/service/web?index=${index()}&wait=30s`)
    expect(answer.status).toBe(200)
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it('Given a blocked request, When the client goes away, Then its wait ends at once (no waiter left behind)', async () => {
    const first = await get('/v1/health/service/web')
    const controller = new AbortController()
    const blocked = fetch(`${api.url}/v1/health/service/web?index=${first.index}&wait=5m`, { signal: controller.signal }).catch((error: Error) => error)
    await waitFor(() => activeWaits > 0, 10_000, 'the request to block')
    controller.abort()
    expect(await blocked).toBeInstanceOf(Error)
    await waitFor(() => activeWaits === 0, 10_000, 'the server to drop the wait')
  })

  it.each([
    ['a bad index', '/v1/health/service/web?index=abc', 400, 'Invalid index'],
    ['a bad wait', '/v1/health/service/web?index=5&wait=soon', 400, 'Invalid wait time'],
    ['a filter', '/v1/catalog/service/web?filter=ServiceName%3D%3Dweb', 400, 'not supported'],
    ['another datacenter', '/v1/catalog/services?dc=dc9', 500, 'No path to datacenter'],
    ['an unknown service', '/v1/health/service/nope', 200, '[]'],
    ['an unknown node', '/v1/catalog/node/nope', 200, 'null'],
    ['an unknown path', '/v1/kv/config', 404, 'read-only Consul API'],
    ['the mounted /healthz', '/healthz', 200, 'ok'],
    ['a too long URL', `/v1/catalog/service/${'x'.repeat(9000)}`, 414, 'too long'],
  ])('Given %s, When asked, Then the status and message are Consul\'s', async (_what, path, status, text) => {
    const answer = await get(path)
    expect(answer.status).toBe(status)
    expect(answer.text).toContain(text)
  })

  it.each([
    ['PUT', '/v1/agent/service/register'],
    ['PUT', '/v1/kv/config'],
    ['DELETE', '/v1/kv/config'],
    ['POST', '/v1/catalog/register'],
  ])('Given a write (%s %s), When sent, Then 405 says the API is read-only', async (method, path) => {
    const answer = await get(path, { method, body: method === 'DELETE' ? undefined : '{"Name":"x"}' })
    expect(answer.status).toBe(405)
    expect(answer.headers.get('allow')).toBe('GET, HEAD')
    expect(answer.text).toContain(`method ${method} not allowed`)
    expect(answer.text).toContain('read-only')
  })
})

describe('token', () => {
  let secured: HttpApi
  beforeAll(async () => {
    secured = await startHttpApi(view, { port: 0, node: 'node-a', token: 's3cret' })
    apis.push(secured)
  })

  it.each([
    ['no token', {}, '', 403, 'Permission denied'],
    ['a wrong token', { 'X-Consul-Token': 'nope' }, '', 403, 'ACL not found'],
    ['X-Consul-Token', { 'X-Consul-Token': 's3cret' }, '', 200, 'web'],
    ['Authorization: Bearer', { Authorization: 'Bearer s3cret' }, '', 200, 'web'],
    ['?token=', {}, '?token=s3cret', 200, 'web'],
  ])('Given %s, When the catalog is asked, Then the answer is %s', async (_what, headers, params, status, text) => {
    const answer = await get(`/v1/catalog/services${params}`, { headers }, secured.url)
    expect(answer.status).toBe(status)
    expect(answer.text).toContain(text)
  })

  it('Given a token, When the leader is asked without one, Then it answers (status needs no ACL in Consul)', async () => {
    expect((await get('/v1/status/leader', {}, secured.url)).status).toBe(200)
  })

  it('Given a token, When python-consul reads with it and without it, Then it reads, or gets ACLPermissionDenied', async () => {
    const [allowed] = (await runPythonConsul(secured.port, 'one-shot', 's3cret')) as Array<Record<string, unknown>>
    expect(Object.keys(allowed.services as object)).toContain('web')
    const [denied] = (await runPythonConsul(secured.port, 'denied')) as Array<Record<string, unknown>>
    expect(denied.error).toBe('ACLPermissionDenied')
  })
})

describe('Prometheus discovers targets through http_sd', () => {
  let prometheus: PrometheusServer

  const addresses = (targets: PrometheusTarget[]): string[] => targets.map((target) => target.discoveredLabels.__address__).sort()
  const expected = (records: InstanceRecord[]): string[] => records.map((record) => `127.0.0.1:${record.port}`).sort()

  beforeAll(() => {
    // Debian's Prometheus is built without consul_sd_configs (its changelog: "Disable Consul SD"),
    // so the server exercises http_sd; Consul SD's own contract is covered with fetch above.
    // A long scrape interval: the test reads discovery, not scrapes.
    const config = [
      'global:',
      '  scrape_interval: 1h',
      'scrape_configs:',
      '  - job_name: http-sd',
      '    http_sd_configs:',
      `      - url: http://127.0.0.1:${api.port}/v1/prometheus/http_sd?service=web`,
      '        refresh_interval: 1s',
      '  - job_name: http-sd-passing',
      '    http_sd_configs:',
      `      - url: http://127.0.0.1:${api.port}/v1/prometheus/http_sd?passing`,
      '        refresh_interval: 1s',
      '',
    ].join('\n')
    prometheus = PrometheusServer.start(config, ports[5])
    prometheusServers.push(prometheus)
  })

  it('Given web and db in the view, When Prometheus discovers, Then its targets match the view; When the view changes, Then they follow', async () => {
    const diagnostics = (): string => `\nprometheus log tail:\n${prometheus.process.stderr.split('\n').filter((line) => /http_sd|http\.go|discovery|error/i.test(line)).slice(-15).join('\n')}`
    const pools = async (): Promise<Record<string, PrometheusTarget[]>> => {
      const targets = await prometheus.targets()
      return { web: targets.filter((target) => target.scrapePool === 'http-sd'), passing: targets.filter((target) => target.scrapePool === 'http-sd-passing') }
    }
    // Given / When: Prometheus's first discovery
    const first = await waitFor(
      async () => {
        const found = await pools()
        return JSON.stringify(addresses(found.web)) === JSON.stringify(expected([web1, web2])) && found.passing.length === 2 ? found : undefined
      },
      90_000,
      'Prometheus to discover web and db',
      500,
    ).catch((error: Error) => {
      throw new Error(error.message + diagnostics())
    })
    // Then the targets carry our labels
    expect(first.web.find((target) => target.discoveredLabels.__address__ === `127.0.0.1:${web2.port}`)?.discoveredLabels).toMatchObject({
      __meta_discovery_service: 'web',
      __meta_discovery_instance_id: web2.id,
      __meta_discovery_health: 'warning',
      __meta_discovery_tags: ',v1,canary,',
      __meta_discovery_node: 'node-b',
      __meta_discovery_dc: 'dc1',
    })
    // and `passing` keeps web1 and db (web2 only warns)
    expect(first.passing.map((target) => target.discoveredLabels.__meta_discovery_instance_id).sort()).toEqual([db1.id, web1.id].sort())

    // When an instance is added, one removed and one goes critical
    const web4 = instanceRecord({ id: 'node-b:web-4', node: 'node-b', address: '127.0.0.1', port: ports[4], tags: ['v2'] })
    put(web4)
    remove(web2)
    put({ ...web1, health: { ...web1.health, status: 'critical', output: 'HTTP 500' } })
    // Then both jobs follow
    await waitFor(
      async () => {
        const found = await pools()
        const critical = found.web.find((target) => target.discoveredLabels.__meta_discovery_instance_id === web1.id)
        return (
          JSON.stringify(addresses(found.web)) === JSON.stringify(expected([web1, web4])) &&
          critical?.discoveredLabels.__meta_discovery_health === 'critical' &&
          JSON.stringify(found.passing.map((target) => target.discoveredLabels.__meta_discovery_instance_id).sort()) === JSON.stringify([db1.id, web4.id].sort())
        )
      },
      90_000,
      'Prometheus to follow the change',
      500,
    ).catch((error: Error) => {
      throw new Error(error.message + diagnostics())
    })
    remove(web4)
    put(web1)
  })
})
