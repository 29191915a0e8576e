/**
 * The library entry: `import { … } from 'discovery-agent'`. It loads neither oclif nor Ink.
 */
export * from './core/errors.js'
export * from './core/model.js'
export * from './core/schema.js'
export * from './core/validate.js'
export { parseDuration, formatDuration } from './core/duration.js'
export { resolveConfig, normalizeEndpoints, type Config, type EtcdConnection, type DockerConnection } from './core/config.js'
export { createEtcdClient } from './core/etcd.js'
export { Registry, type Listing, type RecordProblem } from './core/registry.js'
export { PrefixMirror, type MirrorEntry } from './core/prefix-mirror.js'
export { ManagedLease } from './core/lease.js'
export { instanceKey, nodeKey, servicePrefix } from './core/keys.js'
export { buildManualRecord, defaultManualInstanceId, type ManualInstanceRequest } from './core/manual-record.js'
export { etcdConnectionFrom, type EtcdOptions, type RegistryOptions } from './core/resolver/connection.js'
export { createResolver, Resolver, type ResolverOptions, type ResolverEvents } from './core/resolver/resolver.js'
export {
  registerGrpcResolver,
  DISCOVERY_SCHEME,
  type GrpcModule,
  type GrpcResolverOptions,
  type GrpcResolverRegistration,
} from './core/resolver/grpc.js'
export { registerSelf, SelfRegistration, type RegisterSelfOptions, type SelfRegistrationEvents } from './core/resolver/register-self.js'
