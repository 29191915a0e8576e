#!/usr/bin/env node
// Bundles the CLI for a fast cold start (docs/performance.md): every command, the oclif hook
// and @oclif/core itself become ES modules under dist/bundle/, split so that a command loads
// only the chunks it reaches (`list` never loads dockerode, Ink or React; zod, yaml and the
// TUI stay behind the dynamic imports the sources already use). Unbundled, a `list` resolved
// and read ~400 files; bundled it reads a handful.
//
// Input is tsc's output (dist/), so the bundle runs exactly the code the library export and
// the tests run. dist/index.js (the library) stays unbundled.
//
// etcd3 parses its .proto files at load time (protobufjs' parser, then a descriptor for every
// message that only gRPC reflection would use): ~100 ms of every command that talks to etcd.
// Here the parse happens once, at build time, and the bundle carries the resulting JSON; a
// lean package definition (the same paths, (de)serializers and options etcd3 passes) is built
// from it with protobufjs/light at run time.
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

const entryPoints = {}
for (const file of jsFiles(path.join(dist, 'commands'))) {
  entryPoints[path.relative(dist, file).replace(/\.js$/, '')] = file
}
entryPoints['hooks/command-not-found'] = path.join(dist, 'hooks/command-not-found.js')
// What bin/run.js imports: oclif's entry point, from the same chunk the commands extend.
entryPoints.oclif = 'discovery-agent:oclif'

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

// Two cuts in what the CLI never runs. @oclif/core checks its own package.json's engines at
// load (pulling in semver); bundled, that file isn't there, and bin/run.js's package already
// requires Node >= 20. grpc-js loads proto-loader (and the full protobufjs with its .proto
// parser) only to serve channelz/ORCA admin services, which a client never registers.
const trimPlugin = {
  name: 'trim',
  setup(b) {
    b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      if (!source.includes('\ncheckNodeVersion();\n')) throw new Error('@oclif/core/lib/index.js changed: update the trim plugin in scripts/bundle.js')
      return { contents: source.replace('\ncheckNodeVersion();\n', '\n'), loader: 'js', resolveDir: path.dirname(args.path) }
    })
    b.onResolve({ filter: /^@grpc\/proto-loader$/ }, (args) => (/[\\/]@grpc[\\/]grpc-js[\\/]/.test(args.importer) ? { path: 'proto-loader', namespace: 'trimmed' } : undefined))
    b.onLoad({ filter: /.*/, namespace: 'trimmed' }, () => ({
      contents: "const unavailable = () => { throw new Error('@grpc/proto-loader is not part of the discovery-agent CLI bundle') }\nmodule.exports = { loadSync: unavailable, load: unavailable, fromJSON: unavailable }",
      loader: 'js',
    }))
  },
}

const oclifEntryPlugin = {
  name: 'oclif-entry',
  setup(b) {
    b.onResolve({ filter: /^discovery-agent:oclif$/ }, () => ({ path: 'oclif', namespace: 'discovery-agent' }))
    b.onLoad({ filter: /.*/, namespace: 'discovery-agent' }, () => ({ contents: "export { execute } from '@oclif/core'", resolveDir: root, loader: 'js' }))
  },
}

rmSync(out, { recursive: true, force: true })
const result = await build({
  entryPoints,
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  // Class names are part of behaviour (describeError matches oclif's parse errors by name).
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  // The CommonJS dependencies (oclif, grpc-js, dockerode) call require for Node's built-ins,
  // and some name __dirname in code paths the CLI doesn't take (ssh2's wasm loader, grpc-js' xDS).
  banner: {
    js: [
      "import { createRequire as __createRequire } from 'node:module';",
      "import { dirname as __pathDirname } from 'node:path';",
      "import { fileURLToPath as __fileURLToPath } from 'node:url';",
      'const require = __createRequire(import.meta.url);',
      'const __filename = __fileURLToPath(import.meta.url);',
      'const __dirname = __pathDirname(__filename);',
    ].join('\n'),
  },
  // Ink and React (only `watch` loads them, through a dynamic import) stay in node_modules as
  // they are; so do ssh2's optional native add-ons (dockerode's ssh transport, in try/catch)
  // and the TypeScript compiler oclif loads only to read a development checkout's tsconfig.
  external: ['ink', 'react', 'react/*', 'react-devtools-core', 'cpu-features', '*.node', 'typescript'],
  plugins: [exactRelativePlugin, etcdProtoPlugin, trimPlugin, oclifEntryPlugin],
  logOverride: { 'direct-eval': 'silent', 'commonjs-variable-in-esm': 'silent' },
})
// What each output holds (for `npx esbuild --analyze`-style questions); outside the package.
mkdirSync(path.join(root, '.tmp'), { recursive: true })
writeFileSync(path.join(root, '.tmp/bundle-meta.json'), JSON.stringify(result.metafile))
// The bundle is ESM whatever a parent package.json says.
writeFileSync(path.join(out, 'package.json'), '{ "type": "module" }\n')
