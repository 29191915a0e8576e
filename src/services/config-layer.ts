import os from 'node:os'
import { HOT_SETTINGS, resolveConfig, type Config } from '../core/config.js'
import { NotFoundError, UnavailableError, UsageError } from '../core/errors.js'
import { configAgentsKey, configNodeKey } from '../core/keys.js'
import { Registry, type ConfigStatus } from '../core/registry.js'
import { clip } from '../core/validate.js'

/** The etcd layer a command works on: all agents, or one node's. */
export function layerKey(config: Config, node?: string): string {
  return node === undefined ? configAgentsKey(config.prefix) : configNodeKey(config.prefix, node)
}

/** Every setting of a layer, checked as an agent would check it (so nothing is written that an agent would reject). */
export function validateLayer(key: string, values: Record<string, unknown>): void {
  resolveConfig({ flags: {}, env: {}, cwd: '/', hostname: 'validate', fileExists: () => false, etcdLayers: [{ key, values }] })
}

export async function getLayer(config: Config, node?: string): Promise<{ key: string; values: Record<string, unknown> }> {
  const key = layerKey(config, node)
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    return { key, values: (await registry.getConfigLayer(key)).values }
  } finally {
    registry.close()
  }
}

/** Sets (or with `value` undefined, unsets) one setting of a layer; validated whole before anything is written. */
export async function changeLayer(config: Config, setting: string, value: string | undefined, node?: string): Promise<{ key: string; values: Record<string, unknown>; changed: boolean }> {
  if (!HOT_SETTINGS.has(setting)) {
    throw new UsageError(`'${clip(setting)}' cannot be set in etcd`, { hint: `settings agents apply while running: ${[...HOT_SETTINGS].join(', ')}` })
  }
  const key = layerKey(config, node)
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { values, modRevision } = await registry.getConfigLayer(key)
      const next = { ...values }
      if (value === undefined) delete next[setting]
      else next[setting] = value
      if (JSON.stringify(next) === JSON.stringify(values)) return { key, values, changed: false }
      validateLayer(key, next)
      if (await registry.putConfigLayer(key, next, modRevision)) return { key, values: next, changed: true }
      // Someone else changed the layer between our read and write: read again.
    }
    throw new UnavailableError(`etcd ${key} keeps changing under us`, { hint: 'try again' })
  } finally {
    registry.close()
  }
}

export interface ReloadResult {
  node: string
  status?: ConfigStatus
}

/**
 * Asks agents to re-read their configuration and waits for their reports: the local agent
 * (SIGHUP to the pid its node record names, when it runs on this host), or every live agent
 * (`cluster`: a key they all watch).
 */
export async function reloadAgents(config: Config, options: { cluster: boolean; timeoutMs: number }): Promise<ReloadResult[]> {
  const registry = Registry.open(config.etcd, config.prefix)
  try {
    const sentAt = new Date().toISOString()
    let nodes: string[]
    if (options.cluster) {
      nodes = (await registry.listNodes()).entries.map((e) => e.value.node)
      if (nodes.length === 0) throw new NotFoundError('no agent is running under this prefix', { hint: 'start one with discovery-agent watch' })
      await registry.requestClusterReload({ at: sentAt, by: `${os.userInfo().username}@${os.hostname()}` })
    } else {
      const holder = await registry.getNode(config.node)
      if (!holder) throw new NotFoundError(`no agent runs as node ${config.node}`, { hint: 'pass --node, or --cluster to reload every agent' })
      if (holder.value.hostname !== os.hostname()) {
        throw new UsageError(`node ${config.node} runs on ${holder.value.hostname}, not on this host`, { hint: 'run reload there, or use --cluster' })
      }
      try {
        process.kill(holder.value.pid, 'SIGHUP')
      } catch (error) {
        throw new UnavailableError(`cannot signal the agent (pid ${holder.value.pid}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { hint: 'run reload as the user the agent runs as, or use --cluster' })
      }
      nodes = [config.node]
    }
    const deadline = Date.now() + options.timeoutMs
    const results = new Map<string, ConfigStatus | undefined>(nodes.map((n) => [n, undefined]))
    while (Date.now() < deadline && [...results.values()].some((s) => s === undefined)) {
      for (const node of nodes) {
        if (results.get(node)) continue
        const status = await registry.getConfigStatus(node)
        if (status && status.at >= sentAt) results.set(node, status)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return [...results].map(([node, status]) => ({ node, ...(status ? { status } : {}) }))
  } finally {
    registry.close()
  }
}
