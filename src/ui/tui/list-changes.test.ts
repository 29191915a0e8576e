import { describe, expect, it } from 'vitest'
import { instanceRecord } from '../../../test/support/instance-fixtures.js'
import type { InstanceRecord } from '../../core/model.js'
import { walkChanges } from './list-changes.js'

const make = (n: number): InstanceRecord => instanceRecord({ service: ['api', 'web'][n % 2], id: `node-a:c${n}:80` })

describe('walkChanges', () => {
  it('Given two lists in any order, Then what is gone and what is added balance to the difference (the order only makes it cheap)', () => {
    const a = Array.from({ length: 30 }, (_, n) => make(n))
    const b = [...a.slice(5, 25).reverse(), make(100), make(101)]
    const seen = new Map<InstanceRecord, number>()
    walkChanges(a, b, { gone: (j) => seen.set(a[j], (seen.get(a[j]) ?? 0) - 1), added: (i) => seen.set(b[i], (seen.get(b[i]) ?? 0) + 1) })
    const net = [...seen].filter(([, n]) => n !== 0)
    expect(net.filter(([, n]) => n < 0).map(([r]) => r)).toEqual([...a.slice(0, 5), ...a.slice(25)].filter((r) => !b.includes(r)))
    expect(net.filter(([, n]) => n > 0).map(([r]) => r)).toEqual(b.slice(-2))
  })
})
