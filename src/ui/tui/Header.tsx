import { Box } from 'ink'
import { formatAge } from '../../core/duration.js'
import type { AgentState, ConnectionState } from '../../core/store.js'
import { displayWidth, fit, segmentsWidth, type Segment } from './layout.js'
import { Line } from './Line.js'

export interface HeaderProps {
  state: AgentState & { serving?: { dns?: string; http?: string } }
  width: number
  now: number
}

const SEP: Segment = { text: ' · ', dim: true }
const stateSegment = (s: ConnectionState): Segment => (s.connected ? { text: '● up', color: 'green' } : { text: '○ down', color: 'red' })

/**
 * Line 1: node, Docker and etcd state. What follows a state (the target when up, the error
 * and retry when down) is shown as room allows: errors first, cut to fit; targets only whole.
 */
export function connectionLine(state: AgentState, width: number): Segment[] {
  const etcdTarget = state.etcdEndpoints.length <= 1 ? (state.etcdEndpoints[0] ?? '') : `${state.etcdEndpoints[0]} +${state.etcdEndpoints.length - 1}`
  const base: Segment[] = [
    { text: 'discovery-agent', bold: true },
    SEP,
    { text: 'node ' },
    { text: state.node, bold: true },
    SEP,
    { text: 'docker ' },
    stateSegment(state.docker),
    SEP,
    { text: 'etcd ' },
    stateSegment(state.etcd),
  ]
  let room = width - segmentsWidth(base)
  const details: Record<'docker' | 'etcd', string> = { docker: '', etcd: '' }
  const wanted = [
    { key: 'docker' as const, s: state.docker, text: state.docker.connected ? state.dockerHost : (state.docker.detail ?? '') },
    { key: 'etcd' as const, s: state.etcd, text: state.etcd.connected ? etcdTarget : (state.etcd.detail ?? '') },
  ].sort((a, b) => Number(a.s.connected) - Number(b.s.connected))
  for (const { key, s, text } of wanted) {
    const need = displayWidth(text) + 1
    if (!text) continue
    if (need <= room) {
      details[key] = text
      room -= need
    } else if (!s.connected && room >= 12) {
      details[key] = fit(text, room - 1).trimEnd()
      room = 0
    }
  }
  const detail = (key: 'docker' | 'etcd'): Segment[] => (details[key] ? [{ text: ` ${details[key]}`, dim: true }] : [])
  return [...base.slice(0, 7), ...detail('docker'), ...base.slice(7), ...detail('etcd')]
}

/** Line 2: who leads, since when, "(you)" when this agent does. */
export function leaderLine(state: AgentState, width: number, now: number): Segment[] {
  const leader = state.leader
  const tail: Segment[] = state.stopping ? [SEP, { text: 'stopping…', color: 'yellow' }] : []
  if (!leader) return [{ text: 'leader ' }, { text: 'none elected', color: 'red' }, ...tail]
  const you: Segment[] = leader.self ? [{ text: ' (you)', color: 'cyan', bold: true }] : []
  const room = width - segmentsWidth(tail)
  const term: Segment = { text: ` · term ${leader.term} · since ${formatAge(now - Date.parse(leader.since))}`, dim: true }
  const whole: Segment[] = [{ text: 'leader ' }, { text: leader.node, color: 'cyan', bold: leader.self }, ...you, term]
  if (segmentsWidth(whole) <= room) return [...whole, ...tail]
  // Narrow: who leads matters most; the term and age go, a long node name is cut.
  const nodeRoom = Math.max(4, room - 'leader '.length - segmentsWidth(you))
  return [{ text: 'leader ' }, { text: fit(leader.node, nodeRoom).trimEnd(), color: 'cyan', bold: leader.self }, ...you, ...tail]
}

/** The leader line, then where this agent serves DNS and HTTP (when it does), each only whole. */
export function withServing(line: Segment[], serving: { dns?: string; http?: string } | undefined, width: number): Segment[] {
  const out = [...line]
  for (const [name, address] of [['dns', serving?.dns], ['http', serving?.http]] as const) {
    if (!address) continue
    const part: Segment[] = [SEP, { text: `${name} ` }, { text: address, dim: true }]
    if (segmentsWidth(out) + segmentsWidth(part) <= width) out.push(...part)
  }
  return out
}

export const Header = ({ state, width, now }: HeaderProps) => (
  <Box flexDirection="column" width="100%">
    <Line segments={connectionLine(state, width)} width={width} />
    <Line segments={withServing(leaderLine(state, width, now), state.serving, width)} width={width} />
  </Box>
)
