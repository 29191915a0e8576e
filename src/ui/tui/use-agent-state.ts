import { useSyncExternalStore } from 'react'
import type { AgentState, AgentStore } from '../../core/store.js'

/** The store's current snapshot; re-renders only when the store emits a change. */
export const useAgentState = (store: AgentStore): AgentState => useSyncExternalStore(store.subscribe, store.getSnapshot)
