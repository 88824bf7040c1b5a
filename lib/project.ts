/**
 * The project file `rspflash.json`: what a J-Flash project holds — the GDB
 * server, the device (pack or board), algorithms and their RAM, images with
 * their base addresses, the compare/verify/erase choices and what to do
 * after — so `rspflash program` with no arguments runs it. Pure: text in,
 * a checked {@link Project} out; every refusal names the JSON path.
 *
 * @example rspflash.json
 * ```json
 * {
 *   "gdb": "localhost:2331",
 *   "device": "AE722F80F55D5LS",
 *   "core": "M55_HP",
 *   "images": [{ "file": "build/ext_flash.bin", "base": "0xC0000000" }],
 *   "verify": "algo",
 *   "after": "reset"
 * }
 * ```
 * @module
 */
import { isAbsolute, join } from 'node:path';
import { FormatError, hex32 } from './errors.js';
import type { MemoryRange } from './range.js';
import type { ImageFormat } from './image/load.js';
import type { AfterSession } from './session.js';

/** The name rspflash looks for in the current folder. */
export const PROJECT_FILE = 'rspflash.json';

/** An algorithm of a project: its file and, optionally, the RAM it runs in and whether its flash is memory mapped. */
export interface ProjectAlgorithm {
  /** Path, relative to the project file's folder unless absolute. */
  readonly file: string;
  /** RAM the algorithm runs in (`--ram`); default the project's `ram`. */
  readonly ram?: MemoryRange;
  /** Whether its flash reads at its address while the algorithm runs; default the project's `memoryMapped`. */
  readonly memoryMapped?: boolean;
}

/** An image of a project. */
export interface ProjectImage {
  /** Path, relative to the project file's folder unless absolute. */
  readonly file: string;
  /** Load address of a `.bin`. */
  readonly base?: number;
  /** The image's format; default detected from the file. */
  readonly format?: ImageFormat;
  /** Bytes left out at the start of a `.bin`. */
  readonly skip?: number;
}

/** A checked project file. Every field is optional: flags fill in or override them. */
export interface Project {
  /** The project file, for messages. */
  readonly source: string;
  /** The GDB server, `host:port` or a socket path (`--gdb`). */
  readonly gdb?: string;
  /** CMSIS pack (file or folder), relative to the project file's folder unless absolute. */
  readonly pack?: string;
  /** CMSIS pack device name, e.g. `AE722F80F55D5LS` (`--device`). */
  readonly device?: string;
  /** Processor of the device (`Pname`), for devices with several (`--core`). */
  readonly core?: string;
  /** A board preset name (`--board`). */
  readonly board?: string;
  /** Flash algorithms, instead of the pack's (`--algo`). */
  readonly algorithms?: readonly ProjectAlgorithm[];
  /** RAM for algorithms that do not name their own. */
  readonly ram?: MemoryRange;
  /** Whether the flash reads at its address while the algorithm runs. */
  readonly memoryMapped?: boolean;
  /** The images to program, over one or more flash regions. */
  readonly images?: readonly ProjectImage[];
  /** How skip-unchanged compares (see {@link CompareMode}). */
  readonly compare?: 'auto' | 'hash' | 'algo' | 'none';
  /** How the result is checked (see {@link VerifyMode}). */
  readonly verify?: 'auto' | 'algo' | 'hash' | 'read' | 'none';
  /** Leave sectors that already hold the image alone. */
  readonly skipUnchanged?: boolean;
  /** Keep the bytes of touched sectors that the image does not cover. */
  readonly preserve?: boolean;
  /** Chip or sector erase (see {@link ChipEraseMode}). */
  readonly chipErase?: 'auto' | 'always' | 'never';
  /** Reset and halt the target before flashing. */
  readonly reset?: boolean;
  /** What the target does after: stay halted, run, or reset and run. */
  readonly after?: AfterSession;
  /** Time the GDB server has to answer one request, ms (`--timeout`). */
  readonly timeoutMs?: number;
  /** Folder of the recovery journal, relative to the project file's folder unless absolute. */
  readonly journalDir?: string;
}

/** Options of {@link parseProject}. */
export interface ParseProjectOptions {
  /** Names the file in messages. Default {@link PROJECT_FILE}. */
  readonly source?: string;
  /** Folder relative paths are taken from (the project file's folder). Default: left relative. */
  readonly dir?: string;
}

/** A check failed at a JSON path: `$.images[1].base`. */
class Invalid extends Error {
  constructor(
    readonly path: string,
    readonly what: string,
  ) {
    super(`${path}: ${what}`);
  }
}

const KEYS = [
  '$schema',
  'gdb',
  'pack',
  'device',
  'core',
  'board',
  'algorithm',
  'algorithms',
  'ram',
  'memoryMapped',
  'image',
  'images',
  'compare',
  'verify',
  'skipUnchanged',
  'preserve',
  'chipErase',
  'reset',
  'after',
  'timeoutMs',
  'journalDir',
] as const;

/** The largest number of a 32-bit address space. */
const ADDRESS_SPACE = 2 ** 32;
const SUFFIXES: Readonly<Record<string, number>> = { '': 1, k: 1024, kib: 1024, m: 1 << 20, mib: 1 << 20 };

/**
 * Parses and checks a project file. Unknown keys, wrong types and values
 * out of range are refused with the JSON path (`$.images[0].base`).
 * Addresses and sizes are numbers or strings (`"0xC0000000"`, `"256K"`);
 * RAM is `"ADDR:SIZE"` or `{ "address": …, "length": … }`; an image is a
 * path or `{ "file", "base", "format", "skip" }`; `algorithm`/`image` are
 * accepted for a single one.
 *
 * @throws {@link FormatError} naming the file and the JSON path.
 */
export function parseProject(text: string, options: ParseProjectOptions = {}): Project {
  const source = options.source ?? PROJECT_FILE;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`${source}: not valid JSON (${(err as Error).message})`, source, undefined, { cause: err });
  }
  try {
    return check(json, source, options.dir);
  } catch (err) {
    if (err instanceof Invalid) {
      throw new FormatError(`${source}: ${err.message}`, source, undefined, { hint: `A project file takes the keys ${KEYS.filter((k) => k !== '$schema').join(', ')} (README, "Project file").` });
    }
    throw err;
  }
}

function check(json: unknown, source: string, dir: string | undefined): Project {
  const root = object(json, '$');
  for (const key of Object.keys(root)) {
    if (!(KEYS as readonly string[]).includes(key)) throw new Invalid(`$.${key}`, `unknown key${suggest(key, KEYS)}`);
  }
  if (root.algorithm !== undefined && root.algorithms !== undefined) throw new Invalid('$.algorithm', 'give either algorithm or algorithms, not both');
  if (root.image !== undefined && root.images !== undefined) throw new Invalid('$.image', 'give either image or images, not both');
  const path = (p: string) => (dir === undefined || isAbsolute(p) ? p : join(dir, p));
  const out: Record<string, unknown> = { source };
  const set = (key: string, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };
  set('gdb', optional(root.gdb, '$.gdb', string));
  set('pack', optional(root.pack, '$.pack', (v, p) => path(string(v, p))));
  set('device', optional(root.device, '$.device', string));
  set('core', optional(root.core, '$.core', string));
  set('board', optional(root.board, '$.board', string));
  const algorithms =
    root.algorithm !== undefined ? [algorithm(root.algorithm, '$.algorithm', path)] : optional(root.algorithms, '$.algorithms', (v, p) => array(v, p).map((a, i) => algorithm(a, `${p}[${i}]`, path)));
  set('algorithms', algorithms);
  set('ram', optional(root.ram, '$.ram', ram));
  set('memoryMapped', optional(root.memoryMapped, '$.memoryMapped', boolean));
  const images = root.image !== undefined ? [image(root.image, '$.image', path)] : optional(root.images, '$.images', (v, p) => array(v, p).map((a, i) => image(a, `${p}[${i}]`, path)));
  set('images', images);
  set('compare', optional(root.compare, '$.compare', (v, p) => oneOf(v, p, ['auto', 'hash', 'algo', 'none'] as const)));
  set('verify', optional(root.verify, '$.verify', (v, p) => oneOf(v, p, ['auto', 'algo', 'hash', 'read', 'none'] as const)));
  set('skipUnchanged', optional(root.skipUnchanged, '$.skipUnchanged', boolean));
  set('preserve', optional(root.preserve, '$.preserve', boolean));
  set('chipErase', optional(root.chipErase, '$.chipErase', (v, p) => oneOf(v, p, ['auto', 'always', 'never'] as const)));
  set('reset', optional(root.reset, '$.reset', boolean));
  set('after', optional(root.after, '$.after', (v, p) => oneOf(v, p, ['halt', 'run', 'reset'] as const)));
  set(
    'timeoutMs',
    optional(root.timeoutMs, '$.timeoutMs', (v, p) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > 2 ** 31 - 1) throw new Invalid(p, `expected whole milliseconds from 1 to ${2 ** 31 - 1}, got ${show(v)}`);
      return v;
    }),
  );
  set('journalDir', optional(root.journalDir, '$.journalDir', (v, p) => path(string(v, p))));
  return out as unknown as Project;
}

function algorithm(value: unknown, at: string, path: (p: string) => string): ProjectAlgorithm {
  if (typeof value === 'string') return { file: path(nonEmpty(value, at)) };
  const o = object(value, at);
  known(o, at, ['file', 'ram', 'memoryMapped']);
  if (o.file === undefined) throw new Invalid(`${at}.file`, 'missing: the algorithm file (.FLM, SEGGER loader ELF or probe-rs YAML)');
  const ramValue = optional(o.ram, `${at}.ram`, ram);
  const mapped = optional(o.memoryMapped, `${at}.memoryMapped`, boolean);
  return { file: path(nonEmpty(string(o.file, `${at}.file`), `${at}.file`)), ...(ramValue ? { ram: ramValue } : {}), ...(mapped === undefined ? {} : { memoryMapped: mapped }) };
}

function image(value: unknown, at: string, path: (p: string) => string): ProjectImage {
  if (typeof value === 'string') return { file: path(nonEmpty(value, at)) };
  const o = object(value, at);
  known(o, at, ['file', 'base', 'format', 'skip']);
  if (o.file === undefined) throw new Invalid(`${at}.file`, 'missing: the image file');
  const base = optional(o.base, `${at}.base`, address);
  const format = optional(o.format, `${at}.format`, (v, p) => oneOf(v, p, ['bin', 'elf', 'hex', 'srec'] as const));
  const skip = optional(o.skip, `${at}.skip`, address);
  return {
    file: path(nonEmpty(string(o.file, `${at}.file`), `${at}.file`)),
    ...(base === undefined ? {} : { base }),
    ...(format === undefined ? {} : { format }),
    ...(skip === undefined ? {} : { skip }),
  };
}

function ram(value: unknown, at: string): MemoryRange {
  let range: MemoryRange;
  if (typeof value === 'string') {
    const [a, s, extra] = value.split(':');
    if (a === undefined || s === undefined || extra !== undefined || a === '' || s === '') throw new Invalid(at, `expected "ADDR:SIZE" (e.g. "0x20000000:64K"), got ${show(value)}`);
    range = { address: address(a, at), length: address(s, at) };
  } else {
    const o = object(value, at);
    known(o, at, ['address', 'length']);
    if (o.address === undefined || o.length === undefined) throw new Invalid(at, 'expected { "address": …, "length": … }');
    range = { address: address(o.address, `${at}.address`), length: address(o.length, `${at}.length`) };
  }
  if (range.length === 0) throw new Invalid(at, 'a RAM region needs a length above 0');
  if (range.address + range.length > ADDRESS_SPACE) throw new Invalid(at, `${range.length} bytes from ${hex32(range.address)} wrap past the end of the 4 GiB address space`);
  return range;
}

/** An address or size: a number, or a string like "0xC0000000", "4096", "256K". */
function address(value: unknown, at: string): number {
  let n: number | undefined;
  if (typeof value === 'number') n = Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  else if (typeof value === 'string') {
    const m = /^(0x[0-9a-f]+|\d+)\s*([a-z]*)$/i.exec(value.trim());
    const factor = m ? SUFFIXES[m[2]!.toLowerCase()] : undefined;
    n = m && factor !== undefined ? Number(m[1]) * factor : undefined;
  }
  if (n === undefined) throw new Invalid(at, `expected an address or size (a number, or a string like "0xC0000000" or "64K"), got ${show(value)}`);
  if (n >= ADDRESS_SPACE) throw new Invalid(at, `${show(value)} does not fit in 32 bits`);
  return n;
}

function optional<T>(value: unknown, at: string, read: (v: unknown, at: string) => T): T | undefined {
  return value === undefined ? undefined : read(value, at);
}

function object(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Invalid(at, `expected an object, got ${show(value)}`);
  return value as Record<string, unknown>;
}

function array(value: unknown, at: string): unknown[] {
  if (!Array.isArray(value)) throw new Invalid(at, `expected an array, got ${show(value)}`);
  return value;
}

function string(value: unknown, at: string): string {
  if (typeof value !== 'string') throw new Invalid(at, `expected a string, got ${show(value)}`);
  return value;
}

function nonEmpty(value: string, at: string): string {
  if (value === '') throw new Invalid(at, 'expected a file name, got an empty string');
  return value;
}

function boolean(value: unknown, at: string): boolean {
  if (typeof value !== 'boolean') throw new Invalid(at, `expected true or false, got ${show(value)}`);
  return value;
}

function oneOf<const T extends readonly string[]>(value: unknown, at: string, choices: T): T[number] {
  if (typeof value !== 'string' || !choices.includes(value)) throw new Invalid(at, `expected one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${show(value)}`);
  return value as T[number];
}

function known(o: Record<string, unknown>, at: string, keys: readonly string[]): void {
  for (const key of Object.keys(o)) if (!keys.includes(key)) throw new Invalid(`${at}.${key}`, `unknown key${suggest(key, keys)}; known here: ${keys.join(', ')}`);
}

/** ` (did you mean "images"?)` for a key a case or two edits away from a known one (the closest, same length first). */
function suggest(key: string, keys: readonly string[]): string {
  const lower = key.toLowerCase();
  const scored = keys
    .filter((k) => k !== '$schema')
    .map((k) => ({ k, d: editDistance(k.toLowerCase(), lower), l: Math.abs(k.length - key.length) }))
    .filter((x) => x.d <= 2)
    .sort((a, b) => a.d - b.d || a.l - b.l);
  return scored[0] ? ` (did you mean "${scored[0].k}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** A JSON value in a message: short, and its type clear (`true`, `"x"`, `an array`). */
function show(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}
