import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'

/**
 * A real terminal for end-to-end TUI tests: a tmux server of our own (its own socket, so
 * neither another developer's tmux server nor its environment is involved), one detached
 * session of a fixed size running one command, read with capture-pane.
 */
export class TmuxSession {
  private constructor(
    readonly socket: string,
    readonly name: string,
  ) {}

  /** Starts `command` (a shell command line) in a detached `columns`×`rows` session; the server inherits `env`. */
  static async start(options: { socket: string; name: string; command: string; columns: number; rows: number; env: NodeJS.ProcessEnv; cwd?: string }): Promise<TmuxSession> {
    const session = new TmuxSession(options.socket, options.name)
    // One invocation: no config file, no status line (it would take a row), and the pane (with
    // its last screen) kept when the command ends; then the session.
    await tmux(
      options.socket,
      [
        '-f', '/dev/null', 'start-server', ';',
        'set-option', '-g', 'status', 'off', ';',
        'set-option', '-g', 'remain-on-exit', 'on', ';',
        'new-session', '-d', '-s', options.name, '-x', String(options.columns), '-y', String(options.rows), options.command,
      ],
      { env: options.env, cwd: options.cwd },
    )
    return session
  }

  /** The visible screen as text; `joined` rejoins lines the terminal wrapped, so a too-long line shows as one. */
  capture(joined = false): Promise<string> {
    return tmux(this.socket, ['capture-pane', '-p', ...(joined ? ['-J'] : []), '-t', this.name])
  }

  /** Types text literally (no key-name lookup). */
  async type(text: string): Promise<void> {
    await tmux(this.socket, ['send-keys', '-t', this.name, '-l', text])
  }

  /** Presses named keys: Enter, Escape, Down, Up, C-c … */
  async press(...keys: string[]): Promise<void> {
    await tmux(this.socket, ['send-keys', '-t', this.name, ...keys])
  }

  async resize(columns: number, rows: number): Promise<void> {
    await tmux(this.socket, ['resize-window', '-t', this.name, '-x', String(columns), '-y', String(rows)])
  }

  /** Ends the session and its server (and so the command, if it still runs), and removes the socket. */
  async kill(): Promise<void> {
    const socketPath = (await tmux(this.socket, ['display-message', '-p', '#{socket_path}']).catch(() => '')).trim()
    await tmux(this.socket, ['kill-server']).catch(() => undefined)
    if (socketPath) rmSync(socketPath, { force: true })
  }
}

function tmux(socket: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('tmux', ['-L', socket, ...args], { env: options.env ?? process.env, cwd: options.cwd }, (error, stdout, stderr) => {
      if (error) reject(new Error(`tmux ${args.join(' ')} failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
  })
}

/** `docker` CLI against the test daemon; returns stdout, trimmed. */
export function docker(args: string[], host = 'unix:///var/run/docker.sock'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', ['-H', host, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`docker ${args.join(' ')} failed: ${stderr || error.message}`))
      else resolve(stdout.trim())
    })
  })
}

/** Single-quotes a word for sh. */
export const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`
