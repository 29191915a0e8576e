import type { InstanceRecord, ParseResult } from '../model.js'
import type { KeyState } from '../registry.js'
import type { ViewState } from '../view/view-state.js'
import type { HeldRecord } from './reconcile.js'

type Known = { revision: string; held?: HeldRecord }

/**
 * What etcd holds at a writer's keys: the view, unless the writer knows better — its own
 * acknowledged writes the view has not caught up with yet, and what a refused write read back
 * (a guarded transaction's else-branch). Entries the view has caught up with are dropped, so
 * this holds only the keys in flight, not every key ever written.
 */
export class HeldRecords {
  private readonly known = new Map<string, Known>()

  constructor(
    private readonly view: () => ViewState,
    private readonly parse: (raw: string, key: string) => ParseResult<InstanceRecord>,
  ) {}

  /** Keys written or read back that the view may not show yet. */
  keys(): IterableIterator<string> {
    return this.known.keys()
  }

  /** Drops what the view has caught up with (a host with churning containers would grow without end). */
  forgetSeen(): void {
    const seen = BigInt(this.view().currentRevision)
    for (const [key, mine] of this.known) if (BigInt(mine.revision) <= seen) this.known.delete(key)
  }

  /** What etcd holds at `key`: what this writer knows when the view is behind it. */
  at(key: string): HeldRecord | undefined {
    const view = this.view()
    const mine = this.known.get(key)
    const seen = view.instance(key)
    if (mine && BigInt(view.currentRevision) < BigInt(mine.revision) && (!seen || BigInt(seen.modRevision) < BigInt(mine.revision))) return mine.held
    if (mine) this.known.delete(key)
    return seen ? { record: seen.record, modRevision: seen.modRevision, lease: seen.lease } : undefined
  }

  /** An acknowledged write at `revision`: the record put (bound to `lease`), or none for a delete. */
  wrote(key: string, revision: string, put?: { record: InstanceRecord; lease: string }): void {
    this.remember(key, put ? { revision, held: { record: put.record, modRevision: revision, lease: put.lease } } : { revision })
  }

  /** What a refused write read back at `revision` (null: the key is absent). */
  observed(key: string, current: KeyState | null, revision: string): void {
    if (!current) {
      this.remember(key, { revision })
      return
    }
    const parsed = this.parse(current.value, key)
    // An unreadable value: leave the key to the view (which reports it) rather than guess.
    if (parsed.ok) this.remember(key, { revision, held: { record: parsed.value, modRevision: current.modRevision, lease: current.lease } })
    else this.known.delete(key)
  }

  /** Writes finish in any order: what was known at a later revision is never replaced by an earlier one. */
  private remember(key: string, known: Known): void {
    const mine = this.known.get(key)
    if (mine && BigInt(mine.revision) > BigInt(known.revision)) return
    this.known.set(key, known)
  }
}
