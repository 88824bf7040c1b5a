/**
 * Writes small zip archives for tests: STORE and DEFLATE entries (through
 * `node:zlib`), and — because a reader must be tested against what attackers
 * write — hostile ones: lying sizes and CRCs, names the reader must refuse,
 * a local header that disagrees with the central directory, entries that
 * share data, encryption flags, a zip64 locator.
 *
 * Layout (APPNOTE 4.3.6): local header + data for each entry, central
 * directory, end-of-central-directory record (+ comment).
 * @module
 */
import { crc32, deflateRawSync } from 'node:zlib';

/** One entry to write. Everything but `name` and `data` is for hostile archives. */
export interface ZipWriterEntry {
  name: string;
  data: Uint8Array | string;
  /** Default `'deflate'`. */
  method?: 'store' | 'deflate' | number;
  /** Uncompressed size written to the headers (default: the real one). */
  declaredSize?: number;
  /** CRC written to the headers (default: the real one). */
  crc?: number;
  /** General-purpose flags (default 0x0800, UTF-8 names). */
  flags?: number;
  /** Name written in the local header (default: `name`). */
  localName?: string;
  /** Write no local header and data; point the central entry at this entry's data instead (by index). */
  shareDataOf?: number;
  /** Bytes to store instead of the compressed data (e.g. a hand-made deflate stream). */
  rawStored?: Uint8Array;
  /** Write sizes and CRC in a data descriptor after the data (flag 3), zeros in the local header, as streaming writers do. */
  dataDescriptor?: boolean;
}

/** Options of {@link writeZip}. */
export interface ZipWriterOptions {
  comment?: string;
  /** Put a zip64 end-of-central-directory locator before the EOCD record. */
  zip64Locator?: boolean;
  /** Entry count written to the EOCD record (default: the real one). */
  declaredEntryCount?: number;
}

const text = new TextEncoder();

/**
 * An archive of `entries`.
 *
 * @example
 * ```ts
 * const zip = writeZip([{ name: 'Vendor.Dfp.pdsc', data: pdsc }, { name: 'Flash/a.flm', data: flm, method: 'store' }]);
 * ```
 */
export function writeZip(entries: readonly ZipWriterEntry[], options: ZipWriterOptions = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const push = (chunk: Uint8Array) => {
    chunks.push(chunk);
    offset += chunk.length;
  };
  interface Written { name: Uint8Array; method: number; flags: number; crc: number; csize: number; size: number; offset: number }
  const written: Written[] = [];
  for (const entry of entries) {
    const data = typeof entry.data === 'string' ? text.encode(entry.data) : entry.data;
    const method = entry.method === undefined || entry.method === 'deflate' ? 8 : entry.method === 'store' ? 0 : entry.method;
    const stored = entry.rawStored ?? (method === 8 ? new Uint8Array(deflateRawSync(data)) : data);
    const flags = (entry.flags ?? 0x0800) | (entry.dataDescriptor ? 0x0008 : 0);
    const crc = entry.crc ?? crc32(data) >>> 0;
    const size = entry.declaredSize ?? data.length;
    const name = text.encode(entry.name);
    if (entry.shareDataOf !== undefined) {
      const other = written[entry.shareDataOf]!;
      written.push({ ...other, name });
      continue;
    }
    const localName = text.encode(entry.localName ?? entry.name);
    const header = new Uint8Array(30 + localName.length);
    const v = new DataView(header.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(6, flags, true);
    v.setUint16(8, method, true);
    if (!entry.dataDescriptor) {
      v.setUint32(14, crc, true);
      v.setUint32(18, stored.length, true);
      v.setUint32(22, size, true);
    }
    v.setUint16(26, localName.length, true);
    header.set(localName, 30);
    written.push({ name, method, flags, crc, csize: stored.length, size, offset });
    push(header);
    push(stored);
    if (entry.dataDescriptor) {
      const descriptor = new Uint8Array(16);
      const d = new DataView(descriptor.buffer);
      d.setUint32(0, 0x08074b50, true);
      d.setUint32(4, crc, true);
      d.setUint32(8, stored.length, true);
      d.setUint32(12, size, true);
      push(descriptor);
    }
  }
  const cdOffset = offset;
  for (const w of written) {
    const header = new Uint8Array(46 + w.name.length);
    const v = new DataView(header.buffer);
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(6, 20, true);
    v.setUint16(8, w.flags, true);
    v.setUint16(10, w.method, true);
    v.setUint32(16, w.crc, true);
    v.setUint32(20, w.csize, true);
    v.setUint32(24, w.size, true);
    v.setUint16(28, w.name.length, true);
    v.setUint32(42, w.offset, true);
    header.set(w.name, 46);
    push(header);
  }
  const cdSize = offset - cdOffset;
  if (options.zip64Locator) {
    const locator = new Uint8Array(20);
    new DataView(locator.buffer).setUint32(0, 0x07064b50, true);
    push(locator);
  }
  const comment = text.encode(options.comment ?? '');
  const eocd = new Uint8Array(22 + comment.length);
  const v = new DataView(eocd.buffer);
  const count = options.declaredEntryCount ?? written.length;
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, count, true);
  v.setUint16(10, count, true);
  v.setUint32(12, cdSize, true);
  v.setUint32(16, cdOffset, true);
  v.setUint16(20, comment.length, true);
  eocd.set(comment, 22);
  push(eocd);
  const out = new Uint8Array(offset);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
