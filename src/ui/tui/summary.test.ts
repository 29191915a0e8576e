import { describe, expect, it } from 'vitest'
import { instanceRecord } from '../../../test/support/instance-fixtures.js'
import type { HealthStatus, InstanceRecord } from '../../core/model.js'
import { compareRecords } from '../../core/store.js'
import { HealthTallies } from './summary.js'

const STATUSES: HealthStatus[] = ['passing', 'warning', 'critical', 'unknown', 'maintenance']
let seed = 11
const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n)
const make = (n: number): InstanceRecord => {
  const node = ['node-a', 'node-b'][random(2)]
  return instanceRecord({ service: ['api', 'web'][random(2)], id: `${node}:c${n}:80`, node, status: STATUSES[random(5)] })
}

/** The tally counted from scratch. */
function recount(list: readonly InstanceRecord[], node: string) {
  const counts = { passing: 0, warning: 0, critical: 0, unknown: 0, maintenance: 0 }
  for (const r of list) counts[r.health.status] += 1
  return { counts, total: list.length, local: list.filter((r) => r.node === node).length }
}

describe('HealthTallies', () => {
  it('Given 300 rounds of a store list with records replaced, removed and added, Then each tally is the count from scratch', () => {
    const tallies = new HealthTallies()
    let list = Array.from({ length: 50 }, (_, n) => make(n)).sort(compareRecords)
    for (let round = 0; round < 300; round++) {
      const next = list.map((r) => (random(8) === 0 ? { ...r, health: { ...r.health, status: STATUSES[random(5)] } } : r)).filter(() => random(15) !== 0)
      for (let k = random(3); k > 0; k--) next.push(make(1000 + round * 10 + k))
      list = [...new Map(next.map((r) => [`${r.service}/${r.id}`, r])).values()].sort(compareRecords)
      // A service's instances only, now and then (Enter on a service): another list, the same records
      const shown = random(5) === 0 ? list.filter((r) => r.service === 'api') : list
      expect(tallies.of(shown, 'node-a')).toEqual(recount(shown, 'node-a'))
    }
  })

  it('Given another node asks, Then it is counted for that node', () => {
    const tallies = new HealthTallies()
    const list = Array.from({ length: 20 }, (_, n) => make(n)).sort(compareRecords)
    tallies.of(list, 'node-a')
    expect(tallies.of(list, 'node-b')).toEqual(recount(list, 'node-b'))
  })
})
