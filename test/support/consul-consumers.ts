import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { LiveProcess } from './cli.js'

/**
 * Real Consul consumers for the HTTP API tests: the python-consul library (Debian's
 * python3-consul, run by the system interpreter) and the Prometheus server. Both talk to
 * loopback only.
 */

/** The interpreter that has Debian's `consul` module (a pyenv shim first on PATH may not). */
export const PYTHON = '/usr/bin/python3'

/**
 * python-consul calls, each printing one JSON line. `one-shot` prints every read the library
 * offers for our subset; `block` prints the current index of `web`, then blocks on it and
 * prints what the blocking call returned.
 */
const PYTHON_SCRIPT = String.raw`
import json, sys, time, consul
port, mode, token = int(sys.argv[1]), sys.argv[2], (sys.argv[3] or None)
c = consul.Consul(host='127.0.0.1', port=port, token=token)
def out(value):
    print(json.dumps(value), flush=True)
if mode == 'one-shot':
    services_index, services = c.catalog.services()
    service_index, service = c.catalog.service('web')
    health_index, healthy = c.health.service('web', passing=True)
    _, tagged = c.health.service('web', tag='v1')
    out({'services': services, 'servicesIndex': services_index, 'service': service, 'serviceIndex': service_index,
         'healthy': healthy, 'healthIndex': health_index, 'tagged': tagged,
         'leader': c.status.leader(), 'peers': c.status.peers(),
         # python-consul sends no token with agent.self(), so with ACLs on it is denied, as by Consul
         'self': c.agent.self() if token is None else None})
elif mode == 'block':
    index, _ = c.health.service('web')
    out({'ready': index})
    started = time.time()
    new_index, nodes = c.health.service('web', index=index, wait='30s')
    out({'index': new_index, 'ids': [n['Service']['ID'] for n in nodes], 'seconds': time.time() - started})
elif mode == 'denied':
    try:
        c.catalog.services()
        out({'error': None})
    except Exception as error:
        out({'error': type(error).__name__, 'message': str(error)})
`

/** Runs one python-consul script to its end and returns its JSON lines. */
export async function runPythonConsul(port: number, mode: 'one-shot' | 'denied', token = ''): Promise<unknown[]> {
  const child = startPythonConsul(port, mode, token)
  const code = await child.exited
  if (code !== 0) throw new Error(`python-consul ${mode} exited ${code}: ${child.stderr}`)
  return child.lines().map((line) => JSON.parse(line) as unknown)
}

/** Starts a python-consul script and leaves it running (for blocking calls). */
export function startPythonConsul(port: number, mode: 'one-shot' | 'block' | 'denied', token = ''): LiveProcess {
  // No CONSUL_HTTP_* from the caller's environment: the library would prefer them to our arguments.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CONSUL_')))
  const child = spawn(PYTHON, ['-u', '-c', PYTHON_SCRIPT, String(port), mode, token], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  return new LiveProcess(child)
}

export interface PrometheusTarget {
  scrapePool: string
  discoveredLabels: Record<string, string>
  labels: Record<string, string>
}

/** A Prometheus server in its own temp dir; `targets()` reads its /api/v1/targets. */
export class PrometheusServer {
  private constructor(
    readonly process: LiveProcess,
    readonly url: string,
    readonly dir: string,
  ) {}

  static start(config: string, port: number): PrometheusServer {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'discovery-prometheus-'))
    const file = path.join(dir, 'prometheus.yml')
    writeFileSync(file, config)
    const child = spawn('prometheus', [
      `--config.file=${file}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=debug',
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    return new PrometheusServer(new LiveProcess(child), `http://127.0.0.1:${port}`, dir)
  }

  async targets(): Promise<PrometheusTarget[]> {
    const response = await fetch(`${this.url}/api/v1/targets?state=active`)
    if (!response.ok) throw new Error(`prometheus /api/v1/targets: ${response.status}`)
    const body = (await response.json()) as { data: { activeTargets: PrometheusTarget[] } }
    return body.data.activeTargets
  }

  async stop(): Promise<void> {
    await this.process.stop('SIGTERM', 10_000)
    rmSync(this.dir, { recursive: true, force: true })
  }
}
