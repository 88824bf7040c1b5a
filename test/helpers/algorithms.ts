/**
 * Flash algorithms on a running target, for the tests that drive one through
 * the runner on QEMU: loading a built fixture, and a runner whose link and RAM
 * are given back when the test body is done.
 * @module
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { AlgorithmRunner, type RunnerOptions } from '../../lib/algo/runner.js';
import { GdbClient } from '../../lib/gdb/client.js';
import type { QemuInstance } from './qemu.js';

/**
 * Loads a built algorithm fixture, named in errors by its file name.
 *
 * @example
 * ```ts
 * const algo = loadFixtureAlgorithm(FIXTURES.norSim); // source 'nor-sim.flm'
 * ```
 */
export function loadFixtureAlgorithm(path: string): FlashAlgorithm {
  return loadAlgorithm(readFileSync(path), basename(path));
}

/**
 * Connects to `qemu`, loads `algo` with `options`, runs `body`, then closes
 * the runner (putting back what it changed) and the link, even when `body`
 * throws, so gdb-multiarch can connect after (QEMU serves one client at a time).
 *
 * @example
 * ```ts
 * await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
 *   expect(await runner.callChecked('EraseSector', [FLASH])).toBe(0);
 * });
 * ```
 */
export async function withRunner<T>(
  qemu: QemuInstance,
  algo: FlashAlgorithm,
  options: RunnerOptions,
  body: (runner: AlgorithmRunner, gdb: GdbClient) => Promise<T>,
): Promise<T> {
  const gdb = await GdbClient.connect(qemu.connectOptions);
  try {
    const runner = await AlgorithmRunner.create(gdb, algo, options);
    try {
      return await body(runner, gdb);
    } finally {
      await runner.close();
    }
  } finally {
    await gdb.close();
  }
}
