export interface TestEnv {
  etcdEndpoints: string[]
  etcdPeerPorts: number[]
  tls: {
    endpoint: string
    ca: string
    cert: string
    key: string
    otherCa: string
    expiredCert: string
    expiredKey: string
    user: string
    password: string
  }
  dockerHost: string
  docker2Host: string
  docker2Bridge: string
  image: string
  script: string
  dir: string
}

/** The endpoints global-setup wrote; fails (never skips) when the environment is missing. */
export function testEnv(): TestEnv {
  const raw = process.env.DISCOVERY_TESTENV_JSON
  if (!raw) throw new Error('DISCOVERY_TESTENV_JSON is not set: run integration tests through vitest (global setup brings the environment up)')
  return JSON.parse(raw) as TestEnv
}
