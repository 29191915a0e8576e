import { describe, expect, it } from 'vitest'
import { formatErrorLine, UsageError } from '../errors.js'
import { parseProbeTarget } from './probe-target.js'

describe('parseProbeTarget', () => {
  it.each([
    ['http://10.0.0.5:8080/health', { kind: 'http', url: 'http://10.0.0.5:8080/health' }],
    ['https://api.internal/healthz?full=1', { kind: 'http', url: 'https://api.internal/healthz?full=1' }],
    ['HTTP://Example.com:80', { kind: 'http', url: 'http://example.com/' }],
    ['http://[::1]:8080/', { kind: 'http', url: 'http://[::1]:8080/' }],
    ['http://user:pw@host:81/x', { kind: 'http', url: 'http://user:pw@host:81/x' }],
    ['tcp://10.0.0.5:5432', { kind: 'tcp', host: '10.0.0.5', port: 5432 }],
    ['tcp://db.internal:6379/', { kind: 'tcp', host: 'db.internal', port: 6379 }],
    ['tcp://[::1]:9', { kind: 'tcp', host: '::1', port: 9 }],
    ['docker://web-1', { kind: 'docker', container: 'web-1' }],
    ['docker://3f2a9c1b', { kind: 'docker', container: '3f2a9c1b' }],
    ['  tcp://h:1  ', { kind: 'tcp', host: 'h', port: 1 }],
  ])('Given %j, When parsed, Then it is %j', (text, target) => {
    expect(parseProbeTarget(text)).toEqual(target)
  })

  it.each([
    ['ftp://x', "target 'ftp://x' has an unknown scheme (use http://, https://, tcp:// or docker://)"],
    ['localhost:8080', "target 'localhost:8080' is not a URL"],
    ['', "target '' is not a URL"],
    ['tcp://h:0', "target 'tcp://h:0' port '0' is not a port number (use an integer from 1 to 65535)"],
    ['tcp://h:65536', "target 'tcp://h:65536' port '65536' is not a port number"],
    ['tcp://h:abc', "target 'tcp://h:abc' port 'abc' is not a port number"],
    ['tcp://h', "target 'tcp://h' has no port"],
    ['tcp://:80', "target 'tcp://:80' has no host"],
    ['tcp://h:80/path', "target 'tcp://h:80/path' may hold only a host and a port"],
    ['tcp://bad_host!:80', "target 'tcp://bad_host!:80' host 'bad_host!' is not an IP address or host name"],
    ['http://h:0/', "target 'http://h:0/' port '0' is not a port number"],
    ['http://h:65536/', "target 'http://h:65536/' port '65536' is not a port number"],
    ['http://h:abc/', "target 'http://h:abc/' port 'abc' is not a port number"],
    ['http:///health', "target 'http:///health' has no host"],
    ['https://', "target 'https://' has no host"],
    ['http://a b/', "target 'http://a b/' is not a valid URL"],
    ['docker://', "target 'docker://' has no container"],
    ['docker://web/1', "target 'docker://web/1' is not a container name or id"],
  ])('Given the bad target %j, When parsed, Then one UsageError line names it and says how to fix it', (text, line) => {
    // When
    let error: unknown
    try {
      parseProbeTarget(text)
    } catch (caught) {
      error = caught
    }
    // Then
    expect(error).toBeInstanceOf(UsageError)
    const formatted = formatErrorLine(error as UsageError)
    expect(formatted.startsWith(line)).toBe(true)
    expect((error as UsageError).hint).toBeTruthy()
    expect(formatted).not.toContain('\n')
  })
})
