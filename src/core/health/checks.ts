import { compileBodyPattern, type BodyPattern } from './body-pattern.js'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { Writable } from 'node:stream'
import type Dockerode from 'dockerode'
import { UsageError } from '../errors.js'
import type { CheckSpec, HealthStatus } from '../model.js'
import { clip } from '../validate.js'

/**
 * One-shot health checks. A failing target is a result, never an exception: every check
 * resolves with a status and a short, human-readable output. Only bad configuration
 * (an unparsable `expectStatus`, an invalid body regex, a non-http URL) rejects, with a
 * UsageError, before any I/O.
 *
 * `unknown` is reported only by the docker check, when Docker itself has not decided yet
 * (`starting`, or no HEALTHCHECK): it is "no verdict", which the scheduler does not count.
 */
export type CheckStatus = HealthStatus

export interface CheckResult {
  status: CheckStatus
  /** Short, one line: `HTTP 200 in 3 ms`, `connect ECONNREFUSED 127.0.0.1:9`, `timeout after 2000 ms`. */
  output: string
  latencyMs: number
}

/** Body bytes read for `expectBody` (and drained otherwise) before the socket is given up. */
export const MAX_BODY_BYTES = 64 * 1024
const MAX_OUTPUT_CHARS = 200
const USER_AGENT = 'discovery-agent-health'

/** Keep-alive agents for both schemes, so one scheduler reuses sockets across runs. */
export interface CheckAgents {
  http: http.Agent
  https: https.Agent
}

/**
 * `insecure` skips TLS certificate verification (Kubernetes probes do; Consul does only
 * with `tls_skip_verify`). Off by default. Call `destroyCheckAgents` on shutdown.
 */
export function createCheckAgents(options: { maxSockets?: number; insecure?: boolean } = {}): CheckAgents {
  const common = { keepAlive: true, maxSockets: options.maxSockets ?? Infinity, scheduling: 'lifo' as const }
  return {
    http: new http.Agent(common),
    https: new https.Agent({ ...common, rejectUnauthorized: !options.insecure }),
  }
}

export function destroyCheckAgents(agents: CheckAgents): void {
  agents.http.destroy()
  agents.https.destroy()
}

// ---------- expected statuses ----------

export interface StatusRange {
  from: number
  to: number
}

/** The default when no `expectStatus` is given: any non-error answer. */
export const DEFAULT_EXPECT_STATUS: readonly StatusRange[] = [{ from: 200, to: 399 }]

const STATUS_PART_RE = /^(?:([1-5])xx|(\d{3})(?:-(\d{3}))?)$/i

/** `200`, `200,204`, `200-299`, `2xx` (and mixes such as `2xx,304`) → ranges. */
export function parseExpectStatus(text: string): StatusRange[] {
  const parts = text.split(',').map((part) => part.trim())
  const bad = (why: string): never => {
    throw new UsageError(`expected status '${clip(text)}' ${why}`, { hint: "use e.g. '200', '200,204', '200-299' or '2xx'" })
  }
  if (text.trim().length === 0) bad('is empty')
  return parts.map((part) => {
    const match = STATUS_PART_RE.exec(part)
    if (!match) return bad(`has '${clip(part, 20)}', which is not a status, a range or a class`)
    if (match[1] !== undefined) {
      const hundreds = Number(match[1]) * 100
      return { from: hundreds, to: hundreds + 99 }
    }
    const from = Number(match[2])
    const to = match[3] === undefined ? from : Number(match[3])
    if (from < 100 || to > 599) bad(`has '${part}', outside 100-599`)
    if (from > to) bad(`has the range '${part}', whose start is after its end`)
    return { from, to }
  })
}

export function statusMatches(ranges: readonly StatusRange[], status: number): boolean {
  return ranges.some((range) => status >= range.from && status <= range.to)
}

function bodyPattern(pattern: string): BodyPattern {
  try {
    return compileBodyPattern(pattern)
  } catch (error) {
    throw new UsageError(`expected body '${clip(pattern)}' ${(error as Error).message}`, { hint: 'use an RE2 regular expression, e.g. "ok|healthy"' })
  }
}

// ---------- http ----------

export interface HttpCheckOptions {
  url: string
  timeoutMs: number
  /** Accepted statuses, e.g. `200-299`; default 200-399. */
  expectStatus?: string
  /** A regular expression the first 64 KiB of the body must match. */
  expectBody?: string
  /** A keep-alive agent matching the URL's scheme, or both. Without one, Node's global agents are used. */
  agent?: http.Agent | CheckAgents
}

function pickAgent(agent: HttpCheckOptions['agent'], protocol: string): http.Agent | undefined {
  if (agent === undefined || agent instanceof http.Agent) return agent
  return protocol === 'https:' ? agent.https : agent.http
}

/**
 * GET the URL once. Redirects are not followed (a 3xx is an answer, passing by default,
 * like Consul and Kubernetes). 429 is a warning unless expected: the service is up but
 * shedding load. The body is always drained or destroyed so the socket goes back to the pool.
 */
export function httpCheck(options: HttpCheckOptions): Promise<CheckResult> {
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    return Promise.reject(new UsageError(`health check URL '${clip(options.url)}' is not a URL`, { hint: 'use e.g. http://10.0.0.5:8080/health' }))
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new UsageError(`health check URL '${clip(options.url)}' is not http or https`, { hint: 'use http:// or https://' }))
  }
  let expected: readonly StatusRange[]
  let wantBody: BodyPattern | undefined
  try {
    expected = options.expectStatus === undefined ? DEFAULT_EXPECT_STATUS : parseExpectStatus(options.expectStatus)
    wantBody = options.expectBody === undefined ? undefined : bodyPattern(options.expectBody)
  } catch (error) {
    return Promise.reject(error)
  }
  const expectedText = options.expectStatus ?? '200-399'
  const transport = url.protocol === 'https:' ? https : http
  const agent = pickAgent(options.agent, url.protocol)
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)

  return new Promise<CheckResult>((resolve) => {
    let settled = false
    let request: http.ClientRequest | undefined
    const finish = (status: CheckStatus, output: string, latencyMs = elapsed()): void => {
      if (settled) return
      settled = true
      resolve({ status, output, latencyMs })
    }
    // One deadline for the whole exchange, body included: it settles the result if nothing
    // has yet, and always frees a socket whose body never ends.
    const timer = setTimeout(() => {
      finish('critical', `timeout after ${options.timeoutMs} ms`)
      request?.destroy()
    }, options.timeoutMs)
    const fail = (error: Error): void => {
      clearTimeout(timer)
      finish('critical', oneLine(error.message))
    }

    const judge = (response: http.IncomingMessage, body: string | undefined): void => {
      const code = response.statusCode ?? 0
      const ms = elapsed()
      const head = `HTTP ${code} in ${ms} ms`
      if (!statusMatches(expected, code)) {
        if (code === 429) finish('warning', `${head} (too many requests)`, ms)
        else finish('critical', `${head} (expected ${expectedText})`, ms)
      } else if (wantBody && !wantBody.test(body ?? '')) {
        finish('critical', `${head}, body does not match /${clip(wantBody.source, 60)}/`, ms)
      } else {
        finish('passing', head, ms)
      }
    }

    const send = (retried: boolean): void => {
      let current: http.ClientRequest
      try {
        current = transport.request(url, {
          method: 'GET',
          agent,
          headers: { 'user-agent': USER_AGENT, accept: '*/*' },
        })
      } catch (error) {
        // e.g. an https agent passed for an http URL: a caller bug, reported as the check's output.
        fail(error as Error)
        return
      }
      request = current
      current.on('error', (error: NodeJS.ErrnoException) => {
        // A pooled socket the server closed while idle fails at once on reuse; that says
        // nothing about the target, so retry once on a fresh socket (Node's documented pattern).
        if (!retried && !settled && current.reusedSocket && error.code === 'ECONNRESET') send(true)
        else fail(error)
      })
      current.on('response', (response) => onResponse(response))
      current.end()
    }

    const onResponse = (response: http.IncomingMessage): void => {
      // Without a body regex the status decides at once; the body is still drained (up to
      // the cap) so the keep-alive socket is reused, or destroyed when the body is too large.
      if (!wantBody) judge(response, undefined)
      const chunks: Buffer[] = []
      let bytes = 0
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        if (wantBody) chunks.push(chunk)
        if (bytes >= MAX_BODY_BYTES) {
          if (wantBody) judge(response, Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8'))
          response.destroy()
        }
      })
      response.on('end', () => {
        if (wantBody) judge(response, Buffer.concat(chunks).toString('utf8'))
      })
      response.on('error', fail)
      response.on('close', () => {
        clearTimeout(timer)
        finish('critical', `HTTP ${response.statusCode ?? 0}: connection closed before the body ended`)
      })
    }

    send(false)
  })
}

// ---------- tcp ----------

export interface TcpCheckOptions {
  host: string
  port: number
  timeoutMs: number
}

/** Connects and closes at once: the port accepting connections is the whole check. */
export function tcpCheck(options: TcpCheckOptions): Promise<CheckResult> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)
  return new Promise<CheckResult>((resolve) => {
    let settled = false
    const finish = (status: CheckStatus, output: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ status, output, latencyMs: elapsed() })
    }
    const socket = net.connect({ host: options.host, port: options.port })
    const timer = setTimeout(() => finish('critical', `timeout after ${options.timeoutMs} ms`), options.timeoutMs)
    socket.once('connect', () => finish('passing', `TCP connect to ${hostPort(options.host, options.port)} in ${elapsed()} ms`))
    socket.once('error', (error) => finish('critical', oneLine(error.message)))
  })
}

// ---------- exec ----------

export interface ExecCheckOptions {
  docker: Dockerode
  /** Container name or id. */
  container: string
  /** Run as `sh -c <command>`, like a Docker HEALTHCHECK CMD-SHELL. */
  command: string
  timeoutMs: number
}

/**
 * Runs the command through Docker exec; exit 0 passes, anything else is critical
 * (Kubernetes exec probes; Consul's "exit 1 = warning" is not used: exit 0 passes, anything else fails
 * only "exit 0 = pass"). Docker has no API to kill an exec, so on timeout the command
 * may keep running inside the container; only our side of the stream is closed.
 */
export async function execCheck(options: ExecCheckOptions): Promise<CheckResult> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)
  const abort = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      abort.abort()
      resolve('timeout')
    }, options.timeoutMs)
  })
  const run = async (): Promise<CheckResult> => {
    const container = options.docker.getContainer(options.container)
    const exec = await container.exec({
      Cmd: ['sh', '-c', options.command],
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: false,
      Tty: false,
      abortSignal: abort.signal,
    })
    // hijack=false: the multiplexed output arrives as a plain HTTP response body that ends at exit.
    const stream = await exec.start({ hijack: false, stdin: false, Detach: false, Tty: false, abortSignal: abort.signal })
    const collected = await collectDemuxed(options.docker, stream, abort.signal)
    const exitCode = await waitForExitCode(exec, abort.signal)
    const line = firstLine(collected)
    const output = `exit ${exitCode ?? '?'}${line ? `: ${line}` : ''}`
    return { status: exitCode === 0 ? 'passing' : 'critical', output, latencyMs: elapsed() }
  }
  try {
    const outcome = await Promise.race([run(), deadline])
    if (outcome === 'timeout') return { status: 'critical', output: `timeout after ${options.timeoutMs} ms`, latencyMs: elapsed() }
    return outcome
  } catch (error) {
    if (abort.signal.aborted) return { status: 'critical', output: `timeout after ${options.timeoutMs} ms`, latencyMs: elapsed() }
    return { status: 'critical', output: dockerErrorText(error), latencyMs: elapsed() }
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

/** Both streams into one capped buffer, in arrival order, as `docker exec` would print them. */
function collectDemuxed(docker: Dockerode, stream: NodeJS.ReadableStream, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let bytes = 0
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (bytes < MAX_BODY_BYTES) {
          chunks.push(chunk)
          bytes += chunk.length
        }
        callback()
      },
    })
    const done = (): void => resolve(Buffer.concat(chunks).toString('utf8'))
    const destroy = (): void => (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.()
    signal.addEventListener('abort', destroy, { once: true })
    docker.modem.demuxStream(stream, sink, sink)
    stream.on('end', done)
    stream.on('close', done)
    stream.on('error', reject)
  })
}

/** The stream can end a moment before dockerd records the exit code, so ask a few times. */
async function waitForExitCode(exec: Dockerode.Exec, signal: AbortSignal): Promise<number | null> {
  for (let attempt = 0; ; attempt++) {
    const info = await exec.inspect({ abortSignal: signal })
    if (!info.Running || attempt >= 50) return info.ExitCode
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

// ---------- docker HEALTHCHECK ----------

export type DockerHealth = 'starting' | 'healthy' | 'unhealthy'

/** `starting` and no HEALTHCHECK are "not decided yet", which is `unknown`, not a failure. */
export function dockerHealthToStatus(health: DockerHealth | undefined): 'unknown' | 'passing' | 'critical' {
  switch (health) {
    case 'healthy':
      return 'passing'
    case 'unhealthy':
      return 'critical'
    default:
      return 'unknown'
  }
}

export interface DockerHealthCheckOptions {
  docker: Dockerode
  container: string
}

/** Reads the container's own HEALTHCHECK verdict; a paused or stopped container is critical whatever it says. */
export async function dockerHealthCheck(options: DockerHealthCheckOptions): Promise<CheckResult> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)
  let info: Dockerode.ContainerInspectInfo
  try {
    info = await options.docker.getContainer(options.container).inspect()
  } catch (error) {
    return { status: 'critical', output: dockerErrorText(error), latencyMs: elapsed() }
  }
  const state = info.State
  if (state.Paused) return { status: 'critical', output: 'container is paused', latencyMs: elapsed() }
  if (!state.Running) return { status: 'critical', output: `container is not running (${state.Status})`, latencyMs: elapsed() }
  const health = state.Health
  if (!health) return { status: 'unknown', output: 'container has no HEALTHCHECK', latencyMs: elapsed() }
  const status = dockerHealthToStatus(health.Status as DockerHealth)
  const last = health.Log?.at(-1)
  const line = last ? firstLine(last.Output ?? '') : ''
  const output = line ? `${health.Status}: ${line}` : health.Status
  return { status, output, latencyMs: elapsed() }
}

// ---------- helpers ----------

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * Runs a check as stored in a record once: the agent's checks and the leader's checks of
 * external services both schedule this. `exec` needs the Docker client and the container.
 */
export function runStoredCheck(spec: CheckSpec, context: { agents: CheckAgents; docker?: Dockerode; container?: string }): Promise<CheckResult> {
  switch (spec.kind) {
    case 'http':
      return httpCheck({ url: spec.target, timeoutMs: spec.timeout, expectStatus: spec.expectStatus, expectBody: spec.expectBody, agent: context.agents })
    case 'tcp': {
      // `host:port` or `[v6]:port`, as records store it.
      const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(spec.target)
      return tcpCheck({ host: match?.[1] ?? spec.target, port: Number(match?.[2] ?? 0), timeoutMs: spec.timeout })
    }
    case 'exec':
      if (context.docker && context.container) return execCheck({ docker: context.docker, container: context.container, command: spec.target, timeoutMs: spec.timeout })
      return Promise.resolve({ status: 'unknown', output: 'exec check without a container', latencyMs: 0 })
    default:
      return Promise.resolve({ status: 'unknown', output: `${spec.kind} checks are followed from Docker, not run`, latencyMs: 0 })
  }
}

/** First non-empty line, trimmed and clipped: outputs end up in etcd records and table cells. */
export function firstLine(text: string): string {
  const line = text.split(/\r?\n/).find((candidate) => candidate.trim().length > 0) ?? ''
  return clip(line.trim(), MAX_OUTPUT_CHARS)
}

function oneLine(text: string): string {
  return firstLine(text) || 'error'
}

/** dockerode errors read `(HTTP code 404) no such container - No such container: x `; keep Docker's own message. */
function dockerErrorText(error: unknown): string {
  const json = (error as { json?: unknown }).json
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return oneLine((json as { message: string }).message)
  }
  return oneLine(error instanceof Error ? error.message : String(error))
}
