import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A cache folder per test file: the recovery journal lives there (test/helpers/isolate-cache.ts).
    setupFiles: ['test/helpers/isolate-cache.ts'],
    // QEMU-backed tests start their own emulator per file; two cores → two forks.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
