import { Box, Text } from 'ink'
import { formatAge } from '../../core/duration.js'
import type { AgentState, ConnectionState } from '../../core/store.js'
import { fit } from './layout.js'

export interface HeaderProps {
  state: AgentState
  width: number
  now: number
}

const stateWord = (s: ConnectionState): string => (s.connected ? '● up' : '○ down')

/** What follows a connection's state: its target when up, the error and retry when down; dropped when it does not fit. */
function connectionDetail(s: ConnectionState, target: string): string {
  return s.connected ? target : s.detail ?? ''
}

export const Header = ({ state, width, now }: HeaderProps) => {
  const etcdTarget = state.etcdEndpoints.length === 1 ? state.etcdEndpoints[0] : `${state.etcdEndpoints[0]} +${state.etcdEndpoints.length - 1}`
  const base = `discovery-agent · node ${state.node} · docker ${stateWord(state.docker)} · etcd ${stateWord(state.etcd)}`
  const dockerDetail = connectionDetail(state.docker, state.dockerHost)
  const etcdDetail = connectionDetail(state.etcd, etcdTarget)
  // Details (targets, errors) appear only when the terminal is wide enough; errors are preferred.
  const room = width - base.length
  const showEtcd = etcdDetail.length > 0 && room >= etcdDetail.length + 1
  const showDocker = dockerDetail.length > 0 && room >= dockerDetail.length + 1 + (showEtcd ? etcdDetail.length + 1 : 0)
  const leader = state.leader
  const leaderText = leader
    ? `${leader.node}${leader.self ? ' (you)' : ''} · term ${leader.term} · since ${formatAge(now - Date.parse(leader.since))}`
    : 'none elected'
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate-end">
        <Text bold>discovery-agent</Text>
        <Text dimColor> · </Text>node <Text bold>{state.node}</Text>
        <Text dimColor> · </Text>docker <Text color={state.docker.connected ? 'green' : 'red'}>{stateWord(state.docker)}</Text>
        {showDocker ? <Text dimColor> {dockerDetail}</Text> : null}
        <Text dimColor> · </Text>etcd <Text color={state.etcd.connected ? 'green' : 'red'}>{stateWord(state.etcd)}</Text>
        {showEtcd ? <Text dimColor> {etcdDetail}</Text> : null}
      </Text>
      <Text wrap="truncate-end">
        leader{' '}
        <Text color={leader ? 'cyan' : 'red'} bold={leader?.self}>
          {fit(leaderText, Math.max(10, width - 20)).trimEnd()}
        </Text>
        {state.stopping ? <Text color="yellow"> · stopping…</Text> : null}
      </Text>
    </Box>
  )
}
