/* eslint-disable @typescript-eslint/no-explicit-any -- fixtures are edited as free-form JSON */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { instanceRecordSchema } from '../schema.js'
import { isSwarmTaskContainer, swarmNodeAddresses, swarmServiceFromInspect, swarmServiceName, swarmTaskFromInspect, swarmToInstances, type SwarmBuildOptions, type SwarmInput } from './swarm.js'

// swarm-*.json are real answers of a one-node Swarm (Docker 20.10, `swarm init --advertise-addr
// 127.0.0.1` on the second test dockerd): GET /services, /tasks, /nodes, /networks, and
// swarm-roll-N.json the tasks of `sw-roll` (2 replicas, HEALTHCHECK, host-mode port, update
// order start-first) before (0) and during (1-4) `docker service update --force`.
const fx = (name: string): any => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'))
const services = fx('swarm-services').map(swarmServiceFromInspect)
const nodeAddresses = swarmNodeAddresses(fx('swarm-nodes'))
const input = (tasksFixture: string, edit: (tasks: any[]) => any[] = (t) => t): SwarmInput => ({ services, tasks: edit(structuredClone(fx(tasksFixture))).map(swarmTaskFromInspect), nodeAddresses })
const OPTIONS: SwarmBuildOptions = { exposedByDefault: true }
const build = (i: SwarmInput, options: Partial<SwarmBuildOptions> = {}) => {
  const result = swarmToInstances(i, { ...OPTIONS, ...options })
  const at = '2026-01-01T00:00:00.000Z'
  for (const instance of result.instances) {
    const record = { schema: 1, ...instance, node: 'swarm', source: 'docker', health: { status: 'passing', output: '', updatedAt: at, since: at }, registeredAt: at, updatedAt: at }
    expect(instanceRecordSchema.safeParse(record).success, JSON.stringify(instance)).toBe(true)
  }
  return result
}
const brief = (r: ReturnType<typeof build>, service?: string) => r.instances.filter((i) => !service || i.service === service).map((i) => `${i.id} ${i.address}:${i.port}`)

describe('reading Swarm API answers', () => {
  it('Given GET /nodes of a one-node swarm, When read, Then the ready node’s address is known by id', () => {
    expect(nodeAddresses).toEqual({ ovmb7gg9gk3q75s5lp33yxj2u: '127.0.0.1' })
  })

  it('Given GET /services, When read, Then endpoint mode, ports (ingress/host), VIPs and deploy labels are as declared', () => {
    const byName = Object.fromEntries(services.map((s: any) => [s.name, s]))
    expect(byName['sw-web']).toMatchObject({ endpointMode: 'vip', ports: [{ targetPort: 80, publishedPort: 18280, publishMode: 'ingress', protocol: 'tcp' }], virtualIPs: { l03ouq7ol6ks1baya2o1yjgdv: '10.0.0.3' } })
    expect(byName['sw-dnsrr']).toMatchObject({ endpointMode: 'dnsrr', ports: [], labels: { 'discovery.service': 'api', 'discovery.port': '80', 'discovery.tags': 'a,b' } })
    expect(byName['sw-roll']).toMatchObject({ ports: [{ targetPort: 80, publishMode: 'host' }] })
    expect(byName['sw-roll'].image).toBe('discovery-test/busybox:1')
  })

  it('Given a task with a host-mode port listed twice (IPv4 and IPv6 bindings), When read, Then both are kept and the first is used', () => {
    const task = swarmTaskFromInspect(fx('swarm-roll-2').find((t: any) => t.Status.ContainerStatus?.ContainerID?.startsWith('f1f6f9')))
    expect(task.hostPorts.map((p) => p.publishedPort)).toEqual([32772, 32770])
    expect(brief(build(input('swarm-roll-2')), 'roll')).toContain(`swarm:${task.id}:80 127.0.0.1:32772`)
  })
})

describe('swarmToInstances: addresses by endpoint mode', () => {
  const cases: { name: string; options?: Partial<SwarmBuildOptions>; service: string; expected: string[] | RegExp }[] = [
    { name: 'host-mode published port (auto): node address and the task’s published port', service: 'sw-host', expected: ['swarm:15y152j0a8ghf0s98agtbgphr:80 127.0.0.1:18281'] },
    {
      name: 'dnsrr service on an overlay (auto): each task’s overlay address, name and port from deploy labels',
      service: 'api',
      expected: ['swarm:rdiexmh4v6zwkhfw3bdmp7ljw:80 10.0.1.8:80', 'swarm:thq1eiq9615n4nqcomywiqn61:80 10.0.1.9:80'],
    },
    { name: 'vip mode on the chosen overlay: one instance per service at its VIP', options: { addressMode: 'vip', network: 'swnet' }, service: 'sw-host', expected: ['swarm:vei2blfql14j720hor9wygegh:vip:80 10.0.1.2:80'] },
    { name: 'task mode on the chosen overlay for a host-published service', options: { addressMode: 'task', network: 'swnet' }, service: 'sw-host', expected: ['swarm:15y152j0a8ghf0s98agtbgphr:80 10.0.1.3:80'] },
    { name: 'ingress-published only (auto → vip): needs an advertise address', service: 'sw-web', expected: [] },
    {
      name: 'ingress-published with an advertise address: one instance at the published port',
      options: { advertiseAddress: '192.0.2.9' },
      service: 'sw-web',
      expected: ['swarm:kstl415cgm4yfdisfat6os4nz:vip:80 192.0.2.9:18280'],
    },
    { name: 'task addresses on the ingress network are never registered', options: { addressMode: 'task' }, service: 'sw-web', expected: [] },
  ]
  it.each(cases)('$name', ({ options, service, expected }) => {
    // Given the recorded swarm / When built / Then
    expect(brief(build(input('swarm-tasks'), options), service)).toEqual(expected)
  })

  it('Given the recorded swarm, When built, Then services without a port or an address say why', () => {
    const r = build(input('swarm-tasks'))
    expect(r.skipped).toEqual([
      { service: 'sw-vip', reason: 'no port: set discovery.port on the service (deploy label), or publish or declare one' },
      { service: 'sw-web', reason: 'an ingress-published port needs --advertise-address' },
    ])
    expect(r.instances.find((i) => i.service === 'api')).toMatchObject({ tags: ['a', 'b'], meta: { 'swarm.service': 'sw-dnsrr', 'swarm.slot': '1' } })
  })

  it('Given a Traefik port label and no declared port, When built, Then the label’s port is used', () => {
    const withTraefik = services.map((s: any) => (s.name === 'sw-vip' ? { ...s, labels: { 'traefik.http.services.vip.loadbalancer.server.port': '8080' } } : s))
    const r = swarmToInstances({ ...input('swarm-tasks'), services: withTraefik }, OPTIONS)
    expect(r.instances.filter((i) => i.service === 'sw-vip').map((i) => i.port)).toEqual([8080, 8080])
  })

  it('Given discovery.enable=false or exposed-by-default off, When built, Then those services are skipped', () => {
    const off = services.map((s: any) => (s.name === 'sw-host' ? { ...s, labels: { 'discovery.enable': 'false' } } : s))
    expect(swarmToInstances({ ...input('swarm-tasks'), services: off }, OPTIONS).skipped).toContainEqual({ service: 'sw-host', reason: 'opted out (discovery.enable=false)' })
    expect(swarmToInstances(input('swarm-tasks'), { exposedByDefault: false }).instances).toEqual([])
  })
})

describe('swarmToInstances: a rolling update never empties a service while a task is up', () => {
  // Task ids of sw-roll in the recording: old slot 1 and 2, new slot 1 and 2.
  const OLD1 = 'xdfmsbioe3x6xvbb6qv0dqmeg'
  const OLD2 = 'imf18a1w7twd7brfyaz7ag6y2'
  const NEW1 = 'n257hfj1pflegkudwpbt283rc'
  const NEW2 = 'r6bpk18dowj0wayzwb27p1s5s'
  const ids = (fixture: string, edit?: (t: any[]) => any[]) => build(input(fixture, edit)).instances.filter((i) => i.service === 'roll').map((i) => i.meta['swarm.task'])

  it.each([
    ['swarm-roll-0', 'before the update', [OLD1, OLD2]],
    ['swarm-roll-1', 'new slot-1 task starting (HEALTHCHECK not passed): not registered yet', [OLD1, OLD2]],
    ['swarm-roll-2', 'new slot-1 task running, old one told to shut down: swapped', [NEW1, OLD2]],
    ['swarm-roll-3', 'new slot-2 task starting', [NEW1, OLD2]],
    ['swarm-roll-4', 'both new tasks running, old ones shutting down', [NEW1, NEW2]],
  ])('%s: %s', (fixture, _what, expected) => {
    expect(ids(fixture)).toEqual(expected)
  })

  it('Given stop-first (every old task told to shut down before a new one runs), When built, Then the old tasks stay until one serves', () => {
    // Given roll-1 with the serving tasks told to shut down and the new one still starting
    const stopFirst = (tasks: any[]) => tasks.map((t) => (t.Status.State === 'running' ? { ...t, DesiredState: 'shutdown' } : t))
    // Then the leaving tasks are kept (their containers still run) rather than none
    expect(ids('swarm-roll-1', stopFirst)).toEqual([OLD1, OLD2])
  })

  it('Given the service scaled to zero (every task shut down and exited), When built, Then nothing is registered', () => {
    const gone = (tasks: any[]) => tasks.map((t) => ({ ...t, DesiredState: 'shutdown', Status: { ...t.Status, State: 'shutdown' } }))
    expect(ids('swarm-roll-4', gone)).toEqual([])
  })

  it('Given the same snapshot read by two managers, When built, Then the ids are the same (task ids, no node name): a new leader rewrites the same keys', () => {
    expect(build(input('swarm-roll-4')).instances.map((i) => i.id)).toEqual(build(input('swarm-roll-4')).instances.map((i) => i.id))
    expect(build(input('swarm-roll-4')).instances.every((i) => i.id.startsWith('swarm:'))).toBe(true)
  })
})

describe('helpers', () => {
  it.each([
    ['stack_web', 'stack-web'],
    ['Web.API', 'web.api'],
    ['__', undefined],
  ])('swarmServiceName(%s) = %s', (name, expected) => {
    expect(swarmServiceName(name)).toBe(expected)
  })

  it('Given a task container’s labels, When asked, Then it is a Swarm task (the container agent leaves it to the Swarm source)', () => {
    expect(isSwarmTaskContainer({ 'com.docker.swarm.task.id': 'x', 'com.docker.swarm.service.name': 'web' })).toBe(true)
    expect(isSwarmTaskContainer({ 'discovery.service': 'web' })).toBe(false)
  })
})
