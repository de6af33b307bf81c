import { defineConfig } from 'vitest/config';

// Two groups: fast in-process unit tests, and slow interop tests against real peers
// (wireguard-go in network namespaces, later Headscale, tailscaled, derper).
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
