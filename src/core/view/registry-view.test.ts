import { describe, expect, it } from 'vitest'
import { nodeScope } from './registry-view.js'

describe('nodeScope', () => {
  const inScope = nodeScope('/reg', ['web-1', 'swarm'])

  it.each([
    ['/reg/services/api/web-1/abc', true],
    ['/reg/services/api/swarm/task1', true],
    ['/reg/services/api/web-2/abc', false],
    ['/reg/services/api/web-10/abc', false],
    // A manual record (<service>/<id>): cluster-wide, kept
    ['/reg/services/api/manual-1', true],
    ['/reg/nodes/web-2', true],
    ['/reg/maintenance/nodes/web-2', true],
    ['/reg/config/agents', true],
    ['/reg/leader/info', true],
    // A key of another prefix that starts like this one's services
    ['/reg/servicesX/api/web-2/abc', true],
  ])('Given a view scoped to web-1 and swarm, When %s is listed, Then it is kept: %s', (key, kept) => {
    expect(inScope(key)).toBe(kept)
  })
})
