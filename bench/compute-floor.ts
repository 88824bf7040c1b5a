/**
 * The compute floor: the flash work alone, with the data already in target
 * RAM and nothing but batch tables crossing the link. The algorithm erases the
 * sectors, programs every page from one transfer buffer (filled once) and
 * verifies them, in as few sequencer runs as the batch table allows. What the
 * flasher's compare step (CRC of every sector on the target) costs is timed
 * too, apart, because it is work `program` does that a bare erase/program/verify
 * does not; and so is a prototype of a cheaper compare (FNV-1a over words,
 * bench/target/word-hash.c) over the same sectors.
 * @module
 */
import { FNC_ERASE, FNC_PROGRAM, FNC_VERIFY, type AlgorithmRunner, type BatchCall } from '../lib/advanced.js';
import { WORD_HASH_CODE } from './word-hash-code.js';

/** Where the word-hash prototype is loaded: ISRAM beyond the runner's 256 KiB, on pages of its own. */
export const WORD_HASH_ADDRESS = 0x21100000;

/** FNV-1a over little-endian words, as bench/target/word-hash.c computes it from h = 0. */
export function wordHash(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let h = 2166136261;
  for (let i = 0; i + 4 <= data.length; i += 4) h = Math.imul((h ^ view.getUint32(i, true)) >>> 0, 16777619) >>> 0;
  return h >>> 0;
}

/** Times of the compute floor, ms. */
export interface ComputeFloor {
  bytes: number;
  eraseMs: number;
  programMs: number;
  verifyMs: number;
  /** erase + program + verify: the floor. */
  totalMs: number;
  /** CRC-32 of every sector on the target (skip-unchanged's compare), not part of `totalMs`. */
  compareMs: number;
  /** The same sectors hashed by the word-hash prototype instead (same batching), not part of `totalMs`. */
  compareWordHashMs: number;
  /** Sequencer runs used for erase + program + verify. */
  runs: number;
}

/**
 * Puts `pattern` (one transfer buffer's worth) in transfer buffer 0, then
 * erases, programs and verifies `bytes` from the start of the flash with it.
 */
export async function computeFloor(runner: AlgorithmRunner, bytes: number, pattern: Uint8Array): Promise<ComputeFloor> {
  const g = runner.algorithm.geometry;
  const buffer = runner.buffer(0);
  const entries = runner.layout.buffers[0]!.tableEntries;
  const sectorSize = g.sectors[0]!.size;
  const base = g.start;
  const blocks = Math.ceil(bytes / buffer.size);
  if (pattern.length !== buffer.size) throw new RangeError(`the pattern must fill buffer 0 (${buffer.size} bytes)`);
  await runner.writeBuffer(0, pattern);
  const runs0 = runner.stats.runs;
  const timed = async (work: () => Promise<void>) => {
    const t = performance.now();
    await work();
    return performance.now() - t;
  };
  const inBatches = async (calls: BatchCall[]) => {
    for (let i = 0; i < calls.length; i += entries) await runner.batch(0, calls.slice(i, i + entries));
  };
  const blockLength = (k: number) => Math.min(buffer.size, bytes - k * buffer.size);

  const eraseMs = await timed(async () => {
    await runner.callChecked('Init', [base, 0, FNC_ERASE]);
    const erase: BatchCall[] = [];
    for (let done = 0; done < bytes; ) {
      const n = Math.min(0xffff, Math.ceil((bytes - done) / sectorSize));
      erase.push({ fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [base + done, sectorSize], expect: 0, repeat: n, stride: true });
      done += n * sectorSize;
    }
    await inBatches(erase);
    await runner.callChecked('UnInit', [FNC_ERASE]);
  });
  const programMs = await timed(async () => {
    await runner.callChecked('Init', [base, 0, FNC_PROGRAM]);
    const program: BatchCall[] = [];
    for (let k = 0; k < blocks; k++) {
      program.push({
        fn: 'ProgramPage',
        entry: runner.entry('ProgramPage'),
        args: [base + k * buffer.size, g.pageSize, buffer.address],
        expect: 0,
        repeat: Math.ceil(blockLength(k) / g.pageSize),
        stride: true,
      });
    }
    await inBatches(program);
    await runner.callChecked('UnInit', [FNC_PROGRAM]);
  });
  const verifyMs = await timed(async () => {
    await runner.callChecked('Init', [base, 0, FNC_VERIFY]);
    const verify: BatchCall[] = [];
    for (let k = 0; k < blocks; k++) {
      const at = base + k * buffer.size;
      verify.push({ fn: 'Verify', entry: runner.entry('Verify'), args: [at, blockLength(k), buffer.address], expect: (at + blockLength(k)) >>> 0 });
    }
    await inBatches(verify);
    await runner.callChecked('UnInit', [FNC_VERIFY]);
  });
  const runs = runner.stats.runs - runs0;
  const ranges: { address: number; length: number }[] = [];
  for (let at = 0; at < bytes; at += sectorSize) ranges.push({ address: base + at, length: Math.min(sectorSize, bytes - at) });
  const compareMs = await timed(async () => {
    await runner.crc32Many(ranges);
  });
  await runner.gdb.writeMemory(WORD_HASH_ADDRESS, WORD_HASH_CODE);
  let hashes: number[] = [];
  const compareWordHashMs = await timed(async () => {
    for (let i = 0; i < ranges.length; i += entries) {
      const calls = ranges.slice(i, i + entries).map((r) => ({ fn: 'word_hash', entry: WORD_HASH_ADDRESS, args: [0, r.address, r.length], expect: 0, collect: true }));
      const results = await runner.batch(0, calls);
      if (i === 0) hashes = results;
    }
  });
  // A prototype that is fast because it does nothing would prove nothing.
  if (hashes[0] !== wordHash(pattern.subarray(0, ranges[0]!.length))) throw new Error('the word-hash prototype disagrees with the host');
  return { bytes, eraseMs, programMs, verifyMs, totalMs: eraseMs + programMs + verifyMs, compareMs, compareWordHashMs, runs };
}
