import chalk from 'chalk'
import { cleanup } from 'ink-testing-library'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { instanceRecord, keyOf } from '../../../test/support/instance-fixtures.js'
import { eventually, KEY, liveRegion, makeStore, NODE, renderTui, stripAnsi, tick } from '../../../test/support/tui.js'
import type { InstanceRecord } from '../../core/model.js'
import type { AgentStore } from '../../core/store.js'
import { App } from './App.js'

afterEach(() => {
  cleanup()
})

function put(store: AgentStore, ...records: InstanceRecord[]): void {
  for (const r of records) store.putInstance(keyOf(r), r)
  store.flush()
}

function connect(store: AgentStore): void {
  store.apply({ type: 'docker.connected', host: 'unix:///var/run/docker.sock', reconnect: false })
  store.apply({ type: 'etcd.connected', endpoints: ['http://127.0.0.1:23791'] })
  store.flush()
}

/** The row under the cursor (drawn in reverse video), ANSI stripped. */
const cursorRow = (tui: { lastFrame: () => string | undefined }): string | undefined => {
  const line = (tui.lastFrame() ?? '').split('\n').find((l) => l.includes('\u001b[7m'))
  return line === undefined ? undefined : stripAnsi(line)
}

/** The table row of an instance (by its container name), or undefined. */
const rowOf = (live: string, name: string): string | undefined => live.split('\n').find((line) => line.includes(name))

const web = (name: string, extra: Parameters<typeof instanceRecord>[0] = {}) =>
  instanceRecord({ id: `${NODE}:${name}:80`, container: { id: name, name, image: 'busybox', port: 80, protocol: 'tcp' }, ...extra })

describe('App: the live table follows the store', () => {
  it('Given an empty registry, When instances are put, change health and are removed, Then rows appear, change and disappear', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    connect(store)
    // Given nothing registered
    await eventually(() => expect(tui.live()).toContain('no instances yet'))

    // When two instances are registered
    put(store, web('alpha'), web('beta', { port: 32999 }))
    // Then both rows appear, with address, health word and check output
    await eventually(() => expect(rowOf(tui.live(), 'alpha:80')).toMatch(/web\s+alpha:80\s+127\.0\.0\.1:32768\s+passing\s+HTTP 200 OK/))
    expect(rowOf(tui.live(), 'beta:80')).toContain('127.0.0.1:32999')
    expect(tui.live()).toMatch(/^2 passing · 2 total, 2 here$/m)

    // When one turns critical
    put(store, web('beta', { port: 32999, status: 'critical', health: { output: 'HTTP 404 in 2 ms' } }))
    // Then its row says so, and the summary counts it
    await eventually(() => expect(rowOf(tui.live(), 'beta:80')).toMatch(/critical\s+HTTP 404 in 2 ms/))
    expect(tui.live()).toMatch(/^1 passing 1 critical · 2 total, 2 here$/m)

    // When the other is removed
    store.removeInstance(keyOf(web('alpha')))
    store.flush()
    // Then its row is gone
    await eventually(() => expect(rowOf(tui.live(), 'alpha:80')).toBeUndefined())
    expect(rowOf(tui.live(), 'beta:80')).toBeDefined()
  })

  it("Given instances of other nodes, When shown at 120 columns, Then a NODE column says where each runs", async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 120, rows: 24 }} />, { columns: 120 })
    tui.stdin.write('2') // the Instances view
    put(store, web('mine'), instanceRecord({ node: 'node-b', id: 'node-b:theirs:80' }), instanceRecord({ node: 'node-b', id: 'ext-db', source: 'manual' }))
    await eventually(() => expect(tui.live()).toContain('theirs:80'))
    // Then the NODE column says where each runs (≥ 110 columns)
    expect(rowOf(tui.live(), 'theirs:80')).toMatch(/theirs:80\s+node-b\s/)
    expect(rowOf(tui.live(), 'ext-db')).toMatch(/ext-db\s+node-b\s/)
  })

  it("Given colour, When shown, Then this node's instances are bold and health words coloured; with NO_COLOR (color=false), Then no colour codes, only bold", async () => {
    // Ink's chalk decides colour from stdout; the test process is not a terminal, so force it on.
    const level = chalk.level
    chalk.level = 1
    try {
      const records = [web('mine'), web('sick', { status: 'critical' }), instanceRecord({ node: 'node-b', id: 'node-b:theirs:80' })]
      const store = makeStore()
      const coloured = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 120, rows: 24 }} />, { columns: 120 })
      coloured.stdin.write('2') // the Instances view
      put(store, ...records)
      store.apply({ type: 'error', message: 'something red' })
      store.flush()
      await eventually(() => expect(coloured.live()).toContain('theirs:80'))
      const raw = coloured.lastFrame()!.split('\n')
      expect(raw.find((l) => l.includes('mine:80'))).toContain('\u001b[1mmine:80')
      expect(raw.find((l) => l.includes('theirs:80'))).not.toContain('\u001b[1mtheirs:80')
      expect(raw.find((l) => l.includes('sick:80'))).toContain('\u001b[31mcritical')
      expect(raw.find((l) => l.includes('something red'))).toMatch(/\u001b\[31m\d\d:\d\d:\d\d error: something red/)

      const plainStore = makeStore()
      const plain = renderTui(<App store={plainStore} onQuit={() => {}} size={{ columns: 120, rows: 24 }} color={false} />, { columns: 120 })
      plain.stdin.write('2') // the Instances view
      put(plainStore, ...records)
      plainStore.apply({ type: 'error', message: 'something red' })
      plainStore.flush()
      await eventually(() => expect(plain.live()).toContain('theirs:80'))
      const sgr = [...plain.frames.join('\n').matchAll(/\u001b\[([0-9;]*)m/g)].map((m) => m[1])
      // Then only bold and reverse video (the cursor's row) on/off appear: no colours (3x, 9x, 38;…), no dim (2)
      expect(new Set(sgr)).toEqual(new Set(['1', '22', '7', '27']))
      expect(plain.lastFrame()!.split('\n').find((l) => l.includes('mine:80'))).toContain('\u001b[1mmine:80')
    } finally {
      chalk.level = level
    }
  })
})

describe('App: header', () => {
  it('Given no leader, When leadership changes, Then the leader line follows, with "(you)" when this agent leads', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    connect(store)
    await eventually(() => expect(tui.live()).toMatch(/^leader none elected$/m))
    // When another node leads
    store.apply({ type: 'leader.changed', leader: 'node-b', term: '41', self: false })
    store.flush()
    await eventually(() => expect(tui.live()).toMatch(/^leader node-b · term 41 · since \ds$/m))
    expect(tui.live()).not.toContain('(you)')
    // When this agent wins
    store.apply({ type: 'leader.changed', leader: NODE, term: '57', self: true })
    store.flush()
    await eventually(() => expect(tui.live()).toMatch(/^leader node-a \(you\) · term 57 · since \ds$/m))
  })

  it('Given Docker and etcd states, When they change, Then line 1 shows up/down, targets when wide, and the error while down', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 120, rows: 24 }} />, { columns: 120 })
    // Given starting up
    await eventually(() => expect(tui.live()).toMatch(/^discovery-agent · node node-a · docker ○ down connecting · etcd ○ down connecting$/m))
    // When both are up: the targets show, etcd's with the count of other endpoints
    connect(store)
    await eventually(() =>
      expect(tui.live()).toMatch(/^discovery-agent · node node-a · docker ● up unix:\/\/\/var\/run\/docker\.sock · etcd ● up http:\/\/127\.0\.0\.1:23791 \+1$/m),
    )
    // When etcd is lost
    store.apply({ type: 'etcd.disconnected', endpoints: [], error: 'connect ECONNREFUSED 127.0.0.1:23791', retryInMs: 4000 })
    store.flush()
    await eventually(() => expect(tui.live()).toMatch(/etcd ○ down connect ECONNREFUSED 127\.0\.0\.1:23791; retrying in 4s$/m))
  })

  it('Given an 80-column terminal and a long etcd error, When shown, Then the error is cut to fit and the states stay whole', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    store.apply({ type: 'docker.connected', host: 'unix:///var/run/docker.sock', reconnect: false })
    store.apply({ type: 'etcd.disconnected', endpoints: [], error: 'all endpoints failed: connect ECONNREFUSED 127.0.0.1:23791', retryInMs: 4000 })
    store.flush()
    await eventually(() => expect(tui.live()).toMatch(/^discovery-agent · node node-a · docker ● up · etcd ○ down all endpoints failed…$/m))
    expect(tui.live().split('\n')[0]).toHaveLength(79)
  })
})

describe('App: keys', () => {
  // The cursor's row is drawn in reverse video, which Ink's chalk emits only for a terminal: pretend to be one.
  const level = chalk.level
  beforeEach(() => {
    chalk.level = 1
  })
  afterEach(() => {
    chalk.level = level
  })

  it("Given instances, When '/' is pressed and text typed, Then only matches show; Enter keeps the filter, Esc clears it", async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    put(store, web('alpha'), web('beta'), instanceRecord({ service: 'api', id: `${NODE}:gamma:80` }))
    await eventually(() => expect(tui.live()).toContain('gamma:80'))
    // When filtering for "alp"
    tui.stdin.write('/')
    await eventually(() => expect(tui.live()).toMatch(/^filter: █ {2}Enter keeps · Esc clears$/m))
    for (const ch of 'alp') {
      tui.stdin.write(ch)
      await tick(5)
    }
    // Then only alpha shows while typing
    await eventually(() => expect(tui.live()).toContain('filter: alp█'))
    expect(tui.live()).toContain('alpha:80')
    expect(tui.live()).not.toContain('beta:80')
    expect(tui.live()).not.toContain('gamma:80')
    // When Enter keeps it
    tui.stdin.write(KEY.enter)
    await eventually(() => expect(tui.live()).toMatch(/filter "alp": 1 shown/))
    expect(tui.live()).not.toContain('beta:80')
    // When typing "q" now: it is a key again, not filter text
    // When Esc clears it
    tui.stdin.write(KEY.escape)
    await eventually(() => expect(tui.live()).toContain('beta:80'))
    expect(tui.live()).toContain('gamma:80')
    // A filter by service and by health word works too
    tui.stdin.write('/')
    for (const ch of 'api') tui.stdin.write(ch)
    tui.stdin.write(KEY.enter)
    await eventually(() => expect(tui.live()).toMatch(/filter "api": 1 shown/))
    expect(tui.live()).toContain('gamma:80')
  })

  it('Given a busy agent, When "/", a filter and Enter arrive in one read, Then they act as the separate keys they were', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    put(store, web('alpha'), web('beta'))
    await eventually(() => expect(tui.live()).toContain('beta:80'))
    tui.stdin.write('/alp\r')
    await eventually(() => expect(tui.live()).toMatch(/filter "alp": 1 shown/))
    expect(tui.live()).not.toContain('beta:80')
    expect(tui.live()).toMatch(/^Enter detail · \/ filter/m)
  })

  it("Given a filter that matches nothing, When shown, Then the table says so and how to get rows back", async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    put(store, web('alpha'))
    tui.stdin.write('/')
    for (const ch of 'zzz') tui.stdin.write(ch)
    await eventually(() => expect(tui.live()).toContain('no instance matches (Esc clears the filter)'))
  })

  it("Given passing and critical instances, When 'h' is pressed, Then only passing ones show; again, Then all", async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    put(store, web('ok-1'), web('sick-1', { status: 'critical' }), web('new-1', { status: 'unknown' }))
    await eventually(() => expect(tui.live()).toContain('sick-1:80'))
    tui.stdin.write('h')
    await eventually(() => expect(tui.live()).not.toContain('sick-1:80'))
    expect(tui.live()).not.toContain('new-1:80')
    expect(tui.live()).toContain('ok-1:80')
    expect(tui.live()).toMatch(/passing only: 1 shown/)
    tui.stdin.write('h')
    await eventually(() => expect(tui.live()).toContain('sick-1:80'))
  })

  it('Given more instances than rows, When j/k and arrows are pressed, Then the cursor moves a row and the window follows it, within bounds', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    put(store, ...Array.from({ length: 30 }, (_, i) => web(`c${String(i).padStart(2, '0')}`)))
    // Given 24 rows: 17 table rows (24 - 6 chrome - 1 table header)
    await eventually(() => expect(tui.live()).toContain('rows 1-17 of 30'))
    const firstRow = () => tui.live().split('\n')[4]
    expect(firstRow()).toContain('c00:80')
    expect(cursorRow(tui)).toContain('c00:80')
    // When j, ↓ twice and k: the cursor moves, the window stays
    for (const key of ['j', KEY.down, KEY.down, 'k']) tui.stdin.write(key)
    await eventually(() => expect(cursorRow(tui)).toContain('c02:80'))
    expect(firstRow()).toContain('c00:80')
    // When the cursor leaves the window at the bottom: the window moves one row
    for (let i = 0; i < 15; i++) tui.stdin.write('j')
    await eventually(() => expect(cursorRow(tui)).toContain('c17:80'))
    expect(firstRow()).toContain('c01:80')
    expect(tui.live()).toContain('rows 2-18 of 30')
    // When moved far past the end: it stops at the last row
    for (let i = 0; i < 40; i++) tui.stdin.write('j')
    await eventually(() => expect(tui.live()).toContain('rows 14-30 of 30'))
    expect(cursorRow(tui)).toContain('c29:80')
    // When k past the top
    for (let i = 0; i < 40; i++) tui.stdin.write('k')
    await eventually(() => expect(tui.live()).toContain('rows 1-17 of 30'))
    expect(firstRow()).toContain('c00:80')
    expect(cursorRow(tui)).toContain('c00:80')
  })

  it('Given the cursor on a row, When an instance is registered above it, Then the cursor stays on its instance', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2')
    put(store, web('b-1'), web('b-2'))
    await eventually(() => expect(tui.live()).toContain('b-2:80'))
    tui.stdin.write('j')
    await eventually(() => expect(cursorRow(tui)).toContain('b-2:80'))
    put(store, web('a-0'))
    await eventually(() => expect(tui.live()).toContain('a-0:80'))
    expect(cursorRow(tui)).toContain('b-2:80')
  })

  it("Given the table, When '?' is pressed, Then every key is listed in the table's place; again, Then the table is back", async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2')
    put(store, ...Array.from({ length: 30 }, (_, i) => web(`c${String(i).padStart(2, '0')}`)))
    await eventually(() => expect(tui.live()).toContain('rows 1-17 of 30'))
    tui.stdin.write('?')
    await eventually(() => expect(tui.live()).toMatch(/^q Ctrl\+C +quit gracefully/m))
    for (const key of ['1-4 Tab', 'j/k', 'Enter', 'Esc', 's S', 't ', 'c ', 'm ', 'd ', 'a ']) expect(tui.live()).toMatch(new RegExp(`^${key.replace(/[+?]/g, '\\$&')}`, 'm'))
    expect(tui.live()).not.toContain('c00:80')
    expect(tui.live().split('\n').length).toBeLessThanOrEqual(23)
    tui.stdin.write('?')
    await eventually(() => expect(tui.live()).not.toContain('quit gracefully'))
    expect(tui.live()).toContain('c00:80')
  })

  it("Given the TUI, When 'q' or Ctrl+C is pressed, Then onQuit is called (the lifecycle owner stops); 'q' typed into the filter is text", async () => {
    const store = makeStore()
    const onQuit = vi.fn()
    const tui = renderTui(<App store={store} onQuit={onQuit} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    // 'q' while editing the filter is filter text
    tui.stdin.write('/')
    await tick()
    tui.stdin.write('q')
    await eventually(() => expect(tui.live()).toContain('filter: q█'))
    expect(onQuit).not.toHaveBeenCalled()
    tui.stdin.write(KEY.escape)
    await eventually(() => expect(tui.live()).not.toContain('filter:'))
    // 'q' quits
    tui.stdin.write('q')
    await eventually(() => expect(onQuit).toHaveBeenCalledTimes(1))
    // Ctrl+C quits through the same owner (exitOnCtrlC is off)
    tui.stdin.write(KEY.ctrlC)
    await eventually(() => expect(onQuit).toHaveBeenCalledTimes(2))
  })
})

describe('App: fits the terminal', () => {
  /** A store in its worst state for width: long names everywhere, a long error, wide characters, IPv6. */
  function crowdedStore(): AgentStore {
    const store = makeStore({ node: 'a-node-name-that-goes-on-for-quite-a-while-really' })
    const node = 'a-node-name-that-goes-on-for-quite-a-while-really'
    store.apply({ type: 'docker.disconnected', host: 'unix:///var/run/docker.sock', error: 'connect ENOENT /var/run/docker.sock (is dockerd running?)', retryInMs: 8000 })
    store.apply({ type: 'etcd.disconnected', endpoints: [], error: 'all 3 endpoints failed: deadline exceeded after 5000 ms while waiting for a response', retryInMs: 16000 })
    store.apply({ type: 'leader.changed', leader: node, term: '7205759403792793600', self: true })
    store.apply({ type: 'container.problem', container: 'x'.repeat(90), label: 'discovery.check.interval', value: 'soon', reason: 'not a duration (use 250ms, 10s, 2m, 1h or seconds)' })
    store.apply({ type: 'error', message: `日本語のエラーメッセージ ${'🔥'.repeat(40)} tab\there newline\nthere` })
    const records = [
      instanceRecord({ node, id: `${node}:${'a-container-with-a-really-long-name-'.repeat(3)}:8080`, service: 'payments-api-gateway-internal-v2', port: 65535 }),
      instanceRecord({ node, id: `${node}:sick:80`, status: 'critical', health: { output: `HTTP 500 in 4999 ms, body does not match /${'x'.repeat(80)}/` } }),
      instanceRecord({ node: 'other-node', id: 'ext-v6', source: 'manual', address: 'fd00:1234:5678:9abc:def0:1234:5678:9abc', port: 443, status: 'warning', health: { output: 'HTTP 429 (too many requests)' } }),
      instanceRecord({ node, id: `${node}:wide:80`, service: 'wide', health: { output: '健康チェック成功 — 全部ОК ✓ 🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉' } }),
      ...Array.from({ length: 40 }, (_, i) => instanceRecord({ node, id: `${node}:filler-${i}:80`, service: `svc-${i}`, status: 'unknown', health: { output: 'not checked yet' } })),
    ]
    put(store, ...records)
    return store
  }

  const columnsOf = (line: string) => [...line].reduce((w, ch) => w + (/[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFF00-\uFF60\uFFE0-\uFFE6\u{1F300}-\u{1F64F}\u{1F900}-\u{1F9FF}]/u.test(ch) ? 2 : 1), 0)

  it.each([
    { columns: 80, rows: 24 },
    { columns: 120, rows: 40 },
    { columns: 60, rows: 20 },
    { columns: 40, rows: 12 },
  ])('Given a crowded store on $columns×$rows, When every key is pressed, Then no line of any frame is wider than the terminal and the live region is shorter than it', async ({ columns, rows }) => {
    const store = crowdedStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns, rows }} />, { columns, rows })
    await eventually(() => expect(tui.live()).toContain('SERVICE'))
    // Every view, the detail pane (beside the list when wide), confirmations, the help
    for (const key of ['?', 'j', 'j', KEY.pageDown, KEY.enter, 'j', '2', 'j', KEY.enter, 'c', 'y', 'j', 'd', 'n', 'a', KEY.escape, 's', 'S', '3', 'j', '4', 't', '1', 'h', 'h', '/', ...'a-very-long-filter-text-that-does-not-fit-in-the-line', KEY.enter, '?', KEY.escape, KEY.escape, '2']) {
      tui.stdin.write(key)
      await tick(2)
    }
    store.apply({ type: 'leader.changed', leader: 'someone-else-with-a-long-name-too-long-for-the-line-at-all', term: '7205759403792793601', self: false })
    store.apply({ type: 'agent.stopping', reason: 'q' })
    store.flush()
    await tick(30)
    const frames = tui.plainFrames()
    expect(frames.length).toBeGreaterThan(10)
    for (const frame of frames) {
      for (const line of frame.split('\n')) expect(columnsOf(line), `"${line}"`).toBeLessThanOrEqual(columns)
      expect(liveRegion(frame).split('\n').length).toBeLessThan(rows)
    }
  })

  it('Given no fixed size, When the terminal is resized, Then the layout follows the new width', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} />, { columns: 120, rows: 30 })
    tui.stdin.write('2') // the Instances view
    tui.resize(120, 30)
    put(store, web('resized'), instanceRecord({ node: 'node-b', id: 'node-b:remote:80' }))
    // Then at 120 columns the NODE column shows (one instance runs elsewhere)
    await eventually(() => expect(tui.live()).toMatch(/^SERVICE\s+INSTANCE\s+NODE\s+ADDRESS/m))
    // When narrowed to 80 columns
    tui.resize(80, 24)
    await eventually(() => expect(tui.live()).toMatch(/^SERVICE\s+INSTANCE\s+ADDRESS/m))
    expect(Math.max(...tui.live().split('\n').map((l) => l.length))).toBeLessThanOrEqual(80)
    // When very narrow
    tui.resize(50, 24)
    await eventually(() => expect(Math.max(...tui.live().split('\n').map((l) => l.length))).toBeLessThanOrEqual(50))
  })

  it('Given a log on screen, When the width changes, Then the recent entries are printed again at the new width (the presenter cleared the screen)', async () => {
    const store = makeStore()
    const tui = renderTui(<App store={store} onQuit={() => {}} />, { columns: 100, rows: 24 })
    tui.resize(100, 24)
    store.apply({ type: 'error', message: `a long error message ${'x'.repeat(80)}` })
    store.flush()
    const printed = () => tui.plain().split('\n').filter((l) => l.includes('a long error message'))
    await eventually(() => expect(printed()).toHaveLength(1))
    expect(printed()[0]).toHaveLength(99)
    // When narrowed: printed once more, cut to the new width
    tui.resize(60, 24)
    await eventually(() => expect(printed()).toHaveLength(2))
    expect(printed()[1]).toHaveLength(59)
    // and not again on later renders at that width
    store.apply({ type: 'error', message: 'another' })
    store.flush()
    await eventually(() => expect(tui.plain()).toContain('error: another'))
    expect(printed()).toHaveLength(2)
  })
})

describe('App: rendering cost', () => {
  it('Given a store coalescing at 50 ms, When 1000 events arrive in a burst, Then the store emits a few changes and Ink renders a few frames, not a thousand', async () => {
    const store = makeStore({ coalesceMs: 50 })
    let changes = 0
    store.subscribe(() => (changes += 1))
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    tui.stdin.write('2') // the Instances view
    connect(store)
    await tick(60)
    const framesBefore = tui.frames.length
    const changesBefore = changes
    // When: 1000 registrations, each an instance put and a logged event (as the agent and the registry mirror publish them)
    for (let i = 0; i < 1000; i++) {
      const r = web(`burst-${i}`)
      store.putInstance(keyOf(r), r)
      store.apply({ type: 'instance.registered', instance: r, latencyMs: 3 })
      if (i % 100 === 99) await tick(1) // spread over a few event-loop turns, like real I/O
    }
    await eventually(() => expect(tui.live()).toContain('1000 total'), 5000)
    await tick(120)
    // Then a few emissions and frames (a clock tick may add one frame a second)
    expect(changes - changesBefore).toBeLessThanOrEqual(5)
    expect(tui.frames.length - framesBefore).toBeLessThanOrEqual(8)
  })
})

describe('App: event log', () => {
  it('Given a log that keeps 5 entries, When 12 events arrive in separate renders, Then each is printed once, in order, even after the log is full', async () => {
    const store = makeStore({ logLimit: 5 })
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    for (let i = 1; i <= 12; i++) {
      store.apply({ type: 'error', message: `event number ${i}` })
      store.flush()
      await tick(5)
    }
    await eventually(() => expect(tui.plain()).toContain('event number 12'))
    const printed = tui.plain().split('\n').filter((l) => l.includes('event number'))
    expect(printed.map((l) => l.replace(/^\d\d:\d\d:\d\d error: /, ''))).toEqual(Array.from({ length: 12 }, (_, i) => `event number ${i + 1}`))
  })

  it('Given a log that keeps 5 entries, When 20 events arrive between two renders, Then the last 5 are printed after a line saying 15 were not shown', async () => {
    const store = makeStore({ logLimit: 5 })
    const tui = renderTui(<App store={store} onQuit={() => {}} size={{ columns: 80, rows: 24 }} />, { columns: 80 })
    store.apply({ type: 'error', message: 'first' })
    store.flush()
    await eventually(() => expect(tui.plain()).toContain('error: first'))
    for (let i = 1; i <= 20; i++) store.apply({ type: 'error', message: `burst ${i}` })
    store.flush()
    await eventually(() => expect(tui.plain()).toContain('burst 20'))
    const lines = tui.plain().split('\n')
    const note = lines.findIndex((l) => l.startsWith('… 15 more events'))
    expect(note).toBeGreaterThan(0)
    expect(lines.slice(note + 1, note + 6).map((l) => l.replace(/^\S+ error: /, ''))).toEqual(['burst 16', 'burst 17', 'burst 18', 'burst 19', 'burst 20'])
  })
})
