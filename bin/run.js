#!/usr/bin/env node
// grpc-js sets a TLS servername for IP endpoints, which Node flags with DEP0123 on every
// connection; that warning says nothing to a user, so it alone is dropped.
process.removeAllListeners('warning')
process.on('warning', (warning) => {
  if (warning.code !== 'DEP0123') process.stderr.write(`${warning.name}: ${warning.message}\n`)
})

const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
