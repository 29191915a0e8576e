import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdctl, uniquePrefix } from '../support/cli.js'
import { testEnv } from '../support/env.js'

/**
 * The library as a user's program meets it: `import … from 'discovery-agent'` from a folder
 * outside the project (node_modules/discovery-agent is a link to the package, so the exports
 * map and dist/ are what resolves), run by plain node. It works against the real etcd, and its
 * module graph holds neither oclif, Ink, React nor chalk nor the CLI's own code. The graph is
 * recorded two ways, as neither sees everything alone: a module.register resolve hook (every
 * ESM import, and CJS modules imported from ESM) and require.cache (CJS modules required by
 * CJS). A control run that does import Ink and oclif proves the recorder catches them.
 * And a TypeScript program type-checks against the published declarations.
 */
const repo = path.resolve('.')
const env = testEnv()
const prefix = uniquePrefix('pkg')
let dir: string

/** A module from a CLI/UI dependency or the CLI's own code: none may load for the library. */
const FORBIDDEN = /\/node_modules\/(@oclif\/|ink\/|ink-|react\/|react-reconciler\/|chalk\/|yoga-)|\/dist\/(cli|commands|ui)\//

const HOOKS = `
import { appendFileSync } from 'node:fs'
let file
export async function initialize(data) { file = data.file }
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context)
  appendFileSync(file, result.url + '\\n')
  return result
}
`

const REGISTER_HOOKS = `
import { register } from 'node:module'
register('./hooks.mjs', import.meta.url, { data: { file: process.env.MODULE_LOG } })
`

/** What a user's program does: follow a service, register itself, pick, deregister. */
const APP = `
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'
import * as lib from 'discovery-agent'
const [service, prefix, endpoints, out] = process.argv.slice(2)
const resolver = await lib.createResolver(service, { etcdEndpoints: endpoints, prefix })
const seen = new Promise((resolve) => resolver.on('change', (list) => list.length === 1 && resolve()))
const self = await lib.registerSelf({ service, address: '127.0.0.1', port: 7001, etcdEndpoints: endpoints, prefix })
await seen
const picked = resolver.pick()
await self.close()
await resolver.close()
const cjs = Object.keys(createRequire(import.meta.url).cache)
writeFileSync(out, JSON.stringify({ exports: Object.keys(lib).sort(), picked: picked && picked.id, cjs }))
`

/** The control: the same recorder must catch Ink (ESM) and oclif (CJS). */
const CONTROL = `
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'
await import('discovery-agent')
await import('ink')
await import('@oclif/core')
writeFileSync(process.argv[2], JSON.stringify({ cjs: Object.keys(createRequire(import.meta.url).cache) }))
`

const CONSUMER_TS = `
import * as grpc from '@grpc/grpc-js'
import { createResolver, registerGrpcResolver, registerSelf, UnavailableError, type InstanceRecord, type Resolver } from 'discovery-agent'

const resolver: Resolver = await createResolver('web', { etcdEndpoints: ['127.0.0.1:2379'], tags: ['v2'], healthyOnly: true })
const next: InstanceRecord | undefined = resolver.pick()
// @ts-expect-error pick() is undefined when there is no instance
const port: number = resolver.pick().port
resolver.on('change', (instances) => instances.map((i) => \`\${i.address}:\${i.port}\`))
resolver.on('disconnected', (error) => void error)
// @ts-expect-error there is no such event
resolver.on('changed', () => undefined)
const registration = await registerGrpcResolver({ grpc, loadBalancing: 'round_robin' })
const self = await registerSelf({ service: 'web', address: '10.0.0.5', port: 8080, ttl: '10s', meta: { version: '1' } })
// @ts-expect-error port is a number
await registerSelf({ service: 'web', address: '10.0.0.5', port: '8080' })
const id: string = self.id
await self.close()
await registration.close()
await resolver.close()
const unavailable: boolean = new Error() instanceof UnavailableError
export { next, port, id, unavailable }
`

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: dir, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    )
  })
}

beforeAll(async () => {
  if (!existsSync(path.join(repo, 'dist/core/resolver/resolver.js'))) {
    throw new Error('dist/ has no resolver: build it first (npx tsc -p tsconfig.build.json)')
  }
  // Given: a user's project, outside this one, that has the package (and grpc-js, and for the control Ink and oclif) installed
  dir = await mkdtemp(path.join(os.tmpdir(), 'discovery-lib-user-'))
  await mkdir(path.join(dir, 'node_modules/@oclif'), { recursive: true })
  await symlink(repo, path.join(dir, 'node_modules/discovery-agent'))
  await symlink(path.join(repo, 'node_modules/@grpc'), path.join(dir, 'node_modules/@grpc'))
  await symlink(path.join(repo, 'node_modules/ink'), path.join(dir, 'node_modules/ink'))
  await symlink(path.join(repo, 'node_modules/@oclif/core'), path.join(dir, 'node_modules/@oclif/core'))
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-app', private: true, type: 'module' }))
  await writeFile(path.join(dir, 'hooks.mjs'), HOOKS)
  await writeFile(path.join(dir, 'register-hooks.mjs'), REGISTER_HOOKS)
  await writeFile(path.join(dir, 'app.mjs'), APP)
  await writeFile(path.join(dir, 'control.mjs'), CONTROL)
  await writeFile(path.join(dir, 'consumer.ts'), CONSUMER_TS)
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
  await etcdctl(['del', '--prefix', `${prefix}/`])
})

async function moduleGraph(script: string, args: string[]): Promise<{ modules: string[]; result: Record<string, unknown> }> {
  const log = path.join(dir, `${script}.modules`)
  const out = path.join(dir, `${script}.json`)
  const outcome = await run(process.execPath, ['--import', './register-hooks.mjs', script, ...args, out], { env: { MODULE_LOG: log } })
  expect(outcome, `${script} failed: ${outcome.stderr}`).toMatchObject({ code: 0 })
  const result = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown> & { cjs: string[] }
  const esm = (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((url) => url.replace(/^file:\/\//, ''))
  return { modules: [...new Set([...esm, ...result.cjs])], result }
}

describe("import … from 'discovery-agent' in a user's program", () => {
  it('Given a program outside the project, When it imports the package by name and uses it against etcd, Then it works and loads no oclif, Ink, React, chalk or CLI code', async () => {
    // When
    const { modules, result } = await moduleGraph('app.mjs', ['shop', prefix, env.etcdEndpoints.join(',')])
    // Then: the library worked
    expect(result.picked).toBe('shop-127.0.0.1-7001')
    expect(result.exports).toEqual(expect.arrayContaining(['createResolver', 'Resolver', 'registerGrpcResolver', 'registerSelf', 'Registry', 'ManagedLease', 'buildManualRecord', 'parseInstanceRecord', 'UnavailableError']))
    // Then: the recorder saw the package through its exports map (dist/), and etcd3 (CJS) through require.cache
    expect(modules).toContain(path.join(repo, 'dist/index.js'))
    expect(modules).toContain(path.join(repo, 'dist/core/resolver/resolver.js'))
    expect(modules.some((m) => m.includes('/node_modules/etcd3/'))).toBe(true)
    // Then: nothing of the CLI or its UI
    expect(modules.filter((m) => FORBIDDEN.test(m))).toEqual([])
    expect(modules.filter((m) => m.startsWith(path.join(repo, 'src/')))).toEqual([])
  })

  it('Given the same recorder, When a program imports Ink and oclif as well, Then it reports them (so the check above can fail)', async () => {
    // When
    const { modules } = await moduleGraph('control.mjs', [])
    const forbidden = modules.filter((m) => FORBIDDEN.test(m))
    // Then
    expect(forbidden.some((m) => m.includes('/node_modules/ink/'))).toBe(true)
    expect(forbidden.some((m) => m.includes('/node_modules/@oclif/core/'))).toBe(true)
    expect(forbidden.some((m) => m.includes('/node_modules/react/'))).toBe(true)
  })

  it('Given a TypeScript program using the library and grpc-js, When type-checked strictly against the published declarations, Then it compiles and the expected type errors are caught', async () => {
    // When
    const tsc = path.join(repo, 'node_modules/typescript/bin/tsc')
    const outcome = await run(process.execPath, [
      tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--types', 'node', '--typeRoots', path.join(repo, 'node_modules/@types'), 'consumer.ts',
    ], { timeoutMs: 110_000 })
    // Then: no error, so each @ts-expect-error met its error (types are real, not any)
    expect(outcome.stdout + outcome.stderr).toBe('')
    expect(outcome.code).toBe(0)
  })
})
