/**
 * Installed packs found the way cpackget lays them out: the pack root per OS
 * and environment (taken as parameters, so the machine does not matter), and
 * the newest version that defines a device in a root built in a temp folder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/errors.js';
import { defaultPackRoot, findInstalledPack, listInstalledPacks, packRoot } from '../../lib/pack/installed.js';
import { resolveDevice } from '../../lib/pack/pack.js';
import { rejection } from '../helpers/errors.js';
import { ALIF_DEVICE, alifLikePdsc } from '../helpers/test-pack.js';

describe('the pack root (cpackget GetDefaultCmsisPackRoot)', () => {
  it.each([
    ['linux', { HOME: '/home/ada' }, undefined, '/home/ada/.cache/arm/packs'],
    ['linux', { HOME: '/home/ada', XDG_CACHE_HOME: '/var/cache/ada' }, undefined, '/var/cache/ada/arm/packs'],
    ['darwin', { HOME: '/Users/ada' }, undefined, '/Users/ada/.cache/arm/packs'],
    ['linux', {}, '/home/fallback', '/home/fallback/.cache/arm/packs'],
    ['win32', { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local', HOME: 'ignored' }, undefined, 'C:\\Users\\ada\\AppData\\Local\\Arm\\Packs'],
    ['win32', { USERPROFILE: 'C:\\Users\\ada' }, undefined, 'C:\\Users\\ada\\AppData\\Local\\Arm\\Packs'],
    ['linux', {}, undefined, undefined],
  ] as const)('on %s with %j (home %s) is %s', (platform, env, home, expected) => {
    expect(defaultPackRoot({ env, platform, ...(home ? { home } : {}) })).toBe(expected);
  });

  it('is CMSIS_PACK_ROOT when set', () => {
    expect(packRoot({ env: { CMSIS_PACK_ROOT: '/opt/packs', HOME: '/home/ada' }, platform: 'linux' })).toBe('/opt/packs');
  });
});

describe('installed packs', () => {
  const root = mkdtempSync(join(tmpdir(), 'rspflash-packs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const install = (vendor: string, name: string, version: string, pdsc: string) => {
    const dir = join(root, vendor, name, version);
    mkdirSync(join(dir, 'Flash', 'algorithms'), { recursive: true });
    writeFileSync(join(dir, `${vendor}.${name}.pdsc`), pdsc);
    return dir;
  };
  const withoutLs = alifLikePdsc().replace(/<device Dname="AE722F80F55D5LS">[\s\S]*?<\/device>/, '');
  install('AlifSemiconductor', 'Ensemble', '1.2.2', alifLikePdsc());
  install('AlifSemiconductor', 'Ensemble', '1.10.0', withoutLs); // newest, but no longer has the device
  install('AlifSemiconductor', 'Ensemble', '1.3.0-rc6', alifLikePdsc().replace('Ensemble.FLM', 'Ensemble_rc6.FLM'));
  install('AlifSemiconductor', 'Ensemble', '1.3.0', alifLikePdsc().replace('Ensemble.FLM', 'Ensemble_130.FLM'));
  // cpackget's index of downloadable (not installed) packs must be ignored.
  mkdirSync(join(root, '.Web'), { recursive: true });
  writeFileSync(join(root, '.Web', 'AlifSemiconductor.Ensemble.pdsc'), alifLikePdsc().replace('Ensemble.FLM', 'Web.FLM'));

  it('are listed newest first by semver, skipping cpackget folders that start with a dot', async () => {
    expect((await listInstalledPacks(root)).map((p) => p.version)).toEqual(['1.10.0', '1.3.0', '1.3.0-rc6', '1.2.2']);
  });

  it('the newest version that defines the device is the one used', async () => {
    const { installed, pack } = await findInstalledPack(ALIF_DEVICE.toLowerCase(), root);
    expect(installed.version).toBe('1.3.0');
    expect(pack.description.devices.some((d) => d.name === ALIF_DEVICE)).toBe(true);
    const err = await rejection(resolveDevice(pack, ALIF_DEVICE, { core: 'M55_HP' }));
    // The folder holds no FLM files: the error names the one the 1.3.0 PDSC wants.
    expect((err as Error).message).toMatch(/"Flash\/algorithms\/Ensemble_130\.FLM", which is not in the pack/);
  });

  it('a device no installed pack defines ends in a UsageError with close matches and the root', async () => {
    const err = await rejection(findInstalledPack('AE722F80F55D5LX', root));
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(new RegExp(`no installed pack defines device "AE722F80F55D5LX" \\(searched 4 packs in ${root}\\); close matches: AE722F80F55D5LS, AE722F80F55D5AS`));
  });

  it('a root that does not exist holds no packs', async () => {
    expect(await listInstalledPacks(join(root, 'missing'))).toEqual([]);
  });
});
