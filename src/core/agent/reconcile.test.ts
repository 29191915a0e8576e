import { describe, expect, it } from 'vitest'
import type { DesiredInstance, InstanceRecord } from '../model.js'
import { buildRecord, OUTPUT_UPDATE_INTERVAL_MS, planReconcile, sourcedHealth, type HeldRecord, type WantedInstance } from './reconcile.js'

const NOW = '2026-01-01T00:00:10.000Z'
const EARLIER = '2026-01-01T00:00:00.000Z'
const key = (id: string, node = 'n1'): string => `/d/services/web/${node}/${id}`

function desired(id: string, over: Partial<DesiredInstance> = {}): DesiredInstance {
  return { id, service: 'web', address: '10.0.0.1', port: 80, tags: [], meta: {}, ...over }
}
function want(id: string, over: Partial<DesiredInstance> = {}, health: WantedInstance['health'] = { status: 'passing', output: 'no check' }): WantedInstance {
  return { key: key(id), instance: desired(id, over), health }
}
function held(record: InstanceRecord, lease = 'L1', modRevision = '7'): HeldRecord {
  return { record, modRevision, lease }
}
function ours(id: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return { ...buildRecord('n1', want(id), undefined, EARLIER), ...over }
}

describe('planReconcile', () => {
  it.each([
    {
      what: 'a new instance → put where the key is absent',
      wanted: [want('a')], held: [], scope: [key('a')],
      expect: [{ op: 'put', key: key('a'), expect: { absent: true }, change: 'registered' }],
    },
    {
      what: 'the same content on our lease → nothing',
      wanted: [want('a')], held: [[key('a'), held(ours('a'))]], scope: [key('a')],
      expect: [],
    },
    {
      what: 'the same content on an earlier lease of ours (takeover) → rebind over the revision seen, no new record',
      wanted: [want('a')], held: [[key('a'), held(ours('a'), 'OLD', '9')]], scope: [key('a')],
      expect: [{ op: 'put', key: key('a'), expect: { modRevision: '9' }, change: 'rebind' }],
    },
    {
      what: 'a health change → put over the revision seen',
      wanted: [want('a', {}, { status: 'critical', output: 'HTTP 500' })], held: [[key('a'), held(ours('a'))]], scope: [key('a')],
      expect: [{ op: 'put', key: key('a'), expect: { modRevision: '7' }, change: 'health' }],
    },
    {
      what: 'a new port → updated',
      wanted: [want('a', { port: 81 })], held: [[key('a'), held(ours('a'))]], scope: [key('a')],
      expect: [{ op: 'put', key: key('a'), expect: { modRevision: '7' }, change: 'updated' }],
    },
    {
      what: 'ours and no longer wanted → delete over the revision seen',
      wanted: [], held: [[key('a'), held(ours('a'))]], scope: [key('a')],
      expect: [{ op: 'delete', key: key('a'), expect: { modRevision: '7' } }],
    },
    {
      what: 'a manual record at a wanted key → conflict, never overwritten',
      wanted: [want('a')], held: [[key('a'), held(ours('a', { source: 'manual' }), '0')]], scope: [key('a')],
      expect: [{ op: 'conflict', key: key('a') }],
    },
    {
      what: "another node's record → conflict when wanted, untouched when not",
      wanted: [want('a')], held: [[key('a'), held(ours('a', { node: 'n2' }))], [key('b'), held(ours('b', { node: 'n2' }))]], scope: [key('a'), key('b')],
      expect: [{ op: 'conflict', key: key('a') }],
    },
    {
      what: 'a manual record not wanted in scope → untouched',
      wanted: [], held: [[key('m'), held(ours('m', { source: 'manual' }))]], scope: [key('m')],
      expect: [],
    },
    {
      what: 'ours outside the scope → untouched (a container pass decides only its own keys)',
      wanted: [], held: [[key('x'), held(ours('x'))]], scope: [],
      expect: [],
    },
  ])('Given $what', ({ wanted, held: heldEntries, scope, expect: expected }) => {
    // When the plan is made
    const plan = planReconcile({ node: 'n1', leaseId: 'L1', now: NOW, wanted, held: new Map(heldEntries as [string, HeldRecord][]), scope })
    // Then it has exactly these steps
    expect(plan).toHaveLength(expected.length)
    plan.forEach((step, i) => expect(step).toMatchObject(expected[i]))
  })

  it('Given a health change, When the record is built, Then registeredAt stays and since moves to now', () => {
    const previous = ours('a')
    const [step] = planReconcile({ node: 'n1', leaseId: 'L1', now: NOW, wanted: [want('a', {}, { status: 'critical', output: 'down' })], held: new Map([[key('a'), held(previous)]]), scope: [] })
    expect(step).toMatchObject({ op: 'put', record: { registeredAt: EARLIER, health: { status: 'critical', since: NOW } } })
  })

  it('Given the same status with a new output (a latency), When planned within 5 minutes of the stored output, Then nothing is written; 5 minutes on, the output is', () => {
    const stored = ours('a', { health: { status: 'passing', output: 'HTTP 200 in 4 ms', updatedAt: EARLIER, since: EARLIER } })
    const wanted = [want('a', {}, { status: 'passing', output: 'HTTP 200 in 9 ms' })]
    expect(planReconcile({ node: 'n1', leaseId: 'L1', now: NOW, wanted, held: new Map([[key('a'), held(stored)]]), scope: [] })).toEqual([])
    const later = new Date(Date.parse(EARLIER) + OUTPUT_UPDATE_INTERVAL_MS).toISOString()
    const [step] = planReconcile({ node: 'n1', leaseId: 'L1', now: later, wanted, held: new Map([[key('a'), held(stored)]]), scope: [] })
    expect(step).toMatchObject({ op: 'put', change: 'health', record: { health: { status: 'passing', output: 'HTTP 200 in 9 ms', since: EARLIER, updatedAt: later } } })
  })

  it('Given a new status, When planned right after the last write, Then it is written at once with its output', () => {
    const stored = ours('a', { health: { status: 'passing', output: 'HTTP 200 in 4 ms', updatedAt: NOW, since: EARLIER } })
    const [step] = planReconcile({ node: 'n1', leaseId: 'L1', now: NOW, wanted: [want('a', {}, { status: 'critical', output: 'HTTP 500 in 3 ms' })], held: new Map([[key('a'), held(stored)]]), scope: [] })
    expect(step).toMatchObject({ op: 'put', change: 'health', record: { health: { status: 'critical', output: 'HTTP 500 in 3 ms', since: NOW } } })
  })

  it('Given a check that has not run yet (takeover), When the record is built, Then the last known health is kept', () => {
    const previous = ours('a', { health: { status: 'critical', output: 'HTTP 500', updatedAt: EARLIER, since: EARLIER } })
    const record = buildRecord('n1', want('a', {}, { status: 'unknown', output: 'not checked yet', pending: true }), previous, NOW)
    expect(record.health).toEqual(previous.health)
  })
})

describe('sourcedHealth', () => {
  const http = { kind: 'http' as const, target: 'http://x/', interval: 1000, timeout: 1000, failuresBeforeCritical: 1, successesBeforePassing: 1, initialDelay: 0 }
  it.each([
    ['paused wins over everything', { paused: true, check: http, checkHealth: { status: 'passing' as const, output: 'ok' } }, 'critical'],
    ['no check → passing', { paused: false }, 'passing'],
    ['docker HEALTHCHECK healthy → passing', { paused: false, check: { ...http, kind: 'docker' as const }, dockerHealth: 'healthy' as const }, 'passing'],
    ['docker HEALTHCHECK unhealthy → critical', { paused: false, check: { ...http, kind: 'docker' as const }, dockerHealth: 'unhealthy' as const }, 'critical'],
    ['docker HEALTHCHECK starting → unknown', { paused: false, check: { ...http, kind: 'docker' as const }, dockerHealth: 'starting' as const }, 'unknown'],
    ['a check with a verdict → that verdict', { paused: false, check: http, checkHealth: { status: 'warning' as const, output: '429' } }, 'warning'],
    ['a check not run yet → pending unknown', { paused: false, check: http }, 'unknown'],
  ])('Given %s', (_what, input, status) => {
    expect(sourcedHealth(input).status).toBe(status)
  })
})
