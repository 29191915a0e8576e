#!/usr/bin/env node
// The Consul HTTP API under load: wrk against `/v1/health/service/<name>?passing` at INSTANCES
// instances of that service, side by side (same run, same wrk settings, interleaved) with nginx
// serving a static file holding the very same JSON — the floor for "send these bytes over HTTP".
//
//   - the agent: `bin/run.cjs serve --http-addr 127.0.0.1:<port>` over a unique prefix holding
//     INSTANCES manual records of one service, as an installed bin runs; it answers from memory,
//     building and serializing the answer per request;
//   - the floor: nginx (one worker: the agent's JavaScript runs on one thread too) started with
//     its own temp config on loopback, the file captured from the agent's own answer.
//
// wrk with keep-alive connections, `--latency` for its percentiles. No budget is set:
// the rows report req/s, p50/p99 and the ratio as information.
//
// Usage: node bench/http-api.js   (BENCH_HTTP_SECONDS=10 BENCH_HTTP_ROUNDS=2 BENCH_HTTP_CONNECTIONS=32)
import { spawn } from 'node:child_process'
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { Etcd3 } from 'etcd3'
import { manyInstances, seedInstances } from '../test/support/bench-seed.js'
import { commandFor, freePort, isMain, printRows, root, round, startProcess, testEnv } from './common.js'

const INSTANCES = 1_000



/** GET `url` on a fresh connection: { status, text }. */
function getText(url, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      let text = ''
      response.setEncoding('utf8').on('data', (chunk) => (text += chunk))
      response.on('end', () => resolve({ status: response.statusCode, text }))
      response.on('error', reject)
    })
    request.on('timeout', () => request.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)))
    request.on('error', reject)
  })
}

function execute(command, args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  let last
  while (Date.now() < deadline) {
    try {
      const value = await fn()
      if (value) return value
    } catch (error) {
      last = error
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last.message})` : ''}`)
}

/** wrk's duration ("812.34us", "12.5ms", "1.02s", "2.00m") in ms. */
function durationMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (!m) return null
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2]]
}

function parseWrk(text) {
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text)
    return m ? durationMs(m[1]) : null
  }
  const requests = /(\d+) requests in/.exec(text)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN),
    transfer: /Transfer\/sec:\s+(\S+)/.exec(text)?.[1] ?? '',
    requests: requests ? Number(requests[1]) : 0,
    p50: pct(50),
    p99: pct(99),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  }
}

function nginxConfig(dir, port) {
  const temp = (name) => path.join(dir, 'temp', name)
  return `daemon off;
master_process off;
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/json;
  server {
    listen 127.0.0.1:${port};
    location / {
      root ${path.join(dir, 'www')};
      try_files /health.json =404;
    }
  }
}
`
}

async function measure({
  seconds = Number(process.env.BENCH_HTTP_SECONDS ?? 10),
  rounds = Number(process.env.BENCH_HTTP_ROUNDS ?? 2),
  connections = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 32),
  log = (line) => process.stderr.write(`bench/http-api: ${line}\n`),
} = {}) {
  for (const [tool, pkg] of [['wrk', 'wrk'], ['nginx', 'nginx-light']]) {
    if ((await execute('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is not installed (Debian: ${pkg})`)
  }
  const env = testEnv()
  const runId = randomBytes(3).toString('hex')
  const prefix = `/bench-http-${runId}`
  const service = `bh-${runId}`
  const requestPath = `/v1/health/service/${service}?passing`
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-http-${runId}-`))
  const etcd = new Etcd3({ hosts: env.etcdEndpoints })
  const processes = []
  try {
    const seeded = await seedInstances({ endpoints: env.etcdEndpoints, prefix, instances: manyInstances(service, INSTANCES, { firstOctets: '10.88', port: 8080, tags: ['v1'] }) })
    log(`seeded ${seeded.seeded} records in ${seeded.ms} ms`)

    const agentPort = await freePort()
    const agent = startProcess(...commandFor([path.join(root, 'bin/run.cjs'), 'serve', '--http-addr', `127.0.0.1:${agentPort}`, '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', `bench-http-${runId}`]), 'agent')
    processes.push(agent)
    const agentUrl = `http://127.0.0.1:${agentPort}${requestPath}`
    // The agent's own answer, once all instances are in its view, becomes nginx's file
    const body = await waitFor(async () => {
      const { status, text } = await getText(agentUrl)
      return status === 200 && JSON.parse(text).length === INSTANCES ? text : undefined
    }, 60_000, `the agent to answer ${INSTANCES} instances`).catch((error) => Promise.reject(new Error(`${error.message}: ${agent.output()}`)))

    // mkdtemp makes the dir 0700; nginx workers may run as another user
    chmodSync(dir, 0o755)
    mkdirSync(path.join(dir, 'www'))
    mkdirSync(path.join(dir, 'temp'))
    writeFileSync(path.join(dir, 'www', 'health.json'), body, { mode: 0o644 })
    const nginxPort = await freePort()
    writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, nginxPort))
    const nginx = startProcess('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], 'nginx')
    processes.push(nginx)
    const nginxUrl = `http://127.0.0.1:${nginxPort}${requestPath}`
    await waitFor(async () => (await getText(nginxUrl)).text === body, 30_000, 'nginx to serve the file').catch((error) => Promise.reject(new Error(`${error.message}: ${nginx.output()}`)))

    const subjects = [
      { name: 'agent', url: agentUrl, proc: agent },
      { name: 'nginx', url: nginxUrl, proc: nginx },
    ]
    const wrk = async (url, secs) => {
      const result = await execute('wrk', ['-t1', `-c${connections}`, `-d${secs}s`, '--timeout', '10s', '--latency', url], { timeoutMs: (secs + 30) * 1000 })
      if (result.code !== 0) throw new Error(`wrk exited ${result.code}: ${result.stderr || result.stdout}`)
      return parseWrk(result.stdout)
    }
    for (const s of subjects) await wrk(s.url, 2) // warm-up, not counted
    const runs = Object.fromEntries(subjects.map((s) => [s.name, []]))
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
        const result = await wrk(s.url, seconds)
        runs[s.name].push(result)
        log(`round ${r + 1} ${s.name}: ${round(result.rps, 0)} req/s, p50 ${round(result.p50, 2)} ms, p99 ${round(result.p99, 2)} ms, ${result.transfer}/s, non-2xx ${result.non2xx}, socket errors ${result.socketErrors}`)
        if (!s.proc.running()) throw new Error(`${s.name} exited during the run: ${s.proc.output()}`)
      }
    }
    // The best round of each (least disturbed by the rest of the machine)
    const best = Object.fromEntries(Object.entries(runs).map(([name, list]) => [name, { ...list.reduce((a, b) => (b.rps > a.rps ? b : a)), all: list }]))
    return { best, bytes: Buffer.byteLength(body), seconds, rounds, connections }
  } finally {
    await Promise.all(processes.map((p) => p.stop()))
    await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
    etcd.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function rowsFor({ best, bytes, seconds, rounds, connections }) {
  const a = best.agent
  const n = best.nginx
  const ratio = a.rps / n.rps
  const errors = (s) => s.all.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0)
  const setup = `${INSTANCES} instances, ${round(bytes / 1024, 0)} KiB answer; wrk -t1 -c${connections}, best of ${rounds} × ${seconds} s`
  return [
    { metric: `HTTP health/service?passing (${INSTANCES}): agent vs nginx static`, value: round(ratio, 3), unit: '×', budget: '', ok: undefined, note: `${round(a.rps, 0)} vs ${round(n.rps, 0)} req/s; ${setup}` },
    { metric: `HTTP agent req/s (${INSTANCES} instances)`, value: round(a.rps, 0), unit: 'req/s', budget: '', note: `runs ${a.all.map((r) => round(r.rps, 0)).join(', ')}; ${a.transfer}/s; ${errors(a)} errors (non-2xx + socket)` },
    { metric: 'HTTP agent latency p99', value: round(a.p99, 1), unit: 'ms', budget: '', note: `p50 ${round(a.p50, 1)} ms (wrk --latency, ${connections} connections)` },
    { metric: 'nginx static req/s (floor)', value: round(n.rps, 0), unit: 'req/s', budget: '', note: `runs ${n.all.map((r) => round(r.rps, 0)).join(', ')}; ${n.transfer}/s; ${errors(n)} errors` },
    { metric: 'nginx static latency p99', value: round(n.p99, 2), unit: 'ms', budget: '', note: `p50 ${round(n.p50, 2)} ms` },
  ]
}

export async function run(options = {}) {
  return rowsFor(await measure(options))
}

if (isMain(import.meta.url)) {
  printRows(await run())
}
