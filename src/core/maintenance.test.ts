import { describe, expect, it } from 'vitest'
import { maintenanceOf, maintenanceOutput, parseMaintenanceRecord, type MaintenanceMarks } from './maintenance.js'

const mark = (reason: string) => ({ reason, by: 'ops@host', since: '2026-01-01T00:00:00.000Z' })
const record = { service: 'web', id: 'web-1', node: 'n1' }

describe('maintenanceOf', () => {
  it.each<[string, Partial<{ [K in keyof MaintenanceMarks]: [string, ReturnType<typeof mark>][] }>, string | undefined]>([
    ['no marks', {}, undefined],
    ['its node', { nodes: [['n1', mark('kernel')]] }, 'kernel'],
    ['another node', { nodes: [['n2', mark('kernel')]] }, undefined],
    ['its service', { services: [['web', mark('deploy')]] }, 'deploy'],
    ['its instance id', { instances: [['web/web-1', mark('dump')]] }, 'dump'],
    ['the same id in another service', { instances: [['api/web-1', mark('dump')]] }, undefined],
    ['instance, service and node at once: the narrowest wins', { nodes: [['n1', mark('node')]], services: [['web', mark('service')]], instances: [['web/web-1', mark('instance')]] }, 'instance'],
    ['service and node: the service wins', { nodes: [['n1', mark('node')]], services: [['web', mark('service')]] }, 'service'],
  ])('Given %s, When judged, Then the reason is %s', (_what, marks, reason) => {
    const all: MaintenanceMarks = { nodes: new Map(marks.nodes ?? []), services: new Map(marks.services ?? []), instances: new Map(marks.instances ?? []) }
    expect(maintenanceOf(record, all)?.mark.reason).toBe(reason)
  })

  it('Given a container label and a service mark, When judged, Then the label (an instance mark) wins and the output says what and why', () => {
    const found = maintenanceOf(record, { nodes: new Map(), services: new Map([['web', mark('deploy')]]), instances: new Map() }, mark('canary'))
    expect(found?.mark.reason).toBe('canary')
    expect(maintenanceOutput(found!)).toBe('maintenance (instance): canary — by ops@host since 2026-01-01T00:00:00.000Z')
  })

  it.each([['not JSON', '{'], ['a reason that is no string', '{"reason":1,"by":"a","since":"b"}'], ['nothing', '{}']])('Given %s in etcd, When parsed, Then it is no mark', (_what, raw) => {
    expect(parseMaintenanceRecord(raw)).toBeUndefined()
  })

  it('Given a 10 KB reason, When parsed, Then it is bounded', () => {
    expect(parseMaintenanceRecord(JSON.stringify({ reason: 'x'.repeat(10_000), by: 'a', since: 'b' }))?.reason).toHaveLength(500)
  })
})
