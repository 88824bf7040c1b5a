/**
 * Proves the test fixtures on QEMU with gdb-multiarch only (no rspflash code):
 * the boot images boot and idle, and the flash algorithms do what
 * test/fixtures/README.md promises when called the way a loader calls them
 * (R0-R3 args, R9 = PrgData, SP, LR = trap|1, PC = entry; a hardware
 * breakpoint on the trap ends the call).
 */
import { crc32 } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseDocument } from 'yaml';
import { gdbReadMemory, gdbRun, parseGdbRegisters } from './helpers/gdb-multiarch.js';
import {
  FIXTURES,
  readFixtureJson,
  startQemu,
  type AlgorithmFixtureInfo,
  type BootFixtureInfo,
  type QemuInstance,
} from './helpers/qemu.js';

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

interface CallSite {
  /** Load address of the blob. */
  load: number;
  info: AlgorithmFixtureInfo;
  sp: number;
  /** Return address (a `nop; b` loop of the boot image), hardware breakpoint set on it. */
  trap: number;
  /** R9 override (default: load + rwOffset). */
  r9?: number;
}

/** gdb commands that call `fn(args)` and print `CALL <tag> r0=… pc=…`. */
function call(site: CallSite, tag: string, fn: string, args: readonly number[]): string[] {
  const entry = site.info.functions[fn];
  if (entry === undefined) throw new Error(`${site.info.file} has no ${fn}`);
  return [
    ...args.map((a, i) => `set $r${i}=${hex(a)}`),
    `set $r9=${hex(site.r9 ?? site.load + site.info.rwOffset)}`,
    `set $sp=${hex(site.sp)}`,
    `set $lr=${hex(site.trap | 1)}`,
    'set $xpsr=0x01000000',
    `set $pc=${hex(site.load + (entry & ~1))}`,
    'continue',
    `printf "CALL ${tag} r0=0x%x pc=0x%x\\n", $r0, $pc`,
  ];
}

/** Parses the CALL lines into tag → r0, checking each call came back to the trap. */
function results(stdout: string, trap: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^CALL (\S+) r0=0x([0-9a-f]+) pc=0x([0-9a-f]+)$/gm)) {
    const [, tag, r0, pc] = m;
    expect(parseInt(pc!, 16), `call ${tag} returned to the trap`).toBe(trap);
    out[tag!] = parseInt(r0!, 16);
  }
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 37 + seed * 101 + (i >> 3)) & 0xff;
  return a;
}

/** gdb commands writing bytes to RAM (set {unsigned int}…; small buffers only). */
function writeBytes(address: number, data: Uint8Array): string[] {
  const cmds: string[] = [];
  const padded = new Uint8Array((data.length + 3) & ~3);
  padded.set(data);
  const dv = new DataView(padded.buffer);
  for (let i = 0; i < padded.length; i += 4) {
    cmds.push(`set {unsigned int}${hex(address + i)}=${hex(dv.getUint32(i, true))}`);
  }
  return cmds;
}

describe('fixture files (host only)', () => {
  test('nor-sim.yaml matches nor-sim.flm: blob, entry offsets with Thumb bit, geometry, memory map tags', () => {
    const info = readFixtureJson(FIXTURES.norSimJson);
    const doc = parseDocument(readFileSync(FIXTURES.norSimYaml, 'utf8'));
    expect(doc.errors).toEqual([]);
    const tags = (doc.getIn(['variants', 0, 'memory_map']) as { items: { tag?: string }[] }).items.map((i) => i.tag);
    expect(tags).toEqual(['!Ram', '!Nvm']);
    const algo = (doc.toJS() as { flash_algorithms: Record<string, unknown>[] }).flash_algorithms[0]!;
    expect(Buffer.from(algo['instructions'] as string, 'base64')).toEqual(readFileSync(FIXTURES.norSimBlob));
    const f = info.functions;
    expect(algo).toMatchObject({
      default: true,
      pc_init: f['Init'],
      pc_uninit: f['UnInit'],
      pc_program_page: f['ProgramPage'],
      pc_erase_sector: f['EraseSector'],
      pc_erase_all: f['EraseChip'],
      pc_verify: f['Verify'],
      pc_blank_check: f['BlankCheck'],
      data_section_offset: info.rwOffset,
      stack_size: 2048,
      flash_properties: {
        address_range: { start: 0xc0000000, end: 0xc2000000 },
        page_size: 256,
        erased_byte_value: 0xff,
        program_page_timeout: 100,
        erase_sector_timeout: 500,
        sectors: [{ size: 0x1000, address: 0 }],
      },
    });
    for (const v of Object.values(f)) expect(v & 1).toBe(1);
  });

  test('every algorithm blob = PrgCode + non-empty RW (marker 0x5A5A0000 first) + zeroed ZI', () => {
    for (const [json, blobPath] of [
      [FIXTURES.norSimJson, FIXTURES.norSimBlob],
      [FIXTURES.norSimSeggerJson, FIXTURES.norSimSeggerBlob],
      [FIXTURES.nvmcNrf51Json, FIXTURES.nvmcNrf51Blob],
      [FIXTURES.brokenJson, FIXTURES.brokenBlob],
    ] as const) {
      const info = readFixtureJson(json);
      const blob = readFileSync(blobPath);
      expect(blob.length).toBe(info.blobSize);
      expect(info.rwOffset).toBe(info.codeSize);
      expect(info.rwSize).toBeGreaterThan(0);
      expect(blob.readUInt32LE(info.rwOffset)).toBe(0x5a5a0000);
      expect(info.ziOffset).toBe(info.rwOffset + info.rwSize);
      expect(blob.subarray(info.ziOffset).every((x) => x === 0)).toBe(true);
    }
  });
});

describe('mps3-an547 boot image and NOR algorithms', () => {
  let q: QemuInstance;
  const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootAn547Json).addresses;
  const idle = boot['idle']!;
  // RAM layout in DTCM, keeping code, buffers and stack on separate 1 KiB
  // pages (QEMU's self-modifying-code detection granularity).
  const LOAD = 0x20000000;
  const BUF_A = 0x20001000;
  const BUF_B = 0x20001400;
  const BUF_X = 0x20001800;
  const SP = 0x20003000;

  beforeAll(async () => {
    q = await startQemu({ machine: 'mps3-an547' });
  });
  afterAll(async () => {
    await q?.stop();
  });

  test('boots halted at Reset_Handler, runs into idle, and rt_add works', async () => {
    const out = await gdbRun(q.connectOptions, [
      'info registers pc sp',
      'x/2wx 0',
      `hbreak *${hex(idle)}`,
      'continue',
      'printf "IDLE pc=0x%x\\n", $pc',
      'set $r0=40',
      'set $r1=2',
      `set $lr=${hex(idle | 1)}`,
      `set $pc=${hex(boot['rt_add']!)}`,
      'continue',
      'printf "ADD r0=%d pc=0x%x\\n", $r0, $pc',
    ]);
    const regs = parseGdbRegisters(out);
    expect(regs['pc']).toBe(boot['Reset_Handler']);
    expect(regs['sp']).toBe(0x20080000);
    expect(out).toMatch(/0x0[^:]*:\s+0x20080000\s+0x0*c1/);
    expect(out).toContain(`IDLE pc=${hex(idle)}`);
    expect(out).toContain(`ADD r0=42 pc=${hex(idle)}`);
  });

  test('nor-sim.flm: Init, EraseSector, ProgramPage, Verify, BlankCheck with NOR semantics', async () => {
    const info = readFixtureJson(FIXTURES.norSimJson);
    const site: CallSite = { load: LOAD, info, sp: SP, trap: idle };
    const a = pattern(256, 1);
    const b = pattern(256, 2);
    const anded = a.map((x, i) => x & b[i]!);
    const base = 0xc0000000;
    const out = await gdbRun(q.connectOptions, [
      `restore ${FIXTURES.norSimBlob} binary ${hex(LOAD)}`,
      ...writeBytes(BUF_A, a),
      ...writeBytes(BUF_B, b),
      ...writeBytes(BUF_X, anded),
      `hbreak *${hex(idle)}`,
      ...call({ ...site, r9: BUF_X }, 'init-bad-r9', 'Init', [base, 0, 1]),
      ...call(site, 'erase-before-init', 'EraseSector', [base]),
      ...call(site, 'init', 'Init', [base, 12_000_000, 1]),
      ...call(site, 'erase', 'EraseSector', [base]),
      ...call(site, 'erase-misaligned', 'EraseSector', [base + 0x10]),
      ...call(site, 'erase-out-of-range', 'EraseSector', [base + 0x2000000]),
      ...call(site, 'prog-a', 'ProgramPage', [base, 256, BUF_A]),
      ...call(site, 'prog-b', 'ProgramPage', [base, 256, BUF_B]),
      ...call(site, 'prog-short', 'ProgramPage', [base + 0x100, 5, BUF_A]),
      ...call(site, 'prog-cross-page', 'ProgramPage', [base + 0x180, 256, BUF_A]),
      ...call(site, 'verify-ok', 'Verify', [base, 256, BUF_X]),
      ...call(site, 'verify-bad', 'Verify', [base, 256, BUF_A]),
      ...call(site, 'blank-yes', 'BlankCheck', [base + 0x200, 0xe00, 0xff]),
      ...call(site, 'blank-no', 'BlankCheck', [base, 16, 0xff]),
      ...call(site, 'uninit', 'UnInit', [1]),
      ...call(site, 'prog-after-uninit', 'ProgramPage', [base, 4, BUF_A]),
    ]);
    const r = results(out, idle);
    expect(r).toEqual({
      'init-bad-r9': 3,
      'erase-before-init': 2,
      init: 0,
      erase: 0,
      'erase-misaligned': 1,
      'erase-out-of-range': 1,
      'prog-a': 0,
      'prog-b': 0,
      'prog-short': 0,
      'prog-cross-page': 1,
      'verify-ok': base + 256,
      'verify-bad': base + a.findIndex((x, i) => x !== anded[i]),
      'blank-yes': 0,
      'blank-no': 1,
      uninit: 0,
      'prog-after-uninit': 2,
    });
    const flash = await gdbReadMemory(q.connectOptions, base, 0x1000);
    expect(flash.subarray(0, 256)).toEqual(anded);
    expect(flash.subarray(256, 261)).toEqual(a.subarray(0, 5));
    expect(flash.subarray(261).every((x) => x === 0xff)).toBe(true);
  });

  test('nor-sim-segger.elf: Prepare, Erase, multi-page Program, Read, CalcCRC (zlib convention), Verify', async () => {
    const info = readFixtureJson(FIXTURES.norSimSeggerJson);
    const site: CallSite = { load: LOAD, info, sp: SP, trap: idle };
    const data = pattern(600, 3);
    const base = 0xc0010000;
    const out = await gdbRun(q.connectOptions, [
      `restore ${FIXTURES.norSimSeggerBlob} binary ${hex(LOAD)}`,
      ...writeBytes(BUF_A, data),
      `hbreak *${hex(idle)}`,
      ...call(site, 'prepare', 'SEGGER_FL_Prepare', [0xc0000000, 0, 2]),
      ...call(site, 'erase-bad-index', 'SEGGER_FL_Erase', [base, 0, 2]),
      ...call(site, 'erase', 'SEGGER_FL_Erase', [base, 0x10, 2]),
      ...call(site, 'program', 'SEGGER_FL_Program', [base + 0x100, data.length, BUF_A]),
      ...call(site, 'read', 'SEGGER_FL_Read', [base + 0x100, data.length, BUF_X]),
      ...call(site, 'crc', 'SEGGER_FL_CalcCRC', [0, base + 0x100, data.length, 0xedb88320]),
      ...call(site, 'crc-part1', 'SEGGER_FL_CalcCRC', [0, base + 0x100, 100, 0xedb88320]),
      ...call(site, 'verify', 'SEGGER_FL_Verify', [base + 0x100, data.length, BUF_X]),
      ...call(site, 'blank', 'SEGGER_FL_CheckBlank', [base + 0x100 + data.length, 0x1000, 0xff]),
      ...call(site, 'restore', 'SEGGER_FL_Restore', [0, 0, 0]),
    ]);
    const r = results(out, idle);
    expect(r['prepare']).toBe(0);
    expect(r['erase-bad-index']).toBe(1);
    expect(r['erase']).toBe(0);
    expect(r['program']).toBe(0);
    expect(r['read']).toBe(data.length);
    expect(r['crc']).toBe(crc32(data));
    expect(r['crc-part1']).toBe(crc32(data.subarray(0, 100)));
    expect(r['verify']).toBe(base + 0x100 + data.length);
    expect(r['blank']).toBe(0);
    expect(r['restore']).toBe(0);
    const copy = await gdbReadMemory(q.connectOptions, BUF_X, data.length);
    expect(copy).toEqual(data);
    // Chaining: CRC of part 2 seeded with CRC of part 1 = CRC of the whole.
    const chained = await gdbRun(q.connectOptions, [
      `hbreak *${hex(idle)}`,
      ...call(site, 'crc-part2', 'SEGGER_FL_CalcCRC', [r['crc-part1']!, base + 0x100 + 100, data.length - 100, 0xedb88320]),
    ]);
    expect(results(chained, idle)['crc-part2']).toBe(crc32(data));
  });

  test('broken.flm: BlankCheck 0x1234, Verify smashes 8 KiB below SP, EraseSector faults, ProgramPage hangs', async () => {
    const info = readFixtureJson(FIXTURES.brokenJson);
    const site: CallSite = { load: LOAD, info, sp: SP, trap: idle };
    const out = await gdbRun(q.connectOptions, [
      `restore ${FIXTURES.brokenBlob} binary ${hex(LOAD)}`,
      `hbreak *${hex(idle)}`,
      `hbreak *${hex(boot['HardFault_Handler']!)}`,
      ...call(site, 'init', 'Init', [0xc0000000, 0, 1]),
      ...call(site, 'blank', 'BlankCheck', [0xc0000000, 256, 0xff]),
      ...call(site, 'verify', 'Verify', [0xc0000000, 256, BUF_A]),
      `printf "SMASH below=0x%x first=0x%x code=0x%x\\n", *(unsigned int*)${hex(SP - 0x2000)}, *(unsigned int*)${hex(SP - 4)}, *(unsigned int*)${hex(LOAD)}`,
      ...call(site, 'erase', 'EraseSector', [0xc0000000]),
      'printf "FAULT cfsr=0x%x bfar=0x%x ipsr=0x%x\\n", *(unsigned int*)0xE000ED28, *(unsigned int*)0xE000ED38, $xpsr & 0x1ff',
      'monitor system_reset',
      'maint flush register-cache',
      'printf "RESET pc=0x%x ipsr=0x%x\\n", $pc, $xpsr & 0x1ff',
    ]);
    const r = results(out.replace(/^CALL erase .*$/m, ''), idle);
    expect(r).toEqual({ init: 0, blank: 0x1234, verify: 0 });
    const blob = readFileSync(FIXTURES.brokenBlob);
    expect(out).toContain(`SMASH below=0xdeadc0de first=0xdeadc0de code=${hex(blob.readUInt32LE(0))}`);
    expect(out).toMatch(new RegExp(`CALL erase r0=0x[0-9a-f]+ pc=${hex(boot['HardFault_Handler']!)}`));
    expect(out).toContain('FAULT cfsr=0x8200 bfar=0xf0000000 ipsr=0x3');
    expect(out).toContain(`RESET pc=${hex(boot['Reset_Handler']!)} ipsr=0x0`);

    const hang = await gdbRun(
      q.connectOptions,
      [
        `restore ${FIXTURES.brokenBlob} binary ${hex(LOAD)}`,
        `hbreak *${hex(idle)}`,
        ...call(site, 'program', 'ProgramPage', [0xc0000000, 256, BUF_A]),
      ],
      { interruptAfterMs: 2000 },
    );
    expect(hang).toContain(`CALL program r0=0xc0000000 pc=${hex(LOAD + (info.functions['ProgramPage']! & ~1))}`);
  });
});

describe('microbit boot image and nRF51 NVMC algorithm', () => {
  let q: QemuInstance;
  const boot = readFixtureJson<BootFixtureInfo>(FIXTURES.bootMicrobitJson).addresses;
  const idle = boot['idle']!;
  const LOAD = 0x20000000;
  const BUF = 0x20000800;
  const SP = 0x20002000;

  beforeAll(async () => {
    q = await startQemu({ machine: 'microbit' });
  });
  afterAll(async () => {
    await q?.stop();
  });

  test('nvmc-nrf51.flm erases and programs pages 0x10000 and 0x10400 through the NVMC', async () => {
    const info = readFixtureJson(FIXTURES.nvmcNrf51Json);
    const site: CallSite = { load: LOAD, info, sp: SP, trap: idle };
    const data = pattern(1024, 4);
    const out = await gdbRun(q.connectOptions, [
      `restore ${FIXTURES.nvmcNrf51Blob} binary ${hex(LOAD)}`,
      ...writeBytes(BUF, data),
      `hbreak *${hex(idle)}`,
      'printf "BEFORE 0x%x\\n", *(unsigned int*)0x10000',
      ...call(site, 'init', 'Init', [0, 16_000_000, 1]),
      ...call(site, 'erase', 'EraseSector', [0x10000]),
      ...call(site, 'erase2', 'EraseSector', [0x10400]),
      ...call(site, 'erase-misaligned', 'EraseSector', [0x10004]),
      ...call(site, 'blank', 'BlankCheck', [0x10000, 0x800, 0xff]),
      ...call(site, 'program', 'ProgramPage', [0x10000, 1024, BUF]),
      ...call(site, 'program-short', 'ProgramPage', [0x10400, 6, BUF]),
      ...call(site, 'program-cross', 'ProgramPage', [0x10200, 1024, BUF]),
      ...call(site, 'verify', 'Verify', [0x10000, 1024, BUF]),
      ...call(site, 'verify-bad', 'Verify', [0x10400, 8, BUF]),
      ...call(site, 'uninit', 'UnInit', [2]),
    ]);
    expect(out).toContain('BEFORE 0x0');
    const r = results(out, idle);
    expect(r).toEqual({
      init: 0,
      erase: 0,
      erase2: 0,
      'erase-misaligned': 1,
      blank: 0,
      program: 0,
      'program-short': 0,
      'program-cross': 1,
      verify: 0x10400,
      'verify-bad': 0x10406,
      uninit: 0,
    });
    const flash = await gdbReadMemory(q.connectOptions, 0x10000, 0x800);
    expect(flash.subarray(0, 1024)).toEqual(data);
    expect(flash.subarray(1024, 1030)).toEqual(data.subarray(0, 6));
    expect(flash.subarray(1030).every((x) => x === 0xff)).toBe(true);
  });
});
