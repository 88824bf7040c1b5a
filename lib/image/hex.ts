/**
 * Intel HEX: reader and writer.
 *
 * Follows Intel's "Hexadecimal Object File Format Specification", Rev. A
 * (1988). A record is `:LLAAAATT<data>CC`: byte count, 16-bit offset, type,
 * data, and a checksum that makes all bytes of the record sum to 0 (mod 256).
 *
 * | type | record | effect |
 * | --- | --- | --- |
 * | `00` | data | bytes at base + offset |
 * | `01` | end of file | required; only whitespace may follow |
 * | `02` | extended segment address | base = value × 16, offsets wrap within 64 KiB |
 * | `03` | start segment address | entry = CS × 16 + IP |
 * | `04` | extended linear address | base = value × 65536, addresses carry on linearly |
 * | `05` | start linear address | entry = EIP |
 *
 * Addressing when a data record runs past offset `0xFFFF`: in segment mode
 * (after a `02`) the offset wraps to the start of the segment, as the spec says
 * (`SBA + ([DRLO + DRI] MOD 64K)`); in linear mode (after a `04`, and before
 * any extended address record) the address carries on into the next 64 KiB,
 * as the spec says (`(LBA + DRLO + DRI) MOD 4G`). Data that would run past
 * `0xFFFFFFFF` is an error rather than wrapping to address 0. Not every tool
 * reads these corner cases the same way (some carry on linearly in segment
 * mode too), so the writer never emits a record that crosses a 64 KiB
 * boundary: its output means the same to every reader.
 * @module
 */
import { FormatError, UsageError, hex32 } from '../errors.js';
import { createImage, imageSize, type Image } from './image.js';
import { AsciiWriter, NEWLINE, RecordLines, RunCollector, decodeHexBytes, describeChar, findNonHexDigit, hex2, readHexByte } from './records.js';

/** Record types, named as in the Intel specification. */
const RECORD_DATA = 0x00;
const RECORD_EOF = 0x01;
const RECORD_EXTENDED_SEGMENT = 0x02;
const RECORD_START_SEGMENT = 0x03;
const RECORD_EXTENDED_LINEAR = 0x04;
const RECORD_START_LINEAR = 0x05;

/** Byte count, two address bytes, type, checksum: the bytes every record has besides its data. */
const RECORD_OVERHEAD = 5;
/** The byte count is one byte. */
const MAX_DATA_PER_RECORD = 0xff;
const SEGMENT_SIZE = 0x1_0000;
const ADDRESS_SPACE_END = 0x1_0000_0000;
const DEFAULT_RECORD_SIZE = 16;

const COLON = 0x3a;

/** What an Intel HEX file holds: the data, and the start address if the file gives one. */
export interface IntelHexFile {
  /** All data records, merged. */
  image: Image;
  /**
   * From a start linear address record (`05`: EIP), or a start segment
   * address record (`03`: CS × 16 + IP, the real-mode address it denotes).
   * `undefined` if the file has neither.
   */
  entry?: number;
}

/** Options of {@link imageToIntelHex}. */
export interface IntelHexWriteOptions {
  /** Data bytes per record, 1–255. Default 16, the size objcopy writes. */
  recordSize?: number;
  /** Written as a start linear address record (`05`) before the end-of-file record. */
  entry?: number;
}

/**
 * Parses an Intel HEX file, keeping its start address.
 *
 * Lines may end in LF or CRLF; blank lines and trailing whitespace are
 * ignored; hex digits may be either case. Every record's checksum is checked.
 *
 * @param text - The whole file.
 * @param source - The file name, used in error messages and segment sources.
 * @throws {@link FormatError} for anything malformed, with the 1-based line number
 *   as `offset` and in the message (e.g. `app.hex line 7: checksum mismatch …`).
 * @throws {@link ImageOverlapError} if two records write different bytes to one address.
 *
 * @example
 * ```ts
 * const { image, entry } = parseIntelHex(await readFile('app.hex', 'utf8'), 'app.hex');
 * ```
 */
export function parseIntelHex(text: string, source: string): IntelHexFile {
  const runs = new RunCollector(text.length >>> 1, source);
  const record = new Uint8Array(MAX_DATA_PER_RECORD + RECORD_OVERHEAD);
  let segmentMode = false;
  let base = 0;
  let entry: number | undefined;
  let entryLine = 0;
  let eofLine = 0;
  const lines = new RecordLines(text);
  const fail = (message: string): never => {
    throw new FormatError(`${source} line ${lines.line}: ${message}`, source, lines.line);
  };
  const needLength = (name: string, count: number, n: number): void => {
    if (count !== n) fail(`${name} record needs ${n} data bytes, has ${count}`);
  };

  while (lines.next()) {
    const { start, end, line } = lines;
    if (eofLine !== 0) fail(`record after the end-of-file record of line ${eofLine}`);
    if (text.charCodeAt(start) !== COLON) fail(`expected ':' at the start of a record, found ${describeChar(text, start)}`);

    const digits = end - start - 1;
    const bad = findNonHexDigit(text, start + 1, end);
    if (bad >= 0) fail(`bad hex digit ${describeChar(text, bad)} at column ${bad - start + 1}`);
    if (digits % 2 !== 0) fail(`odd number of hex digits (${digits})`);
    if (digits < 2 * RECORD_OVERHEAD) {
      fail(`record is truncated: ${digits} hex digits after ':', a record needs at least ${2 * RECORD_OVERHEAD}`);
    }
    const count = readHexByte(text, start + 1);
    const expected = 2 * (count + RECORD_OVERHEAD);
    if (digits < expected) fail(`record is truncated: byte count 0x${hex2(count)} needs ${expected} hex digits after ':', found ${digits}`);
    if (digits > expected) fail(`record is longer than its byte count 0x${hex2(count)} says: ${digits} hex digits after ':', expected ${expected}`);

    const length = count + RECORD_OVERHEAD;
    const sum = decodeHexBytes(text, start + 1, record, length);
    if ((sum & 0xff) !== 0) {
      const stated = record[length - 1]!;
      fail(`checksum mismatch: record says 0x${hex2(stated)}, its bytes need 0x${hex2((stated - sum) & 0xff)}`);
    }

    const offset = (record[1]! << 8) | record[2]!;
    const type = record[3]!;
    const data = record.subarray(4, 4 + count);
    switch (type) {
      case RECORD_DATA: {
        if (count === 0) break;
        if (segmentMode) {
          // Intel spec: the offset wraps within the 64 KiB segment.
          const first = Math.min(count, SEGMENT_SIZE - offset);
          runs.add(base + offset, data.subarray(0, first), line);
          if (first < count) runs.add(base, data.subarray(first), line);
        } else {
          const address = base + offset;
          if (address + count > ADDRESS_SPACE_END) {
            fail(`${count} data bytes at ${hex32(address)} run past the end of the 32-bit address space`);
          }
          runs.add(address, data, line);
        }
        break;
      }
      case RECORD_EOF:
        needLength('end-of-file', count, 0);
        eofLine = line;
        break;
      case RECORD_EXTENDED_SEGMENT:
        needLength('extended segment address', count, 2);
        segmentMode = true;
        base = ((data[0]! << 8) | data[1]!) * 16;
        break;
      case RECORD_EXTENDED_LINEAR:
        needLength('extended linear address', count, 2);
        segmentMode = false;
        base = ((data[0]! << 8) | data[1]!) * SEGMENT_SIZE;
        break;
      case RECORD_START_SEGMENT:
      case RECORD_START_LINEAR: {
        const isLinear = type === RECORD_START_LINEAR;
        needLength(isLinear ? 'start linear address' : 'start segment address', count, 4);
        const value = isLinear
          ? readUint32(data)
          : ((data[0]! << 8) | data[1]!) * 16 + ((data[2]! << 8) | data[3]!);
        if (entry !== undefined && entry !== value) {
          fail(`start address ${hex32(value)} disagrees with ${hex32(entry)} given on line ${entryLine}`);
        }
        entry = value;
        entryLine = line;
        break;
      }
      default:
        fail(`unknown record type 0x${hex2(type)}`);
    }
  }

  if (eofLine === 0) {
    const at = Math.max(lines.line, 1);
    throw new FormatError(`${source} line ${at}: missing end-of-file record (:00000001FF); is the file truncated?`, source, at);
  }
  const image = createImage(runs.finish());
  return entry === undefined ? { image } : { image, entry };
}

/**
 * Parses an Intel HEX file into an {@link Image}, dropping the start address.
 * See {@link parseIntelHex} for the rules and errors.
 *
 * @example
 * ```ts
 * const image = hexToImage(':0400000001020304F2\n:00000001FF\n', 'inline');
 * // image.segments: [{ address: 0, data: Uint8Array [1, 2, 3, 4] }]
 * ```
 */
export function hexToImage(text: string, source: string): Image {
  return parseIntelHex(text, source).image;
}

/**
 * Writes an {@link Image} as Intel HEX: data records of `recordSize` bytes,
 * an extended linear address record (`04`) wherever the upper 16 address bits
 * change, a start linear address record (`05`) if `entry` is given, and the
 * end-of-file record. Records never cross a 64 KiB boundary. Lines end in LF.
 *
 * @throws {@link UsageError} for a record size outside 1–255, an entry that is
 *   not a 32-bit address, or a segment that runs past `0xFFFFFFFF`.
 *
 * @example
 * ```ts
 * const text = imageToIntelHex(image, { recordSize: 32, entry: 0x0800_0101 });
 * ```
 */
export function imageToIntelHex(image: Image, options: IntelHexWriteOptions = {}): string {
  const recordSize = options.recordSize ?? DEFAULT_RECORD_SIZE;
  if (!Number.isInteger(recordSize) || recordSize < 1 || recordSize > MAX_DATA_PER_RECORD) {
    throw new UsageError(`Intel HEX record size must be 1–${MAX_DATA_PER_RECORD} bytes, got ${String(recordSize)}`);
  }
  const { entry } = options;
  if (entry !== undefined && !isAddress(entry)) {
    throw new UsageError(`entry point ${String(entry)} is not a 32-bit address`);
  }

  // Two digits per byte, plus each record's 13 characters of overhead.
  const out = new AsciiWriter(Math.ceil(imageSize(image) * (2 + 13 / recordSize)) + 64);
  let upper = 0;
  for (const segment of image.segments) {
    const { data } = segment;
    if (!isAddress(segment.address) || segment.address + data.length > ADDRESS_SPACE_END) {
      throw new UsageError(`segment at ${hex32(segment.address)} (${data.length} bytes) does not fit the 32-bit address space`);
    }
    let address = segment.address;
    let offset = 0;
    while (offset < data.length) {
      const high = Math.floor(address / SEGMENT_SIZE);
      if (high !== upper) {
        writeRecord(out, RECORD_EXTENDED_LINEAR, 0, Uint8Array.of(high >>> 8, high & 0xff));
        upper = high;
      }
      const low = address % SEGMENT_SIZE;
      const n = Math.min(recordSize, data.length - offset, SEGMENT_SIZE - low);
      writeRecord(out, RECORD_DATA, low, data.subarray(offset, offset + n));
      address += n;
      offset += n;
    }
  }
  if (entry !== undefined) {
    writeRecord(out, RECORD_START_LINEAR, 0, Uint8Array.of(entry >>> 24, (entry >>> 16) & 0xff, (entry >>> 8) & 0xff, entry & 0xff));
  }
  writeRecord(out, RECORD_EOF, 0, new Uint8Array(0));
  return out.toString();
}

// ---------------------------------------------------------------------------

function writeRecord(out: AsciiWriter, type: number, offset: number, data: Uint8Array): void {
  out.reserve(2 * (data.length + RECORD_OVERHEAD) + 2);
  out.char(COLON);
  out.byte(data.length);
  out.byte(offset >>> 8);
  out.byte(offset);
  out.byte(type);
  let sum = data.length + (offset >>> 8) + (offset & 0xff) + type;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    out.byte(byte);
    sum += byte;
  }
  out.byte(-sum);
  out.char(NEWLINE);
}

function isAddress(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < ADDRESS_SPACE_END;
}

function readUint32(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}
