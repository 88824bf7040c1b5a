/**
 * Bad input is refused before the target is touched: no memory write and no
 * run of code reach QEMU (counted by the fault proxy), and the flash is as it
 * was (gdb-multiarch). An algorithm that does not read back as written is
 * refused before any of its code runs, and the RAM it borrowed is put back.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { Flasher } from '../../lib/flash/flasher.js';
import { planProgramJob } from '../../lib/flash/steps.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';

import type { RamRegion } from '../../lib/algo/layout.js';
import type { Image } from '../../lib/image/image.js';
import { RspflashError } from '../../lib/errors.js';
import { FIXTURES } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { FLASH, Outcomes, RAM, TIMEOUT_MS, activeResources, expectNoLeaks, image, norSim, randomData, startBed, typed, type Bed } from './harness.js';

/** The job `program` would plan, without a target. */
function planProgram(img: Image, algorithm: FlashAlgorithm) {
  return planProgramJob(img, algorithm, { ram: RAM });
}


const FLASH_SIZE = 32 << 20;
/** On mps3-an547 this reads as zeros and ignores writes (no RAM behind it): 16 KiB, enough for a small layout. */
const NOT_RAM: RamRegion = { start: 0x48000000, size: 0x4000 };
const CLI = resolve('dist/bin/rspflash.js');

const outcomes = new Outcomes();
let bed: Bed;

beforeAll(async () => {
  bed = await startBed();
});
afterAll(async () => {
  outcomes.write();
  await bed?.stop();
});

interface Attempt {
  error: RspflashError;
  memoryWrites: number;
  resumes: number;
  /** Memory writes and resumes after Flasher.create returned (for checks made by program). */
  afterCreate: { memoryWrites: number; resumes: number } | undefined;
  elapsedMs: number;
}

/** Connects through the proxy, creates a flasher with `ram`, programs `img`; returns the refusal. */
async function attempt(img: Image, ram: RamRegion, faults: Parameters<Bed['proxy']['reset']>[0] = {}): Promise<Attempt> {
  bed.proxy.reset(faults);
  const started = performance.now();
  const gdb = await GdbClient.connect(bed.proxy.connectOptions, { timeoutMs: TIMEOUT_MS });
  let afterCreate: Attempt['afterCreate'];
  let error: unknown;
  try {
    const flasher = await Flasher.create(gdb, norSim(), { ram, memoryMapped: true });
    const at = { ...bed.proxy.stats.toServer };
    try {
      await flasher.program(img);
    } catch (err) {
      error = err;
    } finally {
      afterCreate = { memoryWrites: bed.proxy.stats.toServer.memoryWrites - at.memoryWrites, resumes: bed.proxy.stats.toServer.resumes - at.resumes };
      await flasher.close();
    }
  } catch (err) {
    error ??= err;
  } finally {
    await gdb.close();
  }
  await bed.proxy.idle();
  const { memoryWrites, resumes } = bed.proxy.stats.toServer;
  return { error: typed(error), memoryWrites, resumes, afterCreate, elapsedMs: performance.now() - started };
}

describe('refused before the target is touched', () => {
  const cases: { input: string; img: () => Image; ram: RamRegion; code: string; message: RegExp }[] = [
    {
      input: 'an image running past the end of the flash',
      img: () => image(FLASH + FLASH_SIZE - 16, new Uint8Array(32)),
      ram: RAM,
      code: 'RSPFLASH_OUT_OF_FLASH',
      message: /0xc1fffff0.*outside flash 0xc0000000.*0xc1ffffff/,
    },
    {
      input: 'an image below the start of the flash',
      img: () => image(FLASH - 0x1000, new Uint8Array(0x2000)),
      ram: RAM,
      code: 'RSPFLASH_OUT_OF_FLASH',
      message: /0xbffff000.*outside flash/,
    },
    {
      input: 'an image entirely in RAM (overlapping the algorithm region)',
      img: () => image(RAM.start, new Uint8Array(0x100)),
      ram: RAM,
      code: 'RSPFLASH_OUT_OF_FLASH',
      message: /0x21000000.*outside flash/,
    },
    {
      input: 'an algorithm RAM region overlapping the flash (and the image in it)',
      img: () => image(FLASH, new Uint8Array(0x1000)),
      ram: { start: FLASH - 0x10000, size: 0x40000 },
      code: 'RSPFLASH_USAGE',
      message: /RAM region 0xbfff0000\.\.0xc002ffff overlaps the flash 0xc0000000\.\.0xc1ffffff/,
    },
    {
      input: 'an algorithm RAM region inside the flash',
      img: () => image(FLASH + 0x100000, new Uint8Array(0x1000)),
      ram: { start: FLASH + 0x100000, size: 0x40000 },
      code: 'RSPFLASH_USAGE',
      message: /overlaps the flash/,
    },
    {
      input: 'a RAM region too small for the algorithm',
      img: () => image(FLASH, new Uint8Array(0x1000)),
      ram: { start: RAM.start, size: 0x800 },
      code: 'RSPFLASH_RAM_LAYOUT',
      message: /too small.*needs \d+ bytes/s,
    },
    {
      input: 'a RAM region that is not 4-byte aligned',
      img: () => image(FLASH, new Uint8Array(0x1000)),
      ram: { start: RAM.start + 2, size: 0x40000 },
      code: 'RSPFLASH_RAM_LAYOUT',
      message: /aligned/,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.input} with ${c.code}`, async () => {
      const before = await gdbReadMemory(bed.qemu.connectOptions, FLASH, 0x2000);
      const baseline = activeResources();
      const a = await attempt(c.img(), c.ram);
      await expectNoLeaks(baseline, c.input);
      outcomes.add({
        group: 'Bad input, refused before touching the target',
        fault: c.input,
        outcome: `refused; ${a.afterCreate ? `${a.afterCreate.memoryWrites} writes after the algorithm was loaded` : `${a.memoryWrites} memory writes`}`,
        code: a.error.code,
        timeMs: Math.round(a.elapsedMs),
        content: 'flash untouched',
      });
      expect(a.error.code, a.error.message).toBe(c.code);
      expect(a.error.message).toMatch(c.message);
      if (a.afterCreate) {
        // The image is only known to program(): nothing beyond loading the algorithm may happen.
        expect(a.afterCreate, 'requests after Flasher.create').toEqual({ memoryWrites: 0, resumes: 0 });
      } else {
        expect({ memoryWrites: a.memoryWrites, resumes: a.resumes }, 'requests that touch the target').toEqual({ memoryWrites: 0, resumes: 0 });
      }
      const after = await gdbReadMemory(bed.qemu.connectOptions, FLASH, 0x2000);
      expect(Buffer.compare(Buffer.from(after), Buffer.from(before)), 'flash unchanged').toBe(0);
    });
  }

  it('refuses an image outside the flash without a target at all (planProgram)', () => {
    expect(() => planProgram(image(FLASH + FLASH_SIZE - 16, new Uint8Array(32)), norSim())).toThrow(/outside flash/);
  });

  it('refuses an image outside the flash from the command line before writing to the target', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
    const work = mkdtempSync(join(tmpdir(), 'rspflash-refuse-'));
    try {
      const file = join(work, 'outside.bin');
      writeFileSync(file, new Uint8Array(64));
      bed.proxy.reset();
      const started = performance.now();
      const result = await new Promise<{ code: number | null; stderr: string }>((done) => {
        execFile(
          process.execPath,
          [CLI, 'program', file, '--base', '0xc1fffff0', '--gdb', `unix:${bed.proxy.connectOptions.path}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim],
          { encoding: 'utf8' },
          (err, _stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
      await bed.proxy.idle();
      const { memoryWrites, resumes } = bed.proxy.stats.toServer;
      outcomes.add({
        group: 'Bad input, refused before touching the target',
        fault: '`rspflash program` of an image outside the flash (CLI)',
        outcome: `exit ${result.code}; ${memoryWrites} memory writes, ${resumes} runs before the refusal`,
        code: 'RSPFLASH_OUT_OF_FLASH',
        timeMs: Math.round(performance.now() - started),
        content: 'flash untouched',
      });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(/outside flash/);
      // BUG(cli): bin/rspflash.ts connects and loads the algorithm (80 writes, 4 runs) before program() plans.
      expect({ memoryWrites, resumes }, 'the CLI touched the target before refusing the image').toEqual({ memoryWrites: 0, resumes: 0 });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('an algorithm that does not read back as written', () => {
  const PATTERN = randomData(RAM.size, 77);

  it('refuses a RAM region that ignores writes before running any code', async () => {
    const before = await gdbReadMemory(bed.qemu.connectOptions, FLASH, 0x1000);
    const a = await attempt(image(FLASH, new Uint8Array(0x1000)), NOT_RAM);
    outcomes.add({
      group: 'Bad input, refused before touching the target',
      fault: `RAM region that ignores writes (${NOT_RAM.start.toString(16)}, mps3-an547)`,
      outcome: `refused after loading, before running: ${a.resumes} runs`,
      code: a.error.code,
      timeMs: Math.round(a.elapsedMs),
      content: 'flash untouched',
    });
    expect(a.error.code, a.error.message).toBe('RSPFLASH_LOAD_MISMATCH');
    expect(a.error.message).toMatch(/Loading the flash algorithm into RAM 0x48000000\.\.0x48003fff failed: .*did not read back as written at 0x480[0-9a-f]{5}/);
    expect(a.resumes, 'no code ran').toBe(0);
    const after = await gdbReadMemory(bed.qemu.connectOptions, FLASH, 0x1000);
    expect(Buffer.compare(Buffer.from(after), Buffer.from(before))).toBe(0);
  });

  it('refuses an algorithm whose read-back is damaged (a lie with a good checksum) and puts the RAM back', async () => {
    await gdbWriteMemory(bed.qemu.connectOptions, RAM.start, PATTERN);
    // Learn which 'm' reads the algorithm back: the first read after the first memory write.
    bed.proxy.reset();
    const probe = await GdbClient.connect(bed.proxy.connectOptions, { timeoutMs: TIMEOUT_MS });
    const flasher = await Flasher.create(probe, norSim(), { ram: RAM, memoryMapped: true });
    const algorithmAt = flasher.runner.layout.algorithm;
    await flasher.close();
    await probe.close();
    await bed.proxy.idle();
    const requests = bed.proxy.stats.toServer.requests;
    const firstWrite = requests.findIndex((r) => /^M/.test(r));
    const readBack = requests.findIndex((r, i) => i > firstWrite && r.startsWith(`m${algorithmAt.toString(16)},`));
    expect(readBack, 'the runner reads the algorithm back').toBeGreaterThan(firstWrite);
    const nth = requests.slice(0, readBack + 1).filter((r) => /^m/.test(r)).length;

    const flip = (text: string) => text.slice(0, 10) + (text[10] === '0' ? '1' : '0') + text.slice(11);
    const a = await attempt(image(FLASH, new Uint8Array(0x1000)), RAM, {
      rules: [{ direction: 'toClient', replyTo: /^m/, nth, action: { kind: 'rewrite', payload: flip } }],
    });
    outcomes.add({
      group: 'Bad input, refused before touching the target',
      fault: "algorithm read-back differs (proxy rewrites the 'm' reply, checksum valid)",
      outcome: `refused before running: ${a.resumes} runs; RAM restored`,
      code: a.error.code,
      timeMs: Math.round(a.elapsedMs),
      content: 'flash untouched',
    });
    expect(bed.proxy.stats.fired.length).toBe(1);
    expect(a.error.code, a.error.message).toBe('RSPFLASH_LOAD_MISMATCH');
    expect(a.error.message).toContain(`at 0x${(algorithmAt + 5).toString(16).padStart(8, '0')}`);
    expect(a.resumes, 'no code ran').toBe(0);
    const ram = await gdbReadMemory(bed.qemu.connectOptions, RAM.start, RAM.size);
    expect(Buffer.compare(Buffer.from(ram), Buffer.from(PATTERN)), 'the RAM lent to the algorithm is as it was').toBe(0);
  });
});
