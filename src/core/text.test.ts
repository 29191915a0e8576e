import { describe, expect, it } from 'vitest'
import { printable } from './text.js'

describe('printable', () => {
  it.each([
    ['plain text stays', 'HTTP 200 ok', 'HTTP 200 ok'],
    ['an ANSI colour is made visible', '\u001b[31mred', '\\x1b[31mred'],
    ['a carriage return cannot overwrite the line', 'ok\rFAKE', 'ok\\x0dFAKE'],
    ['an OSC title sequence is made visible', '\u001b]0;pwned\u0007', '\\x1b]0;pwned\\x07'],
    ['C1 CSI is made visible', '\u009b2J', '\\x9b2J'],
    ['bidi overrides are made visible', 'a\u202eb', 'a\\x202eb'],
  ])('Given %s', (_what, input, expected) => {
    expect(printable(input)).toBe(expected)
  })
})
