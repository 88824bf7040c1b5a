/**
 * How long a write run may take before it counts as hung: the runner's
 * worst case only until one run has been measured, then the slowest call's
 * own timeout plus three times the measured time of the run (issue 12, item 7).
 */
import { describe, expect, it } from 'vitest';
import { AlgorithmCalls } from '../../lib/flash/calls.js';
import type { AlgorithmRunner } from '../../lib/algo/runner.js';
import type { BatchCall } from '../../lib/algo/sequencer.js';
import type { GdbClient } from '../../lib/gdb/client.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';

/** Per call, worst case: EraseSector 30 s (Alif's toErase), ProgramPage 10 s, others 1 s. */
const WORST: Record<string, number> = { EraseSector: 30_000, ProgramPage: 10_000 };

function fakeRunner(runMs: number, seen: (number | undefined)[]) {
  const runner = {
    timeoutFor: (fn: string) => WORST[fn] ?? 1000,
    batchTimeout: (calls: readonly BatchCall[]) => calls.reduce((n, c) => n + (WORST[c.fn] ?? 1000) * (c.repeat ?? 1), 2000),
    async batch(_slot: number, _calls: readonly BatchCall[], options: { timeoutMs?: number }) {
      seen.push(options.timeoutMs);
      const until = performance.now() + runMs;
      while (performance.now() < until) await new Promise((r) => setTimeout(r, 1));
      return [];
    },
    has: () => true,
    entry: () => 0x1000,
    buffer: () => ({ address: 0x2000, size: 0x1000 }),
  };
  return runner as unknown as AlgorithmRunner;
}

const algorithm = { geometry: { start: 0, size: 0, pageSize: 256, erasedValue: 0xff, sectors: [] } } as unknown as FlashAlgorithm;
const run = (sectors: number): BatchCall[] => [
  { fn: 'EraseSector', entry: 0x1000, args: [0, 4096], expect: 0, repeat: sectors, stride: true },
  { fn: 'ProgramPage', entry: 0x1000, args: [0, 256, 0], expect: 0, repeat: sectors * 16, stride: true },
];

describe('AlgorithmCalls.runTimeout', () => {
  it('leaves the first run to the runner (nothing measured yet), then bounds runs by what it measured', async () => {
    const seen: (number | undefined)[] = [];
    const calls = new AlgorithmCalls(fakeRunner(20, seen), { closed: false } as GdbClient, algorithm, 0);
    expect(calls.runTimeout(run(1))).toBeUndefined();
    await calls.batch(run(1), []);
    await calls.batch(run(32), []);
    expect(seen[0]).toBeUndefined();
    // 32 sectors: worst case 32 × 30 s + 512 × 10 s ≈ 1.7 h; measured: about 20 ms for 1/32 of the work.
    const bound = seen[1]!;
    expect(bound).toBeGreaterThan(30_000); // never below the slowest call's own timeout
    expect(bound).toBeLessThan(30_000 + 3 * 32 * 250 + 1000); // its own timeout + 3 measured runs (first run ≤ 250 ms even on a loaded machine) + slack
    expect(bound).toBeLessThan(32 * 30_000 + 512 * 10_000);
  });
});

describe('AlgorithmCalls.runTimeout by kind of call', () => {
  it('falls back to the worst case for a kind of call not measured yet (erases after program-only runs)', async () => {
    const seen: (number | undefined)[] = [];
    const calls = new AlgorithmCalls(fakeRunner(5, seen), { closed: false } as GdbClient, algorithm, 0);
    const programOnly: BatchCall[] = [{ fn: 'ProgramPage', entry: 0x1000, args: [0, 256, 0], expect: 0, repeat: 16, stride: true }];
    const eraseOnly: BatchCall[] = [{ fn: 'EraseSector', entry: 0x1000, args: [0, 4096], expect: 0, repeat: 32, stride: true }];
    await calls.batch(programOnly, []);
    expect(calls.runTimeout(programOnly)).toBeDefined();
    // Programming was fast; that says nothing about how long 32 erases take.
    expect(calls.runTimeout(eraseOnly)).toBeUndefined();
    await calls.batch(eraseOnly, []);
    expect(calls.runTimeout(eraseOnly)).toBeGreaterThanOrEqual(30_000);
  });
});
