import { readFileSync } from 'node:fs'
import path from 'node:path'
import Docker from 'dockerode'
import type { DockerConnection } from '../config.js'
import { UnavailableError, UsageError, type DiscoveryError } from '../errors.js'

export interface DockerClientOptions {
  /** Request timeout; leave undefined for the agent's event stream, which must never time out. */
  timeoutMs?: number
}

/** A dockerode client for `unix:///path`, `tcp://host:port` (TLS from DOCKER_CERT_PATH when verifying). */
export function createDockerClient(connection: DockerConnection, options: DockerClientOptions = {}): Docker {
  const timeout = options.timeoutMs
  if (connection.host.startsWith('unix://')) {
    return new Docker({ socketPath: connection.host.slice('unix://'.length), timeout })
  }
  const url = new URL(connection.host.replace(/^tcp:/, connection.tlsVerify ? 'https:' : 'http:'))
  const protocol = url.protocol === 'https:' ? 'https' : 'http'
  const base = { host: url.hostname, port: Number(url.port || (protocol === 'https' ? 2376 : 2375)), protocol, timeout } as const
  if (protocol === 'https' && connection.certPath) {
    const read = (file: string): Buffer => {
      try {
        return readFileSync(path.join(connection.certPath!, file))
      } catch {
        throw new UsageError(`DOCKER_CERT_PATH ${connection.certPath} has no readable ${file}`, { hint: 'point DOCKER_CERT_PATH at a folder with ca.pem, cert.pem and key.pem' })
      }
    }
    return new Docker({ ...base, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') })
  }
  return new Docker(base)
}

/** One line naming the Docker host and the cause. */
export function dockerUnavailable(error: unknown, connection: Pick<DockerConnection, 'host'>, doing = 'Docker request'): DiscoveryError {
  const err = error as NodeJS.ErrnoException & { statusCode?: number; json?: { message?: string } }
  const code = err?.code
  let cause: string
  let hint = 'is dockerd running? check --docker-host / DOCKER_HOST'
  if (code === 'ENOENT') cause = 'socket not found'
  else if (code === 'ECONNREFUSED') cause = 'connection refused'
  else if (code === 'EACCES') {
    cause = 'permission denied on the socket'
    hint = 'run as root or add the user to the docker group'
  } else if (code === 'ETIMEDOUT' || /timeout/i.test(String(err?.message))) cause = 'timed out'
  else cause = (err?.json?.message ?? err?.message ?? String(error)).split('\n')[0]
  return new UnavailableError(`${doing} failed at ${connection.host}: ${cause}`, { hint, cause: error })
}
