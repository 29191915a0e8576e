import { readFileSync } from 'node:fs'
import type Dockerode from 'dockerode'
import { describe, expect, it } from 'vitest'
import { CHECK_DEFAULTS, type DesiredInstance } from '../model.js'
import { instanceRecordSchema } from '../schema.js'
import { containerToInstances, serviceNameFromImage, type BuildOptions, type BuildResult, type LabelProblem } from './instances.js'
import { snapshotFromInspect, type ContainerSnapshot } from './snapshot.js'

// Fixtures are real `docker inspect` output (engine 20.10) of containers made from discovery-test/busybox:1.
function fixture(name: string, change: { labels?: Record<string, string>; env?: Record<string, string>; edit?: (s: ContainerSnapshot) => ContainerSnapshot } = {}): ContainerSnapshot {
  const inspect = JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as Dockerode.ContainerInspectInfo
  const base = snapshotFromInspect(inspect)
  const snapshot = { ...base, labels: { ...base.labels, ...change.labels }, env: { ...base.env, ...change.env } }
  return deepFreeze(change.edit ? change.edit(snapshot) : snapshot)
}

/** Frozen inputs make any mutation by the builder throw in these tests. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

const OPTIONS: BuildOptions = { node: 'node-1', addressMode: 'published', hostAddress: '192.0.2.2', exposedByDefault: true }

const IDS = {
  single: '7adcfc6a5238e8035cd6826e495139c6b471299b09895bc03f92d4478d9dfd38',
  health: 'cd22fe3be33a25382ae67449ea81fcb5a5d1f735cdd48e9513c5ef41bd24dcec',
}

const KIB_100 = 'a'.repeat(100 * 1024)

function build(snapshot: ContainerSnapshot, options: Partial<BuildOptions> = {}): BuildResult {
  const result = containerToInstances(snapshot, { ...OPTIONS, ...options })
  expectStorable(result.instances)
  return result
}

/** Every built instance must pass the schema etcd records are read back with. */
function expectStorable(instances: DesiredInstance[]): void {
  const at = '2026-01-01T00:00:00.000Z'
  for (const instance of instances) {
    const record = { schema: 1, ...instance, node: 'node-1', source: 'docker', health: { status: 'unknown', output: '', updatedAt: at, since: at }, registeredAt: at, updatedAt: at }
    expect(instanceRecordSchema.safeParse(record).success, JSON.stringify(instance).slice(0, 300)).toBe(true)
  }
}

type DeepPartial<T> = T extends (infer U)[] ? DeepPartial<U>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T

/** A snapshot whose only port 80/tcp has exactly these host bindings. */
function boundOn(...bindings: { hostIp: string; hostPort: number }[]): (s: ContainerSnapshot) => ContainerSnapshot {
  return (s) => ({ ...s, ports: [{ containerPort: 80, protocol: 'tcp', bindings }] })
}

interface Case {
  name: string
  given: () => ContainerSnapshot
  options?: Partial<BuildOptions>
  /** Compared with toMatchObject, in order; the count must match. */
  instances?: DeepPartial<DesiredInstance>[]
  skipped?: string | RegExp
  problems?: Partial<LabelProblem>[]
  /** Properties every built instance must not have (toMatchObject can't say "absent"). */
  without?: (keyof DesiredInstance)[]
}

function runCases(cases: Case[]): void {
  it.each(cases)('$name', ({ given, options, instances = [], skipped, problems = [], without = [] }) => {
    // Given the container snapshot (and agent options) of the case
    const snapshot = given()
    // When it is turned into instances
    const result = build(snapshot, options)
    // Then the instances, the skip reason and the problems are exactly the expected ones
    expect(result.instances).toHaveLength(instances.length)
    expect(result.instances).toMatchObject(instances)
    if (skipped === undefined) expect(result.skipped).toBeUndefined()
    else expect(result.skipped).toMatch(skipped)
    expect(result.problems).toHaveLength(problems.length)
    expect(result.problems).toMatchObject(problems)
    for (const instance of result.instances) for (const key of without) expect(instance).not.toHaveProperty(key)
  })
}

describe('containerToInstances: published addresses', () => {
  runCases([
    {
      name: 'single port on a specific HostIp uses that IP',
      given: () => fixture('single'),
      instances: [
        {
          id: 'node-1:dafx-single:80',
          service: 'busybox',
          address: '127.0.0.1',
          port: 18081,
          tags: [],
          meta: {},
          container: { id: IDS.single, name: 'dafx-single', image: 'discovery-test/busybox:1', port: 80, protocol: 'tcp' },
        },
      ],
    },
    {
      name: 'one port bound on 0.0.0.0 and :: gives one instance at the host address',
      given: () => fixture('dual'),
      instances: [{ id: 'node-1:dafx-dual:80', address: '192.0.2.2', port: 18086 }],
    },
    {
      name: 'the advertise address replaces the host address for unspecific bindings',
      given: () => fixture('dual'),
      options: { advertiseAddress: '203.0.113.7' },
      instances: [{ address: '203.0.113.7', port: 18086 }],
    },
    {
      name: 'the advertise address does not replace a specific HostIp',
      given: () => fixture('single'),
      options: { advertiseAddress: '203.0.113.7' },
      instances: [{ address: '127.0.0.1' }],
    },
    {
      name: 'IPv4 is preferred even when :: is listed first',
      given: () => fixture('dual', { edit: (s) => ({ ...s, ports: [{ ...s.ports[0], bindings: [...s.ports[0].bindings].reverse() }] }) }),
      instances: [{ address: '192.0.2.2', port: 18086 }],
    },
    {
      name: 'a port bound only on a specific IPv6 address uses it',
      given: () => fixture('single', { edit: boundOn({ hostIp: '::1', hostPort: 18081 }) }),
      instances: [{ address: '::1', port: 18081 }],
    },
    {
      name: 'specific IPv6 and IPv4 bindings of one port give one instance on the IPv4 one',
      given: () => fixture('single', { edit: boundOn({ hostIp: '::1', hostPort: 18082 }, { hostIp: '127.0.0.1', hostPort: 18081 }) }),
      instances: [{ address: '127.0.0.1', port: 18081 }],
    },
    {
      name: 'several published ports get -<port> suffixes, per-port names do not',
      given: () => fixture('multi'),
      instances: [
        { id: 'node-1:dafx-multi:80', service: 'busybox-80', port: 18083, tags: ['web', 'edge'] },
        { id: 'node-1:dafx-multi:8080', service: 'admin', port: 18084, tags: ['web', 'edge'] },
      ],
    },
    {
      name: 'a UDP port gets a :udp id suffix',
      given: () => fixture('udp'),
      instances: [
        {
          id: 'node-1:dafx-udp:5353:udp',
          service: 'dns',
          address: '192.0.2.2',
          port: 18085,
          tags: ['udp', 'primary'],
          container: { port: 5353, protocol: 'udp' },
        },
      ],
    },
    {
      name: 'instances are sorted by port, then tcp before udp',
      given: () =>
        fixture('udp', {
          edit: (s) => ({
            ...s,
            ports: [...s.ports, { containerPort: 5353, protocol: 'tcp' as const, bindings: [{ hostIp: '0.0.0.0', hostPort: 18086 }] }, { containerPort: 53, protocol: 'udp' as const, bindings: [{ hostIp: '0.0.0.0', hostPort: 18087 }] }],
          }),
        }),
      instances: [
        { id: 'node-1:dafx-udp:53:udp', service: 'dns-53', port: 18087 },
        { id: 'node-1:dafx-udp:5353', service: 'dns-5353', port: 18086 },
        { id: 'node-1:dafx-udp:5353:udp', service: 'dns-5353', port: 18085 },
      ],
    },
    {
      name: 'host networking uses exposed ports as host ports on the host address',
      given: () => fixture('host'),
      instances: [{ id: 'node-1:dafx-host:18090', service: 'hostweb', address: '192.0.2.2', port: 18090 }],
    },
    {
      name: 'host networking with an advertise address',
      given: () => fixture('host'),
      options: { advertiseAddress: '203.0.113.7' },
      instances: [{ address: '203.0.113.7', port: 18090 }],
    },
    {
      name: 'host networking wins over container mode',
      given: () => fixture('host'),
      options: { addressMode: 'container' },
      instances: [{ address: '192.0.2.2', port: 18090 }],
    },
    { name: 'no published ports', given: () => fixture('noports'), skipped: 'no published ports' },
    { name: 'exposed but unpublished port in published mode', given: () => fixture('nets'), skipped: 'no published ports' },
    { name: 'host networking without exposed ports', given: () => fixture('host', { edit: (s) => ({ ...s, exposedPorts: [] }) }), skipped: /no exposed ports/ },
  ])
})

describe('containerToInstances: container mode', () => {
  runCases([
    {
      name: 'several networks: the first by name',
      given: () => fixture('nets'),
      options: { addressMode: 'container' },
      instances: [{ id: 'node-1:dafx-nets:80', service: 'api', address: '172.19.0.2', port: 80 }],
    },
    {
      name: 'several networks: --network picks one',
      given: () => fixture('nets'),
      options: { addressMode: 'container', network: 'dafx-front' },
      instances: [{ address: '172.18.0.2', port: 80 }],
    },
    {
      name: 'a --network the container is not on',
      given: () => fixture('nets'),
      options: { addressMode: 'container', network: 'elsewhere' },
      skipped: "not attached to network 'elsewhere'",
    },
    {
      name: 'a published port registers the container address and container port',
      given: () => fixture('single'),
      options: { addressMode: 'container' },
      instances: [{ address: '172.17.0.2', port: 80, container: { port: 80 } }],
    },
    {
      name: 'an IPv6-only network',
      given: () => fixture('single', { edit: (s) => ({ ...s, networks: { v6: { globalIPv6Address: 'fd00::2' } } }) }),
      options: { addressMode: 'container' },
      instances: [{ address: 'fd00::2', port: 80 }],
    },
    {
      name: 'no container IP',
      given: () => fixture('single', { edit: (s) => ({ ...s, networkMode: 'none', networks: { none: {} } }) }),
      options: { addressMode: 'container' },
      skipped: /no container IP address/,
    },
    {
      name: 'a network without an IP',
      given: () => fixture('single', { edit: (s) => ({ ...s, networks: { bridge: {} } }) }),
      options: { addressMode: 'container', network: 'bridge' },
      skipped: "no IP address on network 'bridge'",
    },
    { name: 'no exposed ports', given: () => fixture('noports'), options: { addressMode: 'container' }, skipped: 'no exposed ports' },
    {
      name: 'exposed and bound ports together, sorted',
      given: () =>
        fixture('nets', {
          edit: (s) => ({ ...s, exposedPorts: [{ containerPort: 9000, protocol: 'udp' }, { containerPort: 443, protocol: 'tcp' }, ...s.exposedPorts] }),
        }),
      options: { addressMode: 'container' },
      instances: [
        { id: 'node-1:dafx-nets:80', service: 'api-80', port: 80 },
        { id: 'node-1:dafx-nets:443', service: 'api-443', port: 443 },
        { id: 'node-1:dafx-nets:9000:udp', service: 'api-9000', port: 9000 },
      ],
    },
    {
      name: 'discovery.port may name a port the image does not expose',
      given: () => fixture('noports', { labels: { 'discovery.port': '8080' } }),
      options: { addressMode: 'container' },
      instances: [{ id: 'node-1:dafx-noports:8080', address: '172.17.0.6', port: 8080 }],
    },
  ])
})

describe('containerToInstances: container state', () => {
  runCases([
    { name: 'paused', given: () => fixture('paused'), skipped: 'paused' },
    { name: 'restarting', given: () => fixture('restarting'), skipped: 'restarting' },
    { name: 'exited', given: () => fixture('exited'), skipped: 'not running (exited)' },
    {
      name: 'labels of a stopped container are not reported yet',
      given: () => fixture('exited', { labels: { 'discovery.service': '../x' } }),
      skipped: 'not running (exited)',
    },
  ])
})

describe('containerToInstances: names, tags, meta and precedence', () => {
  const noNameLabels = (s: ContainerSnapshot): ContainerSnapshot => ({
    ...s,
    labels: Object.fromEntries(Object.entries(s.labels).filter(([key]) => key !== 'discovery.service')),
  })
  runCases([
    {
      name: 'discovery.* labels win over SERVICE_* labels and env',
      given: () => fixture('labels'),
      instances: [{ id: 'custom-id-1', service: 'from-discovery', tags: ['env-tag'], meta: { version: '1.2.3' }, port: 18091 }],
    },
    {
      // Registrator's bridge/util.go: "Env take precedence over labels".
      name: 'the SERVICE_NAME env var wins over a SERVICE_NAME label, as in Registrator',
      given: () => fixture('labels', { edit: noNameLabels }),
      instances: [{ service: 'from-env' }],
    },
    {
      name: 'a SERVICE_NAME label is used when no env var names the service',
      given: () => fixture('single', { labels: { SERVICE_NAME: 'from-label' } }),
      instances: [{ service: 'from-label' }],
    },
    {
      name: 'the SERVICE_NAME env var is used when no label names the service',
      given: () => fixture('single', { env: { SERVICE_NAME: 'from-env' } }),
      instances: [{ service: 'from-env' }],
    },
    {
      name: 'SERVICE_TAGS env wins over the label',
      given: () => fixture('single', { labels: { SERVICE_TAGS: 'label' }, env: { SERVICE_TAGS: 'env' } }),
      instances: [{ tags: ['env'] }],
    },
    {
      name: 'discovery.tags wins over SERVICE_TAGS label and env',
      given: () => fixture('single', { labels: { SERVICE_TAGS: 'label', 'discovery.tags': 'ours' }, env: { SERVICE_TAGS: 'env' } }),
      instances: [{ tags: ['ours'] }],
    },
    {
      name: 'tags are trimmed, empties dropped, duplicates removed',
      given: () => fixture('single', { labels: { 'discovery.tags': ' a, b,,a , c ,' } }),
      instances: [{ tags: ['a', 'b', 'c'] }],
    },
    {
      name: 'SERVICE_NAME gets the -<port> suffix on a multi-port container',
      given: () => fixture('multi', { env: { SERVICE_NAME: 'shop' } }),
      instances: [{ service: 'shop-80' }, { service: 'admin' }],
    },
    {
      name: 'per-port names and tags: discovery.<port>.* over SERVICE_<port>_*',
      given: () =>
        fixture('multi', {
          labels: { 'discovery.80.service': 'front', 'discovery.80.tags': 'public' },
          env: { SERVICE_80_NAME: 'www', SERVICE_8080_NAME: 'ignored-by-label', SERVICE_8080_TAGS: 'private,ops' },
        }),
      instances: [
        { service: 'front', tags: ['public'] },
        { service: 'admin', tags: ['private', 'ops'] },
      ],
    },
    {
      name: 'SERVICE_<port>_NAME from env',
      given: () => fixture('multi', { labels: { 'discovery.8080.service': '' }, env: { SERVICE_80_NAME: 'www' } }),
      instances: [{ service: 'www' }, { service: 'busybox-8080' }],
    },
    {
      name: 'SERVICE_<port>_IGNORE drops that port and keeps the others named as before',
      given: () => fixture('multi', { env: { SERVICE_8080_IGNORE: 'true' } }),
      instances: [{ service: 'busybox-80', port: 18083 }],
    },
    {
      name: 'SERVICE_<port>_IGNORE=false keeps the port',
      given: () => fixture('multi', { labels: { SERVICE_8080_IGNORE: 'false' } }),
      instances: [{ service: 'busybox-80' }, { service: 'admin' }],
    },
    {
      name: 'every port ignored',
      given: () => fixture('single', { env: { SERVICE_80_IGNORE: '1' } }),
      skipped: /every port is ignored/,
    },
    {
      name: 'discovery.port picks one of several ports, without a suffix',
      given: () => fixture('multi', { labels: { 'discovery.port': '80' } }),
      instances: [{ id: 'node-1:dafx-multi:80', service: 'busybox', port: 18083 }],
    },
    {
      name: 'discovery.port with a protocol',
      given: () => fixture('multi', { labels: { 'discovery.port': '8080/tcp' } }),
      instances: [{ service: 'admin', port: 18084 }],
    },
    {
      name: 'meta labels, sorted by key; empty values kept',
      given: () => fixture('single', { labels: { 'discovery.meta.zone': 'eu-1', 'discovery.meta.version': '2', 'discovery.meta.empty': '' } }),
      instances: [{ meta: { empty: '', version: '2', zone: 'eu-1' } }],
    },
    {
      name: 'SERVICE_ID on a single-port container',
      given: () => fixture('single', { labels: { SERVICE_ID: 'web-1' } }),
      instances: [{ id: 'web-1' }],
    },
    {
      name: 'SERVICE_ID counts ports after SERVICE_<port>_IGNORE',
      given: () => fixture('multi', { env: { SERVICE_ID: 'only-one', SERVICE_80_IGNORE: 'yes' } }),
      instances: [{ id: 'only-one', service: 'admin' }],
    },
    {
      name: 'SERVICE_* labels and env that are empty count as unset',
      given: () => fixture('single', { labels: { SERVICE_NAME: ' ' }, env: { SERVICE_NAME: '', SERVICE_IGNORE: '' } }),
      instances: [{ service: 'busybox' }],
    },
    {
      name: 'image names are sanitised into service names',
      given: () => fixture('single', { edit: (s) => ({ ...s, image: 'registry:5000/Team/My_App.v2:1.2@sha256:abcd' }) }),
      instances: [{ service: 'my-app-v2', container: { image: 'registry:5000/Team/My_App.v2:1.2@sha256:abcd' } }],
    },
    {
      name: 'a long image name is shortened to leave room for the port suffix',
      given: () => fixture('multi', { labels: { 'discovery.8080.service': '' }, edit: (s) => ({ ...s, image: `${'x'.repeat(70)}:1` }) }),
      instances: [{ service: `${'x'.repeat(60)}-80` }, { service: `${'x'.repeat(58)}-8080` }],
    },
  ])

  it.each([
    ['registry:5000/team/web:1.2', 'web'],
    ['web', 'web'],
    ['library/nginx@sha256:0123abcd', 'nginx'],
    ['localhost:5000/a/b/c/My_Service:latest', 'my-service'],
    ['ghcr.io/org/api.server', 'api-server'],
    ['8fc06a914ebf', '8fc06a914ebf'],
    ['__', undefined],
    ['', undefined],
  ])('serviceNameFromImage(%j) is %j', (image, expected) => {
    // Given an image reference / When its base name is taken / Then it is a valid service name or nothing
    expect(serviceNameFromImage(image)).toBe(expected)
  })
})

describe('containerToInstances: opting in and out', () => {
  runCases([
    { name: 'discovery.enable=false', given: () => fixture('single', { labels: { 'discovery.enable': 'false' } }), skipped: 'opted out (discovery.enable=false)' },
    { name: 'SERVICE_IGNORE env', given: () => fixture('single', { env: { SERVICE_IGNORE: 'true' } }), skipped: /opted out \(SERVICE_IGNORE/ },
    { name: 'SERVICE_IGNORE with any value, as Registrator', given: () => fixture('single', { labels: { SERVICE_IGNORE: 'please' } }), skipped: /opted out/ },
    { name: 'SERVICE_IGNORE=false', given: () => fixture('single', { env: { SERVICE_IGNORE: 'false' } }), instances: [{ service: 'busybox' }] },
    {
      name: 'discovery.enable=true wins over SERVICE_IGNORE',
      given: () => fixture('single', { labels: { 'discovery.enable': 'true' }, env: { SERVICE_IGNORE: '1' } }),
      instances: [{ service: 'busybox' }],
    },
    {
      name: 'not exposed by default and not enabled',
      given: () => fixture('single'),
      options: { exposedByDefault: false },
      skipped: /not enabled/,
    },
    {
      name: 'not exposed by default, enabled with discovery.enable=true',
      given: () => fixture('single', { labels: { 'discovery.enable': 'TRUE' } }),
      options: { exposedByDefault: false },
      instances: [{ service: 'busybox' }],
    },
    {
      name: 'not exposed by default: SERVICE_* labels do not opt in',
      given: () => fixture('udp'),
      options: { exposedByDefault: false },
      skipped: /not enabled/,
    },
  ])
})

describe('containerToInstances: checks', () => {
  const timing = (overrides: Partial<Record<keyof typeof CHECK_DEFAULTS, number>> = {}) => ({ ...CHECK_DEFAULTS, ...overrides })
  runCases([
    {
      name: 'all check labels on an HTTP check, winning over SERVICE_CHECK_* env',
      given: () => fixture('labels'),
      instances: [
        {
          check: {
            kind: 'http',
            target: 'http://192.0.2.2:18091/healthz',
            interval: 5000,
            timeout: 2000,
            failuresBeforeCritical: 2,
            successesBeforePassing: 2,
            initialDelay: 1000,
            expectStatus: '200-299',
            expectBody: 'ok',
          },
        },
      ],
    },
    {
      name: 'Registrator SERVICE_CHECK_HTTP with interval and timeout',
      given: () => fixture('single', { env: { SERVICE_CHECK_HTTP: '/health', SERVICE_CHECK_INTERVAL: '15s', SERVICE_CHECK_TIMEOUT: '1' } }),
      instances: [{ check: { kind: 'http', target: 'http://127.0.0.1:18081/health', ...timing({ interval: 15_000, timeout: 1000 }) } }],
    },
    {
      // Docker's userland proxy accepts on the published port even with nothing behind it, so a
      // TCP check connects to the container's own address and port instead.
      name: 'Registrator SERVICE_CHECK_TCP (checks the container address, not the proxy)',
      given: () => fixture('dual', { labels: { SERVICE_CHECK_TCP: 'true' } }),
      instances: [{ check: { kind: 'tcp', target: '172.17.0.5:80', ...timing() } }],
    },
    {
      name: 'discovery.check.tcp=false switches off a Registrator check',
      given: () => fixture('dual', { labels: { 'discovery.check.tcp': 'false' }, env: { SERVICE_CHECK_HTTP: '/health' } }),
      instances: [{ service: 'busybox' }],
      without: ['check'],
    },
    {
      name: 'container mode checks the container address',
      given: () => fixture('single', { labels: { 'discovery.check.http': '/health?full=1' } }),
      options: { addressMode: 'container' },
      instances: [{ check: { kind: 'http', target: 'http://172.17.0.2:80/health?full=1' } }],
    },
    {
      name: 'IPv6 targets are bracketed',
      given: () =>
        fixture('single', {
          labels: { 'discovery.check.http': '/' },
          edit: boundOn({ hostIp: '::1', hostPort: 18081 }),
        }),
      instances: [{ check: { kind: 'http', target: 'http://[::1]:18081/' } }],
    },
    {
      name: 'exec check runs in the container',
      given: () => fixture('single', { labels: { 'discovery.check.exec': 'wget -q -O /dev/null http://127.0.0.1/', 'discovery.check.initial-delay': '0' } }),
      instances: [{ check: { kind: 'exec', target: 'wget -q -O /dev/null http://127.0.0.1/', container: IDS.single, ...timing() } }],
    },
    {
      name: 'Docker HEALTHCHECK without a discovery check becomes a docker check',
      given: () => fixture('health'),
      instances: [{ check: { kind: 'docker', target: 'dafx-health', ...CHECK_DEFAULTS } }],
    },
    {
      name: 'a HEALTHCHECK still starting is a docker check too',
      given: () => fixture('starting'),
      instances: [{ check: { kind: 'docker', target: 'dafx-starting' } }],
    },
    { name: 'HEALTHCHECK NONE gives no check', given: () => fixture('nohealth'), instances: [{ service: 'busybox' }], without: ['check'] },
    {
      name: 'a UDP port keeps the docker check when the TCP check cannot apply',
      given: () => fixture('health', { labels: { 'discovery.check.tcp': 'true' }, edit: (s) => ({ ...s, ports: [{ ...s.ports[0], protocol: 'udp' }] }) }),
      instances: [{ id: 'node-1:dafx-health:80:udp', check: { kind: 'docker', target: 'dafx-health' } }],
    },
    {
      name: 'a discovery check wins over HEALTHCHECK',
      given: () => fixture('health', { labels: { 'discovery.check.tcp': 'true' } }),
      instances: [{ check: { kind: 'tcp', target: '172.17.0.8:80' } }],
    },
    {
      name: 'TCP and HTTP checks are not applied to UDP ports',
      given: () => fixture('udp', { labels: { 'discovery.check.tcp': 'true' } }),
      instances: [{ id: 'node-1:dafx-udp:5353:udp' }],
      without: ['check'],
    },
    {
      name: 'each port of a multi-port container gets its own check target',
      given: () => fixture('multi', { labels: { 'discovery.check.http': '/' } }),
      instances: [{ check: { target: 'http://192.0.2.2:18083/' } }, { check: { target: 'http://192.0.2.2:18084/' } }],
    },
  ])

  it('keeps a __proto__ meta key as data', () => {
    // Given a meta label whose key is __proto__
    const snapshot = fixture('single', { labels: { 'discovery.meta.__proto__': 'x' } })
    // When it is built
    const [instance] = build(snapshot).instances
    // Then the key is an own property and the meta object's prototype is untouched
    expect(Object.hasOwn(instance.meta, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(instance.meta)).toBe(Object.prototype)
    expect(JSON.parse(JSON.stringify(instance.meta))).toEqual(JSON.parse('{"__proto__":"x"}'))
  })

  it('leaves check-less instances without a check key', () => {
    // Given a container with no check configured
    // When it is built
    const [instance] = build(fixture('single')).instances
    // Then there is no check property at all (records stay minimal)
    expect(instance).not.toHaveProperty('check')
  })
})

describe('containerToInstances: malformed labels give one problem each and never throw', () => {
  const problem = (label: string, reason: RegExp | string = /./) => ({ container: expect.any(String), label, reason: expect.stringMatching(reason) })
  runCases([
    {
      name: "service name with a path trick '../x'",
      given: () => fixture('single', { labels: { 'discovery.service': '../x' } }),
      skipped: /label problems/,
      problems: [{ container: 'dafx-single', label: 'discovery.service', value: '../x', reason: expect.stringMatching(/not registered/) }],
    },
    {
      name: "service name 'a/b'",
      given: () => fixture('single', { labels: { 'discovery.service': 'a/b' } }),
      skipped: /label problems/,
      problems: [problem('discovery.service')],
    },
    {
      name: 'service name of 100 KiB, clipped in the problem',
      given: () => fixture('single', { labels: { 'discovery.service': KIB_100 } }),
      skipped: /label problems/,
      problems: [{ label: 'discovery.service', value: `${'a'.repeat(80)}…` }],
    },
    {
      name: 'an invalid name does not fall back to SERVICE_NAME or the image',
      given: () => fixture('single', { labels: { 'discovery.service': 'Web' }, env: { SERVICE_NAME: 'web' } }),
      skipped: /label problems/,
      problems: [problem('discovery.service')],
    },
    {
      name: 'SERVICE_NAME env var with upper case and _',
      given: () => fixture('single', { env: { SERVICE_NAME: 'Web_App' } }),
      skipped: /label problems/,
      problems: [problem('SERVICE_NAME (env)')],
    },
    {
      name: "per-port name '../../x' skips only that port",
      given: () => fixture('multi', { labels: { 'discovery.80.service': '../../x' } }),
      instances: [{ service: 'admin' }],
      problems: [problem('discovery.80.service', /port 80 is not registered/)],
    },
    {
      name: 'an explicit name too long once the port suffix is appended',
      given: () => fixture('multi', { labels: { 'discovery.service': 'n'.repeat(62) } }),
      instances: [{ service: 'admin' }],
      problems: [problem('discovery.service', /appended/)],
    },
    {
      name: 'a name that fails on every port is reported once',
      given: () => fixture('multi', { labels: { 'discovery.service': 'n'.repeat(62), 'discovery.8080.service': '' } }),
      skipped: /label problems/,
      problems: [problem('discovery.service', /appended/)],
    },
    {
      name: 'bad discovery.port falls back to every port',
      given: () => fixture('multi', { labels: { 'discovery.port': 'http' } }),
      instances: [{ service: 'busybox-80' }, { service: 'admin' }],
      problems: [problem('discovery.port', /not a port number/)],
    },
    {
      name: 'discovery.port that is not published falls back to every port',
      given: () => fixture('multi', { labels: { 'discovery.port': '9999' } }),
      instances: [{ service: 'busybox-80' }, { service: 'admin' }],
      problems: [problem('discovery.port', /not a published port/)],
    },
    {
      name: 'bad duration: default interval, reported once for several ports',
      given: () => fixture('multi', { labels: { 'discovery.check.http': '/', 'discovery.check.interval': 'soon' } }),
      instances: [{ check: { interval: CHECK_DEFAULTS.interval } }, { check: { interval: CHECK_DEFAULTS.interval } }],
      problems: [problem('discovery.check.interval', /not a duration/)],
    },
    {
      name: 'zero timeout',
      given: () => fixture('single', { labels: { 'discovery.check.tcp': 'true', 'discovery.check.timeout': '0s' } }),
      instances: [{ check: { timeout: CHECK_DEFAULTS.timeout } }],
      problems: [problem('discovery.check.timeout')],
    },
    {
      name: 'a 100 KiB SERVICE_CHECK_INTERVAL env var',
      given: () => fixture('single', { labels: { 'discovery.check.tcp': 'true' }, env: { SERVICE_CHECK_INTERVAL: KIB_100 } }),
      instances: [{ check: { interval: CHECK_DEFAULTS.interval } }],
      problems: [{ label: 'SERVICE_CHECK_INTERVAL (env)', value: `${'a'.repeat(80)}…` }],
    },
    {
      name: 'a huge number of hours',
      given: () => fixture('single', { labels: { 'discovery.check.tcp': 'true', 'discovery.check.interval': `${'9'.repeat(400)}h` } }),
      instances: [{ check: { interval: CHECK_DEFAULTS.interval } }],
      problems: [problem('discovery.check.interval')],
    },
    {
      name: 'bad failures and successes counts',
      given: () => fixture('single', { labels: { 'discovery.check.tcp': 'true', 'discovery.check.failures': '0', 'discovery.check.successes': 'two' } }),
      instances: [{ check: { failuresBeforeCritical: 3, successesBeforePassing: 1 } }],
      problems: [problem('discovery.check.failures'), problem('discovery.check.successes')],
    },
    {
      name: 'bad enable value is treated as unset (exposed by default)',
      given: () => fixture('single', { labels: { 'discovery.enable': 'maybe' } }),
      instances: [{ service: 'busybox' }],
      problems: [problem('discovery.enable', /treated as unset/)],
    },
    {
      name: 'bad enable value is treated as unset (not exposed by default)',
      given: () => fixture('single', { labels: { 'discovery.enable': 'maybe' } }),
      options: { exposedByDefault: false },
      skipped: /not enabled/,
      problems: [problem('discovery.enable')],
    },
    {
      name: 'bad meta key drops only that key',
      given: () => fixture('single', { labels: { 'discovery.meta.bad/key': '1', 'discovery.meta.ok': 'yes' } }),
      instances: [{ meta: { ok: 'yes' } }],
      problems: [problem('discovery.meta.bad/key', /meta key/)],
    },
    {
      name: 'meta key longer than 128 characters',
      given: () => fixture('single', { labels: { [`discovery.meta.${'k'.repeat(129)}`]: '1' } }),
      instances: [{ meta: {} }],
      problems: [problem(`discovery.meta.${'k'.repeat(105)}…`)],
    },
    {
      name: 'meta value of 100 KiB',
      given: () => fixture('single', { labels: { 'discovery.meta.blob': KIB_100 } }),
      instances: [{ meta: {} }],
      problems: [problem('discovery.meta.blob', /longer than 4096/)],
    },
    {
      name: 'tags of 100 KiB',
      given: () => fixture('single', { labels: { 'discovery.tags': KIB_100 } }),
      instances: [{ tags: [] }],
      problems: [problem('discovery.tags')],
    },
    {
      name: 'a tag with a control character is dropped',
      given: () => fixture('single', { labels: { 'discovery.tags': 'ok,bad\u0007tag' } }),
      instances: [{ tags: ['ok'] }],
      problems: [problem('discovery.tags', /1 tag/)],
    },
    {
      name: 'SERVICE_ID on a multi-port container',
      given: () => fixture('multi', { env: { SERVICE_ID: 'one' } }),
      instances: [{ id: 'node-1:dafx-multi:80' }, { id: 'node-1:dafx-multi:8080' }],
      problems: [problem('SERVICE_ID (env)', /one port/)],
    },
    {
      name: "SERVICE_ID with a path 'a/b'",
      given: () => fixture('single', { labels: { SERVICE_ID: 'a/b' } }),
      instances: [{ id: 'node-1:dafx-single:80' }],
      problems: [problem('SERVICE_ID', /default id/)],
    },
    {
      name: "SERVICE_ID '..'",
      given: () => fixture('single', { labels: { SERVICE_ID: '..' } }),
      instances: [{ id: 'node-1:dafx-single:80' }],
      problems: [problem('SERVICE_ID')],
    },
    {
      name: 'HTTP check path without a leading slash falls back to the HEALTHCHECK',
      given: () => fixture('health', { labels: { 'discovery.check.http': 'health' } }),
      instances: [{ check: { kind: 'docker' } }],
      problems: [problem('discovery.check.http', /not a URL path/)],
    },
    {
      name: 'bad tcp flag',
      given: () => fixture('single', { labels: { 'discovery.check.tcp': 'yes please' } }),
      instances: [{ service: 'busybox' }],
      without: ['check'],
      problems: [problem('discovery.check.tcp')],
    },
    {
      name: 'bad expect-status and expect-body',
      given: () => fixture('single', { labels: { 'discovery.check.http': '/', 'discovery.check.expect-status': 'ok', 'discovery.check.expect-body': '(' } }),
      instances: [{ check: { kind: 'http', target: 'http://127.0.0.1:18081/' } }],
      problems: [problem('discovery.check.expect-status'), problem('discovery.check.expect-body')],
    },
    {
      name: 'two check kinds: the first wins, the other is reported',
      given: () => fixture('single', { labels: { 'discovery.check.http': '/', 'discovery.check.tcp': 'true' } }),
      instances: [{ check: { kind: 'http' } }],
      problems: [problem('discovery.check.tcp', /also set/)],
    },
    {
      name: 'an unknown discovery.* label (typo)',
      given: () => fixture('single', { labels: { 'discovery.servcie': 'api' } }),
      instances: [{ service: 'busybox' }],
      problems: [problem('discovery.servcie', /not a discovery label/)],
    },
    {
      name: 'an image that gives no usable name',
      given: () => fixture('single', { edit: (s) => ({ ...s, image: 'registry:5000/___:1' }) }),
      skipped: /label problems/,
      problems: [problem('image', /discovery.service/)],
    },
    {
      name: 'an invalid node name makes the default id invalid',
      given: () => fixture('single'),
      options: { node: 'bad/node' },
      skipped: /label problems/,
      problems: [problem('instance id', /--node/)],
    },
    {
      name: 'the real malformed-labels container',
      given: () => fixture('malformed'),
      skipped: /label problems/,
      problems: [
        problem('discovery.enable'),
        problem('discovery.port'),
        problem('discovery.service'),
        problem('discovery.meta.bad/key'),
        problem('discovery.check.interval'),
      ],
    },
  ])

  it('never throws on hostile label values and only builds storable instances', () => {
    // Given every known key set to each of a set of hostile values
    const keys = [
      'discovery.enable', 'discovery.service', 'discovery.tags', 'discovery.port', 'discovery.80.service', 'discovery.80.tags',
      'discovery.meta.x', 'discovery.check.http', 'discovery.check.tcp', 'discovery.check.exec', 'discovery.check.interval',
      'discovery.check.timeout', 'discovery.check.failures', 'discovery.check.successes', 'discovery.check.initial-delay',
      'discovery.check.expect-status', 'discovery.check.expect-body', 'SERVICE_NAME', 'SERVICE_ID', 'SERVICE_TAGS',
      'SERVICE_80_NAME', 'SERVICE_CHECK_HTTP', 'SERVICE_CHECK_TCP', 'SERVICE_CHECK_INTERVAL', 'SERVICE_CHECK_TIMEOUT',
      'SERVICE_80_ID', 'SERVICE_8080_TAGS', 'SERVICE_REGION', 'SERVICE_80_SNI', 'SERVICE_', 'SERVICE_80_', 'SERVICE_CHECK_HTTPS',
      'SERVICE_CHECK_CMD', 'SERVICE_80_CHECK_SCRIPT', 'SERVICE_CHECK_TTL', 'SERVICE_CHECK_INITIAL_STATUS', 'SERVICE_CHECK_DEREGISTER_AFTER',
      'SERVICE___PROTO__', 'SERVICE_80_CONSTRUCTOR', 'com.example.ip',
    ]
    const values = ['', ' ', '../../etc', 'a/b', '/', '..', '\u0000', '-1', '0', '1e309', '99999', '__proto__', 'constructor', '(?<', KIB_100, '80/udp', 'true']
    for (const value of values) {
      const labels = Object.fromEntries(keys.map((key) => [key, value]))
      for (const addressMode of ['published', 'container'] as const) {
        // When the container is built
        const result = build(fixture('multi', { labels, env: labels }), { addressMode, ipFromLabel: 'com.example.ip', extraTags: ['x'], explicit: value === 'true' })
        // Then it returns (build() checks every instance against the record schema) and problems are short
        for (const p of result.problems) expect(p.value.length).toBeLessThanOrEqual(81)
        expect(new Set(result.problems.map((p) => p.label)).size).toBe(result.problems.length)
      }
    }
  })
})

/**
 * Registrator's documentation, docs/user/services.md ("Service Object", Examples): every example
 * run as written (`docker run` of the test image re-tagged progrium/redis, progrium/nginx and
 * dockerfile/redis), its `docker inspect` kept as a fixture, and the Service objects the page
 * prints. With the node named `hostname` and the host address the page's, the objects are the
 * page's, letter for letter.
 */
describe('Registrator services.md: every example gives the documented Service objects', () => {
  interface ServiceObject {
    ID: string
    Name: string
    Port: number
    IP: string
    Tags: string[]
    Attrs: Record<string, string>
  }
  const asServiceObject = (instance: DesiredInstance): ServiceObject => ({
    ID: instance.id,
    Name: instance.service,
    Port: instance.port,
    IP: instance.address,
    Tags: instance.tags,
    Attrs: instance.meta,
  })
  const byId = (a: ServiceObject, b: ServiceObject): number => (a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0)
  const DOCS: BuildOptions = { node: 'hostname', addressMode: 'published', hostAddress: '192.168.1.102', exposedByDefault: true }

  it.each<[string, string, ServiceObject[]]>([
    [
      'Single service with defaults',
      'registrator-single',
      [{ ID: 'hostname:redis.0:6379', Name: 'redis', Port: 10000, IP: '192.168.1.102', Tags: [], Attrs: {} }],
    ],
    [
      'Single service with metadata',
      'registrator-single-meta',
      [{ ID: 'hostname:redis.0:6379', Name: 'db', Port: 10000, IP: '192.168.1.102', Tags: ['master', 'backups'], Attrs: { region: 'us2' } }],
    ],
    [
      // The page gives no result for this one; the escaped comma stays in the one tag.
      'Single service with metadata, comma escaped with a backslash',
      'registrator-escaped-comma',
      [{ ID: 'hostname:redis.0:6379', Name: 'db', Port: 10000, IP: '192.168.1.102', Tags: ['/(;,:-_)/'], Attrs: { region: 'us2' } }],
    ],
    [
      'Multiple services with defaults',
      'registrator-multi',
      [
        { ID: 'hostname:nginx.0:443', Name: 'nginx-443', Port: 4443, IP: '192.168.1.102', Tags: [], Attrs: {} },
        { ID: 'hostname:nginx.0:80', Name: 'nginx-80', Port: 8000, IP: '192.168.1.102', Tags: [], Attrs: {} },
      ],
    ],
    [
      'Multiple services with metadata',
      'registrator-multi-meta',
      [
        { ID: 'https.12345', Name: 'https', Port: 4443, IP: '192.168.1.102', Tags: ['www'], Attrs: { sni: 'enabled' } },
        { ID: 'hostname:nginx.0:80', Name: 'http', Port: 8000, IP: '192.168.1.102', Tags: ['www'], Attrs: {} },
      ],
    ],
    [
      'Using labels to define metadata',
      'registrator-labels',
      [{ ID: 'hostname:redis.0:6379', Name: 'db', Port: 10000, IP: '192.168.1.102', Tags: ['master', 'backups'], Attrs: { region: 'us2' } }],
    ],
  ])('%s (%s)', (_title, name, documented) => {
    // Given the container the example runs, as dockerd reports it
    const snapshot = fixture(name)
    // When it is built on a node named like the page's host
    const result = build(snapshot, DOCS)
    // Then the Service objects are the documented ones, with no problem reported
    expect(result.instances.map(asServiceObject).sort(byId)).toEqual([...documented].sort(byId))
    expect(result.problems).toEqual([])
    expect(result.skipped).toBeUndefined()
  })

  it('the -ip option (--advertise-address) gives the documented IP without knowing the host address', () => {
    // Given the first example and only an advertise address
    // When it is built
    const [instance] = build(fixture('registrator-single'), { ...DOCS, hostAddress: '', advertiseAddress: '192.168.1.102' }).instances
    // Then the IP is the advertised one
    expect(instance.address).toBe('192.168.1.102')
  })
})

describe('Registrator attributes (meta), per-port keys and precedence', () => {
  runCases([
    {
      name: 'every SERVICE_<KEY> that is not a known key is an attribute, named by its lower-cased key',
      given: () => fixture('single', { env: { SERVICE_REGION: 'us2', SERVICE_Owner_Team: 'payments', SERVICE_NAME: 'db', SERVICE_TAGS: 'a' } }),
      instances: [{ service: 'db', tags: ['a'], meta: { owner_team: 'payments', region: 'us2' } }],
    },
    {
      name: 'a lower-case key after SERVICE_ means what the upper-case one means',
      given: () => fixture('single', { labels: { SERVICE_name: 'lower', SERVICE_tags: 'x,y' } }),
      instances: [{ service: 'lower', tags: ['x', 'y'], meta: {} }],
    },
    {
      name: 'per-port attributes apply to that port only and win over the container-wide one there',
      given: () => fixture('multi', { env: { SERVICE_ZONE: 'a', SERVICE_8080_ZONE: 'b', SERVICE_80_SNI: 'on', SERVICE_9999_GONE: 'x' } }),
      instances: [{ meta: { sni: 'on', zone: 'a' } }, { meta: { zone: 'b' } }],
    },
    {
      name: 'attributes from labels and env are merged, the env var wins on the same key',
      given: () => fixture('single', { labels: { SERVICE_REGION: 'label', SERVICE_RACK: 'r1' }, env: { SERVICE_REGION: 'env' } }),
      instances: [{ meta: { rack: 'r1', region: 'env' } }],
    },
    {
      name: 'discovery.meta.<key> wins over a Registrator attribute of the same name',
      given: () => fixture('single', { labels: { 'discovery.meta.region': 'ours' }, env: { SERVICE_REGION: 'theirs' } }),
      instances: [{ meta: { region: 'ours' } }],
    },
    {
      name: 'an empty attribute is kept as an empty value, as Registrator keeps it',
      given: () => fixture('single', { env: { SERVICE_REGION: '' } }),
      instances: [{ meta: { region: '' } }],
    },
    {
      name: 'SERVICE_<port> without a key after the port is an attribute named by the port',
      given: () => fixture('single', { env: { SERVICE_80: 'x' } }),
      instances: [{ meta: { '80': 'x' } }],
    },
    {
      name: 'check keys are not attributes, nor are name, tags, id and ignore',
      given: () =>
        fixture('multi', {
          env: { SERVICE_CHECK_TCP: 'true', SERVICE_CHECK_INTERVAL: '5s', SERVICE_8080_IGNORE: 'false', SERVICE_80_ID: 'web-80', SERVICE_80_TAGS: 't' },
        }),
      instances: [{ id: 'web-80', meta: {}, tags: ['t'] }, { meta: {} }],
    },
    {
      name: 'per-port SERVICE_<port>_ID, the other port keeps the default id',
      given: () => fixture('multi', { env: { SERVICE_8080_ID: 'admin-1' } }),
      instances: [{ id: 'node-1:dafx-multi:80' }, { id: 'admin-1' }],
    },
    {
      name: 'SERVICE_ID serves the one port that has no SERVICE_<port>_ID',
      given: () => fixture('multi', { env: { SERVICE_ID: 'web-1', SERVICE_8080_ID: 'admin-1' } }),
      instances: [{ id: 'web-1' }, { id: 'admin-1' }],
    },
    {
      name: 'per-port tags apply to that port only',
      given: () => fixture('multi', { labels: { 'discovery.tags': '' }, env: { SERVICE_TAGS: 'all', SERVICE_8080_TAGS: 'admin' } }),
      instances: [{ tags: ['all'] }, { tags: ['admin'] }],
    },
    {
      name: 'an escaped comma stays in the tag, an unescaped one splits',
      given: () => fixture('single', { env: { SERVICE_TAGS: 'a\\,b,c' } }),
      instances: [{ tags: ['a,b', 'c'] }],
    },
    {
      name: 'a UDP port gets the udp tag after its own, as Registrator adds it',
      given: () => fixture('udp', { env: { SERVICE_TAGS: 'primary' } }),
      instances: [{ tags: ['primary', 'udp'] }],
    },
    {
      name: 'SERVICE_<port>_NAME with several ports: no suffix for that port, the suffix for the others',
      given: () => fixture('registrator-multi', { env: { SERVICE_NAME: 'web', SERVICE_443_NAME: 'tls' } }),
      instances: [
        { id: 'node-1:nginx.0:80', service: 'web-80' },
        { id: 'node-1:nginx.0:443', service: 'tls' },
      ],
    },
  ])
})

describe('Registrator options: -tags, -explicit, -useIpFromLabel', () => {
  runCases([
    {
      name: 'with --swarm, a Swarm task container is left to the Swarm source',
      given: () => fixture('single', { labels: { 'com.docker.swarm.task.id': 'abc', 'com.docker.swarm.service.name': 'web' } }),
      options: { skipSwarmTasks: true },
      skipped: /a Swarm task: registered from its service by the leader/,
    },
    {
      name: 'without --swarm, a Swarm task container is an ordinary container (as with Registrator)',
      given: () => fixture('single', { labels: { 'com.docker.swarm.task.id': 'abc' } }),
      options: {},
      instances: [{ port: 18081 }],
    },
    {
      name: '-tags are added after the container tags, without duplicates',
      given: () => fixture('single', { env: { SERVICE_TAGS: 'a,shared' } }),
      options: { extraTags: ['shared', 'dc1'] },
      instances: [{ tags: ['a', 'shared', 'dc1'] }],
    },
    {
      name: '-tags on a UDP port: own tags, -tags, then udp',
      given: () => fixture('udp', { env: { SERVICE_TAGS: 'p' } }),
      options: { extraTags: ['dc1'] },
      instances: [{ tags: ['p', 'dc1', 'udp'] }],
    },
    {
      name: '-tags on a container without tags',
      given: () => fixture('single'),
      options: { extraTags: ['dc1'] },
      instances: [{ tags: ['dc1'] }],
    },
    {
      name: '-explicit skips a container without a name',
      given: () => fixture('registrator-multi'),
      options: { explicit: true },
      skipped: /no explicit service name/,
    },
    {
      name: '-explicit keeps only the ports that have a name, named as before',
      given: () => fixture('registrator-multi', { env: { SERVICE_80_NAME: 'http' } }),
      options: { explicit: true },
      instances: [{ service: 'http', port: 8000 }],
    },
    {
      name: '-explicit with SERVICE_NAME keeps every port, suffixed',
      given: () => fixture('registrator-multi', { labels: { SERVICE_NAME: 'web' } }),
      options: { explicit: true },
      instances: [{ service: 'web-80' }, { service: 'web-443' }],
    },
    {
      name: '-explicit with discovery.service',
      given: () => fixture('single', { labels: { 'discovery.service': 'web' } }),
      options: { explicit: true },
      instances: [{ service: 'web' }],
    },
    {
      name: '-explicit lets discovery.enable=true in with the image name',
      given: () => fixture('single', { labels: { 'discovery.enable': 'true' } }),
      options: { explicit: true },
      instances: [{ service: 'busybox' }],
    },
    {
      name: '-useIpFromLabel: the label address (without /prefix) with the published port',
      given: () => fixture('registrator-single', { labels: { 'com.example.ip': '10.1.2.3/24' } }),
      options: { ipFromLabel: 'com.example.ip' },
      instances: [{ address: '10.1.2.3', port: 10000 }],
    },
    {
      name: '-useIpFromLabel in container mode keeps the container port',
      given: () => fixture('single', { labels: { 'com.example.ip': 'fd00::5/64' } }),
      options: { ipFromLabel: 'com.example.ip', addressMode: 'container' },
      instances: [{ address: 'fd00::5', port: 80 }],
    },
    {
      name: '-useIpFromLabel: an HTTP check goes to the label address',
      given: () => fixture('registrator-single', { labels: { 'com.example.ip': '10.1.2.3' }, env: { SERVICE_CHECK_HTTP: '/ping' } }),
      options: { ipFromLabel: 'com.example.ip' },
      instances: [{ address: '10.1.2.3', check: { kind: 'http', target: 'http://10.1.2.3:10000/ping' } }],
    },
    {
      name: '-useIpFromLabel without the label: the usual address',
      given: () => fixture('registrator-single'),
      options: { ipFromLabel: 'com.example.ip' },
      instances: [{ address: '192.0.2.2' }],
    },
    {
      name: '-useIpFromLabel with a label that is no IP: reported, the usual address',
      given: () => fixture('registrator-single', { labels: { 'com.example.ip': 'eth0' } }),
      options: { ipFromLabel: 'com.example.ip' },
      instances: [{ address: '192.0.2.2' }],
      problems: [{ label: 'com.example.ip', value: 'eth0', reason: expect.stringMatching(/not an IP address/) }],
    },
  ])
})

describe('Registrator checks (docs/user/backends.md, consul/consul.go)', () => {
  const timing = (overrides: Partial<Record<keyof typeof CHECK_DEFAULTS, number>> = {}) => ({ ...CHECK_DEFAULTS, ...overrides })
  const problem = (label: string, reason: RegExp) => ({ label, reason: expect.stringMatching(reason) })
  runCases([
    {
      name: "backends.md's per-port HTTP and HTTPS checks apply to their own port",
      given: () => fixture('registrator-checks'),
      options: { hostAddress: '192.168.1.102' },
      instances: [
        { service: 'nginx-80', check: { kind: 'http', target: 'http://192.168.1.102:8000/health/endpoint/path', ...timing({ interval: 15_000, timeout: 1000 }) }, meta: {} },
        { service: 'nginx-443', check: { kind: 'http', target: 'https://192.168.1.102:4443/health/endpoint/path', ...timing({ interval: 15_000, timeout: 1000 }) }, meta: {} },
      ],
    },
    {
      name: 'SERVICE_CHECK_HTTP wins over SERVICE_CHECK_HTTPS and TCP',
      given: () => fixture('single', { env: { SERVICE_CHECK_HTTPS: '/s', SERVICE_CHECK_HTTP: '/h', SERVICE_CHECK_TCP: 'true' } }),
      instances: [{ check: { kind: 'http', target: 'http://127.0.0.1:18081/h' } }],
    },
    {
      name: 'a per-port check key wins over the container-wide one for its port only',
      given: () => fixture('multi', { labels: { 'discovery.8080.service': '' }, env: { SERVICE_CHECK_HTTP: '/all', SERVICE_8080_CHECK_HTTP: '/admin', SERVICE_8080_CHECK_INTERVAL: '2s' } }),
      instances: [
        { check: { target: 'http://192.0.2.2:18083/all', interval: CHECK_DEFAULTS.interval } },
        { check: { target: 'http://192.0.2.2:18084/admin', interval: 2000 } },
      ],
    },
    {
      name: 'SERVICE_CHECK_CMD runs in the container',
      given: () => fixture('single', { env: { SERVICE_CHECK_CMD: 'test -f /www/index.html', SERVICE_CHECK_INTERVAL: '3s' } }),
      instances: [{ check: { kind: 'exec', target: 'test -f /www/index.html', container: IDS.single, ...timing({ interval: 3000 }) } }],
    },
    {
      name: 'SERVICE_CHECK_SCRIPT runs in the container with $SERVICE_IP and $SERVICE_PORT filled in',
      given: () => fixture('single', { env: { SERVICE_CHECK_SCRIPT: 'nc $SERVICE_IP $SERVICE_PORT | grep OK' } }),
      instances: [{ check: { kind: 'exec', target: 'nc 127.0.0.1 18081 | grep OK', container: IDS.single } }],
    },
    {
      name: 'SERVICE_CHECK_CMD wins over SERVICE_CHECK_SCRIPT',
      given: () => fixture('single', { env: { SERVICE_CHECK_SCRIPT: 'script', SERVICE_CHECK_CMD: 'cmd' } }),
      instances: [{ check: { kind: 'exec', target: 'cmd' } }],
    },
    {
      name: 'SERVICE_CHECK_TTL has no equivalent: reported, no check',
      given: () => fixture('single', { env: { SERVICE_CHECK_TTL: '30s' } }),
      instances: [{ service: 'busybox', meta: {} }],
      without: ['check'],
      problems: [problem('SERVICE_CHECK_TTL (env)', /TTL check.*no equivalent/)],
    },
    {
      name: 'SERVICE_CHECK_TTL with SERVICE_CHECK_TCP: reported, the TCP check is used',
      given: () => fixture('dual', { labels: { SERVICE_CHECK_TTL: '30s', SERVICE_CHECK_TCP: 'true' } }),
      instances: [{ check: { kind: 'tcp', target: '172.17.0.5:80' } }],
      problems: [problem('SERVICE_CHECK_TTL', /no equivalent/)],
    },
    {
      name: 'SERVICE_CHECK_TTL with a Docker HEALTHCHECK: reported, the HEALTHCHECK is used',
      given: () => fixture('health', { env: { SERVICE_CHECK_TTL: '30s' } }),
      instances: [{ check: { kind: 'docker', target: 'dafx-health' } }],
      problems: [problem('SERVICE_CHECK_TTL (env)', /no equivalent/)],
    },
    {
      name: 'SERVICE_CHECK_INITIAL_STATUS and _DEREGISTER_AFTER are reported, the check stays',
      given: () => fixture('single', { env: { SERVICE_CHECK_HTTP: '/h', SERVICE_CHECK_INITIAL_STATUS: 'passing', SERVICE_80_CHECK_DEREGISTER_AFTER: '90m' } }),
      instances: [{ check: { kind: 'http', target: 'http://127.0.0.1:18081/h' }, meta: {} }],
      problems: [problem('SERVICE_CHECK_INITIAL_STATUS (env)', /starts 'unknown'/), problem('SERVICE_80_CHECK_DEREGISTER_AFTER (env)', /--deregister-critical-after/)],
    },
    {
      name: 'an HTTPS check path without a slash is reported',
      given: () => fixture('single', { env: { SERVICE_CHECK_HTTPS: 'health' } }),
      instances: [{ service: 'busybox' }],
      without: ['check'],
      problems: [problem('SERVICE_CHECK_HTTPS (env)', /no HTTPS check/)],
    },
    {
      name: 'discovery.check.* labels still win over every SERVICE_CHECK_* key',
      given: () => fixture('single', { labels: { 'discovery.check.tcp': 'true' }, env: { SERVICE_CHECK_CMD: 'true', SERVICE_CHECK_HTTPS: '/' } }),
      instances: [{ check: { kind: 'tcp', target: '172.17.0.2:80' } }],
    },
  ])
})

describe('Registrator keys that are malformed here', () => {
  const problem = (label: string, reason: RegExp) => ({ label, reason: expect.stringMatching(reason) })
  runCases([
    {
      name: 'an attribute whose name is not a meta key is dropped and reported',
      given: () => fixture('single', { labels: { 'SERVICE_team/owner': 'x', SERVICE_REGION: 'eu' } }),
      instances: [{ meta: { region: 'eu' } }],
      problems: [problem('SERVICE_team/owner', /meta key/)],
    },
    {
      name: 'a bare SERVICE_ key is reported',
      given: () => fixture('single', { env: { SERVICE_: 'x' } }),
      instances: [{ meta: {} }],
      problems: [problem('SERVICE_ (env)', /meta key/)],
    },
    {
      name: 'an attribute of 100 KiB is dropped and reported',
      given: () => fixture('single', { env: { SERVICE_BLOB: KIB_100 } }),
      instances: [{ meta: {} }],
      problems: [problem('SERVICE_BLOB (env)', /longer than 4096/)],
    },
    {
      name: 'one SERVICE_<port>_ID for 53/tcp and 53/udp: the second port keeps its default id',
      given: () =>
        fixture('udp', {
          env: { SERVICE_5353_ID: 'dns-1' },
          edit: (s) => ({ ...s, ports: [{ containerPort: 5353, protocol: 'tcp' as const, bindings: [{ hostIp: '0.0.0.0', hostPort: 18086 }] }, ...s.ports] }),
        }),
      instances: [{ id: 'dns-1' }, { id: 'node-1:dafx-udp:5353:udp' }],
      problems: [problem('SERVICE_5353_ID (env)', /id of another port/)],
    },
    {
      name: 'a SERVICE_<port>_ID that is no valid id',
      given: () => fixture('multi', { env: { SERVICE_80_ID: 'a/b' } }),
      instances: [{ id: 'node-1:dafx-multi:80' }, { id: 'node-1:dafx-multi:8080' }],
      problems: [problem('SERVICE_80_ID (env)', /default id/)],
    },
    {
      name: 'check numbers beyond what a record may hold fall back to the defaults',
      given: () => fixture('single', { labels: { 'discovery.check.failures': '1001' }, env: { SERVICE_CHECK_TCP: 'true', SERVICE_CHECK_INTERVAL: '48h', SERVICE_CHECK_TIMEOUT: '50ms' } }),
      instances: [{ check: { kind: 'tcp', interval: CHECK_DEFAULTS.interval, timeout: CHECK_DEFAULTS.timeout, failuresBeforeCritical: CHECK_DEFAULTS.failuresBeforeCritical } }],
      problems: [
        problem('SERVICE_CHECK_INTERVAL (env)', /from 100ms to 24h/),
        problem('SERVICE_CHECK_TIMEOUT (env)', /from 100ms to 1h/),
        problem('discovery.check.failures', /from 1 to 1000/),
      ],
    },
    {
      name: 'a bad per-port name still reports the port\'s other problems',
      given: () => fixture('multi', { env: { SERVICE_80_NAME: 'Bad_Name', SERVICE_80_CHECK_INTERVAL: 'soon', SERVICE_80_CHECK_HTTP: '/' } }),
      instances: [{ service: 'admin' }],
      problems: [problem('SERVICE_80_NAME (env)', /port 80 is not registered/), problem('SERVICE_80_CHECK_INTERVAL (env)', /not a duration/)],
    },
  ])
})

// podman-*.json: real answers of Podman 4.3.1's Docker-compatible API (rootful, CNI), same test image.
describe('containerToInstances: Podman containers register as Docker ones do', () => {
  runCases([
    {
      name: 'Podman, port on 127.0.0.1: that address and port, service from the image (docker.io/ prefix ignored)',
      given: () => fixture('podman-single'),
      instances: [{ id: 'node-1:podman-single:80', service: 'busybox', address: '127.0.0.1', port: 18181, container: { name: 'podman-single', port: 80, protocol: 'tcp' } }],
    },
    {
      name: 'Podman, HostIp "" (every address): the host address, as for 0.0.0.0',
      given: () => fixture('podman-allips'),
      instances: [{ id: 'node-1:podman-allips:80', service: 'web', address: '192.0.2.2', port: 18182 }],
    },
    {
      name: 'Podman, HostIp "" with an advertise address: the advertise address',
      given: () => fixture('podman-allips'),
      options: { advertiseAddress: '203.0.113.7' },
      instances: [{ address: '203.0.113.7', port: 18182 }],
    },
    {
      name: 'Podman, container mode: the address on the "podman" network although the mode says "bridge"',
      given: () => fixture('podman-single'),
      options: { addressMode: 'container' },
      instances: [{ address: '10.88.0.6', port: 80 }],
    },
    {
      name: 'Podman, container mode on a user network (--network names it)',
      given: () => fixture('podman-nets'),
      options: { addressMode: 'container', network: 'pmnet' },
      instances: [{ id: 'node-1:podman-nets:8080', address: '10.89.0.2', port: 8080 }],
    },
    {
      name: 'Podman, host networking with Networks {} and discovery.port: the host address',
      given: () => fixture('podman-host'),
      instances: [{ id: 'node-1:podman-host:18183', address: '192.0.2.2', port: 18183 }],
    },
    { name: 'Podman, --network none (Networks {}) in container mode', given: () => fixture('podman-none'), options: { addressMode: 'container' }, skipped: /no exposed ports|no container IP/ },
    { name: 'Podman, paused', given: () => fixture('podman-paused'), skipped: 'paused' },
    { name: 'Podman, created but not started', given: () => fixture('podman-exited'), skipped: 'not running (created)' },
    {
      name: 'Podman, HEALTHCHECK unhealthy: still registered (health is the agent’s to judge)',
      given: () => fixture('podman-unhealthy'),
      instances: [{ id: 'node-1:podman-unhealthy:80', port: 18185 }],
    },
  ])
})
