import type { AgentEvent } from '../core/agent/events.js'
import type { InstanceRecord } from '../core/model.js'
import { printable } from '../core/text.js'

/**
 * The words for the agent's events: the core emits typed events, and this is where they
 * become English, for the TUI log, the plain line printer and `serve`'s progress lines.
 */
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
    case 'swarm.acting':
      return event.acting ? `this agent now registers Swarm services (Swarm term ${event.term})` : 'this agent stopped registering Swarm services'
    case 'election.trouble':
      return `election: ${event.message}${event.retryInMs > 0 ? `; retrying in ${formatSeconds(event.retryInMs)}` : ''}`
    case 'check.result':
      return `check ${event.service} ${event.id}: ${event.status} in ${event.latencyMs} ms`
    case 'config.applied':
      return event.changed.length > 0 ? `configuration (${event.trigger}) applied: ${event.changed.join(', ')} changed` : `configuration (${event.trigger}) read: nothing changed`
    case 'config.rejected':
      return `configuration (${event.trigger}) rejected, the one in force keeps running: ${event.error}`
    case 'view.scope':
      return event.whole
        ? `view: the whole registry, ${event.instances} instances (widened in ${event.durationMs} ms)`
        : `view: this node's records only, ${event.instances} instances (it serves nothing and shows no live view; widened while it leads)`
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
