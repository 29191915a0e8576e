import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { parseDuration } from '../core/duration.js'
import { describeProbeFailure, runProbe, type ProbeOptions, type ProbeProgress, type ProbeReport } from '../services/probe.js'

const duration = (value: string | undefined, flag: string): number | undefined => (value === undefined ? undefined : parseDuration(value, flag))

export default class Probe extends BaseCommand {
  static override summary = 'Health-check targets once, or until healthy with --wait (a CI gate)'
  static override description = `Targets: http(s)://host:port/path (200-399 passes unless --expect-status), tcp://host:port (connect), docker://<container> (its HEALTHCHECK, or --exec "<cmd>" inside it), or --service <name> for every registered instance (its stored http/tcp check, else a TCP connect; any one must pass, every one with --all). Several targets must all pass. Prints ✓/✗ per target on stdout and, with --wait, progress on stderr; --json gives { ok, results: [{ target, ok, status, output, latencyMs, attempts }] }.\n\nExit codes: 0 healthy, 1 unhealthy (the last error on stderr), 2 bad target or flag, 3 etcd (--service) or Docker (docker://) unreachable.`
  static override examples = [
    '<%= config.bin %> probe http://127.0.0.1:8080/health --wait 60s',
    '<%= config.bin %> probe tcp://db.internal:5432 --timeout 2s',
    '<%= config.bin %> probe docker://web-1 --exec "wget -q -O- http://127.0.0.1/"',
    '<%= config.bin %> probe --service billing --all --json',
  ]
  static override strict = false
  static override args = { target: Args.string({ description: 'target URL (repeatable)' }) }
  static override flags = {
    service: Flags.string({ summary: 'probe every registered instance of this service' }),
    all: Flags.boolean({ summary: 'with --service: every instance must pass (default: any one)' }),
    timeout: Flags.string({ summary: 'per-attempt timeout (default 5s)' }),
    'expect-status': Flags.string({ summary: 'accepted HTTP statuses, e.g. 200 or 200-299 (default 200-399)' }),
    'expect-body': Flags.string({ summary: 'regular expression the HTTP body must match' }),
    exec: Flags.string({ summary: 'with docker://: run this command in the container instead of reading its HEALTHCHECK' }),
    wait: Flags.string({ summary: 'retry until healthy or this deadline, e.g. 60s' }),
    interval: Flags.string({ summary: 'with --wait: time between attempts (default 1s)' }),
  }

  async run(): Promise<ProbeReport> {
    const { argv, flags } = await this.parse(Probe)
    const options: ProbeOptions = {
      targets: argv as string[],
      service: flags.service,
      all: flags.all,
      timeoutMs: duration(flags.timeout, '--timeout'),
      expectStatus: flags['expect-status'],
      expectBody: flags['expect-body'],
      exec: flags.exec,
      waitMs: duration(flags.wait, '--wait'),
      intervalMs: duration(flags.interval, '--interval'),
    }
    const report = await runProbe(options, this.resolveConfig(flags), (event) => this.progress(describeProgress(event)))
    if (!this.jsonEnabled()) {
      const t = this.theme
      for (const r of report.results) {
        const who = r.instance === undefined ? '' : ` ${t.muted(`(${r.service}/${r.instance})`)}`
        const tries = r.attempts > 1 ? ` ${t.muted(`[${r.attempts} attempts]`)}` : ''
        this.out(`${r.ok ? t.ok : t.fail} ${r.target}${who} ${r.ok ? r.output : t.health(r.status)}${r.ok ? '' : `: ${r.output}`}${tries}`)
      }
    }
    if (!report.ok) {
      this.progress(`Error: ${describeProbeFailure(report, options)}`)
      process.exitCode = 1
    }
    return report
  }
}

function describeProgress(event: ProbeProgress): string {
  if (event.type === 'registry-error') return `etcd: ${event.message}; keeping the last known instances`
  const first = event.failing[0]
  const more = event.failing.length > 1 ? ` (+${event.failing.length - 1} more)` : ''
  return `waiting (attempt ${event.attempt}, ${Math.ceil(Math.max(0, event.remainingMs) / 1000)}s left): ${first ? `${first.target}: ${first.output}` : 'unhealthy'}${more}`
}
