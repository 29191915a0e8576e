import { render } from 'ink-testing-library'
import type { ReactElement } from 'react'
import { AgentStore, type AgentStoreOptions } from '../../src/core/store.js'

/** Helpers for the TUI's component tests (src/ui/tui/*.test.tsx): a real AgentStore, a fake terminal of a chosen size. */

export const stripAnsi = (text: string): string => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\u001b\][^\u0007]*\u0007/g, '')

export const NODE = 'node-a'

export function makeStore(options: Partial<AgentStoreOptions> = {}): AgentStore {
  return new AgentStore({ node: NODE, dockerHost: 'unix:///var/run/docker.sock', etcdEndpoints: ['http://127.0.0.1:23791', 'http://127.0.0.1:23792'], ...options })
}

export type Rendered = ReturnType<typeof render> & {
  /** Every frame Ink wrote, ANSI stripped. */
  plainFrames: () => string[]
  /** The last frame, ANSI stripped. */
  plain: () => string
  /** The live region of the last frame (header to key line), without the event log above it. */
  live: () => string
  /** Sets the terminal size the fake stdout reports and tells listeners it changed. */
  resize: (columns: number, rows: number) => void
}

/**
 * ink-testing-library's render (debug mode: every render is one frame holding the event log
 * and the live region), with a fake terminal of `columns` × `rows` instead of its fixed 100
 * columns, so lines are laid out and wrapped as a real terminal of that size would.
 */
export function renderTui(tree: ReactElement, { columns = 100, rows = 24 }: { columns?: number; rows?: number } = {}): Rendered {
  const size = { columns, rows }
  const instance = render(tree)
  Object.defineProperty(instance.stdout, 'columns', { get: () => size.columns, configurable: true })
  Object.defineProperty(instance.stdout, 'rows', { get: () => size.rows, configurable: true })
  // Lay out again at the new width (Ink reads stdout.columns on every layout).
  instance.rerender(tree)
  const plainFrames = () => instance.frames.map(stripAnsi)
  const plain = () => stripAnsi(instance.lastFrame() ?? '')
  return {
    ...instance,
    plainFrames,
    plain,
    live: () => liveRegion(plain()),
    resize: (c, r) => {
      size.columns = c
      size.rows = r
      instance.stdout.emit('resize')
    },
  }
}

/** The live region of a frame: from the last header line on. */
export function liveRegion(frame: string): string {
  const lines = frame.split('\n')
  const start = lines.findLastIndex((line) => line.startsWith('discovery-agent · '))
  return start < 0 ? '' : lines.slice(start).join('\n')
}

/** Polls until `check` passes (a throw or false means not yet), up to `timeoutMs`. */
export async function eventually<T>(check: () => T, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const value = check()
      if (value !== false) return value
      if (Date.now() > deadline) throw new Error('condition still false')
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms))

export const KEY = { enter: '\r', escape: '\u001b', down: '\u001b[B', up: '\u001b[A', pageDown: '\u001b[6~', ctrlC: '\u0003', backspace: '\u007f' } as const
