/**
 * The 128-bit compare hash on the target (`rsp_hash128` through
 * AlgorithmRunner.hashMany) against its host twin (murmur3x128 in
 * lib/flash/hash.ts), on QEMU mps3-an547 (Cortex-M55) and microbit (nRF51,
 * Cortex-M0, which faults on unaligned word loads): every start alignment,
 * every length 0..64, random ranges, several ranges per run and more than one
 * run holds, and the crafted 32-bit collision of issue 15.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { murmur3, murmur3x128 } from '../../lib/flash/hash.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { loadFixtureAlgorithm, withRunner } from '../helpers/algorithms.js';
import { seededBytes, sameBytes } from '../helpers/bytes.js';
import { craftMurmur3Collision, differingBytes } from '../helpers/murmur-collision.js';

/** Every start alignment 0..3 and every length 0..64 of `base`: 260 ranges, more than one table of 256 holds. */
function smallRanges(base: number): { address: number; length: number }[] {
  const out: { address: number; length: number }[] = [];
  for (let start = 0; start < 4; start++) for (let length = 0; length <= 64; length++) out.push({ address: base + start, length });
  return out;
}

const expected = (data: Uint8Array, base: number, ranges: readonly { address: number; length: number }[]) =>
  ranges.map((r) => murmur3x128(data.subarray(r.address - base, r.address - base + r.length)));

describe('rsp_hash128 on a Cortex-M55 (mps3-an547)', () => {
  const algo = loadFixtureAlgorithm(FIXTURES.norSim);
  const RAM = BOARDS['qemu-an547']!.ram;
  /** SRAM, apart from the runner's ISRAM and the boot image's ITCM/DTCM. */
  const DATA = 0x01000000;
  const data = seededBytes(64 * 1024, 15);
  let qemu: QemuInstance;
  beforeAll(async () => {
    qemu = await startQemu({ machine: 'mps3-an547' });
  });
  afterAll(async () => {
    await qemu?.stop();
  });

  it('agrees with murmur3x128 on every alignment and length 0..64, odd and large ranges, over several runs', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      await gdb.writeMemory(DATA, data);
      const ranges = [
        ...smallRanges(DATA + 0x100),
        { address: DATA, length: data.length },
        { address: DATA + 1, length: data.length - 1 },
        { address: DATA + 2, length: 4093 },
        { address: DATA + 3, length: 4097 },
      ];
      const perRun = runner.layout.buffers[0]!.tableEntries;
      expect(ranges.length, 'the ranges need more than one run').toBeGreaterThan(perRun);
      const runs = runner.stats.runs;
      const hashes = await runner.hashMany(ranges);
      expect(runner.stats.runs - runs, 'one sequencer run per table-full').toBe(Math.ceil(ranges.length / perRun));
      expect(hashes).toEqual(expected(data, DATA, ranges));
      expect(await runner.hashMany([])).toEqual([]);
    });
  });

  it('agrees with murmur3x128 on random ranges, in any buffer slot, with buffers too small for a full table of results', async () => {
    // A 256-byte buffer holds 16 results: a run then takes 16 ranges, not a table-full.
    await withRunner(qemu, algo, { ram: RAM, bufferSize: 256 }, async (runner, gdb) => {
      await gdb.writeMemory(DATA, data);
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.nat(data.length - 1).chain((offset) => fc.record({ offset: fc.constant(offset), length: fc.nat(data.length - offset) })),
            { minLength: 1, maxLength: 40 },
          ),
          fc.constantFrom(0, 1),
          async (picks, slot) => {
            const ranges = picks.map((p) => ({ address: DATA + p.offset, length: p.length }));
            const runs = runner.stats.runs;
            expect(await runner.hashMany(ranges, slot)).toEqual(expected(data, DATA, ranges));
            expect(runner.stats.runs - runs).toBe(Math.ceil(ranges.length / 16));
          },
        ),
        { numRuns: 15 },
      );
    });
  });

  it('tells apart the crafted images of issue 15 that 32-bit MurmurHash3 takes for the same', async () => {
    const sector = seededBytes(4096, 3);
    const forged = craftMurmur3Collision(sector, 517);
    expect(differingBytes(sector, forged)).toHaveLength(5);
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      await gdb.writeMemory(DATA, sector);
      await gdb.writeMemory(DATA + 0x2000, forged);
      const both = [
        { address: DATA, length: 4096 },
        { address: DATA + 0x2000, length: 4096 },
      ];
      const [h32a, h32b] = await runner.hash32Many(both);
      expect(h32a, 'the 32-bit hash collides, on the target too').toBe(h32b);
      expect(h32a).toBe(murmur3(sector));
      const [a, b] = await runner.hashMany(both);
      expect(a).not.toBe(b);
      expect([a, b]).toEqual([murmur3x128(sector), murmur3x128(forged)]);
    });
  });

  it('refuses a range that overlaps the buffer the run writes', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner) => {
      const { address } = runner.buffer(0);
      await expect(runner.hashMany([{ address: address + 4, length: 16 }])).rejects.toThrow(/overlaps buffer 0/);
      await expect(runner.hashMany([{ address: address - 16, length: 32 }], 0)).rejects.toThrow(RangeError);
      // The other buffer is fine to hash with slot 0.
      const other = runner.buffer(1);
      await runner.writeBuffer(1, data.subarray(0, 100));
      expect(await runner.hashMany([{ address: other.address, length: 100 }], 0)).toEqual([murmur3x128(data.subarray(0, 100))]);
    });
  });
});

describe('rsp_hash128 on a Cortex-M0 (microbit: unaligned word loads fault)', () => {
  const algo = loadFixtureAlgorithm(FIXTURES.nvmcNrf51);
  const RAM = BOARDS['qemu-microbit']!.ram;
  /** Flash above the boot image, filled through the debugger (QEMU writes flash directly, bypassing the NVMC). */
  const DATA = 0x20000;
  const data = seededBytes(16 * 1024, 51);
  let qemu: QemuInstance;
  beforeAll(async () => {
    qemu = await startQemu({ machine: 'microbit' });
  });
  afterAll(async () => {
    await qemu?.stop();
  });

  it('agrees with murmur3x128 on every alignment and length 0..64 and on large odd ranges, without a fault', async () => {
    await withRunner(qemu, algo, { ram: RAM }, async (runner, gdb) => {
      await gdb.writeMemory(DATA, data);
      expect(sameBytes(await gdb.readMemory(DATA, data.length), data), 'the test data is in flash').toBe(true);
      const ranges = [
        ...smallRanges(DATA + 0x40),
        { address: DATA, length: data.length },
        { address: DATA + 1, length: data.length - 1 },
        { address: DATA + 3, length: 1000 },
      ];
      const perRun = Math.min(runner.layout.buffers[0]!.tableEntries, Math.floor(runner.buffer(0).size / 16));
      const runs = runner.stats.runs;
      expect(await runner.hashMany(ranges)).toEqual(expected(data, DATA, ranges));
      expect(runner.stats.runs - runs).toBe(Math.ceil(ranges.length / perRun));
    });
  });
});
