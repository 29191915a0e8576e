import { RE2JS } from 're2js'

/** A compiled expected-body pattern. */
export interface BodyPattern {
  source: string
  test(text: string): boolean
}

/**
 * Expected-body patterns come from container labels, manual records and flags: input from
 * outside. They run on RE2 semantics (re2js), whose matching time is linear in the body, so a
 * pattern like `^(a+)+$` cannot stall the event loop (and with it every lease renewal).
 * Constructs RE2 cannot run in linear time (back-references, look-around) are refused with
 * the reason, never run.
 */
export function compileBodyPattern(source: string): BodyPattern {
  if (source.length > 1024) throw new Error('is longer than 1024 characters')
  let compiled: RE2JS
  try {
    compiled = RE2JS.compile(source)
  } catch (error) {
    throw new Error(`is not a regular expression that runs in linear time (RE2 syntax: no back-references or look-around): ${(error as Error).message}`)
  }
  return { source, test: (text) => compiled.matcher(text).find() }
}

/** Why a pattern can't be used, or undefined when it can. */
export function bodyPatternProblem(source: string): string | undefined {
  try {
    compileBodyPattern(source)
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}
