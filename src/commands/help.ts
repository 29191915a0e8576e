import { Args, Command, Flags, loadHelpClass } from '@oclif/core'
import { notACommand } from '../hooks/command-not-found.js'

/**
 * `discovery-agent help [command]`: oclif's own help, as `--help` shows it. Part of the CLI
 * rather than @oclif/plugin-help, whose loading (its package.json and manifest, at every start
 * of every command) cost ~7 ms (docs/performance.md).
 */
export default class Help extends Command {
  static override summary = 'Display help for discovery-agent'
  static override description = 'Shows the commands, or one command with its flags and examples; `discovery-agent <command> --help` does the same.'
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help list', '<%= config.bin %> help maint enable']
  static override args = { command: Args.string({ description: 'the command to show help for', required: false }) }
  static override flags = { 'nested-commands': Flags.boolean({ char: 'n', description: 'list every nested command (config get, maint enable, …)' }) }
  static override strict = false

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Help)
    const words = (argv as string[]).filter((word) => word !== '')
    // The longest run of leading words that names a command or a topic (`help list web` is list's help).
    const names = (count: number): boolean => {
      const id = words.slice(0, count).join(':')
      return Boolean(this.config.findCommand(id) ?? this.config.findTopic(id))
    }
    let named = words.length
    while (named > 0 && !names(named)) named--
    if (words.length > 0 && named === 0) {
      process.stderr.write(`Error: ${notACommand(words.slice(0, 1), this.config.commands.map((c) => c.id))}\n`)
      this.exit(2)
    }
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config, { all: flags['nested-commands'] }).showHelp(words.slice(0, named))
  }
}
