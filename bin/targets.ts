/**
 * Where the CLI's flash regions come from, and its inputs beyond one file:
 * `--algo` (one or more), a CMSIS pack (`--pack`/`--device`/`--core`, or an
 * installed pack found by device name), a board preset that names its pack
 * device; several images (`FILE@ADDRESS`); the project file `rspflash.json`
 * whose values fill in what the flags leave out. Everything here is checked
 * before connecting.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  FileError,
  PROJECT_FILE,
  UsageError,
  boardMemoryMapped,
  boardPreset,
  findInstalledPack,
  formatRange,
  hex32,
  loadAlgorithm,
  detectImageFormat,
  loadImage,
  openPack,
  packRoot,
  parseProject,
  resolveDevice,
  type BoardPreset,
  type FlashAlgorithm,
  type FlashRegionSpec,
  type Image,
  type ImageFormat,
  type PackDevice,
  type Project,
  type RamRegion,
} from '../lib/index.js';
import { mergeImages } from '../lib/images.js';
import { parseNumber, parseRam } from './args.js';
import type { Console } from './progress.js';

/** The flags that say which flash regions and algorithms a command uses. */
export interface TargetFlags {
  algo?: string[];
  board?: string;
  ram?: string;
  memoryMapped?: boolean;
  pack?: string;
  device?: string;
  core?: string;
  /** Per-algorithm RAM and memoryMapped from the project file, by algorithm path. */
  projectAlgorithms?: Project['algorithms'];
}

/** A flash region as the CLI resolved it: the library's spec plus where its algorithm and RAM came from. */
export interface CliRegion extends FlashRegionSpec {
  readonly ram: RamRegion;
  readonly memoryMapped: boolean;
  /** The algorithm file (path, or `PACK:PATH`). */
  readonly file: string;
}

/** What the flags resolve to. */
export interface Targets {
  readonly board: BoardPreset | undefined;
  /** The regions, by address. */
  readonly regions: readonly CliRegion[];
  /** The pack device, when the algorithms came from a pack. */
  readonly device?: PackDevice;
}

/** Reads an input file; a missing or unreadable one is a {@link FileError} naming it (exit 2). */
export async function readInput(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw FileError.fromSystemError(err, path);
  }
}

/** Commander's collector for an option given more than once (`--algo A --algo B`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * The flash regions the flags name: `--algo` files (RAM from the project
 * file, `--ram` or the board), else the device of `--pack`/`--device` (or of
 * the board's pack entry) with each region's default algorithm and the RAM
 * its PDSC gives (`--ram` overrides). `ram: 'nominal'` plans without any RAM
 * given (`rspflash plan`).
 *
 * @param hint - What to say when no algorithm can be found (e.g. where a board's algorithm comes from).
 */
export async function resolveTargets(
  flags: TargetFlags,
  con: Console,
  options: { hint?: (board: BoardPreset) => string; nominalRam?: (algorithm: FlashAlgorithm) => RamRegion; what?: string } = {},
): Promise<Targets> {
  const board = flags.board ? boardPreset(flags.board) : undefined;
  const ramFlag = flags.ram ? regionOf(parseRam(flags.ram)) : undefined;
  const algos = flags.algo ?? [];
  if (algos.length > 0) {
    if (flags.pack !== undefined || flags.device !== undefined) {
      throw new UsageError('Give either --algo FILE (and --ram) or --pack/--device (the algorithms and their RAM from a CMSIS pack), not both');
    }
    const regions: CliRegion[] = [];
    for (const file of algos) {
      const algorithm = loadAlgorithm(await readInput(file), { source: file });
      const fromProject = flags.projectAlgorithms?.find((a) => a.file === file);
      const ram = ramFlag ?? (fromProject?.ram ? regionOf(fromProject.ram) : undefined) ?? board?.ram ?? options.nominalRam?.(algorithm);
      if (!ram) throw new UsageError('Where may the algorithm run? Give --ram ADDR:SIZE (RAM the core can execute from) or --board NAME');
      const g = algorithm.geometry;
      const memoryMapped = flags.memoryMapped ?? fromProject?.memoryMapped ?? (board && algos.length === 1 ? board.memoryMapped : boardMemoryMapped(board, { start: g.start, size: g.size }));
      regions.push({ algorithm, ram, memoryMapped, file });
    }
    return { board, regions: regions.sort((a, b) => a.algorithm.geometry.start - b.algorithm.geometry.start) };
  }
  const deviceName = flags.device ?? board?.pack?.device;
  if (deviceName === undefined) {
    if (flags.pack !== undefined) throw new UsageError(`--pack needs --device NAME: which device of the pack (list them with rspflash devices --pack ${flags.pack})`);
    throw new UsageError(`--algo FILE is required${options.what ? ` ${options.what}` : ''}: a CMSIS .FLM, a SEGGER flash loader ELF, or a probe-rs target YAML (or --pack FILE --device NAME)`, {
      hint: board && options.hint ? options.hint(board) : 'See rspflash program --help.',
    });
  }
  const core = flags.core ?? (flags.device === undefined ? board?.pack?.core : undefined);
  const device = await openDevice(flags.pack, deviceName, core, board, options.hint);
  if (device.skipped.length > 0) for (const s of device.skipped) con.detail(`pack: skipped ${s.path}: ${s.reason}`);
  const regions: CliRegion[] = device.regions.map((region) => {
    const entry = region.algorithms[0]!;
    const algorithm = loadAlgorithm(entry.bytes, { source: entry.source });
    const memoryMapped = flags.memoryMapped ?? boardMemoryMapped(board, region);
    return { algorithm, ram: ramFlag ?? entry.ram, memoryMapped, file: entry.source, ...(region.memory ? { name: region.memory } : {}) };
  });
  if (regions.length === 0) throw new UsageError(`${device.name}${device.processor.pname ? ` (${device.processor.pname})` : ''} has no flash algorithm rspflash can run in ${device.pack.source}`);
  con.info(`Device ${device.name}${device.processor.pname ? ` ${device.processor.pname}` : ''} from ${device.pack.vendor}.${device.pack.name}${device.pack.version ? ` ${device.pack.version}` : ''}: ${regions.map((r) => `${formatRange({ address: r.algorithm.geometry.start, length: r.algorithm.geometry.size })} ${basename(r.file)}`).join(', ')}`);
  return { board, regions, device };
}

/** The device from `--pack`, else from the newest installed pack that defines it. */
async function openDevice(packPath: string | undefined, name: string, core: string | undefined, board: BoardPreset | undefined, hint?: (board: BoardPreset) => string): Promise<PackDevice> {
  const resolveOptions = core === undefined ? {} : { core };
  if (packPath !== undefined) return resolveDevice(await openPack(packPath), name, resolveOptions);
  const root = packRoot({ env: process.env, platform: process.platform, home: homedir() });
  if (root === undefined) throw new UsageError(`No pack root to search for ${name}: give --pack FILE, or set CMSIS_PACK_ROOT`);
  try {
    const { pack } = await findInstalledPack(name, root);
    return await resolveDevice(pack, name, resolveOptions);
  } catch (err) {
    // A board whose pack is not installed works as before: --algo with the board's RAM.
    if (board !== undefined && err instanceof UsageError && /no installed pack defines/.test(err.message)) {
      throw new UsageError(`--algo FILE is required: ${err.message}`, {
        hint: `Install the pack (cpackget add ${board.name.startsWith('alif') ? 'AlifSemiconductor::Ensemble' : 'VENDOR::PACK'}) or give --pack FILE, or give --algo; ${hint ? hint(board) : board.algorithm}`,
      });
    }
    throw err;
  }
}

function regionOf(range: { address: number; length: number }): RamRegion {
  return { start: range.address, size: range.length };
}

// ---------------------------------------------------------------------------
// Images.

/** `ext_flash.bin@0xC0000000` → the file and its base address; a plain name → the file. */
export function parseImageSpec(text: string): { file: string; base?: number } {
  const m = /^(.+)@(0x[0-9a-f]+|\d+[kmKM]?)$/i.exec(text);
  if (!m || existsSync(text)) return { file: text };
  return { file: m[1]!, base: parseNumber(m[2]!, `${text}: address after @`) };
}

/** Options of one image file (from flags or the project file). */
export interface ImageSpec {
  file: string;
  base?: number;
  format?: ImageFormat;
  skip?: number;
  /** `--base` given beside several files: applies to the raw binaries among them only. */
  binBase?: number;
}

/**
 * Loads the images and merges them into one (bytes written twice must
 * agree: {@link mergeImages} names both files when they do not).
 */
export async function readImages(specs: readonly ImageSpec[]): Promise<Image> {
  if (specs.length === 0) throw new UsageError('Give an image file (or several: a.hex b.bin@0xC0000000), or images in rspflash.json');
  const loaded: { image: Image; source: string }[] = [];
  for (let spec of specs) {
    const bytes = await readInput(spec.file);
    const format = spec.format ?? detectImageFormat(bytes, spec.file);
    if (spec.binBase !== undefined && (format === undefined || format === 'bin')) spec = { ...spec, base: spec.binBase };
    loaded.push({
      image: loadImage(bytes, {
        source: spec.file,
        ...(spec.format === undefined ? {} : { format: spec.format }),
        ...(spec.base === undefined ? {} : { base: spec.base }),
        ...(spec.skip === undefined ? {} : { skip: spec.skip }),
      }),
      source: spec.file,
    });
  }
  return loaded.length === 1 ? loaded[0]!.image : mergeImages(loaded);
}

// ---------------------------------------------------------------------------
// Project file.

/** The project file: `--project FILE`, else `rspflash.json` in the current folder, else none. */
export async function loadProject(path: string | undefined): Promise<Project | undefined> {
  const file = path ?? (existsSync(PROJECT_FILE) ? PROJECT_FILE : undefined);
  if (file === undefined) return undefined;
  const text = new TextDecoder().decode(await readInput(file));
  return parseProject(text, { source: file, dir: dirname(resolve(file)) });
}

/** Project keys and the option (commander attribute) each fills in, with the value as the flag would give it. */
const PROJECT_OPTIONS: readonly [keyof Project, string, (v: never) => unknown][] = [
  ['gdb', 'gdb', (v: string) => v],
  ['ram', 'ram', (v: { address: number; length: number }) => `${hex32(v.address)}:${hex32(v.length)}`],
  ['memoryMapped', 'memoryMapped', (v: boolean) => v],
  ['compare', 'compare', (v: string) => v],
  ['verify', 'verify', (v: string) => v],
  ['skipUnchanged', 'skipUnchanged', (v: boolean) => v],
  ['preserve', 'preserve', (v: boolean) => v],
  ['chipErase', 'chipErase', (v: string) => v],
  ['reset', 'reset', (v: boolean) => v],
  ['after', 'after', (v: string) => v],
  ['timeoutMs', 'timeout', (v: number) => String(v)],
  ['journalDir', 'journalDir', (v: string) => v],
];

/**
 * Fills the options of `command` from the project file where the command
 * line did not give them (flags override the project). The target — `--algo`,
 * `--pack`/`--device`/`--core`, `--board` — is taken from the project as a
 * whole, and only when none of those flags was given.
 */
export function applyProject(command: Command, options: Record<string, unknown>, project: Project): void {
  const has = (name: string) => command.options.some((o) => o.attributeName() === name);
  const fromCli = (name: string) => {
    const source = command.getOptionValueSource(name);
    return source === 'cli' || source === 'env';
  };
  for (const [key, name, convert] of PROJECT_OPTIONS) {
    const value = project[key];
    if (value === undefined || !has(name) || fromCli(name)) continue;
    options[name] = (convert as (v: unknown) => unknown)(value);
  }
  if (!['algo', 'pack', 'device', 'core', 'board'].some(fromCli)) {
    if (project.algorithms) {
      options.algo = project.algorithms.map((a) => a.file);
      options.projectAlgorithms = project.algorithms;
    }
    for (const key of ['pack', 'device', 'core', 'board'] as const) if (project[key] !== undefined && has(key)) options[key] = project[key];
  }
}

/** The images of a command: its arguments, else the project's. */
export function imageSpecs(args: readonly string[], flags: { base?: string; format?: ImageFormat; skip?: string | boolean }, project: Project | undefined): ImageSpec[] {
  if (args.length === 0) return (project?.images ?? []).map((i) => ({ ...i }));
  const base = flags.base === undefined ? undefined : parseNumber(flags.base, '--base');
  const skip = typeof flags.skip === 'string' ? parseNumber(flags.skip, '--skip') : undefined;
  const specs = args.map(parseImageSpec);
  const several = specs.length > 1;
  return specs.map((s) => ({
    file: s.file,
    ...(s.base !== undefined ? { base: s.base } : base === undefined ? {} : several ? { binBase: base } : { base }),
    ...(flags.format === undefined ? {} : { format: flags.format }),
    ...(skip === undefined ? {} : { skip }),
  }));
}
