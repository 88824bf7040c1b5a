/**
 * Plan a run without a target: which sectors are erased, which pages
 * programmed, which bytes kept. The same plan as `rspflash plan`, as text and
 * as JSON.
 *
 *   npx tsx examples/dry-run.ts ext_flash.bin 0xC0000000 Ensemble_IS25WX256.FLM alif-e7-hp
 *
 * In your own project import from 'rspflash' instead of '../lib/index.js'.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { boardPreset, formatPlan, formatSteps, loadAlgorithm, loadImage, planProgramJob, planToJSON, type PlanJSON } from '../lib/index.js';

export interface DryRunExampleOptions {
  image: string;
  base?: number;
  algorithm: string;
  board: string;
  /** Where the table goes (default: console.log). */
  log?: (text: string) => void;
}

export async function main(options: DryRunExampleOptions): Promise<PlanJSON> {
  const log = options.log ?? console.log;
  const board = boardPreset(options.board);
  const algo = loadAlgorithm(await readFile(options.algorithm), { source: options.algorithm });
  const image = loadImage(await readFile(options.image), { source: options.image, ...(options.base === undefined ? {} : { base: options.base }) });
  // The job program() would start with: the sector table, then the steps (compare, keep, runs, verify).
  // Bytes of partly covered sectors are kept when the flash can be read back (memory mapped, or a Read routine).
  const job = planProgramJob(image, algo, { ram: board.ram, memoryMapped: board.memoryMapped });
  log(formatPlan(job.layout));
  log(formatSteps(job));
  return planToJSON(job.layout);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [image, base, algorithm, board] = process.argv.slice(2);
  if (!image || !algorithm || !board) throw new Error('usage: dry-run.ts IMAGE BASE|- ALGORITHM BOARD');
  await main({ image, algorithm, board, ...(base && base !== '-' ? { base: Number(base) } : {}) });
}
