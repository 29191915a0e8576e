import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, waitFor } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { docker, TuiTestFile, type TmuxSession, type WatchTerminal } from '../support/tmux.js'

/**
 * `watch` on a big screen: a real 200×50 terminal (tmux) against the real dockerd and etcd.
 * Views switch, the detail pane opens beside the list on a critical instance with its failing
 * check's output and history, a check runs now, maintenance goes on and off, and `q` quits
 * gracefully. Filtered to this file's tag (other tests' containers share the daemon).
 *
 * With DISCOVERY_TUI_CAPTURES=<dir> it also writes each view's screen there (docs/tui.md's
 * captures come from these runs).
 */
const COLUMNS = 200
const ROWS = 50
const env = testEnv()
const file = new TuiTestFile('tuiw', 'w')
const { tag, prefix, node, name, run } = file
let watch: WatchTerminal
let term: TmuxSession

const screen = (): Promise<string> => watch.screen()
const waitForScreen = (what: string, check: (text: string) => boolean, timeoutMs?: number): Promise<string> => watch.waitForScreen(what, check, timeoutMs)
const capture = (view: string, text: string): void => watch.capture(view, text)

beforeAll(async () => {
  await run('ok')
  await run('ok2')
  await run('sick', ['-l', 'discovery.check.http=/health', '-l', 'discovery.check.interval=1s', '-l', 'discovery.check.failures=1'])
  watch = await file.start(COLUMNS, ROWS)
  term = watch.term
})

afterAll(() => file.end())

describe('watch in a real 200×50 terminal', () => {
  it('Given the agent with a passing and a critical instance, When the views are switched, Then each shows this cluster with the wide columns, in words', async () => {
    // The wide header names the Docker host and the etcd endpoints
    await waitForScreen('the wide header', (t) => t.includes(`discovery-agent · node ${node} · docker ● up ${env.dockerHost} · etcd ● up ${env.etcdEndpoints[0]} +2`))
    await term.type('/')
    await term.type(tag)
    await term.press('Enter')
    // Instances: both rows; the failing check's whole output fits
    await term.type('2')
    await waitForScreen('the checked row passing', (t) => new RegExp(`^busybox +${name('sick')}:80 +127\\.0\\.0\\.1:\\d+ +passing +HTTP 200`, 'm').test(t))
    await docker(['exec', name('sick'), 'rm', '/www/health'])
    const instances = await waitForScreen('a passing and a critical row', (t) =>
      new RegExp(`^busybox +${name('ok')}:80 +127\\.0\\.0\\.1:\\d+ +passing +no check`, 'm').test(t) &&
      new RegExp(`^busybox +${name('sick')}:80 +127\\.0\\.0\\.1:\\d+ +critical +HTTP 404 in \\d+ ms \\(expected 200-399\\)`, 'm').test(t))
    capture('instances', instances)
    // Services: busybox, 2 of 3 healthy, one critical
    await term.type('1')
    capture('services', await waitForScreen('the busybox service row', (t) => /^busybox +critical +2\/3 +0 +1 /m.test(t)))
    // Nodes: this agent, leading
    await term.type('3')
    capture('nodes', await waitForScreen('this node leading', (t) => new RegExp(`^${node} +leader \\(you\\) +\\d+\\.\\d+\\.\\d+ +\\d+[smh] +\\d+s +\\d+ `, 'm').test(t)))
    // Events: the health change, not cut at this width
    await term.type('4')
    capture('events', await waitForScreen('the health change in Events', (t) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d health\\.changed +busybox +health busybox ${name('sick')}:80: passing → critical \\(HTTP 404`, 'm').test(t)))
  })

  it('Given the critical instance, When Enter opens its pane beside the list, Then its check, results and failure output show; c checks now, m toggles maintenance', async () => {
    await term.type('2')
    await waitForScreen('the Instances view', (t) => t.includes('[2 Instances]'))
    await term.press('Escape')
    await waitForScreen('the filter cleared', (t) => !t.includes('filter "'))
    await term.type('/')
    await term.type(name('sick'))
    await term.press('Enter')
    await waitForScreen('the one critical row', (t) => new RegExp(`^busybox +${name('sick')}:80 .*critical`, 'm').test(t))
    await term.press('Enter')
    const pane = await waitForScreen('the pane beside the list', (t) => new RegExp(`│ busybox ${name('sick')}:80 · critical for \\d+[smh]`).test(t) && /│ last failure \d\d:\d\d:\d\d critical: HTTP 404/.test(t))
    expect(pane).toMatch(/^SERVICE +INSTANCE .*│ /m)
    expect(pane).toMatch(/│ check http http:\/\/127\.0\.0\.1:\d+\/health/)
    await waitForScreen('results with a failure', (t) => /│ results [▁▂▃▄▅▆▇█×]*× last \d+ ms critical/.test(t))
    capture('detail', await screen())
    // c: confirm, then the result in the log
    await term.type('c')
    await waitForScreen('the check confirmation', (t) => /\[y\/N\]/.test(t))
    await term.type('y')
    await waitForScreen('the check result in the log', (t) => /critical in \d+ ms: HTTP 404/.test(t))
    // m: into maintenance and back
    await term.type('m')
    await waitForScreen('the maintenance confirmation', (t) => /\[y\/N\]/.test(t))
    await term.type('y')
    await waitForScreen('the pane in maintenance', (t) => new RegExp(`│ busybox ${name('sick')}:80 · maintenance`).test(t))
    await term.type('m')
    await waitForScreen('the second confirmation', (t) => /\[y\/N\]/.test(t))
    await term.type('y')
    await waitForScreen('back in rotation', (t) => t.includes('back in rotation'))
    await term.type('?')
    capture('help', await waitForScreen('the key help', (t) => /quit/.test(t) && /maintenance/.test(t)))
    await term.press('Escape')
    await waitForScreen('the help closed', (t) => !t.includes('every key; ? or Esc closes'))
  })

  it("Given the TUI, When 'q' is pressed, Then watch exits 0 and this node's instances are gone from etcd at once", async () => {
    await term.press('Escape')
    // Escape and q arriving together would read as Alt+q
    await waitForScreen('the pane closed', (t) => !t.includes('│ '))
    await term.press('q')
    const exit = await waitFor(() => watch.exitLine(), 30_000, 'watch to exit')
    expect(exit).toBe('EXIT=0')
    const after = await etcdctl(['get', '--prefix', '--keys-only', `${prefix}/services/`])
    expect(after.split('\n').filter((key) => key.includes(`/${node}/`))).toEqual([])
  })
})
