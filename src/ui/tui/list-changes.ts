import type { InstanceRecord } from '../../core/model.js'
import { compareRecords } from '../../core/store.js'

/**
 * What a live view keeps between frames learns what changed from here: `next` is walked beside
 * `last`, both in the store's order (service, then id). `same(i, j)` is called for a record both
 * hold (the same object: records are immutable), `gone(j)` for one only `last` holds and
 * `added(i)` for one only `next` holds (a changed record is a new object: gone and added). In
 * another order the calls still add up (a shared record may come as gone and added); the
 * store's order makes each shared record cost an identity check.
 */
export function walkChanges(
  last: readonly InstanceRecord[],
  next: readonly InstanceRecord[],
  on: { same?: (i: number, j: number) => void; gone?: (j: number) => void; added?: (i: number) => void },
): void {
  let i = 0
  let j = 0
  while (i < next.length || j < last.length) {
    // (Indexes move outside the calls: an optional call that is not made evaluates no argument.)
    if (i < next.length && j < last.length && next[i] === last[j]) {
      on.same?.(i, j)
      i += 1
      j += 1
      continue
    }
    const order = i >= next.length ? -1 : j >= last.length ? 1 : compareRecords(last[j], next[i])
    if (order <= 0) {
      on.gone?.(j)
      j += 1
    }
    if (order >= 0) {
      on.added?.(i)
      i += 1
    }
  }
}
