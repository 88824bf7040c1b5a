/**
 * Read a range of flash into an Intel HEX file (a backup before programming,
 * or to compare with a build). Works on flash that is not memory mapped too,
 * when the algorithm has a Read routine (SEGGER loaders do).
 *
 *   npx tsx examples/read-hex.ts 0xC0000000 0x10000 backup.hex nor-sim.flm qemu-an547 [localhost:1234]
 *
 * In your own project import from 'rspflash' instead of '../lib/index.js'.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { createImage, hex32, imageToIntelHex, loadAlgorithm, withFlasher, type GdbEndpoint } from '../lib/index.js';

export interface ReadHexExampleOptions {
  gdb: string | GdbEndpoint;
  algorithm: string;
  board: string;
  address: number;
  length: number;
  /** Output file (Intel HEX). */
  output: string;
  log?: (line: string) => void;
}

export async function main(options: ReadHexExampleOptions): Promise<Uint8Array> {
  const algorithm = loadAlgorithm(await readFile(options.algorithm), { source: options.algorithm });
  const range = { address: options.address, length: options.length };
  const data = await withFlasher({ gdb: options.gdb, algorithm, board: options.board }, (flasher) => flasher.read(range));
  await writeFile(options.output, imageToIntelHex(createImage([{ address: options.address, data }])));
  (options.log ?? console.log)(`${options.length} bytes at ${hex32(options.address)} → ${options.output}`);
  return data;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [address, length, output, algorithm, board, gdb = 'localhost:2331'] = process.argv.slice(2);
  if (!address || !length || !output || !algorithm || !board) throw new Error('usage: read-hex.ts ADDRESS LENGTH OUT.hex ALGORITHM BOARD [HOST:PORT]');
  await main({ gdb, algorithm, board, address: Number(address), length: Number(length), output });
}
