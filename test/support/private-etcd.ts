import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { testPorts } from './ports.js'

/**
 * A single-member etcd of a test's own, for outages the shared 3-member cluster must not
 * suffer: freeze it (SIGSTOP), kill it, and start it again on the same ports and data dir.
 * (dev-etcd.ts's startDevEtcd can't restart on the same ports, which a reconnect needs.)
 */
export class PrivateEtcd {
  private child?: ChildProcess
  private exited?: Promise<void>

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
  ) {}

  static async start(): Promise<PrivateEtcd> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'discovery-private-etcd-'))
    const [clientPort, peerPort] = await testPorts(2)
    const etcd = new PrivateEtcd(dataDir, clientPort, peerPort)
    await etcd.run()
    return etcd
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`
  }

  get pid(): number {
    return this.child!.pid!
  }

  /** Freezes the process: connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP')
  }

  resume(): void {
    this.child?.kill('SIGCONT')
  }

  /** SIGKILL, as a crash; the data dir stays for restart(). */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.kill('SIGCONT')
    this.child.kill('SIGKILL')
    await this.exited
  }

  /** Starts etcd again on the same ports with the same data. */
  async restart(): Promise<void> {
    await this.kill()
    await this.run()
  }

  async stop(): Promise<void> {
    await this.kill()
    await rm(this.dataDir, { recursive: true, force: true })
  }

  private async run(): Promise<void> {
    const clientUrl = this.endpoint
    const peerUrl = `http://127.0.0.1:${this.peerPort}`
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ETCD_')))
    const child = spawn(
      'etcd',
      [
        '--name', 'private',
        '--data-dir', this.dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', `private=${peerUrl}`,
        '--initial-cluster-state', 'new',
      ],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let log = ''
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-4000)))
    this.child = child
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()))
    const deadline = Date.now() + 20_000
    while (!(await answersHealth(clientUrl))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`the private etcd did not come up on ${clientUrl}: ${log.slice(-800)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

function answersHealth(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(`${url}/health`, { timeout: 1_000 }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve(response.statusCode === 200 && body.includes('"true"')))
      response.on('error', () => resolve(false))
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve(false))
  })
}

