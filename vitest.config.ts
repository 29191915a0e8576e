import { defineConfig } from 'vitest/config'

// Suites: unit (pure logic, co-located *.test.ts), integration (real dockerd + etcd; the files
// that disturb shared services run alone in integration-exclusive), faults (fault injection
// with the convergence oracle). All but unit share a global setup that brings the environment
// up (scripts/testenv.sh) and fails loudly if it can't.
/** Integration files that disturb shared services (etcd members killed, the second dockerd stopped). */
const INTEGRATION_EXCLUSIVE = ['test/integration/election-failover.test.ts', 'test/integration/registry-lease.test.ts', 'test/integration/agent-hosts.test.ts']

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.{ts,tsx}'],
          environment: 'node',
        },
      },
      {
        // Measurements that print numbers and assert nothing (npm run bench:tui); not in npm test.
        // React's production build and JSX transform, as `watch` loads them (ui/run-presenter.ts).
        oxc: { jsx: { runtime: 'automatic', development: false } },
        test: {
          name: 'measure',
          include: ['src/**/*.measure.{ts,tsx}'],
          environment: 'node',
          env: { NODE_ENV: 'production' },
          testTimeout: 300_000,
        },
      },
      {
        // Two files at a time: none of these stops or freezes a shared service, and each works
        // under its own prefix, containers and tag (other files' containers come and go meanwhile).
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.{ts,tsx}'],
          exclude: INTEGRATION_EXCLUSIVE,
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
      {
        // Alone, one after the other: these kill shared etcd members or stop the second dockerd.
        test: {
          name: 'integration-exclusive',
          include: INTEGRATION_EXCLUSIVE,
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
