import { UsageError } from '../errors.js'
import { clip } from '../validate.js'

/**
 * `watch --filter`: which containers this agent owns, in `docker ps --filter` syntax
 * (`label=team=a`, `name=web`, …), judged by Docker itself (the agent passes them to the list
 * call, never re-implements their matching). As in Docker, one key given several times matches
 * any of its values (labels: all of them), and different keys must all match.
 *
 * Only the filters that describe what a container is are taken: its state (`status`,
 * `health`, `exited`) is the agent's own business, `before`/`since` name moments, and `id`
 * is what the agent itself asks with.
 */
export type ContainerFilters = Record<string, string[]>

export const CONTAINER_FILTER_KEYS = ['label', 'name', 'ancestor', 'network', 'publish', 'expose', 'volume', 'is-task'] as const

/** Filters that a container keeps for its whole life once created, except through these events. */
export const FILTER_CHANGING_ACTIONS = ['rename', 'connect', 'disconnect', 'destroy']

/** Values at most: each goes into the URL of every list call. */
const MAX_VALUES = 32
const PORT_FILTER = /^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/

export function parseContainerFilters(items: readonly string[], from: string): ContainerFilters | undefined {
  const filters: ContainerFilters = {}
  if (items.length > MAX_VALUES) throw new UsageError(`${from}: ${items.length} filters given, at most ${MAX_VALUES} are taken`, { hint: 'match on a label the containers share, e.g. label=team=a' })
  for (const item of items) {
    const at = item.indexOf('=')
    const key = at < 0 ? item : item.slice(0, at)
    const value = at < 0 ? '' : item.slice(at + 1)
    if (!(CONTAINER_FILTER_KEYS as readonly string[]).includes(key)) {
      const state = ['status', 'health', 'exited'].includes(key)
      throw new UsageError(`${from}: '${clip(item)}' is not a container filter the agent takes${state ? ` (the agent follows ${key} itself)` : ''}`, {
        hint: `use key=value with key one of ${CONTAINER_FILTER_KEYS.join(', ')}, e.g. label=team=a`,
      })
    }
    if (value.length === 0) throw new UsageError(`${from}: '${clip(item)}' needs a value`, { hint: `e.g. ${EXAMPLE[key]}` })
    if (value.length > 512 || /[\u0000-\u001f\u007f]/.test(value)) {
      throw new UsageError(`${from}: '${clip(item)}' is longer than 512 characters or holds a control character`, { hint: `e.g. ${EXAMPLE[key]}` })
    }
    if ((key === 'publish' || key === 'expose') && !PORT_FILTER.test(value)) {
      throw new UsageError(`${from}: '${clip(item)}': ${key} takes a port or a range, with an optional protocol`, { hint: `e.g. ${EXAMPLE[key]}` })
    }
    if (key === 'is-task' && value !== 'true' && value !== 'false') throw new UsageError(`${from}: '${clip(item)}': is-task is true or false`, { hint: 'e.g. is-task=false' })
    const values = (filters[key] ??= [])
    if (!values.includes(value)) values.push(value)
  }
  return Object.keys(filters).length > 0 ? filters : undefined
}

const EXAMPLE: Record<string, string> = {
  label: 'label=team=a',
  name: 'name=^web$ (a regular expression, as in docker ps)',
  ancestor: 'ancestor=nginx:1.27',
  network: 'network=front',
  publish: 'publish=8080/tcp',
  expose: 'expose=80',
  volume: 'volume=data',
  'is-task': 'is-task=false',
}

/** The filters as `docker ps --filter` arguments, for messages and the node record. */
export function formatContainerFilters(filters: ContainerFilters | undefined): string[] {
  return Object.entries(filters ?? {}).flatMap(([key, values]) => values.map((value) => `${key}=${value}`))
}
