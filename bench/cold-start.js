// CLI cold start: wall time of one `discovery-agent <command>` process, as an installed
// package runs it (with the oclif manifest), against `node -e 0` and a bare import of the
// two heavy libraries, all in the same run. Budget (DESIGN.md): ≤ 300 ms for list, probe,
// register and doctor.
import { spawnSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import path from 'node:path'
import { isMain, percentile, printRows, root, round, testEnv } from './common.js'

const RUNS = 10

function time(args, env = {}) {
  const samples = []
  for (let i = 0; i < RUNS + 2; i++) {
    const t0 = performance.now()
    const result = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    const ms = performance.now() - t0
    if (result.status !== 0 && result.status !== 1) throw new Error(`${args.join(' ')} exited ${result.status}: ${String(result.stderr).split('\n')[0]}`)
    if (i >= 2) samples.push(ms)
  }
  return { p50: percentile(samples, 50), p90: percentile(samples, 90) }
}

export async function run() {
  const env = testEnv()
  const endpoints = env.etcdEndpoints.join(',')
  const manifest = path.join(root, 'oclif.manifest.json')
  const hadManifest = existsSync(manifest)
  if (!hadManifest) spawnSync('npx', ['oclif', 'manifest'], { cwd: root, stdio: 'ignore' })
  try {
    const bin = path.join(root, 'bin/run.js')
    const prefix = `/bench-cold-${process.pid}`
    const floor = time(['-e', '0'])
    const libs = time(['--input-type=module', '-e', "await import('dockerode'); await import('etcd3')"])
    const commands = {
      list: [bin, 'list', '--etcd-endpoints', endpoints, '--prefix', prefix, '--json'],
      probe: [bin, 'probe', `tcp://${new URL(env.etcdEndpoints[0]).host}`],
      register: [bin, 'register', 'cold', '--address', '127.0.0.1', '--port', '9', '--etcd-endpoints', endpoints, '--prefix', prefix],
      doctor: [bin, 'doctor', '--etcd-endpoints', endpoints, '--prefix', prefix],
    }
    const rows = [
      { metric: 'node -e 0 (floor)', value: round(floor.p50), unit: 'ms', budget: '', note: 'p50 of 10' },
      { metric: 'import dockerode + etcd3', value: round(libs.p50), unit: 'ms', budget: '', note: 'p50 of 10' },
    ]
    for (const [name, args] of Object.entries(commands)) {
      const t = time(args)
      rows.push({ metric: `cold start: ${name}`, value: round(t.p50), unit: 'ms', budget: '≤ 300 ms', ok: t.p50 <= 300, note: `p50 of ${RUNS}, p90 ${round(t.p90)} ms` })
    }
    spawnSync('etcdctl', ['--endpoints', endpoints, 'del', '--prefix', prefix], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' })
    return rows
  } finally {
    if (!hadManifest) rmSync(manifest, { force: true })
  }
}

if (isMain(import.meta.url)) printRows(await run())
