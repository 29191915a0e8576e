import { assertInstanceId, assertNodeName, assertServiceName } from './validate.js'

/** The schema-1 key layout. Every key the project writes is built here, after validation. */
export const SCHEMA = 1

export const servicesPrefix = (prefix: string): string => `${prefix}/services/`
export const servicePrefix = (prefix: string, service: string): string => `${prefix}/services/${assertServiceName(service)}/`
export const nodesPrefix = (prefix: string): string => `${prefix}/nodes/`
export const electionPrefix = (prefix: string): string => `${prefix}/election/`
/** Leader-fenced state (e.g. when a manual instance first turned critical) lives here. */
export const leaderStatePrefix = (prefix: string): string => `${prefix}/leader/`

export function instanceKey(prefix: string, service: string, id: string): string {
  return `${servicePrefix(prefix, service)}${assertInstanceId(id)}`
}

export function nodeKey(prefix: string, node: string): string {
  return `${nodesPrefix(prefix)}${assertNodeName(node)}`
}

/** `<prefix>/services/<service>/<id>` → its parts, or undefined for anything else. */
export function parseInstanceKey(prefix: string, key: string): { service: string; id: string } | undefined {
  const base = servicesPrefix(prefix)
  if (!key.startsWith(base)) return undefined
  const rest = key.slice(base.length).split('/')
  if (rest.length !== 2 || !rest[0] || !rest[1]) return undefined
  return { service: rest[0], id: rest[1] }
}
