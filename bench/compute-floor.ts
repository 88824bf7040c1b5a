/**
 * The compute floor: the flash work alone, with the data already in target
 * RAM and nothing but batch tables crossing the link. The algorithm erases the
 * sectors, programs every page from one transfer buffer (filled once) and
 * verifies them, in as few sequencer runs as the batch table allows. What the
 * flasher's compare step (CRC of every sector on the target) costs is timed
 * too, apart, because it is work `program` does that a bare erase/program/verify
 * does not.
 * @module
 */
import { FNC_ERASE, FNC_PROGRAM, FNC_VERIFY, type AlgorithmRunner, type BatchCall } from '../lib/index.js';

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
  /** Sequencer runs used for erase + program + verify. */
  runs: number;
}

/**
 * Erases, programs and verifies `bytes` from the start of the flash with data
 * the caller already put in transfer buffer 0 (`runner.writeBuffer(0, …)`).
 */
export async function computeFloor(runner: AlgorithmRunner, bytes: number): Promise<ComputeFloor> {
  const g = runner.algorithm.geometry;
  const buffer = runner.buffer(0);
  const entries = runner.layout.buffers[0]!.tableEntries;
  const sectorSize = g.sectors[0]!.size;
  const base = g.start;
  const blocks = Math.ceil(bytes / buffer.size);
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
  const compareMs = await timed(async () => {
    const ranges = [];
    for (let at = 0; at < bytes; at += sectorSize) ranges.push({ address: base + at, length: Math.min(sectorSize, bytes - at) });
    await runner.crc32Many(ranges);
  });
  return { bytes, eraseMs, programMs, verifyMs, totalMs: eraseMs + programMs + verifyMs, compareMs, runs };
}
