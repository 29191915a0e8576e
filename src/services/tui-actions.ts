import os from 'node:os'
import type { Agent } from '../core/agent/agent.js'
import type { InstanceRecord } from '../core/model.js'
import type { Registry } from '../core/registry.js'

/** What the live view may ask of a running agent (the TuiActions of ui/tui/actions.ts, implemented here). */
export interface AgentActions {
  checkNow: (record: InstanceRecord) => Promise<string>
  maintenance: (record: InstanceRecord, on: boolean) => Promise<string>
  deregister: (record: InstanceRecord) => Promise<string>
}

export function agentActions(agent: Agent, registry: Registry): AgentActions {
  return {
    checkNow: async (record) => {
      const result = await agent.checkNow(record)
      return `${result.status} in ${Math.round(result.latencyMs)} ms: ${result.output}`
    },
    maintenance: async (record, on) => {
      const target = { kind: 'instance' as const, service: record.service, id: record.id }
      if (!on) return (await registry.deleteMaintenance(target)) ? 'back in rotation' : 'it had no instance mark (a service or node mark, or its label, may still hold it)'
      await registry.putMaintenance(target, { reason: 'set from the live view', by: `${user()}@${os.hostname()}`, since: new Date().toISOString() })
      return 'in maintenance'
    },
    deregister: async (record) => {
      if (record.source !== 'manual') throw new Error('its agent owns it: stop the container, or set discovery.enable=false')
      return (await registry.deleteInstance(record.service, record.id)) ? 'deregistered' : 'it was already gone'
    },
  }
}

function user(): string {
  try {
    return os.userInfo().username
  } catch {
    return 'unknown'
  }
}
