import { defineConfig } from 'vitest/config'

// Three suites: unit (pure logic, co-located *.test.ts), integration (real dockerd + etcd),
// faults (fault injection with the convergence oracle). The last two share a global setup
// that brings the environment up (scripts/testenv.sh) and fails loudly if it can't.
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
        test: {
          name: 'measure',
          include: ['src/**/*.measure.{ts,tsx}'],
          environment: 'node',
          testTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.{ts,tsx}'],
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
