import type { HealthStatus, InstanceRecord } from '../model.js'

export interface RoutableOptions {
  /** Serve only `passing` (DNS `--dns-only-passing`, HTTP `?passing`); else `warning` too. */
  onlyPassing?: boolean
}

/**
 * Whether an instance may receive traffic: the one rule every server of healthy instances
 * uses (DNS, HTTP, the resolver). `critical` and `unknown` (not checked yet, as Consul's
 * initial `critical`) never are; `warning` is unless only passing ones are asked for.
 */
export function isRoutable(record: Pick<InstanceRecord, 'health'>, options: RoutableOptions = {}): boolean {
  return routableStatus(record.health.status, options)
}

export function routableStatus(status: HealthStatus, options: RoutableOptions = {}): boolean {
  if (status === 'passing') return true
  return status === 'warning' && !options.onlyPassing
}
