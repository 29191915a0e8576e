import { describe, expect, it } from 'vitest'
import { UsageError } from '../errors.js'
import { formatContainerFilters, parseContainerFilters } from './container-filter.js'

describe('parseContainerFilters (watch --filter, docker ps syntax)', () => {
  it('Given labels, names and the other descriptive keys, Then they become Docker filters, one key holding every value given once', () => {
    const filters = parseContainerFilters(['label=team=a', 'label=tier', 'name=web', 'label=team=a', 'ancestor=nginx:1.27', 'is-task=false', 'network=front'], '--filter')
    expect(filters).toEqual({ label: ['team=a', 'tier'], name: ['web'], ancestor: ['nginx:1.27'], 'is-task': ['false'], network: ['front'] })
    expect(formatContainerFilters(filters)).toEqual(['label=team=a', 'label=tier', 'name=web', 'ancestor=nginx:1.27', 'is-task=false', 'network=front'])
  })

  it('Given ports and ranges for publish and expose, Then they are taken as Docker writes them', () => {
    expect(parseContainerFilters(['publish=8080', 'publish=8000-8080/tcp', 'expose=53/udp'], '--filter')).toEqual({ publish: ['8080', '8000-8080/tcp'], expose: ['53/udp'] })
  })

  it('Given 33 filters, Then a usage error says at most 32 are taken', () => {
    expect(() => parseContainerFilters(Array.from({ length: 33 }, (_, i) => `label=l${i}`), '--filter')).toThrow(/33 filters given, at most 32 are taken/)
  })

  it('Given nothing, Then there is no filter', () => {
    expect(parseContainerFilters([], '--filter')).toBeUndefined()
  })

  it.each([
    ['status=running', /'status=running' is not a container filter the agent takes \(the agent follows status itself\)/],
    ['health=healthy', /follows health itself/],
    ['id=abc', /'id=abc' is not a container filter/],
    ['team=a', /'team=a' is not a container filter/],
    ['label', /'label' needs a value/],
    ['label=', /'label=' needs a value/],
    ['name=we\u0007b', /is longer than 512 characters or holds a control character/],
    [`name=${'x'.repeat(513)}`, /is longer than 512 characters/],
    ['publish=web', /publish takes a port or a range, with an optional protocol/],
    ['expose=80:80', /expose takes a port or a range/],
    ['is-task=yes', /is-task is true or false/],
  ])('Given %j, Then a usage error names it and how to fix it', (item, message) => {
    let error: unknown
    try {
      parseContainerFilters([item], '--filter')
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).message).toMatch(message)
    expect((error as UsageError).message).toMatch(/^--filter: /)
    expect((error as UsageError).hint).toMatch(/e\.g\./)
  })
})
