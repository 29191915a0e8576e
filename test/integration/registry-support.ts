import { execFile } from 'node:child_process'
import { etcdctl } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/** One key as etcdctl sees it; the lease id is kept as a decimal string (int64 exceeds a JS number). */
export interface EtcdKv {
  key: string
  value: string
  /** '0' when the key has no lease. */
  lease: string
  modRevision: string
}

/** `etcdctl get -w json` for one key or a prefix, decoded. Lease ids are read from the raw text. */
export async function getKvs(keyOrPrefix: string, options: { prefix?: boolean; endpoints?: string[] } = {}): Promise<EtcdKv[]> {
  const args = ['get', keyOrPrefix, '-w', 'json', ...(options.prefix ? ['--prefix'] : [])]
  const raw = await etcdctl(args, options.endpoints)
  // JSON.parse would round lease ids above 2^53: quote them first.
  const json = JSON.parse(raw.replace(/"(lease|mod_revision|create_revision)":(\d+)/g, '"$1":"$2"')) as {
    kvs?: { key: string; value: string; lease?: string; mod_revision: string }[]
  }
  return (json.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString(),
    value: Buffer.from(kv.value, 'base64').toString(),
    lease: kv.lease ?? '0',
    modRevision: kv.mod_revision,
  }))
}

export async function getKv(key: string, endpoints?: string[]): Promise<EtcdKv | undefined> {
  return (await getKvs(key, { endpoints }))[0]
}

/** `etcdctl lease timetolive`: the granted TTL and what remains, or undefined when etcd no longer has the lease. */
export async function leaseTimeToLive(leaseDecimal: string): Promise<{ granted: number; remaining: number } | undefined> {
  const out = await etcdctl(['lease', 'timetolive', BigInt(leaseDecimal).toString(16)])
  if (/already expired|not found/i.test(out)) return undefined
  const match = /granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/.exec(out)
  if (!match) throw new Error(`unexpected etcdctl lease timetolive output: ${out}`)
  return { granted: Number(match[1]), remaining: Number(match[2]) }
}

/** Member control through the test-environment script (`etcd-kill N`, `etcd-start N`, `etcd-wait`). */
export function testenv(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [testEnv().script, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`testenv.sh ${args.join(' ')} failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
  })
}

/** Restarts every plain etcd member that is down and waits for a healthy cluster (for afterAll/finally). */
export async function restoreEtcdCluster(): Promise<void> {
  for (const n of [1, 2, 3]) await testenv('etcd-start', String(n))
  await testenv('etcd-wait', '60')
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of results. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++
        results[index] = await fn(items[index], index)
      }
    }),
  )
  return results
}

/** A stack trace line as Node prints it. */
export const STACK_LINE = /^\s+at\s/m
