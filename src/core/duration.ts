import { UsageError } from './errors.js'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/

/**
 * Parses `250ms`, `10s`, `2m`, `1h` or a plain number of seconds into milliseconds.
 * `what` names the setting in the error, e.g. `--ttl`.
 */
export function parseDuration(input: string | number, what: string, options: { allowZero?: boolean } = {}): number {
  const text = String(input).trim()
  const match = DURATION_RE.exec(text)
  if (!match) {
    throw new UsageError(`${what}: '${text}' is not a duration`, {
      hint: 'use a number with a unit, e.g. 250ms, 10s, 2m, 1h, or a plain number of seconds',
    })
  }
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's'])
  if (ms === 0 && !options.allowZero) {
    throw new UsageError(`${what}: '${text}' must be longer than zero`, { hint: 'use e.g. 10s' })
  }
  return ms
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
