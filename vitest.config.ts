import { defineConfig } from 'vitest/config';

// Two groups: fast in-process unit tests, and slow interop tests against real peers
// (wireguard-go in network namespaces, Headscale, tailscaled, derper); and, under `npm run fuzz`, a third.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/interop/**'],
          testTimeout: 30_000,
        },
      },
      // `npm run fuzz` (scripts/fuzz.mjs): the fuzz properties with FUZZ_RUNS inputs each. Only then,
      // so that `npm test` runs them once, in the unit project, as a smoke test.
      ...(process.env.FUZZ_RUNS
        ? [
            {
              test: {
                name: 'fuzz',
                include: ['test/**/fuzz.test.ts'],
                testTimeout: 3_600_000,
                hookTimeout: 120_000,
              },
            },
          ]
        : []),
      {
        test: {
          name: 'interop',
          include: ['test/interop/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Interop tests share namespaces, ports and processes: run the files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
