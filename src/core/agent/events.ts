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
  /** With --swarm: whether this agent leads Swarm registration now (the Swarm election, among agents on managers). */
  | { type: 'swarm.acting'; acting: boolean; term: string | null }
  | { type: 'check.result'; service: string; id: string; status: HealthStatus; latencyMs: number; slipMs: number }
  /** A configuration change was applied (no new lease; only what changed is rewritten). `trigger`: SIGHUP, etcd, reload --cluster, start. */
  | { type: 'config.applied'; changed: string[]; trigger: string }
  /** A configuration change was refused as a whole; the one in force keeps running. */
  | { type: 'config.rejected'; error: string; trigger: string }
  /**
   * What the registry view holds: `whole` every node's records, or (an agent that serves nothing
   * and shows no live view) only this node's Docker records, widened while it leads.
   * `durationMs`: how long widening took (the relist), 0 otherwise.
   */
  | { type: 'view.scope'; whole: boolean; instances: number; durationMs: number }
  | { type: 'error'; message: string }

export type AgentEventType = AgentEvent['type']
