import { randomBytes } from 'node:crypto'
import Dockerode from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dockerHealthCheck, execCheck, type CheckResult } from '../../src/core/health/checks.js'
import { testEnv } from '../support/env.js'

const env = testEnv()
const docker = new Dockerode({ socketPath: new URL(env.dockerHost).pathname })
const suffix = `${process.pid}-${randomBytes(3).toString('hex')}`
const created: string[] = []

async function startContainer(name: string, options: Partial<Dockerode.ContainerCreateOptions> = {}): Promise<string> {
  const fullName = `health-checks-${name}-${suffix}`
  const container = await docker.createContainer({ Image: env.image, name: fullName, Labels: { 'discovery-test': 'health-checks' }, ...options })
  created.push(fullName)
  await container.start()
  return fullName
}

/** Polls a check until the predicate holds, with a generous bound (no timing assertions). */
async function until(check: () => Promise<CheckResult>, predicate: (result: CheckResult) => boolean, boundMs = 30_000): Promise<CheckResult> {
  const deadline = Date.now() + boundMs
  let last = await check()
  while (!predicate(last)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${boundMs} ms; last result: ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    last = await check()
  }
  return last
}

describe('health checks against the real dockerd', () => {
  let web: string

  beforeAll(async () => {
    // Fails (never skips) when dockerd or the local image is missing: nothing is pulled.
    await docker.getImage(env.image).inspect()
    web = await startContainer('web')
  })

  afterAll(async () => {
    await Promise.all(created.map((name) => docker.getContainer(name).remove({ force: true }).catch(() => undefined)))
  })

  describe('execCheck', () => {
    it('Given a running container, When the command exits 0, Then the check passes with its first output line', async () => {
      const result = await execCheck({ docker, container: web, command: 'echo ready; echo more', timeoutMs: 10_000 })
      expect(result).toMatchObject({ status: 'passing', output: 'exit 0: ready' })
    })

    it('Given a command that exits 3, When checked, Then it is critical with the exit code and first line', async () => {
      const result = await execCheck({ docker, container: web, command: 'echo oops; exit 3', timeoutMs: 10_000 })
      expect(result).toMatchObject({ status: 'critical', output: 'exit 3: oops' })
    })

    it('Given a command that writes only to stderr, When checked, Then that line is the output', async () => {
      const result = await execCheck({ docker, container: web, command: 'echo "bad thing" >&2; exit 1', timeoutMs: 10_000 })
      expect(result).toMatchObject({ status: 'critical', output: 'exit 1: bad thing' })
    })

    it('Given a command with no output, When it fails, Then the output is just the exit code', async () => {
      const result = await execCheck({ docker, container: web, command: 'exit 7', timeoutMs: 10_000 })
      expect(result).toMatchObject({ status: 'critical', output: 'exit 7' })
    })

    it('Given a real probe inside the container, When httpd answers or not, Then wget passes or fails the check', async () => {
      const up = await until(
        () => execCheck({ docker, container: web, command: 'wget -q -O - http://127.0.0.1:80/health', timeoutMs: 10_000 }),
        (result) => result.status === 'passing',
      )
      expect(up.output).toMatch(/^exit 0/)
      const missing = await execCheck({ docker, container: web, command: 'wget -q -O - http://127.0.0.1:80/nope', timeoutMs: 10_000 })
      expect(missing.status).toBe('critical')
      expect(missing.output).toMatch(/^exit 1: .*404/)
    })

    it('Given a command slower than the timeout, When checked, Then it is critical "timeout after N ms"', async () => {
      const result = await execCheck({ docker, container: web, command: 'sleep 5', timeoutMs: 300 })
      expect(result).toMatchObject({ status: 'critical', output: 'timeout after 300 ms' })
    })

    it('Given no such container, When checked, Then it is critical and says so', async () => {
      const result = await execCheck({ docker, container: `no-such-${suffix}`, command: 'true', timeoutMs: 10_000 })
      expect(result.status).toBe('critical')
      expect(result.output).toMatch(/no such container/i)
    })

    it('Given a stopped container, When checked, Then it is critical, not an exception', async () => {
      const stopped = await startContainer('stopped', { Cmd: ['sh', '-c', 'exit 0'] })
      await docker.getContainer(stopped).wait()
      const result = await execCheck({ docker, container: stopped, command: 'true', timeoutMs: 10_000 })
      expect(result.status).toBe('critical')
      expect(result.output).toMatch(/not running/i)
    })
  })

  describe('dockerHealthCheck', () => {
    it('Given a container without a HEALTHCHECK, When checked, Then it is unknown and says why', async () => {
      const result = await dockerHealthCheck({ docker, container: web })
      expect(result).toMatchObject({ status: 'unknown', output: 'container has no HEALTHCHECK' })
    })

    it('Given a HEALTHCHECK that follows a file, When the file comes and goes, Then the status goes unknown → passing → critical', async () => {
      // Given a container whose HEALTHCHECK passes only while /tmp/healthy exists
      const name = await startContainer('hc', {
        Healthcheck: {
          Test: ['CMD-SHELL', 'test -f /tmp/healthy && echo fine || { echo "no /tmp/healthy"; exit 1; }'],
          Interval: 200_000_000, // ns
          Timeout: 2_000_000_000,
          Retries: 1,
          StartPeriod: 60_000_000_000,
        },
      })
      const check = (): Promise<CheckResult> => dockerHealthCheck({ docker, container: name })
      // Then while starting (failures inside the start period don't count) it is unknown
      const starting = await check()
      expect(starting.status).toBe('unknown')
      expect(starting.output).toMatch(/^starting/)
      // When the file appears, Then it turns passing with the probe's output
      await execCheck({ docker, container: name, command: 'touch /tmp/healthy', timeoutMs: 10_000 })
      const healthy = await until(check, (result) => result.status === 'passing')
      expect(healthy.output).toBe('healthy: fine')
      // When the file goes, Then it turns critical with the last log line
      await execCheck({ docker, container: name, command: 'rm /tmp/healthy', timeoutMs: 10_000 })
      const unhealthy = await until(check, (result) => result.status === 'critical')
      expect(unhealthy.output).toBe('unhealthy: no /tmp/healthy')
    })

    it('Given a healthy container that is paused, When checked, Then it is critical "container is paused"', async () => {
      const name = await startContainer('paused', {
        Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 200_000_000, Timeout: 2_000_000_000, Retries: 1 },
      })
      await until(() => dockerHealthCheck({ docker, container: name }), (result) => result.status === 'passing')
      await docker.getContainer(name).pause()
      try {
        const result = await dockerHealthCheck({ docker, container: name })
        expect(result).toMatchObject({ status: 'critical', output: 'container is paused' })
      } finally {
        await docker.getContainer(name).unpause()
      }
    })

    it('Given no such container, When checked, Then it is critical and says so', async () => {
      const result = await dockerHealthCheck({ docker, container: `no-such-${suffix}` })
      expect(result.status).toBe('critical')
      expect(result.output).toMatch(/no such container/i)
    })
  })
})
