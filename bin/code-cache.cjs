// Loads the CLI bundle (dist/bundle/cli.cjs, scripts/bundle.js) with a V8 code cache, the way
// Node ≥ 22 does for every module with module.enableCompileCache(), which Node 20 lacks.
//
// Without a cache, V8 parses the 2.4 MB bundle and compiles every function the command runs,
// at every start. With one, it deserialises the bytecode of exactly those functions: `list`
// starts ~25% sooner (docs/performance.md). The cache is written once per command, after its
// first run, into a private folder of the user's cache directory, and read at every later run.
//
// A cache file is V8's data after a CRC-32 of it: V8 accepts a corrupted payload of the right
// length (it checks only a header), and running corrupted bytecode would be undefined behaviour.
// (zlib.crc32 is Node ≥ 20.15; on an older Node 20 the CLI runs without a cache.)
//
// What keys a cache file: the bundle's content hash (V8 itself checks only the source's length),
// the Node version and architecture, and Node's flags (V8 rejects a cache made under other
// flags); the command name picks the file. A cache V8 rejects is rewritten; one that can't be
// read or written (a read-only or foreign home) is skipped: the CLI runs as without it.
// DISCOVERY_COMPILE_CACHE=<dir> moves the folder; =off, or NODE_DISABLE_COMPILE_CACHE=1, turns it off.
const { Buffer } = require('node:buffer')
const Module = require('node:module')
const { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const vm = require('node:vm')
const zlib = require('node:zlib')

/** Cache folders of other bundles or Node versions not used for this long are removed. */
const STALE_MS = 30 * 24 * 3600 * 1000

/** A small string hash (FNV-1a) for file names; not a security boundary: the folder is private. */
function fnv(text) {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash.toString(16).padStart(8, '0')
}

/** The cache root, or undefined when caching is off. */
function cacheRoot(env) {
  const setting = env.DISCOVERY_COMPILE_CACHE
  if (setting === 'off' || setting === '0' || env.NODE_DISABLE_COMPILE_CACHE === '1' || typeof zlib.crc32 !== 'function') return undefined
  if (setting) return path.resolve(setting)
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache')
  return path.join(base, 'discovery-agent', 'code-cache')
}

/** `dir`, created private if missing; undefined unless it is a real folder of this user that nobody else can write. */
function privateDir(dir) {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const stat = lstatSync(dir)
    const mine = typeof process.getuid !== 'function' || stat.uid === process.getuid()
    return stat.isDirectory() && mine && (stat.mode & 0o022) === 0 ? dir : undefined
  } catch {
    return undefined
  }
}

/** The command's name as a file name: the first word that isn't a flag, or `-` for none. */
function commandName(argv) {
  const word = argv.find((arg) => !arg.startsWith('-'))
  return word && /^[a-z][a-z0-9-]{0,31}$/.test(word) ? word : '-'
}

/** The V8 data in a cache file, or undefined when it is missing, unreadable or not what was written. */
function readVerified(file) {
  try {
    const content = readFileSync(file)
    const data = content.subarray(4)
    return content.length > 4 && content.readUInt32BE(0) === zlib.crc32(data) ? data : undefined
  } catch {
    return undefined
  }
}

/** Removes sibling cache folders (other bundles, other Node versions) untouched for STALE_MS. */
function removeStale(root, keep) {
  try {
    for (const name of readdirSync(root)) {
      const dir = path.join(root, name)
      if (name !== keep && Date.now() - statSync(dir).mtimeMs > STALE_MS) rmSync(dir, { recursive: true, force: true })
    }
  } catch {
    // Another process is cleaning up too, or the folder went away: nothing to do.
  }
}

/**
 * Runs the CommonJS bundle at `file` as require() would, compiled with the code cache when
 * there is one, and registers it in require's cache (the command stubs require it). Returns its
 * exports and `save()`, which writes the cache after a run that had none or had one rejected.
 */
function loadBundle(file, argv, env = process.env) {
  // latin1: the bundle is ASCII (scripts/bundle.js checks), and a one-byte string is read fastest.
  const source = readFileSync(file, 'latin1')
  const root = cacheRoot(env)
  let cacheFile
  let cachedData
  if (root) {
    const bundleHash = readFileSync(path.join(path.dirname(file), 'cli.hash'), 'utf8').trim()
    const key = `${bundleHash}-${process.version}-${process.arch}-${fnv(process.execArgv.join(' '))}`
    const dir = privateDir(path.join(root, key))
    if (dir) {
      cacheFile = path.join(dir, `${commandName(argv)}.bin`)
      cachedData = readVerified(cacheFile)
    }
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData })
  const module = new Module(file, undefined)
  module.filename = file
  module.paths = Module._nodeModulePaths(path.dirname(file))
  script.runInThisContext()(module.exports, Module.createRequire(file), module, file, path.dirname(file))
  module.loaded = true
  Module._cache[file] = module
  const save = () => {
    if (!cacheFile || (cachedData && !script.cachedDataRejected)) return
    const dir = path.dirname(cacheFile)
    try {
      const data = script.createCachedData()
      const header = Buffer.alloc(4)
      header.writeUInt32BE(zlib.crc32(data))
      const temporary = `${cacheFile}.${process.pid}.tmp`
      writeFileSync(temporary, Buffer.concat([header, data]), { mode: 0o600 })
      renameSync(temporary, cacheFile)
    } catch {
      return
    }
    removeStale(path.dirname(dir), path.basename(dir))
  }
  return { exports: module.exports, save }
}

module.exports = { loadBundle }
