import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, waitFor } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { docker, TuiTestFile, type TmuxSession, type WatchTerminal } from '../support/tmux.js'

/**
 * `watch` in a real terminal (tmux, 80×24) against the real dockerd and the 3-member etcd.
 * Other tests run containers on the same dockerd at the same time and this agent registers
 * them too (default exposure), so the TUI is filtered to this file's tag and every assertion
 * looks only at this file's rows. With DISCOVERY_TUI_CAPTURES=<dir> it also writes each view's
 * screen there (docs/tui.md's captures come from these runs).
 */
const env = testEnv()
const file = new TuiTestFile('tui', 't')
const { tag, prefix, node, name, run } = file
let watch: WatchTerminal
let term: TmuxSession

const screen = (columns?: number): Promise<string> => watch.screen(columns)
const waitForScreen = (what: string, check: (text: string) => boolean, timeoutMs?: number): Promise<string> => watch.waitForScreen(what, check, timeoutMs)
const capture = (view: string, text: string): void => watch.capture(view, text)

/** The table row of one of this file's containers on the current screen (below the last header). */
async function row(short: string): Promise<string | undefined> {
  const lines = (await screen()).split('\n')
  const live = lines.slice(lines.findLastIndex((l) => l.startsWith('discovery-agent · ')))
  return live.find((l) => l.includes(`${name(short)}:80`))
}

const waitForRow = async (short: string, what: string, check: (line: string | undefined) => boolean, timeoutMs = 30_000): Promise<string> => {
  let found: string | undefined
  await waitForScreen(what, () => true, 1) // fails fast with the screen when it has wrapped lines
  await waitForScreen(what, (text) => {
    const lines = text.split('\n')
    found = lines.slice(lines.findLastIndex((l) => l.startsWith('discovery-agent · '))).find((l) => l.includes(`${name(short)}:80`))
    return check(found)
  }, timeoutMs)
  return found ?? 'gone'
}

beforeAll(async () => {
  // Given a container running before the agent starts (the image is local: nothing is pulled)
  await run('before')
  watch = await file.start(80, 24)
  term = watch.term
})

afterAll(() => file.end())

describe('watch in a real 80×24 terminal', () => {
  it('Given the agent started, When it is up, Then the header shows the node, Docker and etcd up, and this agent as leader', async () => {
    const text = await waitForScreen('the header with docker and etcd up', (t) => t.includes(`discovery-agent · node ${node} · docker ● up · etcd ● up`))
    // Services first: the view tabs, then one row per service
    expect(text).toMatch(/^\[1 Services\] 2 Instances {2}3 Nodes {2}4 Events/m)
    expect(text).toMatch(/^SERVICE▲? +STATUS +HEALTHY +WARN +CRIT +NODES +HEALTH/m)
    // Alone in its (unique) prefix, it is elected
    await waitForScreen('this agent leading', (t) => new RegExp(`^leader ${node} \\(you\\) · term \\d+ · since \\d+[smh]$`, 'm').test(t))
  })

  it("Given other tests' containers on the same daemon, When this file's tag is typed into the filter, Then the view is narrowed to it", async () => {
    await term.type('2')
    await waitForScreen('the Instances view', (t) => /^SERVICE +INSTANCE +ADDRESS +HEALTH +CHECK +AGE$/m.test(t))
    await term.type('/')
    await term.type(tag)
    await term.press('Enter')
    const text = await waitForScreen('the filter in the summary', (t) => t.includes(`filter "${tag}"`))
    // Then every row shown is one of this file's (or none yet)
    const lines = text.split('\n')
    const rows = lines.slice(lines.findIndex((l) => l.startsWith('SERVICE ')) + 1, lines.findIndex((l) => /^\d+ passing\b/.test(l)))
    for (const line of rows) expect(line.includes(tag) || line.startsWith('no instance')).toBe(true)
  })

  it('Given a container running before the agent, When the first resync has run, Then its row shows it passing, with its published address', async () => {
    const port = (await docker(['port', name('before'), '80/tcp'])).split('\n')[0].split(':').pop()
    const line = await waitForRow('before', 'the pre-existing container row', (l) => l?.includes('passing') ?? false)
    expect(line).toMatch(new RegExp(`^busybox +${name('before')}:80 +127\\.0\\.0\\.1:${port} +passing +no check +\\d+[smh]$`))
  })

  it('Given the running TUI, When a container starts, Then its row appears; When another stops, Then its row disappears', async () => {
    // When a new container starts
    await run('new')
    await waitForRow('new', 'the new container row', (l) => l?.includes('passing') ?? false)
    // When the first one stops
    await docker(['stop', '-t', '1', name('before')])
    await waitForRow('before', 'the stopped container row to go', (l) => l === undefined)
    expect(await row('new')).toBeDefined()
    // and the log above the table says so
    await waitForScreen('the removal in the log', (t) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d removed busybox ${name('before')}:80 \\(`, 'm').test(t))
  })

  it('Given a container with a 1 s HTTP check, When its health file is removed, Then its row turns critical', async () => {
    await run('health', ['-l', 'discovery.check.http=/health', '-l', 'discovery.check.interval=1s', '-l', 'discovery.check.failures=1'])
    // Then it is checked and passing
    const passing = await waitForRow('health', 'the checked container passing', (l) => /passing +HTTP 200/.test(l ?? ''))
    expect(passing).toMatch(/passing +HTTP 200 in \d+ ms/)
    // When /health starts answering 404
    await docker(['exec', name('health'), 'rm', '/www/health'])
    // Then the row says critical with the reason
    const critical = await waitForRow('health', 'the container critical', (l) => /critical +HTTP 404/.test(l ?? ''))
    expect(critical).toContain('critical')
    await waitForScreen('the health change in the log', (t) => t.includes(`health busybox ${name('health')}:80: passing → critical`))
  })

  it('Given the running agent, When the views are switched, Then Services, Nodes and Events show this cluster, each in words', async () => {
    // Services (filtered by this file's tag): busybox with one passing and one critical instance
    await term.type('1')
    capture('services', await waitForScreen('the busybox service row', (t) => /^busybox +critical +1\/2 +0 +1 /m.test(t)))
    // Nodes: this agent, leading
    await term.type('3')
    capture('nodes', await waitForScreen('this node in Nodes', (t) => new RegExp(`^${node} +leader \\(you\\) +\\d+\\.\\d+\\.\\d+ +\\d+[smh] +\\d+s +\\d+ `, 'm').test(t)))
    // Events: the health change, with its type and service
    await term.type('4')
    // (cut at 80 columns: the event's words begin "health busybox <instance>: passing → critical")
    capture('events', await waitForScreen('the health change in Events', (t) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d health\\.changed +busybox +health busybox ${name('health')}:80: passin`, 'm').test(t)))
    await term.type('2')
    capture('instances', await waitForScreen('the Instances view again', (t) => t.includes('[2 Instances]')))
  })

  it('Given the critical instance, When Enter opens its detail pane, Then the record, the check, its results and the failure output show; a and d act and log', async () => {
    // Narrowed to the one instance, so the cursor is on it (each Escape is waited out: an Escape
    // and the next key arriving together would read as Alt+key)
    await term.press('Escape')
    await waitForScreen('the filter cleared', (t) => !t.includes('filter "'))
    await term.type('/')
    await term.type(name('health'))
    await term.press('Enter')
    await waitForRow('health', 'the one critical row', (l) => /critical/.test(l ?? ''))
    await term.press('Enter')
    const pane = await waitForScreen('the detail pane', (t) => new RegExp(`^busybox ${name('health')}:80 · critical for \\d+[smh]$`, 'm').test(t))
    expect(pane).toMatch(new RegExp(`^address 127\\.0\\.0\\.1:\\d+ · node ${node} \\(this node\\) · source docker$`, 'm'))
    expect(pane).toMatch(new RegExp(`^container ${name('health')} · up ≥\\d+[smh] · port 80/tcp$`, 'm'))
    expect(pane).toContain(`image ${env.image} · id `)
    expect(pane).toMatch(/^check http http:\/\/127\.0\.0\.1:\d+\/health$/m)
    expect(pane).toMatch(/^ {7}every 1s · timeout \d+m?s · critical after 1, passing after 1$/m)
    await waitForScreen('check results with a failure', (t) => /^results [▁▂▃▄▅▆▇█×]*× last \d+ ms critical · \d+–\d+ ms · \d+\/\d+ not passing$/m.test(t))
    expect(await screen()).toMatch(/^last failure \d\d:\d\d:\d\d critical: HTTP 404 in \d+ ms \(expected 200-399\)$/m)
    capture('detail', await screen())
    expect(await screen()).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d health busybox ${name('health')}:80: passing → critical`, 'm'))
    // a prints the address to the log; d refuses a Docker record, in words
    const port = (await docker(['port', name('health'), '80/tcp'])).split('\n')[0].split(':').pop()
    await term.type('a')
    await waitForScreen('the address in the log', (t) => t.includes(`address of busybox ${name('health')}:80: 127.0.0.1:${port} (`))
    await term.type('d')
    await waitForScreen('the refusal in the log', (t) => t.includes(`busybox ${name('health')}:80 is a Docker record`))
    // c runs its check now (after a confirmation) and logs the result; m puts it into maintenance and back
    await term.type('c')
    await waitForScreen('the check confirmation', (t) => /\[y\/N\]/.test(t))
    await term.type('y')
    await waitForScreen('the check result in the log', (t) => /critical in \d+ ms: HTTP 404/.test(t))
    await term.type('m')
    await waitForScreen('the maintenance confirmation', (t) => /\[y\/N\]/.test(t))
    await term.type('y')
    await waitForScreen('in maintenance', (t) => t.includes('in maintenance'))
    await waitForScreen('the record in maintenance', (t) => new RegExp(`^busybox ${name('health')}:80 · maintenance`, 'm').test(t))
    await term.type('m')
    await waitForScreen('the second confirmation', (t) => /\[y\/N\]/.test(t))
    await term.type('y')
    await waitForScreen('back in rotation', (t) => t.includes('back in rotation'))
    // Esc closes the pane, Esc clears the filter; the tag filter is put back for what follows
    await term.press('Escape')
    await waitForScreen('the list again', (t) => /^SERVICE +INSTANCE/m.test(t))
    await term.press('Escape')
    await waitForScreen('the filter cleared', (t) => !t.includes('filter "'))
    await term.type('/')
    await term.type(tag)
    await term.press('Enter')
    await waitForScreen('the tag filter again', (t) => t.includes(`filter "${tag}"`))
  })

  it('Given the TUI, When the terminal is resized to 120×40 and back, Then the layout follows (the connection targets when wide) and nothing wraps', async () => {
    const wideHeader = `docker ● up ${env.dockerHost} · etcd ● up ${env.etcdEndpoints[0]} +2`
    await term.resize(120, 40)
    await waitFor(async () => (await screen(120)).includes(wideHeader), 15_000, 'the 120-column header', 200)
    // the full check output fits now
    expect(await screen(120)).toMatch(new RegExp(`${name('health')}:80 +127\\.0\\.0\\.1:\\d+ +critical +HTTP 404 in \\d+ ms \\(expected 200-399\\)`))
    // Wide: Enter opens the detail pane beside the list (the cursor is on the first row, the critical one)
    await term.press('Enter')
    await waitFor(async () => new RegExp(`│ busybox ${name('health')}:80 · critical for`).test(await screen(120)), 15_000, 'the pane beside the list', 200)
    expect(await screen(120)).toMatch(/^SERVICE +INSTANCE .*│ /m)
    await term.press('Escape')
    await waitFor(async () => !(await screen(120)).includes('│ '), 15_000, 'the pane closed', 200)
    await term.resize(80, 24)
    // Until the view redraws, tmux shows the wide screen's lines rewrapped: wait for the redraw
    // without judging widths, then judge them
    await waitFor(async () => (await term.capture()).includes(`node ${node} · docker ● up · etcd ● up\n`), 15_000, 'the 80-column header again', 200)
    await waitForScreen('the 80-column screen', (t) => t.includes(`node ${node} · docker ● up · etcd ● up\n`))
    // The screen was cleared and redrawn: exactly one live view, no fragments of the wide one
    const text = await screen()
    expect(text.split('\n').filter((l) => l.startsWith('discovery-agent · '))).toHaveLength(1)
    expect(text).not.toContain(wideHeader)
  })

  it("Given the TUI, When 'q' is pressed, Then watch exits 0 and this node's instances are gone from etcd at once", async () => {
    // Given this node's instances are registered
    const before = await etcdctl(['get', '--prefix', '--keys-only', `${prefix}/services/`])
    expect(before).toContain(`${node}:${name('new')}:80`)
    // When q
    await term.press('q')
    const exit = await waitFor(() => watch.exitLine(), 30_000, 'watch to exit')
    expect(exit).toBe('EXIT=0')
    // Then no instance of this node is left (the lease was revoked, not left to expire)
    const after = await etcdctl(['get', '--prefix', '--keys-only', `${prefix}/services/`])
    expect(after.split('\n').filter((key) => key.includes(`/${node}:`))).toEqual([])
    expect(await screen()).toContain("stopped; this node’s instances are gone")
  })
})
