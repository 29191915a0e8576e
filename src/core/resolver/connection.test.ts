import { describe, expect, it } from 'vitest'
import { UsageError } from '../errors.js'
import { etcdConnectionFrom } from './connection.js'

describe('etcdConnectionFrom', () => {
  it.each([
    ['nothing: the CLI default', {}, ['http://127.0.0.1:2379']],
    ['a comma list of host:port', { etcdEndpoints: '10.0.0.1:2379, 10.0.0.2:2379' }, ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']],
    ['an array of URLs', { etcdEndpoints: ['http://a:2379', 'https://b:2390'] }, ['http://a:2379', 'https://b:2390']],
    ['host:port with a CA: https', { etcdEndpoints: 'db:2379', cacert: '/ca.pem' }, ['https://db:2379']],
    ['a host without port: 2379', { etcdEndpoints: 'etcd.internal' }, ['http://etcd.internal:2379']],
  ])('Given %s, When normalised, Then the endpoints are as the CLI would use them', (_what, options, endpoints) => {
    // When
    const connection = etcdConnectionFrom(options)
    // Then
    expect(connection.endpoints).toEqual(endpoints)
  })

  it('Given user name:password as etcdctl takes it, When normalised, Then user and password are split; an explicit password wins', () => {
    // When / Then
    expect(etcdConnectionFrom({ user: 'root:pw' })).toMatchObject({ user: 'root', password: 'pw' })
    expect(etcdConnectionFrom({ user: 'root:pw', password: 'other' })).toMatchObject({ user: 'root', password: 'other' })
    expect(etcdConnectionFrom({ user: 'root' })).toEqual({ endpoints: ['http://127.0.0.1:2379'], user: 'root', password: undefined })
  })

  it.each([
    ['a certificate without its key', { cert: '/c.pem' }, /needs its key/],
    ['a key without its certificate', { key: '/k.pem' }, /needs its key/],
    ['an empty endpoint list', { etcdEndpoints: ' , ' }, /etcdEndpoints is empty/],
    ['an endpoint with a path', { etcdEndpoints: 'http://a:2379/v3' }, /etcdEndpoints: 'http:\/\/a:2379\/v3' has a path/],
    ['a non-http scheme', { etcdEndpoints: 'unix:///run/etcd.sock' }, /has scheme unix:/],
    ['a password without a user', { password: 'pw' }, /password is set but no user/],
    ['an empty user name', { user: ':pw' }, /user name is empty/],
  ])('Given %s, When normalised, Then a UsageError names the option', (_what, options, message) => {
    // When / Then
    expect(() => etcdConnectionFrom(options)).toThrow(UsageError)
    expect(() => etcdConnectionFrom(options)).toThrow(message)
  })
})
