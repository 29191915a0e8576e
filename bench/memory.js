// Agent resident memory with 1000 instances: 50 containers × 20 exposed ports on the second
// test dockerd, registered in container address mode (no published ports, so no 1000
// docker-proxy processes), each instance with a TCP check. RSS read from /proc after the
// registry holds all 1000 and checks have run. Budget: ≤ 150 MB.
import { execFileSync, spawn } from 'node:child_process'
import path from 'node:path'
import { Etcd3 } from 'etcd3'
import { isMain, printRows, processMemory, root, sleep, testEnv } from './common.js'

const CONTAINERS = 50
const PORTS = 20


function docker(host, args) {
  return execFileSync('docker', ['-H', host, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

export async function run() {
  const env = testEnv()
  const host = env.docker2Host
  const tag = `bench-mem-${process.pid}`
  const prefix = `/bench-mem-${process.pid}`
  const client = new Etcd3({ hosts: env.etcdEndpoints })
  const names = []
  let agent
  try {
    const expose = []
    for (let p = 0; p < PORTS; p++) expose.push('--expose', String(8000 + p))
    for (let i = 0; i < CONTAINERS; i++) {
      const name = `${tag}-${i}`
      names.push(name)
      docker(host, ['run', '-d', '--name', name, '-l', tag, ...expose, '-l', 'discovery.check.tcp=true', '-l', 'discovery.check.interval=5s', env.image])
    }
    // Run as an installed bin runs (its shebang carries the agent's V8 memory settings).
    agent = spawn(path.join(root, 'bin/run.cjs'), ['watch', '--json', '--docker-host', host, '--address-mode', 'container', '--etcd-endpoints', env.etcdEndpoints.join(','), '--prefix', prefix, '--node', tag], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    const deadline = Date.now() + 120_000
    let count = 0
    while (Date.now() < deadline) {
      count = Number((await client.getAll().prefix(`${prefix}/services/`).count()) ?? 0)
      if (count >= CONTAINERS * PORTS) break
      await sleep(500)
    }
    // Let every check run at least twice and the heap settle.
    await sleep(12_000)
    const samples = []
    for (let i = 0; i < 5; i++) {
      samples.push(processMemory(agent.pid).rssMb)
      await sleep(1000)
    }
    const rss = Math.max(...samples)
    return [
      { metric: 'agent RSS with 1000 instances (TCP checks every 5 s)', value: Math.round(rss), unit: 'MB', budget: '≤ 150 MB', ok: rss <= 150 && count >= CONTAINERS * PORTS, note: `${count} instances registered; max of 5 samples` },
    ]
  } finally {
    agent?.kill('SIGTERM')
    await sleep(1500)
    if (names.length) {
      try {
        docker(host, ['rm', '-f', ...names])
      } catch {
        // best effort
      }
    }
    await client.delete().prefix(prefix).exec().catch(() => undefined)
    client.close()
  }
}

if (isMain(import.meta.url)) printRows(await run())
