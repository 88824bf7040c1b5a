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
import { createImage, imageEnd, imageSize, type Image } from './image.js';
import { AsciiWriter, NEWLINE, RecordLines, RunCollector, decodeHexBytes, describeChar, findNonHexDigit, hex2, readHexByte } from './records.js';

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
  const lines = new RecordLines(text);
  const fail = (message: string): never => {
    throw new FormatError(`${source} line ${lines.line}: ${message}`, source, lines.line);
  };

  while (lines.next()) {
    const { start, end, line } = lines;
    if (endLine !== 0) fail(`record after the termination record of line ${endLine}`);
    if (text.charCodeAt(start) !== LETTER_S) fail(`expected 'S' at the start of a record, found ${describeChar(text, start)}`);
    if (end - start < 2) fail('record is truncated: no record type after \'S\'');
    const type = text.charCodeAt(start + 1) - DIGIT_0;
    const addressSize = ADDRESS_SIZE[type];
    if (addressSize === undefined) fail(`unknown record type ${JSON.stringify(text.slice(start, start + 2)).replace(/^"|"$/g, "'")}`);
    const size = addressSize!;

    const digits = end - start - 2;
    const bad = findNonHexDigit(text, start + 2, end);
    if (bad >= 0) fail(`bad hex digit ${describeChar(text, bad)} at column ${bad - start + 1}`);
    if (digits % 2 !== 0) fail(`odd number of hex digits (${digits})`);
    if (digits < 2) fail('record is truncated: no byte count');
    const count = readHexByte(text, start + 2);
    const expected = 2 * (count + 1);
    if (digits < expected) fail(`record is truncated: byte count 0x${hex2(count)} needs ${expected} hex digits after 'S${type}', found ${digits}`);
    if (digits > expected) fail(`record is longer than its byte count 0x${hex2(count)} says: ${digits} hex digits after 'S${type}', expected ${expected}`);
    if (count < size + CHECKSUM_SIZE) fail(`byte count 0x${hex2(count)} is too small for the address and checksum of an S${type} record (${size + CHECKSUM_SIZE})`);

    const sum = decodeHexBytes(text, start + 2, record, count + 1);
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
    const at = Math.max(lines.line, 1);
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
