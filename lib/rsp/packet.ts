/**
 * The GDB Remote Serial Protocol on the byte level: framing, checksums, binary
 * escaping, run-length decoding, hex, and an incremental parser of the byte
 * stream a GDB server sends. Pure: no I/O, no timers, no logging.
 *
 * Rules from the GDB manual, "Remote Protocol" → "Overview":
 * - a packet is `$` payload `#` and two hex digits, the sum of the payload
 *   bytes modulo 256;
 * - binary data escapes `#`, `$`, `}` (and, by every server, `*`) as `}`
 *   followed by the byte XOR 0x20;
 * - replies may be run-length encoded: `c*N` stands for `c` followed by
 *   `N - 29` more copies of `c`;
 * - `+` / `-` acknowledge, `%…#cs` is a notification (non-stop mode), and a
 *   raw 0x03 outside a packet is an interrupt request.
 *
 * Order of decoding a received payload: {@link decodeRunLength} first, then
 * {@link unescapeBinary} (for binary replies only) — the same order as GDB's
 * `read_frame` followed by `remote_unescape_input`.
 * @module
 */
import { ProtocolError, ReplyFormatError } from '../errors.js';

/** Default cap on a received packet's payload, bytes (1 MiB): far above any real server's `PacketSize`. */
export const DEFAULT_MAX_PACKET = 1 << 20;

/** Bytes a frame adds around its payload: `$`, `#` and two checksum digits. */
export const PACKET_OVERHEAD = 4;

const DOLLAR = 0x24; // '$' starts a packet
const HASH = 0x23; // '#' ends a payload
const PERCENT = 0x25; // '%' starts a notification
const ESCAPE = 0x7d; // '}' escapes the next byte
const STAR = 0x2a; // '*' run-length marker
const PLUS = 0x2b; // '+' ack
const MINUS = 0x2d; // '-' nack
const CTRL_C = 0x03; // interrupt request
const ESCAPE_XOR = 0x20;
/** A run-length count character encodes `char - 29` extra copies (GDB manual, "Overview"). */
const RLE_BIAS = 29;
/** Largest count byte GDB's `read_frame` accepts (it checks the repeat fits 255 - its own bias). */
const RLE_MAX_COUNT_CHAR = 0xff;

const HEX_DIGITS = '0123456789abcdef';

/** Value of an ASCII hex digit (either case), or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function needsEscape(b: number): boolean {
  return b === HASH || b === DOLLAR || b === ESCAPE || b === STAR;
}

/**
 * The RSP checksum of a payload: the sum of its bytes modulo 256.
 *
 * @example
 * ```ts
 * checksum(new TextEncoder().encode('OK')); // 0x9a
 * ```
 */
export function checksum(payload: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) sum += payload[i]!;
  return sum & 0xff;
}

/**
 * Frames a payload: `$` + payload + `#` + two lower-case hex checksum digits.
 * The payload must already be escaped (see {@link escapeBinary}); it is copied
 * verbatim.
 */
export function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + PACKET_OVERHEAD);
  out[0] = DOLLAR;
  out.set(payload, 1);
  const cs = checksum(payload);
  const end = payload.length + 1;
  out[end] = HASH;
  out[end + 1] = HEX_DIGITS.charCodeAt(cs >> 4);
  out[end + 2] = HEX_DIGITS.charCodeAt(cs & 0xf);
  return out;
}

/**
 * Encodes a string one byte per character (latin1) — the way every textual
 * RSP packet is spelled.
 *
 * @throws {@link ProtocolError} for a character above U+00FF, which has no
 * single-byte form (silently truncating it would send a different packet).
 */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) {
      throw new ProtocolError(
        `Packet text has character U+${c.toString(16).toUpperCase().padStart(4, '0')} at offset ${i}, which is not a single byte`,
      );
    }
    out[i] = c;
  }
  return out;
}

/**
 * Frames a textual payload (latin1, one byte per character). The text is not
 * escaped: use it for commands whose payload cannot contain `#`, `$`, `}`.
 *
 * @example
 * ```ts
 * frameText('qSupported'); // bytes of "$qSupported#37"
 * ```
 * @throws {@link ProtocolError} for a character above U+00FF.
 */
export function frameText(payload: string): Uint8Array {
  return frame(latin1Bytes(payload));
}

/**
 * Escapes binary data for `X`, `vFlashWrite` and the like: each of `#`, `$`,
 * `}` and `*` becomes `}` followed by the byte XOR 0x20. `*` is not required by
 * the manual, but escaping it keeps a server's run-length decoder from seeing a
 * repeat marker in our data, and every server does the same.
 */
export function escapeBinary(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(escapedLength(data));
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (needsEscape(b)) {
      out[o++] = ESCAPE;
      out[o++] = b ^ ESCAPE_XOR;
    } else {
      out[o++] = b;
    }
  }
  return out;
}

/**
 * Length of `data[start..end)` after {@link escapeBinary}, without allocating.
 *
 * @param start - first byte, default 0
 * @param end - one past the last byte, default `data.length`
 */
export function escapedLength(data: Uint8Array, start = 0, end = data.length): number {
  let n = 0;
  for (let i = start; i < end; i++) n += needsEscape(data[i]!) ? 2 : 1;
  return n;
}

/**
 * Longest prefix of `data[start..]` whose escaped form fits in `budget` bytes,
 * as a count of source bytes. Used to fill an `X`/`vFlashWrite` packet up to
 * the server's `PacketSize` without splitting an escape pair.
 *
 * @example
 * ```ts
 * const header = `X${addr.toString(16)},`; // length part added after choosing n
 * const n = fitEscaped(data, offset, packetSize - header.length - 10);
 * ```
 */
export function fitEscaped(data: Uint8Array, start: number, budget: number): number {
  let used = 0;
  let i = start;
  while (i < data.length) {
    const cost = needsEscape(data[i]!) ? 2 : 1;
    if (used + cost > budget) break;
    used += cost;
    i++;
  }
  return i - start;
}

/**
 * Reverses {@link escapeBinary}: `}` + x becomes x XOR 0x20.
 *
 * @throws {@link ProtocolError} if the data ends with a lone `}` (the escaped
 * byte is missing: the packet was cut).
 */
export function unescapeBinary(data: Uint8Array): Uint8Array {
  if (data.indexOf(ESCAPE) < 0) return data.slice();
  const out = new Uint8Array(data.length);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === ESCAPE) {
      if (i + 1 >= data.length) throw new ProtocolError('Binary data ends with an escape character "}" and no escaped byte');
      out[o++] = data[++i]! ^ ESCAPE_XOR;
    } else {
      out[o++] = b;
    }
  }
  return out.slice(0, o);
}

/**
 * Expands run-length encoding in a received payload: `c*N` becomes `c`
 * followed by `N - 29` more copies of `c` (GDB manual: `0* ` is `0000`).
 * Runs chain: the repeated character is the last one output. The count byte is
 * taken verbatim, even when it is `*`.
 *
 * Like GDB's `read_frame`, a count byte from 30 to 255 is accepted (the manual
 * only sends 32–126 without `#`/`$`, but GDB tolerates the rest).
 *
 * Each `*` pair can stand for up to 226 bytes, so a hostile payload expands
 * about 75-fold; pass `maxLength` to refuse more output than you will accept.
 *
 * @param maxLength - largest decoded length accepted, default unlimited
 * @throws {@link ProtocolError} for `*` with nothing before it, `*` as the last
 * byte, a count byte below 30 (zero or negative repeats), or output longer
 * than `maxLength`.
 */
export function decodeRunLength(data: Uint8Array, maxLength = Infinity): Uint8Array {
  const first = data.indexOf(STAR);
  if (first < 0) return data.slice();
  // Exact output size first, so the copy below never reallocates.
  let size = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== STAR) {
      size++;
      continue;
    }
    if (i === 0) throw new ProtocolError('Run-length marker "*" at the start of a packet: nothing to repeat');
    if (i + 1 >= data.length) throw new ProtocolError('Run-length marker "*" at the end of a packet: the count is missing');
    const count = data[i + 1]!;
    if (count <= RLE_BIAS || count > RLE_MAX_COUNT_CHAR) {
      throw new ProtocolError(`Run-length count byte 0x${count.toString(16).padStart(2, '0')} at offset ${i + 1} encodes no repeat (must be above 0x1d)`);
    }
    size += count - RLE_BIAS;
    i++;
  }
  if (size > maxLength) {
    throw new ProtocolError(`Run-length encoded reply expands to ${size} bytes, more than the ${maxLength} accepted`);
  }
  const out = new Uint8Array(size);
  out.set(data.subarray(0, first), 0);
  let o = first;
  for (let i = first; i < data.length; i++) {
    const b = data[i]!;
    if (b !== STAR) {
      out[o++] = b;
      continue;
    }
    const repeats = data[++i]! - RLE_BIAS;
    out.fill(out[o - 1]!, o, o + repeats);
    o += repeats;
  }
  return out;
}

/** `00`…`ff`, indexed by byte value (read-only after module load). */
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, b) => HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 0xf]!);

/** Shortens a reply for an error's `reply` field. */
function abbreviate(text: string, max = 256): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * Lower-case hex of some bytes, two digits per byte (the encoding of `m`, `M`,
 * `g`, `p`, `qRcmd`, register values in stop replies).
 */
export function hexEncode(data: Uint8Array): string {
  let out = '';
  for (let i = 0; i < data.length; i++) out += BYTE_HEX[data[i]!]!;
  return out;
}

/** ASCII codes of the hex digits, for {@link hexEncodeInto}. */
const HEX_CODES = Uint8Array.from(HEX_DIGITS, (c) => c.charCodeAt(0));

/**
 * Writes `data` as lower-case hex digits into `out` at `offset` (2 bytes per
 * input byte), without building a string: the hot path of hex memory writes.
 */
export function hexEncodeInto(data: Uint8Array, out: Uint8Array, offset: number): void {
  let o = offset;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    out[o++] = HEX_CODES[b >> 4]!;
    out[o++] = HEX_CODES[b & 15]!;
  }
}

/**
 * Builds one outgoing packet in a single buffer: the caller appends payload
 * parts (text, hex digits, binary data), the writer escapes binary data and,
 * on {@link PacketWriter.finish}, adds `$`, `#` and the checksum around them.
 * No part is copied twice and no hex string is built: the hot path of memory
 * writes, which for a 32 MiB image are 16,000 packets (per-packet copies
 * showed in peak RSS).
 *
 * Upper layers fill it with payload only and hand it to the connection
 * (`RspConnection.request` or `.pipeline`), which finishes it: `$`, `#`,
 * checksums and escaping stay in lib/rsp.
 *
 * @example
 * ```ts
 * const packet = new PacketWriter(header.length + 2 * data.length);
 * packet.text(`M${address.toString(16)},${data.length.toString(16)}:`).hex(data);
 * await connection.request(packet); // sent as $M…:…#cs
 * ```
 */
export class PacketWriter {
  #buffer: Uint8Array;
  /** Bytes used, `$` included. */
  #length = 1;
  #framed: Uint8Array | undefined;

  /**
   * @param capacity - expected payload length in bytes (escaped); the buffer
   * grows if more is appended, but an exact figure avoids any copy.
   */
  constructor(capacity = 64) {
    this.#buffer = new Uint8Array(Math.max(0, capacity) + PACKET_OVERHEAD);
    this.#buffer[0] = DOLLAR;
  }

  /** Payload bytes appended so far (escaped, as they go on the wire). */
  get length(): number {
    return this.#length - 1;
  }

  /** The payload as appended so far, as a view (for logs). */
  get payload(): Uint8Array {
    return this.#buffer.subarray(1, this.#length);
  }

  /**
   * Appends text, one byte per character (latin1), verbatim: for headers such
   * as `X20000000,800:` that cannot contain `#`, `$` or `}`.
   *
   * @throws {@link ProtocolError} for a character above U+00FF.
   */
  text(value: string): this {
    const at = this.#reserve(value.length);
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c > 0xff) {
        throw new ProtocolError(`Packet text has character U+${c.toString(16).toUpperCase().padStart(4, '0')} at offset ${i}, which is not a single byte`);
      }
      this.#buffer[at + i] = c;
    }
    this.#length = at + value.length;
    return this;
  }

  /** Appends `data` as lower-case hex digits, two per byte (`M`, `G`, `qRcmd`). */
  hex(data: Uint8Array): this {
    const at = this.#reserve(2 * data.length);
    hexEncodeInto(data, this.#buffer, at);
    this.#length = at + 2 * data.length;
    return this;
  }

  /**
   * Appends binary data escaped as {@link escapeBinary} does (`X`,
   * `vFlashWrite`); its escaped length is {@link escapedLength}.
   */
  binary(data: Uint8Array): this {
    let out = this.#buffer;
    let o = this.#reserve(0);
    // Where the payload must end so '#' and the checksum still fit. Escapes are counted (a pass of
    // their own) only if the buffer may run short, and then only for the bytes still to come.
    let end = out.length - PACKET_OVERHEAD + 1;
    for (let i = 0; i < data.length; i++) {
      if (o + 2 > end) {
        this.#length = o;
        this.#reserve(escapedLength(data, i));
        out = this.#buffer;
        end = Infinity;
      }
      const b = data[i]!;
      if (needsEscape(b)) {
        out[o++] = ESCAPE;
        out[o++] = b ^ ESCAPE_XOR;
      } else {
        out[o++] = b;
      }
    }
    this.#length = o;
    return this;
  }

  /**
   * The framed packet: `$` payload `#` checksum, in the writer's own buffer (a
   * view when it was sized larger than needed). Appending after this throws;
   * calling it again returns the same bytes.
   */
  finish(): Uint8Array {
    if (this.#framed) return this.#framed;
    const end = this.#length;
    const buffer = this.#buffer;
    let sum = 0;
    for (let i = 1; i < end; i++) sum += buffer[i]!;
    sum &= 0xff;
    buffer[end] = HASH;
    buffer[end + 1] = HEX_DIGITS.charCodeAt(sum >> 4);
    buffer[end + 2] = HEX_DIGITS.charCodeAt(sum & 0xf);
    const size = end + PACKET_OVERHEAD - 1;
    this.#framed = size === buffer.length ? buffer : buffer.subarray(0, size);
    return this.#framed;
  }

  /** Makes room for `count` more payload bytes; returns where they go. */
  #reserve(count: number): number {
    if (this.#framed) throw new ProtocolError('A packet cannot grow after it was finished');
    const needed = this.#length + count + PACKET_OVERHEAD - 1;
    if (needed > this.#buffer.length) {
      let size = Math.max(this.#buffer.length * 2, 64);
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    return this.#length;
  }
}

/**
 * Bytes of a hex string (either case).
 *
 * @throws {@link ReplyFormatError} on odd length or a non-hex character.
 */
export function hexDecode(text: string): Uint8Array {
  if (text.length % 2 !== 0) {
    throw new ReplyFormatError(`Hex data has odd length ${text.length}`, abbreviate(text));
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text.charCodeAt(2 * i));
    const lo = hexValue(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      const at = hi < 0 ? 2 * i : 2 * i + 1;
      throw new ReplyFormatError(`Hex data has non-hex character ${JSON.stringify(text[at])} at offset ${at}`, abbreviate(text));
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/**
 * One thing found in the byte stream, in arrival order.
 *
 * - `ack` / `nack`: `+` / `-` outside a packet.
 * - `packet`: `$payload#cs`; the payload is raw — still escaped and
 *   run-length encoded, because only the caller knows whether it is binary.
 *   `checksumOk` is false when the digits are wrong or not hex.
 * - `notification`: `%payload#cs` (non-stop mode), same encoding as `packet`.
 * - `interrupt`: a 0x03 byte outside a packet (what a server receives).
 * - `garbage`: bytes outside any packet that are none of the above, and
 *   partial packets dropped by a resync (see {@link PacketParser}).
 */
export type WireEvent =
  | { kind: 'ack' }
  | { kind: 'nack' }
  | { kind: 'packet'; payload: Uint8Array; checksumOk: boolean }
  | { kind: 'notification'; payload: Uint8Array; checksumOk: boolean }
  | { kind: 'interrupt' }
  | { kind: 'garbage'; bytes: Uint8Array };

/** Options of a {@link PacketParser}. */
export interface PacketParserOptions {
  /** Largest payload accepted, bytes (escaped, before run-length expansion). Default {@link DEFAULT_MAX_PACKET}. */
  maxPacket?: number;
}

const enum State {
  Idle,
  Payload,
  Checksum1,
  Checksum2,
}

const INITIAL_BUFFER = 256;

/**
 * Incremental parser of an RSP byte stream. Feed it chunks as they arrive,
 * split anywhere; it returns the events each chunk completes.
 *
 * Framing rules:
 * - Inside a packet only `#` (end of payload) and `$` are special; escaping
 *   and run-length encoding are left to the caller, so the framer never looks
 *   at `}` or `*` — an escaped byte is never `#` or `$`, and the manual forbids
 *   run-length counts that would be.
 * - An unescaped `$` inside a packet (or in place of a checksum digit) means
 *   the server gave up on that packet and started a new one, as GDB assumes:
 *   the partial packet is reported as `garbage` (its bytes, `$` included) and
 *   a new packet starts at the `$`.
 * - Checksum digits are read in either case; a non-hex digit gives a `packet`
 *   event with `checksumOk: false`, so the connection can answer `-`.
 *
 * Cost is O(bytes): each byte is looked at once, and the payload buffer grows
 * by doubling up to `maxPacket`.
 *
 * @example
 * ```ts
 * const parser = new PacketParser();
 * socket.on('data', (chunk) => {
 *   for (const event of parser.push(chunk)) {
 *     if (event.kind === 'packet' && event.checksumOk) handle(decodeRunLength(event.payload));
 *   }
 * });
 * ```
 */
export class PacketParser {
  readonly #maxPacket: number;
  #state = State.Idle;
  #isNotification = false;
  #buffer = new Uint8Array(INITIAL_BUFFER);
  #length = 0;
  #firstDigit = 0;

  /**
   * @param options - `maxPacket`: payload cap in bytes, default {@link DEFAULT_MAX_PACKET}.
   */
  constructor(options: PacketParserOptions = {}) {
    const max = options.maxPacket ?? DEFAULT_MAX_PACKET;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxPacket must be a positive integer, got ${max}`);
    this.#maxPacket = max;
  }

  /**
   * Feeds bytes as they arrive (any fragmentation). Returns the events
   * completed by them, in order.
   *
   * @throws {@link ProtocolError} when a payload grows beyond `maxPacket`: a
   * server that never ends its packet must not make us buffer without bound.
   * The partial packet is dropped and events completed earlier in the same
   * chunk are lost; the link should be closed.
   */
  push(chunk: Uint8Array): WireEvent[] {
    const events: WireEvent[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case State.Idle: {
          const b = chunk[i]!;
          if (b === DOLLAR || b === PERCENT) {
            this.#begin(b === PERCENT);
            i++;
          } else if (b === PLUS) {
            events.push({ kind: 'ack' });
            i++;
          } else if (b === MINUS) {
            events.push({ kind: 'nack' });
            i++;
          } else if (b === CTRL_C) {
            events.push({ kind: 'interrupt' });
            i++;
          } else {
            // One garbage event per run of unrecognized bytes.
            let j = i + 1;
            while (j < n && !isIdleSignificant(chunk[j]!)) j++;
            events.push({ kind: 'garbage', bytes: chunk.slice(i, j) });
            i = j;
          }
          break;
        }
        case State.Payload: {
          let j = i;
          while (j < n) {
            const b = chunk[j]!;
            if (b === HASH || b === DOLLAR) break;
            j++;
          }
          this.#append(chunk, i, j);
          i = j;
          if (i < n) {
            if (chunk[i] === HASH) {
              this.#state = State.Checksum1;
            } else {
              this.#resync(events);
            }
            i++;
          }
          break;
        }
        case State.Checksum1: {
          const b = chunk[i++]!;
          if (b === DOLLAR) {
            this.#resync(events);
          } else {
            this.#firstDigit = b;
            this.#state = State.Checksum2;
          }
          break;
        }
        case State.Checksum2: {
          const b = chunk[i++]!;
          if (b === DOLLAR) {
            this.#resync(events, [this.#firstDigit]);
          } else {
            events.push(this.#complete(this.#firstDigit, b));
          }
          break;
        }
      }
    }
    return events;
  }

  /** Drops any partial packet (after a timeout or resync); the next byte is read as outside a packet. */
  reset(): void {
    this.#state = State.Idle;
    this.#length = 0;
    if (this.#buffer.length > 64 * INITIAL_BUFFER) this.#buffer = new Uint8Array(INITIAL_BUFFER);
  }

  #begin(notification: boolean): void {
    this.#state = State.Payload;
    this.#isNotification = notification;
    this.#length = 0;
  }

  #append(chunk: Uint8Array, from: number, to: number): void {
    const count = to - from;
    if (count === 0) return;
    const needed = this.#length + count;
    if (needed > this.#maxPacket) {
      this.reset();
      throw new ProtocolError(`Received a packet longer than ${this.#maxPacket} bytes without its end "#"`);
    }
    if (needed > this.#buffer.length) {
      let size = this.#buffer.length * 2;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(Math.min(size, this.#maxPacket));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(chunk.subarray(from, to), this.#length);
    this.#length = needed;
  }

  /** An unescaped `$` interrupted the current packet: report it as garbage and start a new one. */
  #resync(events: WireEvent[], digits: number[] = []): void {
    const inChecksum = this.#state !== State.Payload;
    const dropped = new Uint8Array(1 + this.#length + (inChecksum ? 1 + digits.length : 0));
    dropped[0] = this.#isNotification ? PERCENT : DOLLAR;
    dropped.set(this.#buffer.subarray(0, this.#length), 1);
    if (inChecksum) {
      dropped[1 + this.#length] = HASH;
      dropped.set(digits, 2 + this.#length);
    }
    events.push({ kind: 'garbage', bytes: dropped });
    this.#begin(false);
  }

  #complete(d1: number, d2: number): WireEvent {
    const payload = this.#buffer.slice(0, this.#length);
    const hi = hexValue(d1);
    const lo = hexValue(d2);
    const checksumOk = hi >= 0 && lo >= 0 && ((hi << 4) | lo) === checksum(payload);
    const kind = this.#isNotification ? 'notification' : 'packet';
    this.#state = State.Idle;
    this.#length = 0;
    return { kind, payload, checksumOk };
  }
}

/** Bytes that end a run of garbage outside a packet. */
function isIdleSignificant(b: number): boolean {
  return b === DOLLAR || b === PERCENT || b === PLUS || b === MINUS || b === CTRL_C;
}
