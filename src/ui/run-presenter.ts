import type { AgentStore } from '../core/store.js'
import type { TuiActions } from './tui/actions.js'
import { formatEventJson, formatEventLine } from './event-printers.js'
import type { OutputMode } from './output-mode.js'
import type { Theme } from './theme.js'

export interface Presenter {
  /** Resolves when the presenter has shut down (the TUI unmounted, lines flushed). */
  close(): Promise<void>
}

export interface PresenterOptions {
  /** What the TUI may ask of the agent (run a check, maintenance, deregister); those not given say "not available". */
  actions?: TuiActions
}

/**
 * Attaches the presenter for the output mode to the store: NDJSON lines, timestamped plain
 * lines, or the Ink TUI (loaded only here, so other commands never pay for React).
 */
export async function startPresenter(mode: OutputMode, store: AgentStore, theme: Theme, onQuit: () => void, options: PresenterOptions = {}): Promise<Presenter> {
  if (mode === 'tty') {
    const [{ render }, { createElement }, { App }, { CheckHistory }] = await asLoadedForTheTerminal(() =>
      Promise.all([import('ink'), import('react'), import('./tui/App.js'), import('./tui/check-history.js')]),
    )
    // Check results are kept from now on, before the first frame (the detail pane's history).
    const history = new CheckHistory()
    const detach = history.attach(store)
    // The clipboard through the terminal (OSC 52): a sequence that moves no cursor, so Ink's frame is untouched.
    const copy = async (text: string): Promise<string> => {
      process.stdout.write(`\u001b]52;c;${Buffer.from(text).toString('base64')}\u0007`)
      return 'sent to the clipboard where the terminal allows'
    }
    // A terminal rewraps what is on screen when it is resized, so Ink can no longer erase its
    // previous frame line by line and would leave fragments behind: clear the screen first (this
    // listener is added before Ink's, so it runs first); the TUI then reprints the recent log.
    const clearOnResize = (): void => void process.stdout.write('\u001b[2J\u001b[H')
    process.stdout.on('resize', clearOnResize)
    const instance = render(createElement(App, { store, onQuit, color: theme.color, history, actions: { copy, ...options.actions } }), { exitOnCtrlC: false, maxFps: 10, patchConsole: true })
    return {
      close: async () => {
        process.stdout.off('resize', clearOnResize)
        detach()
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

/**
 * Ink and React as the terminal needs them, whatever the environment says:
 *
 * - The output mode was decided once (output-mode.ts); Ink must not decide again. Ink reads CI
 *   through is-in-ci when it is first imported, and takes `CI=` (empty) or CONTINUOUS_INTEGRATION
 *   for CI, where it draws nothing live and prints the last frame only on exit: a blank TUI. So
 *   those variables are hidden while Ink loads.
 * - React picks its build from NODE_ENV when it is loaded, and without one it is the
 *   development build: every element checked, every frame about twice the work. Unless the user
 *   set NODE_ENV, the production build is loaded.
 *
 * Both are put back once loaded (children started later see the environment as it was).
 */
async function asLoadedForTheTerminal<T>(load: () => Promise<T>): Promise<T> {
  const saved = new Map<string, string | undefined>()
  for (const name of ['CI', 'CONTINUOUS_INTEGRATION']) {
    if (process.env[name] === undefined) continue
    saved.set(name, process.env[name])
    delete process.env[name]
  }
  if (!process.env.NODE_ENV) {
    saved.set('NODE_ENV', process.env.NODE_ENV)
    process.env.NODE_ENV = 'production'
  }
  try {
    return await load()
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}
