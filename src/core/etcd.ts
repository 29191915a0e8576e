import { readFileSync } from 'node:fs'
import { ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel'
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3'
import type { EtcdConnection } from './config.js'
import { DiscoveryError, UnavailableError, UsageError } from './errors.js'

export interface EtcdClientOptions {
  /** Deadline on every unary call: etcd3 sets none, so a frozen member could hang a call forever. */
  callTimeoutMs?: number
  dialTimeoutMs?: number
  /** Retries on another member for recoverable errors (a CLI wants few; the agent more). */
  retries?: number
}

/** Opens an etcd3 client with TLS, auth and deadlines as the CLI and the agent use it. */
export function createEtcdClient(connection: EtcdConnection, options: EtcdClientOptions = {}): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? 5_000
  const etcdOptions: IOptions = {
    hosts: connection.endpoints,
    dialTimeout: options.dialTimeoutMs ?? 2_000,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      // The default host circuit breaker would refuse calls for 5 s after three failures, which
      // turns a short blip into a long outage for the agent; retries on the next member suffice.
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: options.retries ?? 2 }),
      // etcd3 calls `.next()` on it with no context, which cockatiel 3's factory accepts.
      watchBackoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 5_000 }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    },
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    },
  }
  if (connection.cacert || connection.cert) {
    etcdOptions.credentials = {
      rootCertificate: connection.cacert ? readPem(connection.cacert, '--etcd-cacert') : (undefined as unknown as Buffer),
      certChain: connection.cert ? readPem(connection.cert, '--etcd-cert') : undefined,
      privateKey: connection.key ? readPem(connection.key, '--etcd-key') : undefined,
    }
  }
  if (connection.user) {
    etcdOptions.auth = { username: connection.user, password: connection.password ?? '' }
  }
  return new Etcd3(etcdOptions)
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(`${what} ${file} cannot be read (${code ?? (error as Error).message})`, { hint: 'check the path to the PEM file' })
  }
}

/**
 * Turns whatever etcd3/grpc-js threw into one line that names the endpoints and the cause:
 * refused, certificate, authentication, timeout. Discovery errors pass through unchanged.
 */
export function etcdUnavailable(error: unknown, connection: Pick<EtcdConnection, 'endpoints'>, doing = 'etcd request'): DiscoveryError {
  if (error instanceof DiscoveryError) return error
  const where = connection.endpoints.join(',')
  const text = describeCause(error)
  return new UnavailableError(`${doing} failed at ${where}: ${text.cause}`, { hint: text.hint, cause: error })
}

export function describeCause(error: unknown): { cause: string; hint: string } {
  const name = (error as Error)?.name ?? ''
  const message = String((error as Error)?.message ?? error)
  const lower = message.toLowerCase()
  if (name === 'EtcdAuthenticationFailedError' || lower.includes('authentication failed')) {
    return { cause: 'authentication failed (wrong user or password)', hint: 'check --etcd-user and --etcd-password' }
  }
  if (name === 'EtcdPermissionDeniedError' || lower.includes('permission denied')) {
    return { cause: 'permission denied for this user', hint: 'grant the user read/write on the prefix (etcdctl role grant-permission)' }
  }
  if (lower.includes('user name is empty') || lower.includes('invalid auth token') || lower.includes('user name not found')) {
    return { cause: 'authentication required or rejected', hint: 'set --etcd-user and --etcd-password' }
  }
  if (/certificate has expired|cert.*expired/.test(lower)) {
    return { cause: 'TLS certificate expired', hint: 'renew the client or server certificate' }
  }
  if (/certificate|self[- ]signed|unable to verify|tls|ssl|handshake|alert/.test(lower)) {
    const detail = /last error: (?:error: )?([^.]+)/i.exec(message)?.[1] ?? firstLine(message, 'certificate')
    return { cause: `TLS failed: ${detail}`, hint: 'check --etcd-cacert, --etcd-cert and --etcd-key' }
  }
  if (lower.includes('econnrefused') || lower.includes('connection refused')) {
    return { cause: 'connection refused', hint: 'is etcd running there? check --etcd-endpoints' }
  }
  if (name === 'GRPCDeadlineExceededError' || lower.includes('deadline')) {
    return { cause: 'timed out', hint: 'check that the endpoints are reachable and the cluster has quorum' }
  }
  if (lower.includes('enotfound') || lower.includes('name resolution') || lower.includes('dns')) {
    return { cause: 'host name not found', hint: 'check --etcd-endpoints' }
  }
  if (name === 'GRPCConnectFailedError' || lower.includes('unavailable') || lower.includes('no connection established')) {
    return { cause: `unreachable (${firstLine(message)})`, hint: 'is etcd running there? check --etcd-endpoints' }
  }
  return { cause: firstLine(message), hint: 'check --etcd-endpoints and that the cluster is healthy' }
}

function firstLine(message: string, focus?: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean)
  const line = (focus && lines.find((l) => l.toLowerCase().includes(focus))) || lines[0] || message
  return line.length > 160 ? `${line.slice(0, 160)}…` : line
}
