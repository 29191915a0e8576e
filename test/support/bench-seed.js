#!/usr/bin/env node
// Seeds many manual instance records through the package's public entry (dist/index.js):
// each record is built by `buildManualRecord`, exactly as `discovery-agent register` builds it,
// and written with `Registry.putInstance` (no lease, like a plain `register`), a bounded number
// in flight. Spawning `register` once per record costs a Node start each (hundreds of ms of CPU):
// this does the same writes from one process.
//
// Used by bench/dns.js and bench/http-api.js (imported) and by the integration tests (run as a
// script, so a test needs no types for it):
//   node test/support/bench-seed.js <endpoints,comma-separated> <prefix> <service> <count> [firstOctets=10.77] [port=9000]
// prints one JSON line { seeded, ms }.
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * `count` instances of `service`, each on its own IPv4 address `<firstOctets>.<hi>.<lo>` (so an A
 * answer carries one record per instance), all on `port`, ids `<service>-<n>`.
 */
export function manyInstances(service, count, { firstOctets = '10.77', port = 9000, tags = [] } = {}) {
  if (count > 65_000) throw new Error('at most 65,000 instances per service (two free octets)')
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1
    return { service, address: `${firstOctets}.${n >> 8}.${n & 255}`, port, id: `${service}-${n}`, tags }
  })
}

/** Writes the instances (`{ service, address, port, id?, tags?, meta? }`) under `prefix`; resolves with the time taken. */
export async function seedInstances({ endpoints, prefix, instances, node = 'bench-seed', concurrency = 64 }) {
  const { Registry, buildManualRecord } = await import(pathToFileURL(path.join(root, 'dist/index.js')).href)
  const registry = Registry.open({ endpoints }, prefix)
  const started = performance.now()
  try {
    let next = 0
    await Promise.all(
      Array.from({ length: Math.min(concurrency, instances.length) }, async () => {
        while (next < instances.length) {
          const spec = instances[next++]
          await registry.putInstance(buildManualRecord(spec, node))
        }
      }),
    )
  } finally {
    registry.close()
  }
  return { seeded: instances.length, ms: Math.round(performance.now() - started) }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [endpoints, prefix, service, count, firstOctets = '10.77', port = '9000'] = process.argv.slice(2)
  if (!endpoints || !prefix || !service || !count) {
    process.stderr.write('usage: bench-seed.js <endpoints> <prefix> <service> <count> [firstOctets] [port]\n')
    process.exit(2)
  }
  const result = await seedInstances({ endpoints: endpoints.split(','), prefix, instances: manyInstances(service, Number(count), { firstOctets, port: Number(port) }) })
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
