// `list --json` over 10,000 instances against the floor, all in one run on the same data:
// `etcdctl get --prefix` (budget, docs/performance.md: list --json ≤ 2× it) and, for
// reference, a bare Node script that does one etcd3 getAll and prints the same JSON array.
// `list` is the installed package (npm pack, installed into an empty folder, started through
// its bin). Each command is a fresh process (cold start included, as a user runs it), the
// three are interleaved so machine load hits them alike, and the data lives under a unique
// prefix that is deleted afterwards. `node bench/list.js` prints p50/p99 of every command.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { Etcd3 } from 'etcd3'
import { installedBin } from './cold-start.js'
import { isMain, percentile, printRows, root, round, testEnv } from './common.js'

const INSTANCES = 10_000
const RUNS = 7
const SERVICES = 50
const NODES = 20
const PUT_BATCH = 1_000

// The floor: nothing but etcd3's getAll, a JSON.parse per value and the same pretty-printed
// array `list --json` prints. grpc's 4 MiB default is too small for 10,000 records in one
// response, so the limit is lifted (the CLI pages its reads instead).
const BARE_SCRIPT = `
import { Etcd3 } from 'etcd3'
const [endpoints, prefix] = process.argv.slice(1)
const client = new Etcd3({ hosts: endpoints.split(','), grpcOptions: { 'grpc.max_receive_message_length': -1 } })
const response = await client.getAll().prefix(prefix).exec()
process.stdout.write(JSON.stringify(response.kvs.map((kv) => JSON.parse(kv.value.toString())), null, 2) + '\\n')
client.close()
`

/** `count` realistic records, built by the CLI's own builder, put in parallel batches. */
export async function seed(client, prefix, count = INSTANCES) {
  const { buildManualRecord } = await import(path.join(root, 'dist/services/register.js'))
  const started = performance.now()
  for (let first = 0; first < count; first += PUT_BATCH) {
    const puts = []
    for (let i = first; i < Math.min(count, first + PUT_BATCH); i++) {
      const record = buildManualRecord(
        {
          service: `svc-${i % SERVICES}`,
          address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
          port: 8000 + (i % 1000),
          id: `inst-${i}`,
          tags: i % 3 === 0 ? ['v2', 'primary'] : ['v1'],
          meta: [`team=team-${i % 7}`, 'version=1.2.3'],
          ...(i % 4 === 0 ? { check: { tcp: true } } : {}),
        },
        `node-${i % NODES}`,
      )
      puts.push(client.put(`${prefix}/services/${record.service}/${record.id}`).value(JSON.stringify(record)).exec())
    }
    await Promise.all(puts)
  }
  return performance.now() - started
}

function timeOnce(command, args, check) {
  const started = performance.now()
  const result = spawnSync(command, args, {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', ETCDCTL_API: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
  })
  const ms = performance.now() - started
  if (result.status !== 0) throw new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')} exited ${result.status}: ${String(result.stderr).split('\n')[0]}`)
  if (check) check(result.stdout)
  return ms
}

const expectArrayOf = (count) => (stdout) => {
  const parsed = JSON.parse(stdout)
  if (!Array.isArray(parsed) || parsed.length !== count) throw new Error(`expected ${count} records, got ${Array.isArray(parsed) ? parsed.length : typeof parsed}`)
}

/** Seeds, times every command, cleans up; returns the result rows and the raw p50/p99 per command. */
async function measure() {
  const env = testEnv()
  const endpoints = env.etcdEndpoints.join(',')
  const prefix = `/bench-list-${process.pid}-${randomBytes(3).toString('hex')}`
  const client = new Etcd3({ hosts: env.etcdEndpoints })
  try {
    const bin = installedBin()
    const seedMs = await seed(client, prefix)
    const commands = {
      'list --json': [bin, ['list', '--json', '--etcd-endpoints', endpoints, '--prefix', prefix]],
      'bare etcd3 getAll': [process.execPath, ['--input-type=module', '-e', BARE_SCRIPT, endpoints, `${prefix}/services/`]],
      'etcdctl get --prefix': ['etcdctl', ['--endpoints', endpoints, 'get', '--prefix', `${prefix}/services/`]],
    }
    // One untimed round warms the page cache; the first timed round checks every output.
    const samples = Object.fromEntries(Object.keys(commands).map((name) => [name, []]))
    for (let round = -1; round < RUNS; round++) {
      for (const [name, [command, args]] of Object.entries(commands)) {
        const check = round === 0 && name !== 'etcdctl get --prefix' ? expectArrayOf(INSTANCES) : undefined
        const ms = timeOnce(command, args, check)
        if (round >= 0) samples[name].push(ms)
      }
    }
    const stats = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, { p50: percentile(values, 50), p99: percentile(values, 99) }]))
    const list = stats['list --json']
    const bare = stats['bare etcd3 getAll']
    const ctl = stats['etcdctl get --prefix']
    const ratio = list.p50 / ctl.p50
    const note = `p50 of ${RUNS} runs each, interleaved; 10k records seeded in ${round(seedMs / 1000, 1)} s`
    const rows = [
      { metric: 'list --json over 10k: ratio vs etcdctl get --prefix', value: round(ratio, 2), unit: '×', budget: '≤ 2×', ok: ratio <= 2, note: `${round(list.p50)} ms vs ${round(ctl.p50)} ms` },
      { metric: 'list --json over 10k', value: round(list.p50), unit: 'ms', budget: '', note: `${note}; p99 ${round(list.p99)} ms` },
      { metric: 'etcdctl get --prefix over 10k (floor)', value: round(ctl.p50), unit: 'ms', budget: '', note: `p99 ${round(ctl.p99)} ms` },
      { metric: 'bare etcd3 getAll over 10k', value: round(bare.p50), unit: 'ms', budget: '', note: `p99 ${round(bare.p99)} ms; list --json is ${round(list.p50 / bare.p50, 2)}× this` },
    ]
    return { rows, stats }
  } finally {
    await client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
    client.close()
  }
}

export async function run() {
  return (await measure()).rows
}

if (isMain(import.meta.url)) {
  const { rows, stats } = await measure()
  for (const [name, s] of Object.entries(stats)) console.log(`${name.padEnd(22)} p50 ${round(s.p50)} ms  p99 ${round(s.p99)} ms  (${RUNS} runs)`)
  printRows(rows)
}
