import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AgentEvent } from '../core/agent/events.js'
import type { Config, ListenAddress } from '../core/config.js'
import { UnavailableError, UsageError } from '../core/errors.js'
import type { RegistryView } from '../core/view/registry-view.js'
import { openView } from './open-view.js'

export interface Servers {
  dns?: { host: string; port: number }
  http?: { url: string }
  close(): Promise<void>
}

/**
 * Starts the read side over the process's one view: DNS (UDP + TCP) and the Consul-shaped
 * HTTP API, each only when its address is configured. The servers answer from the view's
 * memory; neither reads etcd per request. Bind failures are usage errors naming the address.
 */
export async function startServers(view: RegistryView, config: Config, version: string): Promise<Servers> {
  const { serve } = config
  const closers: (() => Promise<void>)[] = []
  const result: Servers = { close: async () => void (await Promise.all(closers.map((close) => close()))) }
  try {
    if (serve.dns) {
      const { startDnsServer } = await import('../core/dns/server.js')
      const dns = await startDnsServer(view, {
        host: serve.dns.host,
        port: serve.dns.port,
        domain: serve.dnsDomain,
        ttlSeconds: serve.dnsTtlSeconds,
        onlyPassing: serve.dnsOnlyPassing,
        datacenter: serve.datacenter,
        recursors: serve.dnsRecursors,
      }).catch((error: NodeJS.ErrnoException) => {
        throw bindError('--dns-addr', serve.dns!, error)
      })
      closers.push(() => dns.close())
      result.dns = { host: serve.dns.host, port: dns.udpPort }
    }
    if (serve.http) {
      const { startHttpApi } = await import('../core/http/server.js')
      const http = await startHttpApi(view, {
        host: serve.http.host,
        port: serve.http.port,
        datacenter: serve.datacenter,
        node: config.node,
        version,
        ...(serve.httpToken ? { token: serve.httpToken } : {}),
        extraRoutes: { '/healthz': (_request: IncomingMessage, response: ServerResponse) => healthz(view, response) },
      }).catch((error: NodeJS.ErrnoException) => {
        throw bindError('--http-addr', serve.http!, error)
      })
      closers.push(() => http.close())
      result.http = { url: http.url }
    }
  } catch (error) {
    await result.close()
    throw error
  }
  return result
}

/** 200 while the view follows etcd, 503 while it serves its last contents. */
function healthz(view: RegistryView, response: ServerResponse): void {
  const ok = view.connected
  response.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' })
  response.end(ok ? 'ok: following the registry\n' : 'unavailable: etcd unreachable; serving the last known registry\n')
}

/** A port someone else holds is a dependency refusing us (exit 3); an address we may not or cannot bind is bad input (exit 2). */
function bindError(flag: string, address: ListenAddress, error: NodeJS.ErrnoException): UsageError | UnavailableError {
  const where = address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
  const hint = error.code === 'EACCES' ? 'ports below 1024 need root (or CAP_NET_BIND_SERVICE); choose a higher port' : error.code === 'EADDRNOTAVAIL' ? 'bind an address this host has' : 'choose a free port'
  const message = `${flag} ${where}: cannot listen (${error.code ?? error.message})`
  return error.code === 'EADDRINUSE' ? new UnavailableError(message, { hint }) : new UsageError(message, { hint })
}

export interface ServeOptions {
  config: Config
  version: string
  signal: AbortSignal
  emit: (event: AgentEvent) => void
  /** Told where the servers listen once they do. */
  onListening?: (servers: Servers) => void
}

/** `serve`: the read side alone — the view plus DNS and HTTP, no Docker, no campaign — until `signal` aborts. */
export async function runServe(options: ServeOptions): Promise<void> {
  const { config } = options
  if (!config.serve.dns && !config.serve.http) {
    throw new UsageError('serve needs something to serve: neither --dns-addr nor --http-addr is set', { hint: 'pass --dns-addr 127.0.0.1:8600 and/or --http-addr 127.0.0.1:8500' })
  }
  const opened = await openView(config, options.emit, options.signal)
  if (!opened) return
  const { registry, view } = opened
  try {
    options.emit({ type: 'etcd.connected', endpoints: config.etcd.endpoints })
    view.on('disconnected', () => options.emit({ type: 'etcd.disconnected', endpoints: config.etcd.endpoints, error: 'watch broken; serving the last known registry' }))
    view.on('resynced', () => options.emit({ type: 'etcd.connected', endpoints: config.etcd.endpoints }))
    const servers = await startServers(view, config, options.version)
    options.onListening?.(servers)
    await new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }))
    await servers.close()
  } finally {
    await view.close()
    registry.close()
  }
}
