import { UsageError } from './errors.js'
import { clip } from './validate.js'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PLAIN_SECONDS_RE = /^(\d+(?:\.\d*)?|\.\d+)$/

/** Timers fire at once (with a warning) for delays above 2^31-1 ms, so longer durations are refused. */
export const MAX_DURATION_MS = 2_147_483_647

/**
 * Parses `250ms`, `10s`, `2m`, `1h`, Go-style compounds such as `1m30s`, or a plain number
 * of seconds into milliseconds. `what` names the setting in the error, e.g. `--ttl`.
 */
export function parseDuration(input: string | number, what: string, options: { allowZero?: boolean } = {}): number {
  const text = String(input).trim()
  const ms = durationMs(text)
  if (ms === undefined) {
    throw new UsageError(`${what}: '${clip(text)}' is not a duration`, {
      hint: 'use a number with a unit, e.g. 250ms, 10s, 2m, 1h, or a plain number of seconds',
    })
  }
  if (ms === 0 && !options.allowZero) {
    throw new UsageError(`${what}: '${clip(text)}' must be longer than zero`, { hint: 'use e.g. 10s' })
  }
  if (ms > MAX_DURATION_MS) {
    throw new UsageError(`${what}: '${clip(text)}' is too long (at most ${formatDuration(Math.floor(MAX_DURATION_MS / 3_600_000) * 3_600_000)})`, {
      hint: 'use a shorter duration, e.g. 24h',
    })
  }
  return ms
}

function durationMs(text: string): number | undefined {
  if (PLAIN_SECONDS_RE.test(text)) return Math.round(Number(text) * 1000)
  if (text.length === 0) return undefined
  // One `<number><unit>` part at a time (`1m30s`); sticky, so nothing may sit between parts.
  const part = /(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)/y
  let total = 0
  let match: RegExpExecArray | null
  while (part.lastIndex < text.length && (match = part.exec(text)) !== null) {
    total += Number(match[1]) * UNIT_MS[match[2]]
  }
  // The sticky regex stops at the first character that is not a part: then the text is no duration.
  if (part.lastIndex !== text.length) return undefined
  return Number.isFinite(total) ? Math.round(total) : undefined
}

/** 1500 → `1.5s`, 60000 → `1m`, 250 → `250ms`: the shortest exact form. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`
  if (ms >= 1000) return `${Number((ms / 1000).toFixed(3))}s`
  return `${ms}ms`
}

/** A compact age for tables: `5s`, `3m`, `2h`, `4d`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86_400)}d`
}
