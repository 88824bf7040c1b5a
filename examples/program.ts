/**
 * Program an image into flash and show progress: the library's `rspflash program`.
 *
 *   npx tsx examples/program.ts ext_flash.bin 0xC0000000 Ensemble_IS25WX256.FLM alif-e7-hp [localhost:2331]
 *
 * In your own project import from 'rspflash' instead of '../lib/index.js'.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadAlgorithm, loadImage, withFlasher, type FlashReport, type GdbEndpoint } from '../lib/index.js';

export interface ProgramExampleOptions {
  /** GDB server: `host:port`, `unix:/path`, or an endpoint object. */
  gdb: string | GdbEndpoint;
  /** Image file: .bin (needs `base`), .hex, .srec or .elf. */
  image: string;
  /** Load address of a .bin image. */
  base?: number;
  /** Flash algorithm file (.FLM, SEGGER loader ELF, probe-rs YAML). */
  algorithm: string;
  /** Board preset: the RAM the algorithm may use and whether the flash is memory mapped. */
  board: string;
  /** Where progress lines go (default: console.log). */
  log?: (line: string) => void;
}

export async function main(options: ProgramExampleOptions): Promise<FlashReport> {
  const log = options.log ?? console.log;
  const algorithm = loadAlgorithm(await readFile(options.algorithm), { source: options.algorithm });
  const image = loadImage(await readFile(options.image), { source: options.image, ...(options.base === undefined ? {} : { base: options.base }) });

  // withFlasher connects, loads the algorithm into the board's RAM, runs the job, puts back every
  // register and byte of RAM it borrowed, and closes: on success and on failure alike.
  let lastTenth = -1;
  const report = await withFlasher({ gdb: options.gdb, algorithm, board: options.board }, (flasher) =>
    flasher.program(image, {
      onProgress: (event) => {
        if (event.type === 'phase-start') {
          lastTenth = -1;
          log(`${event.phase}: ${event.total} ${event.unit}`);
        } else if (event.type === 'progress') {
          const tenth = Math.floor((10 * event.done) / Math.max(1, event.total));
          if (tenth !== lastTenth) log(`  ${event.phase} ${(lastTenth = tenth) * 10}%`);
        } else if (event.type === 'skip') {
          log(`skipping ${event.sectors} unchanged sector(s)`);
        } else if (event.type === 'replan') {
          for (const note of event.notes) log(`  ${note}`);
        }
      },
    }),
  );
  log(`${basename(options.image)}: ${report.bytesProgrammed} bytes programmed, ${report.sectorsSkipped} sector(s) unchanged, verified by ${report.verify}, ${report.durationMs} ms`);
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [image, base, algorithm, board, gdb = 'localhost:2331'] = process.argv.slice(2);
  if (!image || !algorithm || !board) throw new Error('usage: program.ts IMAGE BASE|- ALGORITHM BOARD [HOST:PORT]');
  await main({ gdb, image, algorithm, board, ...(base && base !== '-' ? { base: Number(base) } : {}) });
}
