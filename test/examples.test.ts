/**
 * The examples in examples/*.ts run against QEMU mps3-an547 with the NOR
 * simulator (board 'qemu-an547', 32 MiB at 0xC0000000), and do what they say:
 * every effect is checked through gdb-multiarch while no other client is
 * connected.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageBytes, loadImage } from '../lib/index.js';
import { main as programExample } from '../examples/program.js';
import { main as dryRunExample } from '../examples/dry-run.js';
import { main as readHexExample } from '../examples/read-hex.js';
import { main as debugSessionExample } from '../examples/debug-session.js';
import { FIXTURES, readFixtureJson, startQemu, type BootFixtureInfo, type QemuInstance } from './helpers/qemu.js';
import { gdbReadMemory, gdbRun, gdbWriteMemory, parseGdbRegisters } from './helpers/gdb-multiarch.js';

const FLASH = 0xc000_0000;
const SECTOR = 4096;
const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses;

let qemu: QemuInstance;
let dir: string;

beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
  dir = await mkdtemp(join(tmpdir(), 'rspflash-examples-'));
});
afterAll(async () => {
  await qemu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function random(length: number): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

describe('examples/program.ts', () => {
  it('programs a .bin, reports progress, and leaves unchanged sectors alone the second time', async () => {
    const data = random(10 * SECTOR + 123);
    const file = join(dir, 'app.bin');
    await writeFile(file, data);
    const lines: string[] = [];
    const options = { gdb: qemu.connectOptions, image: file, base: FLASH + 0x10000, algorithm: FIXTURES.norSim, board: 'qemu-an547', log: (l: string) => void lines.push(l) };

    const first = await programExample(options);
    expect(first.bytesProgrammed).toBeGreaterThanOrEqual(data.length);
    expect(lines).toContain('  write 100%');
    expect(await gdbReadMemory(qemu.connectOptions, FLASH + 0x10000, data.length)).toEqual(data);

    lines.length = 0;
    const second = await programExample(options);
    expect(second.sectorsSkipped).toBe(11);
    expect(second.bytesProgrammed).toBe(0);
    expect(lines).toContain('skipping 11 unchanged sector(s)');
  });
});

describe('examples/dry-run.ts', () => {
  it('plans without a target, keeping the rest of a partly covered sector only where the flash can be read back', async () => {
    const file = join(dir, 'plan.bin');
    await writeFile(file, random(5000));
    const text: string[] = [];
    const mapped = await dryRunExample({ image: file, base: FLASH, algorithm: FIXTURES.norSim, board: 'qemu-an547', log: (t) => void text.push(t) });
    expect(mapped.totals.sectorsTouched).toBe(2);
    expect(mapped.totals.bytesToKeep).toBe(2 * SECTOR - 5000);
    expect(text.join('\n')).toMatch(/erase\+program/);

    // The Alif preset: OSPI flash is not memory mapped while the algorithm runs, and an
    // FLM has no Read routine, so the rest of the last sector is left erased.
    const alif = await dryRunExample({ image: file, base: FLASH, algorithm: FIXTURES.norSim, board: 'alif-e7-hp', log: () => undefined });
    expect(alif.preserve).toBe(false);
    expect(alif.totals.bytesToKeep).toBe(0);
  });
});

describe('examples/read-hex.ts', () => {
  it('reads flash into an Intel HEX file that holds exactly the flash content', async () => {
    const address = FLASH + 0x100000;
    const data = random(3000);
    // The NOR simulator lives in QEMU's DDR RAM: gdb can put content there directly.
    await gdbWriteMemory(qemu.connectOptions, address, data);
    const output = join(dir, 'backup.hex');
    const read = await readHexExample({ gdb: qemu.connectOptions, algorithm: FIXTURES.norSim, board: 'qemu-an547', address, length: data.length, output, log: () => undefined });
    expect(same(read, data)).toBe(true);
    const image = loadImage(await readFile(output), { source: output });
    expect(image.segments.map((s) => [s.address, s.data.length])).toEqual([[address, data.length]]);
    expect(same(imageBytes(image, address, data.length, 0xff).data, data)).toBe(true);
  });
});

describe('examples/debug-session.ts', () => {
  const counter = boot['rt_counter']!;
  const spin = boot['rt_spin']!;

  /**
   * A "debug session" that gdb-multiarch leaves halted: the program sits in
   * rt_spin (which counts in rt_counter), r7 holds a value of its own. Then the
   * example flashes and hands the core back with resume.
   */
  async function flashDuringSession(): Promise<Uint8Array> {
    await gdbWriteMemory(qemu.connectOptions, counter, new Uint8Array(4));
    await gdbRun(qemu.connectOptions, [`set $pc = ${spin}`, 'set $r7 = 0xcafef00d']);
    const data = random(2 * SECTOR);
    const file = join(dir, 'session.bin');
    await writeFile(file, data);
    const { report, pc } = await debugSessionExample({ gdb: qemu.connectOptions, image: file, base: FLASH + 0x200000, algorithm: FIXTURES.norSim, board: 'qemu-an547', log: () => undefined });
    expect(pc).toBe(spin);
    expect(report.bytesProgrammed).toBe(data.length);
    await new Promise((resolve) => setTimeout(resolve, 100)); // time to run, if it runs
    return data;
  }

  it('flashes a halted program and hands it back with its registers as they were', async () => {
    const data = await flashDuringSession();
    // gdb-multiarch connecting halts the core again: it must be in rt_spin, r7 untouched.
    const regs = parseGdbRegisters(await gdbRun(qemu.connectOptions, ['info registers']));
    expect(regs['r7'], 'r7 restored').toBe(0xcafef00d);
    expect(regs['pc']! >= spin && regs['pc']! < spin + 10, `pc 0x${regs['pc']?.toString(16)} inside rt_spin`).toBe(true);
    expect(same(await gdbReadMemory(qemu.connectOptions, FLASH + 0x200000, data.length), data)).toBe(true);
  });

  // QEMU refuses a plain `D` once gdb (multiprocess+) has been connected: the client retries with `D;1`.
  it('lets the program run on after handing it back, even after gdb was connected', async () => {
    await flashDuringSession();
    const count = new DataView((await gdbReadMemory(qemu.connectOptions, counter, 4)).buffer).getUint32(0, true);
    expect(count, 'rt_counter advanced: the core ran after the example handed it back').toBeGreaterThan(1000);
  });
});
