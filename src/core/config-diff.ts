import type { Config } from './config.js'

/** Every setting as one comparable value, by its flag name (what `config.applied` names). */
function settingsOf(config: Config): Record<string, unknown> {
  const { agent, serve } = config
  return {
    'etcd-endpoints': config.etcd.endpoints,
    'etcd-cacert': config.etcd.cacert,
    'etcd-cert': config.etcd.cert,
    'etcd-key': config.etcd.key,
    'etcd-user': config.etcd.user,
    'etcd-password': config.etcd.password,
    prefix: config.prefix,
    'docker-host': config.docker.host,
    'docker-cert-path': config.docker.certPath,
    'docker-tls-verify': config.docker.tlsVerify,
    node: config.node,
    ttl: agent.ttlMs,
    resync: agent.resyncMs,
    'address-mode': agent.addressMode,
    network: agent.network,
    'advertise-address': agent.advertiseAddress,
    'exposed-by-default': agent.exposedByDefault,
    'deregister-critical-after': agent.deregisterCriticalAfterMs,
    'metrics-port': agent.metricsPort,
    'metrics-host': agent.metricsHost,
    'check-concurrency': agent.checkConcurrency,
    tags: agent.extraTags,
    explicit: agent.explicit,
    'use-ip-from-label': agent.ipFromLabel,
    filter: agent.containerFilters,
    swarm: agent.swarm !== undefined,
    'swarm-address-mode': agent.swarm?.addressMode,
    'swarm-network': agent.swarm?.network,
    'dns-addr': serve.dns,
    'dns-domain': serve.dnsDomain,
    'dns-ttl': serve.dnsTtlSeconds,
    'dns-only-passing': serve.dnsOnlyPassing,
    'dns-recursor': serve.dnsRecursors,
    'http-addr': serve.http,
    'http-token': serve.httpToken,
    datacenter: serve.datacenter,
  }
}

/**
 * Pure: which settings differ between two configurations, split into those an agent can
 * apply while running (`hot`) and those that need a restart. Secret values are compared,
 * never returned.
 */
export function diffConfig(before: Config, after: Config, hotSettings: ReadonlySet<string>): { hot: string[]; restart: string[] } {
  const a = settingsOf(before)
  const b = settingsOf(after)
  const changed = Object.keys(b).filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]))
  return { hot: changed.filter((key) => hotSettings.has(key)), restart: changed.filter((key) => !hotSettings.has(key)) }
}
