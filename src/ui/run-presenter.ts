import type { AgentStore } from '../core/store.js'
import { formatEventJson, formatEventLine } from './event-printers.js'
import type { OutputMode } from './output-mode.js'
import type { Theme } from './theme.js'

export interface Presenter {
  /** Resolves when the presenter has shut down (the TUI unmounted, lines flushed). */
  close(): Promise<void>
}

/**
 * Attaches the presenter for the output mode to the store: NDJSON lines, timestamped plain
 * lines, or the Ink TUI (loaded only here, so other commands never pay for React).
 */
export async function startPresenter(mode: OutputMode, store: AgentStore, theme: Theme, onQuit: () => void): Promise<Presenter> {
  if (mode === 'tty') {
    const [{ render }, { createElement }, { App }] = await Promise.all([import('ink'), import('react'), import('./tui/App.js')])
    const instance = render(createElement(App, { store, onQuit }), { exitOnCtrlC: false, maxFps: 10, patchConsole: true })
    return {
      close: async () => {
        store.flush()
        // Let the last frame (the "stopped" line) render before unmounting.
        await new Promise((resolve) => setTimeout(resolve, 150))
        instance.unmount()
        await instance.waitUntilExit().catch(() => undefined)
      },
    }
  }
  const write = (line: string | undefined): void => {
    if (line) process.stdout.write(`${line}\n`)
  }
  const listener =
    mode === 'json' ? (event: Parameters<typeof formatEventJson>[0]) => write(formatEventJson(event)) : (event: Parameters<typeof formatEventJson>[0]) => write(formatEventLine(event, theme))
  store.on('event', listener)
  return {
    close: async () => {
      store.off('event', listener)
    },
  }
}
