import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { diffConfig } from './config-diff.js'
import { defaultConfigPaths, HOT_SETTINGS, normalizeDockerHost, normalizeEndpoints, resolveConfig, splitTags, type Config, type ResolveInput } from './config.js'
import { formatErrorLine, UsageError } from './errors.js'

let dir: string

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'config-test-'))
})

afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** Writes `text` to `file` under the temp dir (creating folders) and returns its absolute path. */
function write(file: string, text: string): string {
  const full = path.join(dir, file)
  mkdirSync(path.dirname(full), { recursive: true })
  writeFileSync(full, text)
  return full
}

/** resolveConfig over the real temp dir: no inherited environment, XDG pointing into the temp dir. */
function resolve(input: Partial<ResolveInput> = {}): Config {
  return resolveConfig({
    hostname: 'test-host',
    cwd: dir,
    ...input,
    flags: input.flags ?? {},
    env: { XDG_CONFIG_HOME: path.join(dir, 'xdg'), HOME: path.join(dir, 'home'), ...input.env },
  })
}

/** The UsageError `fn` throws, checked to be one line with a hint. */
function usageError(fn: () => unknown): UsageError {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(UsageError)
  const error = caught as UsageError
  expect(formatErrorLine(error)).not.toContain('\n')
  expect(error.hint).toBeTruthy()
  return error
}

type Level = 'flag' | 'DISCOVERY_* env' | 'ecosystem env' | 'config file' | 'default'
const LEVELS: Level[] = ['flag', 'DISCOVERY_* env', 'ecosystem env', 'config file', 'default']

interface PrecedenceRow {
  setting: string
  kind: string
  flag: unknown
  discoveryEnv?: [string, string]
  ecosystemEnv?: [string, string]
  /** YAML text of the value in the config file. */
  file: string
  read: (config: Config) => unknown
  expected: Partial<Record<Level, unknown>>
}

const PRECEDENCE: PrecedenceRow[] = [
  {
    setting: 'etcd-endpoints',
    kind: 'list',
    flag: '10.0.0.1:2379,10.0.0.2',
    discoveryEnv: ['DISCOVERY_ETCD_ENDPOINTS', 'http://denv:2379'],
    ecosystemEnv: ['ETCDCTL_ENDPOINTS', 'eco-1:2379,eco-2:22379'],
    file: '[file-1:2379, "https://file-2:2379"]',
    read: (c) => c.etcd.endpoints,
    expected: {
      flag: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
      'DISCOVERY_* env': ['http://denv:2379'],
      'ecosystem env': ['http://eco-1:2379', 'http://eco-2:22379'],
      'config file': ['http://file-1:2379', 'https://file-2:2379'],
      default: ['http://127.0.0.1:2379'],
    },
  },
  {
    setting: 'etcd-cacert',
    kind: 'string',
    flag: '/flag/ca.crt',
    discoveryEnv: ['DISCOVERY_ETCD_CACERT', '/denv/ca.crt'],
    ecosystemEnv: ['ETCDCTL_CACERT', '/eco/ca.crt'],
    file: '/file/ca.crt',
    read: (c) => c.etcd.cacert,
    expected: { flag: '/flag/ca.crt', 'DISCOVERY_* env': '/denv/ca.crt', 'ecosystem env': '/eco/ca.crt', 'config file': '/file/ca.crt', default: undefined },
  },
  {
    setting: 'etcd-user',
    kind: 'string',
    flag: 'u-flag',
    discoveryEnv: ['DISCOVERY_ETCD_USER', 'u-denv'],
    ecosystemEnv: ['ETCDCTL_USER', 'u-eco'],
    file: 'u-file',
    read: (c) => c.etcd.user,
    expected: { flag: 'u-flag', 'DISCOVERY_* env': 'u-denv', 'ecosystem env': 'u-eco', 'config file': 'u-file', default: undefined },
  },
  {
    setting: 'prefix',
    kind: 'string',
    flag: '/flag-prefix/',
    discoveryEnv: ['DISCOVERY_PREFIX', '/env-prefix'],
    file: '/file/prefix',
    read: (c) => c.prefix,
    expected: { flag: '/flag-prefix', 'DISCOVERY_* env': '/env-prefix', 'config file': '/file/prefix', default: '/discovery' },
  },
  {
    setting: 'docker-host',
    kind: 'string',
    flag: 'tcp://flag-host:2375',
    discoveryEnv: ['DISCOVERY_DOCKER_HOST', 'tcp://denv-host:2376'],
    ecosystemEnv: ['DOCKER_HOST', 'unix:///run/eco.sock'],
    file: '/run/file.sock',
    read: (c) => c.docker.host,
    expected: {
      flag: 'tcp://flag-host:2375',
      'DISCOVERY_* env': 'tcp://denv-host:2376',
      'ecosystem env': 'unix:///run/eco.sock',
      'config file': 'unix:///run/file.sock',
      default: 'unix:///var/run/docker.sock',
    },
  },
  {
    setting: 'docker-cert-path',
    kind: 'string',
    flag: '/flag/certs',
    ecosystemEnv: ['DOCKER_CERT_PATH', '/eco/certs'],
    file: '/file/certs',
    read: (c) => c.docker.certPath,
    expected: { flag: '/flag/certs', 'ecosystem env': '/eco/certs', 'config file': '/file/certs', default: undefined },
  },
  {
    setting: 'node',
    kind: 'string',
    flag: 'node-flag',
    discoveryEnv: ['DISCOVERY_NODE', 'node-env'],
    file: 'node-file',
    read: (c) => c.node,
    expected: { flag: 'node-flag', 'DISCOVERY_* env': 'node-env', 'config file': 'node-file', default: 'test-host' },
  },
  {
    setting: 'ttl',
    kind: 'duration',
    flag: '2500ms',
    discoveryEnv: ['DISCOVERY_TTL', '2m'],
    file: '1h',
    read: (c) => c.agent.ttlMs,
    expected: { flag: 2500, 'DISCOVERY_* env': 120_000, 'config file': 3_600_000, default: 10_000 },
  },
  {
    setting: 'deregister-critical-after',
    kind: 'duration',
    flag: '90',
    discoveryEnv: ['DISCOVERY_DEREGISTER_CRITICAL_AFTER', '1.5s'],
    file: '5m',
    read: (c) => c.agent.deregisterCriticalAfterMs,
    expected: { flag: 90_000, 'DISCOVERY_* env': 1500, 'config file': 300_000, default: undefined },
  },
  {
    setting: 'metrics-port',
    kind: 'port',
    flag: '9464',
    discoveryEnv: ['DISCOVERY_METRICS_PORT', '9000'],
    file: '9100',
    read: (c) => c.agent.metricsPort,
    expected: { flag: 9464, 'DISCOVERY_* env': 9000, 'config file': 9100, default: undefined },
  },
  {
    setting: 'check-concurrency',
    kind: 'int',
    flag: '8',
    discoveryEnv: ['DISCOVERY_CHECK_CONCURRENCY', '16'],
    file: '32',
    read: (c) => c.agent.checkConcurrency,
    expected: { flag: 8, 'DISCOVERY_* env': 16, 'config file': 32, default: 64 },
  },
  {
    setting: 'exposed-by-default',
    kind: 'bool',
    flag: false,
    discoveryEnv: ['DISCOVERY_EXPOSED_BY_DEFAULT', 'yes'],
    file: 'false',
    read: (c) => c.agent.exposedByDefault,
    expected: { flag: false, 'DISCOVERY_* env': true, 'config file': false, default: true },
  },
  {
    setting: 'advertise-address',
    kind: 'address',
    flag: '10.0.0.9',
    discoveryEnv: ['DISCOVERY_ADVERTISE_ADDRESS', 'host.internal'],
    file: '"[::1]"',
    read: (c) => c.agent.advertiseAddress,
    expected: { flag: '10.0.0.9', 'DISCOVERY_* env': 'host.internal', 'config file': '::1', default: undefined },
  },
  {
    setting: 'tags',
    kind: 'tags',
    flag: 'a,b\\,c',
    discoveryEnv: ['DISCOVERY_TAGS', 'env'],
    file: '[x, "y,z"]',
    read: (c) => c.agent.extraTags,
    expected: { flag: ['a', 'b,c'], 'DISCOVERY_* env': ['env'], 'config file': ['x', 'y,z'], default: [] },
  },
  {
    setting: 'explicit',
    kind: 'bool',
    flag: true,
    discoveryEnv: ['DISCOVERY_EXPLICIT', 'false'],
    file: 'true',
    read: (c) => c.agent.explicit,
    expected: { flag: true, 'DISCOVERY_* env': false, 'config file': true, default: false },
  },
  {
    setting: 'use-ip-from-label',
    kind: 'string',
    flag: 'com.example.ip',
    discoveryEnv: ['DISCOVERY_USE_IP_FROM_LABEL', 'ip'],
    file: 'overlay.ip',
    read: (c) => c.agent.ipFromLabel,
    expected: { flag: 'com.example.ip', 'DISCOVERY_* env': 'ip', 'config file': 'overlay.ip', default: undefined },
  },
  {
    setting: 'filter',
    kind: 'list',
    flag: ['label=team=a', 'name=web'],
    discoveryEnv: ['DISCOVERY_FILTER', 'label=team=b'],
    file: '[label=team=c, label=tier]',
    read: (c) => c.agent.containerFilters,
    expected: { flag: { label: ['team=a'], name: ['web'] }, 'DISCOVERY_* env': { label: ['team=b'] }, 'config file': { label: ['team=c', 'tier'] }, default: undefined },
  },
  {
    setting: 'address-mode',
    kind: 'enum',
    flag: 'container',
    discoveryEnv: ['DISCOVERY_ADDRESS_MODE', 'published'],
    file: 'container',
    read: (c) => c.agent.addressMode,
    expected: { flag: 'container', 'DISCOVERY_* env': 'published', 'config file': 'container', default: 'published' },
  },
]

describe('resolveConfig precedence: flag > DISCOVERY_* env > ETCDCTL_*/DOCKER_* env > config file > default', () => {
  const cases = PRECEDENCE.flatMap((row) =>
    LEVELS.map((level, index) => ({ row, level, index })).filter(({ row: r, level }) => level in r.expected),
  )

  it.each(cases.map((c) => [c.row.setting, c.row.kind, c.level, c] as const))(
    'Given %s (%s) set from the %s down, When resolved, Then that level wins',
    (_setting, _kind, _level, { row, index }) => {
      // Given: every source at or below `index` carries a value
      const flags: Record<string, unknown> = {}
      const env: Record<string, string> = {}
      if (index <= 0) flags[row.setting] = row.flag
      if (index <= 1 && row.discoveryEnv) env[row.discoveryEnv[0]] = row.discoveryEnv[1]
      if (index <= 2 && row.ecosystemEnv) env[row.ecosystemEnv[0]] = row.ecosystemEnv[1]
      if (index <= 3) write('discovery-agent.yaml', `${row.setting}: ${row.file}\n`)
      // When
      const config = resolve({ flags, env })
      // Then
      expect(row.read(config)).toEqual(row.expected[LEVELS[index]])
    },
  )

  it('Given a value only in the config file, When resolved, Then configFile names the file that was read', () => {
    // Given
    const file = write('discovery-agent.yaml', 'prefix: /from-file\n')
    // When
    const config = resolve()
    // Then
    expect(config.configFile).toBe(file)
    expect(config.prefix).toBe('/from-file')
  })

  it('Given an empty flag and an empty DISCOVERY_* variable, When resolved, Then both count as unset and the next source wins', () => {
    // Given / When
    const config = resolve({ flags: { prefix: '' }, env: { DISCOVERY_ETCD_ENDPOINTS: '', ETCDCTL_ENDPOINTS: 'eco:2379' } })
    // Then
    expect(config.prefix).toBe('/discovery')
    expect(config.etcd.endpoints).toEqual(['http://eco:2379'])
  })
})

describe('resolveConfig etcd user and password', () => {
  it.each([
    { name: 'ETCDCTL_USER=name:password is split', env: { ETCDCTL_USER: 'root:rootpw' }, user: 'root', password: 'rootpw' },
    { name: 'only the first colon splits', env: { ETCDCTL_USER: 'root:pa:ss' }, user: 'root', password: 'pa:ss' },
    { name: 'name: gives an empty password', env: { ETCDCTL_USER: 'root:' }, user: 'root', password: '' },
    { name: 'a plain user has no password', env: { ETCDCTL_USER: 'root' }, user: 'root', password: undefined },
    { name: 'an explicit password at the same level wins', env: { ETCDCTL_USER: 'root:inline', ETCDCTL_PASSWORD: 'explicit' }, user: 'root', password: 'explicit' },
    { name: 'a DISCOVERY_ password beats an ETCDCTL_ inline one', env: { ETCDCTL_USER: 'root:inline', DISCOVERY_ETCD_PASSWORD: 'better' }, user: 'root', password: 'better' },
    { name: 'DISCOVERY_ user:password is split too', env: { DISCOVERY_ETCD_USER: 'admin:s3cret' }, user: 'admin', password: 's3cret' },
    { name: 'a flag user:password beats a password in the file', flags: { 'etcd-user': 'root:fromflag' }, file: 'etcd-password: fromfile\n', user: 'root', password: 'fromflag' },
    { name: 'a flag user takes the ETCDCTL_ password', flags: { 'etcd-user': 'root' }, env: { ETCDCTL_PASSWORD: 'pw' }, user: 'root', password: 'pw' },
    { name: 'a numeric-looking password in the file keeps its zeros', file: 'etcd-user: root\netcd-password: 0123\n', user: 'root', password: '0123' },
  ])('Given $name, When resolved, Then user and password are as etcdctl reads them', ({ env, flags, file, user, password }) => {
    // Given
    if (file) write('discovery-agent.yaml', file)
    // When
    const config = resolve({ env, flags })
    // Then
    expect(config.etcd.user).toBe(user)
    expect(config.etcd.password).toBe(password)
  })

  it.each([
    { name: 'a password without a user', env: { DISCOVERY_ETCD_PASSWORD: 'pw' }, message: /an etcd password is set \(DISCOVERY_ETCD_PASSWORD\) but no user/ },
    { name: 'an empty user name before the colon', env: { ETCDCTL_USER: ':pw' }, message: /ETCDCTL_USER: the etcd user name is empty/ },
  ])('Given $name, When resolved, Then a UsageError says so', ({ env, message }) => {
    // When / Then
    expect(usageError(() => resolve({ env })).message).toMatch(message)
  })
})

describe('resolveConfig client certificate and key', () => {
  it.each([
    { name: '--etcd-cert without --etcd-key', flags: { 'etcd-cert': '/c.crt' }, env: {}, names: '--etcd-cert', missing: 'key' },
    { name: '--etcd-key without --etcd-cert', flags: { 'etcd-key': '/c.key' }, env: {}, names: '--etcd-key', missing: 'certificate' },
    { name: 'ETCDCTL_CERT without a key', flags: {}, env: { ETCDCTL_CERT: '/c.crt' }, names: 'ETCDCTL_CERT', missing: 'key' },
  ])('Given $name, When resolved, Then a UsageError names the one that was given and the one missing', ({ flags, env, names, missing }) => {
    // When
    const error = usageError(() => resolve({ flags, env }))
    // Then
    expect(error.message).toContain(names)
    expect(error.message).toContain(`no client ${missing}`)
    expect(error.hint).toContain('--etcd-cert and --etcd-key')
  })

  it('Given a cert by flag and its key by ETCDCTL_KEY, When resolved, Then both are used and bare endpoints get https', () => {
    // Given / When
    const config = resolve({ flags: { 'etcd-cert': '/c.crt', 'etcd-endpoints': '10.0.0.1:2379' }, env: { ETCDCTL_KEY: '/c.key' } })
    // Then
    expect(config.etcd).toMatchObject({ cert: '/c.crt', key: '/c.key', endpoints: ['https://10.0.0.1:2379'] })
  })

  it('Given only --etcd-cacert, When resolved, Then bare endpoints get https and explicit http stays', () => {
    // Given / When
    const config = resolve({ flags: { 'etcd-cacert': '/ca.crt', 'etcd-endpoints': 'a:2379,http://b:2379' } })
    // Then
    expect(config.etcd.endpoints).toEqual(['https://a:2379', 'http://b:2379'])
  })
})

describe('resolveConfig Docker TLS settings as the docker CLI reads them', () => {
  it.each([
    { value: '1', verify: true },
    { value: 'true', verify: true },
    { value: '0', verify: true },
    { value: 'anything', verify: true },
    { value: '', verify: false },
    { value: undefined, verify: false },
  ])('Given DOCKER_TLS_VERIFY=$value, When resolved, Then tlsVerify is $verify', ({ value, verify }) => {
    // Given / When
    const config = resolve({ env: value === undefined ? {} : { DOCKER_TLS_VERIFY: value } })
    // Then
    expect(config.docker.tlsVerify).toBe(verify)
  })

  it('Given docker-tls-verify: false in the file and no variable, When resolved, Then the file is read as a boolean', () => {
    // Given
    write('discovery-agent.yaml', 'docker-tls-verify: false\n')
    // When / Then
    expect(resolve().docker.tlsVerify).toBe(false)
  })
})

describe('resolveConfig bad values name their source', () => {
  it.each([
    { name: 'a bad --prefix', flags: { prefix: 'x' }, env: {}, message: "--prefix: prefix 'x' must start with /" },
    { name: 'a prefix with ..', flags: { prefix: '/a/../b' }, env: {}, message: "--prefix: prefix '/a/../b' contains '..'" },
    { name: 'a bad DISCOVERY_PREFIX', flags: {}, env: { DISCOVERY_PREFIX: 'nope' }, message: "DISCOVERY_PREFIX: prefix 'nope' must start with /" },
    { name: 'a bad DISCOVERY_TTL', flags: {}, env: { DISCOVERY_TTL: 'abc' }, message: "DISCOVERY_TTL: 'abc' is not a duration" },
    { name: 'a zero --ttl', flags: { ttl: '0s' }, env: {}, message: "--ttl: '0s' must be longer than zero" },
    { name: 'a bad DOCKER_HOST', flags: {}, env: { DOCKER_HOST: 'ssh://me@host' }, message: "DOCKER_HOST: 'ssh://me@host' has scheme ssh://" },
    { name: 'a bad ETCDCTL_ENDPOINTS', flags: {}, env: { ETCDCTL_ENDPOINTS: 'ftp://x:1' }, message: "ETCDCTL_ENDPOINTS: 'ftp://x:1' has scheme ftp:" },
    { name: 'a bad DISCOVERY_NODE', flags: {}, env: { DISCOVERY_NODE: 'a/b' }, message: "DISCOVERY_NODE: node name 'a/b' may hold only" },
    { name: 'a bad metrics port', flags: { 'metrics-port': '70000' }, env: {}, message: "--metrics-port '70000' is not a port number" },
    { name: 'a non-integer concurrency', flags: { 'check-concurrency': '1e3' }, env: {}, message: "--check-concurrency: '1e3' is not a positive integer" },
    { name: 'a bad address mode', flags: {}, env: { DISCOVERY_ADDRESS_MODE: 'host' }, message: "DISCOVERY_ADDRESS_MODE: 'host' is not one of published, container" },
    { name: 'a bad boolean', flags: {}, env: { DISCOVERY_EXPOSED_BY_DEFAULT: 'maybe' }, message: "DISCOVERY_EXPOSED_BY_DEFAULT: 'maybe' is not true or false" },
    { name: 'an empty endpoint list', flags: { 'etcd-endpoints': ' , ' }, env: {}, message: '--etcd-endpoints: the list is empty' },
    { name: 'a tag with a control character', flags: { tags: 'ok,bad\u0007' }, env: {}, message: "--tags: tag 'bad?' is too long or holds a control character" },
    { name: 'a label name with a space', flags: {}, env: { DISCOVERY_USE_IP_FROM_LABEL: 'my label' }, message: "DISCOVERY_USE_IP_FROM_LABEL: 'my label' is not a label name" },
  ])('Given $name, When resolved, Then one UsageError line names the source and the value', ({ flags, env, message }) => {
    // When / Then
    expect(usageError(() => resolve({ flags, env })).message).toContain(message)
  })
})

describe('resolveConfig config file', () => {
  it.each([
    { name: 'an unknown key', text: 'etcd-endpoint: x:1\n', key: 'etcd-endpoint', reason: 'unknown key', hint: 'known keys: etcd-endpoints' },
    { name: 'a snake_case key', text: 'etcd_endpoints: x:1\n', key: 'etcd_endpoints', reason: 'unknown key', hint: "did you mean 'etcd-endpoints'?" },
    { name: 'a bad duration', text: 'ttl: soon\n', key: 'ttl', reason: "'soon' is not a duration", hint: '10s' },
    { name: 'a bad prefix', text: 'prefix: discovery\n', key: 'prefix', reason: 'must start with /', hint: '/discovery' },
    { name: 'a bad endpoint', text: 'etcd-endpoints: [ "http://h:2379/v3" ]\n', key: 'etcd-endpoints', reason: 'has a path', hint: 'scheme://host:port' },
    { name: 'a bad port', text: 'metrics-port: 0\n', key: 'metrics-port', reason: 'is not a port number', hint: '65535' },
    { name: 'a mapping where a string belongs', text: 'node:\n  name: x\n', key: 'node', reason: 'is not a string', hint: 'a string' },
    { name: 'a list where a duration belongs', text: 'ttl: [1, 2]\n', key: 'ttl', reason: 'is not a duration', hint: 'duration' },
    { name: 'an unknown setting for another command', text: 'resync: 1x\n', key: 'resync', reason: 'not a duration', hint: '10s' },
  ])('Given a file with $name, When resolved, Then the error names the file, the key and the reason', ({ text, key, reason, hint }) => {
    // Given
    const file = write('discovery-agent.yaml', text)
    // When
    const error = usageError(() => resolve())
    // Then
    expect(error.message).toContain(`config file ${file}`)
    expect(error.message).toContain(`'${key}'`)
    expect(error.message).toContain(reason)
    expect(error.hint).toContain(hint)
  })

  it.each([
    { name: 'unclosed flow list', text: 'etcd-endpoints: [a:1\n', reason: 'not valid YAML', detail: 'at line 2, column 1' },
    { name: 'duplicate key', text: 'ttl: 1s\nttl: 2s\n', reason: 'not valid YAML', detail: 'Map keys must be unique at line 2' },
    { name: 'tab indentation', text: 'a:\n\t- b\n', reason: 'not valid YAML', detail: 'line 2' },
    { name: 'two documents', text: 'ttl: 1s\n---\nttl: 2s\n', reason: 'not valid YAML', detail: 'several documents (--- separators; keep one) at line 2' },
    { name: 'a list at the top', text: '- prefix: /x\n', reason: 'must be a mapping of settings', detail: 'not a list' },
    { name: 'a single string', text: 'just text\n', reason: 'must be a mapping of settings', detail: 'not a single value' },
  ])('Given a file with $name, When resolved, Then the error names the file and the reason', ({ text, reason, detail }) => {
    // Given
    const file = write('discovery-agent.yaml', text)
    // When
    const error = usageError(() => resolve())
    // Then
    expect(error.message).toContain(`config file ${file}`)
    expect(error.message).toContain(reason)
    expect(error.message).toContain(detail)
  })

  it.each([
    { name: 'an empty file', text: '' },
    { name: 'only comments', text: '# nothing set yet\n' },
    { name: 'a key with no value', text: 'prefix:\nttl: ~\n' },
  ])('Given $name, When resolved, Then it is read and every setting keeps its default', ({ text }) => {
    // Given
    const file = write('discovery-agent.yaml', text)
    // When
    const config = resolve()
    // Then
    expect(config.configFile).toBe(file)
    expect(config.prefix).toBe('/discovery')
    expect(config.agent.ttlMs).toBe(10_000)
  })

  it('Given --swarm with an address mode and a network, When resolved, Then the agent has Swarm settings; without --swarm it has none', () => {
    expect(resolve({ flags: { swarm: true, 'swarm-address-mode': 'task', 'swarm-network': 'backend' } }).agent.swarm).toEqual({ addressMode: 'task', network: 'backend' })
    expect(resolve({ env: { DISCOVERY_SWARM: 'true' } }).agent.swarm).toEqual({})
    expect(resolve().agent.swarm).toBeUndefined()
  })

  it('Given --swarm turned on or its network changed, When a reload compares configurations, Then each is a restart-only change (never half-applied)', () => {
    const before = resolve()
    const on = resolve({ flags: { swarm: true } })
    const network = resolve({ flags: { swarm: true, 'swarm-network': 'backend' } })
    expect(diffConfig(before, on, HOT_SETTINGS)).toEqual({ hot: [], restart: ['swarm'] })
    expect(diffConfig(on, network, HOT_SETTINGS)).toEqual({ hot: [], restart: ['swarm-network'] })
  })

  it('Given a Swarm setting without --swarm, or --swarm with --node swarm, When resolved, Then a UsageError names it', () => {
    expect(usageError(() => resolve({ flags: { 'swarm-network': 'backend' } })).message).toMatch(/--swarm-network needs --swarm/)
    expect(usageError(() => resolve({ flags: { swarm: true, node: 'swarm' } })).message).toMatch(/--node swarm: with --swarm that name holds/)
    expect(usageError(() => resolve({ flags: { swarm: true, 'swarm-address-mode': 'mesh' } })).message).toMatch(/mesh/)
  })

  it('Given an explicit --config that does not exist, When resolved, Then a UsageError names --config and the absolute path', () => {
    // When
    const error = usageError(() => resolve({ configFlag: 'missing.yaml' }))
    // Then
    expect(error.message).toBe(`--config: config file ${path.join(dir, 'missing.yaml')} does not exist`)
  })

  it('Given DISCOVERY_CONFIG pointing at a missing file, When resolved, Then the error names DISCOVERY_CONFIG', () => {
    // When / Then
    expect(usageError(() => resolve({ env: { DISCOVERY_CONFIG: '/nowhere/x.yaml' } })).message).toBe('DISCOVERY_CONFIG: config file /nowhere/x.yaml does not exist')
  })

  it('Given --config, DISCOVERY_CONFIG and ./discovery-agent.yaml, When resolved, Then --config (relative to cwd) is the file read', () => {
    // Given
    write('discovery-agent.yaml', 'prefix: /cwd\n')
    write('env.yaml', 'prefix: /env\n')
    const chosen = write('conf/chosen.yaml', 'prefix: /chosen\n')
    // When
    const config = resolve({ configFlag: 'conf/chosen.yaml', env: { DISCOVERY_CONFIG: path.join(dir, 'env.yaml') } })
    // Then
    expect(config.configFile).toBe(chosen)
    expect(config.prefix).toBe('/chosen')
  })

  it('Given DISCOVERY_CONFIG and ./discovery-agent.yaml, When resolved, Then DISCOVERY_CONFIG is the file read', () => {
    // Given
    write('discovery-agent.yaml', 'prefix: /cwd\n')
    const chosen = write('env.yaml', 'prefix: /env\n')
    // When / Then
    expect(resolve({ env: { DISCOVERY_CONFIG: chosen } }).prefix).toBe('/env')
  })

  it('Given a config file that is a directory, When resolved explicitly, Then the error says it cannot be read', () => {
    // Given
    mkdirSync(path.join(dir, 'a-dir'))
    // When / Then
    expect(usageError(() => resolve({ configFlag: 'a-dir' })).message).toBe(`config file ${path.join(dir, 'a-dir')} cannot be read (EISDIR)`)
  })
})

describe('default config file locations', () => {
  it('Given only $XDG_CONFIG_HOME/discovery-agent/config.yaml, When resolved, Then it is read', () => {
    // Given
    const file = write('xdg/discovery-agent/config.yaml', 'node: from-xdg\n')
    // When
    const config = resolve()
    // Then
    expect(config.configFile).toBe(file)
    expect(config.node).toBe('from-xdg')
  })

  it('Given both ./discovery-agent.yaml and the XDG file, When resolved, Then the one in the working directory wins', () => {
    // Given
    write('xdg/discovery-agent/config.yaml', 'node: from-xdg\n')
    write('discovery-agent.yaml', 'node: from-cwd\n')
    // When / Then
    expect(resolve().node).toBe('from-cwd')
  })

  it('Given no XDG_CONFIG_HOME, When resolved, Then $HOME/.config/discovery-agent/config.yaml is read', () => {
    // Given
    write('home/.config/discovery-agent/config.yaml', 'node: from-home\n')
    // When
    const config = resolve({ env: { XDG_CONFIG_HOME: '' } })
    // Then
    expect(config.node).toBe('from-home')
  })

  it.each([
    { env: { XDG_CONFIG_HOME: '/x' }, paths: ['/work/discovery-agent.yaml', '/x/discovery-agent/config.yaml'] },
    { env: { HOME: '/home/me' }, paths: ['/work/discovery-agent.yaml', '/home/me/.config/discovery-agent/config.yaml'] },
    { env: { XDG_CONFIG_HOME: '', HOME: '/home/me' }, paths: ['/work/discovery-agent.yaml', '/home/me/.config/discovery-agent/config.yaml'] },
  ])('Given $env, When the default paths are listed, Then they are $paths', ({ env, paths }) => {
    expect(defaultConfigPaths(env, '/work')).toEqual(paths)
  })
})

describe('normalizeEndpoints', () => {
  it.each([
    { input: '127.0.0.1:2379', tls: false, output: 'http://127.0.0.1:2379' },
    { input: '127.0.0.1:2379', tls: true, output: 'https://127.0.0.1:2379' },
    { input: 'etcd-1', tls: false, output: 'http://etcd-1:2379' },
    { input: 'etcd-1', tls: true, output: 'https://etcd-1:2379' },
    { input: 'http://Etcd.Example:12379', tls: true, output: 'http://etcd.example:12379' },
    { input: 'https://10.0.0.1', tls: false, output: 'https://10.0.0.1:2379' },
    { input: 'HTTPS://10.0.0.1:2379/', tls: false, output: 'https://10.0.0.1:2379' },
    { input: 'http://etcd:80', tls: false, output: 'http://etcd:80' },
    { input: 'https://etcd:443', tls: false, output: 'https://etcd:443' },
    { input: 'etcd:80', tls: false, output: 'http://etcd:80' },
    { input: '[::1]:2379', tls: false, output: 'http://[::1]:2379' },
    { input: '[::1]', tls: false, output: 'http://[::1]:2379' },
  ])('Given $input (TLS $tls), When normalised, Then it is $output', ({ input, tls, output }) => {
    expect(normalizeEndpoints([input], tls)).toEqual([output])
  })

  it.each([
    { input: 'ftp://etcd:2379', message: "--etcd-endpoints: 'ftp://etcd:2379' has scheme ftp: (etcd speaks http or https)" },
    { input: 'unix://etcd.sock', message: "'unix://etcd.sock' has scheme unix:" },
    { input: 'http://etcd:2379/v3', message: "'http://etcd:2379/v3' has a path" },
    { input: 'http://etcd:2379?x=1', message: 'has a path' },
    { input: 'http://:2379', message: 'is not an endpoint' },
    { input: 'etcd:99999', message: "'etcd:99999' is not an endpoint" },
    { input: 'etcd:0', message: 'has port 0' },
    { input: 'http://root:pw@etcd:2379', message: "'http://…@etcd:2379' holds credentials" },
    { input: 'a b:2379', message: 'is not an endpoint' },
  ])('Given $input, When normalised, Then it is rejected: $message', ({ input, message }) => {
    const error = usageError(() => normalizeEndpoints([input], false))
    expect(error.message).toContain(message)
    expect(error.message).not.toContain('pw')
  })
})

describe('normalizeDockerHost', () => {
  it.each([
    { input: 'unix:///var/run/docker.sock', output: 'unix:///var/run/docker.sock' },
    { input: '/var/run/docker.sock', output: 'unix:///var/run/docker.sock' },
    { input: ' unix:///run/d.sock ', output: 'unix:///run/d.sock' },
    { input: 'tcp://10.0.0.2:2376', output: 'tcp://10.0.0.2:2376' },
    { input: 'tcp://Docker.Example:2375', output: 'tcp://docker.example:2375' },
    { input: 'tcp://10.0.0.2', output: 'tcp://10.0.0.2' },
    { input: 'tcp://10.0.0.2:2376/', output: 'tcp://10.0.0.2:2376' },
    { input: 'tcp://[::1]:2375', output: 'tcp://[::1]:2375' },
    { input: 'http://docker:80', output: 'http://docker:80' },
    { input: 'https://docker:2376', output: 'https://docker:2376' },
  ])('Given $input, When normalised, Then it is $output', ({ input, output }) => {
    expect(normalizeDockerHost(input)).toBe(output)
  })

  it.each([
    { input: 'docker.sock', message: "docker host: 'docker.sock' is not unix:///path or tcp://host:port" },
    { input: '10.0.0.2:2376', message: 'is not unix:///path or tcp://host:port' },
    { input: 'unix://', message: 'needs an absolute socket path' },
    { input: 'unix://relative.sock', message: 'needs an absolute socket path' },
    { input: 'ssh://me@host', message: 'has scheme ssh://' },
    { input: 'npipe:////./pipe/docker_engine', message: 'has scheme npipe://' },
    { input: 'tcp://', message: 'needs host:port' },
    { input: 'tcp://:2375', message: 'needs host:port' },
    { input: 'tcp://h:99999', message: 'needs host:port' },
    { input: 'tcp://h:0', message: 'needs host:port' },
    { input: 'tcp://h:2375/v1.41', message: 'has a path' },
  ])('Given $input, When normalised, Then it is rejected: $message', ({ input, message }) => {
    expect(usageError(() => normalizeDockerHost(input)).message).toContain(message)
  })
})

describe('splitTags (Registrator SERVICE_TAGS and -tags)', () => {
  it.each([
    ['master,backups', ['master', 'backups']],
    ['/(;\\,:-_)/', ['/(;,:-_)/']],
    ['a\\,b,c', ['a,b', 'c']],
    [',a,,b,', ['a', 'b']],
    [' a , b ', ['a', 'b']],
    ['a\\b', ['a\\b']],
    ['trailing\\', ['trailing\\']],
    ['', []],
  ])('Given %j, When split, Then the tags are %j', (text, expected) => {
    // Given the text / When it is split / Then commas split it, except after a backslash, and order is kept
    expect(splitTags(text)).toEqual(expected)
  })
})

describe('ranges and secrets', () => {
  const base = { env: {}, cwd: '/nowhere', hostname: 'h', fileExists: () => false }
  it.each([
    ['--ttl 500ms (etcd refuses leases that short)', { ttl: '500ms' }, /--ttl: 500ms is out of range/],
    ['--ttl 48h', { ttl: '48h' }, /--ttl: 48h is out of range/],
    ['--resync 10ms (a busy loop)', { resync: '10ms' }, /--resync: 10ms is out of range/],
    ['--deregister-critical-after 100ms', { 'deregister-critical-after': '100ms' }, /out of range/],
    ['--ttl 30d (past Node timers)', { ttl: '720h' }, /out of range|too long/],
  ])('Given %s, When resolved, Then it is refused naming the flag and the range', (_what, flags, message) => {
    expect(() => resolveConfig({ ...base, flags })).toThrow(message)
  })

  it('Given --dns-ttl 0, When resolved, Then it is accepted (no caching)', () => {
    expect(resolveConfig({ ...base, flags: { 'dns-ttl': '0' } }).serve.dnsTtlSeconds).toBe(0)
  })

  it('Given a config file whose etcd-password is a list, When resolved, Then the error does not echo it', () => {
    const file = 'etcd-password:\n  - s3cr3t-value\n'
    let message = ''
    try {
      resolveConfig({ ...base, flags: {}, configFlag: '/x/c.yaml', fileExists: () => true, readFile: () => file })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(/etcd-password/)
    expect(message).not.toContain('s3cr3t-value')
  })
})
