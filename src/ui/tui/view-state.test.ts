import { describe, expect, it } from 'vitest'
import { INITIAL_VIEW, viewAfterKey, type ViewState } from './view-state.js'

const bounds = { rows: 18, maxOffset: 12 }
/** Presses keys in turn, each on the view the last one left. */
function press(keys: Array<[string, Record<string, boolean>?]>, from: ViewState = INITIAL_VIEW) {
  let view = from
  let quit = false
  for (const [input, key] of keys) {
    const result = viewAfterKey(view, input, key ?? {}, bounds)
    view = result.view
    quit ||= result.quit
  }
  return { view, quit }
}

describe('viewAfterKey', () => {
  it.each<{ name: string; keys: Array<[string, Record<string, boolean>?]>; view?: Partial<ViewState>; quit?: boolean }>([
    { name: 'q', keys: [['q']], quit: true },
    { name: 'Ctrl+C', keys: [['c', { ctrl: true }]], quit: true },
    { name: 'Ctrl+C while typing a filter', keys: [['/'], ['c', { ctrl: true }]], quit: true },
    { name: '/ then q typed at once (q is filter text)', keys: [['/'], ['q']], view: { editing: true, filter: 'q' }, quit: false },
    { name: 'a pasted filter', keys: [['/'], ['web-1'], ['', { return: true }]], view: { editing: false, filter: 'web-1' } },
    { name: 'backspace in the filter', keys: [['/'], ['ab'], ['', { backspace: true }]], view: { filter: 'a' } },
    { name: 'Esc while typing', keys: [['/'], ['ab'], ['', { escape: true }]], view: { editing: false, filter: '' } },
    { name: 'Esc after Enter clears the filter and help', keys: [['/'], ['ab'], ['', { return: true }], ['?'], ['', { escape: true }]], view: { filter: '', help: false } },
    { name: 'control characters typed into the filter', keys: [['/'], ['a\u0007b']], view: { filter: 'ab' } },
    { name: 'h twice', keys: [['h'], ['h']], view: { healthyOnly: false } },
    { name: 'h', keys: [['h']], view: { healthyOnly: true } },
    { name: '?', keys: [['?']], view: { help: true } },
    { name: 'j j ↓ k', keys: [['j'], ['j'], ['', { downArrow: true }], ['k']], view: { offset: 2 } },
    { name: 'k at the top', keys: [['k'], ['', { upArrow: true }]], view: { offset: 0 } },
    { name: 'PgDn twice (stops at the last page)', keys: [['', { pageDown: true }], ['', { pageDown: true }]], view: { offset: 12 } },
    { name: 'End then PgUp', keys: [['', { end: true }], ['', { pageUp: true }]], view: { offset: 0 } },
    { name: 'G then g', keys: [['G'], ['g']], view: { offset: 0 } },
    { name: 'j then h (the view changed: back to the top)', keys: [['j'], ['h']], view: { offset: 0, healthyOnly: true } },
    { name: 'an unknown key', keys: [['x']], view: INITIAL_VIEW },
    { name: '"/web" in one read (typed while the agent was busy)', keys: [['/web']], view: { editing: true, filter: 'web' } },
    { name: '"/web\\r" in one read', keys: [['/web\r']], view: { editing: false, filter: 'web' } },
    { name: '"/we\\u007fb" in one read', keys: [['/we\u007fb']], view: { filter: 'wb' } },
    { name: '"jjj" in one read', keys: [['jjj']], view: { offset: 3 } },
    { name: '"/q" in one read (q is filter text)', keys: [['/q']], view: { filter: 'q' }, quit: false },
    { name: '"jq" in one read', keys: [['jq']], quit: true },
  ])('Given $name, Then the view and quit are as expected', ({ keys, view, quit }) => {
    const result = press(keys)
    if (view) expect(result.view).toMatchObject(view)
    expect(result.quit).toBe(quit ?? false)
  })

  it('Given an offset beyond a list that shrank, When k is pressed, Then it scrolls from the last page, not from the stale offset', () => {
    expect(viewAfterKey({ ...INITIAL_VIEW, offset: 40 }, 'k', {}, bounds).view.offset).toBe(11)
  })
})
