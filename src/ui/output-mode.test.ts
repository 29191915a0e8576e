import { describe, expect, it } from 'vitest'
import { decideColor, decideOutputMode, isCI, type OutputMode } from './output-mode.js'

describe('decideOutputMode', () => {
  it.each<{ name: string; json: boolean; tty: boolean; env: NodeJS.ProcessEnv; mode: OutputMode }>([
    { name: 'a terminal', json: false, tty: true, env: { TERM: 'xterm-256color' }, mode: 'tty' },
    { name: 'a terminal with no TERM', json: false, tty: true, env: {}, mode: 'tty' },
    { name: '--json on a terminal', json: true, tty: true, env: {}, mode: 'json' },
    { name: '--json in a pipe', json: true, tty: false, env: {}, mode: 'json' },
    { name: '--json in CI', json: true, tty: false, env: { CI: 'true' }, mode: 'json' },
    { name: 'a pipe (not a TTY)', json: false, tty: false, env: { TERM: 'xterm' }, mode: 'plain' },
    { name: 'CI=true on a terminal', json: false, tty: true, env: { CI: 'true' }, mode: 'plain' },
    { name: 'CI=1 on a terminal', json: false, tty: true, env: { CI: '1' }, mode: 'plain' },
    { name: 'CI=false on a terminal', json: false, tty: true, env: { CI: 'false' }, mode: 'tty' },
    { name: 'CI=0 on a terminal', json: false, tty: true, env: { CI: '0' }, mode: 'tty' },
    { name: 'an empty CI on a terminal', json: false, tty: true, env: { CI: '' }, mode: 'tty' },
    { name: 'TERM=dumb on a terminal', json: false, tty: true, env: { TERM: 'dumb' }, mode: 'plain' },
    { name: 'NO_COLOR on a terminal (colour only, not the mode)', json: false, tty: true, env: { NO_COLOR: '1' }, mode: 'tty' },
  ])('Given $name, When the output mode is decided, Then it is $mode', ({ json, tty, env, mode }) => {
    expect(decideOutputMode({ json, stdoutIsTTY: tty, env })).toBe(mode)
  })
})

describe('decideColor', () => {
  it.each<{ name: string; flag: boolean; tty: boolean; env: NodeJS.ProcessEnv; color: boolean }>([
    { name: 'a terminal', flag: false, tty: true, env: { TERM: 'xterm' }, color: true },
    { name: 'a pipe', flag: false, tty: false, env: {}, color: false },
    { name: '--no-color on a terminal', flag: true, tty: true, env: {}, color: false },
    { name: '--no-color with FORCE_COLOR', flag: true, tty: true, env: { FORCE_COLOR: '1' }, color: false },
    { name: 'NO_COLOR=1 on a terminal', flag: false, tty: true, env: { NO_COLOR: '1' }, color: false },
    { name: 'NO_COLOR=0 (any non-empty value counts)', flag: false, tty: true, env: { NO_COLOR: '0' }, color: false },
    { name: 'an empty NO_COLOR (ignored, as no-color.org says)', flag: false, tty: true, env: { NO_COLOR: '' }, color: true },
    { name: 'NO_COLOR with FORCE_COLOR', flag: false, tty: true, env: { NO_COLOR: '1', FORCE_COLOR: '1' }, color: false },
    { name: 'FORCE_COLOR=1 in a pipe', flag: false, tty: false, env: { FORCE_COLOR: '1' }, color: true },
    { name: 'FORCE_COLOR=3 in a pipe', flag: false, tty: false, env: { FORCE_COLOR: '3' }, color: true },
    { name: 'an empty FORCE_COLOR in a pipe (chalk reads it as on)', flag: false, tty: false, env: { FORCE_COLOR: '' }, color: true },
    { name: 'FORCE_COLOR=0 on a terminal', flag: false, tty: true, env: { FORCE_COLOR: '0' }, color: false },
    { name: 'FORCE_COLOR=false on a terminal', flag: false, tty: true, env: { FORCE_COLOR: 'false' }, color: false },
    { name: 'FORCE_COLOR with TERM=dumb', flag: false, tty: true, env: { FORCE_COLOR: '1', TERM: 'dumb' }, color: true },
    { name: 'TERM=dumb on a terminal', flag: false, tty: true, env: { TERM: 'dumb' }, color: false },
    { name: 'CI on a terminal (colour still fine)', flag: false, tty: true, env: { CI: 'true' }, color: true },
  ])('Given $name, When colour is decided, Then it is $color', ({ flag, tty, env, color }) => {
    expect(decideColor({ noColorFlag: flag, stdoutIsTTY: tty, env })).toBe(color)
  })
})

describe('isCI', () => {
  it.each([
    [{ CI: 'true' }, true],
    [{ CI: '1' }, true],
    [{ CI: 'woodpecker' }, true],
    [{ CI: 'false' }, false],
    [{ CI: '0' }, false],
    [{ CI: '' }, false],
    [{}, false],
  ])('Given %j, When checked, Then CI is %s', (env, ci) => {
    expect(isCI(env)).toBe(ci)
  })
})
