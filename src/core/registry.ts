import type { Etcd3, IKeyValue } from 'etcd3'
import type { EtcdConnection } from './config.js'
import { UsageError } from './errors.js'
import { createEtcdClient, explainEtcdFailure, rangePrefix, type EtcdClientOptions } from './etcd.js'
import { fastInstanceAt, fastNodeRecord } from './instance-fast-path.js'
import { EtcdLeaseInvalidError, GRPCDeadlineExceededError } from 'etcd3'
import { configReloadKey, configStatusKey, instanceKey, maintenanceKey, maintenancePrefix, nodeKey, nodesPrefix, parseMaintenanceKey, recordBelongsAt, servicePrefix, servicesPrefix, type MaintenanceTarget } from './keys.js'
import { parseMaintenanceRecord } from './maintenance.js'
import type { InstanceRecord, MaintenanceRecord, NodeRecord, ParseResult } from './model.js'
import { PrefixMirror, type MirrorEntry } from './prefix-mirror.js'
import { assertPrefix } from './validate.js'

export interface RecordProblem {
  key: string
  reason: string
}

export interface Listing<T> {
  entries: MirrorEntry<T>[]
  problems: RecordProblem[]
  revision: string
}

/** The zod-backed parsers of schema.ts. */
type Schemas = Pick<typeof import('./schema.js'), 'parseInstanceRecord' | 'parseNodeRecord'>

/**
 * The registry adapter: schema-1 records under `<prefix>/` in etcd. Every key is built by
 * keys.ts from validated names; every value read is validated, and a corrupt or foreign one
 * is reported as a problem and skipped.
 *
 * Instance and node records of the usual shape are validated by instance-fast-path.ts; the zod schemas
 * (and zod itself, ~50–100 ms of a CLI's start) load only when a record needs them, so
 * `list` over 10,000 well-formed records never pays for them.
 */
export class Registry {
  readonly prefix: string
  private readonly instancesBase: string
  private schemas?: Schemas

  constructor(
    readonly client: Etcd3,
    prefix: string,
    /** The endpoints (named in errors) and, when given, the TLS files used to explain a TLS failure. */
    readonly connection: Pick<EtcdConnection, 'endpoints'> & Partial<EtcdConnection>,
  ) {
    // Library users may pass any string: the same rule as --prefix keeps every key inside it.
    this.prefix = assertPrefix(prefix)
    this.instancesBase = servicesPrefix(this.prefix)
  }

  static open(connection: EtcdConnection, prefix: string, options?: EtcdClientOptions): Registry {
    return new Registry(createEtcdClient(connection, options), prefix, connection)
  }

  close(): void {
    this.client.close()
  }

  async listInstances(service?: string): Promise<Listing<InstanceRecord>> {
    const prefix = service ? servicePrefix(this.prefix, service) : this.instancesBase
    return this.listPrefix(
      prefix,
      'listing instances',
      (raw, key) => this.fastInstance(raw, key),
      (raw, key, schemas) => this.parseInstance(raw, key, schemas),
    )
  }

  async listNodes(): Promise<Listing<NodeRecord>> {
    return this.listPrefix(nodesPrefix(this.prefix), 'listing nodes', fastNodeRecord, (raw, _key, schemas) => schemas.parseNodeRecord(raw))
  }

  async getInstance(service: string, id: string): Promise<MirrorEntry<InstanceRecord> | undefined> {
    const key = instanceKey(this.prefix, service, id)
    const response = await this.call('reading an instance', () => this.client.get(key).exec())
    const kv = response.kvs[0]
    if (!kv) return undefined
    const raw = kv.value.toString()
    const value = this.fastInstance(raw, key) ?? okValue(this.parseInstance(raw, key, await this.loadSchemas()))
    return value ? { key, value, modRevision: kv.mod_revision, createRevision: kv.create_revision, lease: kv.lease } : undefined
  }

  async getNode(node: string): Promise<MirrorEntry<NodeRecord> | undefined> {
    const key = nodeKey(this.prefix, node)
    const response = await this.call('reading a node', () => this.client.get(key).exec())
    const kv = response.kvs[0]
    if (!kv) return undefined
    const raw = kv.value.toString()
    const value = fastNodeRecord(raw) ?? okValue((await this.loadSchemas()).parseNodeRecord(raw))
    return value ? { key, value, modRevision: kv.mod_revision, createRevision: kv.create_revision, lease: kv.lease } : undefined
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

  /** `<prefix>/leader/info` as the leader last wrote it (raw JSON), or null. */
  async getLeaderInfo(): Promise<string | null> {
    return this.call('reading the leader', () => this.client.get(`${this.prefix}/leader/info`).string())
  }

  /** An agent's report of its last configuration change, on its lease (gone with the agent). */
  async putConfigStatus(node: string, status: ConfigStatus, lease?: string): Promise<void> {
    const key = configStatusKey(this.prefix, node)
    await this.call('reporting the configuration', () => {
      const put = this.client.put(key).value(JSON.stringify(status))
      return (lease ? put.lease(lease) : put).exec()
    })
  }

  async getConfigStatus(node: string): Promise<ConfigStatus | undefined> {
    const raw = await this.call('reading a configuration report', () => this.client.get(configStatusKey(this.prefix, node)).string())
    return raw === null ? undefined : parseConfigStatus(raw)
  }

  /** The etcd configuration layer at `key` (a JSON object of settings), with its mod revision. */
  async getConfigLayer(key: string): Promise<{ values: Record<string, unknown>; modRevision?: string }> {
    const response = await this.call('reading the configuration', () => this.client.get(key).exec())
    const kv = response.kvs[0]
    if (!kv) return { values: {} }
    return { values: configObject(key, kv.value.toString()), modRevision: kv.mod_revision }
  }

  /** Writes a layer only if nobody changed it since it was read (or it is still absent). */
  async putConfigLayer(key: string, values: Record<string, unknown>, expectMod?: string): Promise<boolean> {
    if (Object.keys(values).length === 0 && !expectMod) return true
    const [result] = await this.call('writing the configuration', () =>
      Object.keys(values).length === 0
        ? this.applyGuarded([{ kind: 'delete', key, expect: { modRevision: expectMod ?? '0' } }])
        : this.applyGuarded([{ kind: 'put', key, value: JSON.stringify(values), expect: expectMod ? { modRevision: expectMod } : { absent: true } }]),
    )
    return result.ok
  }

  async requestClusterReload(request: { at: string; by: string }): Promise<void> {
    await this.call('requesting a reload', () => this.client.put(configReloadKey(this.prefix)).value(JSON.stringify(request)).exec())
  }

  /** Marks a node, a service or an instance as in maintenance (persistent until disabled). */
  async putMaintenance(target: MaintenanceTarget, mark: MaintenanceRecord): Promise<void> {
    const key = maintenanceKey(this.prefix, target)
    await this.call('writing a maintenance mark', () => this.client.put(key).value(JSON.stringify(mark)).exec())
  }

  /** Lifts a mark; true when there was one. */
  async deleteMaintenance(target: MaintenanceTarget): Promise<boolean> {
    const key = maintenanceKey(this.prefix, target)
    const response = await this.call('deleting a maintenance mark', () => this.client.delete().key(key).exec())
    return Number(response.deleted) > 0
  }

  async listMaintenance(): Promise<{ target: MaintenanceTarget; mark: MaintenanceRecord }[]> {
    const response = await this.call('listing maintenance marks', () => rangePrefix(this.client, maintenancePrefix(this.prefix)))
    const marks: { target: MaintenanceTarget; mark: MaintenanceRecord }[] = []
    for (const kv of response.kvs) {
      const target = parseMaintenanceKey(this.prefix, kv.key.toString())
      const mark = parseMaintenanceRecord(kv.value.toString())
      if (target && mark) marks.push({ target, mark })
    }
    return marks
  }

  /** Follows every instance (or one service's) with list-then-watch. */
  watchInstances(service?: string): PrefixMirror<InstanceRecord> {
    const prefix = service ? servicePrefix(this.prefix, service) : this.instancesBase
    return new PrefixMirror(
      this.client,
      prefix,
      (raw, key) => {
        const value = this.fastInstance(raw, key)
        // The mirror's prepare step loaded the schemas before the first record arrived.
        return value ? { ok: true, value } : this.parseInstance(raw, key, this.schemas!)
      },
      () => this.loadSchemas().then(() => undefined),
    )
  }

  watchNodes(): PrefixMirror<NodeRecord> {
    return new PrefixMirror(
      this.client,
      nodesPrefix(this.prefix),
      (raw) => this.schemas!.parseNodeRecord(raw),
      () => this.loadSchemas().then(() => undefined),
    )
  }

  /** Parses one instance value read at `key` (fast path, then the schema), for the registry view. */
  async instanceParser(): Promise<(raw: string, key: string) => ParseResult<InstanceRecord>> {
    const schemas = await this.loadSchemas()
    return (raw, key) => {
      const value = this.fastInstance(raw, key)
      return value ? { ok: true, value } : this.parseInstance(raw, key, schemas)
    }
  }

  async nodeParser(): Promise<(raw: string) => ParseResult<NodeRecord>> {
    const schemas = await this.loadSchemas()
    return (raw) => {
      const value = fastNodeRecord(raw)
      return value ? { ok: true, value } : schemas.parseNodeRecord(raw)
    }
  }

  /**
   * Owner-guarded writes: each put or delete happens only if its key is still as the caller
   * last saw it (absent, or at a mod revision), so no writer overwrites a record it does not
   * own or one that moved on. Ops go in transactions of up to TXN_BATCH; when a guard fails,
   * the transaction's read-back says which, and the ops whose guards held are committed again
   * together, so one moved key does not fail its neighbours. With a `fence`, every transaction
   * also requires the leader's campaign key at its term. Network failures reject; a refused
   * guard is a result, with what the key holds now.
   */
  async applyGuarded(ops: readonly GuardedOp[], options: { fence?: Fence } = {}): Promise<GuardedResult[]> {
    const batches: GuardedOp[][] = []
    for (let i = 0; i < ops.length; i += TXN_BATCH) batches.push(ops.slice(i, i + TXN_BATCH))
    // Batches go a few at a time: one call stuck on a frozen member (waiting out its deadline)
    // must not hold up the others (after a lease loss, 1000 records are 10 transactions).
    const settled: GuardedResult[][] = new Array(batches.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const index = next++
        settled[index] = await this.commitBatch(batches[index], options.fence)
      }
    }
    await Promise.all(Array.from({ length: Math.min(TXN_PARALLEL, batches.length) }, worker))
    return settled.flat()
  }

  /**
   * One transaction for the batch; its else-branch reads every key, so when a guard fails the
   * caller learns at once what each key holds now (no waiting for a watch that may sit on a
   * frozen member). Ops whose guards held are committed again together; each round settles at
   * least one op.
   */
  private async commitBatch(batch: readonly GuardedOp[], fence?: Fence): Promise<GuardedResult[]> {
    const results: GuardedResult[] = new Array(batch.length)
    let todo = batch.map((_, i) => i)
    for (let round = 0; todo.length > 0; round++) {
      const outcome = await this.commitGuarded(todo.map((i) => batch[i]), fence)
      if (outcome.ok || outcome.reason === 'lease' || outcome.reason === 'fenced') {
        for (const i of todo) results[i] = outcome
        break
      }
      const held: number[] = []
      todo.forEach((i, j) => {
        const current = outcome.current[j]
        if (guardHolds(batch[i].expect, current) && round < GUARD_ROUNDS) held.push(i)
        // Exactly what this put writes (a resend after a lost reply: the first attempt landed).
        else if (current && landed(batch[i], current)) results[i] = { ok: true, revision: current.modRevision }
        else results[i] = { ok: false, reason: 'moved', current, revision: outcome.revision }
      })
      todo = held
    }
    return results
  }

  /** A put or delete that only the holder of `fence` (the election key at its create revision) may make. */
  async fenced(fence: Fence, op: GuardedOp | { kind: 'put'; key: string; value: string; lease?: string; expect?: undefined }): Promise<boolean> {
    let txn = this.client.if(fence.key, 'Create', '==', fence.createRevision)
    if (op.expect) txn = 'absent' in op.expect ? txn.and(op.key, 'Version', '==', 0) : txn.and(op.key, 'Mod', '==', op.expect.modRevision)
    const result = await txn.then(this.toOp(op)).commit()
    return result.succeeded
  }

  private async commitGuarded(
    batch: readonly GuardedOp[],
    fence?: Fence,
  ): Promise<{ ok: true; revision: string } | { ok: false; reason: 'lease'; error: unknown } | { ok: false; reason: 'fenced' } | { ok: false; reason: 'moved'; current: (KeyState | null)[]; revision: string }> {
    const first = batch[0]
    let txn = fence ? this.client.if(fence.key, 'Create', '==', fence.createRevision) : 'absent' in first.expect ? this.client.if(first.key, 'Version', '==', 0) : this.client.if(first.key, 'Mod', '==', first.expect.modRevision)
    for (const op of fence ? batch : batch.slice(1)) txn = 'absent' in op.expect ? txn.and(op.key, 'Version', '==', 0) : txn.and(op.key, 'Mod', '==', op.expect.modRevision)
    const reads = batch.map((op) => this.client.get(op.key))
    txn = txn.then(...batch.map((op) => this.toOp(op))).else(...(fence ? [...reads, this.client.get(fence.key)] : reads))
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await txn.commit()
        if (result.succeeded) return { ok: true, revision: result.header.revision }
        if (fence) {
          // The last read is the fence key: another term (or none) leads now.
          const holder = result.responses.at(-1)?.response_range?.kvs[0]
          if (!holder || holder.create_revision !== fence.createRevision) return { ok: false, reason: 'fenced' }
        }
        const current = result.responses.slice(0, batch.length).map((r) => {
          const kv = r.response_range?.kvs[0]
          return kv ? { value: kv.value.toString(), modRevision: kv.mod_revision, lease: kv.lease } : null
        })
        return { ok: false, reason: 'moved', current, revision: result.header.revision }
      } catch (error) {
        if (error instanceof EtcdLeaseInvalidError) return { ok: false, reason: 'lease', error }
        // A call that waited out its deadline (a frozen member) goes again: etcd3 picks the
        // member anew, and the guards make a repeat of a write that did land a no-op.
        if (error instanceof GRPCDeadlineExceededError && attempt < DEADLINE_ATTEMPTS) continue
        throw error
      }
    }
  }

  private toOp(op: GuardedOp | { kind: 'put'; key: string; value: string; lease?: string }) {
    if (op.kind === 'delete') return this.client.delete().key(op.key)
    const put = this.client.put(op.key).value(op.value)
    return op.lease && op.lease !== '0' ? put.lease(op.lease) : put
  }

  /** Wraps an etcd call so a failure becomes one UnavailableError line naming the endpoint and the cause. */
  async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw await explainEtcdFailure(error, this.connection, doing)
    }
  }

  private async loadSchemas(): Promise<Schemas> {
    this.schemas ??= await import('./schema.js')
    return this.schemas
  }

  /** A well-formed record at the key its own service and id name, or undefined (then the schema decides why not). */
  private fastInstance(raw: string, key: string): InstanceRecord | undefined {
    return fastInstanceAt(this.prefix, key, raw)
  }

  /** The schema's verdict; a record must also live at the key its own service and id name. */
  private parseInstance(raw: string, key: string, schemas: Schemas): ParseResult<InstanceRecord> {
    const parsed = schemas.parseInstanceRecord(raw)
    if (!parsed.ok) return parsed
    if (!recordBelongsAt(this.prefix, key, parsed.value)) {
      return { ok: false, reason: `record names ${parsed.value.service}/${parsed.value.id} (node ${parsed.value.node}, ${parsed.value.source}) but lives at another key` }
    }
    return parsed
  }

  /** Reads every key under `prefix` (paged, one revision); the fast check first, the schema only where it fails. */
  private async listPrefix<T>(
    prefix: string,
    doing: string,
    fast: (raw: string, key: string) => T | undefined,
    parse: (raw: string, key: string, schemas: Schemas) => ParseResult<T>,
  ): Promise<Listing<T>> {
    const response = await this.call(doing, () => rangePrefix(this.client, prefix))
    const keys: string[] = []
    const quick: (T | undefined)[] = []
    let slow = false
    for (const kv of response.kvs) {
      const key = kv.key.toString()
      const value = fast(kv.value.toString(), key)
      keys.push(key)
      quick.push(value)
      if (value === undefined) slow = true
    }
    const schemas = slow ? await this.loadSchemas() : undefined
    const entries: MirrorEntry<T>[] = []
    const problems: RecordProblem[] = []
    response.kvs.forEach((kv: IKeyValue, i) => {
      const key = keys[i]
      const parsed: ParseResult<T> = quick[i] !== undefined ? { ok: true, value: quick[i] as T } : parse(kv.value.toString(), key, schemas!)
      if (parsed.ok) entries.push({ key, value: parsed.value, modRevision: kv.mod_revision, createRevision: kv.create_revision, lease: kv.lease })
      else problems.push({ key, reason: parsed.reason })
    })
    return { entries, problems, revision: response.revision }
  }
}

/** Most ops in one transaction (etcd's --max-txn-ops defaults to 128 per branch). */
const TXN_BATCH = 100
/** Transactions in flight at once for one applyGuarded call. */
const TXN_PARALLEL = 4
/** Rounds of re-committing the ops whose guards held after a neighbour's failed. */
const GUARD_ROUNDS = 3
/** Tries of a transaction whose call waited out its deadline. */
const DEADLINE_ATTEMPTS = 3

export type GuardedOp =
  | { kind: 'put'; key: string; value: string; lease?: string; expect: { absent: true } | { modRevision: string } }
  | { kind: 'delete'; key: string; expect: { modRevision: string } }

/** What a key holds, as read inside a guarded transaction. */
export interface KeyState {
  value: string
  modRevision: string
  lease: string
}

export type GuardedResult =
  | { ok: true; revision: string }
  /** The key was not as expected (someone else's, or changed since read): `current` is what it holds (null: absent) at `revision`. */
  | { ok: false; reason: 'moved'; current: KeyState | null; revision: string }
  /** etcd no longer knows the lease the put named. */
  | { ok: false; reason: 'lease'; error: unknown }
  /** The fence did not hold: the writer no longer leads. */
  | { ok: false; reason: 'fenced' }

/** A leader's fence: its campaign key at the create revision that is its term. */
export interface Fence {
  key: string
  createRevision: string
}

function landed(op: GuardedOp, current: KeyState): boolean {
  return op.kind === 'put' && current.value === op.value && current.lease === (op.lease && op.lease !== '0' ? op.lease : '0')
}

function guardHolds(expect: GuardedOp['expect'], current: KeyState | null): boolean {
  return 'absent' in expect ? current === null : current !== null && current.modRevision === expect.modRevision
}

/** What an agent reports after each configuration change (`<prefix>/config/status/<node>`). */
export interface ConfigStatus {
  result: 'applied' | 'rejected'
  trigger: string
  at: string
  changed?: string[]
  error?: string
  /** Where each setting in force came from. */
  sources?: Record<string, string>
}

export function parseConfigStatus(raw: string): ConfigStatus | undefined {
  try {
    const value = JSON.parse(raw) as Partial<ConfigStatus>
    if ((value.result !== 'applied' && value.result !== 'rejected') || typeof value.at !== 'string') return undefined
    return {
      result: value.result,
      trigger: String(value.trigger ?? '').slice(0, 100),
      at: value.at.slice(0, 64),
      ...(Array.isArray(value.changed) ? { changed: value.changed.map(String).slice(0, 100) } : {}),
      ...(typeof value.error === 'string' ? { error: value.error.slice(0, 1000) } : {}),
      ...(value.sources && typeof value.sources === 'object' ? { sources: Object.fromEntries(Object.entries(value.sources).slice(0, 100).map(([k, v]) => [k.slice(0, 64), String(v).slice(0, 300)])) } : {}),
    }
  } catch {
    return undefined
  }
}

/** A configuration layer's value: a JSON object of settings, or a usage error naming the key. */
export function configObject(key: string, value: unknown): Record<string, unknown> {
  let parsed = value
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value)
    } catch {
      throw new UsageError(`etcd ${key} is not JSON`, { hint: 'write it with discovery-agent config set' })
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`etcd ${key} is not a JSON object of settings`, { hint: 'write it with discovery-agent config set' })
  return parsed as Record<string, unknown>
}

const okValue = <T>(parsed: ParseResult<T>): T | undefined => (parsed.ok ? parsed.value : undefined)
