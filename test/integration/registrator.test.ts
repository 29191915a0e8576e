import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { dockerAt, etcdClient, instancesUnder, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * Registrator's own documentation, docs/user/services.md ("Service Object", Examples), run as
 * written against the real agent (`watch --json` on the host's dockerd and the 3-member etcd):
 * the same `docker run` options, container names, host ports and image names (the local test
 * image re-tagged; nothing is pulled). The agent runs as node `hostname` with
 * `--advertise-address 192.168.1.102` (Registrator's `-ip`), so the registry holds the page's
 * Service objects letter for letter: ID, Name, Port, IP, Tags and Attrs (our `meta`).
 *
 * The examples reuse the names redis.0 and nginx.0 and the host ports 10000, 8000 and 4443, so
 * they run one after the other, each container removed (and its records gone) before the next.
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = uniqueSuffix()
const TEST_LABEL = 'discovery-test-registrator'
const IMAGES = ['progrium/redis', 'progrium/nginx', 'dockerfile/redis']

interface ServiceObject {
  ID: string
  Name: string
  Port: number
  IP: string
  Tags: string[]
  Attrs: Record<string, string>
}

interface Example {
  title: string
  /** `docker run -d --name … -p host:container … [-e …] [-l …] image`, as the page writes it. */
  run: { name: string; publish: Record<string, number>; env?: string[]; labels?: Record<string, string>; image: string }
  documented: ServiceObject[]
}

const EXAMPLES: Example[] = [
  {
    title: 'Single service with defaults',
    run: { name: 'redis.0', publish: { '6379/tcp': 10000 }, image: 'progrium/redis' },
    documented: [{ ID: 'hostname:redis.0:6379', Name: 'redis', Port: 10000, IP: '192.168.1.102', Tags: [], Attrs: {} }],
  },
  {
    title: 'Single service with metadata',
    run: { name: 'redis.0', publish: { '6379/tcp': 10000 }, env: ['SERVICE_NAME=db', 'SERVICE_TAGS=master,backups', 'SERVICE_REGION=us2'], image: 'progrium/redis' },
    documented: [{ ID: 'hostname:redis.0:6379', Name: 'db', Port: 10000, IP: '192.168.1.102', Tags: ['master', 'backups'], Attrs: { region: 'us2' } }],
  },
  {
    // `-e "SERVICE_TAGS=/(;\\,:-_)/"` in a shell passes `/(;\,:-_)/`; the page shows no result: one tag, comma kept.
    title: 'Single service with metadata, comma escaped',
    run: { name: 'redis.0', publish: { '6379/tcp': 10000 }, env: ['SERVICE_NAME=db', 'SERVICE_TAGS=/(;\\,:-_)/', 'SERVICE_REGION=us2'], image: 'progrium/redis' },
    documented: [{ ID: 'hostname:redis.0:6379', Name: 'db', Port: 10000, IP: '192.168.1.102', Tags: ['/(;,:-_)/'], Attrs: { region: 'us2' } }],
  },
  {
    title: 'Multiple services with defaults',
    run: { name: 'nginx.0', publish: { '443/tcp': 4443, '80/tcp': 8000 }, image: 'progrium/nginx' },
    documented: [
      { ID: 'hostname:nginx.0:443', Name: 'nginx-443', Port: 4443, IP: '192.168.1.102', Tags: [], Attrs: {} },
      { ID: 'hostname:nginx.0:80', Name: 'nginx-80', Port: 8000, IP: '192.168.1.102', Tags: [], Attrs: {} },
    ],
  },
  {
    title: 'Multiple services with metadata',
    run: {
      name: 'nginx.0',
      publish: { '443/tcp': 4443, '80/tcp': 8000 },
      env: ['SERVICE_443_NAME=https', 'SERVICE_443_ID=https.12345', 'SERVICE_443_SNI=enabled', 'SERVICE_80_NAME=http', 'SERVICE_TAGS=www'],
      image: 'progrium/nginx',
    },
    documented: [
      { ID: 'https.12345', Name: 'https', Port: 4443, IP: '192.168.1.102', Tags: ['www'], Attrs: { sni: 'enabled' } },
      { ID: 'hostname:nginx.0:80', Name: 'http', Port: 8000, IP: '192.168.1.102', Tags: ['www'], Attrs: {} },
    ],
  },
  {
    title: 'Using labels to define metadata',
    run: { name: 'redis.0', publish: { '6379/tcp': 10000 }, labels: { SERVICE_NAME: 'db', SERVICE_TAGS: 'master,backups', SERVICE_REGION: 'us2' }, image: 'dockerfile/redis' },
    documented: [{ ID: 'hostname:redis.0:6379', Name: 'db', Port: 10000, IP: '192.168.1.102', Tags: ['master', 'backups'], Attrs: { region: 'us2' } }],
  },
]

const byId = (a: ServiceObject, b: ServiceObject): number => (a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0)

/** The registry's records of one container, as Registrator's Service objects. */
async function serviceObjects(prefix: string, containerName: string): Promise<ServiceObject[]> {
  const stored = await instancesUnder(etcd, prefix, 'hostname')
  return stored
    .filter((s) => s.record.container?.name === containerName)
    .map(({ record }) => ({ ID: record.id, Name: record.service, Port: record.port, IP: record.address, Tags: record.tags, Attrs: record.meta }))
    .sort(byId)
}

/** A container left by a crashed run of this file is removed; anyone else's is never touched. */
async function clearName(name: string): Promise<void> {
  const info = await docker
    .getContainer(name)
    .inspect()
    .catch(() => undefined)
  if (!info) return
  if (info.Config.Labels?.[TEST_LABEL] === undefined) throw new Error(`a container named ${name} that this test did not create is running; remove it first`)
  await docker.getContainer(name).remove({ force: true })
}

async function runAsDocumented(run: Example['run']): Promise<void> {
  await clearName(run.name)
  const container = await docker.createContainer({
    Image: run.image,
    name: run.name,
    Env: run.env ?? [],
    Labels: { ...run.labels, [TEST_LABEL]: tag },
    ExposedPorts: Object.fromEntries(Object.keys(run.publish).map((port) => [port, {}])),
    HostConfig: { PortBindings: Object.fromEntries(Object.entries(run.publish).map(([port, hostPort]) => [port, [{ HostIp: '', HostPort: String(hostPort) }]])) },
  })
  await container.start()
}

describe('Registrator services.md examples against the running agent', () => {
  const prefix = uniquePrefix('registrator')
  let agent: AgentProcess

  beforeAll(async () => {
    // Given the image names the page uses, as tags of the local test image (docker tag; nothing is pulled)
    const image = docker.getImage(env.image)
    await image.inspect()
    for (const name of IMAGES) await image.tag({ repo: name, tag: 'latest' })
    // Given an agent on node `hostname` advertising the page's host address (Registrator's -ip)
    agent = await startAgent({ prefix, node: 'hostname', args: ['--advertise-address', '192.168.1.102'] })
  })

  afterAll(async () => {
    await agent?.stop()
    const list = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${tag}`] } }).catch(() => [])
    await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)))
    await etcd.delete().prefix(`${prefix}/`).exec()
    etcd.close()
  })

  it.each(EXAMPLES)('Given "$title" run as written, When the agent registers it, Then the registry holds the documented Service objects', async ({ run, documented }) => {
    // Given the container started with the example's options
    await runAsDocumented(run)
    try {
      // When the agent has registered as many instances as the page shows
      const expected = [...documented].sort(byId)
      const found = await waitFor(
        async () => {
          const objects = await serviceObjects(prefix, run.name)
          return objects.length === expected.length ? objects : undefined
        },
        20_000,
        `${run.name} registered with ${expected.length} instance(s)`,
      )
      // Then they are the documented objects, and the agent reported no problem with the container
      expect(found).toEqual(expected)
      expect(agent.eventsOf('container.problem').filter((e) => e.container === run.name)).toEqual([])
    } finally {
      // The next example reuses the name and the host ports: remove it and wait until its records are gone
      await docker.getContainer(run.name).remove({ force: true })
      await waitFor(async () => (await serviceObjects(prefix, run.name)).length === 0, 20_000, `${run.name} deregistered`)
    }
  })
})
