/**
 * Closing what a test opened, whether it passes or fails, without a list per
 * test file and an `afterEach` that empties it.
 * @module
 */
import { onTestFinished } from 'vitest';

/**
 * Closes `resource` once the running test has finished, passed or failed.
 * That is after the file's `afterEach` hooks, so a client closed there goes
 * before the proxy it talks through; several resources close in the reverse
 * order they were opened. Call it from inside a test, not from a hook. An
 * error from `close()` fails the test.
 *
 * @example
 * ```ts
 * const p = closeAfterTest(await startJlinkProxy(qemu.connectOptions));
 * ```
 */
export function closeAfterTest<T extends { close(): unknown }>(resource: T): T {
  onTestFinished(async () => {
    await resource.close();
  });
  return resource;
}
