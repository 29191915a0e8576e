import type { AgentEvent } from '../core/agent/events.js'
import type { Config } from '../core/config.js'
import { describeCause, explainEtcdFailure } from '../core/etcd.js'
import { Registry } from '../core/registry.js'
import { withRetries } from '../core/retry.js'
import { RegistryView, type RegistryViewOptions } from '../core/view/registry-view.js'

/**
 * Opens the process's registry adapter and its one view, retrying while etcd is unreachable
 * (saying so through `emit`). Wrong credentials or certificates fail at once (exit 3).
 * Undefined when `signal` aborted first.
 */
export async function openView(config: Config, emit: (event: AgentEvent) => void, signal: AbortSignal, viewOptions: RegistryViewOptions = {}): Promise<{ registry: Registry; view: RegistryView } | undefined> {
  const registry = Registry.open(config.etcd, config.prefix, { retries: 2, callTimeoutMs: 3_000 })
  try {
    const view = await withRetries(async () => {
      try {
        return await RegistryView.open(registry, viewOptions)
      } catch (error) {
        // grpc-js hides TLS causes; explainEtcdFailure digs them out. Those won't fix themselves.
        const explained = await explainEtcdFailure(error, config.etcd, 'connecting to etcd')
        if (/authentication|permission|TLS|certificate/i.test(explained.message)) throw new Final(explained)
        throw error
      }
    }, {
      initialMs: 250,
      maxMs: 10_000,
      retryIf: (error) => !(error instanceof Final),
      onRetry: (error, delayMs) =>
        emit({ type: 'etcd.disconnected', endpoints: config.etcd.endpoints, error: describeCause((error as { cause?: unknown }).cause ?? error).cause, retryInMs: delayMs }),
    }, signal)
    return { registry, view }
  } catch (error) {
    registry.close()
    if (signal.aborted) return undefined
    if (error instanceof Final) throw error.error
    throw await explainEtcdFailure(error, config.etcd, 'connecting to etcd')
  }
}

class Final extends Error {
  constructor(readonly error: Error) {
    super(error.message)
  }
}
