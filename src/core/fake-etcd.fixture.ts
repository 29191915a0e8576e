import { EventEmitter } from 'node:events'
import type { Etcd3 } from 'etcd3'

/**
 * A fake etcd client for unit tests of the list-then-watch logic: its range answers with
 * `listed` (at revision 10, or held until the test releases it), its watches are
 * emitters the test drives ('put', 'delete', 'data', 'connected', 'disconnected', 'error').
 */
export class FakeWatcher extends EventEmitter {
  cancelled = false
  async cancel(): Promise<void> {
    this.cancelled = true
  }
}

export type FakeKv = { key: Buffer; value: Buffer; mod_revision: string; create_revision: string; lease: string }

export function fakeClient(listed: FakeKv[] = []) {
  const lists: { resolve: (revision: string) => void }[] = []
  const watchers: FakeWatcher[] = []
  let autoRevision: string | undefined = '10'
  let failing: Error | undefined
  let ranges = 0
  const range = (): Record<string, unknown> => {
    const builder: Record<string, unknown> = {}
    for (const method of ['prefix', 'inRange', 'limit', 'revision']) builder[method] = () => builder
    builder.exec = () =>
      new Promise((resolve, reject) => {
        ranges++
        if (failing) return reject(failing)
        const answer = (revision: string): void => resolve({ header: { revision }, kvs: listed, more: false })
        if (autoRevision) answer(autoRevision)
        else lists.push({ resolve: answer })
      })
    return builder
  }
  const watch = (): Record<string, unknown> => {
    const builder: Record<string, unknown> = {}
    for (const method of ['prefix', 'startRevision']) builder[method] = () => builder
    builder.create = async () => {
      const watcher = new FakeWatcher()
      watchers.push(watcher)
      return watcher
    }
    return builder
  }
  const client = { getAll: range, watch } as unknown as Etcd3
  return {
    client,
    lists,
    watchers,
    holdLists: () => (autoRevision = undefined),
    releaseLists: (revision: string) => (autoRevision = revision),
    /** Every range fails with `error` (etcd unreachable) until called with undefined. */
    failLists: (error: Error | undefined) => (failing = error),
    /** Range requests made so far (a relist of one page is one). */
    get ranges(): number {
      return ranges
    },
  }
}

export const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
}

export const fakeKv = (key: string, revision: number, value = 'v'): FakeKv => ({ key: Buffer.from(key), value: Buffer.from(value), mod_revision: String(revision), create_revision: String(revision), lease: '0' })
