import { describe, expect, it } from 'vitest'
import { describeCause, etcdUnavailable, explainEtcdFailure } from './etcd.js'
import { UnavailableError, UsageError } from './errors.js'

describe('describeCause', () => {
  it.each([
    ['14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note:', 'connection refused'],
    ['14 UNAVAILABLE: No connection established. Last error: null. Resolution note: ', 'unreachable (no connection established)'],
    ['14 UNAVAILABLE: No connection established. Last error: Failed to connect (2026-11-26T11:28:52.454Z). Resolution note:', 'unreachable (Failed to connect)'],
    ['etcdserver: authentication failed, invalid user ID or password', 'authentication failed (wrong user or password)'],
    ['etcdserver: permission denied', 'permission denied for this user'],
    ['4 DEADLINE_EXCEEDED: Deadline exceeded', 'timed out'],
    ['getaddrinfo ENOTFOUND etcd.nowhere', 'host name not found'],
    ['14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note:', 'TLS failed: unable to verify the first certificate'],
  ])('Given %j, When described, Then the cause is %j', (message, cause) => {
    expect(describeCause(new Error(message)).cause).toBe(cause)
  })
})

describe('etcdUnavailable / explainEtcdFailure', () => {
  it('Given a grpc error, When wrapped, Then one UnavailableError line names what failed, where and why', () => {
    const error = etcdUnavailable(new Error('connect ECONNREFUSED 127.0.0.1:1'), { endpoints: ['http://127.0.0.1:1'] }, 'listing instances')
    expect(error).toBeInstanceOf(UnavailableError)
    expect(error.message).toBe('listing instances failed at http://127.0.0.1:1: connection refused')
  })

  it('Given a DiscoveryError, When wrapped, Then it passes through unchanged', async () => {
    const usage = new UsageError('bad')
    expect(etcdUnavailable(usage, { endpoints: ['http://x:1'] })).toBe(usage)
    expect(await explainEtcdFailure(usage, { endpoints: ['https://x:1'] })).toBe(usage)
  })

  it('Given plain http endpoints, When explained, Then no TLS probe runs and the cause stays as described', async () => {
    const error = await explainEtcdFailure(new Error('14 UNAVAILABLE: No connection established. Last error: null.'), { endpoints: ['http://127.0.0.1:1'] }, 'x')
    expect(error.message).toBe('x failed at http://127.0.0.1:1: unreachable (no connection established)')
  })
})
