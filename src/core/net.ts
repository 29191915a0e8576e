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
