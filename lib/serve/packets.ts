/**
 * The packets the proxy reads or answers itself, parsed and built as data.
 * Pure: payloads in (latin1 strings, one character per byte, still escaped
 * where binary), values out.
 *
 * Everything here follows gdb 13's `remote.c` and the GDB manual ("General
 * Query Packets", "Packets"): `vFlashErase:ADDR,LEN`, `vFlashWrite:ADDR:DATA`
 * (binary, `}`-escaped), `vFlashDone`, `qCRC:ADDR,LEN` → `C` + 8 hex digits,
 * `qXfer:memory-map:read::OFFSET,LENGTH` → `m`/`l` + escaped data.
 * @module
 */
import { parseSupported } from '../gdb/servers.js';
import { escapeBinary, latin1Bytes, unescapeBinary } from '../rsp/packet.js';

/** A `ADDR,LEN` pair. */
export interface AddressLength {
  address: number;
  length: number;
}

const HEX = /^[0-9a-fA-F]{1,16}$/;

function parseHex(text: string | undefined): number | undefined {
  if (text === undefined || !HEX.test(text)) return undefined;
  const n = parseInt(text, 16);
  return n <= 0xffffffff ? n : undefined;
}

/** `ADDR,LEN` (hex) after `prefix`, or `undefined` when the payload is not that packet or is malformed. */
export function parseAddressLength(payload: string, prefix: string): AddressLength | undefined {
  if (!payload.startsWith(prefix)) return undefined;
  const [a, l, ...rest] = payload.slice(prefix.length).split(',');
  const address = parseHex(a);
  const length = parseHex(l);
  if (address === undefined || length === undefined || rest.length > 0) return undefined;
  return { address, length };
}

/** `vFlashWrite:ADDR:DATA` → the address and the unescaped data; `undefined` when malformed. */
export function parseFlashWrite(payload: string): { address: number; data: Uint8Array } | undefined {
  const prefix = 'vFlashWrite:';
  if (!payload.startsWith(prefix)) return undefined;
  const colon = payload.indexOf(':', prefix.length);
  if (colon < 0) return undefined;
  const address = parseHex(payload.slice(prefix.length, colon));
  if (address === undefined) return undefined;
  try {
    return { address, data: unescapeBinary(latin1Bytes(payload.slice(colon + 1))) };
  } catch {
    return undefined; // a lone trailing '}': the packet was cut
  }
}

/** `qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH` → its parts, or `undefined`. */
export function parseXferRead(payload: string): { object: string; annex: string; offset: number; length: number } | undefined {
  const m = /^qXfer:([^:]+):read:([^:]*):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(payload);
  if (!m) return undefined;
  return { object: m[1]!, annex: m[2]!, offset: parseInt(m[3]!, 16), length: parseInt(m[4]!, 16) };
}

/**
 * One chunk of a qXfer object: `m` + data when more follows, `l` + data for
 * the last, binary-escaped, as a latin1 payload. `length` counts data bytes
 * before escaping, which is how gdb sizes its request.
 */
export function xferChunk(document: Uint8Array, offset: number, length: number): string {
  const end = Math.min(document.length, offset + length);
  const data = offset >= document.length ? new Uint8Array(0) : document.subarray(offset, end);
  return (end >= document.length ? 'l' : 'm') + Buffer.from(escapeBinary(data)).toString('latin1');
}

/**
 * The `qSupported` reply the proxy gives: the upstream reply, edited, never
 * replaced. Every feature is kept in its place except:
 * - `qXfer:memory-map:read` becomes `+` (the proxy serves the map);
 * - `QStartNoAckMode+` is added (the proxy answers it itself, per client;
 *   the upstream link keeps the mode it negotiated);
 * - `QNonStop` becomes `-`: the proxy runs all-stop (a `%Stop` notification
 *   has no single client to go to);
 * - `PacketSize` becomes the smaller of the upstream's and `maxPacket`: a
 *   client's packet is forwarded as it is, so the upstream must accept it.
 */
export function editSupported(upstreamReply: string, maxPacket: number): { reply: string; packetSize: number | undefined } {
  const items = upstreamReply.split(';').filter((item) => item !== '');
  const features = parseSupported(upstreamReply);
  const sizeText = features.get('PacketSize');
  let packetSize = typeof sizeText === 'string' && /^[0-9a-fA-F]+$/.test(sizeText) ? parseInt(sizeText, 16) : undefined;
  if (packetSize !== undefined) packetSize = Math.min(packetSize, maxPacket);
  const name = (item: string) => item.replace(/[=].*$/, '').replace(/[+\-?]$/, '');
  const out = items.map((item) => {
    switch (name(item)) {
      case 'qXfer:memory-map:read':
        return 'qXfer:memory-map:read+';
      case 'QStartNoAckMode':
        return 'QStartNoAckMode+';
      case 'QNonStop':
        return 'QNonStop-';
      case 'PacketSize':
        return packetSize === undefined ? item : `PacketSize=${packetSize.toString(16)}`;
      default:
        return item;
    }
  });
  const names = new Set(out.map(name));
  if (!names.has('qXfer:memory-map:read')) out.push('qXfer:memory-map:read+');
  if (!names.has('QStartNoAckMode')) out.push('QStartNoAckMode+');
  return { reply: out.join(';'), packetSize };
}

/**
 * Whether a request resumes the core: `c`, `C`, `s`, `S` (with or without an
 * address/signal), `vCont;…` actions (not the `vCont?` query). Its answer is a
 * stop reply that may take for ever, with `O` output before it.
 */
export function isResume(payload: string): boolean {
  return /^[cCsS]([0-9a-fA-F;]|$)/.test(payload) || payload.startsWith('vCont;');
}

/** The command of a `qRcmd,HEX` request as text, or `undefined`. */
export function parseMonitor(payload: string): string | undefined {
  if (!payload.startsWith('qRcmd,')) return undefined;
  const hex = payload.slice(6);
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex').toString('utf8');
}

/** Console output as an `O` packet payload. */
export function outputPacket(text: string): string {
  return 'O' + Buffer.from(text, 'utf8').toString('hex');
}

/** A `monitor rspflash …` command, parsed. */
export type MonitorCommand =
  | { kind: 'program' | 'verify'; file: string; base: number | undefined }
  | { kind: 'erase'; range: AddressLength | 'chip' }
  | { kind: 'info' }
  | { kind: 'help' };

/** What `monitor rspflash help` prints. */
export const MONITOR_HELP = [
  'monitor rspflash program FILE [BASE]   program an image (.elf, .hex, .srec; .bin at BASE) with the flash algorithm',
  'monitor rspflash verify FILE [BASE]    check that flash holds the image',
  'monitor rspflash erase ADDR LEN        erase the sectors that overlap ADDR..ADDR+LEN',
  'monitor rspflash erase chip            erase every flash device the proxy serves',
  'monitor rspflash info                  the algorithms, their flash, the upstream server and the clients',
  'monitor rspflash help                  this text',
].join('\n');

/** Numbers as users type them: `0x…` hex, else decimal, with an optional K/M suffix. */
function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(0x[0-9a-f]+|\d+)([km]?)$/i.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]!.toLowerCase().startsWith('0x') ? parseInt(m[1]!, 16) : parseInt(m[1]!, 10));
  const scale = m[2]!.toLowerCase() === 'k' ? 1024 : m[2]!.toLowerCase() === 'm' ? 1 << 20 : 1;
  const value = n * scale;
  return Number.isSafeInteger(value) && value <= 0x1_0000_0000 ? value : undefined;
}

/**
 * Parses the text after `monitor` when it starts with `rspflash`; `undefined`
 * for other monitor commands (they go to the server). A malformed rspflash
 * command is returned as `{ error }` with what to type instead.
 */
export function parseRspflashCommand(command: string): MonitorCommand | { error: string } | undefined {
  const words = command.trim().split(/\s+/);
  if (words[0] !== 'rspflash') return undefined;
  const [verb, ...args] = words.slice(1);
  switch (verb) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'info':
      return { kind: 'info' };
    case 'program':
    case 'verify': {
      if (args.length < 1 || args.length > 2) return { error: `usage: monitor rspflash ${verb} FILE [BASE]` };
      const base = args[1] === undefined ? undefined : parseNumber(args[1]);
      if (args[1] !== undefined && base === undefined) return { error: `'${args[1]}' is not an address` };
      return { kind: verb, file: args[0]!, base };
    }
    case 'erase': {
      if (args.length === 1 && args[0] === 'chip') return { kind: 'erase', range: 'chip' };
      const address = parseNumber(args[0]);
      const length = parseNumber(args[1]);
      if (args.length !== 2 || address === undefined || length === undefined || length === 0) {
        return { error: 'usage: monitor rspflash erase ADDR LEN | erase chip' };
      }
      return { kind: 'erase', range: { address, length } };
    }
    default:
      return { error: `unknown command 'rspflash ${verb}'; try 'monitor rspflash help'` };
  }
}
