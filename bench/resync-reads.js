// What one resync of an agent costs etcd, with 10 instances of its own, in a registry of 10
// and of 10,000 records (seeded under other nodes). Each case runs on a private single-member
// etcd (nothing else talks to it), whose /metrics counts the gRPC calls it served: Range
// (reads), Txn (writes) and the bytes it sent. Budget (issue "core, second design"): the
// reads of the 10,000 case ≤ 2× the 10 case — the read-back comes from the process's one
// registry view, so a resync reads nothing at all from etcd in either case.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { Etcd3 } from 'etcd3'
import { isMain, printRows, root, round, testEnv } from './common.js'

const OWN = 10
const RESYNCS = 5

async function metric(endpoint) {
  const text = await (await globalThis.fetch(`${endpoint}/metrics`)).text()
  const sum = (re) => [...text.matchAll(re)].reduce((total, m) => total + Number(m[1]), 0)
  return {
    range: sum(/^grpc_server_handled_total\{[^}]*grpc_method="Range"[^}]*\} (\S+)$/gm),
    txn: sum(/^grpc_server_handled_total\{[^}]*grpc_method="Txn"[^}]*\} (\S+)$/gm),
    put: sum(/^grpc_server_handled_total\{[^}]*grpc_method="Put"[^}]*\} (\S+)$/gm),
    sentBytes: sum(/^etcd_network_client_grpc_sent_bytes_total (\S+)$/gm),
  }
}

async function seed(client, prefix, count) {
  const now = new Date().toISOString()
  for (let first = 0; first < count; first += 1_000) {
    const puts = []
    for (let i = first; i < Math.min(count, first + 1_000); i++) {
      const node = `other-${i % 20}`
      const id = `${node}:c${i}:80`
      const record = {
        schema: 2, id, service: `svc-${i % 50}`, address: `10.0.${(i >> 8) & 255}.${i & 255}`, port: 80, tags: [], meta: {}, node, source: 'docker',
        health: { status: 'passing', output: 'no check', updatedAt: now, since: now }, registeredAt: now, updatedAt: now,
      }
      puts.push(client.put(`${prefix}/services/${record.service}/${node}/${id}`).value(JSON.stringify(record)).exec())
    }
    await Promise.all(puts)
  }
}

async function measureCase(registrySize, env, containers) {
  const { startDevEtcd } = await import(path.join(root, 'dist/core/dev-etcd.js'))
  const etcd = await startDevEtcd()
  const prefix = `/bench-resync-${randomBytes(3).toString('hex')}`
  const client = new Etcd3({ hosts: etcd.endpoint })
  const node = `resync-${randomBytes(3).toString('hex')}`
  let agent
  try {
    await seed(client, prefix, registrySize - OWN)
    const args = ['watch', '--json', '--etcd-endpoints', etcd.endpoint, '--prefix', prefix, '--node', node, '--docker-host', env.dockerHost, '--no-exposed-by-default', '--resync', '1s']
    agent = spawn(path.join(root, 'bin/run.cjs'), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let resyncs = []
    let registered = 0
    let buffer = ''
    agent.stdout.setEncoding('utf8').on('data', (chunk) => {
      buffer += chunk
      let i
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i)
        buffer = buffer.slice(i + 1)
        try {
          const event = JSON.parse(line)
          if (event.type === 'resync') resyncs.push(event)
          if (event.type === 'instance.registered' && containers.includes(event.instance?.container?.name)) registered++
        } catch {
          // not an event line
        }
      }
    })
    const until = (predicate, ms, what) =>
      new Promise((resolve, reject) => {
        const started = Date.now()
        const tick = () => (predicate() ? resolve() : Date.now() - started > ms ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(tick, 20))
        tick()
      })
    await until(() => registered >= OWN && resyncs.length >= 2, 60_000, `${OWN} registrations and two resyncs`)
    // Settled: count from the end of one resync to the end of the RESYNCS-th after it.
    const base = resyncs.length
    await until(() => resyncs.length > base, 10_000, 'a resync')
    const before = await metric(etcd.endpoint)
    const start = resyncs.length
    await until(() => resyncs.length >= start + RESYNCS, 30_000, `${RESYNCS} resyncs`)
    const after = await metric(etcd.endpoint)
    const per = (k) => (after[k] - before[k]) / RESYNCS
    return { range: per('range'), txn: per('txn') + per('put'), sentBytes: per('sentBytes'), written: resyncs.slice(start).reduce((n, r) => n + r.written + r.removed, 0) }
  } finally {
    agent?.kill('SIGTERM')
    await new Promise((r) => (agent ? agent.once('exit', r) : r()))
    client.close()
    await etcd.stop()
  }
}

export async function run() {
  const env = testEnv()
  const tag = randomBytes(3).toString('hex')
  const containers = []
  try {
    for (let i = 0; i < OWN; i++) {
      const name = `bench-resync-${tag}-${i}`
      execFileSync('docker', ['-H', env.dockerHost, 'run', '-d', '--name', name, '--label', 'discovery.enable=true', '--label', `discovery-bench=${tag}`, '-p', '127.0.0.1::80', env.image, '/bin/httpd', '-f', '-p', '80', '-h', '/www'], { stdio: 'ignore' })
      containers.push(name)
    }
    const small = await measureCase(OWN, env, containers)
    const large = await measureCase(10_000, env, containers)
    const ratio = (a, b) => (b === 0 ? (a === 0 ? 1 : Infinity) : a / b)
    return [
      { metric: `etcd reads (Range calls) per resync, ${OWN} own instances, registry of ${OWN}`, value: round(small.range, 2), unit: '', budget: 'info', note: `writes ${round(small.txn, 2)}/resync, ${Math.round(small.sentBytes)} bytes sent/resync` },
      { metric: `etcd reads (Range calls) per resync, ${OWN} own instances, registry of 10,000`, value: round(large.range, 2), unit: '', budget: '≤ 2× the registry-of-10 case', ok: ratio(large.range, small.range) <= 2, note: `writes ${round(large.txn, 2)}/resync, ${Math.round(large.sentBytes)} bytes sent/resync (×${round(ratio(large.sentBytes, small.sentBytes), 2)})` },
    ]
  } finally {
    for (const name of containers) execFileSync('docker', ['-H', env.dockerHost, 'rm', '-f', name], { stdio: 'ignore' })
  }
}

if (isMain(import.meta.url)) printRows(await run())
