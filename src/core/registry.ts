import type { Etcd3 } from 'etcd3'
import type { EtcdConnection } from './config.js'
import { createEtcdClient, etcdUnavailable, type EtcdClientOptions } from './etcd.js'
import { instanceKey, nodeKey, nodesPrefix, parseInstanceKey, servicePrefix, servicesPrefix } from './keys.js'
import {
  parseInstanceRecord,
  parseNodeRecord,
  type InstanceRecord,
  type NodeRecord,
  type ParseResult,
} from './model.js'
import { PrefixMirror, type MirrorEntry } from './prefix-mirror.js'

export interface RecordProblem {
  key: string
  reason: string
}

export interface Listing<T> {
  entries: MirrorEntry<T>[]
  problems: RecordProblem[]
  revision: string
}

/**
 * The registry adapter: schema-1 records under `<prefix>/` in etcd. Every key is built by
 * keys.ts from validated names; every value read is validated, and a corrupt or foreign one
 * is reported as a problem and skipped.
 */
export class Registry {
  constructor(
    readonly client: Etcd3,
    readonly prefix: string,
    readonly connection: Pick<EtcdConnection, 'endpoints'>,
  ) {}

  static open(connection: EtcdConnection, prefix: string, options?: EtcdClientOptions): Registry {
    return new Registry(createEtcdClient(connection, options), prefix, connection)
  }

  close(): void {
    this.client.close()
  }

  async listInstances(service?: string): Promise<Listing<InstanceRecord>> {
    const prefix = service ? servicePrefix(this.prefix, service) : servicesPrefix(this.prefix)
    return this.listPrefix(prefix, (raw, key) => this.parseInstance(raw, key), 'listing instances')
  }

  async listNodes(): Promise<Listing<NodeRecord>> {
    return this.listPrefix(nodesPrefix(this.prefix), (raw) => parseNodeRecord(raw), 'listing nodes')
  }

  async getInstance(service: string, id: string): Promise<MirrorEntry<InstanceRecord> | undefined> {
    const key = instanceKey(this.prefix, service, id)
    const response = await this.call('reading an instance', () => this.client.get(key).exec())
    const kv = response.kvs[0]
    if (!kv) return undefined
    const parsed = this.parseInstance(kv.value.toString(), key)
    if (!parsed.ok) return undefined
    return { key, value: parsed.value, modRevision: kv.mod_revision, lease: kv.lease }
  }

  async getNode(node: string): Promise<MirrorEntry<NodeRecord> | undefined> {
    const key = nodeKey(this.prefix, node)
    const response = await this.call('reading a node', () => this.client.get(key).exec())
    const kv = response.kvs[0]
    if (!kv) return undefined
    const parsed = parseNodeRecord(kv.value.toString())
    if (!parsed.ok) return undefined
    return { key, value: parsed.value, modRevision: kv.mod_revision, lease: kv.lease }
  }

  /** Puts an instance record, bound to `leaseId` when given (else persistent). */
  async putInstance(record: InstanceRecord, leaseId?: string): Promise<void> {
    const key = instanceKey(this.prefix, record.service, record.id)
    const value = JSON.stringify(record)
    await this.call('writing an instance', () => {
      const put = this.client.put(key).value(value)
      return (leaseId ? put.lease(leaseId) : put).exec()
    })
  }

  /** Deletes one instance; true when it existed. */
  async deleteInstance(service: string, id: string): Promise<boolean> {
    const key = instanceKey(this.prefix, service, id)
    const response = await this.call('deleting an instance', () => this.client.delete().key(key).exec())
    return Number(response.deleted) > 0
  }

  /** Follows every instance (or one service's) with list-then-watch. */
  watchInstances(service?: string): PrefixMirror<InstanceRecord> {
    const prefix = service ? servicePrefix(this.prefix, service) : servicesPrefix(this.prefix)
    return new PrefixMirror(this.client, prefix, (raw, key) => this.parseInstance(raw, key))
  }

  watchNodes(): PrefixMirror<NodeRecord> {
    return new PrefixMirror(this.client, nodesPrefix(this.prefix), (raw) => parseNodeRecord(raw))
  }

  /** Wraps an etcd call so a failure becomes one UnavailableError line naming the endpoints. */
  async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw etcdUnavailable(error, this.connection, doing)
    }
  }

  /** A record must also live at the key its own service and id name. */
  private parseInstance(raw: string, key: string): ParseResult<InstanceRecord> {
    const parsed = parseInstanceRecord(raw)
    if (!parsed.ok) return parsed
    const where = parseInstanceKey(this.prefix, key)
    if (!where || where.service !== parsed.value.service || where.id !== parsed.value.id) {
      return { ok: false, reason: `record names ${parsed.value.service}/${parsed.value.id} but lives at another key` }
    }
    return parsed
  }

  private async listPrefix<T>(
    prefix: string,
    parse: (raw: string, key: string) => ParseResult<T>,
    doing: string,
  ): Promise<Listing<T>> {
    const response = await this.call(doing, () => this.client.getAll().prefix(prefix).exec())
    const entries: MirrorEntry<T>[] = []
    const problems: RecordProblem[] = []
    for (const kv of response.kvs) {
      const key = kv.key.toString()
      const parsed = parse(kv.value.toString(), key)
      if (parsed.ok) entries.push({ key, value: parsed.value, modRevision: kv.mod_revision, lease: kv.lease })
      else problems.push({ key, reason: parsed.reason })
    }
    return { entries, problems, revision: response.header.revision }
  }
}
