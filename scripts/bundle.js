#!/usr/bin/env node
// Bundles the CLI for a fast cold start (docs/performance.md): @oclif/core, every command and
// the oclif hook become one minified CommonJS file, dist/bundle/cli.cjs, that bin/run.cjs
// compiles with a V8 code cache (bin/code-cache.cjs). Each command's modules are initialised
// only when oclif loads that command (`list` never runs dockerode's or the TUI's code), and Ink
// and React stay in node_modules behind the dynamic import only `watch` reaches. Unbundled, a
// `list` resolved and read ~400 files; bundled it reads one.
//
// oclif still finds commands through the manifest and the package's oclif.commands folder:
// dist/bundle/commands/<id>.js is a one-line CommonJS module that returns that command from
// the bundle, so a command and the runner share one @oclif/core.
//
// Input is tsc's output (dist/), so the bundle runs exactly the code the library export and
// the tests run. dist/index.js (the library) stays unbundled.
//
// etcd3 parses its .proto files at load time (protobufjs' parser, then a descriptor for every
// message that only gRPC reflection would use): ~100 ms of every command that talks to etcd.
// Here the parse happens once, at build time, and the bundle carries the resulting JSON; a
// lean package definition (the same paths, (de)serializers and options etcd3 passes) is built
// from it with protobufjs/light at run time.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dist = path.join(root, 'dist')
const out = path.join(dist, 'bundle')
const require = createRequire(path.join(root, 'package.json'))

function jsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name)
    if (statSync(file).isDirectory()) return jsFiles(file)
    return name.endsWith('.js') && !name.endsWith('.test.js') ? [file] : []
  })
}

/** Each module oclif loads by path (commands, the hook), by its path under dist/ without `.js`. */
const entryPoints = {}
for (const file of jsFiles(path.join(dist, 'commands'))) {
  entryPoints[path.relative(dist, file).replace(/\.js$/, '')] = file
}
entryPoints['hooks/command-not-found'] = path.join(dist, 'hooks/command-not-found.js')

/**
 * etcd's rpc.proto (and its imports), parsed now rather than at every start, as protobufjs
 * JSON per service method: `{ "etcdserverpb.KV": { Range: <root with RangeRequest,
 * RangeResponse and the types they use> } }`. A call then builds and resolves only the few
 * types it sends and receives instead of etcd's whole API (~10 ms of a cold `list`).
 */
function etcdMethodJson() {
  const etcdRoot = path.dirname(require.resolve('etcd3/package.json'))
  const etcdRequire = createRequire(path.join(etcdRoot, 'package.json'))
  const loaderRequire = createRequire(etcdRequire.resolve('@grpc/proto-loader'))
  const { loadProtosWithOptionsSync } = loaderRequire('./util.js')
  const protobuf = loaderRequire('protobufjs')
  const protoRoot = loadProtosWithOptionsSync(path.join(etcdRoot, 'proto/rpc.proto'), { keepCase: true })
  protoRoot.resolveAll()
  /** The outermost message or enum that holds `type` (a nested type travels with its parent). */
  const topLevel = (type) => {
    while (type.parent && !(type.parent instanceof protobuf.Root) && (type.parent instanceof protobuf.Type || type.parent instanceof protobuf.Enum)) type = type.parent
    return type
  }
  const collect = (type, into) => {
    const top = topLevel(type)
    if (into.has(top)) return
    into.add(top)
    const visit = (t) => {
      if (!(t instanceof protobuf.Type)) return
      for (const field of t.fieldsArray) if (field.resolvedType) collect(field.resolvedType, into)
      for (const nested of t.nestedArray) visit(nested)
    }
    visit(top)
  }
  const services = {}
  const walk = (namespace) => {
    for (const object of namespace.nestedArray) {
      if (object instanceof protobuf.Service) {
        const methods = {}
        for (const method of object.methodsArray) {
          const types = new Set()
          collect(method.resolvedRequestType, types)
          collect(method.resolvedResponseType, types)
          const subset = new protobuf.Root()
          for (const type of types) subset.define(type.parent.fullName.slice(1) || undefined).add(protobuf[type instanceof protobuf.Type ? 'Type' : 'Enum'].fromJSON(type.name, type.toJSON()))
          methods[method.name] = { request: method.resolvedRequestType.fullName.slice(1), response: method.resolvedResponseType.fullName.slice(1), root: subset.toJSON() }
        }
        services[object.fullName.slice(1)] = { methods, streams: Object.fromEntries(object.methodsArray.map((m) => [m.name, [!!m.requestStream, !!m.responseStream]])) }
      } else if (object instanceof protobuf.Namespace && !(object instanceof protobuf.Type)) walk(object)
    }
  }
  walk(protoRoot)
  return JSON.stringify(services)
}

// Replaces proto-loader's loadSync in etcd3's connection pool. Keeps what grpc-js's
// loadPackageDefinition and etcd3 use: for each service, per method its path, streaming flags,
// (de)serializers and camel-cased originalName, with the options etcd3 passes (keepCase, longs
// and enums as strings, defaults, oneofs). Only the descriptors gRPC reflection needs are left out.
const LEAN_LOADER = `
const __protobuf = require("protobufjs/light");
const __Long = require("long");
// etcd3 asks for 64-bit integers as decimal strings: a range over 10,000 keys converts 40,000
// revisions, versions and lease ids, and long's toString (division by 10^6 in 64-bit halves)
// was ~15% of a cold list. Every value below 2^53 (revisions always are) converts exactly
// through a double; anything larger (lease ids can be) takes long's own exact path.
const __longToString = __Long.prototype.toString;
__Long.prototype.toString = function toString(radix) {
  const high = this.unsigned ? this.high >>> 0 : this.high;
  if ((radix === undefined || radix === 10) && high >= -0x200000 && high < 0x200000) return String(high * 4294967296 + (this.low >>> 0));
  return __longToString.call(this, radix);
};
__protobuf.util.Long = __Long;
__protobuf.configure();
function __etcdPackageDefinition(options) {
  const definition = {};
  for (const [service, { methods, streams }] of Object.entries(__ETCD_METHODS)) {
    const methodDefinitions = {};
    for (const [method, spec] of Object.entries(methods)) {
      // Built on the method's first call: a command that never reaches etcd pays nothing.
      let types;
      const get = () => {
        if (!types) {
          const root = __protobuf.Root.fromJSON(spec.root);
          types = { request: root.lookupType(spec.request), response: root.lookupType(spec.response) };
        }
        return types;
      };
      const serialize = (side) => (arg) => get()[side].encode(get()[side].fromObject(arg)).finish();
      const deserialize = (side) => (buffer) => get()[side].toObject(get()[side].decode(buffer), options);
      methodDefinitions[method] = {
        path: "/" + service + "/" + method,
        requestStream: streams[method][0],
        responseStream: streams[method][1],
        requestSerialize: serialize("request"),
        requestDeserialize: deserialize("request"),
        responseSerialize: serialize("response"),
        responseDeserialize: deserialize("response"),
        originalName: method.charAt(0).toLowerCase() + method.slice(1),
        requestType: { format: "Protocol Buffer 3 DescriptorProto", type: {}, fileDescriptorProtos: [] },
        responseType: { format: "Protocol Buffer 3 DescriptorProto", type: {}, fileDescriptorProtos: [] },
        options: {},
      };
    }
    definition[service] = methodDefinitions;
  }
  return definition;
}
`

const etcdProtoPlugin = {
  name: 'etcd-proto',
  setup(b) {
    b.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      const loader = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, (\{[^}]*\})\)/
      if (!loader.test(source) || !source.includes('const proto_loader_1 = require("@grpc/proto-loader");')) {
        throw new Error('etcd3/lib/connection-pool.js no longer loads rpc.proto as scripts/bundle.js expects: update the etcd-proto plugin')
      }
      const contents = source
        .replace('const proto_loader_1 = require("@grpc/proto-loader");', `const __ETCD_METHODS = ${etcdMethodJson()};\n${LEAN_LOADER}`)
        .replace(loader, '__etcdPackageDefinition($1)')
      return { contents, loader: 'js', resolveDir: path.dirname(args.path) }
    })
  },
}

// Relative imports between tsc's outputs resolve to exactly the file named, in a namespace of
// their own: esbuild folds the case of paths in the file namespace, and src/ui/tui holds
// Grid.tsx next to grid.ts.
const exactRelativePlugin = {
  name: 'exact-relative',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!args.resolveDir.startsWith(dist)) return undefined
      const file = path.resolve(args.resolveDir, args.path)
      return existsSync(file) ? { path: file, namespace: 'dist' } : undefined
    })
    b.onLoad({ filter: /.*/, namespace: 'dist' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'js', resolveDir: path.dirname(args.path) }))
  },
}

// Three cuts in what the CLI never runs. @oclif/core checks its own package.json's engines at
// load (pulling in semver); bundled, that file isn't there, and bin/run.cjs's package already
// requires Node >= 20. Its performance marks (OCLIF_PERFORMANCE / DEBUG only) load Node's
// perf_hooks at start (~2 ms): now on their first use. grpc-js loads proto-loader (and the full
// protobufjs with its .proto parser) only to serve channelz/ORCA admin services, which a client
// never registers.
const trimPlugin = {
  name: 'trim',
  setup(b) {
    b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      if (!source.includes('\ncheckNodeVersion();\n')) throw new Error('@oclif/core/lib/index.js changed: update the trim plugin in scripts/bundle.js')
      return { contents: source.replace('\ncheckNodeVersion();\n', '\n'), loader: 'js', resolveDir: path.dirname(args.path) }
    })
    b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]performance\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      const eager = 'const node_perf_hooks_1 = require("node:perf_hooks");'
      if (!source.includes(eager)) throw new Error('@oclif/core/lib/performance.js changed: update the trim plugin in scripts/bundle.js')
      const lazy = 'const node_perf_hooks_1 = { get performance() { return require("node:perf_hooks").performance }, get PerformanceObserver() { return require("node:perf_hooks").PerformanceObserver } };'
      return { contents: source.replace(eager, lazy), loader: 'js', resolveDir: path.dirname(args.path) }
    })
    b.onResolve({ filter: /^@grpc\/proto-loader$/ }, (args) => (/[\\/]@grpc[\\/]grpc-js[\\/]/.test(args.importer) ? { path: 'proto-loader', namespace: 'trimmed' } : undefined))
    b.onLoad({ filter: /.*/, namespace: 'trimmed' }, () => ({
      contents: "const unavailable = () => { throw new Error('@grpc/proto-loader is not part of the discovery-agent CLI bundle') }\nmodule.exports = { loadSync: unavailable, load: unavailable, fromJSON: unavailable }",
      loader: 'js',
    }))
  },
}

// grpc-js asks Node's net.isIPv6 (and isIP, which falls back to it) about every address it
// resolves and connects to, and that regular expression costs a few ms to compile and run cold
// on every start. An IPv6 address always holds a colon: for an IPv4 address or a host name the
// answer is false without running it. The same answers, only sooner.
const IPV6_CALL = /\(0, net_1\.isIPv6\)\(/g
const IP_CALL = /\(0, net_1\.isIP\)\(/g
const IPV6_CHECK = `
const __isIPv6 = (address) => String(address).includes(":") && (0, net_1.isIPv6)(address);
const __isIP = (address) => ((0, net_1.isIPv4)(address) ? 4 : __isIPv6(address) ? 6 : 0);
`
const ipCheckPlugin = {
  name: 'ip-check',
  setup(b) {
    b.onLoad({ filter: /[\\/]@grpc[\\/]grpc-js[\\/]build[\\/]src[\\/][^\\/]+\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      if (!source.includes('(0, net_1.isIPv6)(') && !source.includes('(0, net_1.isIP)(')) return undefined
      const declaration = 'const net_1 = require("net");'
      if (!source.includes(declaration)) throw new Error(`${args.path} calls net's isIPv6 without \`${declaration}\`: update the ip-check plugin in scripts/bundle.js`)
      // The helpers go in after the calls are rewritten: their own calls stay Node's.
      const contents = source.replace(IPV6_CALL, '__isIPv6(').replace(IP_CALL, '__isIP(').replace(declaration, `${declaration}${IPV6_CHECK}`)
      return { contents, loader: 'js', resolveDir: path.dirname(args.path) }
    })
  },
}

/**
 * The bundle's entry: oclif's `execute` for bin/run.cjs, and each command or hook module behind a
 * getter, so that its modules (and the Node built-ins and packages they import) are initialised
 * only when oclif asks for that one.
 */
const entry = [
  "export { execute } from '@oclif/core'",
  `export const modules = {\n${Object.entries(entryPoints)
    .map(([id, file]) => `  get ${JSON.stringify(id)}() { return require(${JSON.stringify(file)}) },`)
    .join('\n')}\n}`,
].join('\n')

// A script compiled through vm.Script (as bin/code-cache.cjs does, to use a code cache) cannot
// run `import()` without an experimental flag, and oclif's module loader, its tsx/ts-node probe
// and the TUI's Ink and React all use it. So every import() in the bundle becomes a call of
// `__import`, which bin/run.cjs provides with Node's own import(); loaded by a plain require() (as the
// oclif manifest at pack time does), the bundle falls back to its own import(). A string that
// merely mentions "import(", and a method or identifier ending in import, are left alone.
const DYNAMIC_IMPORT = /(?<!["'`.$\w]|=> )import\(/g
const FALLBACK_IMPORT = '((specifier) => import(specifier))'

// The TUI (Ink and React components) is an ES module of its own, dist/bundle/tui.mjs, which
// imports Ink and React from node_modules as ES modules: in the CommonJS bundle its static
// imports would become require()s of ES-only packages. The bundle reaches it where the sources
// do, through run-presenter's dynamic import of App and CheckHistory.
const TUI_MODULES = ['ui/tui/App.js', 'ui/tui/check-history.js'].map((file) => path.join(dist, file))
const tuiPlugin = {
  name: 'tui-module',
  setup(b) {
    b.onResolve({ filter: /^\.\/tui\// }, (args) => {
      const file = path.resolve(args.resolveDir, args.path)
      return args.kind === 'dynamic-import' && TUI_MODULES.includes(file) ? { path: './tui.mjs', external: true } : undefined
    })
  },
}

/** What both builds share. */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Half the bytes to read and hash at every start (2.4 MB instead of 5 MB).
  minify: true,
  // Class names are part of behaviour (describeError matches oclif's parse errors by name).
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
}

rmSync(out, { recursive: true, force: true })
const cli = path.join(out, 'cli.cjs')
const result = await build({
  ...common,
  stdin: { contents: entry, resolveDir: dist, sourcefile: 'discovery-agent-cli.js', loader: 'js' },
  outfile: cli,
  format: 'cjs',
  metafile: true,
  // config.ts finds the yaml package through createRequire(import.meta.url).
  define: { 'import.meta.url': '__importMetaUrl' },
  banner: {
    js: [
      "const __pathToFileURL = require('node:url').pathToFileURL;",
      'const __importMetaUrl = __pathToFileURL(__filename).href;',
      // A relative specifier (./tui.mjs) names a file next to the bundle.
      `const __import = (specifier) => (globalThis.__discoveryImport ?? ${FALLBACK_IMPORT})(specifier.startsWith('./') ? __pathToFileURL(require('node:path').join(__dirname, specifier)).href : specifier);`,
    ].join('\n'),
  },
  // Ink and React (only `watch` loads them, through a dynamic import) stay in node_modules as
  // they are; so do ssh2's optional native add-ons (dockerode's ssh transport, in try/catch)
  // and the TypeScript compiler oclif loads only to read a development checkout's tsconfig.
  external: ['ink', 'react', 'react/*', 'react-devtools-core', 'cpu-features', '*.node', 'typescript'],
  plugins: [tuiPlugin, exactRelativePlugin, etcdProtoPlugin, trimPlugin, ipCheckPlugin],
  logOverride: { 'direct-eval': 'silent' },
})
await build({
  ...common,
  stdin: { contents: TUI_MODULES.map((file) => `export * from ${JSON.stringify(file)}`).join('\n'), resolveDir: dist, sourcefile: 'discovery-agent-tui.js', loader: 'js' },
  outfile: path.join(out, 'tui.mjs'),
  format: 'esm',
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  external: ['ink', 'react', 'react/*', 'react-devtools-core'],
  plugins: [exactRelativePlugin],
})
// What the bundle holds (for `npx esbuild --analyze`-style questions); outside the package.
mkdirSync(path.join(root, '.tmp'), { recursive: true })
writeFileSync(path.join(root, '.tmp/bundle-meta.json'), JSON.stringify(result.metafile))

const code = readFileSync(cli, 'utf8')
// ASCII only, so bin/code-cache.cjs can read the file as latin1 into a one-byte string (a third of
// the time of UTF-8 decoding 2.4 MB). esbuild escapes non-ASCII characters in strings but leaves
// them in regular expressions; there, as everywhere in JavaScript source, \uXXXX means the same.
const rewritten = code
  .replace(DYNAMIC_IMPORT, '__import(')
  .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
if (/require\("(ink|react)[/"]/.test(rewritten)) throw new Error('cli.cjs require()s Ink or React: only dist/bundle/tui.mjs may import them')
if (rewritten.split(FALLBACK_IMPORT).length !== 2) throw new Error('cli.cjs: the banner\'s fallback import() is missing or not alone')
writeFileSync(cli, rewritten)
// What the code cache is keyed by: V8 itself checks only the source's length.
writeFileSync(path.join(out, 'cli.hash'), createHash('sha256').update(rewritten).digest('hex').slice(0, 20))

for (const id of Object.keys(entryPoints)) {
  const up = '../'.repeat(id.split('/').length - 1)
  mkdirSync(path.dirname(path.join(out, id)), { recursive: true })
  writeFileSync(path.join(out, `${id}.js`), `module.exports = require('${up}cli.cjs').modules[${JSON.stringify(id)}]\n`)
}
// The stubs are CommonJS whatever a parent package.json says, so oclif require()s them.
writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n')
