/**
 * The library entry: `import { … } from 'discovery-agent'`. It loads neither oclif nor Ink.
 */
export * from './core/errors.js'
export * from './core/model.js'
export * from './core/validate.js'
export { parseDuration, formatDuration } from './core/duration.js'
export { resolveConfig, normalizeEndpoints, type Config, type EtcdConnection, type DockerConnection } from './core/config.js'
export { createEtcdClient } from './core/etcd.js'
export { Registry, type Listing, type RecordProblem } from './core/registry.js'
export { PrefixMirror, type MirrorEntry } from './core/prefix-mirror.js'
export { ManagedLease } from './core/lease.js'
export { instanceKey, nodeKey, servicePrefix } from './core/keys.js'
