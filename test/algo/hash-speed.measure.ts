/**
 * Measurement, not a check (not part of `npm test`): MB/s of the
 * on-target compare hashes, `rsp_hash32` (MurmurHash3 x86_32) and
 * `rsp_hash128` (x86_128), over 1 MiB under QEMU — on mps3-an547 (Cortex-M55)
 * from SRAM, on microbit (Cortex-M0) from its 256 KiB of flash (four passes).
 * Each figure is the best of 10, as one range and as 1 KiB/4 KiB sector-sized
 * ranges (run overhead included). Prints a table; asserts only that target
 * and host agree, never a time.
 *
 *   npx vitest run --config vitest.measure.config.ts test/algo/hash-speed.measure.ts
 */
import { describe, expect, it } from 'vitest';
import { murmur3, murmur3x128 } from '../../lib/flash/hash.js';
import type { AlgorithmRunner } from '../../lib/algo/runner.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES, startQemu, type QemuMachine } from '../helpers/qemu.js';
import { loadFixtureAlgorithm, withRunner } from '../helpers/algorithms.js';
import { seededBytes } from '../helpers/bytes.js';

const MIB = 1 << 20;
const REPEATS = 10;

type Ranges = { address: number; length: number }[];

async function best(work: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    await work();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

async function measure(runner: AlgorithmRunner, label: string, ranges: Ranges): Promise<string> {
  const bytes = ranges.reduce((n, r) => n + r.length, 0);
  const ms32 = await best(() => runner.hash32Many(ranges));
  const ms128 = await best(() => runner.hashMany(ranges));
  const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
  return `${label.padEnd(44)} hash32 ${mbps(ms32).padStart(5)} MB/s (${ms32.toFixed(1)} ms)   hash128 ${mbps(ms128).padStart(5)} MB/s (${ms128.toFixed(1)} ms)`;
}

const cases: { machine: QemuMachine; name: string; algo: string; ram: { start: number; size: number }; data: number; size: number }[] = [
  { machine: 'mps3-an547', name: 'Cortex-M55 (an547), SRAM', algo: FIXTURES.norSim, ram: BOARDS['qemu-an547']!.ram, data: 0x01000000, size: MIB },
  { machine: 'microbit', name: 'Cortex-M0 (microbit), flash', algo: FIXTURES.nvmcNrf51, ram: BOARDS['qemu-microbit']!.ram, data: 0, size: 256 << 10 },
];

describe('compare hash speed under QEMU', () => {
  it('host: 32 MiB in 4 KiB sectors', () => {
    const image = seededBytes(32 * MIB, 2);
    const sectors = (hash: (d: Uint8Array) => unknown) => () => {
      for (let at = 0; at < image.length; at += 4096) hash(image.subarray(at, at + 4096));
    };
    const time = (work: () => void) => {
      let min = Infinity;
      for (let i = 0; i < REPEATS; i++) {
        const t = performance.now();
        work();
        min = Math.min(min, performance.now() - t);
      }
      return min;
    };
    const ms32 = time(sectors(murmur3));
    const ms128 = time(sectors(murmur3x128));
    const mbps = (ms: number) => ((32 * MIB) / 1e6 / (ms / 1000)).toFixed(0);
    console.log(`host (node ${process.version}): murmur3 ${mbps(ms32)} MB/s (${ms32.toFixed(0)} ms), murmur3x128 ${mbps(ms128)} MB/s (${ms128.toFixed(0)} ms)`);
  });

  it.each(cases)('$name: 1 MiB', async ({ machine, name, algo, ram, data, size }) => {
    const qemu = await startQemu({ machine });
    try {
      await withRunner(qemu, loadFixtureAlgorithm(algo), { ram }, async (runner, gdb) => {
        if (machine === 'mps3-an547') await gdb.writeMemory(data, seededBytes(size, 1));
        const content = await gdb.readMemory(data, size);
        const passes = MIB / size;
        const whole: Ranges = Array.from({ length: passes }, () => ({ address: data, length: size }));
        expect(await runner.hashMany(whole.slice(0, 1))).toEqual([murmur3x128(content)]);
        expect(await runner.hash32Many(whole.slice(0, 1))).toEqual([murmur3(content)]);
        const sectors = (sector: number): Ranges =>
          Array.from({ length: MIB / sector }, (_, i) => ({ address: data + ((i * sector) % size), length: sector }));
        const perRun = Math.min(runner.layout.buffers[0]!.tableEntries, Math.floor(runner.buffer(0).size / 16));
        const lines = [
          `${name}: table ${runner.layout.buffers[0]!.tableEntries} entries, hashMany ${perRun} ranges per run`,
          await measure(runner, `  ${passes} x ${size / 1024} KiB range(s)`, whole),
          await measure(runner, '  1024 x 1 KiB ranges', sectors(1024)),
          await measure(runner, '  256 x 4 KiB ranges', sectors(4096)),
        ];
        console.log(lines.join('\n'));
      });
    } finally {
      await qemu.stop();
    }
  }, 300_000);
});
