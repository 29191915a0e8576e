import { UsageError } from '../errors.js'
import { assertAddress, assertPort, clip } from '../validate.js'

export type ProbeTarget =
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'docker'; container: string }

const SCHEME_HINT = 'use http://, https://, tcp:// or docker://'
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s
/** Docker container names and (short) ids. */
const CONTAINER_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

/**
 * Parses a `probe` target: `http(s)://host[:port]/path`, `tcp://host:port` or
 * `docker://<container>`. Every rejection is one line that names the target and says
 * how to fix it.
 */
export function parseProbeTarget(text: string): ProbeTarget {
  const target = text.trim()
  const label = `target '${clip(target)}'`
  const match = SCHEME_RE.exec(target)
  if (!match) {
    throw new UsageError(`${label} is not a URL`, { hint: 'use e.g. http://10.0.0.5:8080/health, tcp://10.0.0.5:5432 or docker://web-1' })
  }
  const scheme = match[1].toLowerCase()
  const rest = match[2]
  switch (scheme) {
    case 'http':
    case 'https':
      return parseHttpTarget(target, rest, label)
    case 'tcp':
      return parseTcpTarget(rest, label)
    case 'docker':
      return parseDockerTarget(rest, label)
    default:
      throw new UsageError(`${label} has an unknown scheme`, { hint: SCHEME_HINT })
  }
}

function parseHttpTarget(target: string, rest: string, label: string): ProbeTarget {
  // The WHATWG parser reads `http:///x` as host `x`, so the authority is checked by hand first.
  const authority = /^[^/?#]*/.exec(rest)?.[0] ?? ''
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1)
  const { host, port } = splitHostPort(hostPort)
  if (host.length === 0) throw new UsageError(`${label} has no host`, { hint: 'use e.g. http://10.0.0.5:8080/health' })
  if (port !== undefined) assertPort(port, `${label} port`)
  let url: URL
  try {
    url = new URL(target)
  } catch {
    throw new UsageError(`${label} is not a valid URL`, { hint: 'check the host and path, e.g. http://10.0.0.5:8080/health' })
  }
  return { kind: 'http', url: url.href }
}

function parseTcpTarget(rest: string, label: string): ProbeTarget {
  const hint = 'use tcp://host:port, e.g. tcp://10.0.0.5:5432'
  const authority = rest.endsWith('/') ? rest.slice(0, -1) : rest
  if (/[/?#@]/.test(authority)) throw new UsageError(`${label} may hold only a host and a port`, { hint })
  const { host, port } = splitHostPort(authority)
  if (host.length === 0) throw new UsageError(`${label} has no host`, { hint })
  if (port === undefined) throw new UsageError(`${label} has no port`, { hint })
  return { kind: 'tcp', host: assertAddress(host, `${label} host`), port: assertPort(port, `${label} port`) }
}

function parseDockerTarget(rest: string, label: string): ProbeTarget {
  const hint = 'use docker://<container name or id>, e.g. docker://web-1'
  if (rest.length === 0) throw new UsageError(`${label} has no container`, { hint })
  if (!CONTAINER_RE.test(rest)) throw new UsageError(`${label} is not a container name or id`, { hint })
  return { kind: 'docker', container: rest }
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` → parts; the port is left as text for assertPort's message. */
function splitHostPort(text: string): { host: string; port?: string } {
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) return { host: text }
    const after = text.slice(close + 1)
    return { host: text.slice(0, close + 1), port: after.startsWith(':') ? after.slice(1) : after.length > 0 ? after : undefined }
  }
  const colon = text.lastIndexOf(':')
  if (colon < 0) return { host: text }
  return { host: text.slice(0, colon), port: text.slice(colon + 1) }
}
