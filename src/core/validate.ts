import { isIP } from 'node:net'
import { UsageError } from './errors.js'

/**
 * Input validation that runs before any write. Names, ids and the prefix end up in etcd
 * keys, so these rules are also what keeps every key inside `<prefix>/`.
 */
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const ID_RE = /^[A-Za-z0-9_.:-]{1,200}$/
const HOSTNAME_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

export function serviceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty'
  if (name.length > 253) return 'is longer than 253 characters'
  const labels = name.split('.')
  for (const label of labels) {
    if (label.length === 0) return 'has an empty label (two dots, or a leading or trailing dot)'
    if (label.length > 63) return `has a label longer than 63 characters ('${label.slice(0, 20)}…')`
    if (!LABEL_RE.test(label)) return 'may hold only lower-case letters, digits and hyphens (not at the start or end of a label), with dots between labels'
  }
  return undefined
}

export function assertServiceName(name: string, what = 'service name'): string {
  const problem = serviceNameProblem(name)
  if (problem) throw new UsageError(`${what} '${clip(name)}' ${problem}`, { hint: "use a DNS label such as 'web' or 'billing.api'" })
  return name
}

export function instanceIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'is empty'
  if (id.length > 200) return 'is longer than 200 characters'
  if (id === '.' || id === '..') return 'may not be . or ..'
  if (!ID_RE.test(id)) return 'may hold only letters, digits and _ . : -'
  return undefined
}

export function assertInstanceId(id: string, what = 'instance id'): string {
  const problem = instanceIdProblem(id)
  if (problem) throw new UsageError(`${what} '${clip(id)}' ${problem}`, { hint: "use e.g. 'web-1' or 'host1:web:80'" })
  return id
}

/** Node names are used in keys and in instance ids, so they follow the id rules. */
export function assertNodeName(node: string): string {
  const problem = instanceIdProblem(node)
  if (problem) throw new UsageError(`node name '${clip(node)}' ${problem}`, { hint: 'set --node or DISCOVERY_NODE to e.g. host-1' })
  return node
}

export function assertPort(value: string | number, what = 'port'): number {
  const text = String(value).trim()
  const port = Number(text)
  if (!/^\d+$/.test(text) || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new UsageError(`${what} '${clip(text)}' is not a port number`, { hint: 'use an integer from 1 to 65535' })
  }
  return port
}

export function isHostname(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false
  const labels = value.replace(/\.$/, '').split('.')
  // An all-numeric last label is no host name (RFC 3696): '999.1.1.1' is a mistyped IPv4 address.
  if (/^\d+$/.test(labels[labels.length - 1])) return false
  return labels.every((label) => HOSTNAME_LABEL_RE.test(label))
}

/** IPv4, IPv6 (bare or in brackets) or a hostname. Returns the address without brackets. */
export function assertAddress(value: string, what = 'address'): string {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  if (isIP(bare) || isHostname(bare)) return bare
  throw new UsageError(`${what} '${clip(value)}' is not an IP address or host name`, { hint: 'use e.g. 10.0.0.5, ::1 or db.internal' })
}

export function assertPrefix(prefix: string): string {
  if (!prefix.startsWith('/')) {
    throw new UsageError(`prefix '${clip(prefix)}' must start with /`, { hint: 'use e.g. /discovery' })
  }
  const trimmed = prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix
  if (trimmed === '/' || trimmed.length === 0) {
    throw new UsageError(`prefix '${clip(prefix)}' is the root of the keyspace`, { hint: 'use a folder such as /discovery' })
  }
  const parts = trimmed.split('/').slice(1)
  if (parts.some((part) => part === '..' || part === '.' || part === '')) {
    throw new UsageError(`prefix '${clip(prefix)}' contains '..', '.' or an empty segment`, { hint: 'use e.g. /discovery or /team-a/discovery' })
  }
  if (!/^[A-Za-z0-9_.\-/]+$/.test(trimmed)) {
    throw new UsageError(`prefix '${clip(prefix)}' may hold only letters, digits and _ . - /`, { hint: 'use e.g. /discovery' })
  }
  return trimmed
}

/** `key=value` for `--meta`; the key is a non-empty word, the value may be empty only if allowEmpty. */
export function parseMetaPair(pair: string, what = '--meta'): [string, string] {
  const eq = pair.indexOf('=')
  if (eq <= 0) throw new UsageError(`${what} '${clip(pair)}' is not key=value`, { hint: 'use e.g. --meta version=1.2' })
  const key = pair.slice(0, eq)
  const value = pair.slice(eq + 1)
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(key)) {
    throw new UsageError(`${what} key '${clip(key)}' may hold only letters, digits and _ . -`, { hint: 'use e.g. --meta version=1.2' })
  }
  if (value.length === 0) throw new UsageError(`${what} '${clip(pair)}' has an empty value`, { hint: 'give a value after =, e.g. version=1.2' })
  if (value.length > 4096) throw new UsageError(`${what} value of '${key}' is longer than 4096 characters`, { hint: 'store large data elsewhere' })
  return [key, value]
}

export function assertTag(tag: string, what = '--tag'): string {
  if (tag.length === 0) throw new UsageError(`${what} is empty`, { hint: 'give a tag, e.g. --tag primary' })
  if (tag.length > 256 || /[\u0000-\u001f,]/.test(tag)) {
    throw new UsageError(`${what} '${clip(tag)}' is too long or holds a comma or control character`, { hint: 'use short tags such as v2 or primary' })
  }
  return tag
}

/** Keeps error lines short when a value is huge (a 100 KiB label must not flood stderr). */
export function clip(value: string, max = 80): string {
  const printable = value.replace(/[\u0000-\u001f\u007f]/g, '?')
  return printable.length > max ? `${printable.slice(0, max)}…` : printable
}
