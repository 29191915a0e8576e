import dgram from 'node:dgram'
import net from 'node:net'

/**
 * Ports for the servers a test starts (agents' DNS and HTTP, HAProxy, Prometheus, a private etcd)
 * and for ports a test needs closed.
 *
 * Not `listen(0)`: the kernel hands those out of the ephemeral range (32768–60999), which is also
 * where Docker publishes containers' ports and where outgoing connections get their local ports.
 * Between choosing a port that way and a child process binding it, a container another test file
 * starts can take it, and the server fails to start (a beforeAll that throws). These come from
 * blocks below that range which nothing on the test machine hands out: one per vitest worker, so
 * two files running side by side never choose the same port, and in turn from a random start, so
 * a file does not reuse a port it just released. testenv's etcd members (23791–23894) and the
 * fault suite's private clusters (24701–25823) sit between the blocks.
 */
const BLOCKS: ReadonlyArray<readonly [number, number]> = [
  [20_000, 23_000],
  [26_000, 29_000],
  [29_000, 32_000],
  [17_000, 20_000],
]

/** VITEST_POOL_ID: 1…maxWorkers in a worker; outside one (a script, globalSetup) the first block. */
const pool = Number(process.env.VITEST_POOL_ID ?? 1)
if (!Number.isInteger(pool) || pool < 1 || pool > BLOCKS.length) throw new Error(`test ports: VITEST_POOL_ID ${process.env.VITEST_POOL_ID} has no port block (at most ${BLOCKS.length} workers)`)
const [blockStart, blockEnd] = BLOCKS[pool - 1]
const BLOCK = blockEnd - blockStart
let next = Math.floor(Math.random() * BLOCK)

function candidate(): number {
  return blockStart + (next++ % BLOCK)
}

function holdTcp(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(undefined))
    // 0.0.0.0: a port any other process listens on, on any address, is refused here too.
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => resolve(server))
  })
}

function holdUdp(port: number): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4')
    socket.once('error', () => {
      socket.close()
      resolve(undefined)
    })
    socket.bind(port, '0.0.0.0', () => resolve(socket))
  })
}

/** `count` distinct ports free for TCP and UDP on every address now, outside the ranges the kernel and Docker hand out. */
export async function testPorts(count: number): Promise<number[]> {
  const held: Array<{ port: number; tcp: net.Server; udp: dgram.Socket }> = []
  try {
    for (let tries = 0; held.length < count; tries++) {
      if (tries > BLOCK) throw new Error(`no ${count} free ports in ${blockStart}–${blockEnd - 1}`)
      const port = candidate()
      const tcp = await holdTcp(port)
      if (!tcp) continue
      const udp = await holdUdp(port)
      if (!udp) {
        await new Promise((resolve) => tcp.close(resolve))
        continue
      }
      held.push({ port, tcp, udp })
    }
    return held.map((h) => h.port)
  } finally {
    await Promise.all(held.map((h) => Promise.all([new Promise((resolve) => h.tcp.close(resolve)), new Promise<void>((resolve) => h.udp.close(() => resolve()))])))
  }
}
