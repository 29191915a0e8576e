// `list --json` over 100,000 instances: wall time and the peak resident memory of the list
// process (GNU time's "Maximum resident set size", i.e. VmHWM), with `etcdctl get --prefix`
// over the same keys in the same run for scale. `list` is the installed package, run through
// its bin. The output goes to a pipe that is read and counted, not kept. Seeding 100,000
// records takes ~30-60 s; the data lives under a unique prefix that is deleted afterwards.
// Part of `npm run bench` (last: it seeds for a minute); alone: `node bench/list-100k.js`.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { Etcd3 } from 'etcd3'
import { installedBin } from './cold-start.js'
import { isMain, percentile, printRows, round, testEnv } from './common.js'
import { seed } from './list.js'

const INSTANCES = 100_000
const RUNS = 3
const TIME = '/usr/bin/time'

/** Runs `command` under GNU time; resolves with wall ms, peak RSS in MiB and the byte count and record count of stdout. */
function measure(command, args, { countRecords }) {
  return new Promise((resolve, reject) => {
    const useTime = existsSync(TIME)
    const started = performance.now()
    const child = spawn(useTime ? TIME : command, useTime ? ['-f', '%M', command, ...args] : args, {
      env: { ...process.env, NO_COLOR: '1', ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let bytes = 0
    let records = 0
    let depth = 0
    let inString = false
    let escaped = false
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      bytes += chunk.length
      if (!countRecords) return
      // Counts the array's top-level objects without holding the output.
      for (const byte of chunk) {
        if (inString) {
          if (escaped) escaped = false
          else if (byte === 0x5c) escaped = true
          else if (byte === 0x22) inString = false
        } else if (byte === 0x22) inString = true
        else if (byte === 0x7b || byte === 0x5b) depth++
        else if (byte === 0x7d || byte === 0x5d) {
          depth--
          if (byte === 0x7d && depth === 1) records++
        }
      }
    })
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      const ms = performance.now() - started
      if (code !== 0) return reject(new Error(`${command} exited ${code}: ${stderr.split('\n')[0]}`))
      const rssKb = useTime ? Number(stderr.trim().split('\n').pop()) : NaN
      resolve({ ms, rssMiB: rssKb / 1024, bytes, records })
    })
  })
}

export async function run() {
  const env = testEnv()
  const endpoints = env.etcdEndpoints.join(',')
  const prefix = `/bench-list100k-${process.pid}-${randomBytes(3).toString('hex')}`
  const client = new Etcd3({ hosts: env.etcdEndpoints })
  try {
    const bin = installedBin()
    const seedMs = await seed(client, prefix, INSTANCES)
    const list = []
    const ctl = []
    for (let i = 0; i < RUNS; i++) {
      const result = await measure(bin, ['list', '--json', '--etcd-endpoints', endpoints, '--prefix', prefix], { countRecords: true })
      if (result.records !== INSTANCES) throw new Error(`list --json printed ${result.records} records, expected ${INSTANCES}`)
      list.push(result)
      ctl.push(await measure('etcdctl', ['--endpoints', endpoints, 'get', '--prefix', `${prefix}/services/`], { countRecords: false }))
    }
    const p50 = (values) => percentile(values, 50)
    const listMs = p50(list.map((r) => r.ms))
    const ctlMs = p50(ctl.map((r) => r.ms))
    const rss = Math.max(...list.map((r) => r.rssMiB))
    return [
      { metric: 'list --json over 100k', value: round(listMs), unit: 'ms', budget: '', note: `p50 of ${RUNS}; ${round(list[0].bytes / 2 ** 20, 1)} MiB of JSON; seeded in ${round(seedMs / 1000, 1)} s` },
      { metric: 'list --json over 100k: peak RSS', value: round(rss), unit: 'MiB', budget: '', note: `max of ${RUNS} runs (GNU time %M)` },
      { metric: 'etcdctl get --prefix over 100k', value: round(ctlMs), unit: 'ms', budget: '', note: `p50 of ${RUNS}; list --json is ${round(listMs / ctlMs, 2)}× this; etcdctl peak RSS ${round(Math.max(...ctl.map((r) => r.rssMiB)))} MiB` },
    ]
  } finally {
    // Deleted in slices: one delete of 100,000 keys is a large transaction for a test cluster.
    for (let s = 0; s < 50; s++) await client.delete().prefix(`${prefix}/services/svc-${s}/`).exec().catch(() => undefined)
    await client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
    client.close()
  }
}

if (isMain(import.meta.url)) printRows(await run())
