import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniquePrefix, waitFor } from '../support/cli.js'
import { Containers, PrefixRecorder, dockerAt, etcdClient, instanceOf, instancesUnder, startAgent, uniqueSuffix, type AgentProcess } from '../support/agent-harness.js'
import { testEnv } from '../support/env.js'

/**
 * Docker → instances through the built CLI (`watch --json`) against the host's real dockerd
 * and the 3-member etcd. Other tests may run containers on the same dockerd at the same time:
 * every assertion looks only at this file's containers (unique names and label).
 */
const env = testEnv()
const etcd = etcdClient()
const docker = dockerAt(env.dockerHost)
const tag = uniqueSuffix()
const pool = new Containers(docker, tag)
const agents: AgentProcess[] = []

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()))
  await pool.removeAll()
  etcd.close()
})

describe('watch: containers become instances', () => {
  const prefix = uniquePrefix('agent-docker')
  const node = `dock-${tag}`
  let agent: AgentProcess
  let before: { name: string; id: string }

  beforeAll(async () => {
    // Given a container that runs before the agent starts
    await docker.getImage(env.image).inspect() // fails loudly when the local image is missing: nothing is pulled
    before = await pool.run('before')
    // The default resync (30 s) is longer than every wait below, so events, not resyncs, do the work.
    agent = await startAgent({ prefix, node })
    agents.push(agent)
  })

  afterAll(async () => {
    await etcd.delete().prefix(`${prefix}/`).exec()
  })

  it('Given a container running before the agent started, When the agent starts, Then its published port is registered', async () => {
    // When the first resync has run (startAgent waited for it)
    const found = await waitFor(() => instanceOf(etcd, prefix, before.name), 15_000, 'the pre-existing container registered')
    // Then the record says where it is reached, on this node's lease
    const hostPort = await pool.hostPort(before.name)
    expect(found.key).toBe(`${prefix}/services/busybox/${node}/${node}:${before.name}:80`)
    expect(found.record).toMatchObject({
      schema: 2,
      id: `${node}:${before.name}:80`,
      service: 'busybox',
      address: '127.0.0.1',
      port: hostPort,
      node,
      source: 'docker',
      container: { id: before.id, name: before.name, image: env.image, port: 80, protocol: 'tcp' },
      health: { status: 'passing' },
    })
    expect(found.lease).toBe(agent.lease)
  })

  it('Given the running agent, When a container starts and then stops, Then it is registered and then removed', async () => {
    // When a container starts
    const web = await pool.run('started', { stopTimeout: 1 })
    // Then it is registered
    const found = await waitFor(() => instanceOf(etcd, prefix, web.name), 15_000, 'the started container registered')
    expect(found.record.port).toBe(await pool.hostPort(web.name))
    const registered = await agent.waitForEvent((e) => e.type === 'instance.registered' && (e.instance as { id: string }).id === found.record.id, 'instance.registered event')
    expect(registered.latencyMs).toEqual(expect.any(Number))

    // When it is stopped
    await web.container.stop({ t: 1 })
    // Then its instance is gone
    await waitFor(async () => !(await instanceOf(etcd, prefix, web.name)), 15_000, 'the stopped container removed')
    const removed = await agent.waitForEvent((e) => e.type === 'instance.removed' && e.id === found.record.id, 'instance.removed event')
    expect(removed.service).toBe('busybox')
  })

  it('Given a container whose process ignores SIGTERM, When it is stopped with -t 5, Then its instance is gone while it still runs (drain)', async () => {
    // Given a container that survives SIGTERM until Docker's SIGKILL
    const stubborn = await pool.run('drain', { cmd: ['sh', '-c', 'trap "" TERM; httpd -f -p 80 -h /www'] })
    const found = await waitFor(() => instanceOf(etcd, prefix, stubborn.name), 15_000, 'the stubborn container registered')

    // When `docker stop -t 5` begins (not awaited: it takes 5 s)
    const stopping = stubborn.container.stop({ t: 5 })
    // Then the record disappears…
    await waitFor(async () => !(await instanceOf(etcd, prefix, stubborn.name)), 15_000, 'the drained instance removed')
    // …while the container is still running (Docker sends SIGKILL only after 5 s)
    const info = await stubborn.container.inspect()
    expect(info.State.Running).toBe(true)
    const removed = agent.events().find((e) => e.type === 'instance.removed' && e.id === found.record.id)
    expect(removed?.reason).toMatch(/draining/)

    // And once it has exited (SIGKILL after 5 s), it stays gone
    await stopping
    expect((await stubborn.container.inspect()).State.Running).toBe(false)
    expect(await instanceOf(etcd, prefix, stubborn.name)).toBeUndefined()
  })
})

describe('watch: labels and Registrator compatibility', () => {
  // A short resync: what is NOT registered after two full passes that saw it running was decided against.
  const labelPrefix = uniquePrefix('agent-labels')
  let labelAgent: AgentProcess

  beforeAll(async () => {
    labelAgent = await startAgent({ prefix: labelPrefix, node: `lbl-${tag}`, args: ['--resync', '1s'] })
    agents.push(labelAgent)
  })

  afterAll(async () => {
    await labelAgent.stop()
    await etcd.delete().prefix(`${labelPrefix}/`).exec()
  })

  it('Given discovery.* labels, When the container starts, Then name, tags, meta and per-port names come from them', async () => {
    // Given a container with two published ports and labels for both
    const labelled = await pool.run('labels', {
      publish: ['80/tcp', '8080/tcp'],
      labels: {
        'discovery.service': 'shop',
        'discovery.tags': 'blue, v2 ,blue',
        'discovery.meta.version': '1.2.3',
        'discovery.8080.service': 'shop-admin',
        'discovery.8080.tags': 'admin',
      },
    })
    // Then port 80 takes the global name with the -<port> suffix, 8080 its own name and tags
    const web = await waitFor(() => instanceOf(etcd, labelPrefix, labelled.name, 80), 15_000, 'port 80 registered')
    const admin = await waitFor(() => instanceOf(etcd, labelPrefix, labelled.name, 8080), 15_000, 'port 8080 registered')
    expect(web.record).toMatchObject({ service: 'shop-80', tags: ['blue', 'v2'], meta: { version: '1.2.3' }, port: await pool.hostPort(labelled.name, '80/tcp') })
    expect(admin.record).toMatchObject({ service: 'shop-admin', tags: ['admin'], meta: { version: '1.2.3' }, port: await pool.hostPort(labelled.name, '8080/tcp') })

    // Given discovery.port choosing one of two ports
    const one = await pool.run('port', { publish: ['80/tcp', '8080/tcp'], labels: { 'discovery.service': 'picked', 'discovery.port': '8080' } })
    const picked = await waitFor(() => instanceOf(etcd, labelPrefix, one.name, 8080), 15_000, 'the chosen port registered')
    // Then only that port is registered, without the suffix (it is the container's only instance)
    expect(picked.record.service).toBe('picked')
    expect(await instanceOf(etcd, labelPrefix, one.name, 80)).toBeUndefined()
  })

  it('Given Registrator SERVICE_* env vars and labels, When containers start, Then they mean what they meant to Registrator', async () => {
    // Given SERVICE_NAME / SERVICE_TAGS / SERVICE_ID as env vars
    const legacy = await pool.run('legacy', { env: { SERVICE_NAME: 'legacy', SERVICE_TAGS: 'a,b', SERVICE_ID: `legacy-${tag}` } })
    // Given SERVICE_<port>_NAME as a label and SERVICE_<port>_IGNORE as an env var on a two-port container
    const perPort = await pool.run('perport', {
      publish: ['80/tcp', '8080/tcp'],
      labels: { SERVICE_80_NAME: 'front' },
      env: { SERVICE_8080_IGNORE: 'true' },
    })
    // Given SERVICE_IGNORE
    const ignored = await pool.run('ignored', { env: { SERVICE_IGNORE: '1' } })

    // Then the env vars name, tag and id the instance
    const found = await waitFor(() => instanceOf(etcd, labelPrefix, legacy.name), 15_000, 'SERVICE_NAME container registered')
    expect(found.key).toBe(`${labelPrefix}/services/legacy/lbl-${tag}/legacy-${tag}`)
    expect(found.record).toMatchObject({ id: `legacy-${tag}`, service: 'legacy', tags: ['a', 'b'] })
    // Then the per-port name applies and the ignored port is left out
    const front = await waitFor(() => instanceOf(etcd, labelPrefix, perPort.name, 80), 15_000, 'SERVICE_80_NAME port registered')
    expect(front.record.service).toBe('front')

    // Then SERVICE_IGNORE and SERVICE_8080_IGNORE keep them out, even after two full resyncs that saw them
    await labelAgent.waitForResyncs(2)
    expect(await instanceOf(etcd, labelPrefix, perPort.name, 8080)).toBeUndefined()
    expect(await instanceOf(etcd, labelPrefix, ignored.name)).toBeUndefined()
  })

})

describe('watch: opting out, opting in and malformed labels', () => {
  // A short resync: a container that is NOT registered after two full passes was decided against.
  const resync = ['--resync', '1s']

  it('Given exposed-by-default, When containers start, Then discovery.enable=false opts out and the others are registered', async () => {
    const prefix = uniquePrefix('agent-optout')
    const agent = await startAgent({ prefix, node: `out-${tag}`, args: resync })
    agents.push(agent)
    try {
      // Given one container opted out, one plain
      const out = await pool.run('optout', { labels: { 'discovery.enable': 'false' } })
      const plain = await pool.run('plain')
      // Then the plain one is registered
      await waitFor(() => instanceOf(etcd, prefix, plain.name), 15_000, 'the plain container registered')
      // And the opted-out one is not, even after two full resyncs that saw it running
      await agent.waitForResyncs(2)
      expect(await instanceOf(etcd, prefix, out.name)).toBeUndefined()
    } finally {
      await agent.stop()
      await etcd.delete().prefix(`${prefix}/`).exec()
    }
  })

  it('Given --no-exposed-by-default, When containers start, Then only discovery.enable=true is registered', async () => {
    const prefix = uniquePrefix('agent-optin')
    const agent = await startAgent({ prefix, node: `in-${tag}`, args: [...resync, '--no-exposed-by-default'] })
    agents.push(agent)
    try {
      // Given one container opted in, one without the label, one opted out
      const optedIn = await pool.run('optin', { labels: { 'discovery.enable': 'true' } })
      const unlabelled = await pool.run('unlabelled')
      const optedOut = await pool.run('optin-off', { labels: { 'discovery.enable': 'false' } })
      // Then only the opted-in container is registered
      await waitFor(() => instanceOf(etcd, prefix, optedIn.name), 15_000, 'the opted-in container registered')
      await agent.waitForResyncs(2)
      expect(await instanceOf(etcd, prefix, unlabelled.name)).toBeUndefined()
      expect(await instanceOf(etcd, prefix, optedOut.name)).toBeUndefined()
      // And of this file's containers, only that one is registered (other tests' containers may opt in too)
      const all = await instancesUnder(etcd, prefix)
      expect(all.map((i) => i.record.container?.name).filter((name) => name?.endsWith(tag))).toEqual([optedIn.name])
      expect(all.every((i) => i.record.container?.name !== unlabelled.name)).toBe(true)
    } finally {
      await agent.stop()
      await etcd.delete().prefix(`${prefix}/`).exec()
    }
  })

  it('Given malformed labels, When the containers start, Then each is reported as container.problem and the agent goes on registering valid containers', async () => {
    const prefix = uniquePrefix('agent-malformed')
    const agent = await startAgent({ prefix, node: `bad-${tag}`, args: resync })
    agents.push(agent)
    try {
      // Given a service name that is no DNS label (not registered), a bad duration (registered with the default)
      const badName = await pool.run('badname', { labels: { 'discovery.service': 'Not_A/Name!' } })
      const badCheck = await pool.run('badcheck', { labels: { 'discovery.check.http': '/', 'discovery.check.interval': 'banana', 'discovery.tags': 'ok' } })
      const valid = await pool.run('valid')

      // Then the problems are reported with the container and the label
      const nameProblem = await agent.waitForEvent((e) => e.type === 'container.problem' && e.container === badName.name, 'problem for the bad name')
      expect(nameProblem).toMatchObject({ label: 'discovery.service', value: 'Not_A/Name!' })
      const checkProblem = await agent.waitForEvent((e) => e.type === 'container.problem' && e.container === badCheck.name, 'problem for the bad interval')
      expect(checkProblem).toMatchObject({ label: 'discovery.check.interval', value: 'banana' })
      expect(String(checkProblem.reason)).toMatch(/10s/)

      // Then the valid container and the one with a defaulted setting are registered
      await waitFor(() => instanceOf(etcd, prefix, valid.name), 15_000, 'the valid container registered')
      const defaulted = await waitFor(() => instanceOf(etcd, prefix, badCheck.name), 15_000, 'the container with a bad interval registered')
      expect(defaulted.record.check).toMatchObject({ kind: 'http', interval: 10_000 })
      // And the one with a bad name is not; the agent is still running and still registering
      await agent.waitForResyncs(2)
      expect((await instancesUnder(etcd, prefix)).some((i) => i.record.container?.name === badName.name)).toBe(false)
      expect(agent.proc.child.exitCode).toBeNull()
      const later = await pool.run('later')
      await waitFor(() => instanceOf(etcd, prefix, later.name), 15_000, 'a container started after the problems registered')
      // A problem is reported once per change, not on every resync
      const repeats = agent.events().filter((e) => e.type === 'container.problem' && e.container === badName.name)
      expect(repeats.length).toBe(1)
    } finally {
      await agent.stop()
      await etcd.delete().prefix(`${prefix}/`).exec()
    }
  })
})

describe('watch: events and resyncs together', () => {
  it('Given a resync every 200 ms, When 30 containers start at once, Then every one is registered and none is deleted while it runs', async () => {
    const prefix = uniquePrefix('agent-race')
    const agent = await startAgent({ prefix, node: `race-${tag}`, args: ['--resync', '200ms'] })
    agents.push(agent)
    const recorder = await new PrefixRecorder(etcd, `${prefix}/services/`).start()
    try {
      // When many containers start while full resyncs keep running
      const names = Array.from({ length: 30 }, (_, i) => `race-${i}`)
      const created = await Promise.all(names.map((n) => pool.create(n)))
      await Promise.all(created.map((c) => c.start()))
      const full = names.map((n) => pool.name(n))
      // Then every one is registered…
      await waitFor(async () => (await instancesUnder(etcd, prefix)).filter((i) => full.includes(i.record.container?.name ?? '')).length === full.length, 30_000, 'all 30 registered')
      await agent.waitForResyncs(3)
      // …and no resync deleted a record that an event had just written (none was re-added either)
      const keys = (await instancesUnder(etcd, prefix)).filter((i) => full.includes(i.record.container?.name ?? '')).map((i) => i.key)
      expect(keys).toHaveLength(full.length)
      expect(recorder.deletesOf(keys)).toEqual([])
      const puts = recorder.changes.filter((c) => c.type === 'put' && keys.includes(c.key))
      expect(puts).toHaveLength(keys.length)
    } finally {
      await recorder.stop()
      await agent.stop()
      await etcd.delete().prefix(`${prefix}/`).exec()
    }
  })
})
