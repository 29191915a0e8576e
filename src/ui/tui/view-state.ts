import type { Key } from 'ink'

/** What the user chose to see: the filter (and whether it is being typed), passing-only, scroll, help. */
export interface ViewState {
  filter: string
  editing: boolean
  healthyOnly: boolean
  offset: number
  help: boolean
}

export const INITIAL_VIEW: ViewState = { filter: '', editing: false, healthyOnly: false, offset: 0, help: false }

/** Table rows on screen and the largest scroll offset, at the time of the key press. */
export interface ScrollBounds {
  rows: number
  maxOffset: number
}

/**
 * The next view for one key press, and whether it asks to quit. Pure, and applied to the
 * latest view (not the one of the last render), so keys typed faster than frames, or pasted,
 * all count: `/` then `q` in quick succession filters for "q" rather than quitting.
 */
export function viewAfterKey(view: ViewState, input: string, key: Partial<Key>, bounds: ScrollBounds): { view: ViewState; quit: boolean } {
  if ([...input].length > 1 && !key.ctrl && !key.meta) {
    // Several keys in one read (typed while the event loop was busy, or pasted) arrive as one
    // input: "/web\r" is '/', 'w', 'e', 'b', Enter, not an unknown key.
    let result = { view, quit: false }
    for (const char of input) {
      result = viewAfterKey(result.view, ...keyOf(char), bounds)
      if (result.quit) break
    }
    return result
  }
  const next = (patch: Partial<ViewState>) => ({ view: { ...view, ...patch }, quit: false })
  if (key.ctrl && input === 'c') return { view, quit: true }
  if (view.editing) {
    if (key.return) return next({ editing: false })
    if (key.escape) return next({ editing: false, filter: '', offset: 0 })
    if (key.backspace || key.delete) return next({ filter: view.filter.slice(0, -1), offset: 0 })
    const text = key.ctrl || key.meta ? '' : input.replace(/[\u0000-\u001f\u007f]/g, '')
    return text ? next({ filter: view.filter + text, offset: 0 }) : { view, quit: false }
  }
  const current = Math.min(view.offset, bounds.maxOffset)
  const scrollTo = (to: number) => next({ offset: Math.max(0, Math.min(bounds.maxOffset, to)) })
  if (input === 'q') return { view, quit: true }
  if (input === '/') return next({ editing: true })
  if (input === 'h') return next({ healthyOnly: !view.healthyOnly, offset: 0 })
  if (input === '?') return next({ help: !view.help })
  if (key.escape) return next({ help: false, filter: '', offset: 0 })
  if (input === 'j' || key.downArrow) return scrollTo(current + 1)
  if (input === 'k' || key.upArrow) return scrollTo(current - 1)
  if (key.pageDown || input === ' ') return scrollTo(current + bounds.rows)
  if (key.pageUp) return scrollTo(current - bounds.rows)
  if (key.home || input === 'g') return scrollTo(0)
  if (key.end || input === 'G') return scrollTo(bounds.maxOffset)
  return { view, quit: false }
}

/** One character of a multi-key read as Ink would have reported it alone. */
function keyOf(char: string): [string, Partial<Key>] {
  switch (char) {
    case '\r':
    case '\n':
      return ['', { return: true }]
    case '\u007f':
    case '\b':
      return ['', { backspace: true }]
    case '\u001b':
      return ['', { escape: true }]
    case '\t':
      return ['', { tab: true }]
    case '\u0003':
      return ['c', { ctrl: true }]
    default:
      return [char, {}]
  }
}
