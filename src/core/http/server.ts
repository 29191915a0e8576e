import { timingSafeEqual, createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { ViewSnapshot, ViewSource } from '../view/types.js'
import {
  agentSelf,
  blockingWait,
  catalogDatacenters,
  catalogNode,
  catalogNodes,
  catalogService,
  catalogServices,
  consulIndex,
  healthService,
  mustWait,
  parseConsulQuery,
  prometheusHttpSd,
  statusLeader,
  statusPeers,
  type ConsulAnswer,
  type ConsulOptions,
  type ConsulQuery,
} from './consul.js'

export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => void

export interface HttpApiOptions {
  /** Interface to listen on; default 127.0.0.1 (loopback: the API has no TLS). */
  host?: string
  /** Port; default 8500 (Consul's); 0 picks a free one. */
  port?: number
  /** The datacenter name this agent answers for; default `dc1`. Any other `?dc=` is refused. */
  datacenter?: string
  /** This agent's node name (agent/self). */
  node: string
  /** This agent's version (agent/self). */
  version?: string
  /** When set, every Consul route but /v1/status/* needs it (X-Consul-Token, Authorization: Bearer, or ?token=). */
  token?: string
  /** Routes mounted as they are (e.g. /metrics, /healthz): exact paths, any method, no token. */
  extraRoutes?: Record<string, RouteHandler>
  /** Longest request target accepted; default 8192. */
  maxUrlLength?: number
  /** Source of the blocking-query jitter, [0, 1); default Math.random. */
  random?: () => number
}

export interface HttpApi {
  url: string
  port: number
  close(): Promise<void>
}

/** The path the Prometheus http_sd answer is served at. */
export const HTTP_SD_PATH = '/v1/prometheus/http_sd'

const READ_ONLY = 'this Consul API (discovery-agent) is read-only: register services with Docker labels or `discovery-agent register`'

type Route =
  | { kind: 'answer'; answer: (snapshot: ViewSnapshot, query: ConsulQuery) => ConsulAnswer; blocking?: (query: ConsulQuery) => { service?: string }; open?: boolean }
  | { kind: 'error'; status: number; message: string }

/**
 * Serves the read-only Consul API over one ViewSource: a thin adapter that parses the request,
 * picks the pure answer in consul.ts, runs Consul's blocking-query protocol on the view, and
 * writes status, headers and body. Nothing here reads a request body.
 */
export async function startHttpApi(view: ViewSource, options: HttpApiOptions): Promise<HttpApi> {
  const host = options.host ?? '127.0.0.1'
  const consul: ConsulOptions = { datacenter: options.datacenter ?? 'dc1', node: options.node, ...(options.version ? { version: options.version } : {}) }
  const maxUrlLength = options.maxUrlLength ?? 8192
  const random = options.random ?? Math.random
  const extraRoutes = new Map(Object.entries(options.extraRoutes ?? {}))
  const waiting = new Set<AbortController>()
  // When the view last had its etcd watch (X-Consul-LastContact while it has not).
  let lastConnectedAt: number | undefined
  // Answers are pure functions of (snapshot, path, query): one snapshot's answers, and their
  // JSON, are computed once however many clients ask (Prometheus, HAProxy checks, many
  // blocking queries waking on the same change). A new snapshot starts a new cache.
  let cachedFor: ViewSnapshot | undefined
  const cache = new Map<string, { answer: ConsulAnswer; json?: Buffer }>()
  const answerOf = (route: Extract<ReturnType<typeof resolveRoute>, { kind: 'answer' }>, snapshot: ViewSnapshot, query: ReturnType<typeof parseConsulQuery>, key: string) => {
    if (snapshot !== cachedFor) {
      cache.clear()
      cachedFor = snapshot
    }
    let hit = cache.get(key)
    if (!hit) {
      hit = { answer: route.answer(snapshot, query) }
      if (cache.size < 1_000) cache.set(key, hit)
    }
    return hit
  }

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const target = request.url ?? '/'
    if (target.length > maxUrlLength) return sendText(response, request, 414, `URI too long (at most ${maxUrlLength} bytes)`)
    const url = new URL(target, 'http://consul.invalid')
    const extra = extraRoutes.get(url.pathname)
    if (extra) return extra(request, response)
    const method = request.method ?? 'GET'
    if (method !== 'GET' && method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD')
      return sendText(response, request, 405, `method ${method} not allowed: ${READ_ONLY}`)
    }
    const route = resolveRoute(url.pathname, consul)
    if (route.kind === 'error') return sendText(response, request, route.status, route.message)
    if (options.token !== undefined && !route.open) {
      const denied = checkToken(request, url.searchParams, options.token)
      if (denied) return sendText(response, request, 403, denied)
    }
    const query = parseConsulQuery(url.searchParams)
    const snapshot = view.snapshot()
    const key = answerKey(url)
    let answer = answerOf(route, snapshot, query, key)
    if (route.blocking && answer.answer.status === 200) {
      const wait = blockingWait(url.searchParams, random)
      if (typeof wait === 'string') return sendText(response, request, 400, wait)
      if (wait && mustWait(snapshot, answer.answer, wait.index)) {
        const controller = new AbortController()
        // A client that goes away ends its wait: the view drops the waiter at once.
        const onClose = (): void => controller.abort()
        response.once('close', onClose)
        waiting.add(controller)
        try {
          await view.waitForChange({ service: route.blocking(query).service, afterRevision: wait.index.toString(), timeoutMs: wait.timeoutMs, signal: controller.signal })
        } finally {
          waiting.delete(controller)
          response.off('close', onClose)
        }
        if (controller.signal.aborted) {
          if (!response.writableEnded) response.destroy()
          return
        }
        answer = answerOf(route, view.snapshot(), query, key)
      }
    }
    sendAnswer(response, request, answer, url.searchParams.has('pretty'))
  }

  const sendAnswer = (response: ServerResponse, request: IncomingMessage, cached: { answer: ConsulAnswer; json?: Buffer }, pretty: boolean): void => {
    const { answer } = cached
    const snapshot = view.snapshot()
    const now = Date.now()
    if (snapshot.connected) lastConnectedAt = now
    if (answer.status !== 200) return sendText(response, request, answer.status, String(answer.body))
    response.setHeader('X-Consul-Index', consulIndex(answer.index))
    response.setHeader('X-Consul-KnownLeader', snapshot.connected ? 'true' : 'false')
    response.setHeader('X-Consul-LastContact', String(snapshot.connected || lastConnectedAt === undefined ? 0 : now - lastConnectedAt))
    response.setHeader('X-Consul-Default-ACL-Policy', options.token === undefined ? 'allow' : 'deny')
    const bytes = pretty ? Buffer.from(JSON.stringify(answer.body, null, 4)) : (cached.json ??= Buffer.from(JSON.stringify(answer.body)))
    response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': bytes.length })
    response.end(request.method === 'HEAD' ? undefined : bytes)
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendText(response, request, 500, `internal error: ${(error as Error).message}`)
      else response.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8500, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8500)
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const controller of waiting) controller.abort()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Which answer a path gets. Service and node names are one path segment, percent-decoded;
 * an unknown name is no error (Consul answers `[]` or `null` for it).
 */
export function resolveRoute(pathname: string, consul: ConsulOptions): Route {
  const named = (prefix: string): string | undefined | Error => {
    if (!pathname.startsWith(prefix)) return undefined
    try {
      return decodeURIComponent(pathname.slice(prefix.length))
    } catch {
      return new Error('invalid percent-encoding in the path')
    }
  }
  switch (pathname) {
    case '/v1/agent/self':
      return { kind: 'answer', answer: (snapshot) => agentSelf(snapshot, consul) }
    case '/v1/catalog/services':
      return { kind: 'answer', answer: (snapshot, query) => catalogServices(snapshot, query, consul), blocking: () => ({}) }
    case '/v1/catalog/nodes':
      return { kind: 'answer', answer: (snapshot, query) => catalogNodes(snapshot, query, consul), blocking: () => ({}) }
    case '/v1/catalog/datacenters':
      return { kind: 'answer', answer: (snapshot) => catalogDatacenters(snapshot, consul) }
    case '/v1/status/leader':
      return { kind: 'answer', answer: (snapshot) => statusLeader(snapshot), open: true }
    case '/v1/status/peers':
      return { kind: 'answer', answer: (snapshot) => statusPeers(snapshot), open: true }
    case HTTP_SD_PATH:
      return {
        kind: 'answer',
        answer: (snapshot, query) => prometheusHttpSd(snapshot, query, consul),
        // One service: only its changes wake the wait (the answer's index is that service's).
        blocking: (query) => (query.services.length === 1 ? { service: query.services[0] } : {}),
      }
    default:
      break
  }
  for (const [prefix, what, answer, perService] of [
    ['/v1/catalog/service/', 'service name', catalogService, true],
    ['/v1/health/service/', 'service name', healthService, true],
    ['/v1/catalog/node/', 'node name', catalogNode, false],
  ] as const) {
    const name = named(prefix)
    if (name === undefined) continue
    if (name instanceof Error) return { kind: 'error', status: 400, message: name.message }
    if (name === '' || name.includes('/')) return { kind: 'error', status: 400, message: `Missing ${what}` }
    return {
      kind: 'answer',
      answer: (snapshot, query) => answer(snapshot, name, query, consul),
      blocking: () => (perService ? { service: name } : {}),
    }
  }
  return {
    kind: 'error',
    status: 404,
    message: `${pathname} is not served by this read-only Consul API (discovery-agent). It serves /v1/catalog/services, /v1/catalog/service/<name>, /v1/health/service/<name>, /v1/catalog/nodes, /v1/catalog/node/<node>, /v1/catalog/datacenters, /v1/agent/self, /v1/status/leader, /v1/status/peers and ${HTTP_SD_PATH}`,
  }
}

/** Consul's wording: an unknown token is "ACL not found"; none at all is a denial for the anonymous token. */
function checkToken(request: IncomingMessage, params: URLSearchParams, token: string): string | undefined {
  const header = request.headers['x-consul-token']
  const authorization = request.headers.authorization
  const bearer = typeof authorization === 'string' && /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '').trim() : undefined
  const given = (typeof header === 'string' ? header : undefined) ?? bearer ?? params.get('token') ?? undefined
  if (given === undefined || given === '') return 'Permission denied: anonymous token lacks permission; this agent requires a token'
  return sameSecret(given, token) ? undefined : 'ACL not found'
}

/** Constant-time comparison of equal-length digests, so the token's length and contents do not leak through timing. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

function sendText(response: ServerResponse, request: IncomingMessage, status: number, message: string): void {
  const text = `${message}\n`
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) })
  response.end(request.method === 'HEAD' ? undefined : text)
}

/** The part of a request its answer depends on: the path and the query, less what only steers the wait or the format. */
function answerKey(url: URL): string {
  const params = [...url.searchParams].filter(([name]) => name !== 'index' && name !== 'wait' && name !== 'token' && name !== 'pretty')
  params.sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1))
  return `${url.pathname}?${new URLSearchParams(params).toString()}`
}
