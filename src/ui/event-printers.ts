import type { AgentEvent } from '../core/agent/events.js'
import { describeAgentEvent } from './event-text.js'
import type { Theme } from './theme.js'

/** Events that feed metrics and the TUI but would flood a line-based log. */
const QUIET: ReadonlySet<AgentEvent['type']> = new Set(['check.result', 'docker.event', 'leader.write'])

/** `--json`: one JSON object per event per line, `{ ts, type, … }`, ANSI-free. */
export function formatEventJson(event: AgentEvent, now = new Date()): string | undefined {
  if (QUIET.has(event.type)) return undefined
  return JSON.stringify({ ts: now.toISOString(), ...event })
}

/** Not a terminal: a timestamped readable line per event. */
export function formatEventLine(event: AgentEvent, theme: Theme, now = new Date()): string | undefined {
  if (QUIET.has(event.type)) return undefined
  const text = describeAgentEvent(event)
  const painted =
    event.type === 'error' || event.type === 'lease.lost' || event.type.endsWith('disconnected') || event.type === 'container.problem'
      ? theme.critical(text)
      : event.type === 'health.changed'
        ? text.replace(`→ ${event.to}`, `→ ${theme.health(event.to)}`)
        : event.type === 'leader.changed'
          ? theme.leader(text)
          : text
  return `${theme.muted(now.toISOString())} ${painted}`
}
