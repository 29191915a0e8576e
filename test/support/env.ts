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
  /** Podman's Docker-compatible API (`podman system service`), or null when it could not be brought up. */
  podmanHost: string | null
  /** Why podmanHost is null (podman tests fail with it). */
  podmanError?: string | null
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

/** The Podman socket, or a failure naming why the environment has none (never a skip). */
export function podmanHost(): string {
  const env = testEnv()
  if (!env.podmanHost) throw new Error(`no Podman service in the test environment: ${env.podmanError ?? 'podmanHost missing from env.json (old scripts/testenv.sh?)'}`)
  return env.podmanHost
}
