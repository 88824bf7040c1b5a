/**
 * The target is borrowed, not owned: a debug session's state — core
 * registers, a RAM pattern over the region lent to the algorithm,
 * breakpoints — is the same before and after a program run, seen by our
 * client and by gdb-multiarch; and a misbehaving algorithm leaves the core
 * halted with its state reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { GdbClient } from '../../lib/gdb/client.js';
import { Flasher } from '../../lib/flash/flasher.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { RspflashError } from '../../lib/errors.js';
import { FIXTURES, readFixtureJson, type BootFixtureInfo } from '../helpers/qemu.js';
import { gdbReadMemory, gdbRun, parseGdbRegisters } from '../helpers/gdb-multiarch.js';
import { FLASH, Outcomes, RAM, image, norSim, randomData, sectorsHolding, startBed, typed, type Bed } from './harness.js';

const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses;
const CORE = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9', 'r10', 'r11', 'r12', 'sp', 'lr', 'pc', 'xpsr'] as const;

const outcomes = new Outcomes();
let bed: Bed;

beforeAll(async () => {
  bed = await startBed();
});
afterAll(async () => {
  outcomes.write();
  await bed?.stop();
});

/** A debugger's state in the middle of a session: odd register values, a RAM pattern, three breakpoints. */
async function setUpSession(gdb: GdbClient, pattern: Uint8Array): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  CORE.forEach((name, i) => (values[name] = (0x11111111 * ((i % 15) + 1)) >>> 0));
  values['sp'] = 0x2007f7f8; // DTCM, below the boot stack top
  values['pc'] = boot['idle']!;
  values['lr'] = (boot['rt_sum']! | 1) >>> 0;
  values['xpsr'] = 0x61000000; // Z and C set, Thumb; IPSR 0 (thread mode)
  await gdb.writeRegisters(values);
  await gdb.writeMemory(RAM.start, pattern);
  await gdb.insertBreakpoint(boot['rt_add']!, 'hw');
  await gdb.insertBreakpoint(boot['rt_sum']!, 'sw');
  // The runner catches faults with a breakpoint on the HardFault handler; a debugger often has one there too.
  await gdb.insertBreakpoint(boot['HardFault_Handler']!, 'hw');
  return values;
}

/** Runs from a one-instruction routine (rt_fill with n = 0: `bx lr`) to `target`: stops there only if a breakpoint is armed. */
async function reaches(gdb: GdbClient, target: number): Promise<boolean> {
  await gdb.writeRegisters({ r0: 0x2007f000, r1: 0, r2: 0, pc: boot['rt_fill']!, lr: (target | 1) >>> 0, xpsr: 0x01000000 });
  const { interrupted } = await gdb.continue({ timeoutMs: 1000 });
  const { pc } = await gdb.readRegisters(['pc']);
  return !interrupted && pc === target;
}

const variants = [
  { run: 'a program run', fails: false },
  { run: 'a program run that fails (E01 to a memory write mid-run)', fails: true },
] as const;

describe('a debug session around a program run', () => {
  variants.forEach(({ run, fails }, v) => {
    it(`finds registers, the RAM pattern and its breakpoints as it left them after ${run}`, async () => {
      const pattern = randomData(RAM.size, 4242 + v);
      const img = image(FLASH + 0x100000 + v * 0x100000, randomData(96 << 10, 4243 + v));
      bed.proxy.reset();
      const gdb = await GdbClient.connect(bed.proxy.connectOptions);
      let core: Record<string, number>;
      try {
        const values = await setUpSession(gdb, pattern);
        const regsBefore = await gdb.readRegisters(CORE);
        expect(regsBefore, 'the session could set its registers').toMatchObject({ ...values, xpsr: regsBefore.xpsr });
        const allBefore = await gdb.readCoreRegisters();
        const bpsBefore = gdb.breakpoints;

        const flasher = await Flasher.create(gdb, norSim(), { ram: RAM, memoryMapped: true });
        // From here on, the 5th memory write is refused: the run fails in the middle, on a live link.
        if (fails) bed.proxy.reset({ rules: [{ direction: 'toServer', match: /^M/, nth: 5, action: { kind: 'error' } }] });
        try {
          const outcome = await flasher.program(img).then(
            () => undefined,
            (err: unknown) => err,
          );
          if (fails) expect(typed(outcome).code).toBe('RSPFLASH_SERVER_ERROR');
          else expect(outcome).toBeUndefined();
        } finally {
          await flasher.close();
        }

        expect(await gdb.readRegisters(CORE), 'r0-r12, sp, lr, pc, xpsr').toEqual(regsBefore);
        expect(await gdb.readCoreRegisters(), 'every register of the g packet').toEqual(allBefore);
        const ram = await gdb.readMemory(RAM.start, RAM.size);
        expect(Buffer.compare(Buffer.from(ram), Buffer.from(pattern)), 'the RAM lent to the algorithm').toBe(0);
        expect(new Set(gdb.breakpoints.map((b) => `${b.type}@${b.address}`)), "the client's breakpoint list").toEqual(new Set(bpsBefore.map((b) => `${b.type}@${b.address}`)));
        core = regsBefore;
        // Still armed in QEMU, not only listed: each one stops the core.
        for (const name of ['rt_add', 'rt_sum', 'HardFault_Handler']) {
          expect(await reaches(gdb, boot[name]!), `the breakpoint on ${name} stops the core`).toBe(true);
        }
        // Put the session's registers back for gdb-multiarch to see (the checks above ran code).
        await gdb.writeRegisters(Object.fromEntries(CORE.map((n) => [n, core[n]!])));
      } finally {
        await gdb.close();
      }
      await bed.proxy.idle();
      // An independent look: gdb-multiarch sees the same registers and RAM.
      const regs = parseGdbRegisters(await gdbRun(bed.qemu.connectOptions, ['info registers']));
      for (const name of CORE) expect(regs[name], `gdb-multiarch: ${name}`).toBe(core[name]);
      const ram = await gdbReadMemory(bed.qemu.connectOptions, RAM.start, RAM.size);
      expect(Buffer.compare(Buffer.from(ram), Buffer.from(pattern)), 'gdb-multiarch: RAM').toBe(0);
      const holding = (await sectorsHolding(bed, img)).holding.length;
      if (!fails) expect(holding).toBe(24);
      outcomes.add({
        group: 'Target safety',
        fault: `debug session state (r0–r12, sp, lr, pc, xpsr, all g registers, 256 KiB RAM pattern, 3 breakpoints incl. one on HardFault_Handler) around ${run}`,
        outcome: 'identical after Flasher.close (our client and gdb-multiarch); breakpoints still stop the core',
        code: fails ? 'RSPFLASH_SERVER_ERROR' : '—',
        timeMs: undefined,
        content: fails ? `${holding} of 24 sectors hold the image` : 'image complete',
      });
    });
  });
});

describe('a misbehaving algorithm', () => {
  const broken = loadAlgorithm(readFileSync(FIXTURES.broken), FIXTURES.broken);
  const cases: { fn: string; what: string; algorithm?: FlashAlgorithm; run: (f: Flasher) => Promise<unknown>; code: string | string[]; message: RegExp }[] = [
    {
      fn: 'EraseSector',
      what: 'faults (BusFault → HardFault)',
      run: (f: Flasher) => f.program(image(FLASH + 0x200000, randomData(4096, 1)), { skipUnchanged: false }),
      code: 'RSPFLASH_ALGO_FAULT',
      message: /Erasing 0xc0200000\.\.0xc0200fff failed: .*EraseSector.*(HardFault|BusFault).*PC 0x/s,
    },
    {
      fn: 'ProgramPage',
      what: 'never returns',
      // EraseSector pointed at UnInit (returns 0), so the run gets as far as ProgramPage.
      algorithm: { ...broken, functions: { ...broken.functions, EraseSector: broken.functions.UnInit } },
      run: (f: Flasher) => f.program(image(FLASH + 0x200000, randomData(256, 2)), { skipUnchanged: false }),
      code: 'RSPFLASH_ALGO_TIMEOUT',
      message: /Programming 0xc0200000\.\.0xc0200[0-9a-f]{3} failed: .*did not return within \d+ ms.*halted at PC 0x/s,
    },
    {
      fn: 'Verify',
      what: 'overwrites its stack',
      run: (f: Flasher) => f.verify(image(FLASH + 0x200000, randomData(256, 3)), { verify: 'algo' }),
      code: ['RSPFLASH_ALGO_STACK_OVERFLOW', 'RSPFLASH_ALGO_FAULT'],
      message: /Verifying 0xc0200000\.\.0xc02000ff failed: /,
    },
  ];
  for (const c of cases) {
    it(`reports an algorithm whose ${c.fn} ${c.what}, leaving the core halted`, async () => {
      const gdb = await GdbClient.connect(bed.proxy.connectOptions);
      const started = performance.now();
      let error: unknown;
      try {
        const flasher = await Flasher.create(gdb, c.algorithm ?? broken, { ram: RAM, memoryMapped: true });
        try {
          await c.run(flasher);
        } catch (err) {
          error = err;
        } finally {
          expect(gdb.state, 'the core is halted').toBe('halted');
          await flasher.close().catch(() => undefined);
        }
        const e = typed(error);
        outcomes.add({
          group: 'Target safety',
          fault: `broken.flm: ${c.fn} ${c.what}`,
          outcome: 'typed error, core halted, PC reported',
          code: e.code,
          timeMs: Math.round(performance.now() - started),
          content: 'n/a (algorithm cannot program)',
        });
        expect([c.code].flat(), e.message).toContain(e.code);
        expect(e.message).toMatch(c.message);
        expect(e instanceof RspflashError && e.hint, 'a hint says what to do').toBeTruthy();
      } finally {
        // A core left in a fault handler must be reset before the next test runs code on it.
        await gdb.monitor('system_reset').catch(() => undefined);
        await gdb.close();
        await bed.proxy.idle();
      }
    });
  }
});
