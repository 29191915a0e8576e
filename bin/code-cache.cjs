// Loads the CLI bundle (dist/bundle/cli.cjs, scripts/bundle.js) with a V8 code cache, the way
// Node ≥ 22 does for every module with module.enableCompileCache(), which Node 20 lacks.
//
// Without a cache, V8 parses the 2.4 MB bundle and compiles every function the command runs,
// at every start. With one, it deserialises the bytecode of exactly those functions
// (docs/performance.md). The cache is written once per command, after its first successful run,
// into a private folder of the user's cache directory, and read at every later run.
//
// Cached bytecode is code: V8 runs whatever a cache file holds, so only files nobody else could
// have written are read. The cache folder and every folder above it must belong to this user or
// root and be writable by nobody else (a sticky folder such as /tmp excepted above the cache
// folder itself), and the file itself this user's, opened without following a symlink. A file
// is V8's data after a CRC-32 of it: V8 accepts a corrupted payload of the right length (it
// checks only a header), and running corrupted bytecode would be undefined behaviour.
// (zlib.crc32 is Node ≥ 20.15; on an older Node 20 the CLI runs without a cache.)
//
// What keys a cache file: the bundle's content hash (V8 itself checks only the source's length),
// the Node version and architecture, and V8's cache version tag (which changes with the flags,
// from the command line or NODE_OPTIONS, that V8 would reject a cache for); the command name
// picks the file. A cache V8 rejects is rewritten; one that can't be trusted, read or written is
// skipped: the CLI runs as without it.
// DISCOVERY_COMPILE_CACHE=<dir> moves the folder; =off, or NODE_DISABLE_COMPILE_CACHE=1, turns it off.
const { Buffer } = require('node:buffer')
const Module = require('node:module')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const v8 = require('node:v8')
const vm = require('node:vm')
const zlib = require('node:zlib')

/** Cache folders of other bundles or Node versions not used for this long are removed. */
const STALE_MS = 30 * 24 * 3600 * 1000
/** A used folder's time is refreshed at most this often (its age is what removeStale judges). */
const TOUCH_MS = 24 * 3600 * 1000

const uid = typeof process.getuid === 'function' ? process.getuid() : undefined

/** The cache root, or undefined when caching is off. */
function cacheRoot(env) {
  const setting = env.DISCOVERY_COMPILE_CACHE
  if (setting === 'off' || setting === '0' || env.NODE_DISABLE_COMPILE_CACHE === '1' || typeof zlib.crc32 !== 'function') return undefined
  if (setting) return path.resolve(setting)
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache')
  return path.join(base, 'discovery-agent', 'code-cache')
}

/** Nobody but this user (or root) can change the folder: theirs, and not writable by group or others. */
const ownedPrivately = (stat) => (uid === undefined || stat.uid === uid) && (stat.mode & 0o022) === 0
/** Nobody but its owner, root or this user can rename or replace what is in it. */
const safeAncestor = (stat) => (uid === undefined || stat.uid === uid || stat.uid === 0) && ((stat.mode & 0o022) === 0 || (stat.mode & 0o1000) !== 0)

/**
 * `dir`, created private if missing; undefined unless it is a folder of this user that nobody
 * else can write, below folders nobody else can rename things in. Checked on the resolved path,
 * so a symlink anywhere on the way is judged by what it points at.
 */
function trustedDir(dir) {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const real = fs.realpathSync(dir)
    const stat = fs.statSync(real)
    if (!stat.isDirectory() || !ownedPrivately(stat)) return undefined
    for (let parent = path.dirname(real); ; parent = path.dirname(parent)) {
      if (!safeAncestor(fs.statSync(parent))) return undefined
      if (path.dirname(parent) === parent) break
    }
    return { dir: real, mtimeMs: stat.mtimeMs }
  } catch {
    return undefined
  }
}

/** The V8 data in a cache file, or undefined when it is missing, not this user's, or not what was written. */
function readVerified(file) {
  let fd
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    const stat = fs.fstatSync(fd)
    if (!stat.isFile() || !ownedPrivately(stat)) return undefined
    const content = fs.readFileSync(fd)
    const data = content.subarray(4)
    return content.length > 4 && content.readUInt32BE(0) === zlib.crc32(data) ? data : undefined
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/**
 * The command's name as a file name: the first word that isn't a flag, or `-` for none; `help`
 * whenever help is asked for (`list --help` runs other code than `list`).
 */
function commandName(argv) {
  if (argv.includes('--help') || argv.includes('-h')) return 'help'
  const word = argv.find((arg) => !arg.startsWith('-'))
  return word && /^[a-z][a-z0-9-]{0,31}$/.test(word) ? word : '-'
}

/** Removes sibling cache folders (other bundles, other Node versions) unused for STALE_MS. */
function removeStale(root, keep) {
  try {
    for (const name of fs.readdirSync(root)) {
      const dir = path.join(root, name)
      if (name !== keep && Date.now() - fs.lstatSync(dir).mtimeMs > STALE_MS) fs.rmSync(dir, { recursive: true, force: true })
    }
  } catch {
    // Another process is cleaning up too, or the folder went away: nothing to do.
  }
}

/** Where this run's cache lives and what it holds, or an empty object when caching is off or can't be trusted. */
function locate(file, argv, env) {
  const root = cacheRoot(env)
  if (!root) return {}
  let bundleHash
  try {
    bundleHash = fs.readFileSync(path.join(path.dirname(file), 'cli.hash'), 'latin1').trim()
  } catch {
    return {}
  }
  const key = `${bundleHash}-${process.version}-${process.arch}-${v8.cachedDataVersionTag().toString(16)}`
  const trusted = trustedDir(path.join(root, key))
  if (!trusted) return {}
  if (Date.now() - trusted.mtimeMs > TOUCH_MS) {
    try {
      const now = new Date()
      fs.utimesSync(trusted.dir, now, now)
    } catch {
      // Only removeStale's judgement of its age is affected.
    }
  }
  const cacheFile = path.join(trusted.dir, `${commandName(argv)}.bin`)
  return { cacheFile, cachedData: readVerified(cacheFile) }
}

/**
 * Runs the CommonJS bundle at `file` as require() would, compiled with the code cache when
 * there is one, and registers it in require's cache (the command stubs require it). Returns its
 * exports and `save()`, which writes the cache after a run that had none or had one rejected.
 */
function loadBundle(file, argv, env = process.env) {
  // latin1: the bundle is ASCII (scripts/bundle.js checks), and a one-byte string is read fastest.
  const source = fs.readFileSync(file, 'latin1')
  const { cacheFile, cachedData } = locate(file, argv, env)
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData })
  const module = new Module(file, undefined)
  module.filename = file
  module.paths = Module._nodeModulePaths(path.dirname(file))
  script.runInThisContext()(module.exports, Module.createRequire(file), module, file, path.dirname(file))
  module.loaded = true
  Module._cache[file] = module
  const save = () => {
    if (!cacheFile || (cachedData && !script.cachedDataRejected)) return
    const temporary = `${cacheFile}.${process.pid}.tmp`
    try {
      const data = script.createCachedData()
      const header = Buffer.alloc(4)
      header.writeUInt32BE(zlib.crc32(data))
      // 'wx': a new file, never one (or a symlink) that is already there.
      fs.writeFileSync(temporary, Buffer.concat([header, data]), { mode: 0o600, flag: 'wx' })
      fs.renameSync(temporary, cacheFile)
    } catch {
      try {
        fs.rmSync(temporary, { force: true })
      } catch {
        // Left for removeStale with its folder.
      }
      return
    }
    removeStale(path.dirname(path.dirname(cacheFile)), path.basename(path.dirname(cacheFile)))
  }
  return { exports: module.exports, save }
}

module.exports = { loadBundle }
