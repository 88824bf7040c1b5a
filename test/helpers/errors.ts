/**
 * Catching the error a test expects, so the test can then assert on its class,
 * code and message. Each helper fails the test with a readable message when
 * nothing is thrown, instead of letting the test pass or read `undefined`.
 * @module
 */
import { expect } from 'vitest';
import { FormatError } from '../../lib/errors.js';

/**
 * The error `promise` rejects with; fails the test if it resolves.
 *
 * @example
 * ```ts
 * const err = await rejection(runner.call('EraseSector', [FLASH]));
 * expect(err).toBeInstanceOf(AlgorithmFaultError);
 * ```
 */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/**
 * The {@link FormatError} `fn` throws; fails the test if it throws anything
 * else or nothing.
 *
 * @example
 * ```ts
 * expect(formatError(() => parseFlm(bytes, 'a.flm')).message).toMatch(/no FlashDevice/);
 * ```
 */
export function formatError(fn: () => unknown): FormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    return err as FormatError;
  }
  throw new Error('expected a FormatError, nothing was thrown');
}
