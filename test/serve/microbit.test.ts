/**
 * `rspflash serve` in front of QEMU microbit (nRF51, Cortex-M0): a real flash
 * controller (the emulated NVMC, driven by nvmc-nrf51.flm) and code that runs
 * from flash. gdb-multiarch loads a C program whose vector table and code lie
 * in flash at 0 and whose data lies in RAM, then debugs it there: hardware
 * breakpoints (gdb's own choice in a flash region of the map), stepping, a
 * reset that starts the program from its reset vector, compare-sections
 * through the proxy's on-target qCRC. Flash is read back straight from QEMU.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { loadFixtureAlgorithm } from '../helpers/algorithms.js';
import { createImage } from '../../lib/image/image.js';
import { withFlasher } from '../../lib/session.js';
import type { ProxyHandle } from '../../lib/serve/index.js';
import { gdbThroughProxy, withServeProxy } from './helpers.js';
import { MICROBIT_LAYOUT, buildBlankKernel, buildMicrobitElf, tableByte, type MicrobitElf } from './microbit-elf.js';

/** Pages 0x00000000..0x00002000: every page the program touches, and more. */
const AREA = 0x2000;
/** What the flash holds before a load (programmed with the algorithm: debugger writes to nRF51 flash are ignored). */
const before = (i: number) => (i * 13 + 0x5a) & 0xff;

let qemu: QemuInstance;
let elf: MicrobitElf;
let variant: MicrobitElf;
let sockDir: string;
const algorithm = loadFixtureAlgorithm(FIXTURES.nvmcNrf51);

beforeAll(async () => {
  [qemu, elf, variant] = await Promise.all([startQemu({ machine: 'microbit', kernel: await buildBlankKernel() }), buildMicrobitElf(), buildMicrobitElf({ variant: true })]);
  sockDir = await mkdtemp(join(tmpdir(), 'rspflash-serve-microbit-'));
});
afterAll(async () => {
  await qemu?.stop();
});

/** Runs `body` with a proxy in front of QEMU microbit and the lines it logged. */
const withProxy = <T>(body: (proxy: ProxyHandle, log: string[]) => Promise<T>) =>
  withServeProxy({ upstream: qemu.connectOptions, algorithms: [algorithm], board: 'qemu-microbit', dir: sockDir }, body);

/** Fills the area with {@link before}, programmed through the NVMC straight to QEMU (no proxy). */
async function fillFlash(): Promise<Uint8Array> {
  const pattern = Uint8Array.from({ length: AREA }, (_, i) => before(i));
  await withFlasher({ gdb: qemu.connectOptions, algorithm, board: 'qemu-microbit', journal: false }, (flasher) =>
    flasher.program(createImage([{ address: 0, data: pattern, source: 'pattern' }])),
  );
  return pattern;
}

/** What the flash must hold after loading `program` over `pattern`: its flash sections, and the pattern everywhere else. */
function expectedAfterLoad(pattern: Uint8Array, program: MicrobitElf): Uint8Array {
  const out = pattern.slice();
  out.set(program.text, MICROBIT_LAYOUT.text);
  for (let i = 0; i < MICROBIT_LAYOUT.tableLength; i++) out[MICROBIT_LAYOUT.table + i] = tableByte(i);
  return out;
}

const hexOf = (n: number) => `0x${n.toString(16)}`;

describe('rspflash serve on QEMU microbit (NVMC flash, code in flash)', () => {
  it('loads the code into flash at 0 with the NVMC algorithm and the data into RAM, keeping the rest of every touched page', async () => {
    const pattern = await fillFlash();
    await gdbWriteMemory(qemu.connectOptions, MICROBIT_LAYOUT.data, new Uint8Array(4));
    await withProxy(async (proxy, log) => {
      const r = await gdbThroughProxy(proxy.address, ['load'], { file: elf.path });
      expect(r.stderr, r.stdout).not.toMatch(/error|failed|forbidden|Cannot access/i);
      expect(r.stdout).toMatch(/Loading section \.text, size 0x[0-9a-f]+ lma 0x0\b/);
      expect(r.stdout).toMatch(/Loading section \.table, size 0x300 lma 0x1200\b/);
      expect(r.stdout).toMatch(/Loading section \.data, size 0x4 lma 0x20000000\b/);
      // Pages 0x0, 0x1000 and 0x1400 are partly written: the rest of each is read and programmed back.
      expect(log.join('\n')).toMatch(/3 sector\(s\) touched, 0 unchanged, 3 erased/);
      expect(log.join('\n')).toMatch(new RegExp(`kept ${3 * 1024 - elf.text.length - MICROBIT_LAYOUT.tableLength} bytes of partly written sectors`));
    });
    // Independent read-back, straight to QEMU.
    const back = await gdbReadMemory(qemu.connectOptions, 0, AREA);
    expect(Buffer.from(back).equals(Buffer.from(expectedAfterLoad(pattern, elf)))).toBe(true);
    expect(Buffer.from(await gdbReadMemory(qemu.connectOptions, MICROBIT_LAYOUT.data, 4)).readUInt32LE(0)).toBe(1); // step
  });

  it('debugs the program in flash through the proxy: reset vector, hardware breakpoints (Z1), stepi, next, continue', async () => {
    await fillFlash();
    const { bump, Reset_Handler: reset, Fault_Handler: fault } = elf.symbols as Record<string, number>;
    await withProxy(async (proxy) => {
      const r = await gdbThroughProxy(
        proxy.address,
        [
          'load',
          // Anywhere but the reset handler: the reset must take PC and SP from the vector table in flash.
          `set $pc = ${hexOf(fault!)}`,
          'monitor system_reset',
          'maintenance flush register-cache',
          'info registers pc',
          'p/x $sp',
          'set var counter = 0',
          'break bump',
          'set debug remote 1',
          'continue',
          'info registers pc',
          'p x',
          'stepi',
          'info registers pc',
          'next',
          'next',
          'info registers pc',
          'continue',
          'p counter',
          'p x',
          'set debug remote 0',
          'delete',
        ],
        { file: elf.path },
      );
      const out = r.stdout + r.stderr;
      expect(out).not.toMatch(/Cannot insert breakpoint|Cannot access memory|Remote connection closed/);
      expect(r.stdout).toMatch(new RegExp(`^pc\\s+${hexOf(reset!)}\\s+${hexOf(reset!)} <Reset_Handler>$`, 'm'));
      expect(r.stdout).toMatch(/^\$1 = 0x20004000$/m);
      // Flash is read-only in the proxy's memory map: gdb chooses a hardware breakpoint there itself.
      expect(out).toMatch(/automatically using hardware breakpoints for read-only addresses/);
      expect(out).toMatch(new RegExp(`Sending packet: \\$Z1,${bump!.toString(16)},2#`));
      // Never a software breakpoint: no Z0, and no breakpoint instruction written into flash with M/X.
      expect(out).not.toMatch(/Sending packet: \$Z0,/);
      expect(out).not.toMatch(/Sending packet: \$[MX][0-9a-f]{1,5},/);
      expect(r.stdout).toMatch(/Breakpoint 1, bump \(x=0\)/);
      expect(r.stdout).toMatch(new RegExp(`^pc\\s+${hexOf(bump!)}\\s+${hexOf(bump!)} <bump>$`, 'm'));
      expect(r.stdout).toMatch(/^\$2 = 0$/m);
      expect(r.stdout).toMatch(new RegExp(`^pc\\s+${hexOf(bump! + 2)}\\s+${hexOf(bump! + 2)} <bump\\+2>$`, 'm'));
      // next: to the next line of bump, then out of it (a step-resume breakpoint at the return address, in flash too).
      expect(r.stdout).toMatch(/^8\s+return y;$/m);
      expect(r.stdout).toMatch(/^Reset_Handler \(\) at .*app\.c:15$/m);
      expect(r.stdout).toMatch(/^pc\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <Reset_Handler\+\d+>$/m);
      // The loop stored the first result and called bump again.
      expect(r.stdout).toMatch(/Breakpoint 1, bump \(x=1\)/);
      expect(r.stdout).toMatch(/^\$3 = 1$/m);
      expect(r.stdout).toMatch(/^\$4 = 1$/m);
    });
  });

  it('answers compare-sections from the target (qCRC) and finds a function changed by another load', async () => {
    await fillFlash();
    await withProxy(async (proxy, log) => {
      const first = await gdbThroughProxy(proxy.address, ['load', 'set debug remote 1', 'compare-sections', 'set debug remote 0'], { file: elf.path });
      const out = first.stdout + first.stderr;
      expect(first.stdout).toMatch(new RegExp(`Section \\.text, range 0x0 -- ${hexOf(elf.text.length)}: matched`));
      expect(first.stdout).toMatch(/Section \.table, range 0x1200 -- 0x1500: matched/);
      expect(first.stdout).toMatch(/Section \.data, range 0x20000000 -- 0x20000004: matched/);
      // QEMU has no qCRC: the proxy computed these on the target.
      expect(out).toMatch(new RegExp(`Sending packet: \\$qCRC:0,${elf.text.length.toString(16)}#[0-9a-f]{2}\\s*\\n\\s*\\[remote\\] Packet received: C[0-9a-f]{8}`));

      // The variant differs only in bump: one page (0x0) is rewritten, the table's pages are left alone.
      log.length = 0;
      const second = await gdbThroughProxy(proxy.address, ['load'], { file: variant.path });
      expect(second.stderr).not.toMatch(/error/i);
      expect(log.join('\n')).toMatch(/3 sector\(s\) touched, 2 unchanged, 1 erased/);

      const third = await gdbThroughProxy(proxy.address, ['compare-sections'], { file: elf.path });
      expect(third.stdout).toMatch(new RegExp(`Section \\.text, range 0x0 -- ${hexOf(elf.text.length)}: MIS-MATCHED!`));
      expect(third.stdout).toMatch(/Section \.table, range 0x1200 -- 0x1500: matched/);
      expect(third.stdout).toMatch(/Section \.data, range 0x20000000 -- 0x20000004: matched/);
      const fourth = await gdbThroughProxy(proxy.address, ['compare-sections'], { file: variant.path });
      expect(fourth.stdout).toMatch(new RegExp(`Section \\.text, range 0x0 -- ${hexOf(variant.text.length)}: matched`));
    });
    expect(Buffer.from(await gdbReadMemory(qemu.connectOptions, 0, variant.text.length)).equals(Buffer.from(variant.text))).toBe(true);
    expect(Buffer.from(variant.text).equals(Buffer.from(elf.text))).toBe(false);
  });

  it('skips every page on a second load of the same program', async () => {
    await fillFlash();
    await withProxy(async (proxy, log) => {
      await gdbThroughProxy(proxy.address, ['load'], { file: elf.path });
      log.length = 0;
      const r = await gdbThroughProxy(proxy.address, ['load'], { file: elf.path });
      expect(r.stderr).not.toMatch(/error/i);
      expect(log.join('\n')).toMatch(/3 sector\(s\) already hold the image/);
      expect(log.join('\n')).toMatch(/3 sector\(s\) touched, 3 unchanged, 0 erased, 0 bytes programmed/);
    });
  });
});
