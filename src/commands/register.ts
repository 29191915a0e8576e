import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js'
import { abortOnSignals } from '../cli/signals.js'
import { parseDuration } from '../core/duration.js'
import { buildManualRecord, keepRegistrationAlive, registerInstance } from '../services/register.js'

export default class Register extends BaseCommand {
  static override summary = 'Register one instance of a service (an external service or a script)'
  static override description = `Writes <prefix>/services/<service>/<id>. Re-registering the same id replaces the record. Without --ttl the record stays until deregister; with --ttl it is bound to a lease of its own, kept alive only with --keepalive (foreground, revoked on Ctrl+C / SIGTERM). Check flags store a check that the elected leader runs.\n\n${EXIT_CODES_HELP}`
  static override examples = [
    '<%= config.bin %> register billing --address 10.0.0.5 --port 8080 --tag v2 --meta team=payments',
    '<%= config.bin %> register db --address db.internal --port 5432 --check-tcp --check-interval 5s',
    '<%= config.bin %> register worker --address 10.0.0.7 --port 9000 --ttl 30s --keepalive',
  ]
  static override args = { service: Args.string({ description: 'service name (lower-case DNS label)', required: true }) }
  static override flags = {
    address: Flags.string({ summary: 'IP address or host name of the instance', required: true }),
    port: Flags.string({ summary: 'port, 1-65535', required: true }),
    id: Flags.string({ summary: 'instance id (default <service>-<address>-<port>)' }),
    tag: Flags.string({ summary: 'tag (repeatable)', multiple: true }),
    meta: Flags.string({ summary: 'metadata key=value (repeatable)', multiple: true }),
    ttl: Flags.string({ summary: 'bind the record to a lease with this TTL, e.g. 30s' }),
    keepalive: Flags.boolean({ summary: 'stay in the foreground keeping the lease alive; revoke it on exit' }),
    'check-http': Flags.string({ summary: 'HTTP(S) URL the leader checks', helpGroup: 'CHECK' }),
    'check-tcp': Flags.boolean({ summary: 'the leader checks a TCP connect to address:port', helpGroup: 'CHECK' }),
    'check-interval': Flags.string({ summary: 'check interval (default 10s)', helpGroup: 'CHECK' }),
    'check-timeout': Flags.string({ summary: 'check timeout (default 5s)', helpGroup: 'CHECK' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Register)
    const config = this.resolveConfig(flags)
    const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, '--ttl')
    const record = buildManualRecord(
      {
        service: args.service,
        address: flags.address,
        port: flags.port,
        id: flags.id,
        tags: flags.tag,
        meta: flags.meta,
        ttlMs,
        keepalive: flags.keepalive,
        check: {
          http: flags['check-http'],
          tcp: flags['check-tcp'],
          intervalMs: flags['check-interval'] === undefined ? undefined : parseDuration(flags['check-interval'], '--check-interval'),
          timeoutMs: flags['check-timeout'] === undefined ? undefined : parseDuration(flags['check-timeout'], '--check-timeout'),
        },
      },
      config.node,
    )
    // Listen before the record exists, so a SIGTERM right after it is written still revokes the lease.
    const stop = flags.keepalive ? abortOnSignals() : undefined
    const registration = await registerInstance(config, record, ttlMs)
    if (this.jsonEnabled()) this.logJson(record)
    else this.out(record.id)
    try {
      if (stop) {
        this.progress(`keeping lease ${BigInt(registration.lease?.id ?? 0).toString(16)} alive (TTL ${flags.ttl}); Ctrl+C deregisters`)
        await keepRegistrationAlive(registration, stop, (text) => this.progress(text))
      } else {
        registration.lease?.release()
      }
    } finally {
      registration.registry.close()
    }
  }
}
