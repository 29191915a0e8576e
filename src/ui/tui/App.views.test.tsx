import { cleanup } from 'ink-testing-library'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { instanceRecord, keyOf } from '../../../test/support/instance-fixtures.js'
import { eventually, KEY, makeStore, NODE, renderTui, tick } from '../../../test/support/tui.js'
import type { InstanceRecord } from '../../core/model.js'
import type { AgentStore } from '../../core/store.js'
import type { TuiActions } from './actions.js'
import { App } from './App.js'

afterEach(() => {
  cleanup()
})

function put(store: AgentStore, ...records: InstanceRecord[]): void {
  for (const r of records) store.putInstance(keyOf(r), r)
  store.flush()
}

const check = { kind: 'http' as const, target: 'http://127.0.0.1:32768/health', interval: 1000, timeout: 2000, failuresBeforeCritical: 1, successesBeforePassing: 1, initialDelay: 0 }
const web = (name: string, extra: Parameters<typeof instanceRecord>[0] = {}) =>
  instanceRecord({ id: `${NODE}:${name}:80`, container: { id: `${name}0123456789`, name, image: 'busybox:1.36', port: 80, protocol: 'tcp' }, check, ...extra })
const cluster = () => [
  web('web-1'),
  web('web-2', { status: 'critical', health: { output: 'HTTP 503 in 4 ms' } }),
  instanceRecord({ service: 'api', node: 'node-b', id: 'node-b:api-1:80' }),
  instanceRecord({ service: 'db', node: 'node-b', id: 'ext-db', source: 'manual', status: 'warning', health: { output: 'slow' } }),
]
const line = (live: string, text: string) => live.split('\n').find((l) => l.startsWith(text))
const press = async (tui: { stdin: { write: (s: string) => void } }, ...keys: string[]) => {
  for (const key of keys) {
    tui.stdin.write(key)
    await tick(5)
  }
}

describe('App: views', () => {
  it('Given a cluster, When the TUI starts, Then Services come first: one row per service with healthy/total, warning, critical, nodes and a bar', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} color={false} />, { columns: 80 })
    put(store, ...cluster())
    await eventually(() => expect(tui.live()).toMatch(/^\[1 Services\] 2 Instances {2}3 Nodes {2}4 Events/m))
    expect(tui.live()).toMatch(/^SERVICE▲? +STATUS +HEALTHY +WARN +CRIT +NODES +HEALTH/m)
    expect(line(tui.live(), 'web ')).toMatch(/^web +critical +1\/2 +0 +1 +node-a +░+█+ *$/)
    expect(line(tui.live(), 'db ')).toMatch(/^db +warning +0\/1 +1 +0 +node-b +▒+ *$/)
    expect(line(tui.live(), 'api ')).toMatch(/^api +passing +1\/1 +0 +0 +node-b +█+ *$/)
    expect(tui.live()).toMatch(/^3 services 1 critical 1 warning · 4 instances$/m)
  })

  it('Given Services, When Enter on a service, Then its instances show (the tab says which); Esc, Then back to Services', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    put(store, ...cluster())
    await eventually(() => expect(tui.live()).toContain('web '))
    // When: the cursor to web (api, db, web by name) and Enter
    await press(tui, 'j', 'j', KEY.enter)
    await eventually(() => expect(tui.live()).toContain('[2 Instances › web]'))
    expect(tui.live()).toContain('web-1:80')
    expect(tui.live()).toContain('web-2:80')
    expect(tui.live()).not.toContain('api-1:80')
    expect(tui.live()).toMatch(/^1 passing 1 critical · 2 total, 2 here$/m)
    await press(tui, KEY.escape)
    await eventually(() => expect(tui.live()).toContain('[1 Services]'))
  })

  it('Given Instances, When s and S are pressed, Then the rows are sorted by the next column, then reversed, and the header marks it', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('ext-db'))
    const order = () => ['api-1:80', 'ext-db', 'web-1:80', 'web-2:80'].sort((a, b) => tui.live().indexOf(a) - tui.live().indexOf(b))
    expect(order()).toEqual(['api-1:80', 'ext-db', 'web-1:80', 'web-2:80'])
    // s × 4: service → instance → node → address → health
    await press(tui, 's', 's', 's', 's')
    await eventually(() => expect(tui.live()).toMatch(/HEALTH▲/))
    expect(order()).toEqual(['web-2:80', 'ext-db', 'api-1:80', 'web-1:80'])
    expect(tui.live()).toContain('sort health ▲')
    await press(tui, 'S')
    await eventually(() => expect(tui.live()).toMatch(/HEALTH▼/))
    expect(order()).toEqual(['api-1:80', 'web-1:80', 'ext-db', 'web-2:80'])
  })

  it('Given Nodes, When shown, Then one row per node with its role and counts, this agent marked; node records fill version, uptime and TTL', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    store.apply({ type: 'leader.changed', leader: 'node-b', term: '9', self: false })
    put(store, ...cluster())
    await press(tui, '3')
    await eventually(() => expect(tui.live()).toContain('[3 Nodes]'))
    expect(tui.live()).toMatch(/^NODE▲? +ROLE +VERSION +UP +TTL +INST +PASS +WARN +CRIT/m)
    expect(line(tui.live(), 'node-a ')).toMatch(/^node-a +member \(you\) +\? +\d+s +\? +2 +1 +0 +1 *$/)
    expect(line(tui.live(), 'node-b ')).toMatch(/^node-b +leader +\? +\? +\? +2 +1 +1 +0 *$/)
    expect(tui.live()).toMatch(/^2 nodes · leader node-b$/m)
    // Enter on a node: its instances
    await press(tui, 'j', KEY.enter)
    await eventually(() => expect(tui.live()).toContain('filter "node-b": 2 shown'))
  })

  it('Given Events, When t steps the type and a service is scoped, Then only those events show, newest first', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 100, rows: 24 }} />, { columns: 100 })
    put(store, ...cluster())
    store.apply({ type: 'etcd.connected', endpoints: ['http://127.0.0.1:23791'] })
    store.apply({ type: 'health.changed', service: 'web', id: `${NODE}:web-2:80`, from: 'passing', to: 'critical', output: 'HTTP 503 in 4 ms' })
    store.apply({ type: 'instance.removed', service: 'api', id: 'node-b:api-9:80', reason: 'container died' })
    store.flush()
    await press(tui, '4')
    await eventually(() => expect(tui.live()).toMatch(/^TIME +TYPE +SERVICE +EVENT/m))
    const rows = () => tui.live().split('\n').filter((l) => /^\d\d:\d\d:\d\d /.test(l))
    expect(rows().map((l) => l.split(/ +/)[1])).toEqual(['instance.removed', 'health.changed', 'etcd.connected'])
    await press(tui, 't')
    await eventually(() => expect(tui.live()).toContain('type health'))
    expect(rows()).toEqual([expect.stringMatching(/health\.changed +web +health web web-2:80: passing → critical/)])
    await press(tui, 't', 't', 't', 't', 't', 't')
    await eventually(() => expect(tui.live()).toContain('type all'))
    // Enter on the removal: the api service's instances, and its events only
    await press(tui, KEY.enter, '4')
    await eventually(() => expect(tui.live()).toContain('service api'))
    expect(rows().map((l) => l.split(/ +/)[1])).toEqual(['instance.removed'])
  })
})

describe('App: the detail pane', () => {
  function withHistory(store: AgentStore): void {
    for (const [i, latencyMs] of [3, 4, 5, 30, 4].entries()) store.apply({ type: 'check.result', service: 'web', id: `${NODE}:web-2:80`, status: i === 4 ? 'critical' : 'passing', latencyMs, slipMs: 0 })
    store.apply({ type: 'health.changed', service: 'web', id: `${NODE}:web-2:80`, from: 'passing', to: 'critical', output: 'HTTP 503 in 4 ms' })
    store.flush()
  }

  it('Given an 80-column terminal, When Enter on a critical instance, Then the pane replaces the list: record, check, sparkline, last failure, its events', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('web-2:80'))
    withHistory(store)
    await press(tui, 'j', 'j', 'j', KEY.enter)
    await eventually(() => expect(tui.live()).toMatch(/^web web-2:80 · critical for /m))
    const live = tui.live()
    expect(live).not.toMatch(/^SERVICE/m)
    expect(live).toMatch(/^address 127\.0\.0\.1:32768 · node node-a \(this node\) · source docker$/m)
    expect(live).toMatch(/^container web-2 · up ≥\d+[smhd] · port 80\/tcp$/m)
    expect(live).toMatch(/^image busybox:1\.36 · id web-20123456$/m)
    expect(live).toMatch(/^check http http:\/\/127\.0\.0\.1:32768\/health$/m)
    expect(live).toMatch(/^ {7}every 1s · timeout 2s · critical after 1, passing after 1$/m)
    expect(live).toMatch(/^results ▁▁▂█× last 4 ms critical · 3–30 ms · 1\/5 not passing$/m)
    expect(live).toMatch(/^last failure \d\d:\d\d:\d\d critical: HTTP 503 in 4 ms$/m)
    expect(live).toMatch(/^\d\d:\d\d:\d\d health web web-2:80: passing → critical \(HTTP 503 in 4 ms\)$/m)
    for (const l of live.split('\n')) expect(l.length).toBeLessThanOrEqual(80)
    // When Esc: the list is back
    await press(tui, KEY.escape)
    await eventually(() => expect(tui.live()).toMatch(/^SERVICE/m))
  })

  it('Given a 120-column terminal, When Enter on an instance, Then the pane opens beside the list, and follows the cursor', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 120, rows: 30 }} />, { columns: 120 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('ext-db'))
    await press(tui, KEY.enter)
    await eventually(() => expect(line(tui.live(), 'SERVICE ')).toMatch(/^SERVICE +INSTANCE .*│ api api-1:80 · passing for/))
    expect(line(tui.live(), 'api ')).toMatch(/^api +api-1:80 .*│ address 127\.0\.0\.1:32768 · node node-b · source docker$/)
    await press(tui, 'j')
    await eventually(() => expect(tui.live()).toContain('│ db ext-db · warning for'))
    for (const l of tui.live().split('\n')) expect(l.length).toBeLessThanOrEqual(120)
  })

  it('Given the pane open on an instance, When the instance is removed, Then the pane says it is gone instead of showing another', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('ext-db'))
    await press(tui, 'j', KEY.enter)
    await eventually(() => expect(tui.live()).toMatch(/^db ext-db · warning/m))
    store.removeInstance(keyOf(cluster()[3]))
    store.flush()
    await eventually(() => expect(tui.live()).toContain('db ext-db is gone from the registry (Esc closes)'))
  })
})

describe('App: actions', () => {
  it('Given a manual record, When d then y, Then deregister is called once with the record and its result is logged; n cancels', async () => {
    const store = makeStore()
    const deregister = vi.fn(async (r: InstanceRecord) => `deleted ${r.service}/${r.id}`)
    const actions: TuiActions = { deregister }
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} actions={actions} />, { columns: 80 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('ext-db'))
    await press(tui, 'j', 'd')
    await eventually(() => expect(tui.live()).toMatch(/^deregister db ext-db \(delete the record from the registry\)\? \[y\/N\]$/m))
    await press(tui, 'n')
    await eventually(() => expect(tui.live()).not.toContain('[y/N]'))
    expect(deregister).not.toHaveBeenCalled()
    await press(tui, 'd', 'y')
    await eventually(() => expect(tui.plain()).toMatch(/^\d\d:\d\d:\d\d deregistered db ext-db: deleted db\/ext-db$/m))
    expect(deregister).toHaveBeenCalledTimes(1)
    expect(deregister.mock.calls[0][0]).toMatchObject({ service: 'db', id: 'ext-db' })
    // And the Events view lists it as an action
    await press(tui, '4', 't', 't', 't', 't', 't', 't')
    await eventually(() => expect(tui.live()).toContain('type actions'))
    expect(tui.live()).toMatch(/action +db +deregistered db ext-db/)
  })

  it('Given a check that fails to run, When c then y, Then the error is logged in red words; a Docker record cannot be deregistered', async () => {
    const store = makeStore()
    const actions: TuiActions = { checkNow: async () => Promise.reject(new Error('no such container')) }
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 100, rows: 24 }} actions={actions} />, { columns: 100 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('web-1:80'))
    await press(tui, 'j', 'j', 'c')
    await eventually(() => expect(tui.live()).toContain('run the check of web web-1:80 now?'))
    await press(tui, 'y')
    await eventually(() => expect(tui.plain()).toMatch(/^\d\d:\d\d:\d\d run a check now web web-1:80 failed: no such container$/m))
    await press(tui, 'd')
    await eventually(() => expect(tui.plain()).toContain('web web-1:80 is a Docker record: its agent owns it'))
    await press(tui, 'm')
    await eventually(() => expect(tui.plain()).toContain('maintenance is not available in this agent yet'))
  })

  it('Given an instance, When a is pressed, Then its address is printed to the log (and handed to copy when given)', async () => {
    const store = makeStore()
    const copy = vi.fn(async () => 'copied')
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} actions={{ copy }} />, { columns: 80 })
    put(store, ...cluster())
    await press(tui, '2')
    await eventually(() => expect(tui.live()).toContain('api-1:80'))
    await press(tui, 'a')
    await eventually(() => expect(tui.plain()).toMatch(/^\d\d:\d\d:\d\d address of api api-1:80: 127\.0\.0\.1:32768 \(copied\)$/m))
    expect(copy).toHaveBeenCalledWith('127.0.0.1:32768')
  })
})
