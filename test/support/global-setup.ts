import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'

/**
 * Brings up dockerd, the second dockerd, the 3-member etcd cluster and the TLS etcd
 * (idempotent), then hands the endpoints to the tests through the environment.
 * If anything can't come up the run fails here, with the script's reason: integration
 * tests never skip silently.
 */
export default function setup(): void {
  const script = path.resolve('scripts/testenv.sh')
  try {
    execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 })
  } catch (error) {
    throw new Error(`the test environment could not be brought up (scripts/testenv.sh up failed): ${(error as Error).message}`)
  }
  const dir = process.env.DISCOVERY_TESTENV_DIR ?? '/tmp/discovery-testenv'
  process.env.DISCOVERY_TESTENV_JSON = readFileSync(path.join(dir, 'env.json'), 'utf8')
}
