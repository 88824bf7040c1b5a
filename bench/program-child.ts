/**
 * One `program` case in a process of its own, so that its peak RSS is the
 * program's and nothing else's (figure 9). Run by bench/run.ts:
 *
 * ```
 * node dist/bench/program-child.js ENDPOINT IMAGE.bin BASE [--rerun] [--change-page OFFSET]
 * ```
 *
 * Connects, loads the NOR simulator, programs IMAGE at BASE (default
 * options: compare, erase, program, verify with the algorithm), then
 * optionally programs it again unchanged, then with one page changed. Prints
 * one JSON object ({@link ChildResult}) on stdout.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Flasher, boardPreset, connect, createImage, loadAlgorithm, type FlashReport, type Image } from '../lib/index.js';
import { FIXTURE_DIR } from './paths.js';

/** One program() run: its report and the time of each phase, ms. */
export interface ProgramRun {
  report: FlashReport;
  phases: Record<string, number>;
}

/** What the child prints. */
export interface ChildResult {
  /** connect + Flasher.create (algorithm load, core clean-up), ms. */
  setupMs: number;
  first: ProgramRun;
  rerun?: ProgramRun;
  onePage?: ProgramRun;
  rss: {
    /** maxRSS right after start-up and imports, bytes. */
    baseline: number;
    /** maxRSS after the image file was read. */
    afterLoad: number;
    /** maxRSS after the first program (peak of the whole first program). */
    afterProgram: number;
  };
}

const maxRss = () => process.resourceUsage().maxRSS * 1024;

async function programOnce(flasher: Flasher, image: Image): Promise<ProgramRun> {
  const phases: Record<string, number> = {};
  const report = await flasher.program(image, {
    onProgress: (e) => {
      if (e.type === 'phase-end') phases[e.phase] = (phases[e.phase] ?? 0) + e.elapsedMs;
    },
  });
  return { report, phases };
}

async function main(): Promise<void> {
  const [endpoint, file, baseText, ...rest] = process.argv.slice(2);
  if (!endpoint || !file || !baseText) throw new Error('usage: program-child ENDPOINT IMAGE BASE [--rerun] [--change-page OFFSET]');
  const rerun = rest.includes('--rerun');
  const changeAt = rest.indexOf('--change-page');
  const changeOffset = changeAt >= 0 ? Number(rest[changeAt + 1]) : undefined;
  const baseline = maxRss();
  const data = readFileSync(file);
  const image = createImage([{ address: Number(baseText), data, source: file }]);
  const afterLoad = maxRss();

  const t0 = performance.now();
  const board = boardPreset('qemu-an547');
  const gdb = await connect(endpoint);
  const algo = loadAlgorithm(readFileSync(join(FIXTURE_DIR, 'nor-sim.flm')), 'nor-sim.flm');
  const flasher = await Flasher.create(gdb, algo, { ram: board.ram, memoryMapped: board.memoryMapped });
  const setupMs = performance.now() - t0;
  try {
    const first = await programOnce(flasher, image);
    const result: ChildResult = { setupMs, first, rss: { baseline, afterLoad, afterProgram: maxRss() } };
    if (rerun) result.rerun = await programOnce(flasher, image);
    if (changeOffset !== undefined) {
      const changed = new Uint8Array(data);
      const pageSize = algo.geometry.pageSize;
      changed.set(randomBytes(pageSize), changeOffset - (changeOffset % pageSize));
      result.onePage = await programOnce(flasher, createImage([{ address: Number(baseText), data: changed, source: `${file} (one page changed)` }]));
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await flasher.close();
    await gdb.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
