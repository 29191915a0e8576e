import { describe, expect, it } from 'vitest'
import { instanceRecord } from '../../../test/support/instance-fixtures.js'
import { displayWidth, fit, fitSegments, instanceLabel, NODE_COLUMN_WIDTH, segmentsWidth, tableColumns, visibleInstances, type Column } from './layout.js'

const total = (columns: Column[]) => columns.reduce((sum, c) => sum + c.width, 0) + columns.length - 1
const widthsOf = (columns: Column[]) => Object.fromEntries(columns.map((c) => [c.key, c.width]))

const typical = [
  instanceRecord({ service: 'busybox', id: 'node-a:tui-web-1234:80', port: 32768, health: { output: 'HTTP 200 in 2 ms' } }),
  instanceRecord({ service: 'busybox', id: 'node-a:tui-sick-1234:80', port: 32769, status: 'critical', health: { output: 'HTTP 404 in 1 ms (expected 200-399)' } }),
]
const crowded = [
  instanceRecord({ service: 'payments-api-gateway-internal-v2', id: `node-a:${'long-container-name-'.repeat(4)}:8080` }),
  instanceRecord({ node: 'a-very-long-node-name-indeed-yes', id: 'ext', address: 'fd00:1234:5678:9abc:def0:1234:5678:9abc', port: 443, health: { output: 'x'.repeat(200) } }),
  instanceRecord({ service: 'wide', health: { output: '健康チェック成功 🎉🎉🎉' } }),
]

describe('tableColumns', () => {
  it.each([
    { name: 'no instances', records: [] },
    { name: 'typical instances', records: typical },
    { name: 'crowded instances', records: crowded },
  ])('Given $name, When laid out at every width from 40 to 200, Then the columns add up to exactly that width', ({ records }) => {
    for (let width = 40; width <= 200; width++) {
      const columns = tableColumns(width, records)
      expect(total(columns), `width ${width}: ${JSON.stringify(widthsOf(columns))}`).toBe(width)
      for (const c of columns) expect(c.width).toBeGreaterThan(0)
    }
  })

  it('Given typical instances on 80 columns (79 usable), When laid out, Then every cell fits whole and the check output takes the rest', () => {
    const columns = tableColumns(79, typical)
    expect(columns.map((c) => c.title)).toEqual(['SERVICE', 'INSTANCE', 'ADDRESS', 'HEALTH', 'CHECK', 'AGE'])
    expect(widthsOf(columns)).toEqual({ service: 7, instance: 16, address: 15, health: 8, output: 24, age: 4 })
  })

  it('Given crowded instances on 80 columns, When laid out, Then names and outputs are squeezed to their floors first, then the widest (an IPv6 address)', () => {
    const w = widthsOf(tableColumns(79, crowded))
    expect(w).toEqual({ service: 10, instance: 18, address: 20, health: 8, output: 14, age: 4 })
  })

  it(`Given ${NODE_COLUMN_WIDTH} columns or more and an instance on another node, When laid out, Then a NODE column appears; narrower or all local, Then it does not`, () => {
    const remote = [...typical, instanceRecord({ node: 'node-b', id: 'node-b:x:80' })]
    expect(tableColumns(NODE_COLUMN_WIDTH, remote, 'node-a').map((c) => c.key)).toContain('node')
    expect(tableColumns(NODE_COLUMN_WIDTH - 1, remote, 'node-a').map((c) => c.key)).not.toContain('node')
    expect(tableColumns(200, typical, 'node-a').map((c) => c.key)).not.toContain('node')
  })

  it('Given a very narrow table, When laid out, Then the check output, then the age, are dropped rather than squeezing the rest unreadably', () => {
    expect(tableColumns(50, crowded).map((c) => c.key)).toEqual(['service', 'instance', 'address', 'health', 'age'])
    expect(tableColumns(40, crowded).map((c) => c.key)).toEqual(['service', 'instance', 'address', 'health'])
  })
})

describe('instanceLabel', () => {
  it.each([
    ['node-a:web-1:80', 'node-a', 'web-1:80'],
    ['node-a:web-1:53:udp', 'node-a', 'web-1:53:udp'],
    ['ext-db', 'node-a', 'ext-db'],
    ['node-b:web-1:80', 'node-a', 'node-b:web-1:80'],
    ['node-a:', 'node-a', 'node-a:'],
  ])('Given id %s on node %s, Then the label is %s', (id, node, label) => {
    expect(instanceLabel({ id, node })).toBe(label)
  })
})

describe('fit and displayWidth', () => {
  it.each<[string, number, string]>([
    ['abc', 5, 'abc  '],
    ['abcdef', 5, 'abcd…'],
    ['abcde', 5, 'abcde'],
    ['abc', 1, '…'],
    ['abc', 0, ''],
    ['a\tb\nc\u001b[31m', 10, 'a b c [31m'],
    ['日本語', 6, '日本語'],
    ['日本語', 5, '日本…'],
    ['日本語', 4, '日… '],
    ['🎉🎉', 3, '🎉…'],
    ['e\u0301te\u0301', 3, 'e\u0301te\u0301'],
  ])('Given %j cut to %i columns, Then it is %j', (text, width, expected) => {
    expect(fit(text, width)).toBe(expected)
    if (width > 0) expect(displayWidth(fit(text, width))).toBe(width)
  })
})

describe('fitSegments', () => {
  it('Given segments wider than the room, When fitted, Then the last one that does not fit is cut with an ellipsis and the rest dropped', () => {
    const segments = [{ text: 'leader ' }, { text: 'node-a', color: 'cyan' }, { text: ' (you)' }]
    expect(fitSegments(segments, 100)).toEqual(segments)
    expect(fitSegments(segments, 10)).toEqual([{ text: 'leader ' }, { text: 'no…', color: 'cyan' }])
    expect(segmentsWidth(fitSegments(segments, 10))).toBe(10)
    expect(fitSegments(segments, 7)).toEqual([{ text: 'leader ' }])
  })
})

describe('visibleInstances', () => {
  const records = [
    instanceRecord({ service: 'web', id: 'node-a:front:80', tags: ['blue', 'edge'], container: { id: 'c1', name: 'front', image: 'nginx', port: 80, protocol: 'tcp' } }),
    instanceRecord({ service: 'api', id: 'node-b:back:8080', node: 'node-b', address: '10.1.2.3', port: 8080, status: 'critical' }),
    instanceRecord({ service: 'db', id: 'ext-db', node: 'node-b', source: 'manual', status: 'unknown' }),
  ]
  it.each<[string, boolean, string[]]>([
    ['', false, ['node-a:front:80', 'node-b:back:8080', 'ext-db']],
    ['', true, ['node-a:front:80']],
    ['API', false, ['node-b:back:8080']],
    ['  node-b ', false, ['node-b:back:8080', 'ext-db']],
    ['10.1.2.3:8080', false, ['node-b:back:8080']],
    ['edge', false, ['node-a:front:80']],
    ['critical', false, ['node-b:back:8080']],
    ['front', true, ['node-a:front:80']],
    ['critical', true, []],
    ['nothing-matches', false, []],
  ])('Given filter %j and passing-only %s, Then %j show', (filter, healthyOnly, ids) => {
    expect(visibleInstances(records, { filter, healthyOnly }).map((r) => r.id)).toEqual(ids)
  })
})
