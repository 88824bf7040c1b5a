/**
 * A CMSIS pack opened for flashing: its description (PDSC) and its files, from
 * a `.pack`/`.zip` archive in memory or an unpacked pack folder (as cpackget
 * installs them). {@link resolveDevice} turns a device name (and `--core`)
 * into the flash regions to program, each with its algorithms' bytes and RAM,
 * ready for `loadAlgorithm(bytes, source)`.
 *
 * File-system access is confined to {@link openPack} and the folder reader it
 * builds; everything else works on bytes and is tested without a disk.
 *
 * @example
 * ```ts
 * const pack = await openPack('AlifSemiconductor.Ensemble.1.3.0.pack');
 * const device = await resolveDevice(pack, 'AE722F80F55D5LS', { core: 'M55_HP' });
 * for (const region of device.regions) {
 *   const [first] = region.algorithms;
 *   const algo = loadAlgorithm(first.bytes, first.source);
 *   // program with algo, using first.ram as the RAM region
 * }
 * ```
 * @module
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { FileError, FormatError } from '../errors.js';
import {
  matchPdscDevices,
  parsePdsc,
  resolvePdscDevice,
  type PackDescription,
  type PdscDevice,
  type ResolveDeviceOptions,
  type ResolvedAlgorithm,
  type ResolvedDevice,
} from './pdsc.js';
import { DEFAULT_ZIP_LIMITS, openZip, unsafeNameReason, type ZipLimits } from './zip.js';

/** Read access to the files of a pack, by `/`-separated path relative to its root. */
export interface PackFiles {
  /**
   * The file's bytes. A path that differs only in case is accepted when the
   * exact one is absent (packs are mostly written on Windows).
   * @throws {@link FormatError} if the path is unsafe (`..`, absolute), the
   * file is missing or larger than the limit.
   */
  read(path: string): Promise<Uint8Array>;
}

/** An opened pack. */
export interface CmsisPack {
  /** The archive or folder, as given (for messages). */
  readonly source: string;
  /** Path of the PDSC inside the pack. */
  readonly pdscPath: string;
  /** What the PDSC says: vendor, name, version, devices. */
  readonly description: PackDescription;
  /** Reads files of the pack (algorithm files, on demand). */
  readonly files: PackFiles;
}

/** Options of {@link openPack} and {@link openPackArchive}. */
export interface OpenPackOptions {
  /** Limits for reading the archive (and, for folders, `maxEntrySize` per file). */
  readonly limits?: Partial<ZipLimits>;
}

const decoder = new TextDecoder('utf-8');

/**
 * Opens a pack held in memory as zip bytes (a `.pack` file): finds its PDSC
 * (at the root of the archive, or inside its single top-level folder) and
 * parses it. Algorithm files are inflated only when {@link resolveDevice} asks.
 *
 * @throws {@link FormatError} for a damaged or hostile archive, no PDSC or
 * several, or a malformed PDSC.
 */
export function openPackArchive(bytes: Uint8Array, source: string, options: OpenPackOptions = {}): CmsisPack {
  const zip = openZip(bytes, source, options.limits);
  const files = zip.entries.filter((e) => !e.directory).map((e) => e.name);
  const { pdsc, root } = findPdscEntry(files, source);
  const description = parsePdsc(decoder.decode(zip.read(pdsc)), `${source}:${pdsc}`);
  return {
    source,
    pdscPath: pdsc,
    description,
    files: {
      read: (path) => {
        const name = root + checkedPackPath(path, source);
        if (!zip.find(name)) throw missingFile(source, path);
        return Promise.resolve(zip.read(name));
      },
    },
  };
}

/** The PDSC of an archive: at its root, or in its only top-level folder (some packs are zipped with their folder). */
function findPdscEntry(names: readonly string[], source: string): { pdsc: string; root: string } {
  const isPdsc = (n: string) => n.toLowerCase().endsWith('.pdsc');
  let root = '';
  let found = names.filter((n) => isPdsc(n) && !n.includes('/'));
  if (found.length === 0) {
    const tops = new Set(names.map((n) => n.split('/')[0]));
    if (tops.size === 1) {
      root = `${[...tops][0]}/`;
      found = names.filter((n) => isPdsc(n) && n.startsWith(root) && !n.slice(root.length).includes('/'));
    }
  }
  if (found.length === 0) throw new FormatError(`${source}: no .pdsc file at the root of the pack`, source);
  if (found.length > 1) throw new FormatError(`${source}: several .pdsc files at the root of the pack (${found.join(', ')})`, source);
  return { pdsc: found[0]!, root };
}

/** `path` as a safe relative pack path (`\` taken as `/`), or a FormatError. */
function checkedPackPath(path: string, source: string): string {
  const normal = path.replace(/\\/g, '/');
  const problem = unsafeNameReason(normal);
  if (problem) throw new FormatError(`${source}: the PDSC refers to ${JSON.stringify(path)}: ${problem}`, source);
  return normal;
}

function missingFile(source: string, path: string): FormatError {
  return new FormatError(`${source}: the PDSC refers to ${JSON.stringify(path)}, which is not in the pack`, source);
}

/**
 * Opens a pack from the file system: a `.pack`/`.zip` archive, an unpacked
 * pack folder (holding exactly one `.pdsc`), or a `.pdsc` file (its folder is
 * the pack). The only file-system reads of lib/pack are here.
 *
 * @throws {@link FormatError} as {@link openPackArchive}, or for a folder
 * without exactly one PDSC; {@link FileError} if the path cannot be read.
 */
export async function openPack(path: string, options: OpenPackOptions = {}): Promise<CmsisPack> {
  const limits: ZipLimits = { ...DEFAULT_ZIP_LIMITS, ...options.limits };
  const fileError = (err: unknown): never => {
    throw err instanceof FormatError ? err : FileError.fromSystemError(err, path);
  };
  const info = await stat(path).catch(fileError);
  let dir: string;
  let pdscName: string;
  if (info.isDirectory()) {
    dir = path;
    const pdscs = (await readdir(dir).catch(fileError)).filter((n) => n.toLowerCase().endsWith('.pdsc')).sort();
    if (pdscs.length !== 1) {
      throw new FormatError(
        pdscs.length === 0 ? `${path}: no .pdsc file in the pack folder` : `${path}: several .pdsc files in the pack folder (${pdscs.join(', ')})`,
        path,
      );
    }
    pdscName = pdscs[0]!;
  } else if (path.toLowerCase().endsWith('.pdsc')) {
    dir = dirname(path);
    pdscName = basename(path);
  } else {
    if (info.size > limits.maxTotalSize) {
      throw new FormatError(`${path}: ${info.size} bytes, more than the ${limits.maxTotalSize} accepted for a pack`, path);
    }
    return openPackArchive(new Uint8Array(await readFile(path).catch(fileError)), path, options);
  }
  const files = folderFiles(dir, limits.maxEntrySize);
  const description = parsePdsc(decoder.decode(await files.read(pdscName)), join(dir, pdscName));
  return { source: dir, pdscPath: pdscName, description, files };
}

/** Reads files of an unpacked pack, never outside its folder (no `..`, no symlinks out). */
function folderFiles(dir: string, maxSize: number): PackFiles {
  let rootReal: Promise<string> | undefined; // resolved on first read, not before (no dangling promise)
  /** `path` with each segment matched case-insensitively where the exact name is missing. */
  const locate = async (segments: readonly string[]): Promise<string | undefined> => {
    let at = dir;
    for (const segment of segments) {
      const exact = join(at, segment);
      if (await stat(exact).then(() => true, () => false)) {
        at = exact;
        continue;
      }
      const names = await readdir(at).catch(() => [] as string[]);
      const match = names.filter((n) => n.toLowerCase() === segment.toLowerCase());
      if (match.length !== 1) return undefined;
      at = join(at, match[0]!);
    }
    return at;
  };
  return {
    read: async (path) => {
      const relative = checkedPackPath(path, dir);
      const file = await locate(relative.split('/'));
      if (!file) throw missingFile(dir, path);
      const real = await realpath(file);
      rootReal ??= realpath(dir);
      if (!real.startsWith((await rootReal) + sep)) {
        throw new FormatError(`${dir}: ${JSON.stringify(path)} leads outside the pack folder (a symbolic link?)`, dir);
      }
      const info = await stat(real);
      if (!info.isFile()) throw missingFile(dir, path);
      if (info.size > maxSize) throw new FormatError(`${dir}: ${path} is ${info.size} bytes, more than the ${maxSize} accepted`, dir);
      return new Uint8Array(
        await readFile(real).catch((err: unknown) => {
          throw FileError.fromSystemError(err, file);
        }),
      );
    },
  };
}

/**
 * The devices (and variants) of a pack whose name matches `pattern` (`*`/`?`
 * wildcards, else a substring; case ignored), in PDSC order.
 */
export function listDevices(pack: CmsisPack, pattern?: string): PdscDevice[] {
  return matchPdscDevices(pack.description.devices, pattern);
}

/** An algorithm of a {@link PackDevice}, with its file's bytes. */
export interface PackAlgorithm extends ResolvedAlgorithm {
  /** The algorithm file (an FLM, i.e. ELF). */
  readonly bytes: Uint8Array;
  /** Names the file for messages and for `loadAlgorithm(bytes, source)`: `PACK:PATH`. */
  readonly source: string;
}

/**
 * A flash range of the device and the algorithms that program it, the
 * default one first. Ranges come from the algorithms (a PDSC need not declare
 * external flash as `<memory>`: Alif's OSPI1 is only in its `<algorithm>`).
 */
export interface PackFlashRegion {
  /** First address of the range. */
  readonly start: number;
  /** Size of the range, bytes. */
  readonly size: number;
  /** Name of the `<memory>` that contains the range, if the PDSC declares one. */
  readonly memory?: string;
  /** The algorithms that program the range, the default one first. */
  readonly algorithms: readonly PackAlgorithm[];
}

/** A device of a pack resolved for one processor, with its algorithms loaded from the pack. */
export interface PackDevice extends ResolvedDevice {
  /** Which pack: vendor, name, newest release, file or folder. */
  readonly pack: {
    /** Pack vendor, e.g. `AlifSemiconductor`. */
    readonly vendor: string;
    /** Pack name, e.g. `Ensemble`. */
    readonly name: string;
    /** Newest release in the PDSC, if any. */
    readonly version?: string;
    /** The archive or folder, as given. */
    readonly source: string;
  };
  /** The flash regions by address. */
  readonly regions: readonly PackFlashRegion[];
}

/**
 * Resolves device `name` (and `core`, its `Pname`, when it has several
 * processors) and reads each of its algorithm files from the pack.
 *
 * @throws {@link UsageError} for an unknown device (with close matches), a
 * missing or unknown `core` (naming the processors).
 * @throws {@link FormatError} if an algorithm file is missing from the pack
 * or the PDSC refers to a path outside it.
 */
export async function resolveDevice(pack: CmsisPack, name: string, options: ResolveDeviceOptions = {}): Promise<PackDevice> {
  const resolved = resolvePdscDevice(pack.description, name, options);
  const regions: { start: number; size: number; memory?: string; algorithms: PackAlgorithm[] }[] = [];
  for (const algorithm of resolved.algorithms) {
    const bytes = await pack.files.read(algorithm.path);
    const loaded: PackAlgorithm = { ...algorithm, bytes, source: `${pack.source}:${algorithm.path}` };
    const region = regions.find((r) => r.start === algorithm.start && r.size === algorithm.size);
    if (region) {
      region.algorithms.push(loaded);
      continue;
    }
    const memory = resolved.memories.find((m) => m.start <= algorithm.start && algorithm.start + algorithm.size <= m.start + m.size);
    regions.push({ start: algorithm.start, size: algorithm.size, ...(memory ? { memory: memory.name } : {}), algorithms: [loaded] });
  }
  const { description } = pack;
  return {
    ...resolved,
    pack: {
      vendor: description.vendor,
      name: description.name,
      ...(description.version ? { version: description.version } : {}),
      source: pack.source,
    },
    regions,
  };
}
