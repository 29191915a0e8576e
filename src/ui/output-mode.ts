/**
 * The one module that decides how output looks. Nothing else checks isTTY, CI or TERM.
 */
export type OutputMode = 'tty' | 'plain' | 'json'

export interface OutputContext {
  json: boolean
  stdoutIsTTY: boolean
  env: NodeJS.ProcessEnv
}

export function decideOutputMode({ json, stdoutIsTTY, env }: OutputContext): OutputMode {
  if (json) return 'json'
  if (!stdoutIsTTY || isCI(env) || env.TERM === 'dumb') return 'plain'
  return 'tty'
}

/** Colour is on for a TTY unless NO_COLOR / --no-color / TERM=dumb; FORCE_COLOR turns it on anywhere. */
export function decideColor({ noColorFlag, stdoutIsTTY, env }: { noColorFlag: boolean; stdoutIsTTY: boolean; env: NodeJS.ProcessEnv }): boolean {
  if (noColorFlag) return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  if (env.TERM === 'dumb') return false
  return stdoutIsTTY
}

export function isCI(env: NodeJS.ProcessEnv): boolean {
  return env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI !== 'false'
}

export function stdoutIsTTY(): boolean {
  return Boolean(process.stdout.isTTY)
}
