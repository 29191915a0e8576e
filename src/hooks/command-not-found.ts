import type { Hook } from '@oclif/core'

/**
 * An unknown command (or an extra word after a command that takes no argument) is bad usage:
 * one line, exit 2, like every other usage error.
 */
const hook: Hook.CommandNotFound = async function (options) {
  const words = options.id.split(':')
  const known = options.config.commands.map((c) => c.id)
  const base = words.find((_, i) => known.includes(words.slice(0, i + 1).join(':')))
  const message = base ? `'${words.slice(1).join(' ')}' is not an argument of ${base} (see discovery-agent ${base} --help)` : notACommand(words, known)
  process.stderr.write(`Error: ${message}\n`)
  this.exit(2)
}

/** The error for words that name no command, with the commands there are. */
export function notACommand(words: string[], known: string[]): string {
  return `'${words.join(' ')}' is not a discovery-agent command (commands: ${known.filter((id) => id !== 'help').map((id) => id.replaceAll(':', ' ')).sort().join(', ')})`
}

export default hook
