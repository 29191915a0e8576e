import { bodyPatternProblem } from '../core/health/body-pattern.js'
import type Dockerode from 'dockerode'
import { delay, withTimeout } from '../core/async.js'
import type { Config } from '../core/config.js'
import { formatDuration } from '../core/duration.js'
import { UsageError } from '../core/errors.js'
import {
  createCheckAgents,
  destroyCheckAgents,
  dockerHealthCheck,
  execCheck,
  firstLine,
  httpCheck,
  parseExpectStatus,
  tcpCheck,
  type CheckAgents,
  type CheckResult,
  type CheckStatus,
} from '../core/health/checks.js'
import { parseProbeTarget, type ProbeTarget } from '../core/health/probe-target.js'
import type { InstanceRecord } from '../core/model.js'
import type { Registry } from '../core/registry.js'
import { assertServiceName, clip } from '../core/validate.js'

export interface ProbeOptions {
  /** Target texts as the user typed them: `http(s)://…`, `tcp://host:port`, `docker://<container>`. */
  targets: string[]
  /** Probe every registered instance of this service. */
  service?: string
  /** With `service`: every instance must pass (default: any one). */
  all?: boolean
  /** Per-attempt timeout; default 5 s, or an instance's stored check timeout with `service`. */
  timeoutMs?: number
  /** http only: accepted statuses, e.g. `200-299`. */
  expectStatus?: string
  /** http only: a regular expression the body must match. */
  expectBody?: string
  /** docker:// only: run this command in the container instead of reading its HEALTHCHECK. */
  exec?: string
  /** Retry until healthy or this long has passed. Without it, one attempt. */
  waitMs?: number
  /** With `waitMs`: time between the starts of two attempts. Default 1 s. */
  intervalMs?: number
}

export interface ProbeResult {
  /** The target as given, or for a service instance the probe derived from its record. */
  target: string
  ok: boolean
  status: CheckStatus
  output: string
  latencyMs: number
  attempts: number
  /** Set for the instances of `--service`. */
  service?: string
  instance?: string
}

export interface ProbeReport {
  ok: boolean
  results: ProbeResult[]
}

export type ProbeProgress =
  /** An attempt left something unhealthy and another one follows. */
  | { type: 'retry'; attempt: number; remainingMs: number; failing: ProbeResult[] }
  /** Re-reading the service's instances failed during --wait; the last known set is kept. */
  | { type: 'registry-error'; message: string }

export type ProbeConnections = Pick<Config, 'etcd' | 'prefix' | 'docker'>

export const DEFAULT_PROBE_TIMEOUT_MS = 5_000
export const DEFAULT_PROBE_INTERVAL_MS = 1_000
const DOCKER_PING_TIMEOUT_MS = 5_000
const ETCD_CALL_TIMEOUT_MS = 5_000

/** What to probe, after every target and flag has been validated: nothing here has done I/O. */
export interface ProbePlan {
  targets: { text: string; target: ProbeTarget }[]
  service?: string
  all: boolean
  timeoutMs?: number
  expectStatus?: string
  expectBody?: string
  exec?: string
  waitMs?: number
  intervalMs: number
}

/** Validates every target and flag combination; throws a UsageError (exit 2) before any network I/O. */
export function planProbe(options: ProbeOptions): ProbePlan {
  const targets = options.targets.map((text) => ({ text: text.trim(), target: parseProbeTarget(text) }))
  const service = options.service === undefined ? undefined : assertServiceName(options.service, '--service')
  if (targets.length === 0 && service === undefined) {
    throw new UsageError('no targets to probe', { hint: 'give a target such as http://127.0.0.1:8080/health, tcp://db:5432, docker://web-1, or --service <name>' })
  }
  if (options.all && service === undefined) {
    throw new UsageError('--all applies only to --service', { hint: 'add --service <name>; several targets must already all pass' })
  }
  const kinds = new Set(targets.map((t) => t.target.kind))
  if (options.exec !== undefined) {
    if (!kinds.has('docker')) throw new UsageError('--exec needs a docker:// target', { hint: 'use e.g. docker://web-1 --exec "curl -fs localhost/health"' })
    if (options.exec.trim().length === 0) throw new UsageError('--exec is empty', { hint: 'give the command to run inside the container' })
  }
  if (options.expectStatus !== undefined || options.expectBody !== undefined) {
    if (!kinds.has('http') && service === undefined) {
      const flag = options.expectStatus !== undefined ? '--expect-status' : '--expect-body'
      throw new UsageError(`${flag} applies only to http(s) targets`, { hint: 'probe an http:// or https:// URL, or drop the flag' })
    }
    if (options.expectStatus !== undefined) parseExpectStatus(options.expectStatus)
    if (options.expectBody !== undefined) assertBodyPattern(options.expectBody)
  }
  if (options.intervalMs !== undefined && options.waitMs === undefined) {
    throw new UsageError('--interval applies only with --wait', { hint: 'add e.g. --wait 60s' })
  }
  return {
    targets,
    service,
    all: options.all ?? false,
    timeoutMs: options.timeoutMs,
    expectStatus: options.expectStatus,
    expectBody: options.expectBody,
    exec: options.exec,
    waitMs: options.waitMs,
    intervalMs: options.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS,
  }
}

function assertBodyPattern(pattern: string): void {
  const problem = bodyPatternProblem(pattern)
  if (problem) throw new UsageError(`--expect-body '${clip(pattern)}' ${problem}`, { hint: 'use an RE2 regular expression, e.g. "ok|healthy"' })
}

type Runner = (timeoutMs: number) => Promise<CheckResult>

interface Slot {
  target: string
  service?: string
  instance?: string
  timeoutMs: number
  run: Runner
  result?: CheckResult
  attempts: number
}

/**
 * Probes the targets (and the service's instances) once, or with `waitMs` again every
 * interval until healthy or the deadline. A target that passed is not probed again; with
 * `--service` (any) the first passing instance ends the wait. Unhealthy is a report with
 * `ok: false`, not an exception; a bad target or flag throws a UsageError before any I/O,
 * and unreachable etcd or Docker an UnavailableError. Docker and etcd clients are loaded
 * only when a docker:// target or `service` needs them, so an http probe starts light.
 */
export async function runProbe(
  options: ProbeOptions,
  connections: ProbeConnections,
  onProgress: (event: ProbeProgress) => void = () => undefined,
): Promise<ProbeReport> {
  const plan = planProbe(options)
  const agents = createCheckAgents()
  let registry: Registry | undefined
  try {
    const docker = plan.targets.some((t) => t.target.kind === 'docker') ? await connectDocker(connections) : undefined
    const targetSlots = plan.targets.map((t) => targetSlot(t.text, t.target, plan, agents, docker))
    let instanceSlots: Slot[] = []
    if (plan.service !== undefined) {
      const { Registry: RegistryClass } = await import('../core/registry.js')
      registry = RegistryClass.open(connections.etcd, connections.prefix, { callTimeoutMs: ETCD_CALL_TIMEOUT_MS, dialTimeoutMs: 2_000, retries: 1 })
    }

    const started = performance.now()
    const deadline = plan.waitMs === undefined ? undefined : started + plan.waitMs
    for (let attempt = 1; ; attempt++) {
      const attemptStart = performance.now()
      if (registry && plan.service !== undefined) {
        try {
          const records = (await registry.listInstances(plan.service)).entries.map((entry) => entry.value)
          instanceSlots = mergeInstanceSlots(instanceSlots, records, plan, agents)
        } catch (error) {
          // The first read decides: etcd unreachable is exit 3. Later, a blip keeps the last set.
          if (attempt === 1) throw error
          onProgress({ type: 'registry-error', message: (error as Error).message })
        }
      }
      const due = [...targetSlots.filter((slot) => !slotOk(slot)), ...dueInstanceSlots(instanceSlots, plan.all)]
      await Promise.all(
        due.map(async (slot) => {
          const budget = deadline === undefined ? slot.timeoutMs : Math.max(1, Math.min(slot.timeoutMs, Math.round(deadline - performance.now())))
          slot.result = await attemptOnce(slot.run, budget)
          slot.attempts++
        }),
      )
      const report = buildReport(targetSlots, instanceSlots, plan, attempt)
      if (report.ok || deadline === undefined) return report
      const next = attemptStart + plan.intervalMs
      if (next >= deadline) return report
      onProgress({ type: 'retry', attempt, remainingMs: Math.round(deadline - performance.now()), failing: report.results.filter((r) => !r.ok) })
      await delay(Math.max(0, next - performance.now()))
    }
  } finally {
    destroyCheckAgents(agents)
    registry?.close()
  }
}

async function connectDocker(connections: ProbeConnections): Promise<Dockerode> {
  const { createDockerClient, dockerUnavailable } = await import('../core/docker/client.js')
  const docker = createDockerClient(connections.docker)
  try {
    await withTimeout(docker.ping(), DOCKER_PING_TIMEOUT_MS, 'timed out')
  } catch (error) {
    throw dockerUnavailable(error, connections.docker, 'connecting to Docker')
  }
  return docker
}

function targetSlot(text: string, target: ProbeTarget, plan: ProbePlan, agents: CheckAgents, docker: Dockerode | undefined): Slot {
  const timeoutMs = plan.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
  const base = { target: text, timeoutMs, attempts: 0 }
  switch (target.kind) {
    case 'http':
      return { ...base, run: (ms) => httpCheck({ url: target.url, timeoutMs: ms, expectStatus: plan.expectStatus, expectBody: plan.expectBody, agent: agents }) }
    case 'tcp':
      return { ...base, run: (ms) => tcpCheck({ host: target.host, port: target.port, timeoutMs: ms }) }
    case 'docker': {
      const client = docker!
      if (plan.exec !== undefined) {
        const command = plan.exec
        return { ...base, run: (ms) => execCheck({ docker: client, container: target.container, command, timeoutMs: ms }) }
      }
      return { ...base, run: () => dockerHealthCheck({ docker: client, container: target.container }).then(explainNoHealthcheck) }
    }
  }
}

function explainNoHealthcheck(result: CheckResult): CheckResult {
  if (result.status !== 'unknown' || !result.output.startsWith('container has no HEALTHCHECK')) return result
  return { ...result, output: `${result.output} (use --exec "<cmd>" to run a check inside it)` }
}

/**
 * One slot per listed instance, in id order; an instance seen before keeps its attempts and
 * last result (so a passed one is not probed again under --all), unless its record changed.
 */
function mergeInstanceSlots(previous: Slot[], records: InstanceRecord[], plan: ProbePlan, agents: CheckAgents): Slot[] {
  const byInstance = new Map(previous.map((slot) => [slot.instance, slot]))
  return [...records]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((record) => {
      const fresh = instanceSlot(record, plan, agents)
      const old = byInstance.get(record.id)
      return old && old.target === fresh.target ? { ...fresh, result: old.result, attempts: old.attempts } : fresh
    })
}

/** The instance's stored http or tcp check; otherwise (none, exec, docker) a TCP connect to address:port. */
function instanceSlot(record: InstanceRecord, plan: ProbePlan, agents: CheckAgents): Slot {
  const check = record.check
  const timeoutMs = plan.timeoutMs ?? check?.timeout ?? DEFAULT_PROBE_TIMEOUT_MS
  const base = { service: record.service, instance: record.id, timeoutMs, attempts: 0 }
  if (check?.kind === 'http') {
    const expectStatus = plan.expectStatus ?? check.expectStatus
    const expectBody = plan.expectBody ?? check.expectBody
    return { ...base, target: check.target, run: (ms) => httpCheck({ url: check.target, timeoutMs: ms, expectStatus, expectBody, agent: agents }) }
  }
  let host = record.address
  let port = record.port
  if (check?.kind === 'tcp') {
    try {
      const parsed = parseProbeTarget(`tcp://${check.target}`)
      if (parsed.kind === 'tcp') ({ host, port } = parsed)
    } catch {
      // A stored target that does not parse falls back to the record's own address:port.
    }
  }
  const target = `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`
  return { ...base, target, run: (ms) => tcpCheck({ host, port, timeoutMs: ms }) }
}

function dueInstanceSlots(slots: Slot[], all: boolean): Slot[] {
  if (!all && slots.some(slotOk)) return []
  return slots.filter((slot) => !slotOk(slot))
}

const slotOk = (slot: Slot): boolean => slot.result?.status === 'passing'

/** A check that rejects or overruns its timeout is a critical result, never an exception. */
async function attemptOnce(run: Runner, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now()
  try {
    return await withTimeout(run(timeoutMs), timeoutMs, `timeout after ${timeoutMs} ms`)
  } catch (error) {
    return { status: 'critical', output: firstLine((error as Error).message ?? String(error)) || 'error', latencyMs: Math.round(performance.now() - started) }
  }
}

function buildReport(targetSlots: Slot[], instanceSlots: Slot[], plan: ProbePlan, attempt: number): ProbeReport {
  const results = [...targetSlots, ...instanceSlots].map(toResult)
  let ok = targetSlots.every(slotOk)
  if (plan.service !== undefined) {
    if (instanceSlots.length === 0) {
      results.push({
        target: `service ${plan.service}`,
        service: plan.service,
        ok: false,
        status: 'critical',
        output: 'no registered instances',
        latencyMs: 0,
        attempts: attempt,
      })
      ok = false
    } else {
      ok &&= plan.all ? instanceSlots.every(slotOk) : instanceSlots.some(slotOk)
    }
  }
  return { ok, results }
}

function toResult(slot: Slot): ProbeResult {
  const result = slot.result ?? { status: 'unknown' as const, output: 'not probed', latencyMs: 0 }
  return {
    target: slot.target,
    ...(slot.service === undefined ? {} : { service: slot.service, instance: slot.instance }),
    ok: result.status === 'passing',
    status: result.status,
    output: result.output,
    latencyMs: result.latencyMs,
    attempts: slot.attempts,
  }
}

/** The one line an unhealthy probe prints on stderr: how many failed, and the last error. */
export function describeProbeFailure(report: ProbeReport, options: Pick<ProbeOptions, 'waitMs' | 'service' | 'all'> = {}): string {
  const failing = report.results.filter((r) => !r.ok)
  const last = failing.at(-1)
  const within = options.waitMs === undefined ? '' : ` at the --wait deadline (${formatDuration(options.waitMs)})`
  const rule = options.service === undefined ? '' : `; --service ${options.service} needs ${options.all ? 'every instance' : 'one instance'} to pass`
  const head = `${failing.length} of ${report.results.length} target${report.results.length === 1 ? '' : 's'} unhealthy${within}${rule}`
  if (!last) return head
  const tries = last.attempts > 1 ? ` (${last.attempts} attempts)` : ''
  return `${head}; last error: ${last.target}: ${last.output}${tries}`
}
