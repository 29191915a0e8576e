import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UsageError } from '../errors.js'
import {
  createCheckAgents,
  destroyCheckAgents,
  dockerHealthToStatus,
  firstLine,
  httpCheck,
  parseExpectStatus,
  statusMatches,
  tcpCheck,
  type CheckAgents,
} from './checks.js'

/** A real server on 127.0.0.1 whose routes decide status and body; counts sockets to prove reuse. */
function startServer(): Promise<{ server: http.Server; base: string; connections: () => number }> {
  let connections = 0
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    switch (url.pathname) {
      case '/status': {
        res.writeHead(Number(url.searchParams.get('code')), { location: '/elsewhere' })
        res.end('status page')
        return
      }
      case '/body':
        res.end(url.searchParams.get('text') ?? '')
        return
      case '/big':
        // 1 MiB: more than the check reads.
        res.end(Buffer.alloc(1024 * 1024, 'a'))
        return
      case '/hang':
        return // never answers
      case '/slow-body':
        res.writeHead(200)
        res.write('start ')
        return // body never ends
      default:
        res.end('ok')
    }
  })
  server.on('connection', () => connections++)
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve({ server, base: `http://127.0.0.1:${port}`, connections: () => connections })
    })
  })
}

/** A port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('parseExpectStatus', () => {
  it.each([
    ['200', [{ from: 200, to: 200 }]],
    ['200,204', [{ from: 200, to: 200 }, { from: 204, to: 204 }]],
    ['200-299', [{ from: 200, to: 299 }]],
    ['2xx', [{ from: 200, to: 299 }]],
    [' 2XX , 304 ', [{ from: 200, to: 299 }, { from: 304, to: 304 }]],
  ])('Given %j, When parsed, Then it gives the ranges', (text, ranges) => {
    expect(parseExpectStatus(text)).toEqual(ranges)
  })

  it.each(['', 'ok', '20', '2000', '299-200', '600', '099', '6xx', '200,', '200-', 'x200'])(
    'Given the bad text %j, When parsed, Then a UsageError names it',
    (text) => {
      expect(() => parseExpectStatus(text)).toThrow(UsageError)
    },
  )

  it('Given ranges, When matching statuses, Then bounds are inclusive', () => {
    const ranges = parseExpectStatus('200-204,3xx')
    expect([199, 200, 204, 205, 300, 399, 400].map((code) => statusMatches(ranges, code))).toEqual([false, true, true, false, true, true, false])
  })
})

describe('httpCheck (real server)', () => {
  let server: http.Server
  let base: string
  let connections: () => number
  let agents: CheckAgents

  beforeAll(async () => {
    ;({ server, base, connections } = await startServer())
    agents = createCheckAgents()
  })
  afterAll(async () => {
    destroyCheckAgents(agents)
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('Given a 200 answer, When checked, Then it passes with "HTTP 200 in N ms"', async () => {
    const result = await httpCheck({ url: `${base}/`, timeoutMs: 2000, agent: agents })
    expect(result.status).toBe('passing')
    expect(result.output).toMatch(/^HTTP 200 in \d+ ms$/)
    expect(result.latencyMs).toBeGreaterThanOrEqual(0)
  })

  it.each([
    [204, 'passing'],
    [302, 'passing'], // redirects are answers, not followed
    [399, 'passing'],
    [404, 'critical'],
    [500, 'critical'],
    [503, 'critical'],
    [429, 'warning'],
  ] as const)('Given status %i and the default expectation, When checked, Then it is %s', async (code, status) => {
    const result = await httpCheck({ url: `${base}/status?code=${code}`, timeoutMs: 2000, agent: agents })
    expect(result.status).toBe(status)
    expect(result.output).toContain(`HTTP ${code}`)
  })

  it('Given expectStatus 200,204, When the server answers 302, Then it is critical and the output says what was expected', async () => {
    const result = await httpCheck({ url: `${base}/status?code=302`, timeoutMs: 2000, expectStatus: '200,204', agent: agents })
    expect(result.status).toBe('critical')
    expect(result.output).toMatch(/^HTTP 302 in \d+ ms \(expected 200,204\)$/)
  })

  it('Given expectStatus 4xx, When the server answers 404, Then it passes', async () => {
    const result = await httpCheck({ url: `${base}/status?code=404`, timeoutMs: 2000, expectStatus: '4xx', agent: agents })
    expect(result.status).toBe('passing')
  })

  it('Given 429 is expected, When the server answers 429, Then it passes, not warns', async () => {
    const result = await httpCheck({ url: `${base}/status?code=429`, timeoutMs: 2000, expectStatus: '200,429', agent: agents })
    expect(result.status).toBe('passing')
  })

  it('Given a body regex, When the body matches or not, Then it passes or is critical', async () => {
    const good = await httpCheck({ url: `${base}/body?text=status%3A%20healthy`, timeoutMs: 2000, expectBody: 'status: (ok|healthy)', agent: agents })
    const bad = await httpCheck({ url: `${base}/body?text=degraded`, timeoutMs: 2000, expectBody: 'healthy', agent: agents })
    expect(good.status).toBe('passing')
    expect(bad.status).toBe('critical')
    expect(bad.output).toMatch(/body does not match \/healthy\//)
  })

  it('Given a 1 MiB body and a regex, When checked, Then only the first 64 KiB are read and it still answers', async () => {
    const result = await httpCheck({ url: `${base}/big`, timeoutMs: 2000, expectBody: '^a+$', agent: agents })
    expect(result.status).toBe('passing')
  })

  it('Given a server that never answers, When checked with 200 ms, Then it is critical "timeout after 200 ms"', async () => {
    const result = await httpCheck({ url: `${base}/hang`, timeoutMs: 200, agent: agents })
    expect(result).toMatchObject({ status: 'critical', output: 'timeout after 200 ms' })
  })

  it('Given a body that never ends and no regex, When checked, Then the status decides and the call returns', async () => {
    const result = await httpCheck({ url: `${base}/slow-body`, timeoutMs: 300, agent: agents })
    expect(result.status).toBe('passing')
  })

  it('Given a body regex and a body that never ends, When checked, Then it times out', async () => {
    const result = await httpCheck({ url: `${base}/slow-body`, timeoutMs: 200, expectBody: 'never', agent: agents })
    expect(result).toMatchObject({ status: 'critical', output: 'timeout after 200 ms' })
  })

  it('Given a closed port, When checked, Then it is critical with the connect error', async () => {
    const port = await closedPort()
    const result = await httpCheck({ url: `http://127.0.0.1:${port}/`, timeoutMs: 2000, agent: agents })
    expect(result).toMatchObject({ status: 'critical', output: `connect ECONNREFUSED 127.0.0.1:${port}` })
  })

  it('Given one keep-alive agent, When 20 checks run one after another, Then they share one socket', async () => {
    const own = createCheckAgents()
    const before = connections()
    for (let i = 0; i < 20; i++) {
      const result = await httpCheck({ url: `${base}/status?code=200`, timeoutMs: 2000, agent: own.http })
      expect(result.status).toBe('passing')
    }
    expect(connections() - before).toBe(1)
    destroyCheckAgents(own)
  })

  it('Given a server that resets a reused keep-alive socket, When checked again, Then it retries once on a fresh socket and passes', async () => {
    // Given a raw HTTP server that answers the first request on a connection and resets on the second
    const raw = net.createServer((socket) => {
      let served = 0
      socket.on('data', () => {
        if (served++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok')
        else socket.resetAndDestroy()
      })
    })
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
    const { port } = raw.address() as AddressInfo
    const own = createCheckAgents()
    try {
      // When
      const first = await httpCheck({ url: `http://127.0.0.1:${port}/`, timeoutMs: 2000, agent: own })
      const second = await httpCheck({ url: `http://127.0.0.1:${port}/`, timeoutMs: 2000, agent: own })
      // Then
      expect(first.status).toBe('passing')
      expect(second.status).toBe('passing')
    } finally {
      destroyCheckAgents(own)
      await new Promise((resolve) => raw.close(resolve))
    }
  })

  it('Given bad configuration, When checked, Then it rejects with a UsageError before any request', async () => {
    await expect(httpCheck({ url: `${base}/`, timeoutMs: 100, expectStatus: 'ok' })).rejects.toThrow(UsageError)
    await expect(httpCheck({ url: `${base}/`, timeoutMs: 100, expectBody: '(' })).rejects.toThrow(UsageError)
    await expect(httpCheck({ url: 'ftp://x/', timeoutMs: 100 })).rejects.toThrow(UsageError)
    await expect(httpCheck({ url: 'not a url', timeoutMs: 100 })).rejects.toThrow(UsageError)
  })
})

describe('tcpCheck (real sockets)', () => {
  it('Given a listening server, When checked, Then it passes', async () => {
    const server = net.createServer((socket) => socket.end())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const result = await tcpCheck({ host: '127.0.0.1', port, timeoutMs: 2000 })
    expect(result.status).toBe('passing')
    expect(result.output).toMatch(new RegExp(`^TCP connect to 127.0.0.1:${port} in \\d+ ms$`))
    await new Promise((resolve) => server.close(resolve))
  })

  it('Given a closed port, When checked, Then it is critical with ECONNREFUSED', async () => {
    const port = await closedPort()
    const result = await tcpCheck({ host: '127.0.0.1', port, timeoutMs: 2000 })
    expect(result).toMatchObject({ status: 'critical', output: `connect ECONNREFUSED 127.0.0.1:${port}` })
  })

  it('Given an unroutable address, When checked with 150 ms, Then it is critical by the deadline', async () => {
    // TEST-NET-1 (RFC 5737): depending on the host's network the SYN vanishes (timeout) or is
    // refused or unreachable at once; either way the check must end critical, on time.
    const result = await tcpCheck({ host: '192.0.2.1', port: 9, timeoutMs: 150 })
    expect(result.status).toBe('critical')
    expect(result.output).toMatch(/timeout after 150 ms|EHOSTUNREACH|ENETUNREACH|ECONNREFUSED/)
  })
})

describe('dockerHealthToStatus', () => {
  it.each([
    ['healthy', 'passing'],
    ['unhealthy', 'critical'],
    ['starting', 'unknown'],
    [undefined, 'unknown'],
  ] as const)('Given Docker says %s, Then the status is %s', (health, status) => {
    expect(dockerHealthToStatus(health)).toBe(status)
  })
})

describe('firstLine', () => {
  it('Given multi-line output with leading blanks, Then it keeps the first non-empty line, trimmed', () => {
    expect(firstLine('\n\n  wget: server returned error  \nmore\n')).toBe('wget: server returned error')
  })
})

describe('expected-body patterns from outside', () => {
  it('Given a catastrophic-backtracking pattern, When it meets a crafted body, Then matching finishes in linear time', async () => {
    const { compileBodyPattern } = await import('./body-pattern.js')
    // Given ^(a+)+$ (exponential on a backtracking engine) and 50,000 a's then b
    const pattern = compileBodyPattern('^(a+)+$')
    const started = performance.now()
    // When matched
    const matched = pattern.test(`${'a'.repeat(50_000)}b`)
    // Then it does not match, and returns (a backtracking engine would not within the test's life)
    expect(matched).toBe(false)
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it.each([['(a)\\1', /back-references/], ['(?=a)b', /linear time/], ['x'.repeat(1025), /1024/]])('Given %s, When compiled, Then it is refused with the reason', async (source, reason) => {
    const { bodyPatternProblem } = await import('./body-pattern.js')
    expect(bodyPatternProblem(source)).toMatch(reason)
  })
})
