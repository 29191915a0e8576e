#!/usr/bin/env node
// Registration latency: Docker event → instance visible to a watcher in another process.
//
// Two subjects, measured in the same run against the same dockerd and etcd:
//   - the floor: a minimal loop with the same libraries (dockerode event → inspect → etcd3 put
//     under a lease; `kill` → delete), in a process of its own;
//   - the agent: `bin/run.cjs watch --json`, run as an installed bin runs.
// Each is watched by a second process (etcd3 prefix watch) that timestamps every arrival on
// this machine's wall clock; latencies are measured from the Docker event's `timeNano`.
//
// Workloads: single containers started one at a time (registration, then `docker stop -t 0`
// → gone), and a burst of containers started concurrently (all registered, none lost, last
// visible after the last start event).
//
// Usage: node bench/registration.js          (prints the rows; exit 1 if a budget is missed)
//        BENCH_SAMPLES=120 BENCH_BURST=200 BENCH_DOCKER_HOST=unix:///… node bench/registration.js
// 120 single samples per subject: with 40, a p99 was the one slowest sample of the run, and
// the floor's own slowest moved 3× between runs (docs/performance.md, "The registration tail").
// Reads endpoints from /tmp/discovery-testenv/env.json (bash scripts/testenv.sh up).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setInterval } from 'node:timers'
import { fileURLToPath } from 'node:url'
import Docker from 'dockerode'
import { Etcd3 } from 'etcd3'
import { commandFor, freePort, isMain, percentile, printRows, root as ROOT, round as roundTo, testEnv } from './common.js'

const SELF = fileURLToPath(import.meta.url)

const BUDGET = { p50Ratio: 1.5, p99Ratio: 2, burstLastMs: 250 }

// ------------------------------------------------------------------ shared helpers

function readEnv() {
  try {
    return testEnv()
  } catch (error) {
    throw new Error(`cannot read the test environment's env.json (${error.message}); run: bash scripts/testenv.sh up`)
  }
}

function dockerFor(host) {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) })
  const url = new URL(host.replace(/^tcp:/, 'http:'))
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) })
}

/**
 * Wall-clock milliseconds with sub-millisecond resolution: performance.now() plus an offset to
 * Date.now(). One reading of the offset can be off by tens of ms on a loaded machine (the process
 * is descheduled between the two clock reads), and a late read only ever makes it smaller: so the
 * offset is the largest of many readings, first at a few millisecond edges, then sampled in the
 * background (a sliding window, which also follows slow NTP slewing).
 */
function makeWallClock() {
  const edgeReading = () => {
    const start = Date.now()
    let now
    while ((now = Date.now()) === start) {
      /* spin to the next millisecond edge */
    }
    return now - performance.now()
  }
  let best = -Infinity
  for (let i = 0; i < 15; i++) best = Math.max(best, edgeReading())
  const window = [best]
  const timer = setInterval(() => {
    // Date.now() is floored to the ms, so a plain reading is up to 1 ms low; over 50 readings one lands near an edge.
    window.push(Date.now() - performance.now())
    if (window.length > 50) window.shift()
    best = Math.max(...window)
  }, 97)
  timer.unref()
  return () => best + performance.now()
}
/** Splits a stream of NDJSON into parsed objects. */
function onJsonLines(stream, handler) {
  const rl = createInterface({ input: stream })
  rl.on('line', (line) => {
    if (!line.trim()) return
    let value
    try {
      value = JSON.parse(line)
    } catch {
      return
    }
    handler(value)
  })
}

async function openEvents(docker, filters) {
  return docker.getEvents({ filters: JSON.stringify(filters) })
}

// ------------------------------------------------------------------ role: watcher (second process)

async function watcherRole(endpoints, prefix) {
  const wall = makeWallClock()
  const etcd = new Etcd3({ hosts: endpoints })
  const watcher = await etcd.watch().prefix(prefix).create()
  const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)
  watcher.on('put', (kv) => out({ t: 'put', key: kv.key.toString(), at: wall() }))
  watcher.on('delete', (kv) => out({ t: 'delete', key: kv.key.toString(), at: wall() }))
  out({ t: 'ready' })
  process.on('SIGTERM', () => {
    etcd.close()
    process.exit(0)
  })
}

// ------------------------------------------------------------------ role: floor (the minimal loop)

async function floorRole(dockerHost, endpoints, prefix) {
  const docker = dockerFor(dockerHost)
  const etcd = new Etcd3({ hosts: endpoints })
  const lease = etcd.lease(30)
  lease.on('lost', () => undefined)
  const leaseId = await lease.grant()
  const keys = new Map()
  const stream = await openEvents(docker, { type: ['container'], event: ['start', 'kill'] })
  onJsonLines(stream, async (event) => {
    const id = event.Actor?.ID ?? event.id
    if (!id) return
    if (event.Action === 'start') {
      const info = await docker.getContainer(id).inspect()
      const name = info.Name.replace(/^\//, '')
      const key = `${prefix}${name}`
      keys.set(id, key)
      const ports = info.NetworkSettings?.Ports ?? {}
      const binding = Object.values(ports).flat().find(Boolean)
      const record = { id: name, address: binding?.HostIp ?? '', port: Number(binding?.HostPort ?? 0), container: info.Id, image: info.Config.Image }
      await etcd.put(key).value(JSON.stringify(record)).lease(leaseId).exec()
    } else if (event.Action === 'kill') {
      const key = keys.get(id)
      if (!key) return
      keys.delete(id)
      await etcd.delete().key(key).exec()
    }
  })
  process.stdout.write(`${JSON.stringify({ t: 'ready' })}\n`)
  process.on('SIGTERM', async () => {
    stream.destroy?.()
    await lease.revoke().catch(() => undefined)
    etcd.close()
    process.exit(0)
  })
}

// ------------------------------------------------------------------ orchestration

/** A child process speaking NDJSON on stdout. */
function spawnJson(args, onMessage, extraEnv = {}) {
  const child = spawn(...commandFor(args), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...extraEnv } })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr = (stderr + d).slice(-4000)
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)))
  onJsonLines(child.stdout, onMessage)
  return {
    child,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}

function waitUntil(predicate, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const tick = () => {
      if (predicate()) return resolve()
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      setTimeout(tick, 2)
    }
    tick()
  })
}

const round = (n) => roundTo(n, 2)

async function mapLimit(items, limit, fn) {
  const results = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await fn(items[i], i)
      }
    }),
  )
  return results
}

/**
 * Runs one subject (floor or agent) through the single and burst workloads.
 * `keyToName` maps a watched key to the container name it stands for.
 */
async function measureSubject({ label, docker, env, runId, image, prefix, startSubject, keyToName, samples, burst, log }) {
  const tag = `${runId}-${label}`
  const startNs = new Map()
  const killNs = new Map()
  const seenPut = new Map()
  const seenDel = new Map()
  const containers = []

  // Docker's own clock for the events: the stream the orchestrator follows, filtered to this run.
  const events = await openEvents(docker, { type: ['container'], event: ['start', 'kill'], label: [`bench-run=${tag}`] })
  onJsonLines(events, (event) => {
    const name = event.Actor?.Attributes?.name
    if (!name) return
    const at = Number(BigInt(event.timeNano)) / 1e6
    if (event.Action === 'start' && !startNs.has(name)) startNs.set(name, at)
    if (event.Action === 'kill' && !killNs.has(name)) killNs.set(name, at)
  })

  let watcherReady = false
  const watcher = spawnJson([SELF, '--role', 'watcher', env.etcdEndpoints.join(','), prefix], (msg) => {
    if (msg.t === 'ready') watcherReady = true
    const name = msg.key ? keyToName(msg.key) : undefined
    if (!name) return
    if (msg.t === 'put' && !seenPut.has(name)) seenPut.set(name, msg.at)
    if (msg.t === 'delete' && !seenDel.has(name)) seenDel.set(name, msg.at)
  })
  const subject = await startSubject()
  try {
    await waitUntil(() => watcherReady, 20_000, `${label}: watcher ready`)
    await subject.ready

    const create = async (name) => {
      const container = await docker.createContainer({
        Image: image,
        name,
        Labels: { 'bench-run': tag, 'discovery.service': 'bench' },
        ExposedPorts: { '80/tcp': {} },
        HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
      })
      containers.push(container)
      return container
    }

    // Warm-up: one container not counted (first connections, JIT).
    for (let i = 0; i < 2; i++) {
      const name = `bench-${tag}-w${i}`
      const c = await create(name)
      await c.start()
      await waitUntil(() => seenPut.has(name), 20_000, `${label}: warm-up ${name} visible`)
      await c.stop({ t: 0 })
      await waitUntil(() => seenDel.has(name), 20_000, `${label}: warm-up ${name} gone`)
      await c.remove({ force: true })
    }

    // The agent's runtime metrics from here on (its event-loop histogram restarts at each scrape).
    await subject.startDiagnostics?.()

    // One at a time.
    const reg = []
    const dereg = []
    const sampleNames = []
    for (let i = 0; i < samples; i++) {
      const name = `bench-${tag}-s${i}`
      const c = await create(name)
      await c.start()
      await waitUntil(() => seenPut.has(name) && startNs.has(name), 20_000, `${label}: ${name} visible`)
      reg.push(seenPut.get(name) - startNs.get(name))
      sampleNames.push(name)
      await new Promise((r) => setTimeout(r, 50))
      await c.stop({ t: 0 })
      await waitUntil(() => seenDel.has(name) && killNs.has(name), 20_000, `${label}: ${name} gone`)
      dereg.push(seenDel.get(name) - killNs.get(name))
      await c.remove({ force: true })
      await new Promise((r) => setTimeout(r, 50))
    }
    log(`${label}: single p50 ${round(percentile(reg, 50))} ms, p99 ${round(percentile(reg, 99))} ms; stop p50 ${round(percentile(dereg, 50))} ms`)
    // Over the single samples only (the burst is another workload).
    const diagnostics = await subject.diagnostics?.()

    // Burst: created first (not timed), then started all at once.
    const names = Array.from({ length: burst }, (_, i) => `bench-${tag}-b${i}`)
    const burstContainers = await mapLimit(names, 8, (name) => create(name))
    await new Promise((r) => setTimeout(r, 500))
    const startErrors = []
    await Promise.all(burstContainers.map((c) => c.start().catch((error) => startErrors.push(error.message))))
    try {
      await waitUntil(() => names.every((n) => startNs.has(n) && seenPut.has(n)), 120_000, `${label}: burst all visible`)
    } catch {
      // Reported below as lost.
    }
    const started = names.filter((n) => startNs.has(n))
    const visible = started.filter((n) => seenPut.has(n))
    const lastStart = Math.max(...started.map((n) => startNs.get(n)))
    const lastVisible = Math.max(...visible.map((n) => seenPut.get(n)))
    const burstLat = visible.map((n) => seenPut.get(n) - startNs.get(n))
    log(`${label}: burst ${visible.length}/${started.length} visible (${startErrors.length} start errors), last visible ${round(lastVisible - lastStart)} ms after last start`)
    await mapLimit(burstContainers, 8, (c) => c.remove({ force: true }).catch(() => undefined))

    return {
      reg,
      dereg,
      sampleNames,
      startNs,
      diagnostics,
      burst: {
        started: started.length,
        visible: visible.length,
        startErrors: startErrors.length,
        lastAfterLastStartMs: lastVisible - lastStart,
        p50: percentile(burstLat, 50),
        p99: percentile(burstLat, 99),
      },
    }
  } finally {
    events.destroy?.()
    await subject.stop()
    await watcher.stop()
    await mapLimit(containers, 8, (c) => c.remove({ force: true }).catch(() => undefined))
  }
}

/** Measures the floor and the agent in one run; returns rows `{ metric, value, unit, budget, ok, note }`. */
export async function run(options = {}) {
  const env = readEnv()
  const dockerHost = options.dockerHost ?? process.env.BENCH_DOCKER_HOST ?? env.dockerHost
  const samples = Number(options.samples ?? process.env.BENCH_SAMPLES ?? 120)
  const burst = Number(options.burst ?? process.env.BENCH_BURST ?? 200)
  const log = options.log ?? ((line) => process.stderr.write(`bench/registration: ${line}\n`))
  const docker = dockerFor(dockerHost)
  const image = env.image
  await docker.getImage(image).inspect() // fails loudly if the test image is missing: nothing is pulled
  const runId = randomBytes(3).toString('hex')
  const endpoints = env.etcdEndpoints.join(',')
  const etcd = new Etcd3({ hosts: env.etcdEndpoints })

  const floorPrefix = `/bench-${runId}/floor/`
  const agentPrefix = `/bench-${runId}/agent`
  const node = `bench-${runId}`
  try {
    const floor = await measureSubject({
      label: 'floor',
      docker,
      env,
      runId,
      image,
      prefix: floorPrefix,
      samples,
      burst,
      log,
      keyToName: (key) => key.slice(floorPrefix.length),
      startSubject: async () => {
        let ready = false
        const proc = spawnJson([SELF, '--role', 'floor', dockerHost, endpoints, floorPrefix], (msg) => {
          if (msg.t === 'ready') ready = true
        })
        return { ready: waitUntil(() => ready, 20_000, 'floor ready').catch((e) => Promise.reject(new Error(`${e.message}: ${proc.stderr()}`))), stop: () => proc.stop() }
      },
    })

    const agent = await measureSubject({
      label: 'agent',
      docker,
      env,
      runId,
      image,
      prefix: `${agentPrefix}/services/`,
      samples,
      burst,
      log,
      // <prefix>/services/<service>/<node>:<container>:<port>
      keyToName: (key) => key.split('/').at(-1).split(':')[1],
      startSubject: async () => {
        let ready = false
        const metricsPort = await freePort()
        // When the agent said it registered each instance (its NDJSON line arriving here, on the
        // same wall clock as the watcher's), and when its resync passes ended.
        const wall = makeWallClock()
        const own = { registered: new Map(), resyncs: [] }
        let atStart
        const proc = spawnJson(
          [path.join(ROOT, 'bin/run.cjs'), 'watch', '--json', '--etcd-endpoints', endpoints, '--prefix', agentPrefix, '--node', node, '--docker-host', dockerHost, '--metrics-port', String(metricsPort)],
          (event) => {
            if (event.type === 'resync') {
              ready = true
              own.resyncs.push({ endedAt: wall(), durationMs: event.durationMs })
            }
            const name = event.type === 'instance.registered' ? event.instance.id.split(':')[1] : undefined
            if (name && !own.registered.has(name)) own.registered.set(name, wall())
          },
        )
        return {
          ready: waitUntil(() => ready, 30_000, 'agent ready (first resync)').catch((e) => Promise.reject(new Error(`${e.message}: ${proc.stderr()}`))),
          stop: () => proc.stop(),
          startDiagnostics: async () => {
            atStart = await runtimeMetrics(`http://127.0.0.1:${metricsPort}/metrics`)
            own.resyncs.length = 0
          },
          diagnostics: async () => ({ own: { registered: new Map(own.registered), resyncs: [...own.resyncs] }, runtime: since(atStart, await runtimeMetrics(`http://127.0.0.1:${metricsPort}/metrics`)) }),
        }
      },
    })
    return rowsFor(floor, agent, samples, burst)
  } finally {
    await etcd.delete().prefix(`/bench-${runId}/`).exec().catch(() => undefined)
    etcd.close()
  }
}

function rowsFor(floor, agent, samples, burst) {
  const rows = []
  const ratioRows = (what, f, a) => {
    const fp50 = percentile(f, 50)
    const fp99 = percentile(f, 99)
    const ap50 = percentile(a, 50)
    const ap99 = percentile(a, 99)
    rows.push({ metric: `${what} floor p50`, value: round(fp50), unit: 'ms', budget: '', ok: undefined, note: `minimal loop, ${f.length} samples` })
    rows.push({ metric: `${what} floor p99`, value: round(fp99), unit: 'ms', budget: '', ok: undefined, note: 'minimal loop' })
    rows.push({
      metric: `${what} agent p50`,
      value: round(ap50),
      unit: 'ms',
      budget: `≤ ${BUDGET.p50Ratio}× floor (${round(fp50 * BUDGET.p50Ratio)} ms)`,
      ok: ap50 <= fp50 * BUDGET.p50Ratio,
      note: `${round(ap50 / fp50)}× floor, ${a.length} samples, min ${round(Math.min(...a))} ms`,
    })
    rows.push({
      metric: `${what} agent p99`,
      value: round(ap99),
      unit: 'ms',
      budget: `≤ ${BUDGET.p99Ratio}× floor (${round(fp99 * BUDGET.p99Ratio)} ms)`,
      ok: ap99 <= fp99 * BUDGET.p99Ratio,
      note: `${round(ap99 / fp99)}× floor`,
    })
  }
  ratioRows('start → visible', floor.reg, agent.reg)
  ratioRows('stop → gone', floor.dereg, agent.dereg)
  if (agent.diagnostics) rows.push(...tailRows(agent, floor))
  for (const [who, result] of [
    ['floor', floor.burst],
    ['agent', agent.burst],
  ]) {
    const complete = result.visible === burst && result.started === burst
    rows.push({
      metric: `burst ${burst}: ${who} registered`,
      value: result.visible,
      unit: 'instances',
      budget: who === 'agent' ? `all ${burst}, none lost` : '',
      ok: who === 'agent' ? complete : undefined,
      note: `${result.started} started, ${result.startErrors} start errors`,
    })
    rows.push({
      metric: `burst ${burst}: ${who} last visible after last start`,
      value: round(result.lastAfterLastStartMs),
      unit: 'ms',
      budget: who === 'agent' ? `≤ ${BUDGET.burstLastMs} ms` : '',
      ok: who === 'agent' ? result.lastAfterLastStartMs <= BUDGET.burstLastMs : undefined,
      note: `per-container p50 ${round(result.p50)} ms, p99 ${round(result.p99)} ms`,
    })
  }
  void samples
  return rows
}

// ------------------------------------------------------------------ where the tail comes from

/** prom-client's default resolution of Node's event-loop delay monitor. */
const LOOP_TICK_MS = 10

/**
 * The agent's runtime metrics (prom-client's defaults on its --metrics-port); the event-loop
 * figures cover the time since the previous scrape. prom-client counts only the first GC of each
 * batch the observer reports, so back-to-back pauses are undercounted (~13% of them measured).
 */
async function runtimeMetrics(url) {
  const text = await fetch(url).then((r) => r.text())
  const value = (name, labels = '') => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `))
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  const gc = {}
  for (const kind of ['minor', 'major', 'incremental', 'weakcb']) {
    const count = value('nodejs_gc_duration_seconds_count', `{kind="${kind}"}`)
    if (count === undefined) continue
    // Pauses longer than 10 ms: the count above the 0.01 s bucket.
    gc[kind] = { count, sumMs: value('nodejs_gc_duration_seconds_sum', `{kind="${kind}"}`) * 1000, over10ms: count - value('nodejs_gc_duration_seconds_bucket', `{le="0.01",kind="${kind}"}`) }
  }
  // Node's event-loop monitor records the whole time between its 10 ms ticks: lateness is the rest.
  const late = (name) => value(name) * 1000 - LOOP_TICK_MS
  return { loopLateMaxMs: late('nodejs_eventloop_lag_max_seconds'), loopLateP99Ms: late('nodejs_eventloop_lag_p99_seconds'), gc }
}

/** GC counts and times between two scrapes (the event-loop figures are already the second scrape's own). */
function since(start, end) {
  const gc = {}
  for (const [kind, g] of Object.entries(end.gc)) {
    const s = start?.gc[kind] ?? { count: 0, sumMs: 0, over10ms: 0 }
    gc[kind] = { count: g.count - s.count, sumMs: g.sumMs - s.sumMs, over10ms: g.over10ms - s.over10ms }
  }
  return { ...end, gc }
}

/**
 * Where the agent's slowest registrations spent their time: until the agent reported the write
 * acknowledged (Docker delivering the event, the agent's event loop getting to it, inspect, the
 * etcd write; read from its NDJSON line's arrival), then etcd's watch reaching the watcher; whether
 * a resync pass overlapped; the floor's slowest sample for the same path; then how late the
 * agent's event loop ran and its GC pauses over the single samples. The agent's share includes
 * its NDJSON line's way through the pipe to this process.
 */
function tailRows(agent, floor) {
  const { own, runtime } = agent.diagnostics
  const slowest = agent.reg
    .map((ms, i) => ({ ms, name: agent.sampleNames[i] }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 3)
    .map(({ ms, name }) => {
      const start = agent.startNs.get(name)
      const reported = own.registered.get(name)
      const share = reported === undefined ? '?' : `agent ${round(reported - start)} ms, watch ${round(ms - (reported - start))} ms`
      const resync = own.resyncs.some((r) => r.endedAt >= start && r.endedAt - r.durationMs <= start + ms) ? ', a resync pass overlapped' : ''
      return `${round(ms)} ms (${share}${resync})`
    })
  const gc = Object.entries(runtime.gc).map(([kind, g]) => `${kind} ${g.count}× ${round(g.sumMs)} ms (${g.over10ms} over 10 ms)`).join(', ')
  return [
    { metric: 'start → visible agent, slowest 3', value: round(Math.max(...agent.reg)), unit: 'ms', budget: 'info', ok: undefined, note: `${slowest.join('; ')}; floor's slowest ${round(Math.max(...floor.reg))} ms` },
    { metric: 'agent event loop late, single samples', value: round(runtime.loopLateMaxMs), unit: 'ms max', budget: 'info', ok: undefined, note: `p99 ${round(runtime.loopLateP99Ms)} ms (beyond its 10 ms tick); GC ${gc || 'none'}; ${own.resyncs.length} resync passes` },
  ]
}

// ------------------------------------------------------------------ entry point

if (isMain(import.meta.url)) {
  const [flag, role, ...args] = process.argv.slice(2)
  if (flag === '--role' && role === 'watcher') {
    await watcherRole(args[0].split(','), args[1])
  } else if (flag === '--role' && role === 'floor') {
    await floorRole(args[0], args[1].split(','), args[2])
  } else {
    const rows = await run()
    printRows(rows)
    process.exitCode = rows.some((r) => r.ok === false) ? 1 : 0
  }
}
