import { defineConfig } from 'vitest/config';

/**
 * Measurements, not checks: `npx vitest run --config vitest.measure.config.ts`.
 * Kept out of `npm test` (the suite asserts behaviour, never speed, and skips nothing).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.measure.ts'],
    setupFiles: ['test/helpers/isolate-cache.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 60_000,
  },
});
