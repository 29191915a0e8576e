import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { etcdFlags, runCli, uniquePrefix } from '../support/cli.js'

/**
 * bin/code-cache.cjs: the CLI bundle compiled with a V8 code cache kept per command in a private
 * folder. Every run, cached or not, must behave exactly as without a cache.
 */
let root: string
let prefix: string

beforeEach(() => {
  root = path.join(mkdtempSync(path.join(os.tmpdir(), 'discovery-code-cache-')), 'cache')
  prefix = uniquePrefix('cc')
})
afterEach(() => rmSync(path.dirname(root), { recursive: true, force: true }))

const list = () => runCli(['list', '--json', ...etcdFlags(prefix)], { env: { DISCOVERY_COMPILE_CACHE: root } })

/** The one key folder under the cache root (bundle hash, Node version, arch, flags). */
function keyDir(): string {
  const entries = readdirSync(root)
  expect(entries).toHaveLength(1)
  return path.join(root, entries[0])
}

/** A cache file is a CRC-32 of V8's data (big-endian), then the data. */
function verifies(file: string): boolean {
  const content = readFileSync(file)
  return content.length > 4 && content.readUInt32BE(0) === zlib.crc32(content.subarray(4))
}

describe('the code cache', () => {
  it('Given no cache, When list runs twice, Then the first run writes a private list.bin and the second uses it unchanged', async () => {
    // When
    const first = await list()
    // Then
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout.trim()).toBe('[]')
    const dir = keyDir()
    expect(path.basename(dir)).toMatch(new RegExp(`^[0-9a-f]{20}-${process.version.replaceAll('.', '\\.')}-${process.arch}-[0-9a-f]{1,8}$`))
    const file = path.join(dir, 'list.bin')
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(verifies(file)).toBe(true)
    const written = readFileSync(file)
    expect(written.length).toBeGreaterThan(100_000)
    // When
    const second = await list()
    // Then
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(readFileSync(file).equals(written)).toBe(true)
    expect(readdirSync(dir)).toEqual(['list.bin'])
  })

  it('Given a cache file corrupted at the same length, When list runs, Then it answers as usual and the file is written again', async () => {
    // Given
    expect((await list()).code).toBe(0)
    const file = path.join(keyDir(), 'list.bin')
    const corrupted = readFileSync(file)
    for (let i = 10; i < corrupted.length; i += 997) corrupted[i] ^= 0xff
    writeFileSync(file, corrupted)
    expect(verifies(file)).toBe(false)
    // When
    const result = await list()
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe('[]')
    expect(result.stderr).toBe('')
    expect(verifies(file)).toBe(true)
  })

  it('Given a cache folder others can write, When list runs, Then the cache is neither read nor written', async () => {
    // Given
    expect((await list()).code).toBe(0)
    const dir = keyDir()
    const file = path.join(dir, 'list.bin')
    writeFileSync(file, readFileSync(file).subarray(0, 10))
    chmodSync(dir, 0o777)
    // When
    const result = await list()
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe('[]')
    expect(readFileSync(file).length).toBe(10)
  })

  it('Given DISCOVERY_COMPILE_CACHE=off, When list runs, Then nothing is written anywhere', async () => {
    // When
    const result = await runCli(['list', '--json', ...etcdFlags(prefix)], { env: { DISCOVERY_COMPILE_CACHE: 'off', HOME: path.dirname(root), XDG_CACHE_HOME: root } })
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe('[]')
    expect(existsSync(root)).toBe(false)
    expect(readdirSync(path.dirname(root))).toEqual([])
  })

  it('Given only XDG_CACHE_HOME, When list --help runs twice, Then the cache lives under it as help.bin, used the second time', async () => {
    // When
    const env = { XDG_CACHE_HOME: root, DISCOVERY_COMPILE_CACHE: undefined }
    const first = await runCli(['list', '--help'], { env })
    const base = path.join(root, 'discovery-agent', 'code-cache')
    const [key] = readdirSync(base)
    const file = path.join(base, key, 'help.bin')
    const written = readFileSync(file)
    const second = await runCli(['list', '--help'], { env })
    // Then
    expect(first.code, first.stderr).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(readdirSync(path.join(base, key))).toEqual(['help.bin'])
    expect(readFileSync(file).equals(written)).toBe(true)
  })

  it('Given a file whose CRC is right but which V8 rejects, When list runs, Then it answers as usual and a good cache replaces it', async () => {
    // Given
    expect((await list()).code).toBe(0)
    const file = path.join(keyDir(), 'list.bin')
    const data = Buffer.alloc(4096, 7)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(zlib.crc32(data))
    writeFileSync(file, Buffer.concat([header, data]))
    // When
    const result = await list()
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe('[]')
    expect(verifies(file)).toBe(true)
    expect(readFileSync(file).length).toBeGreaterThan(100_000)
  })

  it.each([
    { name: 'writable by others', mode: 0o777, used: false },
    { name: 'writable by others but sticky (as /tmp)', mode: 0o1777, used: true },
  ])('Given the cache root inside a folder $name, When list runs, Then the cache is used: $used', async ({ mode, used }) => {
    // Given
    chmodSync(path.dirname(root), mode)
    // When
    const result = await list()
    // Then
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe('[]')
    const files = existsSync(root) ? readdirSync(root).flatMap((key) => readdirSync(path.join(root, key))) : []
    expect(files).toEqual(used ? ['list.bin'] : [])
  })
})
