/**
 * The one error hierarchy. Every error a user can cause or meet carries the exit code
 * the README documents for it (0 ok, 1 negative answer, 2 bad input, 3 dependency) and a hint
 * that says how to fix it. Anything else is a bug.
 */
export type ExitCode = 0 | 1 | 2 | 3

export abstract class DiscoveryError extends Error {
  abstract readonly exitCode: ExitCode
  /** Short machine-readable kind, used in `--json` error objects. */
  abstract readonly kind: string
  readonly hint?: string

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.name = new.target.name
    this.hint = options.hint
  }
}

/** Bad usage or bad input: exit 2. Nothing was written. */
export class UsageError extends DiscoveryError {
  readonly exitCode = 2 as const
  readonly kind = 'usage'
}

/** A dependency (etcd, Docker) could not be reached or refused us: exit 3. */
export class UnavailableError extends DiscoveryError {
  readonly exitCode = 3 as const
  readonly kind = 'unavailable'
}

/** A negative answer (not found, unhealthy, a failed diagnosis): exit 1. */
export class NegativeResultError extends DiscoveryError {
  readonly exitCode = 1 as const
  readonly kind = 'negative'
}

export class NotFoundError extends NegativeResultError {}

export function isDiscoveryError(error: unknown): error is DiscoveryError {
  return error instanceof DiscoveryError
}

/** `message (hint)` on one line, the form every command prints. */
export function formatErrorLine(error: DiscoveryError): string {
  return error.hint ? `${error.message} (${error.hint})` : error.message
}
