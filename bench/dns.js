#!/usr/bin/env node
// DNS throughput and latency: the agent's DNS server against dnsmasq serving the same names,
// in the same run, with the same dnsperf query file and settings.
//
//   - the agent: `bin/run.cjs serve --dns-addr 127.0.0.1:<port>` over a unique prefix holding
//     SERVICES × PER_SERVICE manual records (each on its own address), as an installed bin runs;
//   - the floor: dnsmasq (`--no-resolv --no-hosts --addn-hosts <file>`, loopback port) with a
//     hosts file giving every `<service>.service.discovery` name the same addresses.
//
// The query file asks A for each service name (each answer: PER_SERVICE records); dnsperf
// cycles through it. Per subject, interleaved over ROUNDS rounds: a throughput run (`-l`
// seconds, no per-query output: dnsperf's "Queries per second" and "Average Latency") and a
// shorter latency run with `-v` (one line per query with its latency: p50/p99 are computed from
// those). Both use the same client settings (-c clients, -q outstanding), i.e. latency is
// measured under saturating load, queueing included. Budget: agent qps ≥ 0.5× dnsmasq's.
//
// A third subject, for information: the Node floor, a bare `dgram` server (its own process)
// that answers each query with the agent's own answer bytes for that name, captured once
// before the runs (only the id is patched): what any DNS server in one Node thread can reach
// here, with no decoding, lookup or encoding.
//
// dnsperf counts a handful of queries per run as lost (T) against any server, dnsmasq too: the
// ones still in flight when the time limit ends the run. The rows show them for each subject.
//
// Usage: node bench/dns.js     (BENCH_DNS_SECONDS=10 BENCH_DNS_ROUNDS=2 to change the runs)
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import dnsPacket from 'dns-packet'
import { Etcd3 } from 'etcd3'
import { manyInstances, seedInstances } from '../test/support/bench-seed.js'
import { Buffer } from 'node:buffer'
import { commandFor, freePort, isMain, percentile, printRows, root, round, startProcess, testEnv } from './common.js'

const SERVICES = 100
const PER_SERVICE = 10
const BUDGET_RATIO = 0.5
const DNSPERF_ARGS = ['-c', '4', '-q', '200', '-T', '1']
const SELF = fileURLToPath(import.meta.url)

/** The question name of a raw DNS query, lower-cased (no compression in questions). */
function questionName(message) {
  const labels = []
  let at = 12
  while (at < message.length && message[at] !== 0) {
    const len = message[at]
    labels.push(message.toString('latin1', at + 1, at + 1 + len).toLowerCase())
    at += 1 + len
  }
  return labels.join('.')
}

/** The Node floor (a child process): canned answers by question name, the query's id patched in. */
async function nodeFloorRole(port, file) {
  const answers = new Map(Object.entries(JSON.parse(readFileSync(file, 'utf8'))).map(([name, b64]) => [name, Buffer.from(b64, 'base64')]))
  const socket = dgram.createSocket('udp4')
  socket.on('message', (message, remote) => {
    const canned = answers.get(questionName(message))
    if (!canned || message.length < 12) return
    const reply = Buffer.from(canned)
    reply[0] = message[0]
    reply[1] = message[1]
    socket.send(reply, remote.port, remote.address)
  })
  await new Promise((resolve) => socket.bind(port, '127.0.0.1', resolve))
  process.stdout.write('ready\n')
  process.on('SIGTERM', () => socket.close(() => process.exit(0)))
}

/** The agent's answer bytes to a plain A query (no EDNS, like dnsperf's) for `name`. */
function captureAnswer(port, name) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4')
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error(`no answer for ${name}`))
    }, 3_000)
    socket.on('message', (message) => {
      clearTimeout(timer)
      socket.close()
      resolve(message)
    })
    socket.send(dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1')
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

/** How many A records `name` has at `port` (0 on any failure). */
async function answerCount(port, name) {
  const result = await execute('dig', ['@127.0.0.1', '-p', String(port), '+short', '+tries=1', '+time=1', '+ignore', name, 'A'], { timeoutMs: 5_000 })
  return result.code === 0 ? result.stdout.split('\n').filter(Boolean).length : 0
}

async function waitAnswers(port, name, count, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await answerCount(port, name)) === count) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to answer ${count} records for ${name}`)
}

/** dnsperf's summary: queries/s, average latency, lost, response codes. */
function parseSummary(text) {
  const number = (re) => {
    const m = re.exec(text)
    return m ? Number(m[1]) : null
  }
  return {
    qps: number(/Queries per second:\s+([\d.]+)/),
    avgMs: number(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    completed: number(/Queries completed:\s+(\d+)/),
    lost: number(/Queries lost:\s+(\d+)/),
    rcodes: /Response codes:\s+(.*)/.exec(text)?.[1]?.trim() ?? '',
  }
}

/** A throughput run: no per-query output. */
async function throughput(port, queryFile, seconds) {
  const result = await execute('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds), ...DNSPERF_ARGS], { timeoutMs: (seconds + 30) * 1000 })
  const summary = parseSummary(result.stdout)
  if (result.code !== 0 || summary.qps === null) throw new Error(`dnsperf exited ${result.code}: ${(result.stderr || result.stdout).split('\n').slice(-3).join(' ')}`)
  return summary
}

/** A latency run: dnsperf -v prints `> RCODE name type seconds` per query; streamed, not buffered. */
function latencies(port, queryFile, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds), '-v', ...DNSPERF_ARGS], { stdio: ['ignore', 'pipe', 'pipe'] })
    const samples = []
    const notNoError = new Map()
    let tail = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000)
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('> ')) {
        const parts = line.split(' ')
        const rcode = parts[1]
        if (rcode !== 'NOERROR') notNoError.set(rcode, (notNoError.get(rcode) ?? 0) + 1)
        // a timed-out query (`> T name type`) has no latency
        const seconds = Number(parts[parts.length - 1])
        if (Number.isFinite(seconds)) samples.push(seconds * 1000)
      } else {
        tail = (tail + line + '\n').slice(-4000)
      }
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`dnsperf -v exited ${code}`))
      resolve({ samples, summary: parseSummary(tail), notNoError: Object.fromEntries(notNoError) })
    })
  })
}

async function measure({ seconds = Number(process.env.BENCH_DNS_SECONDS ?? 10), rounds = Number(process.env.BENCH_DNS_ROUNDS ?? 2), log = (line) => process.stderr.write(`bench/dns: ${line}\n`) } = {}) {
  for (const tool of ['dnsperf', 'dnsmasq', 'dig']) {
    const which = await execute('sh', ['-c', `command -v ${tool}`])
    if (which.code !== 0) throw new Error(`${tool} is not installed (Debian: ${tool === 'dig' ? 'dnsutils' : tool === 'dnsmasq' ? 'dnsmasq-base' : tool})`)
  }
  const env = testEnv()
  const runId = randomBytes(3).toString('hex')
  const prefix = `/bench-dns-${runId}`
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-dns-${runId}-`))
  const etcd = new Etcd3({ hosts: env.etcdEndpoints })
  const processes = []
  try {
    // The same names and addresses for both: service s<i> has PER_SERVICE addresses 10.<100+i>.0.<n>
    const names = Array.from({ length: SERVICES }, (_, i) => `bs${i}-${runId}`)
    const instances = names.flatMap((service, i) => manyInstances(service, PER_SERVICE, { firstOctets: `10.${100 + i}`, port: 8080 }))
    const seeded = await seedInstances({ endpoints: env.etcdEndpoints, prefix, instances })
    log(`seeded ${seeded.seeded} records in ${seeded.ms} ms`)
    writeFileSync(path.join(dir, 'hosts'), instances.map((instance) => `${instance.address} ${instance.service}.service.discovery\n`).join(''))
    const queryFile = path.join(dir, 'queries')
    writeFileSync(queryFile, names.map((service) => `${service}.service.discovery A\n`).join(''))

    const agentPort = await freePort()
    const agent = startProcess(...commandFor([path.join(root, 'bin/run.cjs'), 'serve', '--dns-addr', `127.0.0.1:${agentPort}`, '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', `bench-dns-${runId}`]), 'agent')
    processes.push(agent)
    const dnsmasqPort = await freePort()
    const dnsmasq = startProcess('dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', `--port=${dnsmasqPort}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', `--addn-hosts=${path.join(dir, 'hosts')}`, '--pid-file=', '--log-facility=-', '--local-ttl=5',
    ], 'dnsmasq')
    processes.push(dnsmasq)
    const last = `${names.at(-1)}.service.discovery`
    await waitAnswers(agentPort, last, PER_SERVICE, 'the agent').catch((error) => Promise.reject(new Error(`${error.message}: ${agent.output()}`)))
    await waitAnswers(dnsmasqPort, last, PER_SERVICE, 'dnsmasq').catch((error) => Promise.reject(new Error(`${error.message}: ${dnsmasq.output()}`)))

    // The Node floor answers with the agent's own bytes
    const canned = {}
    for (const service of names) canned[`${service}.service.discovery`] = (await captureAnswer(agentPort, `${service}.service.discovery`)).toString('base64')
    writeFileSync(path.join(dir, 'canned.json'), JSON.stringify(canned))
    const floorPort = await freePort()
    const floor = startProcess(process.execPath, [SELF, '--role', 'node-floor', String(floorPort), path.join(dir, 'canned.json')], 'node floor')
    processes.push(floor)
    await waitAnswers(floorPort, last, PER_SERVICE, 'the node floor').catch((error) => Promise.reject(new Error(`${error.message}: ${floor.output()}`)))

    const subjects = [
      { name: 'agent', port: agentPort, proc: agent },
      { name: 'dnsmasq', port: dnsmasqPort, proc: dnsmasq },
      { name: 'node-floor', port: floorPort, proc: floor },
    ]
    // Warm-up (JIT, caches), not counted
    for (const s of subjects) await throughput(s.port, queryFile, 2)
    const results = Object.fromEntries(subjects.map((s) => [s.name, { runs: [], latency: [], avgMs: [], lost: 0, rcodes: new Set(), notNoError: {} }]))
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
        const t = await throughput(s.port, queryFile, seconds)
        const v = await latencies(s.port, queryFile, Math.max(2, Math.round(seconds / 2)))
        const res = results[s.name]
        res.runs.push(t.qps)
        res.avgMs.push(t.avgMs)
        res.lost += t.lost + (v.summary.lost ?? 0)
        res.rcodes.add(t.rcodes)
        for (const [code, n] of Object.entries(v.notNoError)) res.notNoError[code] = (res.notNoError[code] ?? 0) + n
        for (const sample of v.samples) res.latency.push(sample) // hundreds of thousands: no spread
        log(`round ${r + 1} ${s.name}: ${round(t.qps, 0)} q/s, avg ${round(t.avgMs, 3)} ms; latency run ${v.samples.length} samples, p50 ${round(percentile(v.samples, 50), 3)} ms, p99 ${round(percentile(v.samples, 99), 3)} ms`)
        if (!s.proc.running()) throw new Error(`${s.name} exited during the run: ${s.proc.output()}`)
      }
    }
    const stats = Object.fromEntries(
      Object.entries(results).map(([name, res]) => [
        name,
        {
          qps: Math.max(...res.runs),
          qpsRuns: res.runs,
          avgMs: Math.min(...res.avgMs),
          p50: percentile(res.latency, 50),
          p99: percentile(res.latency, 99),
          samples: res.latency.length,
          lost: res.lost,
          rcodes: [...res.rcodes].join('; '),
          notNoError: res.notNoError,
        },
      ]),
    )
    return { stats, seconds, rounds }
  } finally {
    await Promise.all(processes.map((p) => p.stop()))
    await etcd.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
    etcd.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function rowsFor({ stats, seconds, rounds }) {
  const a = stats.agent
  const d = stats.dnsmasq
  const f = stats['node-floor']
  const ratio = a.qps / d.qps
  const setup = `${SERVICES} services × ${PER_SERVICE} A records, dnsperf ${DNSPERF_ARGS.join(' ')}, best of ${rounds} × ${seconds} s`
  const errors = (s) => `${s.lost} lost${Object.keys(s.notNoError).length ? `, non-NOERROR ${JSON.stringify(s.notNoError)}` : ''}`
  return [
    { metric: 'DNS A queries/s: agent vs dnsmasq', value: round(ratio, 2), unit: '×', budget: `≥ ${BUDGET_RATIO}×`, ok: ratio >= BUDGET_RATIO, note: `${round(a.qps, 0)} vs ${round(d.qps, 0)} q/s; ${setup}` },
    { metric: 'DNS agent queries/s', value: round(a.qps, 0), unit: 'q/s', budget: '', note: `runs ${a.qpsRuns.map((q) => round(q, 0)).join(', ')}; ${errors(a)}; ${a.rcodes}` },
    { metric: 'DNS agent latency p50 / p99', value: round(a.p50, 3), unit: 'ms', budget: '', note: `p99 ${round(a.p99, 3)} ms, dnsperf avg ${round(a.avgMs, 3)} ms; ${a.samples} samples from dnsperf -v, under load` },
    { metric: 'dnsmasq queries/s (floor)', value: round(d.qps, 0), unit: 'q/s', budget: '', note: `runs ${d.qpsRuns.map((q) => round(q, 0)).join(', ')}; ${errors(d)}; ${d.rcodes}` },
    { metric: 'dnsmasq latency p50 / p99', value: round(d.p50, 3), unit: 'ms', budget: '', note: `p99 ${round(d.p99, 3)} ms, dnsperf avg ${round(d.avgMs, 3)} ms; ${d.samples} samples` },
    { metric: 'Node dgram floor queries/s (canned answers)', value: round(f.qps, 0), unit: 'q/s', budget: '', note: `agent is ${round(a.qps / f.qps, 2)}× this; p50 ${round(f.p50, 3)} ms, p99 ${round(f.p99, 3)} ms; ${errors(f)}` },
  ]
}

export async function run(options = {}) {
  return rowsFor(await measure(options))
}

if (isMain(import.meta.url)) {
  const [flag, role, ...args] = process.argv.slice(2)
  if (flag === '--role' && role === 'node-floor') {
    await nodeFloorRole(Number(args[0]), args[1])
  } else {
    const rows = await run()
    printRows(rows)
    process.exitCode = rows.some((r) => r.ok === false) ? 1 : 0
  }
}
