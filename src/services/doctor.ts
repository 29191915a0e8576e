import { randomBytes } from 'node:crypto'
import type { Config } from '../core/config.js'
import { nodeKey } from '../core/keys.js'
import { withTimeout } from '../core/async.js'

export interface DoctorCheck {
  name: string
  ok: boolean
  /** A warning passes (ok stays true) but deserves attention. */
  warning?: boolean
  detail: string
  hint?: string
}

export interface DoctorReport {
  ok: boolean
  checks: DoctorCheck[]
}

const DIAL_TIMEOUT_MS = 2_000
const CALL_TIMEOUT_MS = 3_000

/**
 * Diagnoses Docker, etcd and config, reported in that order. Never hangs: every step has a
 * deadline. The Docker and etcd groups run side by side, each loading its client library
 * itself, so one group's network waits overlap the other's module loading (cold start).
 */
export async function runDoctor(config: Config, env: NodeJS.ProcessEnv): Promise<DoctorReport> {
  const [docker, etcd] = await Promise.all([dockerChecks(config, env), etcdChecks(config)])
  const checks: DoctorCheck[] = [
    { name: 'config', ok: true, detail: config.configFile ? `read ${config.configFile}` : 'no config file (flags, environment and defaults)' },
    ...docker,
    ...etcd,
  ]
  return { ok: checks.every((c) => c.ok), checks }
}

async function dockerChecks(config: Config, env: NodeJS.ProcessEnv): Promise<DoctorCheck[]> {
  const { createDockerClient, dockerUnavailable } = await import('../core/docker/client.js')
  const checks: DoctorCheck[] = []
  if (env.DOCKER_CONTEXT) {
    checks.push({
      name: 'docker context',
      ok: true,
      warning: true,
      detail: `DOCKER_CONTEXT=${env.DOCKER_CONTEXT} is set but ignored; using ${config.docker.host}`,
      hint: 'set DOCKER_HOST or --docker-host to the context’s endpoint',
    })
  }
  const docker = createDockerClient(config.docker, { timeoutMs: CALL_TIMEOUT_MS })
  try {
    await withTimeout(docker.ping(), CALL_TIMEOUT_MS, 'timed out')
    checks.push({ name: 'docker reachable', ok: true, detail: `Docker answers at ${config.docker.host}` })
  } catch (error) {
    const failure = dockerUnavailable(error, config.docker, 'connecting')
    checks.push({ name: 'docker reachable', ok: false, detail: failure.message, hint: failure.hint })
    return checks
  }
  let engine: EngineInfo | undefined
  try {
    const version = (await withTimeout(docker.version(), CALL_TIMEOUT_MS, 'timed out')) as unknown as VersionAnswer
    engine = engineFromVersion(version)
    checks.push({
      name: 'docker API version',
      ok: true,
      detail: engine.kind === 'podman' ? `Podman ${engine.version} through its Docker-compatible API ${version.ApiVersion}` : `engine ${version.Version}, API ${version.ApiVersion}`,
    })
  } catch (error) {
    checks.push({ name: 'docker API version', ok: false, detail: dockerUnavailable(error, config.docker, 'reading the version').message })
  }
  if (engine?.kind === 'podman') checks.push(...(await podmanChecks(docker, config)))
  try {
    const since = Math.floor(Date.now() / 1000)
    const stream = (await withTimeout(docker.getEvents({ since, until: since + 1 }), CALL_TIMEOUT_MS + 2_000, 'timed out')) as NodeJS.ReadableStream & { destroy?: () => void }
    stream.destroy?.()
    checks.push({ name: 'docker events', ok: true, detail: 'the event stream can be subscribed to' })
  } catch (error) {
    checks.push({
      name: 'docker events',
      ok: false,
      detail: dockerUnavailable(error, config.docker, 'subscribing to events').message,
      hint: 'the agent needs GET /events; check a proxy or socket filter in between',
    })
  }
  return checks
}

/** What GET /version answers; Podman adds itself to Components. */
export interface VersionAnswer {
  Version?: string
  ApiVersion?: string
  Components?: { Name?: string; Version?: string }[]
}

export interface EngineInfo {
  kind: 'docker' | 'podman'
  version: string
}

/** Docker or Podman, from /version: Podman names a "Podman Engine" component (Docker: "Engine"). */
export function engineFromVersion(answer: VersionAnswer): EngineInfo {
  const podman = (answer.Components ?? []).find((c) => typeof c?.Name === 'string' && /podman/i.test(c.Name))
  if (podman) return { kind: 'podman', version: podman.Version || answer.Version || 'unknown' }
  return { kind: 'docker', version: answer.Version ?? 'unknown' }
}

/** The parts of GET /info and of running containers' inspect data the Podman checks read. */
export interface PodmanFacts {
  /** /info SecurityOptions: rootless Podman lists `name=rootless`. */
  securityOptions: string[]
  /** Running containers with a HEALTHCHECK: when they started, how often the check should run, how many results exist. */
  healthchecked: { name: string; startedAt: string; intervalMs: number; startPeriodMs: number; results: number }[]
  now: number
}

/**
 * What differs when the agent talks to Podman, as doctor checks (warnings: the agent works,
 * but not quite as with Docker). Pure: the facts are read by podmanChecks.
 */
export function podmanWarnings(facts: PodmanFacts, config: Pick<Config, 'agent'>): DoctorCheck[] {
  const checks: DoctorCheck[] = []
  const rootless = facts.securityOptions.some((o) => /(^|,)name=rootless(,|$)/.test(o))
  if (rootless) {
    const container = config.agent.addressMode === 'container'
    checks.push({
      name: 'podman rootless networking',
      ok: true,
      warning: true,
      detail: container
        ? 'rootless Podman: container addresses live in a user network namespace (slirp4netns/pasta) and are not reachable from other hosts, yet --address-mode is container'
        : 'rootless Podman: published ports are forwarded by a user-space proxy and bindings report no host IP' +
          (config.agent.advertiseAddress ? '' : ', so instances get the host address the agent guesses'),
      hint: container
        ? 'use --address-mode published (and --advertise-address), or run Podman rootful'
        : 'set --advertise-address to the address other hosts reach this one at',
    })
  }
  const stalled = facts.healthchecked.filter((c) => {
    const started = Date.parse(c.startedAt)
    if (!Number.isFinite(started) || c.results > 0) return false
    return facts.now - started > c.startPeriodMs + 2 * c.intervalMs + 5_000
  })
  if (stalled.length > 0) {
    const names = stalled.slice(0, 3).map((c) => c.name).join(', ') + (stalled.length > 3 ? ` and ${stalled.length - 3} more` : '')
    checks.push({
      name: 'podman health checks',
      ok: true,
      warning: true,
      detail: `the HEALTHCHECK of ${names} has never run: Podman runs health checks from systemd timers, so they stay "starting" (instances unknown) without systemd`,
      hint: 'run Podman where systemd is PID 1, or run `podman healthcheck run <container>` from another timer at each interval',
    })
  }
  checks.push({
    name: 'podman events',
    ok: true,
    warning: true,
    detail: 'Podman names no signal in kill events and reports stop only as the container exits: instances are withdrawn at exit, not when a stop begins (Docker: at the SIGTERM)',
    hint: 'give services a stop grace their clients can ride out; health events (one per check run) are handled',
  })
  return checks
}

async function podmanChecks(docker: import('dockerode'), config: Config): Promise<DoctorCheck[]> {
  const facts: PodmanFacts = { securityOptions: [], healthchecked: [], now: Date.now() }
  try {
    const info = (await withTimeout(docker.info(), CALL_TIMEOUT_MS, 'timed out')) as { SecurityOptions?: unknown }
    if (Array.isArray(info.SecurityOptions)) facts.securityOptions = info.SecurityOptions.filter((o): o is string => typeof o === 'string')
    const running = await withTimeout(docker.listContainers({ filters: { status: ['running'] } }), CALL_TIMEOUT_MS, 'timed out')
    // Bounded: doctor stays quick on a host with hundreds of containers.
    const inspected = await Promise.all(
      running.slice(0, 50).map((c) => withTimeout(docker.getContainer(c.Id).inspect(), CALL_TIMEOUT_MS, 'timed out').catch(() => undefined)),
    )
    for (const raw of inspected) {
      const c = raw as unknown as { Name?: string; Config?: { Healthcheck?: { Test?: unknown[]; Interval?: number; StartPeriod?: number } }; State?: { StartedAt?: string; Health?: { Log?: unknown[] | null } } } | undefined
      const test = c?.Config?.Healthcheck?.Test
      if (!c || !Array.isArray(test) || test.length === 0 || test[0] === 'NONE') continue
      facts.healthchecked.push({
        name: (c.Name ?? '').replace(/^\//, ''),
        startedAt: c.State?.StartedAt ?? '',
        intervalMs: (c.Config?.Healthcheck?.Interval || 30e9) / 1e6,
        startPeriodMs: (c.Config?.Healthcheck?.StartPeriod || 0) / 1e6,
        results: c.State?.Health?.Log?.length ?? 0,
      })
    }
  } catch (error) {
    return [{ name: 'podman', ok: true, warning: true, detail: `could not read what differs from Docker: ${(error as Error).message.split('\n')[0]}` }]
  }
  return podmanWarnings(facts, config)
}

async function etcdChecks(config: Config): Promise<DoctorCheck[]> {
  const { createEtcdClient, describeCause } = await import('../core/etcd.js')
  const checks: DoctorCheck[] = []
  const secured = Boolean(config.etcd.cacert || config.etcd.cert || config.etcd.user)
  let anyReachable = false
  let version: string | undefined
  let leader = '0'
  let memberCount = 0
  let reachableMembers = 0

  const perEndpoint = await Promise.all(
    config.etcd.endpoints.map(async (endpoint) => {
      const client = createEtcdClient({ ...config.etcd, endpoints: [endpoint] }, { callTimeoutMs: CALL_TIMEOUT_MS, dialTimeoutMs: DIAL_TIMEOUT_MS, retries: 0 })
      try {
        const status = await withTimeout(client.maintenance.status(), CALL_TIMEOUT_MS + 500, 'timed out')
        // The status call needs no auth; a read proves the credentials too.
        if (config.etcd.user) await withTimeout(client.get(`${config.prefix}/doctor-auth-probe`).exec(), CALL_TIMEOUT_MS + 500, 'timed out')
        const members = await withTimeout(client.cluster.memberList({}), CALL_TIMEOUT_MS + 500, 'timed out').catch(() => undefined)
        return { endpoint, ok: true as const, status, members: members?.members.length ?? 0 }
      } catch (error) {
        return { endpoint, ok: false as const, error }
      } finally {
        client.close()
      }
    }),
  )
  for (const result of perEndpoint) {
    if (result.ok) {
      anyReachable = true
      reachableMembers += 1
      version ??= result.status.version
      if (result.status.leader !== '0') leader = result.status.leader
      memberCount = Math.max(memberCount, result.members)
      checks.push({ name: `etcd ${result.endpoint}`, ok: true, detail: `reachable (member ${hexId(result.status.header.member_id)})` })
    } else {
      const { cause, hint } = describeCause(result.error)
      checks.push({ name: `etcd ${result.endpoint}`, ok: false, detail: cause, hint })
    }
  }
  if (!anyReachable) return checks

  const quorum = Math.floor(memberCount / 2) + 1
  checks.push(
    leader !== '0'
      ? {
          name: 'etcd cluster',
          ok: true,
          detail: `leader ${hexId(leader)}, ${memberCount} member${memberCount === 1 ? '' : 's'}, quorum ${quorum}; ${reachableMembers} of ${config.etcd.endpoints.length} configured endpoint${config.etcd.endpoints.length === 1 ? '' : 's'} answered`,
        }
      : { name: 'etcd cluster', ok: false, detail: `no leader: quorum of ${quorum} lost`, hint: 'start enough members to restore quorum' },
  )
  checks.push({ name: 'etcd version', ok: true, detail: `server ${version}` })
  if (secured) {
    checks.push({
      name: 'etcd security',
      ok: true,
      detail: [config.etcd.cacert || config.etcd.cert ? 'TLS' : undefined, config.etcd.user ? `auth as ${config.etcd.user}` : undefined].filter(Boolean).join(' and ') + ' work',
    })
  }

  const client = createEtcdClient(config.etcd, { callTimeoutMs: CALL_TIMEOUT_MS, dialTimeoutMs: DIAL_TIMEOUT_MS, retries: 1 })
  try {
    const key = `${config.prefix}/doctor/${randomBytes(6).toString('hex')}`
    try {
      const lease = client.lease(5, { autoKeepAlive: false })
      lease.on('lost', () => undefined)
      await withTimeout(lease.put(key).value('doctor').exec(), CALL_TIMEOUT_MS + 500, 'timed out')
      const back = await withTimeout(client.get(key).string(), CALL_TIMEOUT_MS + 500, 'timed out')
      await withTimeout(client.delete().key(key).exec(), CALL_TIMEOUT_MS + 500, 'timed out')
      await lease.revoke().catch(() => undefined)
      checks.push(
        back === 'doctor'
          ? { name: 'registry write', ok: true, detail: `wrote, read back and deleted a leased key under ${config.prefix}/` }
          : { name: 'registry write', ok: false, detail: `read back ${JSON.stringify(back)} instead of what was written`, hint: 'another writer is using the prefix' },
      )
    } catch (error) {
      const { cause, hint } = describeCause(error)
      checks.push({ name: 'registry write', ok: false, detail: `writing under ${config.prefix}/: ${cause}`, hint })
    }
    try {
      const raw = await withTimeout(client.get(nodeKey(config.prefix, config.node)).string(), CALL_TIMEOUT_MS + 500, 'timed out')
      if (raw === null) {
        checks.push({ name: 'node name', ok: true, detail: `no live agent uses node name ${config.node}` })
      } else {
        const { parseNodeRecord } = await import('../core/schema.js')
        const parsed = parseNodeRecord(raw)
        const who = parsed.ok ? `pid ${parsed.value.pid} on ${parsed.value.hostname}, started ${parsed.value.startedAt}` : 'an unreadable node record'
        checks.push({
          name: 'node name',
          ok: true,
          warning: true,
          detail: `a live agent already uses node name ${config.node} (${who})`,
          hint: 'a second watch with this name will refuse to start; set --node to a unique name',
        })
      }
    } catch (error) {
      checks.push({ name: 'node name', ok: false, detail: describeCause(error).cause })
    }
  } finally {
    client.close()
  }
  return checks
}

/** etcd prints member ids in hex; so do we. */
function hexId(id: string): string {
  try {
    return BigInt(id).toString(16)
  } catch {
    return id
  }
}
