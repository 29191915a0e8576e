import { formatAge, formatDuration } from '../../core/duration.js'
import type { CheckSpec, InstanceRecord } from '../../core/model.js'
import { formatAddress } from '../instance-table.js'
import { HEALTH_COLOR } from '../theme.js'
import type { InstanceChecks } from './check-history.js'
import { clockTime } from './clock.js'
import { sparkline } from './grid.js'
import { fitSegments, instanceLabel, type Segment } from './layout.js'
import type { EventItem } from './views.js'

/** From this width on, the detail pane opens beside the list; narrower, it takes the list's place. */
export const SPLIT_WIDTH = 110

/** Columns of the list beside the detail pane (the pane gets the rest, after a one-column gap). */
export const splitListWidth = (width: number): number => Math.max(48, Math.floor(width * 0.45))

export interface DetailInput {
  record: InstanceRecord | undefined
  /** `service/id` of the instance the pane was opened on (said when it is gone). */
  key: string
  checks?: InstanceChecks
  /** This instance's events, newest first. */
  events: readonly EventItem[]
  localNode: string
  now: number
  width: number
  /** Lines the pane may take; the events get what the record leaves. */
  rows: number
}

const SEP: Segment = { text: ' · ', dim: true }
const label = (text: string): Segment => ({ text: `${text} `, dim: true })

/** The check definition in two lines: what is checked, and its schedule and thresholds. */
export function describeCheck(check: CheckSpec): [string, string] {
  const expect = [check.expectStatus ? `status ${check.expectStatus}` : '', check.expectBody ? `body /${check.expectBody}/` : ''].filter(Boolean).join(', ')
  return [
    `${check.kind} ${check.target}${check.container ? ` in ${check.container}` : ''}${expect ? ` · expects ${expect}` : ''}`,
    [
      `every ${formatDuration(check.interval)}`,
      `timeout ${formatDuration(check.timeout)}`,
      `critical after ${check.failuresBeforeCritical}, passing after ${check.successesBeforePassing}`,
      ...(check.initialDelay ? [`first after ${formatDuration(check.initialDelay)}`] : []),
    ].join(' · '),
  ]
}

/**
 * The detail pane's lines, each at most `width` wide: the full record, the check and its
 * recent results (latency sparkline, failures as ×), the output of the last failure, and the
 * instance's events as far as rows allow.
 */
export function detailLines({ record, key, checks, events, localNode, now, width, rows }: DetailInput): Segment[][] {
  if (!record) return [[{ text: `${key.replace('/', ' ')} is gone from the registry (Esc closes)`, color: 'yellow' }]]
  const r = record
  const here = r.node === localNode
  const lines: Segment[][] = [
    [{ text: `${r.service} ${instanceLabel(r)}`, bold: true }, SEP, { text: r.health.status, color: HEALTH_COLOR[r.health.status], bold: true }, { text: ` for ${formatAge(now - Date.parse(r.health.since))}`, dim: true }],
    [label('address'), { text: formatAddress(r) }, SEP, label('node'), { text: r.node, bold: here }, { text: here ? ' (this node)' : '' }, SEP, label('source'), { text: r.source }],
    [label('id'), { text: r.id }, SEP, label('registered'), { text: `${formatAge(now - Date.parse(r.registeredAt))} ago` }],
    [label('tags'), { text: r.tags.length ? r.tags.join(',') : '—' }, SEP, label('meta'), { text: Object.keys(r.meta).length ? Object.entries(r.meta).map(([k, v]) => `${k}=${v}`).join(' ') : '—' }],
  ]
  if (r.container) {
    const c = r.container
    // Uptime: at least since registration (records carry no container start time).
    lines.push(
      [label('container'), { text: c.name }, SEP, label('up'), { text: `≥${formatAge(now - Date.parse(r.registeredAt))}` }, SEP, label('port'), { text: `${c.port}/${c.protocol}` }],
      [label('image'), { text: c.image }, SEP, label('id'), { text: c.id.slice(0, 12) }],
    )
  }
  if (r.check) {
    const [what, when] = describeCheck(r.check)
    lines.push([label('check'), { text: what }], [label('      '), { text: when }])
  } else lines.push([label('check'), { text: 'none (passing while registered)' }])
  lines.push([label('output'), { text: r.health.output, color: r.health.status === 'passing' ? undefined : HEALTH_COLOR[r.health.status] }])
  lines.push(resultsLine(r, checks, here, width))
  const failure = r.health.status !== 'passing' && r.health.status !== 'unknown' ? { at: Date.parse(r.health.since), status: r.health.status, output: r.health.output } : checks?.lastFailure
  if (failure) lines.push([label('last failure'), { text: `${clockTime(new Date(failure.at).toISOString())} ${failure.status}: `, color: HEALTH_COLOR[failure.status] }, { text: failure.output }])
  else if (r.check) lines.push([label('last failure'), { text: 'none seen' }])
  const room = rows - lines.length - 1
  if (room > 0) {
    lines.push([{ text: `events (${events.length})`, bold: true }, ...(events.length > room ? [{ text: `, newest ${room}`, dim: true }] : [])])
    for (const e of events.slice(0, room)) lines.push([{ text: `${clockTime(e.at)} `, dim: true }, { text: e.text, color: e.level === 'error' ? 'red' : e.level === 'warn' ? 'yellow' : undefined }])
  }
  return lines.slice(0, Math.max(1, rows)).map((line) => fitSegments(line, width))
}

/** The check results line: a sparkline of the latencies, the last, the range and the failures. */
function resultsLine(r: InstanceRecord, checks: InstanceChecks | undefined, here: boolean, width: number): Segment[] {
  const samples = checks?.samples ?? []
  if (samples.length === 0) {
    if (!r.check) return [label('results'), { text: '—' }]
    return [label('results'), { text: here || r.source === 'manual' ? 'none seen yet by this agent' : `checked by ${r.node}; its results are not seen here`, dim: true }]
  }
  const latencies = samples.map((s) => s.latencyMs)
  const failed = samples.filter((s) => s.status !== 'passing').length
  const last = samples.at(-1)!
  const facts = ` last ${last.latencyMs} ms ${last.status} · ${Math.min(...latencies)}–${Math.max(...latencies)} ms · ${failed}/${samples.length} not passing`
  // The sparkline gets at least 12 samples' room; the facts are cut first.
  const room = Math.max(12, width - 'results '.length - facts.length)
  return [label('results'), ...sparkline(samples.map((s) => ({ latencyMs: s.latencyMs, failed: s.status !== 'passing' })), room), { text: facts, dim: true }]
}
