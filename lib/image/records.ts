/**
 * What the two line-oriented hex formats, Intel HEX (`hex.ts`) and Motorola
 * S-records (`srec.ts`), share: walking the text line by line, decoding hex
 * digits, gathering data records into segments, and writing hex digits into
 * one growing buffer. Each format keeps its own record layout, checksum rule
 * and error messages; this module knows nothing of either.
 * @module
 */
import type { SourcedSegment } from './image.js';

/** A byte-order mark some editors put at the start of a text file; skipped. */
const BYTE_ORDER_MARK = 0xfeff;
/** The smallest buffer {@link AsciiWriter} starts with. */
const MIN_WRITER_CAPACITY = 64;

/** Line feed, the end of every record the writers emit. */
export const NEWLINE = 0x0a;

/** Upper-case hex digits as character codes. */
const HEX_DIGITS = new TextEncoder().encode('0123456789ABCDEF');

/**
 * Walks a record file line by line without copying: each call of
 * {@link RecordLines.next} moves to the next line that is not blank and
 * leaves its bounds in `start` and `end` (trailing whitespace, including the
 * `\r` of CRLF, already cut). A leading byte-order mark is skipped. `line`
 * counts every line, blank ones too, so error messages name the line an
 * editor shows.
 *
 * @example
 * ```ts
 * const lines = new RecordLines(text);
 * while (lines.next()) {
 *   const record = text.slice(lines.start, lines.end); // e.g. ':00000001FF'
 * }
 * ```
 */
export class RecordLines {
  /** 1-based number of the current line; after the last, the number of lines read. */
  line = 0;
  /** Index of the current line's first character. */
  start = 0;
  /** Index one past the current line's last character that is not whitespace. */
  end = 0;
  private pos: number;

  constructor(private readonly text: string) {
    this.pos = text.charCodeAt(0) === BYTE_ORDER_MARK ? 1 : 0;
  }

  /** Moves to the next non-blank line; `false` once the text is used up. */
  next(): boolean {
    const { text } = this;
    while (this.pos < text.length) {
      let end = text.indexOf('\n', this.pos);
      if (end < 0) end = text.length;
      this.line++;
      const start = this.pos;
      this.pos = end + 1;
      while (end > start && isWhitespace(text.charCodeAt(end - 1))) end--;
      if (end > start) {
        this.start = start;
        this.end = end;
        return true;
      }
    }
    return false;
  }
}

/**
 * Index of the first character in `text[from, to)` that is not a hex digit
 * (either case), or -1 if all are.
 *
 * @example
 * ```ts
 * findNonHexDigit(':0G', 1, 3); // 2
 * ```
 */
export function findNonHexDigit(text: string, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    if (hexValue(text.charCodeAt(i)) < 0) return i;
  }
  return -1;
}

/**
 * Decodes `length` bytes of hex digits starting at `text[from]` into the
 * start of `into`, and returns the plain sum of the bytes (for the record's
 * checksum). The digits must have been checked with {@link findNonHexDigit}.
 */
export function decodeHexBytes(text: string, from: number, into: Uint8Array, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) {
    const value = readHexByte(text, from + 2 * i);
    into[i] = value;
    sum += value;
  }
  return sum;
}

/** The byte written by the two hex digits at `text[index]`, already checked with {@link findNonHexDigit}. */
export function readHexByte(text: string, index: number): number {
  return (hexValue(text.charCodeAt(index)) << 4) | hexValue(text.charCodeAt(index + 1));
}

/**
 * The low byte of `value` as two upper-case hex digits, as record files and
 * their error messages write bytes.
 *
 * @example
 * ```ts
 * hex2(0x1ff); // 'FF'
 * ```
 */
export function hex2(value: number): string {
  return (value & 0xff).toString(16).toUpperCase().padStart(2, '0');
}

/**
 * A character quoted for an error message, control characters escaped.
 *
 * @example
 * ```ts
 * describeChar('\tS1', 0); // "'\\t'"
 * ```
 */
export function describeChar(text: string, index: number): string {
  return JSON.stringify(String.fromCodePoint(text.codePointAt(index) ?? 0)).replace(/^"|"$/g, "'");
}

/** Value of one hex digit's character code, or -1. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** Space, tab, CR, VT, FF: what may trail a record on its line. */
function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0b || code === 0x0c;
}

/**
 * Gathers data records into contiguous runs inside one preallocated pool, so
 * a large file costs one copy per byte and one segment per run, not one per
 * record. Each segment's source names the file and the lines it came from
 * (`app.hex lines 2–9`), for the overlap errors of `createImage`.
 *
 * @example
 * ```ts
 * const runs = new RunCollector(text.length >>> 1, 'app.hex');
 * runs.add(0x1000, Uint8Array.of(1, 2), 1);
 * runs.add(0x1002, Uint8Array.of(3), 2);
 * runs.finish(); // [{ address: 0x1000, data: [1, 2, 3], source: 'app.hex lines 1–2' }]
 * ```
 */
export class RunCollector {
  private readonly pool: Uint8Array;
  private used = 0;
  private runStart = 0;
  private runAddress = -1;
  private firstLine = 0;
  private lastLine = 0;
  private readonly pieces: SourcedSegment[] = [];
  /** Index of the collected run starting at each address: a record written again is recognised, not kept twice. */
  private readonly byStart = new Map<number, number>();

  /** `capacity` must bound the total data bytes: half the text length does, as each byte takes two digits. */
  constructor(capacity: number, private readonly source: string) {
    this.pool = new Uint8Array(capacity);
  }

  /** Adds the data of one record (from line `line`), extending the current run if it follows on. */
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

  /** The runs gathered, in the order they were added (not sorted, not merged). */
  finish(): SourcedSegment[] {
    this.flush();
    return this.pieces;
  }

  private flush(): void {
    if (this.runAddress < 0 || this.used === this.runStart) return;
    // A file that writes the same bytes to the same place again (1.5 M duplicate records were seen) costs
    // nothing more: memory stays bounded by the image, not by the record count. Different bytes are kept,
    // for createImage to report the overlap with both sources.
    const earlier = this.byStart.get(this.runAddress);
    if (earlier !== undefined && this.repeats(this.pieces[earlier]!.data)) {
      this.used = this.runStart;
      this.runAddress = -1;
      return;
    }
    if (earlier === undefined) this.byStart.set(this.runAddress, this.pieces.length);
    const lines = this.firstLine === this.lastLine ? `line ${this.firstLine}` : `lines ${this.firstLine}–${this.lastLine}`;
    this.pieces.push({
      address: this.runAddress,
      data: this.pool.slice(this.runStart, this.used),
      source: `${this.source} ${lines}`,
    });
    this.runAddress = -1;
  }

  /** The current run's bytes are a prefix of `data`. */
  private repeats(data: Uint8Array): boolean {
    const length = this.used - this.runStart;
    if (length > data.length) return false;
    for (let i = 0; i < length; i++) if (this.pool[this.runStart + i] !== data[i]) return false;
    return true;
  }
}

/**
 * Builds ASCII output in one growing byte buffer: linear in the output size
 * and light on the garbage collector, where a string per record joined at
 * the end is not, for images of tens of MiB.
 *
 * @example
 * ```ts
 * const out = new AsciiWriter(16);
 * out.reserve(4);
 * out.char(0x3a); // ':'
 * out.byte(0x0f);
 * out.char(NEWLINE);
 * out.toString(); // ':0F\n'
 * ```
 */
export class AsciiWriter {
  private buffer: Uint8Array;
  private length = 0;

  /** `estimate` is the expected output length in characters; the buffer grows if it is short. */
  constructor(estimate: number) {
    this.buffer = new Uint8Array(Math.max(estimate, MIN_WRITER_CAPACITY));
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

  /** Appends the low byte of `value` as two hex digits; room must have been reserved. */
  byte(value: number): void {
    this.buffer[this.length++] = HEX_DIGITS[(value >>> 4) & 0xf]!;
    this.buffer[this.length++] = HEX_DIGITS[value & 0xf]!;
  }

  /** Everything written so far. */
  toString(): string {
    return new TextDecoder().decode(this.buffer.subarray(0, this.length));
  }
}
