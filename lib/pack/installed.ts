/**
 * Packs installed the way Arm's `cpackget` (CMSIS-Toolbox) installs them, so
 * `--device NAME` works without `--pack` for anyone who set up the toolbox.
 *
 * The pack root is `CMSIS_PACK_ROOT`, else cpackget's default
 * (Open-CMSIS-Pack/cpackget, `cmd/installer/root.go`, `GetDefaultCmsisPackRoot`):
 * on Windows `%LOCALAPPDATA%\Arm\Packs` (or `%USERPROFILE%\AppData\Local\Arm\Packs`),
 * elsewhere — Linux and macOS alike — `$XDG_CACHE_HOME/arm/packs`, or
 * `$HOME/.cache/arm/packs` when `XDG_CACHE_HOME` is unset.
 *
 * Layout under the root: `<Vendor>/<Name>/<version>/` holds one unpacked pack
 * with its `<Vendor>.<Name>.pdsc`. cpackget's own folders start with a dot and
 * are skipped: `.Web/` (PDSC files downloaded from the index, describing packs
 * that are *not* installed), `.Download/` (the `.pack` archives), `.Local/`
 * (the index of packs registered from a local folder).
 *
 * @module
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileError, UsageError } from '../errors.js';
import { openPack, type CmsisPack, type OpenPackOptions } from './pack.js';
import { closeMatches, parsePdsc } from './pdsc.js';
import { comparePackVersions } from './version.js';

/** What decides the pack root: the environment, the OS, the home directory (parameters, so tests do not depend on the machine). */
export interface PackRootContext {
  /** The environment (`process.env`): `CMSIS_PACK_ROOT` and the variables cpackget derives the default from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** `process.platform`. */
  readonly platform: NodeJS.Platform;
  /** `os.homedir()`, used when `HOME` is not set. */
  readonly home?: string;
}

/**
 * cpackget's default pack root for `context`, or `undefined` if the
 * environment gives nothing to build it from.
 *
 * @example
 * ```ts
 * defaultPackRoot({ env: { HOME: '/home/ada' }, platform: 'linux' }); // '/home/ada/.cache/arm/packs'
 * ```
 */
export function defaultPackRoot(context: PackRootContext): string | undefined {
  const { env } = context;
  if (context.platform === 'win32') {
    const local = env.LOCALAPPDATA || (env.USERPROFILE ? `${env.USERPROFILE}\\AppData\\Local` : undefined);
    return local ? `${local}\\Arm\\Packs` : undefined;
  }
  const cache = env.XDG_CACHE_HOME || (env.HOME || context.home ? `${env.HOME || context.home}/.cache` : undefined);
  return cache ? `${cache}/arm/packs` : undefined;
}

/** `CMSIS_PACK_ROOT` if set, else {@link defaultPackRoot}. */
export function packRoot(context: PackRootContext): string | undefined {
  return context.env.CMSIS_PACK_ROOT || defaultPackRoot(context);
}

/** One installed pack version. */
export interface InstalledPack {
  /** Pack vendor, e.g. `AlifSemiconductor`. */
  readonly vendor: string;
  /** Pack name, e.g. `Ensemble`. */
  readonly name: string;
  /** The version folder, e.g. `1.3.4`. */
  readonly version: string;
  /** `<root>/<Vendor>/<Name>/<version>`. */
  readonly dir: string;
  /** The PDSC file in `dir`. */
  readonly pdsc: string;
}

/**
 * Every pack version under `root`, newest first (semver precedence; among
 * equal versions by vendor and name). A root that does not exist has none.
 */
export async function listInstalledPacks(root: string): Promise<InstalledPack[]> {
  const dirs = async (path: string) =>
    (await readdir(path, { withFileTypes: true }).catch(() => []))
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name);
  const found: InstalledPack[] = [];
  for (const vendor of await dirs(root)) {
    for (const name of await dirs(join(root, vendor))) {
      for (const version of await dirs(join(root, vendor, name))) {
        const dir = join(root, vendor, name, version);
        const pdscs = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.toLowerCase().endsWith('.pdsc'));
        const pdsc = pdscs.find((f) => f === `${vendor}.${name}.pdsc`) ?? (pdscs.length === 1 ? pdscs[0] : undefined);
        if (pdsc) found.push({ vendor, name, version, dir, pdsc: join(dir, pdsc) });
      }
    }
  }
  return sortNewestFirst(found);
}

/** Sorts pack versions newest first (semver precedence), ties by `Vendor.Name`. */
export function sortNewestFirst(packs: readonly InstalledPack[]): InstalledPack[] {
  const id = (p: InstalledPack) => `${p.vendor}.${p.name}`;
  return [...packs].sort((a, b) => comparePackVersions(b.version, a.version) || (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
}

/** What {@link findInstalledPack} found. */
export interface InstalledDevicePack {
  /** Where the pack is installed. */
  readonly installed: InstalledPack;
  /** The pack, opened. */
  readonly pack: CmsisPack;
}

/**
 * The newest installed pack that defines device `name` (a device or variant,
 * case ignored), opened.
 *
 * @throws {@link UsageError} if no installed pack defines it, naming close
 * matches from all installed packs and the root searched.
 */
export async function findInstalledPack(name: string, root: string, options: OpenPackOptions = {}): Promise<InstalledDevicePack> {
  const packs = await listInstalledPacks(root);
  const wanted = name.toUpperCase();
  const allNames: string[] = [];
  const texts = new Map<InstalledPack, string>();
  for (const installed of packs) {
    const text = await readFile(installed.pdsc, 'utf8').catch((err: unknown) => {
      throw FileError.fromSystemError(err, installed.pdsc);
    });
    texts.set(installed, text);
    // Cheap test before parsing: the name must appear in the text.
    if (!text.toUpperCase().includes(wanted)) continue;
    const description = parsePdsc(text, installed.pdsc);
    if (description.devices.some((d) => d.name.toUpperCase() === wanted)) {
      return { installed, pack: await openPack(installed.dir, options) };
    }
  }
  // Not found: parse everything once for suggestions (only on this error path).
  for (const [installed, text] of texts) {
    try {
      allNames.push(...parsePdsc(text, installed.pdsc).devices.map((d) => d.name));
    } catch {
      // A broken PDSC elsewhere does not hide the real problem.
    }
  }
  const close = closeMatches(name, [...new Set(allNames)]);
  throw new UsageError(
    `no installed pack defines device ${JSON.stringify(name)} (searched ${packs.length} packs in ${root})` +
      (close.length > 0 ? `; close matches: ${close.join(', ')}` : ''),
    { hint: 'Install its pack with `cpackget add Vendor::Name`, set CMSIS_PACK_ROOT, or give the pack itself as `pack`.' },
  );
}
