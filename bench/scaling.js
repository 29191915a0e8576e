// The etcd cost of agents and consumers in steady state, measured at 1, 10 and 100 agents
// (docs/scaling.md turns it into a cost model). Every case runs on a private single-member
// etcd (nothing else talks to it) whose /metrics count the gRPC messages it received and sent
// per method and the bytes on its client connections. The agents share the second test
// dockerd, each with its own --node and `--filter label=…` owning one container (container
// address mode: no published ports). Measured over a window that starts once every agent has
// registered and settled; default settings (TTL 10 s, resync 30 s). Then one consumer (`serve`
// with DNS and HTTP) is added to the 100-agent case and measured alone over a second window.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { Etcd3 } from 'etcd3'
import { cpuSeconds, isMain, printRows, processMemory, root, round, sleep, stopAll, testEnv } from './common.js'

const CASES = (process.env.DISCOVERY_BENCH_SCALING ?? '1,10,100').split(',').map(Number)
const WINDOW_MS = Number(process.env.DISCOVERY_BENCH_SCALING_WINDOW_MS ?? 60_000)
const SETTLE_MS = 12_000

async function metrics(endpoint) {
  const text = await (await globalThis.fetch(`${endpoint}/metrics`)).text()
  const byMethod = (name) => {
    const out = {}
    for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*grpc_method="([^"]+)"[^}]*\\} (\\S+)$`, 'gm'))) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2])
    return out
  }
  const one = (name) => [...text.matchAll(new RegExp(`^${name} (\\S+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0)
  return {
    received: byMethod('grpc_server_msg_received_total'),
    sent: byMethod('grpc_server_msg_sent_total'),
    bytesIn: one('etcd_network_client_grpc_received_bytes_total'),
    bytesOut: one('etcd_network_client_grpc_sent_bytes_total'),
    watchers: one('etcd_debugging_mvcc_watcher_total'),
  }
}

function delta(before, after, seconds) {
  const rate = (a, b) => Object.fromEntries(Object.keys(b).map((k) => [k, ((b[k] ?? 0) - (a[k] ?? 0)) / seconds]))
  return {
    received: rate(before.received, after.received),
    sent: rate(before.sent, after.sent),
    bytesIn: (after.bytesIn - before.bytesIn) / seconds,
    bytesOut: (after.bytesOut - before.bytesOut) / seconds,
    watchers: after.watchers,
  }
}

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0)

async function measureCase(agents, env) {
  const { startDevEtcd } = await import(path.join(root, 'dist/core/dev-etcd.js'))
  const etcd = await startDevEtcd()
  const tag = randomBytes(3).toString('hex')
  const prefix = `/bench-scale-${tag}`
  const client = new Etcd3({ hosts: etcd.endpoint })
  const procs = []
  const containers = []
  const docker = (args) => execFileSync('docker', ['-H', env.docker2Host, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  try {
    for (let i = 0; i < agents; i++) {
      const name = `bench-scale-${tag}-${i}`
      docker(['run', '-d', '--name', name, '--label', `bench-scale=${tag}-${i}`, '--expose', '80', env.image, '/bin/httpd', '-f', '-p', '80', '-h', '/www'])
      containers.push(name)
    }
    const started = Date.now()
    for (let i = 0; i < agents; i++) {
      const args = ['watch', '--json', '--etcd-endpoints', etcd.endpoint, '--prefix', prefix, '--node', `scale-${i}`, '--docker-host', env.docker2Host, '--filter', `label=bench-scale=${tag}-${i}`, '--address-mode', 'container']
      procs.push(spawn(path.join(root, 'bin/run.cjs'), args, { stdio: 'ignore' }))
      // Ten at a time, so 100 Node starts do not starve each other on two cores.
      if (i % 10 === 9) await waitForRecords(client, prefix, i + 1, 120_000)
    }
    await waitForRecords(client, prefix, agents, 120_000)
    const registeredIn = Date.now() - started
    await sleep(SETTLE_MS)
    const m0 = await metrics(etcd.endpoint)
    const cpu0 = procs.map((p) => cpuSeconds(p.pid))
    await sleep(WINDOW_MS)
    const m1 = await metrics(etcd.endpoint)
    const cpu1 = procs.map((p) => cpuSeconds(p.pid))
    const agentRates = delta(m0, m1, WINDOW_MS / 1000)
    const rss = procs.map((p) => processMemory(p.pid).rssMb)
    const result = {
      agents,
      registeredIn,
      agentRates,
      agentCpuPct: (100 * (sum(cpu1) - sum(cpu0))) / (WINDOW_MS / 1000) / agents,
      agentRssMb: rss.reduce((a, b) => a + b, 0) / agents,
    }
    if (agents === Math.max(...CASES)) {
      // One consumer beside them: serve (DNS + HTTP) holds one view of the prefix.
      const serve = spawn(path.join(root, 'bin/run.cjs'), ['serve', '--etcd-endpoints', etcd.endpoint, '--prefix', prefix, '--dns-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'], { stdio: 'ignore' })
      procs.push(serve)
      await sleep(SETTLE_MS)
      const m2 = await metrics(etcd.endpoint)
      await sleep(WINDOW_MS)
      const m3 = await metrics(etcd.endpoint)
      const withConsumer = delta(m2, m3, WINDOW_MS / 1000)
      result.consumer = {
        received: sum(withConsumer.received) - sum(agentRates.received),
        sent: sum(withConsumer.sent) - sum(agentRates.sent),
        bytesOut: withConsumer.bytesOut - agentRates.bytesOut,
        rssMb: processMemory(serve.pid).rssMb,
      }
    }
    return result
  } finally {
    await stopAll(procs)
    for (const name of containers) docker(['rm', '-f', name])
    client.close()
    await etcd.stop()
  }
}

async function waitForRecords(client, prefix, count, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const n = Number((await client.getAll().prefix(`${prefix}/services/`).count()) ?? 0)
    if (n >= count) return
    if (Date.now() > deadline) throw new Error(`timed out: ${n} of ${count} agents registered`)
    await sleep(250)
  }
}

export async function run() {
  const env = testEnv()
  const rows = []
  const results = []
  for (const agents of CASES) {
    const r = await measureCase(agents, env)
    results.push(r)
    const requests = sum(r.agentRates.received)
    const top = Object.entries(r.agentRates.received)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${round(v / agents, 3)}`)
      .join(', ')
    rows.push({
      metric: `etcd requests/s per agent, ${agents} agent${agents === 1 ? '' : 's'} (steady state)`,
      value: round(requests / agents, 3),
      unit: '/s',
      budget: 'info',
      note: `${top}; etcd sends ${round(sum(r.agentRates.sent) / agents, 2)} msg/s and ${Math.round(r.agentRates.bytesOut / agents)} B/s per agent, receives ${Math.round(r.agentRates.bytesIn / agents)} B/s; agent CPU ${round(r.agentCpuPct, 2)}%, RSS ${Math.round(r.agentRssMb)} MB; ${r.agentRates.watchers} watchers; all registered in ${round(r.registeredIn / 1000, 1)} s`,
    })
    if (r.consumer) {
      rows.push({
        metric: `etcd requests/s of one consumer (serve, DNS + HTTP) beside ${agents} agents`,
        value: round(r.consumer.received, 3),
        unit: '/s',
        budget: 'info',
        note: `etcd sends it ${round(r.consumer.sent, 2)} msg/s, ${Math.round(r.consumer.bytesOut)} B/s; RSS ${Math.round(r.consumer.rssMb)} MB`,
      })
    }
  }
  if (process.env.DISCOVERY_BENCH_SCALING_JSON) console.log(JSON.stringify(results, null, 2))
  return rows
}

if (isMain(import.meta.url)) printRows(await run())
