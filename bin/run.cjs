#!/usr/bin/env -S node --max-semi-space-size=2
// CommonJS, as is the bundle it runs: an ES module entry would start Node's ES module loader,
// whose namespace for node:fs alone loads every stream class (~10 ms of a 140 ms --help).
const path = require('node:path')
const { loadBundle } = require('./code-cache.cjs')

// --max-semi-space-size=2: a long-running agent holds little but churns through short-lived
// objects (events, records, check results), and V8's default young generation (up to 16 MB
// per semi-space) then makes up most of its resident memory. 2 MB keeps a 1000-instance agent
// near 105 MB instead of ~175 MB (bench/memory.js runs the bin as installed, with this line).
// grpc-js sets a TLS servername for IP endpoints, which Node flags with DEP0123 on every
// connection; that warning says nothing to a user, so it alone is dropped.
process.removeAllListeners('warning')
process.on('warning', (warning) => {
  if (warning.code !== 'DEP0123') process.stderr.write(`${warning.name}: ${warning.message}\n`)
})

// Secrets never reach oclif's argv (its DEBUG output prints the whole command line): an
// --etcd-password value, or the password in --etcd-user name:password, moves to the
// environment variable the config module reads, keeping flag > env precedence.
const argv = []
const args = process.argv.slice(2)
let password
for (let i = 0; i < args.length; i++) {
  const arg = args[i]
  if (arg === '--') {
    argv.push(...args.slice(i))
    break
  }
  const [name, inline] = arg.startsWith('--etcd-') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
  if (name === '--etcd-password') {
    password = inline ?? args[++i]
  } else if (name === '--etcd-user') {
    const user = inline ?? args[++i]
    const colon = user?.indexOf(':') ?? -1
    if (colon > 0) {
      password ??= user.slice(colon + 1)
      argv.push('--etcd-user', user.slice(0, colon))
    } else if (user !== undefined) argv.push('--etcd-user', user)
    else argv.push(arg)
  } else argv.push(arg)
}
if (password !== undefined) {
  process.env.DISCOVERY_ETCD_PASSWORD = password
  // Out of `ps` too, as far as Linux lets a process rewrite its own command line: the title
  // overwrites argv's memory (which /proc/<pid>/cmdline shows) with the password-free argv.
  process.title = ['discovery-agent', ...argv].join(' ')
}
process.argv = [...process.argv.slice(0, 2), ...argv]

// The built bundle (scripts/bundle.js): @oclif/core and every command in one file, compiled
// with a V8 code cache (bin/code-cache.cjs); a command initialises only the modules it runs
// (docs/performance.md). The bundle's dynamic imports (the TUI with Ink and React for `watch`)
// go through this file's import(), which resolves as the package's own would.
globalThis.__discoveryImport = (specifier) => import(specifier)

async function main() {
  const cli = loadBundle(path.join(__dirname, '../dist/bundle/cli.cjs'), argv)
  await cli.exports.execute({ args: argv, dir: __dirname })
  cli.save()
  // The command has finished. A handle left open by a library must not keep a finished CLI
  // alive (a stopped `watch` was once seen lingering with nothing but its stderr pipe open), so
  // exit explicitly, once everything written to stdout and stderr has been handed over.
  const flushed = (stream) => new Promise((resolve) => stream.write('', resolve))
  await Promise.all([flushed(process.stdout), flushed(process.stderr)])
  process.exit(process.exitCode ?? 0)
}

void main()
