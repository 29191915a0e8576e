// CLI cold start: wall time of one `discovery-agent <command>` process as the installed package
// runs it (npm pack, installed into an empty folder, started through its bin with the shebang's
// Node flags), against `node -e 0` measured in the same run, interleaved so machine load hits
// every command alike. Budgets (docs/performance.md): list, register, deregister, status and
// probe ≤ 2.5× node -e 0; doctor ≤ that plus its own network round trips (measured separately,
// in a warm process); --help ≤ 2× node -e 0.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isMain, percentile, printRows, root, round, testEnv } from './common.js'

const RUNS = 15

let installed

/**
 * The package as a user gets it: `npm pack` (prepack builds, bundles and writes the oclif
 * manifest), installed with --omit=dev into an empty folder. One install per process; set
 * DISCOVERY_BENCH_BIN to an installed bin to measure that one instead.
 */
export function installedBin() {
  if (process.env.DISCOVERY_BENCH_BIN) return process.env.DISCOVERY_BENCH_BIN
  if (installed) return installed.bin
  const dir = mkdtempSync(path.join(os.tmpdir(), 'discovery-bench-'))
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()
  const app = path.join(dir, 'app')
  mkdirSync(app)
  execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' })
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', path.join(dir, tarball)], { cwd: app, stdio: 'ignore' })
  installed = { dir, bin: path.join(app, 'node_modules/.bin/discovery-agent') }
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return installed.bin
}

function once(command, args, env = {}) {
  const started = performance.now()
  const result = spawnSync(command, args, { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  const ms = performance.now() - started
  if (result.status !== 0 && result.status !== 1) throw new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')} exited ${result.status}: ${String(result.stderr).split('\n')[0]}`)
  return ms
}

/**
 * p50/p90 of every command (`[command, args, env?]`), RUNS rounds, interleaved, after one
 * untimed round (which, as a user's first run, writes each command's code cache).
 */
export function timeInterleaved(commands, runs = RUNS) {
  const samples = Object.fromEntries(Object.keys(commands).map((name) => [name, []]))
  for (let round = -1; round < runs; round++) {
    for (const [name, [command, args, env]] of Object.entries(commands)) {
      const ms = once(command, args, env)
      if (round >= 0) samples[name].push(ms)
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, { p50: percentile(values, 50), p90: percentile(values, 90) }]))
}

/** doctor's network round trips alone: its checks run twice in one process, the second one timed. */
async function doctorNetworkMs(endpoints, prefix) {
  const { runDoctor } = await import(path.join(root, 'dist/services/doctor.js'))
  const { resolveConfig } = await import(path.join(root, 'dist/core/config.js'))
  const config = resolveConfig({ flags: { 'etcd-endpoints': endpoints, prefix }, env: { ...process.env, DISCOVERY_CONFIG: undefined }, cwd: os.tmpdir() })
  const samples = []
  for (let i = 0; i < 6; i++) {
    const started = performance.now()
    await runDoctor(config, process.env)
    if (i > 0) samples.push(performance.now() - started)
  }
  return percentile(samples, 50)
}

export async function run() {
  const env = testEnv()
  const endpoints = env.etcdEndpoints.join(',')
  const bin = installedBin()
  const prefix = `/bench-cold-${process.pid}`
  const etcd = ['--etcd-endpoints', endpoints, '--prefix', prefix]
  // The CLI's code cache (bin/code-cache.cjs) in a folder of this run's own, so that the first
  // round writes it as a user's first run would.
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'discovery-bench-cache-'))
  process.on('exit', () => rmSync(cacheDir, { recursive: true, force: true }))
  process.env.DISCOVERY_COMPILE_CACHE = cacheDir
  const commands = {
    'node -e 0': [process.execPath, ['-e', '0']],
    '--help': [bin, ['--help']],
    list: [bin, ['list', '--json', ...etcd]],
    register: [bin, ['register', 'cold', '--address', '127.0.0.1', '--port', '9', ...etcd]],
    status: [bin, ['status', ...etcd]],
    probe: [bin, ['probe', `tcp://${new URL(env.etcdEndpoints[0]).host}`]],
    deregister: [bin, ['deregister', 'cold', 'cold-127.0.0.1-9', ...etcd]],
    // What every run cost before the code cache, and what a command's first run still costs.
    'list, no code cache': [bin, ['list', '--json', ...etcd], { DISCOVERY_COMPILE_CACHE: 'off' }],
    doctor: [bin, ['doctor', ...etcd]],
  }
  try {
    const stats = timeInterleaved(commands)
    const floor = stats['node -e 0'].p50
    const networkMs = await doctorNetworkMs(endpoints, prefix)
    const rows = [{ metric: 'node -e 0 (floor)', value: round(floor), unit: 'ms', budget: '', note: `p50 of ${RUNS}, interleaved with every command below` }]
    for (const [name, t] of Object.entries(stats)) {
      if (name === 'node -e 0') continue
      if (name === 'list, no code cache') {
        rows.push({ metric: `cold start: ${name}`, value: round(t.p50 / floor, 2), unit: '× floor', budget: '', note: `${round(t.p50)} ms (p90 ${round(t.p90)}): a command's first run after install, and every run with DISCOVERY_COMPILE_CACHE=off` })
        continue
      }
      const factor = name === '--help' ? 2 : 2.5
      const budgetMs = factor * floor + (name === 'doctor' ? networkMs : 0)
      const ratio = t.p50 / floor
      rows.push({
        metric: `cold start: ${name}`,
        value: round(ratio, 2),
        unit: '× floor',
        budget: name === 'doctor' ? `≤ ${factor}× + network` : `≤ ${factor}×`,
        ok: t.p50 <= budgetMs,
        note: `${round(t.p50)} ms (p90 ${round(t.p90)}), budget ${round(budgetMs)} ms${name === 'doctor' ? ` incl. ${round(networkMs)} ms of round trips` : ''}`,
      })
    }
    rows.push({ metric: 'doctor network round trips', value: round(networkMs), unit: 'ms', budget: '', note: 'its checks, timed warm in one process (p50 of 5)' })
    return rows
  } finally {
    spawnSync('etcdctl', ['--endpoints', endpoints, 'del', '--prefix', prefix], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' })
  }
}

if (isMain(import.meta.url)) printRows(await run())
