import dgram from 'node:dgram'
import net from 'node:net'

/**
 * Ports for the servers a test starts (agents' DNS and HTTP, HAProxy, Prometheus, a private etcd).
 *
 * Not `listen(0)`: the kernel hands those out of the ephemeral range (32768–60999), which is also
 * where Docker publishes containers' ports and where outgoing connections get their local ports.
 * Between choosing a port that way and a child process binding it, a container another test file
 * starts can take it, and the server fails to start (a beforeAll that throws). These come from
 * 20000–31999 instead, which nothing on the test machine hands out, a block per vitest worker so
 * that two files running side by side never choose the same one, in turn from a random start so
 * that a file does not reuse a port it just released.
 */
const FIRST = 20_000
const BLOCK = 3_000
/** testenv's etcd members (clients 23791–23794, peers 23891–23894): stopped and restarted by some tests, never handed out. */
const RESERVED = { from: 23_700, to: 23_999 }

const pool = Number(process.env.VITEST_POOL_ID ?? 1)
const blockStart = FIRST + ((Math.max(1, pool) - 1) % 4) * BLOCK
let next = Math.floor(Math.random() * BLOCK)

function candidate(): number {
  for (;;) {
    const port = blockStart + (next++ % BLOCK)
    if (port < RESERVED.from || port > RESERVED.to) return port
  }
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
      if (tries > BLOCK) throw new Error(`no ${count} free ports in ${blockStart}–${blockStart + BLOCK - 1}`)
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
