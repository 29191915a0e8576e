import type { MaintenanceMarks } from '../maintenance.js'
import type { InstanceRecord, NodeRecord } from '../model.js'

/**
 * What every reader of the registry sees: one immutable snapshot of the process's one
 * registry view (see registry-view.ts). Readers (the agent's reconciler, the store, the
 * leader duties, DNS, HTTP) take plain data from here and never talk to etcd themselves.
 */
export interface ViewInstance {
  /** The etcd key the record lives at. */
  key: string
  record: InstanceRecord
  /** etcd mod revision of the record (string: etcd revisions are 64-bit). */
  modRevision: string
  /** etcd create revision of the key (Consul's CreateIndex). */
  createRevision: string
  /** The lease the key is bound to ('0' for none). */
  lease: string
}

export interface ViewNode {
  key: string
  record: NodeRecord
  modRevision: string
  createRevision: string
  lease: string
}

export interface ViewLeader {
  node: string
  term: string
  since: string
}

export interface ViewSnapshot {
  /** The etcd revision this snapshot reflects (everything up to it is applied). */
  revision: string
  /** Every valid instance, sorted by service, then node, then id. */
  instances: readonly ViewInstance[]
  /** Instances per service name, each list sorted by node then id. */
  services: ReadonlyMap<string, readonly ViewInstance[]>
  /**
   * Per service: the last etcd revision that changed it (a put or a delete of one of its
   * instances). Consul's X-Consul-Index for that service; a service whose last instance went
   * keeps its entry here (with the revision of that delete) while `services` drops it.
   */
  serviceIndex: ReadonlyMap<string, string>
  /** Live agents (node records), sorted by node name. */
  nodes: readonly ViewNode[]
  /** The leader as `<prefix>/leader/info` says, when its key is there. */
  leader?: ViewLeader
  /** Maintenance marks (`<prefix>/maintenance/…`); records in maintenance already say so in their health. */
  maintenance: MaintenanceMarks
  /** False while the view's watch is broken (it serves its last contents meanwhile). */
  connected: boolean
}

/** The read side of the one registry view, as the servers and presenters use it. */
export interface ViewSource {
  /** The current snapshot; the same object until something changes. */
  snapshot(): ViewSnapshot
  /**
   * Resolves once the view reflects a change past `afterRevision` — for `service` only
   * (its serviceIndex moved past it) or for anything when `service` is undefined — or when
   * `timeoutMs` passes or `signal` aborts, whichever comes first. Never rejects.
   */
  waitForChange(options: { service?: string; afterRevision: string; timeoutMs: number; signal?: AbortSignal }): Promise<void>
}
