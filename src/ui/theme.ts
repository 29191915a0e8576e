import { Chalk } from 'chalk'
import type { HealthStatus } from '../core/model.js'

/**
 * Semantic colour tokens. Colour always comes with a word or an icon, never alone, so
 * NO_COLOR output says the same thing.
 */
export interface Theme {
  color: boolean
  passing: (text: string) => string
  warning: (text: string) => string
  critical: (text: string) => string
  unknown: (text: string) => string
  leader: (text: string) => string
  muted: (text: string) => string
  bold: (text: string) => string
  ok: string
  fail: string
  warn: string
  health: (status: HealthStatus) => string
}

export function createTheme(color: boolean): Theme {
  const chalk = new Chalk({ level: color ? 1 : 0 })
  const byHealth: Record<HealthStatus, (text: string) => string> = {
    passing: chalk.green,
    warning: chalk.yellow,
    critical: chalk.red,
    unknown: chalk.gray,
    maintenance: chalk.magenta,
  }
  return {
    color,
    passing: chalk.green,
    warning: chalk.yellow,
    critical: chalk.red,
    unknown: chalk.gray,
    leader: chalk.cyan.bold,
    muted: chalk.gray,
    bold: chalk.bold,
    ok: chalk.green('✓'),
    fail: chalk.red('✗'),
    warn: chalk.yellow('!'),
    health: (status) => byHealth[status](status),
  }
}

/** Health colours for Ink, which takes colour names. */
export const HEALTH_COLOR: Record<HealthStatus, string> = {
  passing: 'green',
  warning: 'yellow',
  critical: 'red',
  unknown: 'gray',
  maintenance: 'magenta',
}
