import net from 'node:net'
import os from 'node:os'

/** The host's primary IPv4: the first non-internal IPv4 of a non-virtual interface, else loopback. */
export function primaryIPv4(interfaces = os.networkInterfaces()): string {
  const candidates: string[] = []
  for (const [name, addresses] of Object.entries(interfaces)) {
    if (/^(docker|br-|veth|virbr|dischost)/.test(name)) continue
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) candidates.push(address.address)
    }
  }
  return candidates[0] ?? '127.0.0.1'
}

/** Distinct free loopback ports (held together while chosen, so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve(server))
    })),
  )
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port)
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}
