/**
 * The rspflash command line, end to end: the built binary (dist/bin/rspflash.js)
 * against QEMU over TCP, with images in every format produced by the Arm GNU
 * toolchain (objcopy/ld), not by our own writers.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startQemu, type QemuInstance } from './helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from './helpers/gdb-multiarch.js';
import { assertCliBuilt, runCli } from './helpers/cli.js';

const FLASH = 0xc0000000;
let qemu: QemuInstance;
let work: string;

/** Recovery journals go to the test's folder, not the user's cache. */
const run = (args: string[]) => runCli(args, { env: { XDG_CACHE_HOME: join(work, 'cache') } });

const target = () => ['--gdb', `${qemu.host}:${qemu.port}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim];

beforeAll(async () => {
  assertCliBuilt();
  qemu = await startQemu({ machine: 'mps3-an547', transport: 'tcp' });
  work = mkdtempSync(join(tmpdir(), 'rspflash-cli-'));
});
afterAll(async () => {
  await qemu?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Writes `data` as a .bin and converts it with the GNU toolchain into the other formats at `address`. */
function imageFiles(data: Uint8Array, address: number): Record<'bin' | 'hex' | 'srec' | 'elf', string> {
  const bin = join(work, `img-${address.toString(16)}.bin`);
  writeFileSync(bin, data);
  const hex = bin.replace(/\.bin$/, '.hex');
  const srec = bin.replace(/\.bin$/, '.srec');
  const elf = bin.replace(/\.bin$/, '.elf');
  const at = `0x${address.toString(16)}`;
  execFileSync('arm-none-eabi-objcopy', ['-I', 'binary', '-O', 'ihex', '--change-addresses', at, bin, hex]);
  execFileSync('arm-none-eabi-objcopy', ['-I', 'binary', '-O', 'srec', '--srec-forceS3', '--change-addresses', at, bin, srec]);
  execFileSync('arm-none-eabi-ld', ['-b', 'binary', bin, '-o', elf, `--section-start=.data=${at}`, '-e', '0']);
  return { bin, hex, srec, elf };
}

describe('rspflash program', () => {
  const formats = ['bin', 'hex', 'srec', 'elf'] as const;
  formats.forEach((format, i) => {
    it(`programs a 2 MiB ${format} image and the flash holds it`, async () => {
      const address = FLASH + 0x1000000 + i * 0x200000;
      const data = new Uint8Array(randomBytes(2 << 20));
      const files = imageFiles(data, address);
      const args = ['program', files[format], ...target(), '--json'];
      if (format === 'bin') args.push('--base', `0x${address.toString(16)}`);
      const r = await run(args);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.ok).toBe(true);
      expect(doc.report.bytesProgrammed).toBe(2 << 20);
      expect(doc.report.verify).toBe('algo');
      const back = await gdbReadMemory(qemu.connectOptions, address, data.length);
      expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    });
  });

  it('skips everything on a second run and says so in JSON', async () => {
    const data = new Uint8Array(randomBytes(256 << 10));
    const { bin } = imageFiles(data, FLASH + 0x1800000);
    const args = ['program', bin, '--base', '0xC1800000', ...target(), '--json'];
    expect((await run(args)).code).toBe(0);
    const again = JSON.parse((await run(args)).stdout);
    expect(again.report).toMatchObject({ sectorsSkipped: 64, sectorsErased: 0, bytesProgrammed: 0 });
  });

  it('prints progress and a summary for people', async () => {
    const { bin } = imageFiles(new Uint8Array(randomBytes(64 << 10)), FLASH + 0x1900000);
    const r = await run(['program', bin, '--base', '0xC1900000', ...target()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Programming 16 sectors$/m);
    expect(r.stderr).toMatch(/Done: programmed 64 KiB, erased 16 sectors, verified by the algorithm's Verify/);
    expect(r.stdout).toBe('');
  });

  it('exits 5 when verify finds the flash altered behind its back', async () => {
    const data = new Uint8Array(randomBytes(8192));
    const { bin } = imageFiles(data, FLASH + 0x1a00000);
    expect((await run(['program', bin, '--base', '0xC1A00000', ...target()])).code).toBe(0);
    await gdbWriteMemory(qemu.connectOptions, FLASH + 0x1a00000 + 100, Uint8Array.of(data[100]! ^ 0x80));
    const r = await run(['verify', bin, '--base', '0xC1A00000', ...target(), '--json']);
    expect(r.code).toBe(5);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: false, error: { code: 'RSPFLASH_VERIFY_FAILED' } });
    expect(doc.error.message).toContain('0xc1a00064');
  });

  it('refuses an image outside the flash with exit 2, naming both ranges', async () => {
    const { bin } = imageFiles(new Uint8Array(64), FLASH + (32 << 20) - 32);
    const r = await run(['program', bin, '--base', '0xC1FFFFE0', ...target()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outside flash 0xc0000000.0xc1ffffff/);
  });

  it('exits 3 with advice when nothing listens at --gdb', async () => {
    const { bin } = imageFiles(new Uint8Array(64), FLASH);
    const r = await run(['program', bin, '--base', '0xC0000000', '--gdb', '127.0.0.1:1', '--board', 'qemu-an547', '--algo', FIXTURES.norSim]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/nothing is listening at 127\.0\.0\.1:1/);
    expect(r.stderr).toMatch(/Start the GDB server first/);
  });

  it('exits 2 on bad usage: missing --base for a .bin, unknown board, unknown option', async () => {
    const { bin } = imageFiles(new Uint8Array(64), FLASH);
    expect((await run(['program', bin, ...target()])).stderr).toMatch(/--base ADDR is required/);
    expect((await run(['program', bin, ...target()])).code).toBe(2);
    const board = await run(['program', bin, '--base', '0xC0000000', '--board', 'nope', '--algo', FIXTURES.norSim]);
    expect(board.code).toBe(2);
    expect(board.stderr).toMatch(/Known boards: alif-e7-hp/);
    expect((await run(['program', bin, '--frobnicate'])).code).toBe(2);
  });
});

describe('rspflash erase, read, plan, info', () => {
  it('erases a range and reads it back as a HEX file that objcopy converts to the erased bytes', async () => {
    const { bin } = imageFiles(new Uint8Array(8192).fill(0x5a), FLASH + 0x1b00000);
    expect((await run(['program', bin, '--base', '0xC1B00000', ...target()])).code).toBe(0);
    expect((await run(['erase', '--address', '0xC1B00000', '--length', '4K', ...target()])).code).toBe(0);
    const hex = join(work, 'read.hex');
    const r = await run(['read', '0xC1B00000', '8K', '-o', hex, ...target()]);
    expect(r.code, r.stderr).toBe(0);
    const out = join(work, 'read.bin');
    execFileSync('arm-none-eabi-objcopy', ['-I', 'ihex', '-O', 'binary', hex, out]);
    const back = readFileSync(out);
    expect(back.length).toBe(8192);
    expect(back.subarray(0, 4096).every((b) => b === 0xff)).toBe(true);
    expect(back.subarray(4096).every((b) => b === 0x5a)).toBe(true);
  });

  it('plans without a target and prints the plan as JSON', async () => {
    const { hex } = imageFiles(new Uint8Array(10000), FLASH + 0x100);
    const r = await run(['plan', hex, '--algo', FIXTURES.norSim, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.plan.totals).toMatchObject({ sectorsToErase: 3, imageBytes: 10000 });
    expect(doc.plan.erase.kind).toBe('sectors');
    // The first write run takes one sector (it measures the device), the next the other two.
    expect(doc.steps.map((step: { kind: string }) => step.kind)).toEqual(['compare', 'keep', 'write', 'write']);
    expect(doc.notes).toEqual([]);
  });

  it('describes an algorithm and its RAM layout as JSON', async () => {
    const r = await run(['info', '--algo', FIXTURES.norSim, '--board', 'qemu-an547', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.algorithm).toMatchObject({ name: 'rspflash NOR simulator (Alif geometry)', format: 'flm' });
    expect(doc.algorithm.geometry).toMatchObject({ start: FLASH, size: 32 << 20, pageSize: 256, erasedValue: 255 });
    expect(Object.keys(doc.algorithm.functions)).toEqual(expect.arrayContaining(['Init', 'EraseSector', 'ProgramPage', 'Verify']));
    // The trap lies in the board's RAM (0x21000000, 256 KiB); its exact place follows the layout.
    expect(doc.algorithm.layout.trap).toBeGreaterThan(0x21000000);
    expect(doc.algorithm.layout.trap).toBeLessThan(0x21040000);
    expect(doc.algorithm.layout.buffers).toHaveLength(1); // as the Flasher lays it out
    // Which compare, verify and keep path 'auto' gives this board, and why.
    expect(doc.algorithm.paths).toMatchObject({ compare: { method: 'hash' }, verify: { method: 'algo' }, keep: { possible: true } });
  });

  it("says which compare and verify path a board that is not memory mapped gets (Alif: Verify after a blank check)", async () => {
    const r = await run(['info', '--algo', FIXTURES.norSim, '--board', 'alif-e7-hp']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/compare {4}algo: the flash is not memory mapped: the algorithm's Verify .* after a blank check/);
    expect(r.stdout).toMatch(/keep {7}no: bytes of partly covered sectors cannot be read back/);
  });

  it('shows what the GDB server reports with info --connect', async () => {
    const r = await run(['info', '--connect', '--gdb', `${qemu.host}:${qemu.port}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/GDB server {2}qemu/);
    expect(r.stdout).toMatch(/registers {2}\d+ \(r0 r1/);
  });

  it('teaches in --help: examples and exit codes', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/JLinkGDBServerCLExe -device AE722F80F55D5_HP/);
    expect(r.stdout).toMatch(/5 verify failed/);
  });
});

describe('rspflash on the micro:bit (nRF51 NVMC, a real flash controller model)', () => {
  let microbit: QemuInstance;
  beforeAll(async () => {
    microbit = await startQemu({ machine: 'microbit', transport: 'tcp' });
  });
  afterAll(async () => {
    await microbit?.stop();
  });

  it('programs and verifies 8 KiB at 0x10000 through the NVMC algorithm', async () => {
    const data = new Uint8Array(randomBytes(8192));
    const { bin } = imageFiles(data, 0x10000);
    const args = ['program', bin, '--base', '0x10000', '--gdb', `${microbit.host}:${microbit.port}`, '--board', 'qemu-microbit', '--algo', FIXTURES.nvmcNrf51, '--json'];
    const r = await run(args);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).report).toMatchObject({ sectorsErased: 8, bytesProgrammed: 8192 });
    const back = await gdbReadMemory(microbit.connectOptions, 0x10000, data.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    const again = JSON.parse((await run(args)).stdout);
    expect(again.report.sectorsSkipped).toBe(8);
  });
});
