import * as grpc from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Registry } from '../../src/core/registry.js'
import { registerGrpcResolver, type GrpcResolverRegistration } from '../../src/core/resolver/grpc.js'
import { registerSelf, type SelfRegistration } from '../../src/core/resolver/register-self.js'
import { etcdctl, uniquePrefix, waitFor } from '../support/cli.js'
import { testEnv } from '../support/env.js'
import { instanceRecord } from '../support/instance-fixtures.js'

/**
 * Real @grpc/grpc-js servers and clients behind `discovery:///echo`: round_robin spreads calls
 * over every registered backend, a deregistered or critical backend stops getting calls
 * moments later, an empty service fails calls with UNAVAILABLE naming the service (or makes
 * waitForReady calls wait for an instance), and pick_first moves off a backend that left.
 */
const env = testEnv()
const prefix = uniquePrefix('grpc')

/** A unary Echo/Who method with Buffers on the wire: no .proto, no codegen. */
const identity = (value: Buffer): Buffer => value
const echoService = {
  who: {
    path: '/discovery.test.Echo/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo')

interface Backend {
  name: string
  port: number
  calls: number
  server: grpc.Server
}

async function startBackend(name: string): Promise<Backend> {
  const server = new grpc.Server()
  const backend: Backend = { name, port: 0, calls: 0, server }
  server.addService(echoService, {
    who: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      backend.calls += 1
      callback(null, Buffer.from(name))
    },
  })
  backend.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  )
  return backend
}

type Echo = grpc.Client & { who: (request: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply?: Buffer) => void) => void }

function dial(target: string, serviceConfig?: object): Echo {
  const options = serviceConfig ? { 'grpc.service_config': JSON.stringify(serviceConfig) } : {}
  const client = new EchoClient(target, grpc.credentials.createInsecure(), options) as unknown as Echo
  clients.push(client)
  return client
}

/** One call: the backend's name, or `ERR <code> <details>`. grpc-js reads waitForReady from the metadata. */
function who(client: Echo, options: grpc.CallOptions & { waitForReady?: boolean } = {}): Promise<string> {
  const { waitForReady, ...callOptions } = options
  return new Promise((resolve) => {
    client.who(Buffer.from('?'), new grpc.Metadata({ waitForReady }), { deadline: Date.now() + 3_000, ...callOptions }, (error, reply) =>
      resolve(error ? `ERR ${error.code} ${error.details}` : reply!.toString()),
    )
  })
}

async function calls(client: Echo, n: number): Promise<string[]> {
  const replies: string[] = []
  for (let i = 0; i < n; i++) replies.push(await who(client))
  return replies
}

const endpoints = env.etcdEndpoints
let registration: GrpcResolverRegistration
let registrationRr: GrpcResolverRegistration
let backends: Backend[] = []
let registry: Registry
const clients: grpc.Client[] = []
const selves: SelfRegistration[] = []

async function registerBackend(backend: Backend, service = 'echo'): Promise<SelfRegistration> {
  const self = await registerSelf({ service, address: '127.0.0.1', port: backend.port, id: backend.name, etcdEndpoints: endpoints, prefix })
  selves.push(self)
  return self
}

beforeAll(async () => {
  backends = await Promise.all(['backend-a', 'backend-b'].map(startBackend))
  registry = Registry.open({ endpoints }, prefix)
  // The channel's own service config picks the policy under `discovery:`; `discovery-rr:` prescribes round_robin itself.
  registration = await registerGrpcResolver({ grpc, etcdEndpoints: endpoints, prefix })
  registrationRr = await registerGrpcResolver({ grpc, etcdEndpoints: endpoints, prefix, scheme: 'discovery-rr', loadBalancing: 'round_robin' })
})

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const self of selves.splice(0)) await self.close()
  for (const backend of backends) backend.calls = 0
})

afterAll(async () => {
  await registration?.close()
  await registrationRr?.close()
  registry?.close()
  for (const backend of backends) backend.server.forceShutdown()
  await etcdctl(['del', '--prefix', `${prefix}/`])
})

const ROUND_ROBIN = { loadBalancingConfig: [{ round_robin: {} }] }
const PICK_FIRST = { loadBalancingConfig: [{ pick_first: {} }] }

describe('discovery:/// with grpc-js', () => {
  it.each([
    ['discovery:///echo with round_robin in the channel config', 'discovery:///echo', ROUND_ROBIN],
    ['discovery-rr:///echo (round_robin prescribed by the resolver)', 'discovery-rr:///echo', undefined],
  ])('Given two registered backends, When a client dials %s, Then both backends get calls, alternately', async (_what, target, config) => {
    // Given
    const [a, b] = backends
    await registerBackend(a)
    await registerBackend(b)
    // When
    const client = dial(target, config)
    await waitFor(async () => new Set(await calls(client, 4)).size === 2, 10_000, 'both backends to be connected')
    a.calls = 0
    b.calls = 0
    const replies = await calls(client, 20)
    // Then
    expect(a.calls).toBe(10)
    expect(b.calls).toBe(10)
    for (let i = 2; i < 20; i++) expect(replies[i]).toBe(replies[i - 2])
  })

  it('Given round_robin over two backends, When one deregisters, Then it stops getting calls within moments while the other gets them all', async ({ annotate }) => {
    // Given
    const [a, b] = backends
    await registerBackend(a)
    const selfB = await registerBackend(b)
    const client = dial('discovery:///echo', ROUND_ROBIN)
    await waitFor(async () => new Set(await calls(client, 4)).size === 2, 10_000, 'both backends to be connected')
    // When
    const started = performance.now()
    await selfB.close()
    await waitFor(async () => (await calls(client, 6)).every((reply) => reply === 'backend-a'), 5_000, 'calls to reach only backend-a', 10)
    const movedAfter = Math.round(performance.now() - started)
    const bCalls = b.calls
    const replies = await calls(client, 20)
    // Then
    expect(replies.every((reply) => reply === 'backend-a')).toBe(true)
    expect(b.calls).toBe(bCalls)
    await annotate(`a deregistered backend got its last call within ${movedAfter} ms of close()`)
  })

  it('Given round_robin over two backends, When one turns critical and then passing, Then it leaves the rotation and rejoins it', async () => {
    // Given: b registered with a record whose health the test controls
    const [a, b] = backends
    await registerBackend(a)
    const bRecord = (status: 'passing' | 'critical') =>
      instanceRecord({ id: 'backend-b', service: 'echo', address: '127.0.0.1', port: b.port, status, source: 'manual', node: 'test' })
    await registry.putInstance(bRecord('passing'))
    const client = dial('discovery:///echo', ROUND_ROBIN)
    try {
      await waitFor(async () => new Set(await calls(client, 4)).size === 2, 10_000, 'both backends to be connected')
      // When
      await registry.putInstance(bRecord('critical'))
      await waitFor(async () => (await calls(client, 6)).every((reply) => reply === 'backend-a'), 5_000, 'critical backend-b to leave', 10)
      const whileCritical = b.calls
      await calls(client, 10)
      const stayedOut = b.calls === whileCritical
      await registry.putInstance(bRecord('passing'))
      // Then
      expect(stayedOut).toBe(true)
      await waitFor(async () => new Set(await calls(client, 4)).size === 2, 5_000, 'passing backend-b to rejoin', 10)
    } finally {
      await registry.deleteInstance('echo', 'backend-b')
    }
  })

  it('Given a service with no instance, When called, Then the call fails with UNAVAILABLE naming the service; a waitForReady call waits and succeeds once one registers', async () => {
    // Given
    const [a] = backends
    const client = dial('discovery:///echo', ROUND_ROBIN)
    // When
    const failed = await who(client)
    const waiting = who(client, { waitForReady: true, deadline: Date.now() + 15_000 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    await registerBackend(a)
    // Then
    expect(failed).toBe(`ERR ${grpc.status.UNAVAILABLE} discovery: no healthy instances of 'echo'`)
    expect(await waiting).toBe('backend-a')
  })

  it('Given round_robin with one backend, When it deregisters, Then calls fail with UNAVAILABLE instead of reaching it', async () => {
    // Given
    const [a] = backends
    const selfA = await registerBackend(a)
    const client = dial('discovery:///echo', ROUND_ROBIN)
    expect(await who(client)).toBe('backend-a')
    // When
    await selfA.close()
    // Then
    await waitFor(async () => (await who(client)).startsWith(`ERR ${grpc.status.UNAVAILABLE} discovery: no healthy instances`), 5_000, 'calls to fail', 10)
  })

  it("Given pick_first (grpc-js's default) with two backends, When the picked one deregisters, Then calls move to the other; and when none is left they fail clearly", async () => {
    // Given
    await registerBackend(backends[0])
    await registerBackend(backends[1])
    const client = dial('discovery:///echo', PICK_FIRST)
    const first = await who(client)
    const replies = await calls(client, 10)
    expect(replies.every((reply) => reply === first)).toBe(true)
    // When: the picked backend leaves
    await selves.find((self) => self.id === first)!.close()
    const other = first === 'backend-a' ? 'backend-b' : 'backend-a'
    // Then
    await waitFor(async () => (await who(client)) === other, 5_000, `calls to move to ${other}`, 10)
    // When: the last one leaves
    await selves.find((self) => self.id === other)!.close()
    // Then
    await waitFor(async () => (await who(client)).startsWith(`ERR ${grpc.status.UNAVAILABLE} discovery: no healthy instances of 'echo'`), 5_000, 'calls to fail', 10)
  })

  it('Given two channels to one service, When both are closed, Then they shared one watch, and it is released with the last', async () => {
    // Given
    await registerBackend(backends[0])
    const one = dial('discovery:///echo', ROUND_ROBIN)
    const two = dial('discovery:///echo', ROUND_ROBIN)
    expect(await who(one)).toBe('backend-a')
    expect(await who(two)).toBe('backend-a')
    expect(registration.services()).toEqual(['echo'])
    // When
    one.close()
    await new Promise((resolve) => setTimeout(resolve, 100))
    const afterOne = registration.services()
    two.close()
    // Then
    expect(afterOne).toEqual(['echo'])
    await waitFor(() => registration.services().length === 0, 5_000, 'the shared resolver to be released')
  })

  it("Given registerGrpcResolver without a grpc module, When a channel dials its scheme, Then it resolves: the package's own grpc-js is the app's", async () => {
    // Given
    await registerBackend(backends[0])
    const own = await registerGrpcResolver({ etcdEndpoints: endpoints, prefix, scheme: 'discovery-default' })
    try {
      // When
      const reply = await who(dial('discovery-default:///echo'))
      // Then
      expect(reply).toBe('backend-a')
    } finally {
      for (const client of clients.splice(0)) client.close()
      await own.close()
    }
  })

  it('Given a bad scheme or bad connection options, When registering, Then a UsageError says so before any channel exists', async () => {
    // When / Then
    await expect(registerGrpcResolver({ grpc, scheme: 'Disc overy' })).rejects.toThrow(/scheme 'Disc overy' is not a URI scheme/)
    await expect(registerGrpcResolver({ grpc, etcdEndpoints: 'ftp://x:1' })).rejects.toThrow(/has scheme ftp:/)
    await expect(registerGrpcResolver({ grpc, prefix: '/' })).rejects.toThrow(/root of the keyspace/)
  })

  it('Given a target that is no service name, When called, Then the call fails with UNAVAILABLE saying so', async () => {
    // When
    const reply = await who(dial('discovery:///Not_A_Service'))
    // Then
    expect(reply).toMatch(new RegExp(`^ERR ${grpc.status.UNAVAILABLE} discovery: 'Not_A_Service' in target .* is not a service name`))
  })
})
