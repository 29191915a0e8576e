import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { BIN, cliEnv, etcdctl, uniquePrefix } from './cli.js'
import { testEnv } from './env.js'

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

/**
 * `watch` in a tmux terminal for the TUI's end-to-end tests: started against the test etcd and
 * dockerd with colour on, read through `screen()` (which fails on a line wider than the
 * terminal) and `waitForScreen()`; `capture()` writes a screen for docs/tui.md when
 * DISCOVERY_TUI_CAPTURES names a folder.
 */
export class WatchTerminal {
  columns: number

  private constructor(
    readonly term: TmuxSession,
    readonly exitFile: string,
    readonly size: string,
    columns: number,
  ) {
    this.columns = columns
  }

  static async start(options: { socket: string; bin: string; etcdEndpoints: string[]; dockerHost: string; prefix: string; node: string; columns: number; rows: number; env: NodeJS.ProcessEnv }): Promise<WatchTerminal> {
    const exitFile = path.join(os.tmpdir(), `${options.socket}.exit`)
    rmSync(exitFile, { force: true })
    const command = [process.execPath, options.bin, 'watch', '--etcd-endpoints', options.etcdEndpoints.join(','), '--docker-host', options.dockerHost, '--prefix', options.prefix, '--node', options.node]
      .map(shellQuote)
      .join(' ')
    const term = await TmuxSession.start({
      socket: options.socket,
      name: 'watch',
      command: `sh -c ${shellQuote(`${command}; echo EXIT=$? > ${shellQuote(exitFile)}`)}`,
      columns: options.columns,
      rows: options.rows,
      env: options.env,
      cwd: process.cwd(),
    })
    return new WatchTerminal(term, exitFile, `${options.columns}x${options.rows}`, options.columns)
  }

  /** The visible screen; fails when a line is wider than the terminal (it would have wrapped). */
  async screen(columns = this.columns): Promise<string> {
    const joined = await this.term.capture(true)
    for (const line of joined.split('\n')) if (line.length > columns) throw new Error(`a line wider than ${columns} columns: "${line}"`)
    return this.term.capture()
  }

  /** Polls the screen until `check` passes; on timeout the error shows the last screen. */
  async waitForScreen(what: string, check: (text: string) => boolean, timeoutMs = 30_000): Promise<string> {
    let last = ''
    const deadline = Date.now() + timeoutMs
    for (;;) {
      last = await this.screen()
      if (check(last)) return last
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the screen was:\n${last}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  /** What the command exited with (`EXIT=<code>`), once it has. */
  exitLine(): string | undefined {
    return existsSync(this.exitFile) ? readFileSync(this.exitFile, 'utf8').trim() || undefined : undefined
  }

  capture(view: string, text: string): void {
    const dir = process.env.DISCOVERY_TUI_CAPTURES
    if (!dir) return
    mkdirSync(dir, { recursive: true })
    writeFileSync(path.join(dir, `${this.size}-${view}.txt`), text.replace(/\s+$/gm, '').replace(/\n+$/, '\n'))
  }

  async kill(): Promise<void> {
    await this.term.kill()
    rmSync(this.exitFile, { force: true })
  }
}

/**
 * The terminal's environment for `watch`: colour on (NO_COLOR unset); CI set but empty, which
 * is not CI (and once made Ink draw nothing live while the output mode said "terminal").
 */
function terminalEnv(): NodeJS.ProcessEnv {
  return cliEnv({ NO_COLOR: undefined, CI: '', CONTINUOUS_INTEGRATION: undefined, TERM: 'xterm-256color' })
}

/** After a TUI test file: its terminal, the containers it labelled and its prefix go. */
async function endTuiTest(watch: WatchTerminal | undefined, label: string, prefix: string): Promise<void> {
  await watch?.kill()
  const ids = await docker(['ps', '-aq', '--filter', `label=${label}`]).catch(() => '')
  if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined)
  await etcdctl(['del', '--prefix', `${prefix}/`]).catch(() => undefined)
}

/**
 * One TUI test file's own names — a tag for its containers (and so its filter), a prefix, a
 * node (tagged apart, so filtering by the containers' tag does not match every row by its node),
 * a container label — and its terminal: `run` starts a labelled container publishing port 80,
 * `start` opens `watch` at a size, `end` removes all of it (afterAll).
 */
export class TuiTestFile {
  readonly tag = randomBytes(3).toString('hex')
  readonly prefix: string
  readonly node: string
  readonly label: string
  watch?: WatchTerminal

  /** `kind` names the prefix, node, label and socket; `letter` starts each container's name. */
  constructor(
    private readonly kind: string,
    private readonly letter: string,
  ) {
    this.prefix = uniquePrefix(kind)
    this.node = `${kind}-${randomBytes(3).toString('hex')}`
    this.label = `discovery-test-${kind}=${this.tag}`
  }

  readonly name = (short: string): string => `${this.letter}${short}-${this.tag}`

  readonly run = (short: string, extra: string[] = []): Promise<string> =>
    docker(['run', '-d', '--pull', 'never', '--name', this.name(short), '-l', this.label, '-p', '127.0.0.1::80', '--stop-timeout', '1', ...extra, testEnv().image])

  async start(columns: number, rows: number): Promise<WatchTerminal> {
    const env = testEnv()
    this.watch = await WatchTerminal.start({
      socket: `discovery-${this.kind}-${this.tag}`,
      bin: BIN,
      etcdEndpoints: env.etcdEndpoints,
      dockerHost: env.dockerHost,
      prefix: this.prefix,
      node: this.node,
      columns,
      rows,
      env: terminalEnv(),
    })
    return this.watch
  }

  end(): Promise<void> {
    return endTuiTest(this.watch, this.label, this.prefix)
  }
}
