/**
 * `rsp_unpack` (target-src/unpack.c), the on-target LZ4 block decoder of
 * compressed transfer, against the host: the host encoder's streams must expand
 * byte for byte, and on hostile streams (mutations, truncations, length lies) the
 * target's result and the bytes it wrote must be exactly those of the host
 * twin (`unpackInto`, lib/flash/codec.ts), with guard patterns on both sides of
 * dst untouched. Runs on QEMU mps3-an547 (Cortex-M55) and microbit (nRF51,
 * Cortex-M0), with the stack lib/flash/codec.ts says it needs (UNPACK_STACK;
 * the sequencer checks its canary after every call).
 *
 * Speed is measured apart from the suite (docs/compression.md has the figures).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlgorithmRunner } from '../../lib/algo/runner.js';
import { BOARDS } from '../../lib/boards.js';
import { UNPACK_FAILED, UNPACK_STACK, compressBlock, encodeBlock, unpackInto } from '../../lib/flash/codec.js';
import type { GdbClient } from '../../lib/gdb/client.js';
import { UNPACK_CODE, UNPACK_ENTRY } from '../../lib/algo/target-code.js';
import { buildCorpus, nonBlankPages } from '../../bench/corpus.js';
import { FIXTURES, startQemu, type QemuInstance, type QemuMachine } from '../helpers/qemu.js';
import { loadFixtureAlgorithm, withRunner } from '../helpers/algorithms.js';
import { seededBytes } from '../helpers/bytes.js';

const GUARD = 64;
const GUARD_BYTE = 0xa5;
const DST_FILL = 0x3c;

interface Machine {
  machine: QemuMachine;
  name: string;
  algo: string;
  /** RAM the runner borrows. */
  ram: { start: number; size: number };
  /** Scratch RAM outside it: the decoder (UNPACK_CODE), guard, dst, guard, then src. */
  scratch: number;
  /** Largest block tried. */
  maxBlock: number;
}

const MACHINES: Machine[] = [
  { machine: 'mps3-an547', name: 'Cortex-M55 (mps3-an547)', algo: FIXTURES.norSim, ram: BOARDS['qemu-an547']!.ram, scratch: 0x01000000, maxBlock: 256 * 1024 },
  // 16 KiB of RAM: the runner gets 10 KiB, the last 4 KiB hold the decoder, guard, dst, guard and src.
  { machine: 'microbit', name: 'Cortex-M0 (microbit)', algo: FIXTURES.nvmcNrf51, ram: { start: 0x20000800, size: 0x2800 }, scratch: 0x20003000, maxBlock: 1400 },
];

/** Where the decoder's blob ends in the scratch RAM (it is loaded once per runner, at the start). */
const decoderEnd = (m: Machine) => m.scratch + UNPACK_CODE.length;

/** Loads the decoder blob, as a run that sends compressed blocks does. */
async function loadDecoder(gdb: GdbClient, m: Machine): Promise<void> {
  await gdb.writeMemory(m.scratch, UNPACK_CODE);
}

/** Runs rsp_unpack once on the target over guarded dst; returns its result, dst and whether the guards held. */
async function unpackOnTarget(runner: AlgorithmRunner, gdb: GdbClient, m: Machine, src: Uint8Array, dstLen: number) {
  const guarded = decoderEnd(m);
  const dst = guarded + GUARD;
  const srcAt = dst + dstLen + GUARD;
  const region = new Uint8Array(GUARD + dstLen + GUARD).fill(GUARD_BYTE);
  region.fill(DST_FILL, GUARD, GUARD + dstLen);
  await gdb.writeMemory(guarded, region);
  if (src.length > 0) await gdb.writeMemory(srcAt, src);
  const [result] = await runner.batch(0, [{ fn: 'unpack', entry: m.scratch + UNPACK_ENTRY, args: [srcAt, src.length, dst, dstLen], expect: dstLen, collect: true }]);
  const after = await gdb.readMemory(guarded, region.length);
  const guardsHeld = after.subarray(0, GUARD).every((b) => b === GUARD_BYTE) && after.subarray(GUARD + dstLen).every((b) => b === GUARD_BYTE);
  return { result: result! >>> 0, out: after.slice(GUARD, GUARD + dstLen), guardsHeld };
}

/** The host twin's result and dst, from the same starting fill as the target's. */
function unpackOnHost(src: Uint8Array, dstLen: number) {
  const out = new Uint8Array(dstLen).fill(DST_FILL);
  return { result: unpackInto(src, out), out };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Blocks of each corpus part's non-blank pages (code, weights, audio, file system) and the code part cut small. */
function corpusBlocks(size: number): { name: string; data: Uint8Array }[] {
  const corpus = buildCorpus(1 << 20);
  return corpus.parts
    .filter((p) => p.name !== 'free')
    .map((p) => ({ name: p.name, data: nonBlankPages(corpus.bytes.subarray(p.offset, p.offset + p.length)).slice(0, size) }))
    .filter((b) => b.data.length > 0);
}

describe('UNPACK_CODE, the decoder blob', () => {
  it('is small, a whole number of words, and separate from the helpers every run loads', async () => {
    const { TARGET_CODE, TARGET_ENTRY } = await import('../../lib/algo/target-code.js');
    expect(UNPACK_CODE.length % 4).toBe(0);
    expect(UNPACK_CODE.length, 'the decoder grew: update docs/compression.md').toBeLessThanOrEqual(256);
    expect(Object.keys(TARGET_ENTRY)).not.toContain('unpack');
    expect(Buffer.from(TARGET_CODE).includes(Buffer.from(UNPACK_CODE.subarray(0, 32)))).toBe(false);
  });
});

describe.each(MACHINES)('rsp_unpack on a $name', (m) => {
  const algo = loadFixtureAlgorithm(m.algo);
  const options = { ram: m.ram, stackSize: UNPACK_STACK };
  let qemu: QemuInstance;
  beforeAll(async () => {
    qemu = await startQemu({ machine: m.machine });
  });
  afterAll(async () => {
    await qemu?.stop();
  });

  it('expands the encoder\'s stream of every corpus part byte for byte, returning dstLen, with the stack UNPACK_STACK says', async () => {
    await withRunner(qemu, algo, options, async (runner, gdb) => {
      await loadDecoder(gdb, m);
      for (const block of corpusBlocks(m.maxBlock)) {
        const src = compressBlock(block.data) ?? encodeBlock(block.data);
        expect(src.length + block.data.length + 2 * GUARD, 'the test fits its scratch RAM').toBeLessThanOrEqual(m.machine === 'microbit' ? 4096 - UNPACK_CODE.length : 1 << 20);
        const got = await unpackOnTarget(runner, gdb, m, src, block.data.length);
        expect(got.result, `${block.name}: result`).toBe(block.data.length);
        expect(same(got.out, block.data), `${block.name}: ${block.data.length} bytes from a ${src.length}-byte stream differ`).toBe(true);
        expect(got.guardsHeld, `${block.name}: bytes around dst changed`).toBe(true);
      }
    });
  });

  it('expands streams of random sizes and contents, greedy and lazy, at any search depth', async () => {
    await withRunner(qemu, algo, options, async (runner, gdb) => {
      await loadDecoder(gdb, m);
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: m.maxBlock }),
          fc.boolean(),
          fc.integer({ min: 1, max: 64 }),
          fc.integer({ min: 0, max: 7 }),
          fc.nat(),
          async (length, lazy, depth, mask, seed) => {
            // A mask of low bits makes anything from text-like (3 bits) to incompressible (8 bits) data.
            const data = seededBytes(length, seed).map((b) => b & ((1 << (mask + 1)) - 1));
            const src = encodeBlock(data, { lazy, depth });
            const got = await unpackOnTarget(runner, gdb, m, src, length);
            expect(got.result).toBe(length);
            expect(same(got.out, data)).toBe(true);
            expect(got.guardsHeld).toBe(true);
          },
        ),
        { numRuns: 40 },
      );
    });
  });

  it('on hostile streams returns exactly what the host twin returns, writes the same bytes, and never touches the guards', async () => {
    const bases = [seededBytes(1000, 1).map((b) => b & 3), new Uint8Array(900).fill(9), seededBytes(600, 5).map((b) => b & 31)];
    const streams = bases.map((data) => ({ data, src: encodeBlock(data) }));
    await withRunner(qemu, algo, options, async (runner, gdb) => {
      await loadDecoder(gdb, m);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...streams),
          fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }),
          fc.option(fc.nat(), { nil: undefined }),
          fc.integer({ min: -200, max: 200 }),
          async ({ data, src }, flips, cut, lengthLie) => {
            let bad = Uint8Array.from(src);
            for (const f of flips) bad[f.at % bad.length]! ^= f.xor;
            if (cut !== undefined) bad = bad.slice(0, cut % (bad.length + 1));
            const dstLen = Math.max(0, data.length + lengthLie);
            const host = unpackOnHost(bad, dstLen);
            const got = await unpackOnTarget(runner, gdb, m, bad, dstLen);
            expect(got.guardsHeld, 'a byte outside [dst, dst + dstLen) changed').toBe(true);
            expect(got.result.toString(16), 'result differs from the host twin').toBe(host.result.toString(16));
            expect(same(got.out, host.out), 'dst differs from the host twin').toBe(true);
            if (flips.length === 0 && cut === undefined && lengthLie !== 0) expect(got.result & UNPACK_FAILED).not.toBe(0);
          },
        ),
        { numRuns: 120 },
      );
    });
  });
});
