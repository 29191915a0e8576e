import { cleanup } from 'ink-testing-library'
import { afterEach, describe, it } from 'vitest'
import { instanceRecord, keyOf } from '../../../test/support/instance-fixtures.js'
import { KEY, makeStore, NODE, renderTui } from '../../../test/support/tui.js'
import type { HealthStatus } from '../../core/model.js'
import { App } from './App.js'

/**
 * Frame times with 1,000 and 10,000 instances: printed, never asserted (timing depends on the
 * machine). A measurement, not a test: `npm run bench:tui` (its own vitest project, not part of `npm test`),
 * with React's production build as `watch` loads it. A frame is timed from the cause (a key press,
 * a store change) to Ink writing the frame. The 10,000 records are seeded at once, so the first
 * frames of a view also pay for the JIT warming up and the collection of the seeding's garbage.
 */
afterEach(() => {
  cleanup()
})

const STATUSES: HealthStatus[] = ['passing', 'passing', 'passing', 'warning', 'critical', 'unknown']

describe('frame times (printed, not asserted)', () => {
  it.each([1_000, 10_000, 100_000])('%i instances at 120×40', async (count) => {
    const store = makeStore({ coalesceMs: 50 })
    const records = Array.from({ length: count }, (_, i) =>
      instanceRecord({
        service: `svc-${i % 200}`,
        node: i % 3 === 0 ? NODE : `node-${i % 7}`,
        id: `${i % 3 === 0 ? NODE : `node-${i % 7}`}:container-${i}:80`,
        port: 20000 + (i % 40000),
        status: STATUSES[i % STATUSES.length],
        health: { output: `HTTP ${i % 5 === 4 ? 503 : 200} in ${i % 17} ms` },
      }),
    )
    for (const r of records) store.putInstance(keyOf(r), r)
    store.flush()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 120, rows: 40 }} />, { columns: 120, rows: 40 })
    let written = 0
    const write = tui.stdout.write.bind(tui.stdout)
    tui.stdout.write = (frame: string) => {
      written = performance.now()
      return write(frame)
    }
    const frame = async (cause: () => void): Promise<number> => {
      const start = performance.now()
      written = 0
      cause()
      while (written === 0) await new Promise((resolve) => setImmediate(resolve))
      return written - start
    }
    const times: Record<string, number[]> = {}
    const measure = async (name: string, cause: () => void, count = 20) => {
      for (let i = 0; i < count; i++) {
        ;(times[name] ??= []).push(await frame(cause))
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
    await measure('Instances (2), first visit', () => tui.stdin.write('2'), 1)
    await measure('Instances: j (cursor)', () => tui.stdin.write('j'))
    await measure('Instances: PgDn', () => tui.stdin.write(KEY.pageDown))
    let n = 0
    await measure('store: one instance changes health', () => {
      const r = records[(n += 7) % count]
      store.putInstance(keyOf(r), { ...r, health: { ...r.health, status: r.health.status === 'critical' ? 'passing' : 'critical', output: `changed ${n}` } })
      store.flush()
    })
    await measure('Instances: s (sort)', () => tui.stdin.write('s'), 7)
    await measure('Instances: Enter (detail)', () => tui.stdin.write(KEY.enter), 6)
    await measure('Services (1)', () => tui.stdin.write('1'), 1)
    await measure('Services: j', () => tui.stdin.write('j'))
    await measure('Nodes (3)', () => tui.stdin.write('3'), 1)
    await measure('Events (4)', () => tui.stdin.write('4'), 1)
    let switches = 0
    await measure('Services (1) ⇄ Instances (2), again', () => tui.stdin.write(switches++ % 2 === 0 ? '1' : '2'), 10)
    const stats = (ms: number[]) => {
      const sorted = [...ms].sort((a, b) => a - b)
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(1)
      return `median ${at(0.5).padStart(5)} p95 ${at(0.95).padStart(5)} max ${sorted.at(-1)!.toFixed(1).padStart(5)}`
    }
    const report = Object.entries(times).map(([name, ms]) => `  ${name.padEnd(38)} n=${String(ms.length).padStart(2)}  cause→frame ${stats(ms)} ms`)
    console.log(`frame times, ${count} instances at 120×40:\n${report.join('\n')}`)
  }, 120_000)
})
