import { createServer, type Server } from 'node:http'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry as PromRegistry } from 'prom-client'
import type { AgentEvent } from '../core/agent/events.js'
import { HEALTH_STATUSES } from '../core/model.js'
import type { AgentStore } from '../core/store.js'

export interface MetricsServer {
  url: string
  close(): Promise<void>
}

/**
 * Prometheus `/metrics` (a private prom-client registry, fed by the store, plus prom-client's
 * standard process and Node.js runtime metrics: CPU, memory, event-loop delay, GC pauses) and
 * `/healthz` (200 while Docker and etcd are connected, 503 with the reason otherwise).
 * No instance ids as labels: cardinality stays bounded by services × health states.
 */
export async function startMetricsServer(store: AgentStore, options: { host: string; port: number; version: string }): Promise<MetricsServer> {
  const registry = new PromRegistry()
  // The names every Node.js dashboard knows (process_resident_memory_bytes, nodejs_eventloop_lag_*,
  // nodejs_gc_duration_seconds{kind}): what a stalled agent or a slow registration is read against.
  collectDefaultMetrics({ register: registry })
  // Gauges named like counters, which promtool rejects; nodejs_active_{handles,requests,resources}
  // (by type) hold the same numbers.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
  const instances = new Gauge({
    name: 'discovery_instances',
    help: 'Instances this agent registered, by service and health',
    labelNames: ['service', 'health'] as const,
    registers: [registry],
    collect() {
      const state = store.getSnapshot()
      this.reset()
      for (const record of state.instances) {
        if (record.node === state.node) this.inc({ service: record.service, health: record.health.status })
      }
    },
  })
  const registration = new Histogram({
    name: 'discovery_registration_latency_seconds',
    help: 'From the Docker event to the instance written in etcd',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const checkDuration = new Histogram({
    name: 'discovery_check_duration_seconds',
    help: 'Duration of health checks run by this agent',
    labelNames: ['status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  })
  const isLeader = new Gauge({ name: 'discovery_is_leader', help: '1 while this agent acts as leader', registers: [registry] })
  const dockerEvents = new Counter({ name: 'discovery_docker_events_total', help: 'Docker events received, by action', labelNames: ['action'] as const, registers: [registry] })
  const etcdErrors = new Counter({ name: 'discovery_etcd_errors_total', help: 'etcd failures seen by the agent (disconnects, lost leases, failed writes)', registers: [registry] })
  const reconnects = new Counter({ name: 'discovery_reconnects_total', help: 'Reconnections, by target', labelNames: ['target'] as const, registers: [registry] })
  const buildInfo = new Gauge({ name: 'discovery_build_info', help: 'Version of the running agent', labelNames: ['version'] as const, registers: [registry] })
  buildInfo.set({ version: options.version }, 1)
  isLeader.set(0)
  // Known label values start at 0, so a dashboard or alert sees the series before the first event
  // (rate() over a series that appears only with its first increment misses that increment).
  for (const target of ['docker', 'etcd']) reconnects.inc({ target }, 0)
  for (const status of HEALTH_STATUSES) checkDuration.zero({ status })
  void instances

  let etcdWasDown = false
  const onEvent = (event: AgentEvent): void => {
    switch (event.type) {
      case 'instance.registered':
        if (event.latencyMs !== undefined) registration.observe(event.latencyMs / 1000)
        break
      case 'check.result':
        checkDuration.observe({ status: event.status }, event.latencyMs / 1000)
        break
      case 'leader.acting':
        isLeader.set(event.acting ? 1 : 0)
        break
      case 'docker.event':
        dockerEvents.inc({ action: event.action.split(':')[0].trim() || 'unknown' })
        break
      case 'docker.connected':
        if (event.reconnect) reconnects.inc({ target: 'docker' })
        break
      case 'etcd.disconnected':
      case 'lease.lost':
        etcdErrors.inc()
        etcdWasDown = true
        break
      case 'etcd.connected':
        if (etcdWasDown) reconnects.inc({ target: 'etcd' })
        etcdWasDown = false
        break
      default:
        break
    }
  }
  store.on('event', onEvent)

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (path === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          response.writeHead(200, { 'content-type': registry.contentType })
          response.end(text)
        })
        .catch((error) => {
          response.writeHead(500, { 'content-type': 'text/plain' })
          response.end(`metrics failed: ${(error as Error).message}\n`)
        })
      return
    }
    if (path === '/healthz') {
      const state = store.getSnapshot()
      const problems = [
        state.docker.connected ? undefined : `docker: ${state.docker.detail ?? 'disconnected'}`,
        state.etcd.connected ? undefined : `etcd: ${state.etcd.detail ?? 'disconnected'}`,
      ].filter(Boolean)
      response.writeHead(problems.length === 0 ? 200 : 503, { 'content-type': 'text/plain' })
      response.end(problems.length === 0 ? 'ok\n' : `${problems.join('\n')}\n`)
      return
    }
    response.writeHead(404, { 'content-type': 'text/plain' })
    response.end('not found: try /metrics or /healthz\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        store.off('event', onEvent)
        server.close(() => resolve())
        server.closeAllConnections?.()
      }),
  }
}
