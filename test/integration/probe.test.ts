import { randomBytes } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import Dockerode from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdFlags, runCli, startCli, uniquePrefix, waitFor, type CliResult, type LiveProcess } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { testPorts } from '../support/ports.js'

const env = testEnv()
const docker = new Dockerode({ socketPath: new URL(env.dockerHost).pathname })
const suffix = `${process.pid}-${randomBytes(3).toString('hex')}`
const containers: string[] = []
const closers: (() => Promise<void>)[] = []

interface ProbeJson {
  ok: boolean
  results: { target: string; ok: boolean; status: string; output: string; latencyMs: number; attempts: number; service?: string; instance?: string }[]
}

/** A real HTTP server on 127.0.0.1; the handler decides each answer. Closed in afterAll. */
async function httpServer(handler: http.RequestListener, port = 0): Promise<{ port: number; url: string; requests: () => number }> {
  let requests = 0
  const server = http.createServer((req, res) => {
    requests++
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  const bound = (server.address() as net.AddressInfo).port
  return { port: bound, url: `http://127.0.0.1:${bound}`, requests: () => requests }
}

/** A TCP server that accepts connections and never answers: an HTTP probe can only time out. */
async function silentServer(): Promise<number> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => sockets.add(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  )
  return (server.address() as net.AddressInfo).port
}

/** A port nothing listens on (bound once by us, then released). */
async function closedPort(): Promise<number> {
  return (await testPorts(1))[0]
}

const ok: http.RequestListener = (req, res) => {
  if (req.url === '/missing') res.writeHead(404).end('not here')
  else res.writeHead(200, { 'content-type': 'text/plain' }).end('status: ready')
}

/** The exit code of a long-running CLI, or a failure after a generous bound. */
async function exitCode(live: LiveProcess, boundMs = 60_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the probe did not exit within ${boundMs} ms; stderr:\n${live.stderr}`)), boundMs)
  })
  try {
    return await Promise.race([live.exited, bound])
  } finally {
    clearTimeout(timer)
  }
}

const probe = (args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<CliResult> => runCli(['probe', ...args], { env: extraEnv })

function parseJson(result: CliResult): ProbeJson {
  try {
    return JSON.parse(result.stdout) as ProbeJson
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`)
  }
}

async function startContainer(name: string, options: Partial<Dockerode.ContainerCreateOptions> = {}): Promise<string> {
  const fullName = `probe-${name}-${suffix}`
  const container = await docker.createContainer({ Image: env.image, name: fullName, Labels: { 'discovery-test': 'probe' }, ...options })
  containers.push(fullName)
  await container.start()
  return fullName
}

afterAll(async () => {
  await Promise.all(closers.map((close) => close()))
  await Promise.all(containers.map((name) => docker.getContainer(name).remove({ force: true }).catch(() => undefined)))
})

describe('probe http:// and tcp://', () => {
  let web: Awaited<ReturnType<typeof httpServer>>

  beforeAll(async () => {
    web = await httpServer(ok)
  })

  it('Given a server answering 200, When probed, Then it exits 0 with a ✓ line naming the target', async () => {
    // When
    const result = await probe([`${web.url}/health`])
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^✓ ${web.url}/health HTTP 200 in \\d+ ms\\n$`))
    expect(result.stderr).toBe('')
  })

  it('Given a path that answers 404, When probed, Then it exits 1 with ✗, the status and the last error on stderr', async () => {
    const result = await probe([`${web.url}/missing`])
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^✗ .*\/missing critical: HTTP 404 in \d+ ms \(expected 200-399\)/)
    expect(result.stderr).toMatch(/^Error: 1 of 1 target unhealthy; last error: .*\/missing: HTTP 404/)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('Given --expect-status 404, When the path answers 404, Then it passes', async () => {
    const result = await probe([`${web.url}/missing`, '--expect-status', '404'])
    expect(result.code, result.stdout + result.stderr).toBe(0)
  })

  it('Given --expect-body, When the body matches or not, Then it passes or fails', async () => {
    const match = await probe([`${web.url}/`, '--expect-body', 'status: (ready|ok)'])
    expect(match.code, match.stdout + match.stderr).toBe(0)
    const miss = await probe([`${web.url}/`, '--expect-body', '^healthy$'])
    expect(miss.code).toBe(1)
    expect(miss.stdout).toMatch(/body does not match/)
  })

  it('Given a listening TCP port, When probed with tcp://, Then it exits 0', async () => {
    const result = await probe([`tcp://127.0.0.1:${web.port}`])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^✓ tcp:\/\/127\.0\.0\.1:\d+ TCP connect to 127\.0\.0\.1:\d+ in \d+ ms/)
  })

  it('Given a closed port, When probed over tcp and http, Then both fail with exit 1 well within their timeout', async () => {
    // Given
    const port = await closedPort()
    // When
    const result = await probe([`tcp://127.0.0.1:${port}`, `http://127.0.0.1:${port}/`, '--timeout', '3s', '--json'])
    // Then
    expect(result.code).toBe(1)
    const report = parseJson(result)
    expect(report.ok).toBe(false)
    for (const entry of report.results) {
      expect(entry).toMatchObject({ ok: false, status: 'critical', attempts: 1 })
      // Refused at once: the failure is the refusal, not the 3 s timeout running out.
      expect(entry.output).toMatch(/ECONNREFUSED/)
    }
  })

  it('Given a server that accepts but never answers, When probed with --timeout 500ms, Then it fails with "timeout after 500 ms"', async () => {
    const port = await silentServer()
    const result = await probe([`http://127.0.0.1:${port}/`, '--timeout', '500ms', '--json'])
    expect(result.code).toBe(1)
    const [entry] = parseJson(result).results
    expect(entry).toMatchObject({ ok: false, status: 'critical', output: 'timeout after 500 ms', attempts: 1 })
    // Generous bound: it gave up at its timeout rather than hanging.
    expect(entry.latencyMs).toBeLessThan(5_000)
  })

  it('Given two targets, one healthy and one not, When probed, Then both are listed and it exits 1', async () => {
    const port = await closedPort()
    const result = await probe([`${web.url}/`, `tcp://127.0.0.1:${port}`])
    expect(result.code).toBe(1)
    const lines = result.stdout.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^✓ /)
    expect(lines[1]).toMatch(/^✗ tcp:\/\/127\.0\.0\.1:\d+ critical: connect ECONNREFUSED/)
    expect(result.stderr).toMatch(/^Error: 1 of 2 targets unhealthy/)
  })

  it('Given --json, When probed, Then stdout is exactly { ok, results: [{ target, ok, status, output, latencyMs, attempts }] }', async () => {
    const result = await probe([`${web.url}/health`, `tcp://127.0.0.1:${web.port}`, '--json'])
    expect(result.code, result.stderr).toBe(0)
    const report = parseJson(result)
    expect(Object.keys(report).sort()).toEqual(['ok', 'results'])
    expect(report.ok).toBe(true)
    expect(report.results.map((r) => r.target)).toEqual([`${web.url}/health`, `tcp://127.0.0.1:${web.port}`])
    for (const entry of report.results) {
      expect(Object.keys(entry).sort()).toEqual(['attempts', 'latencyMs', 'ok', 'output', 'status', 'target'])
      expect(entry).toMatchObject({ ok: true, status: 'passing', attempts: 1 })
      expect(typeof entry.output).toBe('string')
      expect(Number.isInteger(entry.latencyMs)).toBe(true)
    }
  })
})

describe('probe rejects bad targets and flags with exit 2, before any I/O', () => {
  let web: Awaited<ReturnType<typeof httpServer>>

  beforeAll(async () => {
    web = await httpServer(ok)
  })

  it.each([
    ['an unknown scheme', ['ftp://127.0.0.1/x'], /unknown scheme/],
    ['a port out of range', ['http://127.0.0.1:70000/'], /port '70000' is not a port number/],
    ['a tcp port out of range', ['tcp://127.0.0.1:0'], /port '0' is not a port number/],
    ['a malformed URL', ['http://exa mple.com/'], /is not a valid URL/],
    ['a target without a scheme', ['127.0.0.1:80'], /is not a URL/],
    ['a tcp target without a port', ['tcp://127.0.0.1'], /has no port/],
    ['no targets', [], /no targets to probe/],
    ['--all without --service', ['http://127.0.0.1/', '--all'], /--all applies only to --service/],
    ['--exec without a docker:// target', ['http://127.0.0.1/', '--exec', 'true'], /--exec needs a docker:\/\/ target/],
    ['a bad --expect-status', ['http://127.0.0.1/', '--expect-status', '2xx,abc'], /expected status/],
    ['a bad --expect-body regex', ['http://127.0.0.1/', '--expect-body', '(unclosed'], /not a regular expression/],
    ['a bad --timeout', ['http://127.0.0.1/', '--timeout', 'soon'], /--timeout: 'soon' is not a duration/],
    ['--interval without --wait', ['http://127.0.0.1/', '--interval', '1s'], /--interval applies only with --wait/],
    ['an invalid --service name', ['--service', 'Bad_Name'], /--service 'Bad_Name'/],
  ])('Given %s, When probed, Then it exits 2 with one line on stderr', async (_what, args, message) => {
    const result = await probe(args)
    expect(result.code, result.stdout + result.stderr).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/^Error: /)
    expect(result.stderr).toMatch(message)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('Given a good target before a bad one, When probed, Then nothing is requested from the good one', async () => {
    const result = await probe([`${web.url}/`, 'gopher://127.0.0.1/'])
    expect(result.code).toBe(2)
    expect(web.requests()).toBe(0)
  })

  it('Given --json and a bad target, When probed, Then stdout is a JSON usage error with exit 2', async () => {
    const result = await probe(['ftp://127.0.0.1/', '--json'])
    expect(result.code).toBe(2)
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { kind: 'usage', exitCode: 2 } })
  })
})

describe('probe --wait', () => {
  it('Given a server that comes up late, When probed with --wait, Then it retries with progress on stderr and exits 0', async () => {
    // Given a port with nothing on it yet
    const port = await closedPort()
    // When the probe starts waiting
    const live = startCli(['probe', `http://127.0.0.1:${port}/ready`, '--wait', '60s', '--interval', '200ms', '--timeout', '1s', '--json'])
    try {
      await waitFor(() => /waiting \(attempt 2, \d+s left\): http:\/\/127\.0\.0\.1:\d+\/ready: .*ECONNREFUSED/.test(live.stderr), 30_000, 'progress lines on stderr')
      // And the server comes up
      await httpServer(ok, port)
      // Then the probe passes
      const code = await exitCode(live)
      expect(code, live.stderr).toBe(0)
      const report = JSON.parse(live.stdout) as ProbeJson
      expect(report.ok).toBe(true)
      expect(report.results[0]).toMatchObject({ ok: true, status: 'passing' })
      expect(report.results[0].attempts).toBeGreaterThan(2)
    } finally {
      live.kill('SIGKILL')
    }
  })

  it('Given a target that never comes up, When probed with --wait 2s, Then it gives up at the deadline with exit 1 and the last error', async () => {
    const port = await closedPort()
    const started = Date.now()
    const result = await probe([`tcp://127.0.0.1:${port}`, '--wait', '2s', '--interval', '300ms'])
    const elapsed = Date.now() - started
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^✗ tcp:\/\/127\.0\.0\.1:\d+ critical: connect ECONNREFUSED .* \[\d+ attempts\]$/m)
    expect(result.stderr).toMatch(/waiting \(attempt 1, \ds left\)/)
    expect(result.stderr).toMatch(/Error: 1 of 1 target unhealthy at the --wait deadline \(2s\); last error: tcp:.*ECONNREFUSED.* \(\d+ attempts\)/)
    // It kept trying for about the wait (generous bounds: a loaded machine is slow, not fast).
    expect(elapsed).toBeGreaterThanOrEqual(1_500)
    expect(elapsed).toBeLessThan(30_000)
  })

  it('Given a passing and a failing target, When waiting, Then the passing one is probed once and the other until the deadline', async () => {
    const web = await httpServer(ok)
    const port = await closedPort()
    const result = await probe([`${web.url}/`, `tcp://127.0.0.1:${port}`, '--wait', '1s', '--interval', '200ms', '--json'])
    expect(result.code).toBe(1)
    const [good, bad] = parseJson(result).results
    expect(good).toMatchObject({ ok: true, attempts: 1 })
    expect(bad.ok).toBe(false)
    expect(bad.attempts).toBeGreaterThan(1)
    expect(web.requests()).toBe(1)
  })
})

describe('probe --service against the real etcd cluster', () => {
  const prefix = uniquePrefix('probe')
  let live: Awaited<ReturnType<typeof httpServer>>
  let closed: number

  async function register(service: string, id: string, port: number, extra: string[] = []): Promise<void> {
    const result = await runCli(['register', service, '--address', '127.0.0.1', '--port', String(port), '--id', id, ...extra, ...etcdFlags(prefix)])
    expect(result.code, result.stderr).toBe(0)
  }

  beforeAll(async () => {
    live = await httpServer(ok)
    closed = await closedPort()
    // Given "web": one instance on a live port (no check: TCP connect), one on a closed port,
    // and one whose own port is closed but whose stored http check points at the live server.
    await register('web', 'web-up', live.port)
    await register('web', 'web-down', closed)
    await register('web', 'web-checked', closed, ['--check-http', `${live.url}/health`])
    // And "api": two healthy instances.
    await register('api', 'api-1', live.port)
    await register('api', 'api-2', live.port, ['--check-tcp'])
  })

  it('Given one failing instance among three, When probed (any), Then it exits 0 and lists every instance', async () => {
    const result = await probe(['--service', 'web', ...etcdFlags(prefix)])
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^✓ http:\/\/127\.0\.0\.1:\d+\/health \(web\/web-checked\) HTTP 200/)
    expect(lines[1]).toMatch(/^✗ tcp:\/\/127\.0\.0\.1:\d+ \(web\/web-down\) critical: connect ECONNREFUSED/)
    expect(lines[2]).toMatch(/^✓ tcp:\/\/127\.0\.0\.1:\d+ \(web\/web-up\) TCP connect/)
  })

  it('Given the same instances, When probed with --all, Then it exits 1 naming the failing instance', async () => {
    const result = await probe(['--service', 'web', '--all', '--json', ...etcdFlags(prefix)])
    expect(result.code).toBe(1)
    const report = parseJson(result)
    expect(report.ok).toBe(false)
    expect(report.results.map((r) => [r.instance, r.ok])).toEqual([
      ['web-checked', true],
      ['web-down', false],
      ['web-up', true],
    ])
    // The stored http check was used, not a TCP connect to the instance's (closed) port.
    expect(report.results[0]).toMatchObject({ target: `${live.url}/health`, service: 'web', status: 'passing' })
    expect(result.stderr).toMatch(/needs every instance to pass; last error: tcp:.*ECONNREFUSED/)
  })

  it('Given every instance healthy, When probed with --all, Then it exits 0', async () => {
    const result = await probe(['--service', 'api', '--all', '--json', ...etcdFlags(prefix)])
    expect(result.code, result.stderr).toBe(0)
    expect(parseJson(result).results.map((r) => [r.instance, r.ok])).toEqual([
      ['api-1', true],
      ['api-2', true],
    ])
  })

  it('Given a service with no instances, When probed, Then it exits 1 saying so', async () => {
    const result = await probe(['--service', 'nothing-here', ...etcdFlags(prefix)])
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^✗ service nothing-here critical: no registered instances/)
  })

  it('Given a service registered late, When probed with --wait, Then it re-reads the registry and passes once an instance is healthy', async () => {
    const waiting = startCli(['probe', '--service', 'late', '--wait', '60s', '--interval', '200ms', ...etcdFlags(prefix)])
    try {
      await waitFor(() => waiting.stderr.includes('no registered instances'), 30_000, 'a waiting line')
      await register('late', 'late-1', live.port)
      const code = await exitCode(waiting)
      expect(code, waiting.stderr).toBe(0)
      expect(waiting.stdout).toMatch(/^✓ tcp:\/\/127\.0\.0\.1:\d+ \(late\/late-1\)/)
    } finally {
      waiting.kill('SIGKILL')
    }
  })

  it('Given etcd unreachable, When probed with --service, Then it exits 3 with one line', async () => {
    const result = await probe(['--service', 'web', '--etcd-endpoints', `127.0.0.1:${closed}`, '--prefix', prefix])
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/^Error: .*connection refused/)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })
})

describe('probe docker:// against the real dockerd', () => {
  beforeAll(async () => {
    // Fails (never skips) when dockerd or the local image is missing: nothing is pulled.
    await docker.getImage(env.image).inspect()
  })

  it('Given a container whose HEALTHCHECK turns healthy, When probed with --wait, Then it exits 0 with the healthcheck output', async () => {
    // Given
    const name = await startContainer('hc', {
      Healthcheck: { Test: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1/ || exit 1'], Interval: 300_000_000, Timeout: 2_000_000_000, Retries: 1 },
    })
    // When
    const result = await probe([`docker://${name}`, '--wait', '60s', '--interval', '300ms', '--json'], { DOCKER_HOST: env.dockerHost })
    // Then
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(parseJson(result).results[0]).toMatchObject({ target: `docker://${name}`, ok: true, status: 'passing' })
    expect(parseJson(result).results[0].output).toMatch(/^healthy/)
  })

  it('Given a container whose HEALTHCHECK fails, When probed, Then it exits 1 once Docker calls it unhealthy', async () => {
    const name = await startContainer('sick', {
      Healthcheck: { Test: ['CMD-SHELL', 'echo "no /tmp/ok"; exit 1'], Interval: 200_000_000, Timeout: 2_000_000_000, Retries: 1 },
    })
    // Poll until Docker has decided (starting → unhealthy), then probe once.
    await waitFor(async () => (await docker.getContainer(name).inspect()).State.Health?.Status === 'unhealthy', 30_000, 'unhealthy')
    const result = await probe([`docker://${name}`], { DOCKER_HOST: env.dockerHost })
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^✗ docker:\/\/\S+ critical: unhealthy: no \/tmp\/ok/)
  })

  it('Given a container without a HEALTHCHECK, When probed, Then it exits 1 and suggests --exec', async () => {
    const name = await startContainer('plain')
    const result = await probe([`docker://${name}`], { DOCKER_HOST: env.dockerHost })
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/unknown: container has no HEALTHCHECK \(use --exec/)
  })

  it('Given --exec, When the command passes or fails inside the container, Then it exits 0 or 1 with the exit code', async () => {
    const name = await startContainer('exec')
    const pass = await probe([`docker://${name}`, '--exec', 'wget -q -O- http://127.0.0.1/ >/dev/null', '--wait', '60s', '--interval', '300ms'], { DOCKER_HOST: env.dockerHost })
    expect(pass.code, pass.stdout + pass.stderr).toBe(0)
    expect(pass.stdout).toMatch(/^✓ docker:\/\/\S+ exit 0/)
    const fail = await probe([`docker://${name}`, '--exec', 'echo broken; exit 3'], { DOCKER_HOST: env.dockerHost })
    expect(fail.code).toBe(1)
    expect(fail.stdout).toMatch(/^✗ docker:\/\/\S+ critical: exit 3: broken/)
  })

  it('Given no such container, When probed, Then it exits 1 (Docker answered)', async () => {
    const result = await probe([`docker://probe-missing-${suffix}`], { DOCKER_HOST: env.dockerHost })
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/no such container/i)
  })

  it('Given Docker unreachable, When probed, Then it exits 3 with one line', async () => {
    const result = await probe([`docker://anything`, '--docker-host', `unix:///tmp/no-docker-${suffix}.sock`])
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/^Error: connecting to Docker failed at unix:\/\/\/tmp\/no-docker-.*: socket not found/)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('Given Docker unreachable, When only http targets are probed, Then Docker is never needed', async () => {
    const web = await httpServer(ok)
    const result = await probe([`${web.url}/`, '--docker-host', `unix:///tmp/no-docker-${suffix}.sock`, '--etcd-endpoints', '127.0.0.1:1'])
    expect(result.code, result.stderr).toBe(0)
  })
})
