/**
 * CMSIS packs, several flash regions, several images and the project file
 * through the built CLI (dist/bin/rspflash.js), as a user runs them: the QEMU
 * an547 test pack programs a two-region HEX in one run (checked by reading
 * back with gdb-multiarch), `info`/`devices` read an Alif-shaped pack, an
 * installed pack is found by device name (and by `--board alif-e7-hp`),
 * `rspflash program` with only `rspflash.json` runs the project, and what is
 * refused is refused before connecting.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImage, imageToIntelHex } from '../lib/index.js';
import { FIXTURES, startQemu, type QemuInstance } from './helpers/qemu.js';
import { gdbReadMemory } from './helpers/gdb-multiarch.js';
import { seededBytes } from './helpers/bytes.js';
import { assertCliBuilt, runCli } from './helpers/cli.js';
import { ALIF_DEVICE, AN547_TEST_DEVICE, alifLikePack, alifLikePdsc, an547TestPack } from './helpers/test-pack.js';

const MRAM = 0x80000000;
const OSPI = 0xc0000000;
/** Nothing listens here: a command that got as far as connecting would fail with exit 3, not 2. */
const NOWHERE = '127.0.0.1:1';

let qemu: QemuInstance;
let work: string;
let an547: string;
let alif: string;
let packRoot: string;
let emptyRoot: string;

/** Runs the CLI in `work` (or `cwd`), with no installed packs unless `env` names a CMSIS_PACK_ROOT, and its recovery journals in the test's folder. */
const run = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
  runCli(args, { cwd: options.cwd ?? work, env: { XDG_CACHE_HOME: join(work, 'cache'), CMSIS_PACK_ROOT: emptyRoot, ...options.env } });

const write = (name: string, data: Uint8Array | string) => {
  const path = join(work, name);
  writeFileSync(path, data);
  return path;
};
const gdb = () => ['--gdb', `${qemu.host}:${qemu.port}`];
const pack = () => ['--pack', an547, '--device', AN547_TEST_DEVICE];

beforeAll(async () => {
  assertCliBuilt();
  work = mkdtempSync(join(tmpdir(), 'rspflash-cli-pack-'));
  an547 = join(work, 'rspflash.QEMU_AN547_DFP.1.0.0.pack');
  an547TestPack(an547);
  alif = write('AlifSemiconductor.Ensemble.1.3.0-rc6.pack', alifLikePack());
  // An installed pack as cpackget lays it out: <root>/<Vendor>/<Name>/<version>/<Vendor>.<Name>.pdsc.
  packRoot = join(work, 'packs');
  const dir = join(packRoot, 'AlifSemiconductor', 'Ensemble', '1.3.0-rc6');
  mkdirSync(join(dir, 'Flash', 'algorithms'), { recursive: true });
  writeFileSync(join(dir, 'AlifSemiconductor.Ensemble.pdsc'), alifLikePdsc());
  writeFileSync(join(dir, 'Flash', 'algorithms', 'Ensemble.FLM'), readFileSync(join(FIXTURES.dir, 'nor-sim-mram.flm')));
  writeFileSync(join(dir, 'Flash', 'algorithms', 'Ensemble_IS25WX256.FLM'), readFileSync(FIXTURES.norSim));
  emptyRoot = join(work, 'no-packs');
  mkdirSync(emptyRoot);
  qemu = await startQemu({ machine: 'mps3-an547', transport: 'tcp' });
});

afterAll(async () => {
  await qemu?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('packs without a target', () => {
  it('devices --pack lists the devices, with their cores when they have several', async () => {
    const r = await run(['devices', '--pack', alif]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${ALIF_DEVICE} +Ensemble / E7  cores M55_HP, M55_HE`));
    expect(r.stdout).toMatch(/AE722F80F55D5AS/);
    const json = JSON.parse((await run(['devices', '--pack', an547, '--json'])).stdout);
    expect(json.devices).toEqual([expect.objectContaining({ device: AN547_TEST_DEVICE, family: 'QEMU MPS3', pack: 'rspflash.QEMU_AN547_DFP 1.0.0' })]);
  });

  it('devices without --pack looks through the installed packs, and filters by pattern', async () => {
    const r = await run(['devices', '*D5LS', '--json'], { env: { CMSIS_PACK_ROOT: packRoot } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).devices.map((d: { device: string }) => d.device)).toEqual([ALIF_DEVICE]);
  });

  it('info --pack --device --core shows both flash regions with their algorithms and RAM', async () => {
    const r = await run(['info', '--pack', alif, '--device', ALIF_DEVICE, '--core', 'M55_HP']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Device AE722F80F55D5LS M55_HP \(Ensemble \/ E7\) from AlifSemiconductor.Ensemble 1.3.0-rc6/);
    expect(r.stdout).toMatch(/flash {2}0x80000000..0x8057ffff MRAM/);
    expect(r.stdout).toMatch(/uses {3}0x80000000..0x80580000 Flash\/algorithms\/Ensemble.FLM \(default\), RAM 0x00000000\+0x00020000/);
    expect(r.stdout).toMatch(/flash {2}0xc0000000..0xc1ffffff, 32 MiB/);
    expect(r.stdout).toMatch(/uses {3}0xc0000000..0xc2000000 Flash\/algorithms\/Ensemble_IS25WX256.FLM \(default\), RAM 0x00000000\+0x00040000/);
    const json = JSON.parse((await run(['info', '--pack', alif, '--device', ALIF_DEVICE, '--core', 'M55_HE', '--json'])).stdout);
    expect(json.device.processor.pname).toBe('M55_HE');
    expect(json.device.regions.map((g: { start: number; ram: unknown }) => [g.start, g.ram])).toEqual([
      [MRAM, { start: 0, size: 0x20000 }],
      [OSPI, { start: 0, size: 0x40000 }],
    ]);
  });

  it('--board alif-e7-hp finds the installed Alif pack: no --algo, and the OSPI region is not memory mapped', async () => {
    const r = await run(['info', '--board', 'alif-e7-hp', '--json'], { env: { CMSIS_PACK_ROOT: packRoot } });
    expect(r.code, r.stdout).toBe(0);
    const { device } = JSON.parse(r.stdout);
    expect(device).toMatchObject({ name: ALIF_DEVICE, processor: { pname: 'M55_HP' } });
    expect(device.regions.map((g: { start: number; memoryMapped: boolean }) => [g.start, g.memoryMapped])).toEqual([
      [MRAM, true],
      [OSPI, false],
    ]);
  });

  it('--board alif-e7-hp without an installed pack asks for --algo and says where the pack comes from', async () => {
    const r = await run(['program', write('e.bin', new Uint8Array(16)), '--base', '0xC0000000', '--board', 'alif-e7-hp', '--gdb', NOWHERE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--algo FILE is required: no installed pack defines device "AE722F80F55D5LS"/);
    expect(r.stderr).toMatch(/cpackget add AlifSemiconductor::Ensemble/);
  });

  it('a device that is not in the pack: refused with close matches; several cores and no --core: names them', async () => {
    const missing = await run(['info', '--pack', alif, '--device', 'AE722F80F55D5L']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/AE722F80F55D5L/);
    expect(missing.stderr).toMatch(/AE722F80F55D5LS/);
    const cores = await run(['info', '--pack', alif, '--device', ALIF_DEVICE]);
    expect(cores.code).toBe(2);
    expect(cores.stderr).toMatch(/2 processors \(M55_HP, M55_HE\)/);
    expect(cores.stderr).toMatch(/--core PNAME/);
    const installed = await run(['info', '--device', 'AE722F80F55D5XX'], { env: { CMSIS_PACK_ROOT: packRoot } });
    expect(installed.code).toBe(2);
    expect(installed.stderr).toMatch(/no installed pack defines device "AE722F80F55D5XX".*close matches: .*AE722F80F55D5LS/);
  });

  it('plan --json over two regions: one job per region, each with its own algorithm', async () => {
    const hex = write('plan.hex', imageToIntelHex(createImage([{ address: MRAM, data: seededBytes(8192, 1) }, { address: OSPI + 0x1000, data: seededBytes(4096, 2) }])));
    const r = await run(['plan', hex, ...pack(), '--json']);
    expect(r.code, r.stdout).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.regions.map((g: { region: { flash: unknown; algorithm: string }; imageBytes: number }) => [g.region.flash, g.imageBytes])).toEqual([
      [{ address: MRAM, length: 0x580000 }, 8192],
      [{ address: OSPI, length: 0x2000000 }, 4096],
    ]);
    expect(doc.totals).toMatchObject({ imageBytes: 12288, sectorsTouched: 3 });
    const text = await run(['plan', hex, ...pack()]);
    expect(text.stdout).toMatch(/^region 1\/2 {2}0x80000000..0x8057ffff .*\(MRAM\): 8192 bytes of the image$/m);
    expect(text.stdout).toMatch(/^region 2\/2 {2}0xc0000000..0xc1ffffff .*: 4096 bytes of the image$/m);
  });
});

describe('refused before connecting (exit 2)', () => {
  it('bytes between the regions, naming the gap', async () => {
    const hex = write('gap.hex', imageToIntelHex(createImage([{ address: MRAM, data: seededBytes(256, 3) }, { address: 0x90000000, data: seededBytes(16, 4) }])));
    const r = await run(['program', hex, ...pack(), '--gdb', NOWHERE]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/outside every flash region: 0x90000000..0x9000000f \(16 bytes, in the gap between 0x80000000..0x8057ffff MRAM and 0xc0000000..0xc1ffffff\)/);
  });

  it('two images that write different bytes to the same address, naming both files', async () => {
    const a = write('a.bin', new Uint8Array(32).fill(1));
    const b = write('b.bin', new Uint8Array(32).fill(2));
    const r = await run(['program', `${a}@0xC0000000`, `${b}@0xC0000010`, ...pack(), '--gdb', NOWHERE]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/a\.bin and .*b\.bin write different bytes at 0xc0000010 \(0x01 vs 0x02\)/);
  });

  it('a project file with an unknown key or a wrong type, with its JSON path', async () => {
    const dir = mkdtempSync(join(work, 'bad-'));
    writeFileSync(join(dir, 'rspflash.json'), JSON.stringify({ gdb: NOWHERE, imagez: ['a.hex'] }));
    const unknown = await run(['program'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/rspflash.json: \$\.imagez: unknown key \(did you mean "images"\?\)/);
    writeFileSync(join(dir, 'rspflash.json'), JSON.stringify({ gdb: NOWHERE, images: [{ file: 'a.bin', base: true }] }));
    const wrong = await run(['program', '--json'], { cwd: dir });
    expect(wrong.code).toBe(2);
    expect(JSON.parse(wrong.stdout).error).toMatchObject({ code: 'RSPFLASH_FORMAT', message: expect.stringMatching(/\$\.images\[0\]\.base: expected an address or size .*got true/) });
  });
});

describe('on QEMU an547 with the test pack', () => {
  it('programs a two-region HEX in one run, each region with its own algorithm; read back independently', async () => {
    const mram = seededBytes(3 * 4096 + 100, 11);
    const ospi = seededBytes(5000, 12);
    const hex = write('two.hex', imageToIntelHex(createImage([{ address: MRAM + 0x2000, data: mram }, { address: OSPI + 0x10000, data: ospi }])));
    const r = await run(['program', hex, ...pack(), ...gdb(), '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.regions.map((g: { region: { algorithm: string }; report: { imageBytes: number } }) => g.report.imageBytes)).toEqual([mram.length, ospi.length]);
    expect(doc.report).toMatchObject({ imageBytes: mram.length + ospi.length, bytesProgrammed: expect.any(Number) });
    expect(doc.info.filter((l: string) => l.startsWith('Connected to'))).toHaveLength(1);
    expect(await gdbReadMemory(qemu.connectOptions, MRAM + 0x2000, mram.length)).toEqual(mram);
    expect(await gdbReadMemory(qemu.connectOptions, OSPI + 0x10000, ospi.length)).toEqual(ospi);
    const again = await run(['verify', hex, ...pack(), ...gdb()]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Verified: .* match the image/);
  });

  it('programs several images (a HEX and a .bin@ADDRESS) merged into one job', async () => {
    const app = seededBytes(1024, 21);
    const ext = seededBytes(6000, 22);
    const hex = write('app.hex', imageToIntelHex(createImage([{ address: MRAM + 0x8000, data: app }])));
    const bin = write('ext_flash.bin', ext);
    const r = await run(['program', hex, `${bin}@0xC0020000`, ...pack(), ...gdb()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Region 1\/2: 1 KiB → 0x80000000..0x8057ffff/);
    expect(r.stderr).toMatch(/Region 2\/2: .* → 0xc0000000..0xc1ffffff/);
    expect(await gdbReadMemory(qemu.connectOptions, MRAM + 0x8000, app.length)).toEqual(app);
    expect(await gdbReadMemory(qemu.connectOptions, 0xc0020000, ext.length)).toEqual(ext);
  });

  it('rspflash program with only rspflash.json runs the project (pack, device, images with bases, verify)', async () => {
    const dir = mkdtempSync(join(work, 'project-'));
    const app = seededBytes(2048, 31);
    const ext = seededBytes(4096 + 17, 32);
    writeFileSync(join(dir, 'app.hex'), imageToIntelHex(createImage([{ address: MRAM + 0x10000, data: app }])));
    writeFileSync(join(dir, 'ext_flash.bin'), ext);
    writeFileSync(
      join(dir, 'rspflash.json'),
      JSON.stringify(
        {
          gdb: `${qemu.host}:${qemu.port}`,
          pack: an547,
          device: AN547_TEST_DEVICE,
          images: ['app.hex', { file: 'ext_flash.bin', base: '0xC0030000' }],
          verify: 'read',
          after: 'halt',
        },
        null,
        2,
      ),
    );
    const r = await run(['program', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.info).toContain('Project rspflash.json');
    expect(doc.regions.map((g: { report: { verify: string } }) => g.report.verify)).toEqual(['read', 'read']);
    expect(await gdbReadMemory(qemu.connectOptions, MRAM + 0x10000, app.length)).toEqual(app);
    expect(await gdbReadMemory(qemu.connectOptions, 0xc0030000, ext.length)).toEqual(ext);
    // Flags override the project: a wrong server on the command line is used (and fails to connect, exit 3).
    const overridden = await run(['program', '--gdb', NOWHERE], { cwd: dir });
    expect(overridden.code).toBe(3);
    // The second run finds every sector unchanged.
    const second = await run(['program'], { cwd: dir });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/unchanged/);
  });
});
