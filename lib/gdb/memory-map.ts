/**
 * Parser of the memory map a GDB server sends (`qXfer:memory-map:read`):
 * which address ranges are RAM, ROM or flash, and the erase block size of
 * flash. With flash regions, GDB's `load` uses `vFlashErase`/`vFlashWrite`.
 *
 * Format from the GDB manual, "Remote Protocol" → "Memory Map Format":
 * ```xml
 * <memory-map>
 *   <memory type="ram" start="0x20000000" length="0x10000"/>
 *   <memory type="flash" start="0x08000000" length="0x100000">
 *     <property name="blocksize">0x800</property>
 *   </memory>
 * </memory-map>
 * ```
 * Numbers are read as GDB reads them (`0x…` hex, leading `0` octal, else
 * decimal). Regions must not overlap.
 * @module
 */
import { ReplyFormatError } from '../errors.js';
import { childElements, nameOf, parseXml, parseXmlUnsigned, xmlExcerpt } from './xml.js';

/** Kinds of memory in a memory map. */
export type MemoryType = 'ram' | 'rom' | 'flash';

/** One region of a memory map. */
export interface MemoryRegion {
  /** `ram` (written with `M`/`X`), `rom` (read-only) or `flash` (written with `vFlash…`). */
  type: MemoryType;
  /** First address. */
  start: number;
  /** Size in bytes, greater than 0. */
  length: number;
  /** Erase block size of a flash region, bytes, when the server gives one. */
  blockSize?: number;
}

const TYPES: ReadonlySet<string> = new Set<MemoryType>(['ram', 'rom', 'flash']);

function hex(value: number): string {
  return '0x' + value.toString(16).padStart(8, '0');
}

/**
 * Parses a memory map document. Regions come back sorted by start address.
 *
 * Decisions where GDB's own reader differs: a flash region without
 * `blocksize` is accepted with `blockSize` left out (GDB refuses it, but
 * rspflash takes geometry from the flash algorithm anyway), and unknown
 * `<property>` names are ignored rather than refused.
 *
 * @example
 * ```ts
 * const flash = parseMemoryMap(xml).filter((r) => r.type === 'flash');
 * ```
 * @throws {@link ReplyFormatError} for malformed or unsafe XML, a root other
 * than `<memory-map>`, a region with an unknown type, missing or non-numeric
 * `start`/`length`, zero length or block size, or overlapping regions.
 */
export function parseMemoryMap(xml: string): MemoryRegion[] {
  const root = parseXml(xml, 'memory map');
  const fail: (message: string) => never = (message) => {
    throw new ReplyFormatError(`Memory map: ${message}`, xmlExcerpt(xml));
  };
  if (nameOf(root) !== 'memory-map') fail(`root element is <${root.tagName}>, expected <memory-map>`);
  const regions: MemoryRegion[] = [];
  for (const el of childElements(root)) {
    if (nameOf(el) !== 'memory') continue; // future elements
    const type = el.getAttribute('type') ?? '';
    if (!TYPES.has(type)) fail(`<memory> has type ${JSON.stringify(type)}, expected ram, rom or flash`);
    const startText = el.getAttribute('start');
    const lengthText = el.getAttribute('length');
    if (startText === null || lengthText === null) fail('<memory> needs both start and length');
    const start = parseXmlUnsigned(startText, 'start of <memory>', xml);
    const length = parseXmlUnsigned(lengthText, `length of <memory> at ${hex(start)}`, xml);
    if (length === 0) fail(`region at ${hex(start)} has length 0`);
    const region: MemoryRegion = { type: type as MemoryType, start, length };
    for (const prop of childElements(el)) {
      if (nameOf(prop) !== 'property' || prop.getAttribute('name') !== 'blocksize') continue;
      const blockSize = parseXmlUnsigned(prop.textContent ?? '', `blocksize of region at ${hex(start)}`, xml);
      if (blockSize === 0) fail(`region at ${hex(start)} has blocksize 0`);
      region.blockSize = blockSize;
    }
    regions.push(region);
  }
  regions.sort((a, b) => a.start - b.start);
  for (let i = 1; i < regions.length; i++) {
    const prev = regions[i - 1]!;
    const cur = regions[i]!;
    if (prev.start + prev.length > cur.start) {
      fail(`regions at ${hex(prev.start)} (length ${hex(prev.length)}) and ${hex(cur.start)} overlap`);
    }
  }
  return regions;
}
