/**
 * Flash from the middle of a debug session and hand the target back running.
 *
 * A GDB server serves one client at a time: first detach your debugger
 * without stopping the server (gdb: `disconnect`; VS Code: stop a session whose
 * server you started yourself), run this, then reconnect the debugger. The
 * flasher puts back every register and byte of RAM it borrowed, so the program
 * continues where it was halted — with the new flash content.
 *
 *   npx tsx examples/debug-session.ts app.hex Ensemble_IS25WX256.FLM alif-e7-hp [localhost:2331]
 *
 * In your own project import from 'rspflash' instead of '../lib/index.js'.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { connect, hex32, loadAlgorithm, loadImage, withFlasher, type FlashReport, type GdbEndpoint } from '../lib/index.js';

export interface DebugSessionExampleOptions {
  gdb: string | GdbEndpoint;
  image: string;
  base?: number;
  algorithm: string;
  board: string;
  log?: (line: string) => void;
}

export async function main(options: DebugSessionExampleOptions): Promise<{ report: FlashReport; pc: number | undefined }> {
  const log = options.log ?? console.log;
  const algorithm = loadAlgorithm(await readFile(options.algorithm), { source: options.algorithm });
  const image = loadImage(await readFile(options.image), { source: options.image, ...(options.base === undefined ? {} : { base: options.base }) });

  const gdb = await connect(options.gdb); // the server halts the core for a new client
  let resume = false;
  try {
    const { pc } = await gdb.readCoreRegisters();
    log(`core halted at ${pc === undefined ? '?' : hex32(pc)} (${gdb.server.kind} server)`);
    // A client of our own, lent to withFlasher: it restores registers, RAM and breakpoints, and leaves the connection open.
    const report = await withFlasher({ gdb, algorithm, board: options.board }, (flasher) => flasher.program(image));
    log(`programmed ${report.bytesProgrammed} bytes; handing the core back at ${pc === undefined ? '?' : hex32(pc)}, running`);
    resume = true;
    return { report, pc };
  } finally {
    // resume: J-Link gets `monitor go`, other servers a detach (`D`), which lets the core run.
    // After a failure the core stays halted for the debugger to look at.
    await gdb.close({ resume });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [image, algorithm, board, gdb = 'localhost:2331'] = process.argv.slice(2);
  if (!image || !algorithm || !board) throw new Error('usage: debug-session.ts IMAGE ALGORITHM BOARD [HOST:PORT]');
  await main({ gdb, image, algorithm, board });
}
