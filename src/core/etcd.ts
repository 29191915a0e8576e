import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import tls from 'node:tls'
import { ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel'
import { Etcd3, GRPCResourceExhastedError, isRecoverableError, Range, type IKeyValue, type IOptions } from 'etcd3'
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
      // grpc's default 4 MiB is ~10,000 records in one response (a watch batch, a range):
      // ranges are paged (rangePrefix), and this leaves room for what can't be.
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
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
  return requireLeader(new Etcd3(etcdOptions))
}

interface CallMetadata {
  clone(): CallMetadata
  set(key: string, value: string): void
}

interface MetadataSource {
  getMetadata(): Promise<CallMetadata>
}

/**
 * Every call asks etcd to require a leader (gRPC metadata `hasleader: true`, as etcd's own Go client
 * does for watches with `WithRequireLeader`). A member cut off from quorum
 * then refuses the call ("no leader") instead of serving its stale store, so a watch breaks
 * (the view reports disconnected and relists elsewhere) rather than showing an old registry
 * as current. etcd3 builds call metadata in one place, its pool's authenticator, and has no
 * option for this: the key is added there. Without that internal the client works as before.
 */
export function requireLeader(client: Etcd3): Etcd3 {
  const authenticator = (client as unknown as { pool?: { authenticator?: MetadataSource } }).pool?.authenticator
  if (!authenticator || typeof authenticator.getMetadata !== 'function') return client
  const original = authenticator.getMetadata.bind(authenticator)
  authenticator.getMetadata = async () => {
    const metadata = (await original()).clone()
    metadata.set('hasleader', 'true')
    return metadata
  }
  return client
}

export interface PrefixRange {
  kvs: IKeyValue[]
  /** The store revision every page was read at. */
  revision: string
}

/**
 * Keys per page. etcd 3.4 counts every key left in the range for each page it serves, so a
 * page costs a pass over the rest of the prefix: 100,000 records read 2,000 at a time took
 * ~2.3 s, 10,000 at a time ~1.0 s (a single range: ~0.8 s). 10,000 records of the agent's
 * usual ~700 bytes are ~7 MB, well inside the 64 MiB the client accepts per message; a page
 * that is not (large records) is read again in halves, and the smaller size is kept for the
 * client's later reads.
 */
const RANGE_PAGE_SIZE = 10_000
/** The page size a client had to fall back to: its later reads start there. */
const learnedPageSize = new WeakMap<Etcd3, number>()

/**
 * Every key under `prefix`, read in pages of `pageSize` keys at one revision, so the result is
 * one consistent snapshot however large: a single range over 10,000 instances is bigger than a
 * gRPC message may be. A page too large for a message is read again in halves; a compaction
 * between pages restarts the read at a new revision.
 */
export async function rangePrefix(client: Etcd3, prefix: string, pageSize = RANGE_PAGE_SIZE): Promise<PrefixRange> {
  let kvs: IKeyValue[] = []
  const revision = await forEachPrefixPage(
    client,
    prefix,
    (page) => {
      for (const kv of page) kvs.push(kv)
    },
    { pageSize, onRestart: () => (kvs = []) },
  )
  return { kvs, revision }
}

export interface PrefixPageOptions {
  pageSize?: number
  /** Called when a compaction forced the read to start over: drop what the pages gave so far. */
  onRestart?: () => void
}

/**
 * The pages of `prefix` at one revision, handed to `onPage` in key order as they arrive, so a
 * caller that reduces each page (list --json keeps one string per record) never holds every
 * raw key-value at once. The next page is requested before `onPage` runs on the current one,
 * so etcd reads it while this process decodes and validates. Returns the revision read at.
 */
export async function forEachPrefixPage(
  client: Etcd3,
  prefix: string,
  onPage: (kvs: IKeyValue[]) => void,
  options: PrefixPageOptions = {},
): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await pagesOnce(client, prefix, options.pageSize ?? RANGE_PAGE_SIZE, onPage)
    } catch (error) {
      if (attempt < 3 && /compacted/i.test(String((error as Error)?.message))) {
        options.onRestart?.()
        continue
      }
      throw error
    }
  }
}

async function pagesOnce(client: Etcd3, prefix: string, pageSize: number, onPage: (kvs: IKeyValue[]) => void): Promise<string> {
  const end = Range.prefix(prefix).end
  let limit = Math.min(pageSize, learnedPageSize.get(client) ?? pageSize)
  const read = async (start: Buffer, revision?: string): Promise<{ kvs: IKeyValue[]; more: boolean; revision: string }> => {
    for (;;) {
      const builder = client.getAll().inRange({ start, end }).limit(limit)
      if (revision !== undefined) builder.revision(revision)
      try {
        const response = await builder.exec()
        return { kvs: response.kvs, more: response.more, revision: response.header.revision }
      } catch (error) {
        if (error instanceof GRPCResourceExhastedError && limit > 1) {
          limit = Math.max(1, Math.floor(limit / 2))
          learnedPageSize.set(client, limit)
          continue
        }
        throw error
      }
    }
  }
  let page = await read(Buffer.from(prefix))
  const revision = page.revision
  for (;;) {
    const last = page.kvs[page.kvs.length - 1]
    // The next page starts just after the last key read; it is on its way while this one is handled.
    const next = page.more && last ? read(Buffer.concat([last.key, Buffer.from([0])]), revision) : undefined
    // A failed prefetch surfaces when awaited below; until then it must not count as unhandled.
    next?.catch(() => undefined)
    onPage(page.kvs)
    if (!next) return revision
    page = await next
  }
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

/**
 * Like etcdUnavailable, but when TLS is configured and grpc-js could only say "no connection
 * established" (it drops the TLS error: `Last error: null`), opens a TLS connection to each
 * endpoint with the same CA, certificate and key to name the real cause (untrusted server
 * certificate, expired or rejected client certificate). Runs only on the failure path.
 */
export async function explainEtcdFailure(
  error: unknown,
  connection: Pick<EtcdConnection, 'endpoints'> & Partial<EtcdConnection>,
  doing = 'etcd request',
): Promise<DiscoveryError> {
  if (error instanceof DiscoveryError) return error
  const first = etcdUnavailable(error, connection, doing)
  const secure = connection.endpoints.filter((e) => e.startsWith('https://'))
  if (secure.length === 0 || !/^unreachable|^timed out/.test(describeCause(error).cause)) return first
  for (const endpoint of secure) {
    const problem = await probeTls(endpoint, connection)
    if (problem) return new UnavailableError(`${doing} failed at ${endpoint}: ${problem.cause}`, { hint: problem.hint, cause: error })
  }
  return first
}

const TLS_PROBE_TIMEOUT_MS = 2_000
/** TLS 1.3 servers reject a client certificate after the client's handshake completes. */
const TLS_ALERT_WAIT_MS = 250

/** Connects once with the client's TLS settings; returns the TLS problem, if there is one. */
export async function probeTls(
  endpoint: string,
  connection: Partial<EtcdConnection>,
): Promise<{ cause: string; hint: string } | undefined> {
  const url = new URL(endpoint)
  const read = (file?: string): Buffer | undefined => {
    try {
      return file ? readFileSync(file) : undefined
    } catch {
      return undefined
    }
  }
  const cert = read(connection.cert)
  const expired = cert ? certificateExpiry(cert) : undefined
  if (expired) {
    return {
      cause: `TLS failed: the client certificate ${connection.cert} expired on ${expired}`,
      hint: 'renew the client certificate (--etcd-cert, --etcd-key)',
    }
  }
  const outcome = await new Promise<{ error?: NodeJS.ErrnoException }>((resolve) => {
    const socket = tls.connect({
      host: url.hostname,
      port: Number(url.port || 2379),
      ca: read(connection.cacert),
      cert,
      key: read(connection.key),
      ALPNProtocols: ['h2'],
      ...(isIpAddress(url.hostname) ? {} : { servername: url.hostname }),
    })
    const finish = (error?: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ error })
    }
    const timer = setTimeout(() => finish(), TLS_PROBE_TIMEOUT_MS)
    socket.on('secureConnect', () => {
      clearTimeout(timer)
      setTimeout(() => finish(), TLS_ALERT_WAIT_MS)
    })
    socket.on('error', (error) => finish(error))
    socket.on('data', () => undefined)
  })
  if (!outcome.error) return undefined
  const code = outcome.error.code ?? ''
  const message = outcome.error.message
  if (code === 'ECONNREFUSED') return { cause: 'connection refused', hint: 'is etcd running there? check --etcd-endpoints' }
  if (/CERT_HAS_EXPIRED/.test(code)) {
    return { cause: 'TLS failed: the server certificate has expired', hint: 'renew the etcd server certificate' }
  }
  if (/UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_SIGNATURE/.test(code)) {
    return {
      cause: `TLS failed: the server certificate is not trusted (${message})`,
      hint: connection.cacert ? `check that --etcd-cacert ${connection.cacert} is the CA that signed the etcd server certificate` : 'pass the CA that signed the etcd server certificate with --etcd-cacert',
    }
  }
  if (/HOSTNAME|ALTNAME|IP: .* is not in the cert/i.test(`${code} ${message}`)) {
    return { cause: `TLS failed: the server certificate does not name this host (${message.split('.')[0]})`, hint: 'connect by a name or IP listed in the server certificate' }
  }
  const alert = /alert ([a-z ]+?)(?::|$)/i.exec(message)?.[1]?.trim()
  if (alert) {
    return {
      cause: `TLS failed: the server rejected the client certificate (alert: ${alert})${connection.cert ? '' : '; no --etcd-cert was given'}`,
      hint: connection.cert ? 'check that --etcd-cert and --etcd-key are valid and signed by a CA the server trusts' : 'pass a client certificate with --etcd-cert and --etcd-key',
    }
  }
  if (/ssl|tls|certificate/i.test(`${code} ${message}`)) {
    return { cause: `TLS failed: ${message.split('\n')[0].slice(0, 160)}`, hint: 'check --etcd-cacert, --etcd-cert and --etcd-key' }
  }
  return undefined
}

/** The expiry date (YYYY-MM-DD) when a PEM certificate is no longer valid, else undefined. */
function certificateExpiry(pem: Buffer): string | undefined {
  try {
    const certificate = new X509Certificate(pem)
    const validTo = new Date(certificate.validTo)
    return validTo.getTime() < Date.now() ? validTo.toISOString().slice(0, 10) : undefined
  } catch {
    return undefined
  }
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':')
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
    // grpc-js: "14 UNAVAILABLE: No connection established. Last error: <why or null>. Resolution note: …"
    const last = /last error: (.+?)\.?\s*(?:resolution note:|$)/i.exec(message)?.[1]?.replace(/^error: /i, '').trim()
    const detail = last && last !== 'null' ? last.replace(/ \(\d{4}-\d\d-\d\dT[^)]*\)$/, '') : 'no connection established'
    return { cause: `unreachable (${detail.length > 160 ? `${detail.slice(0, 160)}…` : detail})`, hint: 'is etcd running there? check --etcd-endpoints' }
  }
  return { cause: firstLine(message), hint: 'check --etcd-endpoints and that the cluster is healthy' }
}

function firstLine(message: string, focus?: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean)
  const line = (focus && lines.find((l) => l.toLowerCase().includes(focus))) || lines[0] || message
  return line.length > 160 ? `${line.slice(0, 160)}…` : line
}
