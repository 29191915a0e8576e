import { Etcd3 } from 'etcd3'
import { etcdFlags, parseJsonLines, startCli, waitFor, type LiveProcess } from './cli.js'
import { testEnv } from './env.js'

/** One NDJSON line of `watch --json`. */
export interface AgentEventLine {
  ts: string
  type: string
  [field: string]: unknown
}

/** A span of wall-clock time (ms) in which one agent process said it acts as leader. */
export interface ActingWindow {
  agent: TestAgent
  term: string
  from: number
  to: number
  /** How the window ended: its own `acting: false`, the process killed or gone, or still open. */
  end: 'event' | 'killed' | 'exited' | 'stopped' | 'open'
}

/**
 * One `watch --json` agent process. Restarting a node makes a new TestAgent with the same
 * node name, so every process keeps its own event history and acting windows.
 */
export class TestAgent {
  readonly live: LiveProcess
  readonly spawnedAt = Date.now()
  killedAt?: number
  exitedAt?: number
  /** SIGSTOP … SIGCONT spans: a stopped process runs nothing at all. */
  readonly pauses: { from: number; to?: number }[] = []

  constructor(
    readonly node: string,
    readonly prefix: string,
    readonly args: string[],
  ) {
    this.live = startCli(['watch', '--json', '--node', node, ...etcdFlags(prefix), ...args])
    void this.live.exited.then(() => (this.exitedAt = Date.now()))
  }

  get pid(): number {
    return this.live.pid
  }

  get running(): boolean {
    return this.exitedAt === undefined
  }

  events(): AgentEventLine[] {
    return parseJsonLines<AgentEventLine>(this.live.lines())
  }

  eventsOf(type: string): AgentEventLine[] {
    return this.events().filter((e) => e.type === type)
  }

  /** What its last `leader.acting` event said. */
  get acting(): boolean {
    const last = this.eventsOf('leader.acting').at(-1)
    return last?.acting === true
  }

  async waitStarted(timeoutMs = 30_000): Promise<void> {
    await waitFor(() => {
      if (!this.running) throw new Error(`agent ${this.node} exited: ${this.live.stderr.slice(-2000)}`)
      return this.eventsOf('resync').length > 0
    }, timeoutMs, `agent ${this.node} to start and resync`)
  }

  sigkill(): number {
    this.killedAt = Date.now()
    this.live.kill('SIGKILL')
    return this.killedAt
  }

  sigterm(): number {
    const at = Date.now()
    this.live.kill('SIGTERM')
    return at
  }

  sigstop(): number {
    const at = Date.now()
    this.live.kill('SIGSTOP')
    this.pauses.push({ from: at })
    return at
  }

  sigcont(): number {
    const at = Date.now()
    this.live.kill('SIGCONT')
    const open = this.pauses.at(-1)
    if (open && open.to === undefined) open.to = at
    return at
  }

  /** Stops it for good (afterAll): resumes it if stopped, SIGTERM, SIGKILL after 10 s. */
  async shutdown(): Promise<void> {
    if (!this.running) return
    if (this.pauses.some((p) => p.to === undefined)) this.sigcont()
    await this.live.stop('SIGTERM', 10_000)
  }

  /**
   * The spans this process acted as leader, from its own timestamps. A window still open
   * when the process was SIGKILLed ends at the kill (a dead process does nothing), one still
   * open when it exited ends at the exit. A window whose `acting: false` came only after a
   * SIGSTOP … SIGCONT inside it ends at the SIGSTOP: stopped, the process did nothing, and
   * that it did nothing as leader after waking is proven separately (the fenced
   * `<prefix>/leader/info` history).
   */
  actingWindows(now = Date.now()): ActingWindow[] {
    const windows: ActingWindow[] = []
    let open: { term: string; from: number } | undefined
    for (const event of this.eventsOf('leader.acting')) {
      const at = Date.parse(event.ts)
      if (event.acting === true && !open) open = { term: String(event.term), from: at }
      else if (event.acting !== true && open) {
        const pause = this.pauses.find((p) => p.from >= open!.from && p.to !== undefined && p.to <= at)
        windows.push(pause ? { agent: this, ...open, to: pause.from, end: 'stopped' } : { agent: this, ...open, to: at, end: 'event' })
        open = undefined
      }
    }
    if (open) {
      if (this.killedAt !== undefined) windows.push({ agent: this, ...open, to: this.killedAt, end: 'killed' })
      else if (this.exitedAt !== undefined) windows.push({ agent: this, ...open, to: this.exitedAt, end: 'exited' })
      else windows.push({ agent: this, ...open, to: now, end: 'open' })
    }
    return windows
  }
}

/** Pairs of acting windows of different processes that overlap in time (should be none). */
export function actingOverlaps(agents: TestAgent[], now = Date.now()): string[] {
  const windows = agents.flatMap((a) => a.actingWindows(now))
  const problems: string[] = []
  for (let i = 0; i < windows.length; i++) {
    for (let j = i + 1; j < windows.length; j++) {
      const a = windows[i]
      const b = windows[j]
      if (a.agent === b.agent) continue
      if (a.from < b.to && b.from < a.to) {
        const iso = (t: number): string => new Date(t).toISOString()
        problems.push(
          `${a.agent.node}(pid ${a.agent.pid}, term ${a.term}) acted ${iso(a.from)}…${iso(a.to)} (${a.end}) while ` +
            `${b.agent.node}(pid ${b.agent.pid}, term ${b.term}) acted ${iso(b.from)}…${iso(b.to)} (${b.end})`,
        )
      }
    }
  }
  return problems
}

/** Which agents were acting at wall-clock time `t`, by their own events. */
export function actingAt(agents: TestAgent[], t: number, now = Date.now()): string[] {
  return agents.flatMap((a) => a.actingWindows(now).filter((w) => w.from <= t && t < w.to).map(() => a.node))
}

export function etcdClient(): Etcd3 {
  return new Etcd3({ hosts: testEnv().etcdEndpoints, dialTimeout: 2_000 })
}

export interface ElectionLeader {
  node: string
  term: string
  key: string
}

/** Who leads per etcd: the campaign key with the lowest create revision. */
export async function readElectionLeader(client: Etcd3, prefix: string): Promise<ElectionLeader | undefined> {
  const response = await client.getAll().prefix(`${prefix}/election/`).sort('Create', 'Ascend').limit(1).exec()
  const kv = response.kvs[0]
  return kv ? { node: kv.value.toString(), term: kv.create_revision, key: kv.key.toString() } : undefined
}

/** The campaign keys as [node, create revision], oldest first. */
/** The agent etcd names leader and that itself says it acts, for that very term. */
export function waitForActingLeader(
  client: Etcd3,
  prefix: string,
  agents: ReadonlyMap<string, TestAgent>,
  options: { exclude?: string; boundMs?: number; everyMs?: number } = {},
): Promise<TestAgent> {
  const { exclude, boundMs = 20_000, everyMs = 50 } = options
  return waitFor(
    async () => {
      const leader = await readElectionLeader(client, prefix)
      if (!leader || leader.node === exclude) return undefined
      const agent = agents.get(leader.node)
      const last = agent?.eventsOf('leader.acting').at(-1)
      return agent?.running && last?.acting === true && last.term === leader.term ? agent : undefined
    },
    boundMs,
    exclude ? `an agent other than ${exclude} to lead and act` : 'an agent to lead and act',
    everyMs,
  )
}

export async function readCampaigns(client: Etcd3, prefix: string): Promise<{ node: string; term: string }[]> {
  const response = await client.getAll().prefix(`${prefix}/election/`).sort('Create', 'Ascend').exec()
  return response.kvs.map((kv) => ({ node: kv.value.toString(), term: kv.create_revision }))
}

export async function currentRevision(client: Etcd3): Promise<string> {
  const response = await client.get('/__revision-probe').exec()
  return response.header.revision
}

export interface LeaderInfoWrite {
  node: string
  term: string
  since: string
  heartbeatAt: string
  modRevision: string
  seenAt: number
}

/**
 * Every write of `<prefix>/leader/info` from `fromRevision` on, through an etcd watch (history
 * replayed first, then live). Call `close()` when done.
 */
export async function recordLeaderInfo(client: Etcd3, prefix: string, fromRevision: string): Promise<{ writes: LeaderInfoWrite[]; close: () => Promise<void> }> {
  const writes: LeaderInfoWrite[] = []
  const watcher = await client.watch().key(`${prefix}/leader/info`).startRevision(fromRevision).create()
  watcher.on('put', (kv) => {
    try {
      const info = JSON.parse(kv.value.toString()) as Omit<LeaderInfoWrite, 'modRevision' | 'seenAt'>
      writes.push({ ...info, modRevision: kv.mod_revision, seenAt: Date.now() })
    } catch {
      writes.push({ node: '?', term: '-1', since: '', heartbeatAt: '', modRevision: kv.mod_revision, seenAt: Date.now() })
    }
  })
  return { writes, close: () => watcher.cancel().catch(() => undefined) }
}

/** Places where a leader/info write carries a lower term than one written before it. */
export function termRegressions(writes: LeaderInfoWrite[]): string[] {
  const problems: string[] = []
  let highest: LeaderInfoWrite | undefined
  for (const write of [...writes].sort((a, b) => (BigInt(a.modRevision) < BigInt(b.modRevision) ? -1 : 1))) {
    if (highest && BigInt(write.term) < BigInt(highest.term)) {
      problems.push(`rev ${write.modRevision}: ${write.node} wrote term ${write.term} after ${highest.node} had written term ${highest.term} (rev ${highest.modRevision})`)
    }
    if (!highest || BigInt(write.term) > BigInt(highest.term)) highest = write
  }
  return problems
}

/** The watch flags for an agent that registers nothing of the host's: the second dockerd, short TTL. */
export function quietAgentArgs(ttl = '3s', extra: string[] = []): string[] {
  return ['--docker-host', testEnv().docker2Host, '--ttl', ttl, ...extra]
}
