import { printable } from '../text.js'
import type { HealthStatus, InstanceRecord } from '../model.js'

/**
 * Everything the agent reports. Presenters (TUI, plain lines, NDJSON, metrics) consume
 * these through the store; none of them talks to Docker or etcd.
 */
export type AgentEvent =
  | { type: 'agent.started'; node: string; lease: string; docker: string; etcd: string[] }
  | { type: 'agent.stopping'; reason: string }
  | { type: 'agent.stopped' }
  /**
   * `latencyMs`: from the first Docker event of this change reaching the agent to etcd acknowledging
   * the write (it includes waiting for dockerd: an inspection waits while a container is still
   * starting). Absent for writes of a resync or a health change.
   */
  | { type: 'instance.registered'; instance: InstanceRecord; latencyMs?: number }
  | { type: 'instance.updated'; instance: InstanceRecord }
  | { type: 'instance.removed'; service: string; id: string; reason: string; latencyMs?: number }
  | { type: 'health.changed'; service: string; id: string; from: HealthStatus; to: HealthStatus; output: string }
  | { type: 'container.problem'; container: string; label: string; value: string; reason: string }
  | { type: 'docker.connected'; host: string; reconnect: boolean }
  | { type: 'docker.disconnected'; host: string; error: string; retryInMs: number }
  | { type: 'docker.event'; action: string; container: string }
  | { type: 'etcd.connected'; endpoints: string[] }
  | { type: 'etcd.disconnected'; endpoints: string[]; error: string; retryInMs?: number }
  | { type: 'lease.lost'; reason: string }
  | { type: 'lease.renewed'; lease: string }
  | { type: 'resync'; containers: number; instances: number; written: number; removed: number; durationMs: number }
  | { type: 'leader.changed'; leader: string | null; term: string | null; self: boolean }
  /** Whether this agent may act as leader now (false at the first failed lease renewal). */
  | { type: 'leader.acting'; acting: boolean; term: string | null }
  /** A leader-only write, fenced by the term; `ok` false when the fence refused it. */
  | { type: 'leader.write'; key: string; term: string; op: 'put' | 'delete'; ok: boolean; reason: string }
  | { type: 'election.trouble'; message: string; retryInMs: number }
  | { type: 'check.result'; service: string; id: string; status: HealthStatus; latencyMs: number; slipMs: number }
  | { type: 'signal.ignored'; signal: string }
  | { type: 'error'; message: string }

export type AgentEventType = AgentEvent['type']

/** A short human line for an event (plain output, TUI log); text from outside is made printable. */
export function describeAgentEvent(event: AgentEvent): string {
  return printable(eventLine(event))
}

function eventLine(event: AgentEvent): string {
  switch (event.type) {
    case 'agent.started':
      return `agent started as node ${event.node} (lease ${event.lease}, docker ${event.docker}, etcd ${event.etcd.join(',')})`
    case 'agent.stopping':
      return `stopping (${event.reason}): revoking the lease`
    case 'agent.stopped':
      return 'stopped; this node’s instances are gone'
    case 'instance.registered':
      return `registered ${event.instance.service} ${event.instance.id} at ${hostPort(event.instance)} (${event.instance.health.status})`
    case 'instance.updated':
      return `updated ${event.instance.service} ${event.instance.id} at ${hostPort(event.instance)} (${event.instance.health.status})`
    case 'instance.removed':
      return `removed ${event.service} ${event.id} (${event.reason})`
    case 'health.changed':
      return `health ${event.service} ${event.id}: ${event.from} → ${event.to} (${event.output})`
    case 'container.problem':
      return `container ${event.container}: ${event.label}=${event.value}: ${event.reason}`
    case 'docker.connected':
      return event.reconnect ? `docker reconnected at ${event.host}; resyncing` : `docker connected at ${event.host}`
    case 'docker.disconnected':
      return `docker unreachable at ${event.host} (${event.error}); retrying in ${formatSeconds(event.retryInMs)}`
    case 'docker.event':
      return `docker ${event.action} ${event.container}`
    case 'etcd.connected':
      return `etcd connected (${event.endpoints.join(',')})`
    case 'etcd.disconnected':
      return `etcd unreachable (${event.error})${event.retryInMs !== undefined ? `; retrying in ${formatSeconds(event.retryInMs)}` : '; retrying'}`
    case 'lease.lost':
      return `lease lost (${event.reason}); granting a new one and registering everything again`
    case 'lease.renewed':
      return `new lease ${event.lease}; every record put again`
    case 'resync':
      return `resync: ${event.containers} containers, ${event.instances} instances, ${event.written} written, ${event.removed} removed in ${event.durationMs} ms`
    case 'leader.changed':
      return event.leader ? `leader is ${event.leader}${event.self ? ' (this agent)' : ''}, term ${event.term}` : 'no leader'
    case 'leader.acting':
      return event.acting ? `this agent now acts as leader (term ${event.term})` : 'this agent stopped acting as leader'
    case 'leader.write':
      return `leader ${event.op} ${event.key} (term ${event.term}): ${event.ok ? 'ok' : 'refused by the fence'} — ${event.reason}`
    case 'election.trouble':
      return `election: ${event.message}${event.retryInMs > 0 ? `; retrying in ${formatSeconds(event.retryInMs)}` : ''}`
    case 'check.result':
      return `check ${event.service} ${event.id}: ${event.status} in ${event.latencyMs} ms`
    case 'signal.ignored':
      return `${event.signal} ignored: the agent keeps running (stop it with SIGTERM, SIGINT or q)`
    case 'error':
      return `error: ${event.message}`
  }
}

function hostPort(record: Pick<InstanceRecord, 'address' | 'port'>): string {
  return record.address.includes(':') ? `[${record.address}]:${record.port}` : `${record.address}:${record.port}`
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`
}
