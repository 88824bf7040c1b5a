/**
 * `rspflash serve` in front of QEMU (mps3-an547 with the NOR simulator at
 * 0xC0000000), driven by a real gdb-multiarch: `load` of an ELF with sections
 * in RAM and in flash, `compare-sections` through the on-target qCRC,
 * breakpoints and stepping in flash code, `monitor rspflash`. Every result is
 * read back independently, with gdb-multiarch straight to QEMU.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { loadFixtureAlgorithm } from '../helpers/algorithms.js';
import type { ProxyHandle } from '../../lib/serve/index.js';
import { LAYOUT, buildTestElf, flashDataByte, gdbMi, gdbThroughProxy, withServeProxy, type TestElf } from './helpers.js';

const FLASH = 0xc0000000;
/** Sectors 0xC0000000..0xC0006000: everything the test ELF touches, and one sector on either side. */
const AREA = 0x6000;
/** What the flash holds before each load: a pattern the NOR simulator could hold. */
const before = (i: number) => (i * 13 + 0x5a) & 0xff;

let qemu: QemuInstance;
let elf: TestElf;
let sockDir: string;
const algorithm = loadFixtureAlgorithm(FIXTURES.norSim);

beforeAll(async () => {
  [qemu, elf] = await Promise.all([startQemu({ machine: 'mps3-an547' }), buildTestElf()]);
  sockDir = await mkdtemp(join(tmpdir(), 'rspflash-serve-'));
});
afterAll(async () => {
  await qemu?.stop();
});

/** Runs `body` with a proxy in front of QEMU and the lines it logged. */
const withProxy = <T>(body: (proxy: ProxyHandle, log: string[]) => Promise<T>) =>
  withServeProxy({ upstream: qemu.connectOptions, algorithms: [algorithm], board: 'qemu-an547', dir: sockDir }, body);

async function fillFlash(): Promise<Uint8Array> {
  const pattern = Uint8Array.from({ length: AREA }, (_, i) => before(i));
  await gdbWriteMemory(qemu.connectOptions, FLASH, pattern);
  return pattern;
}

/** What the flash must hold after loading the test ELF over `pattern`: its sections, and the pattern everywhere else. */
function expectedAfterLoad(pattern: Uint8Array): Uint8Array {
  const out = pattern.slice();
  out.set([0x01, 0x20, 0x02, 0x30, 0x03, 0x30, 0xfe, 0xe7], LAYOUT.flashText - FLASH);
  for (let i = 0; i < LAYOUT.flashDataLength; i++) out[LAYOUT.flashData - FLASH + i] = flashDataByte(i);
  return out;
}

describe('gdb load through rspflash serve', () => {
  it('programs the flash sections with the algorithm, writes the RAM section, and keeps the rest of every touched sector', async () => {
    const pattern = await fillFlash();
    await gdbWriteMemory(qemu.connectOptions, LAYOUT.ramData, new Uint8Array(LAYOUT.ramDataLength));
    const log = await withProxy(async (proxy, log) => {
      const r = await gdbThroughProxy(proxy.address, ['load', 'compare-sections'], { file: elf.path });
      expect(r.stderr, r.stdout).not.toMatch(/error|failed|forbidden|Cannot access/i);
      expect(r.stdout).toMatch(/Loading section \.flashdata/);
      expect(r.stdout).toMatch(/Section \.flashtext, range 0xc0001100 -- 0xc0001108: matched/);
      expect(r.stdout).toMatch(/Section \.flashdata, range 0xc0003800 -- 0xc0005200: matched/);
      expect(r.stdout).toMatch(/Section \.ramdata, range 0x20010000 -- 0x20010100: matched/);
      return log;
    });
    expect(log.join('\n')).toMatch(/programming \d+ bytes in 2 range\(s\)/);
    expect(log.join('\n')).toMatch(/kept \d+ bytes of partly written sectors/);
    // Independent read-back, straight to QEMU.
    expect(Buffer.from(await gdbReadMemory(qemu.connectOptions, FLASH, AREA)).equals(Buffer.from(expectedAfterLoad(pattern)))).toBe(true);
    const ram = await gdbReadMemory(qemu.connectOptions, LAYOUT.ramData, LAYOUT.ramDataLength);
    expect([...new Set(ram)].sort((a, b) => a - b)).toEqual([0x5a, 0xa5]);
  });

  it('answers qCRC over flash from the target: compare-sections finds a changed flash byte', async () => {
    const pattern = await fillFlash();
    await withProxy(async (proxy) => {
      const r = await gdbThroughProxy(proxy.address, ['load'], { file: elf.path });
      expect(r.stderr).not.toMatch(/error/i);
    });
    // Change one byte of the flash data behind the proxy's back.
    await gdbWriteMemory(qemu.connectOptions, LAYOUT.flashData + 0x10, Uint8Array.of(flashDataByte(0x10) ^ 0xff));
    await withProxy(async (proxy) => {
      const r = await gdbThroughProxy(proxy.address, ['compare-sections'], { file: elf.path });
      expect(r.stdout).toMatch(/Section \.flashtext, range 0xc0001100 -- 0xc0001108: matched/);
      expect(r.stdout).toMatch(/Section \.flashdata, range 0xc0003800 -- 0xc0005200: MIS-MATCHED!/);
    });
    void pattern;
  });

  it('skips sectors that already hold the image on a second load', async () => {
    await fillFlash();
    await withProxy(async (proxy, log) => {
      await gdbThroughProxy(proxy.address, ['load'], { file: elf.path });
      log.length = 0;
      const r = await gdbThroughProxy(proxy.address, ['load'], { file: elf.path });
      expect(r.stderr).not.toMatch(/error/i);
      expect(log.join('\n')).toMatch(/4 sector\(s\) already hold the image/);
      expect(log.join('\n')).toMatch(/0 erased, 0 bytes programmed/);
    });
  });

  it('steps, and stops at a breakpoint, through the proxy; gdb puts hardware breakpoints in the flash regions', async () => {
    await fillFlash();
    await withProxy(async (proxy) => {
      const r = await gdbThroughProxy(
        proxy.address,
        ['load', 'set $pc = ram_fn', 'stepi', 'stepi', 'p/x $r0', 'break *ram_done', 'break *flash_done', 'continue', 'p/x $pc', 'p/x $r0', 'delete'],
        { file: elf.path },
      );
      expect(r.stdout).toMatch(/\$1 = 0x3\b/);
      // Flash is read-only to gdb once the map says so: it chooses a hardware breakpoint (Z1) there itself.
      expect(r.stdout).toMatch(/automatically using hardware breakpoints for read-only addresses/);
      expect(r.stdout).toMatch(/Breakpoint 1, /);
      expect(r.stdout).toMatch(new RegExp(`\\$2 = 0x${elf.symbols.ram_done!.toString(16)}\\b`));
      expect(r.stdout).toMatch(/\$3 = 0x6\b/);
    });
  });

  it("runs cortex-debug's launch sequence over MI (target-select extended-remote, monitor reset, target-download)", async () => {
    const pattern = await fillFlash();
    await withProxy(async (proxy) => {
      const r = await gdbMi(
        [
          '-gdb-set target-async on',
          '-interpreter-exec console "set architecture arm"',
          `-target-select extended-remote ${proxy.address}`,
          '-interpreter-exec console "monitor system_reset"',
          '-target-download',
          '-interpreter-exec console "monitor system_reset"',
          '-target-disconnect',
        ],
        { file: elf.path },
      );
      expect(r.stdout).toMatch(/\^done,address="0x[0-9a-f]+",load-size="\d+"/);
      expect(r.stdout).not.toMatch(/\^error/);
    });
    expect(Buffer.from(await gdbReadMemory(qemu.connectOptions, FLASH, AREA)).equals(Buffer.from(expectedAfterLoad(pattern)))).toBe(true);
  });

  it('programs, verifies and erases with monitor rspflash, streaming progress as console output', async () => {
    await fillFlash();
    const dir = await mkdtemp(join(tmpdir(), 'rspflash-serve-bin-'));
    const file = join(dir, 'app.bin');
    const data = Uint8Array.from({ length: 0x1800 }, (_, i) => (i * 3) & 0xff);
    await writeFile(file, data);
    await withProxy(async (proxy) => {
      const r = await gdbThroughProxy(proxy.address, [
        `monitor rspflash program ${file} 0xc0000800`,
        `monitor rspflash verify ${file} 0xc0000800`,
        'monitor rspflash erase 0xc0005000 1',
        'monitor rspflash help',
        'monitor rspflash bogus',
      ]);
      // gdb prints monitor output on stderr in batch mode.
      const out = r.stdout + r.stderr;
      expect(out).toMatch(/write: 2 sectors/);
      expect(out).toMatch(/bytes programmed/);
      expect(out).toMatch(/maintenance flush dcache/);
      expect(out).toMatch(/flash matches \(6144 bytes\)/);
      expect(out).toMatch(/erased 0xc0005000\.\.0xc0005fff/);
      expect(out).toMatch(/monitor rspflash program FILE \[BASE\]/);
      expect(out).toMatch(/unknown command 'rspflash bogus'/);
    });
    const back = await gdbReadMemory(qemu.connectOptions, FLASH, AREA);
    expect(Buffer.from(back.subarray(0x800, 0x2000)).equals(Buffer.from(data))).toBe(true);
    expect(back[0x7ff]).toBe(before(0x7ff)); // kept
    expect(back.subarray(0x5000, 0x6000).every((b) => b === 0xff)).toBe(true);
  });

  it('refuses an erase outside any flash with E.memtype (gdb: flash erase fails) and leaves the link usable', async () => {
    await withProxy(async (proxy, log) => {
      const r = await gdbThroughProxy(proxy.address, ['maintenance packet vFlashErase:10000000,1000', 'p/x *(unsigned *)0x20010000']);
      expect(r.stdout).toMatch(/received: "E\.memtype"/);
      expect(r.stdout).toMatch(/\$1 = 0x/);
      expect(log.join('\n')).toMatch(/outside the flash the proxy serves/);
    });
  });
});
