/**
 * Closing what a test opened, whether it passes or fails, without a list per
 * test file and an `afterEach` that empties it.
 * @module
 */
import { onTestFinished } from 'vitest';

/** Options of {@link closeAfterTest}. */
export interface CloseAfterTestOptions {
  /**
   * Let `close()` fail without failing the test: for a client the test may
   * already have closed, or whose link it broke on purpose.
   */
  ignoreErrors?: boolean;
}

/**
 * Closes `resource` once the running test has finished, passed or failed.
 * Resources close in the reverse order they were opened, so a client goes
 * before the proxy it talks through. Call it from inside a test, not from a
 * hook. An error from `close()` fails the test unless `ignoreErrors` is set.
 *
 * @example
 * ```ts
 * const p = closeAfterTest(await startJlinkProxy(qemu.connectOptions));
 * const gdb = closeAfterTest(await GdbClient.connect({ host: p.host, port: p.port }), { ignoreErrors: true });
 * ```
 */
export function closeAfterTest<T extends { close(): unknown }>(resource: T, options: CloseAfterTestOptions = {}): T {
  onTestFinished(async () => {
    try {
      await resource.close();
    } catch (err) {
      if (!options.ignoreErrors) throw err;
    }
  });
  return resource;
}
