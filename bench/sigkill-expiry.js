#!/usr/bin/env node
// Instance expiry when an agent goes away: one `watch` agent with the default TTL (10 s)
// registers N containers of the second dockerd (BENCH_EXPIRY_CONTAINERS, default 20), then
//   - gets SIGKILL: its lease is never revoked, so its instances go when etcd expires it;
//   - gets SIGTERM (graceful): it resigns and revokes its lease, so they go at once.
// Measured from the signal to this process's etcd3 watch seeing the last of that node's
// instance keys deleted; BENCH_EXPIRY_RUNS (default 3) runs of each, a fresh node each run.
// Budgets: SIGKILL → gone ≤ TTL + 1 s; graceful stop → gone ≤ 200 ms.
//
// Usage: node bench/sigkill-expiry.js        (prints the rows; exit 1 if a budget is missed)
// Reads endpoints from /tmp/discovery-testenv/env.json (bash scripts/testenv.sh up).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import Docker from 'dockerode'
import { Etcd3 } from 'etcd3'
import { commandFor, isMain, makeWallClock, percentile, printRows, root, round, testEnv, waitUntil } from './common.js'

const BIN = path.join(root, 'bin/run.cjs')
const TTL_MS = 10_000
const GRACEFUL_BUDGET_MS = 200

function dockerFor(host) {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) })
  const url = new URL(host.replace(/^tcp:/, 'http:'))
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) })
}

async function mapLimit(items, limit, fn) {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

/** Runs the expiry measurements; returns rows `{ metric, value, unit, budget, ok, note }`. */
export async function run(options = {}) {
  const env = testEnv()
  const count = options.containers ?? Number(process.env.BENCH_EXPIRY_CONTAINERS ?? 20)
  const runs = options.runs ?? Number(process.env.BENCH_EXPIRY_RUNS ?? 3)
  const log = options.log ?? ((line) => process.stderr.write(`sigkill-expiry: ${line}\n`))
  const wall = makeWallClock()
  const id = randomBytes(3).toString('hex')
  const prefix = `/bench-expiry-${id}`
  const docker = dockerFor(env.docker2Host)
  const client = new Etcd3({ hosts: env.etcdEndpoints })
  const names = Array.from({ length: count }, (_, i) => `bench-expiry-${id}-${i}`)
  const results = { SIGKILL: [], SIGTERM: [] }
  const live = new Map()
  const deletedAt = new Map()
  let agent

  try {
    // N published containers on the second dockerd, shared by every run.
    await mapLimit(names, 4, async (name) => {
      const container = await docker.createContainer({
        Image: env.image,
        name,
        Labels: { 'bench-run': `expiry-${id}` },
        ExposedPorts: { '80/tcp': {} },
        HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
      })
      await container.start()
    })
    const watcher = await client.watch().prefix(`${prefix}/services/`).create()
    watcher.on('put', (kv) => live.set(kv.key.toString(), true))
    watcher.on('delete', (kv) => {
      live.delete(kv.key.toString())
      deletedAt.set(kv.key.toString(), wall())
    })

    for (const signal of ['SIGTERM', 'SIGKILL']) {
      for (let i = 0; i < runs; i++) {
        const node = `exp-${id}-${signal === 'SIGKILL' ? 'k' : 't'}${i}`
        // Given: the agent (default TTL) has registered every one of our containers
        const args = [BIN, 'watch', '--json', '--node', node, '--prefix', prefix, '--etcd-endpoints', env.etcdEndpoints.join(','), '--docker-host', env.docker2Host]
        const child = spawn(...commandFor(args), { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
        let stderr = ''
        child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)))
        agent = { child, exited: new Promise((resolve) => child.on('exit', resolve)) }
        const ours = (key) => key.includes(`/${node}:`)
        await waitUntil(
          () => {
            if (child.exitCode !== null) throw new Error(`agent exited: ${stderr}`)
            const keys = [...live.keys()].filter(ours)
            return names.every((n) => keys.some((k) => k.includes(`/${node}:${n}:`)))
          },
          60_000,
          `${node} to register ${count} containers`,
          20,
        )
        const keys = [...live.keys()].filter(ours)
        // When
        const signalAt = wall()
        child.kill(signal)
        // Then: every instance of the node is gone
        await waitUntil(() => keys.every((k) => !live.has(k)), TTL_MS * 3, `${node}'s instances to vanish after ${signal}`, 1)
        const goneAfter = Math.max(...keys.map((k) => deletedAt.get(k))) - signalAt
        results[signal].push(goneAfter)
        log(`${signal} run ${i + 1}/${runs}: ${keys.length} instances gone after ${round(goneAfter)} ms`)
        await agent.exited
        agent = undefined
      }
    }
    await watcher.cancel().catch(() => undefined)
  } finally {
    if (agent) {
      agent.child.kill('SIGKILL')
      await agent.exited
    }
    await mapLimit(names, 4, (name) => docker.getContainer(name).remove({ force: true }).catch(() => undefined))
    await client.delete().prefix(`${prefix}/`).exec().catch(() => undefined)
    client.close()
  }
  const rows = []
  const budgets = { SIGKILL: TTL_MS + 1_000, SIGTERM: GRACEFUL_BUDGET_MS }
  for (const signal of ['SIGKILL', 'SIGTERM']) {
    const values = results[signal]
    const what = signal === 'SIGKILL' ? 'agent SIGKILL → instances gone' : 'agent graceful stop (SIGTERM) → instances gone'
    const p50 = percentile(values, 50)
    const max = Math.max(...values)
    const note = `${values.length} runs, ${count} containers, --ttl 10s (default)`
    rows.push({ metric: `${what} p50`, value: round(p50), unit: 'ms', budget: `≤ ${budgets[signal]} ms`, ok: p50 <= budgets[signal], note })
    rows.push({ metric: `${what} max`, value: round(max), unit: 'ms', budget: `≤ ${budgets[signal]} ms`, ok: max <= budgets[signal], note: '' })
  }
  return rows
}

if (isMain(import.meta.url)) {
  const rows = await run()
  printRows(rows)
  process.exitCode = rows.every((r) => r.ok) ? 0 : 1
}
