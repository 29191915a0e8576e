import { Command } from '@oclif/core'
import { resolveConfig, SETTINGS, type Config, type EtcdConfigLayer } from '../core/config.js'
import { formatErrorLine, isDiscoveryError, type ExitCode } from '../core/errors.js'
import { decideColor, decideOutputMode, stdoutIsTTY, type OutputMode } from '../ui/output-mode.js'
import { createTheme, type Theme } from '../ui/theme.js'
import { connectionFlags } from './flags.js'

/** Exit codes, documented in every command's help. */
export const EXIT_CODES_HELP = 'Exit codes: 0 success, 1 negative answer (not found, unhealthy, failed check), 2 bad usage or input, 3 etcd or Docker unreachable or refused.'

/**
 * Shared flags, config resolution, output mode and the error → exit-code mapping.
 * Commands stay thin: parse, call one service, render.
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = connectionFlags
  static override enableJsonFlag = true

  private themeCache?: Theme

  /** Resolves flag > env > config file > default for the settings this command's flags carry. */
  protected resolveConfig(flags: Record<string, unknown>, etcdLayers?: EtcdConfigLayer[]): Config {
    const settingFlags: Record<string, unknown> = {}
    for (const setting of SETTINGS) {
      if (setting.flag in flags) settingFlags[setting.flag] = flags[setting.flag]
    }
    return resolveConfig({
      flags: settingFlags,
      configFlag: flags.config as string | undefined,
      env: process.env,
      cwd: process.cwd(),
      ...(etcdLayers ? { etcdLayers } : {}),
    })
  }

  protected get outputMode(): OutputMode {
    return decideOutputMode({ json: this.jsonEnabled(), stdoutIsTTY: stdoutIsTTY(), env: process.env })
  }

  protected get theme(): Theme {
    this.themeCache ??= createTheme(
      decideColor({ noColorFlag: this.argv.includes('--no-color'), stdoutIsTTY: stdoutIsTTY(), env: process.env }),
    )
    return this.themeCache
  }

  /** Writes result text to stdout (progress and logs go to stderr). */
  protected out(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  protected progress(text: string): void {
    process.stderr.write(`${text}\n`)
  }

  /** Indented for a person at a terminal; compact for a program reading a pipe (faster, too). */
  protected override logJson(json: unknown): void {
    process.stdout.write(`${stdoutIsTTY() ? JSON.stringify(json, null, 2) : JSON.stringify(json)}\n`)
  }

  protected override async catch(error: Error & { oclif?: { exit?: number }; code?: string }): Promise<never> {
    if (error.code === 'EEXIT') throw error
    const { code, payload, line } = describeError(error, this.id)
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify({ error: payload })}\n`)
    } else {
      process.stderr.write(`${line}\n`)
      if (process.env.DEBUG && error.stack) process.stderr.write(`${error.stack}\n`)
    }
    this.exit(code)
  }
}

export function describeError(
  error: unknown,
  commandId?: string,
): { code: ExitCode; line: string; payload: Record<string, unknown> } {
  if (isDiscoveryError(error)) {
    return {
      code: error.exitCode,
      line: `Error: ${formatErrorLine(error)}`,
      payload: { kind: error.kind, message: error.message, hint: error.hint, exitCode: error.exitCode },
    }
  }
  const err = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as Error & { oclif?: { exit?: number } }
  if (err.oclif?.exit === 2 || isParseError(err)) {
    const message = parseErrorLine(String(err.message ?? ''))
    const hint = commandId ? `see discovery-agent ${commandId.replace(/:/g, ' ')} --help` : 'see --help'
    return { code: 2, line: `Error: ${message} (${hint})`, payload: { kind: 'usage', message, hint, exitCode: 2 } }
  }
  const message = `unexpected error: ${firstLine(String(err.message || error))}`
  const hint = 'this is a bug; run again with DEBUG=1 for the stack trace and report it'
  return { code: 1, line: `Error: ${message} (${hint})`, payload: { kind: 'bug', message, hint, exitCode: 1 } }
}

function isParseError(error: Error): boolean {
  const name = error.constructor?.name ?? ''
  return (
    name.endsWith('ParseError') ||
    ['FailedFlagValidationError', 'RequiredArgsError', 'UnexpectedArgsError', 'NonExistentFlagsError', 'FlagInvalidOptionError', 'ArgInvalidOptionError'].includes(name)
  )
}

/**
 * oclif's parse errors span several lines ("Missing 1 required arg:", "id  instance id",
 * "See more help with --help"); this keeps what matters on one line:
 * "Missing 1 required arg: id", "Missing required flag address".
 */
function parseErrorLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^See more help with/i.test(l))
  const [head, ...rest] = lines
  if (head === undefined) return 'bad usage'
  if (/^The following errors? occurred:?$/i.test(head)) return rest.join('; ') || head
  if (rest.length === 0) return head
  // "Missing 2 required args:" is followed by "name  description" lines: keep the names.
  if (head.endsWith(':')) return `${head} ${rest.map((l) => l.split(/\s{2,}|\t/)[0]).join(', ')}`
  return `${head}: ${rest.join('; ')}`
}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find(Boolean) ?? text
}
