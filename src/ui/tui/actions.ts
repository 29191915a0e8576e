import type { InstanceRecord } from '../../core/model.js'
import { printable } from '../../core/text.js'
import { formatAddress } from '../instance-table.js'
import { instanceLabel } from './layout.js'

/**
 * What the TUI can ask of the agent. The service layer implements these (the UI never talks
 * to etcd or runs checks itself) and passes them to the App through the presenter; each one
 * not given is "not available" on screen. Each resolves to a short result line for the log
 * ("passing in 3 ms: HTTP 200 OK") or rejects with an Error whose message says why not.
 */
export interface TuiActions {
  /** Runs the instance's check now (out of its schedule); the result also arrives as usual events. */
  checkNow?: (record: InstanceRecord) => Promise<string>
  /** Puts the instance into maintenance (on) or takes it out (off). */
  maintenance?: (record: InstanceRecord, on: boolean) => Promise<string>
  /** Deletes a manual record from the registry (never offered for Docker records: their agent owns them). */
  deregister?: (record: InstanceRecord) => Promise<string>
  /** Puts text on the clipboard where the terminal allows (OSC 52); the address is printed to the log either way. */
  copy?: (text: string) => Promise<string>
}

export type ActionKind = 'check' | 'maintenance-on' | 'maintenance-off' | 'deregister' | 'copy'

/** An action on one instance, as confirmed by the user (or at once, for a copy). */
export interface ActionRequest {
  kind: ActionKind
  /** `service/id` of the instance. */
  key: string
  service: string
  id: string
}

/** Which actions the App was given. */
export type ActionAvailability = Record<'check' | 'maintenance' | 'deregister', boolean>

export const availability = (actions: TuiActions): ActionAvailability => ({
  check: actions.checkNow !== undefined,
  maintenance: actions.maintenance !== undefined,
  deregister: actions.deregister !== undefined,
})

const NAME: Record<ActionKind, string> = {
  check: 'run a check now',
  'maintenance-on': 'maintenance',
  'maintenance-off': 'maintenance',
  deregister: 'deregister',
  copy: 'copy the address',
}

const subject = (record: Pick<InstanceRecord, 'service' | 'id' | 'node'>): string => `${record.service} ${instanceLabel(record)}`

/** Why `kind` cannot be asked for this record, or undefined when it can. */
export function refusal(kind: ActionKind, record: InstanceRecord, available: ActionAvailability): string | undefined {
  switch (kind) {
    case 'check':
      if (!available.check) return `${NAME[kind]} is not available in this agent`
      if (!record.check) return `${subject(record)} has no check to run`
      return undefined
    case 'maintenance-on':
    case 'maintenance-off':
      return available.maintenance ? undefined : `${NAME[kind]} is not available in this agent yet`
    case 'deregister':
      if (record.source !== 'manual') return `${subject(record)} is a Docker record: its agent owns it (stop the container instead); only manual records can be deregistered`
      return available.deregister ? undefined : `${NAME[kind]} is not available in this agent`
    case 'copy':
      return undefined
  }
}

/** The confirmation line's question. */
export function prompt(request: ActionRequest, record?: InstanceRecord): string {
  const who = record ? subject(record) : `${request.service} ${request.id}`
  switch (request.kind) {
    case 'check':
      return `run the check of ${who} now?`
    case 'maintenance-on':
      return `put ${who} into maintenance?`
    case 'maintenance-off':
      return `take ${who} out of maintenance?`
    case 'deregister':
      return `deregister ${who} (delete the record from the registry)?`
    case 'copy':
      return `copy the address of ${who}?`
  }
}

export const requestFor = (kind: ActionKind, record: Pick<InstanceRecord, 'service' | 'id'>): ActionRequest => ({ kind, key: `${record.service}/${record.id}`, service: record.service, id: record.id })

/** A line the TUI adds to the log itself: action results (and refusals). */
export interface UiNote {
  id: number
  at: string
  level: 'info' | 'warn' | 'error'
  text: string
  service?: string
  /** The instance id as the log shows it (this node's without the node prefix). */
  instance?: string
}

export const NOTE_LIMIT = 200

/** The notes with one more (ids increasing), keeping the last `limit`. */
export function notesAfter(notes: readonly UiNote[], note: Omit<UiNote, 'id'>, limit = NOTE_LIMIT): UiNote[] {
  const next: UiNote = { ...note, text: printable(note.text), id: (notes.at(-1)?.id ?? 0) + 1 }
  return [...notes.slice(Math.max(0, notes.length + 1 - limit)), next]
}

/** Runs a confirmed request; resolves to the note for the log (never rejects). */
export async function runAction(actions: TuiActions, request: ActionRequest, record: InstanceRecord | undefined, at: () => Date = () => new Date()): Promise<Omit<UiNote, 'id'>> {
  const about = { service: request.service, instance: record ? instanceLabel(record) : request.id }
  const note = (level: UiNote['level'], text: string) => ({ ...about, level, text, at: at().toISOString() })
  if (!record) return note('warn', `${NAME[request.kind]}: ${request.service} ${request.id} is gone from the registry`)
  const who = subject(record)
  try {
    switch (request.kind) {
      case 'check':
        return note('info', `check ${who} run now: ${await call(actions.checkNow, record)}`)
      case 'maintenance-on':
      case 'maintenance-off': {
        const on = request.kind === 'maintenance-on'
        return note('info', `maintenance ${on ? 'on' : 'off'} for ${who}: ${await call(actions.maintenance && ((r: InstanceRecord) => actions.maintenance!(r, on)), record)}`)
      }
      case 'deregister':
        return note('info', `deregistered ${who}: ${await call(actions.deregister, record)}`)
      case 'copy': {
        const address = formatAddress(record)
        const copied = actions.copy ? await actions.copy(address).catch((error: unknown) => `not copied (${errorText(error)})`) : 'no clipboard here: printed only'
        return note('info', `address of ${who}: ${address} (${copied})`)
      }
    }
  } catch (error) {
    return note('error', `${NAME[request.kind]} ${who} failed: ${errorText(error)}`)
  }
}

async function call(action: ((record: InstanceRecord) => Promise<string>) | undefined, record: InstanceRecord): Promise<string> {
  if (!action) throw new Error('not available in this agent')
  return action(record)
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))
