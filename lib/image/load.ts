/**
 * One entry point for every image format: tells the format from the content
 * and the file name, and hands the bytes to the right reader.
 * @module
 */
import { UsageError } from '../errors.js';
import { binToImage } from './bin.js';
import { elfToImage } from './elf.js';
import { hexToImage } from './hex.js';
import type { Image } from './image.js';
import { srecToImage } from './srec.js';

/** The image formats rspflash reads. */
export type ImageFormat = 'bin' | 'elf' | 'hex' | 'srec';

/** Options of {@link loadImage}. */
export interface LoadImageOptions {
  /** File name (or any label) for error messages; its extension helps tell the format. */
  source: string;
  /** Skip detection and read the bytes as this format. */
  format?: ImageFormat;
  /** Load address of a raw binary. Required for `.bin`, refused for the formats that carry addresses. */
  base?: number;
  /**
   * Bytes of a raw binary to leave out from its start (a header, or a part
   * already programmed): the byte at offset `skip` goes to `base`. Raw binaries only.
   */
  skip?: number;
}

/** File extensions and the format each one names (lower case, with the dot). */
const EXTENSION_FORMATS: Readonly<Record<string, ImageFormat>> = {
  '.bin': 'bin',
  '.hex': 'hex',
  '.ihex': 'hex',
  '.ihx': 'hex',
  '.srec': 'srec',
  '.s19': 'srec',
  '.s28': 'srec',
  '.s37': 'srec',
  '.mot': 'srec',
  '.elf': 'elf',
  '.axf': 'elf',
  '.out': 'elf',
};

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const; // 0x7F 'E' 'L' 'F'
const COLON = 0x3a;
const LETTER_S = 0x53;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** How far into a text file to look past blank lines and a byte-order mark for the first record. */
const SNIFF_LIMIT = 4096;

/**
 * Tells the format of an image file, or `undefined` if neither content nor
 * name says.
 *
 * In order: the ELF magic number always wins (a raw binary cannot start with
 * it: as a Cortex-M initial stack pointer it would be nonsense); then a `.bin`
 * extension, since raw bytes can look like anything; then the first
 * non-blank character (`:` is Intel HEX, `S0`–`S9` is an S-record); then the
 * extension (see the table in the source: `.hex`, `.s19`, `.axf`, …).
 *
 * @example
 * ```ts
 * detectImageFormat(bytes, 'build/app.s37'); // 'srec'
 * ```
 */
export function detectImageFormat(bytes: Uint8Array, source: string): ImageFormat | undefined {
  if (ELF_MAGIC.every((b, i) => bytes[i] === b)) return 'elf';
  const byName = EXTENSION_FORMATS[extensionOf(source)];
  if (byName === 'bin') return 'bin';
  return sniffText(bytes) ?? byName;
}

/**
 * Reads an image file of any supported format into an {@link Image}.
 *
 * The format is `options.format` if given, else {@link detectImageFormat}'s
 * answer; a file neither content nor name identifies is read as a raw binary
 * when `base` is given. Text formats are decoded as UTF-8 (they are ASCII).
 *
 * @throws {@link UsageError} if a raw binary has no `base`, if `base` is given
 *   for a format that carries its own addresses, or if the format is unknown.
 * @throws {@link FormatError} from the format's reader for malformed content.
 * @throws {@link ImageOverlapError} if parts of the file write different bytes to one address.
 *
 * @example
 * ```ts
 * const image = loadImage(await readFile(path), { source: path, base: 0x0800_0000 });
 * ```
 */
export function loadImage(bytes: Uint8Array, options: LoadImageOptions): Image {
  const { source, base } = options;
  const format = options.format ?? detectImageFormat(bytes, source) ?? (base !== undefined ? 'bin' : undefined);
  if (format === undefined) {
    throw new UsageError(`cannot tell the format of ${source}: it is not ELF, Intel HEX or S-record, and its name has no known extension`, {
      hint: "For a raw binary give `base`; otherwise name the format with `format` ('bin', 'elf', 'hex' or 'srec').",
    });
  }
  if (format === 'bin') {
    if (base === undefined) {
      throw new UsageError(`\`base\` is required for .bin images (${source} has no addresses of its own)`, {
        hint: 'Give `base`: the address of the first byte, e.g. 0x08000000.',
      });
    }
    return binToImage(bytes.subarray(checkedSkip(options.skip, bytes.length, source)), base, source);
  }
  if (options.skip !== undefined) {
    throw new UsageError(`\`skip\` applies only to .bin images; ${source} is ${FORMAT_NAMES[format]}`);
  }
  if (base !== undefined) {
    // Silently ignoring it would program somewhere the user did not expect.
    throw new UsageError(`\`base\` applies only to .bin images; ${source} is ${FORMAT_NAMES[format]} and carries its own addresses`);
  }
  switch (format) {
    case 'elf':
      return elfToImage(bytes, source);
    case 'hex':
      return hexToImage(new TextDecoder().decode(bytes), source);
    case 'srec':
      return srecToImage(new TextDecoder().decode(bytes), source);
  }
}

const FORMAT_NAMES: Readonly<Record<ImageFormat, string>> = {
  bin: 'a raw binary',
  elf: 'an ELF file',
  hex: 'Intel HEX',
  srec: 'an S-record file',
};

/** The bytes to skip at the start of a raw binary: a whole number no larger than the file. */
function checkedSkip(skip: number | undefined, length: number, source: string): number {
  if (skip === undefined) return 0;
  if (!Number.isSafeInteger(skip) || skip < 0) throw new UsageError(`\`skip\` must be a whole number of bytes (got ${skip})`);
  if (skip > length) throw new UsageError(`\`skip\` is ${skip} bytes but ${source} has only ${length}`);
  return skip;
}

/** Lower-case extension with its dot, `''` if none (`dir.d/file` has none). */
function extensionOf(source: string): string {
  const name = source.slice(Math.max(source.lastIndexOf('/'), source.lastIndexOf('\\')) + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

/** Intel HEX or S-record by the first non-blank character(s), skipping a UTF-8 byte-order mark. */
function sniffText(bytes: Uint8Array): ImageFormat | undefined {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const limit = Math.min(bytes.length, SNIFF_LIMIT);
  while (i < limit && isWhitespace(bytes[i]!)) i++;
  if (i >= limit) return undefined;
  if (bytes[i] === COLON) return 'hex';
  const next = bytes[i + 1];
  if (bytes[i] === LETTER_S && next !== undefined && next >= DIGIT_0 && next <= DIGIT_9) return 'srec';
  return undefined;
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d || code === 0x0b || code === 0x0c;
}
