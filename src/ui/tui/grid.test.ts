import { describe, expect, it } from 'vitest'
import { compareText, gridLayout, healthBar, headerText, rowSegments, sortRows, sparkline, windowStart, type GridColumn } from './grid.js'
import { displayWidth, segmentsWidth } from './layout.js'

interface Row {
  name: string
  n: number
}
const columns: GridColumn<Row>[] = [
  { key: 'name', title: 'NAME', min: 6, max: 30, grow: true, text: (r) => r.name },
  { key: 'n', title: 'COUNT', min: 5, max: 8, compare: (a, b) => a.n - b.n, text: (r) => String(r.n) },
  { key: 'extra', title: 'EXTRA', min: 10, max: 10, drop: 1, text: () => 'x'.repeat(10) },
]
const rows: Row[] = [
  { name: 'web-10', n: 3 },
  { name: 'web-2', n: 10 },
  { name: 'a-service-with-a-very-long-name-indeed-日本', n: 1 },
]

describe('gridLayout', () => {
  it('Given rows, When laid out at every width from 12 to 160, Then the columns add up to exactly that width', () => {
    for (let width = 12; width <= 160; width++) {
      const placed = gridLayout(width, columns, rows)
      expect(placed.reduce((sum, p) => sum + p.width, 0) + placed.length - 1, `width ${width}`).toBe(width)
      for (const row of rows) expect(segmentsWidth(rowSegments(placed, row)), `width ${width}`).toBe(width)
    }
  })

  it.each([
    [80, ['name', 'n', 'extra'], { name: 62, n: 6, extra: 10 }],
    [30, ['name', 'n', 'extra'], { name: 12, n: 6, extra: 10 }],
    [20, ['name', 'n'], { name: 14, n: 5 }],
  ])('Given %i columns, Then the columns are %j with widths %j', (width, keys, widths) => {
    const placed = gridLayout(width, columns, rows)
    expect(placed.map((p) => p.column.key)).toEqual(keys)
    expect(Object.fromEntries(placed.map((p) => [p.column.key, p.width]))).toEqual(widths)
  })

  it('Given a sort, Then the header marks the sorted column ▲ or ▼', () => {
    const placed = gridLayout(40, columns, rows)
    expect(headerText(placed, { column: 'n', descending: true })).toMatch(/^NAME +COUNT▼ +EXTRA$/)
  })
})

describe('sortRows', () => {
  it.each<[string, boolean, string[]]>([
    ['name', false, ['a-service-with-a-very-long-name-indeed-日本', 'web-2', 'web-10']],
    ['name', true, ['web-10', 'web-2', 'a-service-with-a-very-long-name-indeed-日本']],
    ['n', false, ['a-service-with-a-very-long-name-indeed-日本', 'web-10', 'web-2']],
    ['unknown', false, rows.map((r) => r.name)],
  ])('Given sort by %s (descending %s), Then the order is %j (numbers as numbers)', (column, descending, order) => {
    expect(sortRows(rows, columns, { column, descending }).map((r) => r.name)).toEqual(order)
  })
})

describe('windowStart', () => {
  it.each([
    // index, offset, rows, count → start
    [0, 0, 10, 100, 0],
    [9, 0, 10, 100, 0],
    [10, 0, 10, 100, 1],
    [5, 20, 10, 100, 5],
    [99, 0, 10, 100, 90],
    [3, 95, 10, 100, 3],
    [0, 7, 10, 5, 0],
  ])('Given the cursor at %i, the window at %i, %i rows of %i, Then the window starts at %i', (index, offset, rows, count, start) => {
    expect(windowStart(index, offset, rows, count)).toBe(start)
  })
})

describe('healthBar', () => {
  const text = (counts: Parameters<typeof healthBar>[0], width: number) => healthBar(counts, width).map((s) => s.text).join('')
  it.each<[Parameters<typeof healthBar>[0], number, string]>([
    [{ passing: 4, warning: 0, critical: 0, unknown: 0, maintenance: 0 }, 8, '████████'],
    [{ passing: 2, warning: 0, critical: 2, unknown: 0, maintenance: 0 }, 8, '░░░░████'],
    [{ passing: 999, warning: 0, critical: 1, unknown: 0, maintenance: 0 }, 10, '░█████████'],
    [{ passing: 1, warning: 1, critical: 1, unknown: 1, maintenance: 0 }, 4, '░▒·█'],
    [{ passing: 0, warning: 0, critical: 0, unknown: 0, maintenance: 0 }, 5, '     '],
    [{ passing: 3, warning: 1, critical: 0, unknown: 0, maintenance: 0 }, 7, '▒▒█████'],
    [{ passing: 1, warning: 0, critical: 0, unknown: 0, maintenance: 1 }, 4, '▞▞██'],
  ])('Given %j in %i cells, Then the bar is %j (critical first, every health present gets a cell)', (counts, width, bar) => {
    expect(text(counts, width)).toBe(bar)
    expect(displayWidth(text(counts, width))).toBe(width)
  })
})

describe('sparkline', () => {
  it('Given latencies and a failure, Then low to high bars and × for the failure, newest on the right, at most width samples', () => {
    const samples = [1, 5, 9, 5].map((latencyMs) => ({ latencyMs, failed: false }))
    expect(sparkline([...samples, { latencyMs: 3, failed: true }], 10).map((s) => s.text).join('')).toBe('▁▅█▅×')
    expect(sparkline([...samples, { latencyMs: 3, failed: true }], 3).map((s) => s.text).join('')).toBe('█▁×')
    expect(sparkline([{ latencyMs: 4, failed: false }, { latencyMs: 4, failed: false }], 5).map((s) => s.text).join('')).toBe('▁▁')
    expect(sparkline([{ latencyMs: 4, failed: true }], 5)).toEqual([{ text: '×', color: 'red' }])
  })
})

describe('compareText', () => {
  /** The order spelled out: split into digit runs and the rest; runs compare as numbers, the rest by code units; ties by the plain string. */
  const reference = (a: string, b: string): number => {
    const parts = (s: string) => s.match(/[0-9]+|[^0-9]+/g) ?? []
    const pa = parts(a)
    const pb = parts(b)
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
      const x = pa[i]
      const y = pb[i]
      const digits = /^[0-9]/.test(x) && /^[0-9]/.test(y)
      const c = digits ? Number(BigInt(x) - BigInt(y) > 0n) - Number(BigInt(x) - BigInt(y) < 0n) : 0
      if (c !== 0) return c
      if (!digits && x !== y) {
        // A text part against a longer one that starts with it: the next character decides (a digit run or the end).
        const n = Math.min(x.length, y.length)
        if (x.slice(0, n) !== y.slice(0, n)) return x < y ? -1 : 1
        const nx = x.length > n ? x.charCodeAt(n) : i + 1 < pa.length ? 0x30 : -1
        const ny = y.length > n ? y.charCodeAt(n) : i + 1 < pb.length ? 0x30 : -1
        return nx < ny ? -1 : 1
      }
    }
    if (pa.length !== pb.length) return pa.length < pb.length ? -1 : 1
    return a === b ? 0 : a < b ? -1 : 1
  }

  it('Given names with numbers, Then numbers sort as numbers and equal numbers by their text', () => {
    const names = ['web-10', 'web-2', 'web-02', 'web', 'web-1a', 'web-1', 'Web-3', 'web-100', 'web_1', 'web.1', 'x9', 'x10', '10.0.0.2:80', '10.0.0.10:80']
    expect([...names].sort(compareText)).toEqual(['10.0.0.2:80', '10.0.0.10:80', 'Web-3', 'web', 'web-1', 'web-1a', 'web-02', 'web-2', 'web-10', 'web-100', 'web.1', 'web_1', 'x9', 'x10'])
  })

  it('Given 20,000 random pairs of short strings of letters, digits and punctuation, Then compareText agrees with the spelled-out order', () => {
    const alphabet = 'aAbz-_.:/0123456789é'
    let seed = 7
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const word = () => Array.from({ length: Math.floor(random() * 8) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')
    for (let i = 0; i < 20_000; i++) {
      const a = word()
      const b = word()
      expect(Math.sign(compareText(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(Math.sign(reference(a, b)))
    }
  })
})
