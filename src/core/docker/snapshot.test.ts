/* eslint-disable @typescript-eslint/no-explicit-any -- fixtures are edited as free-form JSON to mimic what other engine versions send */
import { readFileSync } from 'node:fs'
import type Dockerode from 'dockerode'
import { describe, expect, it } from 'vitest'
import { formatPort, parsePortKey, snapshotFromInspect, type ContainerSnapshot } from './snapshot.js'

// Fixtures are real `docker inspect` output (engine 20.10) of containers made from discovery-test/busybox:1.
function inspectFixture(name: string): Dockerode.ContainerInspectInfo {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as Dockerode.ContainerInspectInfo
}

/** A fixture with parts replaced, as another engine version might send it. */
function inspectWith(name: string, edit: (raw: Record<string, any>) => void): Dockerode.ContainerInspectInfo {
  const raw = structuredClone(inspectFixture(name)) as unknown as Record<string, any>
  edit(raw)
  return raw as unknown as Dockerode.ContainerInspectInfo
}

describe('snapshotFromInspect on real engine output', () => {
  const cases: { fixture: string; expected: Partial<ContainerSnapshot> }[] = [
    {
      fixture: 'single',
      expected: {
        id: '7adcfc6a5238e8035cd6826e495139c6b471299b09895bc03f92d4478d9dfd38',
        name: 'dafx-single',
        image: 'discovery-test/busybox:1',
        labels: {},
        env: { PATH: '/bin' },
        state: { running: true, paused: false, restarting: false, status: 'running' },
        hasHealthcheck: false,
        exposedPorts: [{ containerPort: 80, protocol: 'tcp' }],
        ports: [{ containerPort: 80, protocol: 'tcp', bindings: [{ hostIp: '127.0.0.1', hostPort: 18081 }] }],
        networkMode: 'default',
        networks: { bridge: { ipAddress: '172.17.0.2' } },
      },
    },
    {
      fixture: 'dual',
      expected: {
        ports: [
          {
            containerPort: 80,
            protocol: 'tcp',
            bindings: [
              { hostIp: '0.0.0.0', hostPort: 18086 },
              { hostIp: '::', hostPort: 18086 },
            ],
          },
        ],
      },
    },
    {
      // Registrator's services.md example `-e "SERVICE_TAGS=/(;\\,:-_)/"`: the shell leaves one backslash, kept as is.
      fixture: 'registrator-escaped-comma',
      expected: {
        name: 'redis.0',
        image: 'progrium/redis',
        env: { SERVICE_NAME: 'db', SERVICE_TAGS: '/(;\\,:-_)/', SERVICE_REGION: 'us2', PATH: '/bin' },
        exposedPorts: [{ containerPort: 6379, protocol: 'tcp' }],
      },
    },
    {
      fixture: 'multi',
      expected: {
        labels: { 'discovery.8080.service': 'admin', 'discovery.tags': 'web,edge' },
        exposedPorts: [
          { containerPort: 80, protocol: 'tcp' },
          { containerPort: 8080, protocol: 'tcp' },
        ],
      },
    },
    {
      fixture: 'udp',
      expected: {
        env: { SERVICE_NAME: 'dns', SERVICE_TAGS: 'udp,primary', PATH: '/bin' },
        exposedPorts: [{ containerPort: 5353, protocol: 'udp' }],
      },
    },
    {
      fixture: 'host',
      expected: {
        networkMode: 'host',
        exposedPorts: [{ containerPort: 18090, protocol: 'tcp' }],
        ports: [],
        networks: { host: {} },
      },
    },
    {
      fixture: 'nets',
      expected: {
        networkMode: 'dafx-front',
        // Ports is `{"80/tcp": null}` for an exposed, unpublished port.
        ports: [{ containerPort: 80, protocol: 'tcp', bindings: [] }],
        networks: { 'dafx-back': { ipAddress: '172.19.0.2' }, 'dafx-front': { ipAddress: '172.18.0.2' } },
      },
    },
    { fixture: 'noports', expected: { exposedPorts: [], ports: [] } },
    { fixture: 'paused', expected: { state: { running: true, paused: true, restarting: false, status: 'paused' } } },
    { fixture: 'restarting', expected: { state: { running: true, paused: false, restarting: true, status: 'restarting' }, ports: [] } },
    { fixture: 'exited', expected: { state: { running: false, paused: false, restarting: false, status: 'exited' }, networks: { bridge: {} } } },
    { fixture: 'health', expected: { hasHealthcheck: true, state: { running: true, paused: false, restarting: false, status: 'running', health: 'healthy' } } },
    { fixture: 'starting', expected: { hasHealthcheck: true, state: { running: true, paused: false, restarting: false, status: 'running', health: 'starting' } } },
    // `--no-healthcheck` is stored as Test: ["NONE"].
    { fixture: 'nohealth', expected: { hasHealthcheck: false } },
  ]

  it.each(cases)('$fixture', ({ fixture, expected }) => {
    // Given the inspect JSON of a real container
    const inspect = inspectFixture(fixture)
    const before = JSON.stringify(inspect)
    // When it is normalised
    const snapshot = snapshotFromInspect(inspect)
    // Then the snapshot holds the expected fields and the input is untouched
    expect(snapshot).toMatchObject(expected)
    expect(JSON.stringify(inspect)).toBe(before)
  })
})

describe('snapshotFromInspect tolerates what other engines send', () => {
  const cases: { what: string; edit: (raw: Record<string, any>) => void; expected: Partial<ContainerSnapshot> }[] = [
    { what: 'Ports: null', edit: (raw) => (raw.NetworkSettings.Ports = null), expected: { ports: [] } },
    {
      what: 'null bindings and a binding without HostPort',
      edit: (raw) => (raw.NetworkSettings.Ports = { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '' }], '81/tcp': null }),
      expected: {
        ports: [
          { containerPort: 80, protocol: 'tcp', bindings: [] },
          { containerPort: 81, protocol: 'tcp', bindings: [] },
        ],
      },
    },
    { what: 'Networks missing', edit: (raw) => delete raw.NetworkSettings.Networks, expected: { networks: {} } },
    { what: 'NetworkSettings missing', edit: (raw) => delete raw.NetworkSettings, expected: { ports: [], networks: {} } },
    {
      what: 'Config: null',
      edit: (raw) => (raw.Config = null),
      expected: { image: '', labels: {}, env: {}, exposedPorts: [], hasHealthcheck: false },
    },
    { what: 'Labels and Env null', edit: (raw) => ((raw.Config.Labels = null), (raw.Config.Env = null)), expected: { labels: {}, env: {} } },
    {
      what: 'Env entries without = and with = in the value',
      edit: (raw) => (raw.Config.Env = ['UNSET', 'A=b=c', '=x', 'EMPTY=']),
      expected: { env: { A: 'b=c', EMPTY: '' } },
    },
    {
      what: 'bare port key and odd keys in ExposedPorts',
      edit: (raw) => (raw.Config.ExposedPorts = { '8080': {}, '53/UDP': {}, 'x/tcp': {}, '70000/tcp': {}, '9/quic': {} }),
      expected: {
        exposedPorts: [
          { containerPort: 53, protocol: 'udp' },
          { containerPort: 8080, protocol: 'tcp' },
        ],
      },
    },
    { what: 'HostConfig missing', edit: (raw) => delete raw.HostConfig, expected: { networkMode: 'default' } },
    {
      what: 'health status "none"',
      edit: (raw) => (raw.State.Health = { Status: 'none', FailingStreak: 0, Log: [] }),
      expected: { state: { running: true, paused: false, restarting: false, status: 'running' } },
    },
    {
      what: 'health reported without a Healthcheck config',
      edit: (raw) => (raw.State.Health = { Status: 'healthy' }),
      expected: { hasHealthcheck: true },
    },
    { what: 'Name without a leading slash', edit: (raw) => (raw.Name = 'plain'), expected: { name: 'plain' } },
    { what: 'State missing', edit: (raw) => delete raw.State, expected: { state: { running: false, paused: false, restarting: false, status: '' } } },
  ]

  it.each(cases)('$what', ({ edit, expected }) => {
    // Given inspect JSON shaped like another engine version's
    const inspect = inspectWith('single', edit)
    // When it is normalised
    const snapshot = snapshotFromInspect(inspect)
    // Then it does not throw and the gaps read as empty
    expect(snapshot).toMatchObject(expected)
  })

  it('keeps a __proto__ label as plain data', () => {
    // Given a label whose key is __proto__ (JSON.parse makes it an own property)
    const inspect = inspectWith('single', (raw) => (raw.Config.Labels = JSON.parse('{"__proto__":"x","a":"b"}')))
    // When it is normalised
    const { labels } = snapshotFromInspect(inspect)
    // Then it is an own key, and the record's prototype is untouched
    expect(Object.hasOwn(labels, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype)
    expect(labels.a).toBe('b')
  })

  it('survives an empty object', () => {
    // Given nothing at all
    // When it is normalised
    const snapshot = snapshotFromInspect({} as Dockerode.ContainerInspectInfo)
    // Then every field has its empty value
    expect(snapshot).toEqual({
      id: '',
      name: '',
      image: '',
      labels: {},
      env: {},
      state: { running: false, paused: false, restarting: false, status: '' },
      hasHealthcheck: false,
      exposedPorts: [],
      ports: [],
      networkMode: 'default',
      networks: {},
    })
  })
})

describe('parsePortKey', () => {
  it.each([
    ['80/tcp', { containerPort: 80, protocol: 'tcp' }],
    ['53/udp', { containerPort: 53, protocol: 'udp' }],
    ['9/sctp', { containerPort: 9, protocol: 'sctp' }],
    ['8080', { containerPort: 8080, protocol: 'tcp' }],
    ['0/tcp', undefined],
    ['65536', undefined],
    ['80-81/tcp', undefined],
    ['http', undefined],
  ])('%s', (key, expected) => {
    // Given a Docker port key / When parsed / Then it is a port or undefined
    const port = parsePortKey(key)
    expect(port).toEqual(expected)
    if (port) expect(formatPort(port)).toBe(key.includes('/') ? key : `${key}/tcp`)
  })
})

// podman-*.json are real `GET /containers/{id}/json` answers of Podman 4.3.1's Docker-compatible
// API (`podman system service`, rootful, CNI networking, Debian 12), same test image.
describe('snapshotFromInspect on real Podman output', () => {
  const running = { running: true, paused: false, restarting: false, status: 'running' }
  const cases: { fixture: string; why: string; expected: Partial<ContainerSnapshot> }[] = [
    {
      fixture: 'podman-single',
      why: 'Podman sends Health {Status: ""} for a container without a HEALTHCHECK: no check; its network is "podman" under mode "bridge"',
      expected: {
        name: 'podman-single',
        image: 'docker.io/discovery-test/busybox:1',
        state: running,
        hasHealthcheck: false,
        ports: [{ containerPort: 80, protocol: 'tcp', bindings: [{ hostIp: '127.0.0.1', hostPort: 18181 }] }],
        networkMode: 'bridge',
        networks: { podman: { ipAddress: '10.88.0.6' } },
      },
    },
    {
      fixture: 'podman-allips',
      why: 'a port published on every address has HostIp "" (Docker: 0.0.0.0 and ::)',
      expected: { ports: [{ containerPort: 80, protocol: 'tcp', bindings: [{ hostIp: '', hostPort: 18182 }] }] },
    },
    { fixture: 'podman-host', why: 'host networking: Networks is {} (Docker: {host: {}})', expected: { networkMode: 'host', networks: {}, ports: [], exposedPorts: [] } },
    { fixture: 'podman-none', why: 'no networking: Networks is {}', expected: { networkMode: 'none', networks: {} } },
    {
      fixture: 'podman-nets',
      why: 'a user network: mode still says "bridge", the network is named in Networks; an exposed port is `null`',
      expected: { networkMode: 'bridge', networks: { pmnet: { ipAddress: '10.89.0.2' } }, ports: [{ containerPort: 8080, protocol: 'tcp', bindings: [] }] },
    },
    { fixture: 'podman-health', why: 'HEALTHCHECK healthy', expected: { hasHealthcheck: true, state: { ...running, health: 'healthy' } } },
    { fixture: 'podman-unhealthy', why: 'HEALTHCHECK unhealthy', expected: { hasHealthcheck: true, state: { ...running, health: 'unhealthy' } } },
    { fixture: 'podman-starting', why: 'HEALTHCHECK not run yet', expected: { hasHealthcheck: true, state: { ...running, health: 'starting' } } },
    { fixture: 'podman-paused', why: 'paused', expected: { hasHealthcheck: false, state: { running: true, paused: true, restarting: false, status: 'paused' } } },
    { fixture: 'podman-exited', why: 'created, never started: an empty address on its network', expected: { state: { running: false, paused: false, restarting: false, status: 'created' }, networks: { podman: {} } } },
  ]

  it.each(cases)('$fixture: $why', ({ fixture, expected }) => {
    // Given the inspect JSON of a real Podman container
    const inspect = inspectFixture(fixture)
    // When it is normalised
    const snapshot = snapshotFromInspect(inspect)
    // Then it reads as the same container would from Docker
    expect(snapshot).toMatchObject(expected)
  })

  it('Given Networks empty but the legacy top-level address set (Podman can report either), When normalised, Then the address is kept under the network mode', () => {
    // Given
    const inspect = inspectWith('podman-single', (raw) => (raw.NetworkSettings.Networks = {}))
    // When
    const snapshot = snapshotFromInspect(inspect)
    // Then
    expect(snapshot.networks).toEqual({ bridge: { ipAddress: '10.88.0.6' } })
  })

  it('Given host networking with Networks empty and no address, When normalised, Then no network is invented', () => {
    expect(snapshotFromInspect(inspectFixture('podman-host')).networks).toEqual({})
  })
})
