import { readFileSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import type Docker from 'dockerode'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DockerSource, normalizeEvent, PODMAN_HEALTH_SETTLE_MS, type ContainerEvent } from './source.js'

// fixtures/podman-events.json: the filtered GET /events stream of a real Podman 4.3.1 service
// (`podman system service`, rootful, Debian 12) while one container started, ran four health
// checks (healthy, healthy, file removed, unhealthy), was connected to and disconnected from a
// network, killed with TERM (PID 1 ignores it), stopped and removed.
const podmanEvents = JSON.parse(readFileSync(new URL('./fixtures/podman-events.json', import.meta.url), 'utf8')) as Record<string, unknown>[]
const podmanId = '8585230a127b527ad7012f25663f20a4a9bb4dff3404baaaba4091b6deb76a87'

// Real Docker 20.10 lines (second test dockerd), for the same moments.
const dockerHealth = {
  status: 'health_status: healthy',
  id: '9a8f8d736a658277bdf95f9f6071b79201e8f3197c46bbc8303f95795234ed4a',
  from: 'discovery-test/busybox:1',
  Type: 'container',
  Action: 'health_status: healthy',
  Actor: { ID: '9a8f8d736a658277bdf95f9f6071b79201e8f3197c46bbc8303f95795234ed4a', Attributes: { image: 'discovery-test/busybox:1', name: 'd2ev' } },
  scope: 'local',
  time: 1796534305,
  // As JSON.parse reads the real line's 1796534305594303133 (a double: nanoseconds lose precision).
  timeNano: JSON.parse('1796534305594303133') as number,
}
const dockerConnect = {
  Type: 'network',
  Action: 'connect',
  Actor: {
    ID: '123ee0f03ae721e67c64c4e36232383e922751dac645fa8078aa124f8df86ed8',
    Attributes: { container: '9a8f8d736a658277bdf95f9f6071b79201e8f3197c46bbc8303f95795234ed4a', name: 'bridge', type: 'bridge' },
  },
  scope: 'local',
  time: 1796534304,
  timeNano: JSON.parse('1796534304287235501') as number,
}

const brief = (events: ContainerEvent[]) => events.map((e) => `${e.action}|${e.rawAction}|${e.containerId.slice(0, 12)}`)

describe('normalizeEvent: Podman and Docker spellings → one vocabulary', () => {
  it('Given the recorded Podman stream, When every line is normalised, Then the agent sees Docker’s actions, the container behind network events and the health value in the action', () => {
    // When
    const events = podmanEvents.flatMap((raw) => normalizeEvent(raw))
    // Then
    const id = podmanId.slice(0, 12)
    expect(brief(events)).toEqual([
      `start|start|${id}`,
      `health_status|health_status: starting|${id}`,
      `health_status|health_status: healthy|${id}`,
      `health_status|health_status: healthy|${id}`,
      `health_status|health_status: unhealthy|${id}`,
      `connect|connect|${id}`,
      `disconnect|disconnect|${id}`,
      `kill|kill|${id}`,
      `die|die|${id}`,
      `destroy|destroy|${id}`,
    ])
    // Podman's kill names no signal: nothing for the agent to drain on (it withdraws at die).
    expect(events.find((e) => e.action === 'kill')?.attributes.signal).toBeUndefined()
  })

  const cases: { name: string; raw: unknown; expected: string[] }[] = [
    { name: 'Docker health event keeps its action', raw: dockerHealth, expected: ['health_status|health_status: healthy|9a8f8d736a65'] },
    { name: 'Docker network event names the container in an attribute, not Actor.ID (the network)', raw: dockerConnect, expected: ['connect|connect|9a8f8d736a65'] },
    {
      name: 'Podman 5 style: health value in an attribute',
      raw: { Type: 'container', Action: 'health_status', Actor: { ID: 'abc', Attributes: { podId: '', containerExitCode: '0', health_status: 'unhealthy' } }, timeNano: 1 },
      expected: ['health_status|health_status: unhealthy|abc'],
    },
    {
      name: 'a Docker network event without a container attribute is dropped (Actor.ID is a network)',
      raw: { Type: 'network', Action: 'connect', Actor: { ID: 'net1', Attributes: { name: 'bridge' } }, timeNano: 1 },
      expected: [],
    },
    { name: 'exec noise is dropped', raw: { Type: 'container', Action: 'exec_died', Actor: { ID: 'abc', Attributes: {} } }, expected: [] },
    { name: 'not an object', raw: 'start', expected: [] },
    { name: 'an old engine’s status/id only', raw: { status: 'die', id: 'abc', time: 5 }, expected: ['die|die|abc'] },
  ]
  it.each(cases)('Given $name, When normalised, Then $expected', ({ raw, expected }) => {
    expect(brief(normalizeEvent(raw))).toEqual(expected)
  })

  it('Given the Podman stream, When time is read, Then each event keeps its nanosecond timestamp (for `since` on reconnect)', () => {
    const events = podmanEvents.flatMap((raw) => normalizeEvent(raw))
    expect(events.every((e, i) => i === 0 || e.timeNano >= events[i - 1].timeNano)).toBe(true)
    expect(events[0].timeNano).toBe(BigInt(podmanEvents[0].timeNano as number))
  })
})

/** A dockerode stand-in: an event stream the test writes to, and inspect answers it controls. */
function fakeDocker(health: () => string | Error) {
  const stream = new PassThrough()
  const inspects: string[] = []
  const docker = {
    getEvents: async () => stream,
    getContainer: (id: string) => ({
      inspect: async () => {
        inspects.push(id)
        const h = health()
        if (h instanceof Error) throw h
        return { Id: id, State: { Running: true, Health: { Status: h } } }
      },
    }),
  } as unknown as Docker
  return { docker, stream, inspects }
}

/** A started DockerSource over `fakeDocker(health)`, with the raw actions it passed on. */
async function startedSource(health: () => string | Error) {
  const { docker, stream, inspects } = fakeDocker(health)
  const source = new DockerSource(docker)
  const seen: string[] = []
  source.on('event', (e) => seen.push(e.rawAction))
  await source.start()
  return { source, stream, inspects, seen }
}

describe('DockerSource: health events, one per change', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('Given Podman’s one-event-per-check-run stream with stale values, When the checks run, Then the agent gets one event per real change, with the value inspected after the check settled', async () => {
    vi.useFakeTimers()
    let real = 'healthy'
    const { source, stream, inspects, seen } = await startedSource(() => real)
    const healthLines = podmanEvents.filter((e) => e.Action === 'health_status')
    const send = async (raw: unknown) => {
      stream.write(JSON.stringify(raw) + '\n')
      await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
    }
    // When: run 1 says "starting" (the state before it), the container is really healthy
    await send(healthLines[0])
    // Then: the settled value, not the stale one
    expect(seen).toEqual(['health_status: healthy'])
    // When: run 2, nothing changed
    await send(healthLines[1])
    expect(seen).toEqual(['health_status: healthy'])
    // When: the check starts failing; run 3's event still says healthy
    real = 'unhealthy'
    await send(healthLines[2])
    expect(seen).toEqual(['health_status: healthy', 'health_status: unhealthy'])
    await send(healthLines[3])
    expect(seen).toEqual(['health_status: healthy', 'health_status: unhealthy'])
    // Every check run was looked at once
    expect(inspects.length).toBe(4)
    source.stop()
  })

  it('Given several Podman health events within the settle time, When they arrive together, Then one inspection covers them', async () => {
    vi.useFakeTimers()
    const { source, stream, inspects, seen } = await startedSource(() => 'healthy')
    const line = podmanEvents.find((e) => e.Action === 'health_status')
    for (let i = 0; i < 5; i++) stream.write(JSON.stringify(line) + '\n')
    await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
    expect(inspects.length).toBe(1)
    expect(seen).toEqual(['health_status: healthy'])
    source.stop()
  })

  it('Given a container restarts, When Podman reports the same status as before the restart, Then it is news again (the restart reset it)', async () => {
    vi.useFakeTimers()
    const { source, stream, seen } = await startedSource(() => 'healthy')
    const health = podmanEvents.find((e) => e.Action === 'health_status')
    const start = podmanEvents.find((e) => e.Action === 'start')
    for (const raw of [health, start, health]) {
      stream.write(JSON.stringify(raw) + '\n')
      await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
    }
    expect(seen).toEqual(['health_status: healthy', 'start', 'health_status: healthy'])
    source.stop()
  })

  it('Given the container is gone when the settle inspection runs, When inspect answers 404, Then nothing is passed on (its die/destroy event or the next resync tells the agent)', async () => {
    vi.useFakeTimers()
    const { source, stream, seen } = await startedSource(() => Object.assign(new Error('no such container'), { statusCode: 404 }))
    stream.write(JSON.stringify(podmanEvents.find((e) => e.Action === 'health_status')) + '\n')
    await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
    expect(seen).toEqual([])
    source.stop()
  })

  it('Given a Podman health event, When the container is destroyed before the settle inspection, Then no inspection is made and no health event follows the destroy', async () => {
    vi.useFakeTimers()
    const { source, stream, inspects, seen } = await startedSource(() => 'healthy')
    stream.write(JSON.stringify(podmanEvents.find((e) => e.Action === 'health_status')) + '\n')
    stream.write(JSON.stringify(podmanEvents.find((e) => e.Action === 'remove')) + '\n')
    await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
    expect(seen).toEqual(['destroy'])
    expect(inspects).toEqual([])
    source.stop()
  })

  it.each([
    ['destroyed', ['die', 'remove'], ['die', 'destroy']],
    ['stopped and started again', ['die', 'start'], ['die', 'start', 'health_status: unhealthy']],
  ])('Given a settle inspection on its way, When the container is %s before it answers, Then the old answer is dropped (and the new run’s status is still news)', async (_, actions, expected) => {
    // Given inspections held until released: the old run's answers healthy, a new run's unhealthy
    vi.useFakeTimers()
    let release: (() => void) | undefined
    const answers = ['healthy', 'unhealthy']
    const docker = {
      getEvents: async () => stream,
      getContainer: (id: string) => ({
        inspect: () => {
          const status = answers.shift()
          return new Promise((resolve) => (release = () => resolve({ Id: id, State: { Running: true, Health: { Status: status } } })))
        },
      }),
    } as unknown as Docker
    const stream = new PassThrough()
    const source = new DockerSource(docker)
    const seen: string[] = []
    source.on('event', (e) => seen.push(e.rawAction))
    await source.start()
    const health = podmanEvents.find((e) => e.Action === 'health_status')
    stream.write(JSON.stringify(health) + '\n')
    await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
    // When the run ends (and maybe another starts) before the answer
    for (const action of actions) stream.write(JSON.stringify(podmanEvents.find((e) => e.Action === action)) + '\n')
    await vi.advanceTimersByTimeAsync(10)
    release?.()
    await vi.advanceTimersByTimeAsync(10)
    // Then nothing of the old run follows; a new run's first check is still reported
    if (actions.includes('start')) {
      stream.write(JSON.stringify(health) + '\n')
      await vi.advanceTimersByTimeAsync(PODMAN_HEALTH_SETTLE_MS + 10)
      release?.()
      await vi.advanceTimersByTimeAsync(10)
    }
    expect(seen).toEqual(expected)
    source.stop()
  })

  it('Given a busy Podman whose inspections keep failing, When it reports the same status on every check run, Then the agent gets it once, and again only when the reported status changes', async () => {
    // Given
    vi.useFakeTimers()
    const { source, stream, inspects, seen } = await startedSource(() => new Error('(HTTP code 500) server error - container state improper'))
    const starting = podmanEvents.find((e) => e.Action === 'health_status')
    const healthy = { ...starting, HealthStatus: 'healthy' }
    // When: a check run a second, each settle's inspection failing
    for (const raw of [starting, starting, healthy, healthy, healthy, healthy]) {
      stream.write(JSON.stringify(raw) + '\n')
      await vi.advanceTimersByTimeAsync(1_000)
    }
    // Then
    expect(inspects.length).toBe(6)
    expect(seen).toEqual(['health_status: starting', 'health_status: healthy'])
    source.stop()
  })

  it('Given Docker’s health events (one per change), When the same status repeats across a reconnect-free stream, Then the duplicate is dropped and no inspection is made', async () => {
    const { source, stream, inspects, seen } = await startedSource(() => 'healthy')
    const unhealthy = { ...dockerHealth, Action: 'health_status: unhealthy', status: 'health_status: unhealthy' }
    for (const raw of [dockerHealth, dockerHealth, unhealthy, dockerHealth]) stream.write(JSON.stringify(raw) + '\n')
    await new Promise((resolve) => setImmediate(resolve))
    expect(seen).toEqual(['health_status: healthy', 'health_status: unhealthy', 'health_status: healthy'])
    expect(inspects).toEqual([])
    source.stop()
  })
})

describe('DockerSource.listRunningIds: Podman has no "restarting" state', () => {
  // What Podman 4.3.1 answers to GET /containers/json?filters={"status":["running","paused","restarting"]}
  const podmanRefusal = Object.assign(new Error('(HTTP code 500) server error - unknown container state: restarting: invalid argument '), {
    statusCode: 500,
    json: { cause: 'invalid argument', message: 'unknown container state: restarting: invalid argument', response: 500 },
  })

  it('Given an engine that rejects the restarting filter, When running containers are listed twice, Then the first call falls back and the second asks without it straight away', async () => {
    // Given
    const calls: string[][] = []
    const docker = {
      listContainers: async (opts: { filters: { status: string[] } }) => {
        calls.push(opts.filters.status)
        if (opts.filters.status.includes('restarting')) throw podmanRefusal
        return [{ Id: 'a' }, { Id: 'b' }]
      },
    } as unknown as Docker
    const source = new DockerSource(docker)
    // When
    const first = await source.listRunningIds()
    const second = await source.listRunningIds()
    // Then
    expect(first).toEqual(['a', 'b'])
    expect(second).toEqual(['a', 'b'])
    expect(calls).toEqual([['running', 'paused', 'restarting'], ['running', 'paused'], ['running', 'paused']])
  })

  it('Given Docker trouble of another kind, When listing, Then the error is thrown (not mistaken for Podman)', async () => {
    const docker = { listContainers: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) } as unknown as Docker
    await expect(new DockerSource(docker).listRunningIds()).rejects.toThrow('ECONNREFUSED')
  })
})

describe('DockerSource with --filter: Docker decides, the answer is remembered until an event may change it', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  /** An engine where container `c` matches while `matches` says so; list answers wait for `release` when `hold` is set. */
  function filteringDocker() {
    const stream = new PassThrough()
    const state = { matches: true, hold: false, lists: 0 }
    const held: (() => void)[] = []
    const docker = {
      getEvents: async () => stream,
      listContainers: async (opts: { filters: Record<string, string[]> }) => {
        state.lists += 1
        const answer = state.matches ? [{ Id: 'c' }] : []
        if (state.hold) await new Promise<void>((resolve) => held.push(resolve))
        return opts.filters.id && !opts.filters.id.includes('c') ? [] : answer
      },
      getContainer: (id: string) => ({ inspect: async () => ({ Id: id, Name: '/c', State: { Running: true, StartedAt: 't' }, Config: { Labels: {} } }) }),
    } as unknown as Docker
    const release = () => held.splice(0).forEach((resolve) => resolve())
    return { docker, stream, state, release }
  }
  const disconnect = { ...dockerConnect, Action: 'disconnect', Actor: { ...dockerConnect.Actor, Attributes: { ...dockerConnect.Actor.Attributes, container: 'c' } } }

  it('Given a question to Docker on its way, When a disconnect event comes before its answer, Then that answer is not remembered and the next look asks again', async () => {
    const { docker, stream, state, release } = filteringDocker()
    const source = new DockerSource(docker, { network: ['front'] })
    await source.start()
    // A look at c is on its way while c still matches…
    state.hold = true
    const first = source.inspect('c')
    await new Promise((resolve) => setImmediate(resolve))
    // …and c is disconnected before Docker answers.
    state.matches = false
    stream.write(JSON.stringify(disconnect) + '\n')
    await new Promise((resolve) => setImmediate(resolve))
    state.hold = false
    release()
    expect(await first).toBeDefined()
    // The stale "matches" was not kept: the agent's look after the event asks Docker again.
    const lists = state.lists
    expect(await source.inspect('c')).toBeUndefined()
    expect(state.lists).toBe(lists + 1)
    source.stop()
  })

  it('Given a network connect, When Docker’s list lags the event, Then the container is looked at once more after the settle time', async () => {
    vi.useFakeTimers()
    const { docker, stream } = filteringDocker()
    const source = new DockerSource(docker, { network: ['front'] })
    const seen: string[] = []
    source.on('event', (e) => seen.push(e.action))
    await source.start()
    stream.write(JSON.stringify({ ...dockerConnect, Actor: { ...dockerConnect.Actor, Attributes: { ...dockerConnect.Actor.Attributes, container: 'c' } } }) + '\n')
    await vi.advanceTimersByTimeAsync(10)
    expect(seen).toEqual(['connect'])
    await vi.advanceTimersByTimeAsync(1_000)
    expect(seen).toEqual(['connect', 'connect'])
    source.stop()
  })

  it('Given an engine that refuses a filter, When the agent asks before starting, Then the engine’s words come back; an unreachable engine is not a refusal', async () => {
    const refusing = { listContainers: async () => Promise.reject(Object.assign(new Error('(HTTP code 400) bad parameter'), { statusCode: 400, json: { message: 'invalid filter \'publish=web\'' } })) } as unknown as Docker
    expect(await new DockerSource(refusing, { publish: ['web'] }).refusedFilters()).toBe("invalid filter 'publish=web'")
    const down = { listContainers: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) } as unknown as Docker
    expect(await new DockerSource(down, { label: ['a'] }).refusedFilters()).toBeUndefined()
    expect(await new DockerSource(down).refusedFilters()).toBeUndefined()
  })
})
