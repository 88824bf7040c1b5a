/**
 * Motorola S-records: reader and writer.
 *
 * A record is `S<type><count><address><data><checksum>`, where the count is the
 * number of bytes after it (address, data, checksum) and the checksum is the
 * ones' complement of the low byte of the sum of count, address and data bytes
 * (so every byte from the count to the checksum sums to `0xFF`, mod 256).
 *
 * | type | address | record |
 * | --- | --- | --- |
 * | `S0` | 16-bit, `0000` | header: free text, kept as {@link SrecFile.header} |
 * | `S1` / `S2` / `S3` | 16 / 24 / 32-bit | data |
 * | `S5` / `S6` | 16 / 24-bit field | number of data records so far; verified |
 * | `S7` / `S8` / `S9` | 32 / 24 / 16-bit | end of file, with the start address |
 *
 * Data addresses are linear: a record's bytes go to address, address + 1, …;
 * data that would run past `0xFFFFFFFF` is an error. A termination record is
 * required (its absence is how truncation shows), and only whitespace may
 * follow it.
 * @module
 */
import { FormatError, UsageError, hex32 } from '../errors.js';
import { createImage, imageEnd, imageSize, type Image, type SourcedSegment } from './image.js';

/** Bytes of the address field for each record type; `undefined` for S4, which is reserved. */
const ADDRESS_SIZE: readonly (number | undefined)[] = [2, 2, 3, 4, undefined, 2, 3, 4, 3, 2];
/** The termination record that goes with each data address size (S1 → S9, S2 → S8, S3 → S7). */
const TERMINATION_TYPE: Readonly<Record<SrecAddressSize, number>> = { 2: 9, 3: 8, 4: 7 };

/** The count is one byte; it covers address, data and checksum. */
const MAX_COUNT = 0xff;
const CHECKSUM_SIZE = 1;
const MAX_S5_COUNT = 0xffff;
const MAX_S6_COUNT = 0xff_ffff;
const ADDRESS_SPACE_END = 0x1_0000_0000;
const DEFAULT_RECORD_SIZE = 16;

const LETTER_S = 0x53;
const DIGIT_0 = 0x30;
const BYTE_ORDER_MARK = 0xfeff;

/** Width of an S-record address field in bytes: 2 (S1/S9), 3 (S2/S8) or 4 (S3/S7). */
export type SrecAddressSize = 2 | 3 | 4;

/** What an S-record file holds. */
export interface SrecFile {
  /** All data records, merged. */
  image: Image;
  /**
   * The address of the termination record (S7/S8/S9). Writers put 0 there
   * when they have no start address to give, so 0 may mean "none".
   */
  entry: number;
  /** Text of the first S0 record (UTF-8, trailing NULs removed); `''` if there is none. */
  header: string;
}

/** Options of {@link imageToSrec}. */
export interface SrecWriteOptions {
  /** Address field width; default the smallest that holds every address of the image and the entry. */
  addressSize?: SrecAddressSize;
  /** Data bytes per record, 1 to 255 − addressSize − 1. Default 16. */
  recordSize?: number;
  /** Text of the S0 header record, at most 252 bytes as UTF-8. Default `''`. */
  header?: string;
  /** Start address written in the termination record. Default 0. */
  entry?: number;
}

/**
 * Parses an S-record file.
 *
 * Lines may end in LF or CRLF; blank lines and trailing whitespace are
 * ignored; hex digits may be either case. Every checksum is checked, and so is
 * every S5/S6 record count.
 *
 * @param text - The whole file.
 * @param source - The file name, used in error messages and segment sources.
 * @throws {@link FormatError} for anything malformed, with the 1-based line number
 *   as `offset` and in the message (e.g. `app.s19 line 3: checksum mismatch …`).
 * @throws {@link ImageOverlapError} if two records write different bytes to one address.
 *
 * @example
 * ```ts
 * const { image, entry, header } = parseSrec(await readFile('app.s37', 'utf8'), 'app.s37');
 * ```
 */
export function parseSrec(text: string, source: string): SrecFile {
  const runs = new RunCollector(text.length >>> 1, source);
  const record = new Uint8Array(MAX_COUNT + 1);
  const decoder = new TextDecoder();
  let header: string | undefined;
  let entry = 0;
  let dataRecords = 0;
  let endLine = 0;
  let line = 0;
  let pos = text.charCodeAt(0) === BYTE_ORDER_MARK ? 1 : 0;
  const fail = (message: string): never => {
    throw new FormatError(`${source} line ${line}: ${message}`, source, line);
  };

  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    line++;
    const start = pos;
    pos = end + 1;
    while (end > start && isWhitespace(text.charCodeAt(end - 1))) end--;
    if (end === start) continue;

    if (endLine !== 0) fail(`record after the termination record of line ${endLine}`);
    if (text.charCodeAt(start) !== LETTER_S) fail(`expected 'S' at the start of a record, found ${describeChar(text, start)}`);
    if (end - start < 2) fail('record is truncated: no record type after \'S\'');
    const type = text.charCodeAt(start + 1) - DIGIT_0;
    const addressSize = ADDRESS_SIZE[type];
    if (addressSize === undefined) fail(`unknown record type ${JSON.stringify(text.slice(start, start + 2)).replace(/^"|"$/g, "'")}`);
    const size = addressSize!;

    const digits = end - start - 2;
    for (let i = start + 2; i < end; i++) {
      if (hexValue(text.charCodeAt(i)) < 0) fail(`bad hex digit ${describeChar(text, i)} at column ${i - start + 1}`);
    }
    if (digits % 2 !== 0) fail(`odd number of hex digits (${digits})`);
    if (digits < 2) fail('record is truncated: no byte count');
    const count = readByte(text, start + 2);
    const expected = 2 * (count + 1);
    if (digits < expected) fail(`record is truncated: byte count 0x${hex2(count)} needs ${expected} hex digits after 'S${type}', found ${digits}`);
    if (digits > expected) fail(`record is longer than its byte count 0x${hex2(count)} says: ${digits} hex digits after 'S${type}', expected ${expected}`);
    if (count < size + CHECKSUM_SIZE) fail(`byte count 0x${hex2(count)} is too small for the address and checksum of an S${type} record (${size + CHECKSUM_SIZE})`);

    let sum = 0;
    for (let i = 0; i <= count; i++) {
      const value = readByte(text, start + 2 + 2 * i);
      record[i] = value;
      sum += value;
    }
    if ((sum & 0xff) !== 0xff) {
      const stated = record[count]!;
      fail(`checksum mismatch: record says 0x${hex2(stated)}, its bytes need 0x${hex2(~(sum - stated))}`);
    }

    let address = 0;
    for (let i = 1; i <= size; i++) address = address * 256 + record[i]!;
    const data = record.subarray(1 + size, count);
    switch (type) {
      case 0:
        if (header === undefined) header = decoder.decode(data).replace(/\0+$/, '');
        break;
      case 1:
      case 2:
      case 3:
        dataRecords++;
        if (address + data.length > ADDRESS_SPACE_END) {
          fail(`${data.length} data bytes at ${hex32(address)} run past the end of the 32-bit address space`);
        }
        if (data.length > 0) runs.add(address, data, line);
        break;
      case 5:
      case 6:
        if (data.length !== 0) fail(`S${type} count record must not carry data, has ${data.length} bytes`);
        if (address !== dataRecords) fail(`S${type} count record says ${address} data records, the file has ${dataRecords} before it`);
        break;
      default: // 7, 8, 9
        if (data.length !== 0) fail(`S${type} termination record must not carry data, has ${data.length} bytes`);
        entry = address;
        endLine = line;
    }
  }

  if (endLine === 0) {
    const at = Math.max(line, 1);
    throw new FormatError(`${source} line ${at}: missing termination record (S7, S8 or S9); is the file truncated?`, source, at);
  }
  return { image: createImage(runs.finish()), entry, header: header ?? '' };
}

/**
 * Parses an S-record file into an {@link Image}, dropping header and entry.
 * See {@link parseSrec} for the rules and errors.
 *
 * @example
 * ```ts
 * const image = srecToImage('S107100001020304DE\nS9030000FC\n', 'inline');
 * // image.segments: [{ address: 0x1000, data: Uint8Array [1, 2, 3, 4] }]
 * ```
 */
export function srecToImage(text: string, source: string): Image {
  return parseSrec(text, source).image;
}

/**
 * Writes an {@link Image} as S-records: an S0 header, data records (S1, S2 or
 * S3 by `addressSize`) of `recordSize` bytes, an S5 (or S6, above 65535
 * records) record count, and the matching termination record (S9, S8 or S7)
 * with `entry`. Lines end in LF.
 *
 * @throws {@link UsageError} if an address or the entry does not fit
 *   `addressSize`, or for a record size or header that does not fit a record.
 *
 * @example
 * ```ts
 * const text = imageToSrec(image, { addressSize: 4, header: 'app', entry: 0x0800_0101 });
 * ```
 */
export function imageToSrec(image: Image, options: SrecWriteOptions = {}): string {
  const entry = options.entry ?? 0;
  if (!Number.isInteger(entry) || entry < 0 || entry >= ADDRESS_SPACE_END) {
    throw new UsageError(`entry point ${String(entry)} is not a 32-bit address`);
  }
  for (const segment of image.segments) {
    if (!Number.isInteger(segment.address) || segment.address < 0 || segment.address + segment.data.length > ADDRESS_SPACE_END) {
      throw new UsageError(`segment at ${hex32(segment.address)} (${segment.data.length} bytes) does not fit the 32-bit address space`);
    }
  }
  const end = imageEnd(image) ?? 0;
  const highest = Math.max(end - 1, entry);
  const needed: SrecAddressSize = highest <= 0xffff ? 2 : highest <= 0xff_ffff ? 3 : 4;
  const addressSize = options.addressSize ?? needed;
  if (addressSize !== 2 && addressSize !== 3 && addressSize !== 4) {
    throw new UsageError(`S-record address size must be 2, 3 or 4 bytes, got ${String(addressSize)}`);
  }
  if (addressSize < needed) {
    throw new UsageError(
      `address ${hex32(highest)} does not fit the ${addressSize * 8}-bit addresses of S${addressSize - 1} records; use an address size of ${needed}`,
    );
  }
  const maxRecordSize = MAX_COUNT - addressSize - CHECKSUM_SIZE;
  const recordSize = options.recordSize ?? Math.min(DEFAULT_RECORD_SIZE, maxRecordSize);
  if (!Number.isInteger(recordSize) || recordSize < 1 || recordSize > maxRecordSize) {
    throw new UsageError(`S${addressSize - 1} record size must be 1–${maxRecordSize} bytes, got ${String(recordSize)}`);
  }
  const header = new TextEncoder().encode(options.header ?? '');
  const maxHeader = MAX_COUNT - 2 - CHECKSUM_SIZE;
  if (header.length > maxHeader) {
    throw new UsageError(`S-record header is ${header.length} bytes as UTF-8; at most ${maxHeader} fit an S0 record`);
  }

  // Two digits per byte, plus each record's 4 + 2 × (address + checksum) characters of overhead.
  const out = new AsciiWriter(Math.ceil(imageSize(image) * (2 + (6 + 2 * addressSize) / recordSize)) + 600);
  writeRecord(out, 0, 2, 0, header);
  const dataType = addressSize - 1;
  let records = 0;
  for (const { address, data } of image.segments) {
    for (let offset = 0; offset < data.length; offset += recordSize) {
      writeRecord(out, dataType, addressSize, address + offset, data.subarray(offset, offset + recordSize));
      records++;
    }
  }
  // The count record is optional; it lets a reader notice lost lines. Above 2^24 records there is none.
  const none = new Uint8Array(0);
  if (records <= MAX_S5_COUNT) writeRecord(out, 5, 2, records, none);
  else if (records <= MAX_S6_COUNT) writeRecord(out, 6, 3, records, none);
  writeRecord(out, TERMINATION_TYPE[addressSize], addressSize, entry, none);
  return out.toString();
}

// ---------------------------------------------------------------------------

function hex2(value: number): string {
  return (value & 0xff).toString(16).toUpperCase().padStart(2, '0');
}

function writeRecord(out: AsciiWriter, type: number, addressSize: number, address: number, data: Uint8Array): void {
  const count = addressSize + data.length + CHECKSUM_SIZE;
  out.reserve(2 + 2 * (count + 1) + 1);
  out.char(LETTER_S);
  out.char(DIGIT_0 + type);
  out.byte(count);
  let sum = count;
  for (let shift = addressSize - 1; shift >= 0; shift--) {
    const byte = Math.floor(address / 2 ** (8 * shift)) & 0xff;
    out.byte(byte);
    sum += byte;
  }
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    out.byte(byte);
    sum += byte;
  }
  out.byte(~sum);
  out.char(NEWLINE);
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0b || code === 0x0c;
}

/** Value of one hex digit, or -1. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** Two hex digits at `index`, already validated. */
function readByte(text: string, index: number): number {
  return (hexValue(text.charCodeAt(index)) << 4) | hexValue(text.charCodeAt(index + 1));
}

/** A character quoted for an error message, control characters escaped. */
function describeChar(text: string, index: number): string {
  return JSON.stringify(String.fromCodePoint(text.codePointAt(index) ?? 0)).replace(/^"|"$/g, "'");
}

/**
 * Gathers data records into contiguous runs inside one preallocated pool, so
 * a large file costs one copy per byte and one segment per run, not one per
 * record. (The same helper lives in hex.ts; the file list of this change
 * allowed no shared module.)
 */
class RunCollector {
  private readonly pool: Uint8Array;
  private used = 0;
  private runStart = 0;
  private runAddress = -1;
  private firstLine = 0;
  private lastLine = 0;
  private readonly pieces: SourcedSegment[] = [];

  /** `capacity` must bound the total data bytes: half the text length does, as each byte takes two digits. */
  constructor(capacity: number, private readonly source: string) {
    this.pool = new Uint8Array(capacity);
  }

  add(address: number, data: Uint8Array, line: number): void {
    if (this.runAddress < 0 || address !== this.runAddress + (this.used - this.runStart)) {
      this.flush();
      this.runAddress = address;
      this.runStart = this.used;
      this.firstLine = line;
    }
    this.pool.set(data, this.used);
    this.used += data.length;
    this.lastLine = line;
  }

  finish(): SourcedSegment[] {
    this.flush();
    return this.pieces;
  }

  private flush(): void {
    if (this.runAddress < 0 || this.used === this.runStart) return;
    const lines = this.firstLine === this.lastLine ? `line ${this.firstLine}` : `lines ${this.firstLine}–${this.lastLine}`;
    this.pieces.push({
      address: this.runAddress,
      data: this.pool.slice(this.runStart, this.used),
      source: `${this.source} ${lines}`,
    });
    this.runAddress = -1;
  }
}

/** Upper-case hex digits as character codes. */
const HEX_DIGITS = new TextEncoder().encode('0123456789ABCDEF');
const NEWLINE = 0x0a;

/**
 * Builds ASCII output in one growing byte buffer: linear in the output size
 * and light on the garbage collector, where a string per record joined at
 * the end is not, for images of tens of MiB.
 */
class AsciiWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(estimate: number) {
    this.buffer = new Uint8Array(Math.max(estimate, 64));
  }

  /** Makes room for `n` more characters. */
  reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    const bigger = new Uint8Array(Math.max(this.buffer.length * 2, this.length + n));
    bigger.set(this.buffer.subarray(0, this.length));
    this.buffer = bigger;
  }

  /** Appends one character code; room must have been reserved. */
  char(code: number): void {
    this.buffer[this.length++] = code;
  }

  /** Appends a byte as two hex digits; room must have been reserved. */
  byte(value: number): void {
    this.buffer[this.length++] = HEX_DIGITS[(value >>> 4) & 0xf]!;
    this.buffer[this.length++] = HEX_DIGITS[value & 0xf]!;
  }

  toString(): string {
    return new TextDecoder().decode(this.buffer.subarray(0, this.length));
  }
}
