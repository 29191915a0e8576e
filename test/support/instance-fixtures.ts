import type { HealthStatus, InstanceRecord } from '../../src/core/model.js'

/** A schema-1 instance record for unit tests; `overrides` wins, `health` is merged. */
export function instanceRecord(
  overrides: Partial<Omit<InstanceRecord, 'health'>> & { health?: Partial<InstanceRecord['health']>; status?: HealthStatus } = {},
): InstanceRecord {
  const { health, status, ...rest } = overrides
  const node = rest.node ?? 'node-a'
  const at = '2024-05-01T12:00:00.000Z'
  return {
    schema: 1,
    id: `${node}:web-1:80`,
    service: 'web',
    address: '127.0.0.1',
    port: 32768,
    tags: [],
    meta: {},
    node,
    source: 'docker',
    registeredAt: at,
    updatedAt: at,
    ...rest,
    health: { status: status ?? 'passing', output: 'HTTP 200 OK', updatedAt: at, since: at, ...health },
  }
}

/** The etcd key a record lives under. */
export const keyOf = (record: InstanceRecord, prefix = '/discovery'): string => `${prefix}/services/${record.service}/${record.id}`
