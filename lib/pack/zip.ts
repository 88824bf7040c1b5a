/**
 * A reader for zip archives held in memory (CMSIS packs are zip files named
 * `.pack`): our own walk of the central directory, `node:zlib` for DEFLATE.
 *
 * A pack comes from the internet, so the reader trusts nothing in it:
 *
 * - names: `..` or `.` segments, absolute paths (`/x`, `C:`), backslashes,
 *   NUL bytes, empty segments, and names that differ only in case are refused
 *   — nothing is ever written to disk, but a name that means something else on
 *   another file system must not select a different entry than the author meant;
 * - sizes: an entry may not declare more than {@link ZipLimits.maxEntrySize},
 *   nor compress better than {@link ZipLimits.maxRatio}; inflating stops at the
 *   declared size (`maxOutputLength`), and all inflated bytes together may not
 *   exceed {@link ZipLimits.maxTotalSize} — so a bomb ends in a {@link FormatError}
 *   with bounded memory, whatever its headers claim;
 * - structure: every entry's local header must agree with the central directory
 *   (name, method), entries may not overlap each other or the central directory
 *   (overlapping entries are how non-recursive zip bombs multiply their data),
 *   and each entry's CRC-32 is checked;
 * - features: encrypted entries, methods other than STORE (0) and DEFLATE (8),
 *   archives split over several disks and zip64 archives are refused. No pack
 *   needs zip64: it is only required beyond 65,535 entries or 4 GiB.
 *
 * Every failure is a {@link FormatError} whose `source` is the archive and whose
 * message names the entry.
 *
 * Format: PKWARE APPNOTE.TXT 6.3.x, sections 4.3 (structure) and 4.4 (fields).
 *
 * @example
 * ```ts
 * const zip = openZip(await readFile('Vendor.Dfp.1.0.0.pack'), 'Vendor.Dfp.1.0.0.pack');
 * const pdsc = zip.entries.find((e) => e.name.endsWith('.pdsc'));
 * const text = new TextDecoder().decode(zip.read(pdsc!.name));
 * ```
 * @module
 */
import { crc32, inflateRawSync } from 'node:zlib';
import { FormatError, hex32 } from '../errors.js';

/** Limits that bound what reading an archive may cost. */
export interface ZipLimits {
  /** Most entries an archive may list. */
  readonly maxEntries: number;
  /** Largest uncompressed size of one entry, bytes. */
  readonly maxEntrySize: number;
  /** Most bytes all reads from one archive may inflate together. */
  readonly maxTotalSize: number;
  /** Largest uncompressed ÷ compressed size of a DEFLATE entry (zlib cannot exceed ~1032). */
  readonly maxRatio: number;
}

/**
 * Defaults: generous for packs (the largest FLM files are a few hundred KiB,
 * the largest PDSC files a few MiB; packs hold a few thousand files), small
 * enough that a hostile archive cannot exhaust memory.
 */
export const DEFAULT_ZIP_LIMITS: ZipLimits = Object.freeze({
  maxEntries: 65_535,
  maxEntrySize: 64 << 20,
  maxTotalSize: 256 << 20,
  maxRatio: 1_100,
});

/** Compression methods read (APPNOTE 4.4.5). */
export const ZIP_METHOD_STORE = 0;
/** @see ZIP_METHOD_STORE */
export const ZIP_METHOD_DEFLATE = 8;

/** One file (or directory, name ending in `/`) listed in the central directory. */
export interface ZipEntry {
  /** Path inside the archive, `/`-separated. */
  readonly name: string;
  /** {@link ZIP_METHOD_STORE} or {@link ZIP_METHOD_DEFLATE}. */
  readonly method: number;
  /** Size of the stored data, bytes. */
  readonly compressedSize: number;
  /** Size after inflating, bytes. */
  readonly size: number;
  /** CRC-32 (zlib convention) of the uncompressed bytes. */
  readonly crc32: number;
  /** Offset of the local file header. */
  readonly localHeaderOffset: number;
  /** Whether the entry is a directory (name ends in `/`). */
  readonly directory: boolean;
}

// Signatures and fixed sizes (APPNOTE 4.3.7, 4.3.12, 4.3.16).
const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const MAX_COMMENT = 0xffff;
// General-purpose flags (APPNOTE 4.4.4).
const FLAG_ENCRYPTED = 1 << 0;
const FLAG_STRONG_ENCRYPTION = 1 << 6;
const FLAG_UTF8 = 1 << 11;
const FLAG_MASKED_HEADERS = 1 << 13;

/**
 * A zip archive opened by {@link openZip}: the entries of its central
 * directory, and {@link ZipArchive.read} to get one entry's bytes. It owns the
 * inflate budget of {@link ZipLimits.maxTotalSize}, counted over all reads.
 */
export class ZipArchive {
  /** Every entry, in central-directory order. */
  readonly entries: readonly ZipEntry[];
  readonly #bytes: Uint8Array;
  readonly #source: string;
  readonly #limits: ZipLimits;
  readonly #byName = new Map<string, ZipEntry>();
  readonly #byFoldedName = new Map<string, ZipEntry>();
  #inflated = 0;

  /** @internal Use {@link openZip}. */
  constructor(bytes: Uint8Array, source: string, entries: readonly ZipEntry[], limits: ZipLimits) {
    this.#bytes = bytes;
    this.#source = source;
    this.#limits = limits;
    this.entries = entries;
    for (const entry of entries) {
      this.#byName.set(entry.name, entry);
      this.#byFoldedName.set(entry.name.toLowerCase(), entry);
    }
  }

  /** The archive, as named in error messages. */
  get source(): string {
    return this.#source;
  }

  /**
   * The entry called `name`; if there is none, the one whose name differs only
   * in case (packs are mostly written on Windows, where `Flash/X.FLM` and
   * `flash/x.flm` are the same file — {@link openZip} refused archives where
   * that would be ambiguous).
   */
  find(name: string): ZipEntry | undefined {
    return this.#byName.get(name) ?? this.#byFoldedName.get(name.toLowerCase());
  }

  /**
   * The uncompressed bytes of the file entry `name` (looked up with {@link find});
   * for a stored entry, a view into the archive bytes.
   *
   * @throws {@link FormatError} if there is no such file, or its data is
   * truncated, inflates to another size than declared, fails its CRC, or
   * would exceed the archive's inflate budget.
   */
  read(name: string): Uint8Array {
    const entry = this.find(name);
    if (!entry || entry.directory) throw this.#error(`has no file ${JSON.stringify(name)}`);
    const where = `entry ${JSON.stringify(entry.name)}`;
    if (this.#inflated + entry.size > this.#limits.maxTotalSize) {
      throw this.#error(
        `${where}: reading ${entry.size} more bytes would inflate more than the ${this.#limits.maxTotalSize} bytes allowed per archive`,
      );
    }
    const start = dataStart(this.#bytes, entry, this.#source);
    const stored = this.#bytes.subarray(start, start + entry.compressedSize);
    let data: Uint8Array;
    if (entry.method === ZIP_METHOD_STORE) {
      data = stored;
    } else {
      try {
        // maxOutputLength stops zlib at one byte past the declared size, so a
        // lying header costs at most its own declared size in memory.
        const inflated = inflateRawSync(stored, { maxOutputLength: entry.size + 1 });
        data = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
      } catch (err) {
        const tooLarge = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
        throw this.#error(
          tooLarge
            ? `${where} inflates to more than its declared ${entry.size} bytes`
            : `${where} is not valid DEFLATE data (${(err as Error).message})`,
          start,
          err,
        );
      }
    }
    if (data.length !== entry.size) {
      throw this.#error(`${where} holds ${data.length} bytes, its header declares ${entry.size}`, start);
    }
    this.#inflated += data.length;
    const actual = crc32(data) >>> 0;
    if (actual !== entry.crc32) {
      throw this.#error(`${where} fails its CRC-32 check (${hex32(actual)}, expected ${hex32(entry.crc32)})`, start);
    }
    return data;
  }

  #error(message: string, offset?: number, cause?: unknown): FormatError {
    return new FormatError(`${this.#source}: ${message}`, this.#source, offset, cause === undefined ? {} : { cause });
  }
}

/**
 * Opens a zip archive held in memory: finds the end of the central directory,
 * reads and checks every entry's central and local headers. Entry data is
 * inflated only when {@link ZipArchive.read} asks for it.
 *
 * @param source the archive's name for error messages (e.g. its path)
 * @throws {@link FormatError} for anything the module documentation lists.
 */
export function openZip(bytes: Uint8Array, source: string, limits: Partial<ZipLimits> = {}): ZipArchive {
  const lim: ZipLimits = { ...DEFAULT_ZIP_LIMITS, ...limits };
  const fail = (message: string, offset?: number): never => {
    throw new FormatError(`${source}: ${message}`, source, offset);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = findEndOfCentralDirectory(view, fail);
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);

  const disk = u16(eocd + 4);
  const cdDisk = u16(eocd + 6);
  const entriesHere = u16(eocd + 8);
  const entryCount = u16(eocd + 10);
  const cdSize = u32(eocd + 12);
  const cdOffset = u32(eocd + 16);
  if (
    eocd >= ZIP64_LOCATOR_SIZE &&
    u32(eocd - ZIP64_LOCATOR_SIZE) === SIG_ZIP64_LOCATOR
  ) {
    fail('is a zip64 archive, which is not supported (no CMSIS pack needs more than 65,535 entries or 4 GiB)', eocd);
  }
  if (entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    fail('declares zip64 sizes, which are not supported', eocd);
  }
  if (disk !== 0 || cdDisk !== 0 || entriesHere !== entryCount) {
    fail('is split over several disks, which is not supported', eocd);
  }
  if (entryCount > lim.maxEntries) fail(`lists ${entryCount} entries, more than the ${lim.maxEntries} allowed`, eocd);
  if (cdOffset + cdSize > eocd) {
    fail(`central directory (${cdSize} bytes at offset ${cdOffset}) runs past the end of the archive`, eocd);
  }

  const entries: ZipEntry[] = [];
  const seen = new Map<string, string>();
  let at = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < entryCount; i++) {
    if (at + CENTRAL_HEADER_SIZE > cdEnd || u32(at) !== SIG_CENTRAL) {
      fail(`central directory entry ${i} of ${entryCount} is missing or damaged`, at);
    }
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    const compressedSize = u32(at + 20);
    const size = u32(at + 24);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    const localHeaderOffset = u32(at + 42);
    const next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (next > cdEnd) fail(`central directory entry ${i} runs past the central directory`, at);
    const name = decodeName(bytes.subarray(at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength), flags);
    const where = `entry ${JSON.stringify(name)}`;
    const problem = unsafeNameReason(name);
    if (problem) fail(`${where}: ${problem}`, at);
    const folded = name.toLowerCase();
    const earlier = seen.get(folded);
    if (earlier !== undefined) {
      fail(earlier === name ? `${where} appears twice` : `${where} and ${JSON.stringify(earlier)} differ only in case`, at);
    }
    seen.set(folded, name);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS)) fail(`${where} is encrypted`, at);
    if (compressedSize === 0xffffffff || size === 0xffffffff || localHeaderOffset === 0xffffffff) {
      fail(`${where} has zip64 sizes, which are not supported`, at);
    }
    if (method !== ZIP_METHOD_STORE && method !== ZIP_METHOD_DEFLATE) {
      fail(`${where} uses compression method ${method}; only STORE (0) and DEFLATE (8) are supported`, at);
    }
    if (size > lim.maxEntrySize) fail(`${where} declares ${size} bytes, more than the ${lim.maxEntrySize} allowed per entry`, at);
    if (method === ZIP_METHOD_STORE && compressedSize !== size) {
      fail(`${where} is stored but declares ${compressedSize} stored and ${size} uncompressed bytes`, at);
    }
    if (method === ZIP_METHOD_DEFLATE && size > Math.max(compressedSize, 1) * lim.maxRatio) {
      fail(`${where} claims a compression ratio over ${lim.maxRatio}:1 (${compressedSize} → ${size} bytes): a zip bomb?`, at);
    }
    entries.push({ name, method, compressedSize, size, crc32: crc, localHeaderOffset, directory: name.endsWith('/') });
    at = next;
  }

  // Local headers: present, consistent, and no two entries (nor an entry and
  // the central directory) share bytes.
  const byOffset = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 0; i < byOffset.length; i++) {
    const entry = byOffset[i]!;
    const where = `entry ${JSON.stringify(entry.name)}`;
    const start = dataStart(bytes, entry, source);
    const end = start + entry.compressedSize;
    const limit = i + 1 < byOffset.length ? byOffset[i + 1]!.localHeaderOffset : cdOffset;
    if (end > limit) fail(`${where} overlaps ${i + 1 < byOffset.length ? 'the next entry' : 'the central directory'}`, entry.localHeaderOffset);
  }
  return new ZipArchive(bytes, source, entries, lim);
}

/**
 * Offset of an entry's data, after checking its local header against the
 * central directory entry.
 */
function dataStart(bytes: Uint8Array, entry: ZipEntry, source: string): number {
  const at = entry.localHeaderOffset;
  const where = `entry ${JSON.stringify(entry.name)}`;
  const fail = (message: string): never => {
    throw new FormatError(`${source}: ${where}: ${message}`, source, at);
  };
  if (at + LOCAL_HEADER_SIZE > bytes.length) fail('local header lies past the end of the archive');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(at, true) !== SIG_LOCAL) fail('local header is missing');
  const flags = view.getUint16(at + 6, true);
  const method = view.getUint16(at + 8, true);
  const nameLength = view.getUint16(at + 26, true);
  const extraLength = view.getUint16(at + 28, true);
  const start = at + LOCAL_HEADER_SIZE + nameLength + extraLength;
  if (start > bytes.length) fail('local header runs past the end of the archive');
  const localName = decodeName(bytes.subarray(at + LOCAL_HEADER_SIZE, at + LOCAL_HEADER_SIZE + nameLength), flags);
  if (localName !== entry.name) fail(`local header names it ${JSON.stringify(localName)}`);
  if (method !== entry.method) fail(`local header says method ${method}, the central directory ${entry.method}`);
  if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) fail('is encrypted');
  if (start + entry.compressedSize > bytes.length) fail('data is truncated');
  return start;
}

/** Offset of the end-of-central-directory record: the last one whose comment length fits the file. */
function findEndOfCentralDirectory(view: DataView, fail: (message: string, offset?: number) => never): number {
  const length = view.byteLength;
  if (length < EOCD_SIZE) fail(`is ${length} bytes long, too short for a zip archive`, 0);
  // The record is 22 bytes plus a comment of at most 65,535 bytes at the very end.
  const lowest = Math.max(0, length - EOCD_SIZE - MAX_COMMENT);
  for (let at = length - EOCD_SIZE; at >= lowest; at--) {
    if (view.getUint32(at, true) === SIG_EOCD && at + EOCD_SIZE + view.getUint16(at + 20, true) === length) return at;
  }
  return fail('is not a zip archive (no end-of-central-directory record; truncated?)', length);
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const latin1 = new TextDecoder('latin1');

/**
 * Entry name bytes as text: UTF-8 when flag 11 says so, else CP437 per the
 * spec — read as Latin-1, which agrees on ASCII (every name in a real pack)
 * and still shows other bytes as something.
 */
function decodeName(bytes: Uint8Array, flags: number): string {
  return (flags & FLAG_UTF8 ? utf8 : latin1).decode(bytes);
}

/** Why a name may not be used, or `undefined` if it is a plain relative path. */
export function unsafeNameReason(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.includes('\0')) return 'the name contains a NUL byte';
  if (name.includes('\\')) return 'the name contains a backslash (a path separator on Windows)';
  if (name.startsWith('/')) return 'the name is an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'the name starts with a drive letter';
  const segments = (name.endsWith('/') ? name.slice(0, -1) : name).split('/');
  if (segments.some((s) => s === '..')) return 'the name contains a ".." segment';
  if (segments.some((s) => s === '.')) return 'the name contains a "." segment';
  if (segments.some((s) => s === '')) return 'the name contains an empty segment ("//")';
  return undefined;
}
