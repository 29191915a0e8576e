import { Flags } from '@oclif/core'

/**
 * Connection flags every command shares. Environment variables and the config file are
 * resolved in one place (core/config.ts), so the flags carry no `env` of their own and the
 * help text names the variables instead.
 */
export const connectionFlags = {
  'etcd-endpoints': Flags.string({
    summary: 'etcd endpoints, comma-separated host:port or URLs (env DISCOVERY_ETCD_ENDPOINTS, ETCDCTL_ENDPOINTS; default http://127.0.0.1:2379)',
    helpGroup: 'CONNECTION',
  }),
  'etcd-cacert': Flags.string({ summary: 'CA bundle to verify etcd (env DISCOVERY_ETCD_CACERT, ETCDCTL_CACERT)', helpGroup: 'CONNECTION' }),
  'etcd-cert': Flags.string({ summary: 'client certificate for etcd (env DISCOVERY_ETCD_CERT, ETCDCTL_CERT)', helpGroup: 'CONNECTION' }),
  'etcd-key': Flags.string({ summary: 'client key for etcd (env DISCOVERY_ETCD_KEY, ETCDCTL_KEY)', helpGroup: 'CONNECTION' }),
  'etcd-user': Flags.string({ summary: 'etcd user, `name` or `name:password` (env DISCOVERY_ETCD_USER, ETCDCTL_USER)', helpGroup: 'CONNECTION' }),
  'etcd-password': Flags.string({ summary: 'etcd password (env DISCOVERY_ETCD_PASSWORD, ETCDCTL_PASSWORD)', helpGroup: 'CONNECTION' }),
  prefix: Flags.string({ summary: 'key prefix of the registry (env DISCOVERY_PREFIX; default /discovery)', helpGroup: 'CONNECTION' }),
  'docker-host': Flags.string({ summary: 'Docker engine address (env DOCKER_HOST; default unix:///var/run/docker.sock)', helpGroup: 'CONNECTION' }),
  node: Flags.string({ summary: 'this node’s name (env DISCOVERY_NODE; default the host name)', helpGroup: 'CONNECTION' }),
  config: Flags.string({ summary: 'YAML config file (env DISCOVERY_CONFIG; default ./discovery-agent.yaml, then $XDG_CONFIG_HOME/discovery-agent/config.yaml)', helpGroup: 'CONNECTION' }),
  'no-color': Flags.boolean({ summary: 'no colours (also NO_COLOR)', helpGroup: 'OUTPUT' }),
}

/** The read side's flags, shared by `watch` and `serve`. */
export const servingFlags = {
  'dns-addr': Flags.string({ summary: 'serve DNS (UDP and TCP) on host:port, e.g. 127.0.0.1:8600 (env DISCOVERY_DNS_ADDR; default off)', helpGroup: 'SERVING' }),
  'dns-domain': Flags.string({ summary: 'the DNS domain answered (env DISCOVERY_DNS_DOMAIN; default discovery.)', helpGroup: 'SERVING' }),
  'dns-ttl': Flags.string({ summary: 'TTL of DNS answers (env DISCOVERY_DNS_TTL; default 5s)', helpGroup: 'SERVING' }),
  'dns-only-passing': Flags.boolean({ summary: 'answer only passing instances, not warning ones (env DISCOVERY_DNS_ONLY_PASSING)', helpGroup: 'SERVING' }),
  'dns-recursor': Flags.string({ summary: 'forward names outside the domain to this resolver, ip[:port], comma-separated (env DISCOVERY_DNS_RECURSOR; default: refuse them)', helpGroup: 'SERVING' }),
  'http-addr': Flags.string({ summary: 'serve the read-only Consul HTTP API on host:port, e.g. 127.0.0.1:8500 (env DISCOVERY_HTTP_ADDR; default off)', helpGroup: 'SERVING' }),
  'http-token': Flags.string({ summary: 'require this token on the HTTP API (X-Consul-Token or Bearer); prefer env DISCOVERY_HTTP_TOKEN', helpGroup: 'SERVING' }),
  datacenter: Flags.string({ summary: 'datacenter name in DNS names and HTTP answers (env DISCOVERY_DATACENTER; default dc1)', helpGroup: 'SERVING' }),
}
