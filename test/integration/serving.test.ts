import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, cliEnv, etcdFlags, runCli, startCli, uniquePrefix, waitFor, type LiveProcess } from '../support/cli.js'
import { Containers, dockerAt, etcdClient, nodeRecord, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'
import { testPorts } from '../support/ports.js'

/**
 * The read side as users run it: `serve` (no Docker, no campaign) and `watch --dns-addr
 * --http-addr` answering dig and curl-like clients from the registry in etcd; and the
 * agent's life under SIGHUP, a closed stdout pipe and a reader that stops reading.
 */
const exec = promisify(execFile)
const env = testEnv()
const etcd = etcdClient()
const tag = uniqueSuffix()
const pool = new Containers(dockerAt(env.dockerHost), `srv-${tag}`)
const prefix = uniquePrefix('serving')
const processes: LiveProcess[] = []
const agents: AgentProcess[] = []

async function dig(port: number, name: string, type = 'A'): Promise<{ status: string; answers: string[] }> {
  const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', name, type])
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'none'
  const section = stdout.split(';; ANSWER SECTION:')[1]?.split('\n\n')[0] ?? ''
  return { status, answers: section.split('\n').filter((l) => l.trim() && !l.startsWith(';')).map((l) => l.split(/\s+/).slice(4).join(' ')) }
}

afterAll(async () => {
  await Promise.all([...processes.map((p) => p.stop()), ...agents.map((a) => a.stop().catch(() => undefined))])
  await pool.removeAll()
  await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
  etcd.close()
})

describe('serve: DNS and HTTP from the registry, no Docker', () => {
  let dnsPort: number
  let httpPort: number

  beforeAll(async () => {
    ;[dnsPort, httpPort] = await testPorts(2)
    const server = startCli(['serve', '--dns-addr', `127.0.0.1:${dnsPort}`, '--http-addr', `127.0.0.1:${httpPort}`, ...etcdFlags(prefix)])
    processes.push(server)
    await waitFor(() => server.stderr.includes('Consul HTTP API on'), 30_000, `serve listening; stderr: ${server.stderr}`)
  })

  it('Given records registered in etcd, When dig and the Consul API ask, Then they answer from the view and follow changes', async () => {
    // Given two instances of api, one of them critical
    for (const [id, address] of [['api-1', '10.20.0.1'], ['api-2', '10.20.0.2']]) {
      const r = await runCli(['register', 'api', '--address', address, '--port', '9000', '--id', id, '--tag', 'blue', ...etcdFlags(prefix)])
      expect(r.code, r.stderr).toBe(0)
    }
    // Then dig sees both, SRV with the port
    await waitFor(async () => (await dig(dnsPort, 'api.service.discovery')).answers.length === 2, 15_000, 'both A records')
    expect((await dig(dnsPort, 'api.service.discovery')).answers.sort()).toEqual(['10.20.0.1', '10.20.0.2'])
    expect((await dig(dnsPort, 'blue.api.service.discovery', 'SRV')).answers.every((a) => a.startsWith('1 1 9000 '))).toBe(true)
    // And the Consul API lists the service with its tag, with an index
    const services = await fetch(`http://127.0.0.1:${httpPort}/v1/catalog/services`)
    expect(await services.json()).toMatchObject({ api: ['blue'] })
    const index = Number(services.headers.get('x-consul-index'))
    expect(index).toBeGreaterThan(0)
    // When one is deregistered, a blocking query on the service returns with a higher index
    const blocking = fetch(`http://127.0.0.1:${httpPort}/v1/health/service/api?index=${(await fetch(`http://127.0.0.1:${httpPort}/v1/health/service/api`)).headers.get('x-consul-index')}&wait=30s`)
    const d = await runCli(['deregister', 'api', 'api-2', ...etcdFlags(prefix)])
    expect(d.code, d.stderr).toBe(0)
    const answered = await blocking
    expect(((await answered.json()) as unknown[]).length).toBe(1)
    expect(Number(answered.headers.get('x-consul-index'))).toBeGreaterThan(index)
    // Then DNS follows, and an unknown service is NXDOMAIN
    await waitFor(async () => (await dig(dnsPort, 'api.service.discovery')).answers.length === 1, 15_000, 'one A record left')
    expect((await dig(dnsPort, `nope-${tag}.service.discovery`)).status).toBe('NXDOMAIN')
  })

  it('Given serve with nothing to serve (exit 2) or a taken port (exit 3), When it starts, Then it exits with one line naming the problem', async () => {
    const none = await runCli(['serve', ...etcdFlags(prefix)])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/neither --dns-addr nor --http-addr/)
    const taken = await runCli(['serve', '--http-addr', `127.0.0.1:${httpPort}`, ...etcdFlags(prefix)])
    expect(taken.code).toBe(3)
    expect(taken.stderr).toMatch(new RegExp(`--http-addr 127.0.0.1:${httpPort}: cannot listen \\(EADDRINUSE\\)`))
    expect(taken.stderr.split('\n').filter((l) => l.startsWith('Error:'))).toHaveLength(1)
  })
})

describe('watch serves its own registry view', () => {
  it('Given watch --dns-addr --http-addr, When a container starts and stops, Then DNS and HTTP follow it', async () => {
    const [dnsPort, httpPort] = await testPorts(2)
    const node = `srvw-${tag}`
    const agent = await startAgent({ prefix, node, args: ['--dns-addr', `127.0.0.1:${dnsPort}`, '--http-addr', `127.0.0.1:${httpPort}`] })
    agents.push(agent)
    const service = `web-${tag.replace(/[^a-z0-9]/g, '')}`
    const box = await pool.run('web', { env: { SERVICE_NAME: service } })
    const hostPort = await pool.hostPort(box.name)
    await waitFor(async () => (await dig(dnsPort, `${service}.service.discovery`, 'SRV')).answers.some((a) => a.startsWith(`1 1 ${hostPort} `)), 20_000, 'SRV with the published port')
    const health = (await (await fetch(`http://127.0.0.1:${httpPort}/v1/health/service/${service}?passing`)).json()) as { Node: { Node: string }; Service: { Port: number } }[]
    expect(health.map((h) => [h.Node.Node, h.Service.Port])).toEqual([[node, hostPort]])
    expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200)
    await box.container.stop({ t: 0 })
    await waitFor(async () => (await dig(dnsPort, `${service}.service.discovery`)).answers.length === 0, 20_000, 'gone from DNS')
    expect(await agent.stop()).toBe(0)
  })
})

describe('signals and pipes', () => {
  it('Given a running agent, When it gets SIGHUP, Then it re-reads its configuration and keeps running; SIGTERM still stops it cleanly', async () => {
    const node = `hup-${tag}`
    const agent = await startAgent({ prefix, node, args: ['--ttl', '3s'] })
    agents.push(agent)
    agent.proc.kill('SIGHUP')
    await agent.waitForEvent((e) => e.type === 'config.applied' && e.trigger === 'SIGHUP', 'SIGHUP re-read the configuration', 10_000)
    // Still renewing its lease a TTL later
    await new Promise((r) => setTimeout(r, 4_000))
    expect(await nodeRecord(etcd, prefix, node)).toBeDefined()
    expect(await agent.stop()).toBe(0)
    await waitFor(async () => !(await nodeRecord(etcd, prefix, node)), 5_000, 'node record revoked at once')
  })

  it('Given `watch --json` whose reader goes away, When stdout is closed, Then the agent neither dies nor wedges', async () => {
    const node = `pipe-${tag}`
    const agent = await startAgent({ prefix, node, args: ['--ttl', '3s', '--resync', '1s'] })
    agents.push(agent)
    // When the reader closes its end (like `| head -1` exiting)
    agent.proc.child.stdout!.destroy()
    // Then, several resyncs (each printing NDJSON) later, it still renews and answers signals
    await new Promise((r) => setTimeout(r, 5_000))
    expect(await nodeRecord(etcd, prefix, node)).toBeDefined()
    expect(await agent.stop()).toBe(0)
    await waitFor(async () => !(await nodeRecord(etcd, prefix, node)), 5_000, 'node record revoked at once')
  })

  it('Given `watch --json` whose reader stops reading (a full 4 KiB pipe), When it runs and then gets SIGTERM, Then it keeps renewing meanwhile and exits 0 within seconds, its node record revoked', async () => {
    const node = `stall-${tag}`
    // Python holds the pipe: it shrinks it to one page (F_SETPIPE_SZ) and never reads it.
    const script = [
      'import fcntl, os, signal, subprocess, sys, time',
      'r, w = os.pipe()',
      'fcntl.fcntl(w, 1031, 4096)',
      'p = subprocess.Popen(sys.argv[1:], stdout=w, stderr=subprocess.DEVNULL)',
      'os.close(w)',
      'print("started", flush=True)',
      'time.sleep(8)',
      'p.send_signal(signal.SIGTERM)',
      'start = time.time()',
      'try:',
      '    code = p.wait(timeout=40)',
      '    print(f"exit {code} after {time.time() - start:.1f}", flush=True)',
      'except subprocess.TimeoutExpired:',
      '    print("no exit within 40 s", flush=True)',
      '    p.kill()',
    ].join('\n')
    const args = [BIN, 'watch', '--json', ...etcdFlags(prefix), '--node', node, '--docker-host', env.dockerHost, '--ttl', '3s', '--resync', '100ms', '--no-exposed-by-default']
    const run = exec('/usr/bin/python3', ['-c', script, process.execPath, ...args], { env: cliEnv(), timeout: 90_000 })
    // While its output has nowhere to go (~10 resync lines a second), it still renews its lease
    await waitFor(async () => await nodeRecord(etcd, prefix, node), 20_000, 'the node record')
    await new Promise((resolve) => setTimeout(resolve, 5_000))
    expect(await nodeRecord(etcd, prefix, node)).toBeDefined()
    // Then SIGTERM: it stops, and gives the stalled reader only a short grace
    const { stdout } = await run
    const exited = /exit (-?\d+) after ([\d.]+)/.exec(stdout)
    expect(exited, stdout).not.toBeNull()
    expect(Number(exited![1])).toBe(0)
    expect(Number(exited![2])).toBeLessThan(10)
    expect(await nodeRecord(etcd, prefix, node)).toBeUndefined()
  })
})
