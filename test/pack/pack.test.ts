/**
 * Packs end to end without a target: an Alif-like pack (Alif's PDSC structure,
 * our NOR-simulator FLMs) resolves to both flash regions with their algorithms
 * and RAM, and both algorithms load; the same from an unpacked folder; the
 * QEMU an547 test pack; and the typed errors of broken packs.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { FileError, FormatError, UsageError } from '../../lib/errors.js';
import { listDevices, openPack, openPackArchive, resolveDevice, type PackDevice } from '../../lib/pack/pack.js';
import { rejection } from '../helpers/errors.js';
import { formatError } from '../helpers/errors.js';
import { ALIF_DEVICE, AN547_TEST_DEVICE, AN547_TEST_RAM, alifLikePack, alifLikePdsc, an547TestPack } from '../helpers/test-pack.js';
import { writeZip } from '../helpers/zip-writer.js';

const PACK = 'AlifSemiconductor.Ensemble.1.3.0.pack';
const tmp = mkdtempSync(join(tmpdir(), 'rspflash-pack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What `rspflash info --pack … --device …` would show, as data. */
function summary(device: PackDevice) {
  return device.regions.map((r) => ({
    start: r.start,
    size: r.size,
    memory: r.memory,
    algorithms: r.algorithms.map((a) => {
      const algo = loadAlgorithm(a.bytes, a.source);
      return { path: a.path, ram: a.ram, default: a.default, flash: algo.name, address: algo.geometry.start, length: algo.geometry.size };
    }),
  }));
}

const ALIF_REGIONS = [
  {
    start: 0x80000000,
    size: 0x580000,
    memory: 'MRAM',
    algorithms: [
      {
        path: 'Flash/algorithms/Ensemble.FLM',
        ram: { start: 0, size: 0x20000 },
        default: true,
        flash: 'rspflash NOR simulator (Alif MRAM window)',
        address: 0x80000000,
        length: 0x580000,
      },
    ],
  },
  {
    start: 0xc0000000,
    size: 0x2000000,
    memory: undefined,
    algorithms: [
      {
        path: 'Flash/algorithms/Ensemble_IS25WX256.FLM',
        ram: { start: 0, size: 0x40000 },
        default: true,
        flash: 'rspflash NOR simulator (Alif geometry)',
        address: 0xc0000000,
        length: 0x2000000,
      },
    ],
  },
];

describe('an Alif-like pack', () => {
  it('resolves AE722F80F55D5LS on M55_HP to both flash regions, each with its algorithm (which loads) and RAM', async () => {
    const pack = openPackArchive(alifLikePack(), PACK);
    const device = await resolveDevice(pack, ALIF_DEVICE, { core: 'M55_HP' });
    expect(device.pack).toEqual({ vendor: 'AlifSemiconductor', name: 'Ensemble', version: '1.3.0-rc6', source: PACK });
    expect(device.processor.pname).toBe('M55_HP');
    expect(summary(device)).toEqual(ALIF_REGIONS);
    expect(device.regions[1]!.algorithms[0]!.source).toBe(`${PACK}:Flash/algorithms/Ensemble_IS25WX256.FLM`);
  });

  it('reads the same from an unpacked pack folder, and from its .pdsc path', async () => {
    const dir = join(tmp, 'AlifSemiconductor', 'Ensemble', '1.3.0-rc6');
    mkdirSync(join(dir, 'Flash', 'algorithms'), { recursive: true });
    writeFileSync(join(dir, 'AlifSemiconductor.Ensemble.pdsc'), alifLikePdsc());
    const archive = openPackArchive(alifLikePack(), PACK);
    for (const file of ['Ensemble.FLM', 'Ensemble_IS25WX256.FLM']) {
      writeFileSync(join(dir, 'Flash', 'algorithms', file), await archive.files.read(`Flash/algorithms/${file}`));
    }
    for (const path of [dir, join(dir, 'AlifSemiconductor.Ensemble.pdsc')]) {
      const device = await resolveDevice(await openPack(path), ALIF_DEVICE, { core: 'M55_HE' });
      expect(summary(device)).toEqual(ALIF_REGIONS);
    }
  });

  it('opens a .pack file from disk', async () => {
    const file = join(tmp, PACK);
    writeFileSync(file, alifLikePack());
    const pack = await openPack(file);
    expect(listDevices(pack).map((d) => d.name)).toEqual(['AE722F80F55D5AS', ALIF_DEVICE]);
    expect(listDevices(pack, '*LS').map((d) => d.name)).toEqual([ALIF_DEVICE]);
  });

  it('needs --core, and names the processors', async () => {
    const err = await rejection(resolveDevice(openPackArchive(alifLikePack(), PACK), ALIF_DEVICE));
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/2 processors \(M55_HP, M55_HE\): choose one with `core`/);
  });

  it('lists close matches for a device it does not have', async () => {
    const err = await rejection(resolveDevice(openPackArchive(alifLikePack(), PACK), 'AE722F80F55D5LX', { core: 'M55_HP' }));
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/no device "AE722F80F55D5LX" in AlifSemiconductor\.Ensemble; close matches: AE722F80F55D5LS, AE722F80F55D5AS/);
  });
});

describe('the QEMU an547 test pack', () => {
  it('describes two flash regions with the NOR simulators at 0x80000000 and 0xC0000000, in ISRAM', async () => {
    const file = join(tmp, 'rspflash.QEMU_AN547_DFP.1.0.0.pack');
    const { device: name } = an547TestPack(file);
    const device = await resolveDevice(await openPack(file), name);
    expect(name).toBe(AN547_TEST_DEVICE);
    expect(device.processor).toMatchObject({ core: 'Cortex-M55' });
    expect(summary(device)).toEqual([
      {
        start: 0x80000000,
        size: 0x580000,
        memory: 'MRAM',
        algorithms: [expect.objectContaining({ path: 'Flash/nor-sim-mram.flm', ram: AN547_TEST_RAM.mram, address: 0x80000000, length: 0x580000 })],
      },
      {
        start: 0xc0000000,
        size: 0x2000000,
        memory: undefined,
        algorithms: [expect.objectContaining({ path: 'Flash/nor-sim.flm', ram: AN547_TEST_RAM.ospi, address: 0xc0000000, length: 0x2000000 })],
      },
    ]);
  });
});

describe('broken packs end in a FormatError', () => {
  const pdscWith = (algorithm: string) =>
    alifLikePdsc().replace(/<algorithm name="Flash\/algorithms\/Ensemble\.FLM"/, `<algorithm name="${algorithm}"`);

  it('an algorithm file the pack does not have', async () => {
    const bytes = writeZip([{ name: 'AlifSemiconductor.Ensemble.pdsc', data: alifLikePdsc() }]);
    const err = await rejection(resolveDevice(openPackArchive(bytes, PACK), ALIF_DEVICE, { core: 'M55_HP' }));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).source).toBe(PACK);
    expect((err as Error).message).toBe(`${PACK}: the PDSC refers to "Flash/algorithms/Ensemble.FLM", which is not in the pack`);
  });

  it.each([
    ['..\\..\\secret.FLM', /"\.\.\/\.\.\/secret\.FLM": the name contains a "\.\." segment/],
    ['/etc/passwd', /absolute path/],
  ])('a PDSC that points outside the pack: %s', async (path, pattern) => {
    const bytes = writeZip([{ name: 'AlifSemiconductor.Ensemble.pdsc', data: pdscWith(path) }]);
    const err = await rejection(resolveDevice(openPackArchive(bytes, PACK), ALIF_DEVICE, { core: 'M55_HP' }));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(pattern);
  });

  it('a folder pack whose algorithm is a symbolic link out of the folder', async () => {
    const dir = join(tmp, 'symlinked');
    mkdirSync(join(dir, 'Flash', 'algorithms'), { recursive: true });
    writeFileSync(join(dir, 'A.pdsc'), alifLikePdsc());
    writeFileSync(join(tmp, 'outside.FLM'), 'secret');
    symlinkSync(join(tmp, 'outside.FLM'), join(dir, 'Flash', 'algorithms', 'Ensemble.FLM'));
    const err = await rejection(resolveDevice(await openPack(dir), ALIF_DEVICE, { core: 'M55_HP' }));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/leads outside the pack folder/);
  });

  it('a pack without a PDSC, or with two', () => {
    expect(formatError(() => openPackArchive(writeZip([{ name: 'Flash/a.FLM', data: 'x' }]), PACK)).message).toMatch(/no \.pdsc file/);
    expect(
      formatError(() => openPackArchive(writeZip([{ name: 'a.pdsc', data: '<package/>' }, { name: 'b.pdsc', data: '<package/>' }]), PACK)).message,
    ).toMatch(/several \.pdsc files at the root of the pack \(a\.pdsc, b\.pdsc\)/);
  });

  it('finds the PDSC of a pack zipped with its folder', async () => {
    const bytes = writeZip([
      { name: 'Ensemble/AlifSemiconductor.Ensemble.pdsc', data: alifLikePdsc() },
      { name: 'Ensemble/Flash/algorithms/Ensemble.FLM', data: await openPackArchive(alifLikePack(), PACK).files.read('Flash/algorithms/Ensemble.FLM') },
    ]);
    const pack = openPackArchive(bytes, PACK);
    expect(pack.pdscPath).toBe('Ensemble/AlifSemiconductor.Ensemble.pdsc');
    expect((await pack.files.read('Flash/algorithms/Ensemble.FLM')).length).toBeGreaterThan(0);
  });

  it('a pack path that does not exist is a FileError with the reason', async () => {
    const err = await rejection(openPack(join(tmp, 'missing.pack')));
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).reason).toBe('ENOENT');
  });

  it('a truncated pack', () => {
    const bytes = alifLikePack();
    expect(formatError(() => openPackArchive(bytes.subarray(0, bytes.length - 10), PACK)).message).toMatch(/not a zip archive/);
  });
});
