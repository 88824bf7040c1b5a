/**
 * The memory map the proxy serves (`qXfer:memory-map:read`): the algorithms'
 * flash as `flash` regions, merged with the upstream server's own map, and
 * every other address covered by `ram` regions. Pure.
 *
 * Why every address: once a map exists gdb turns `inaccessible-by-default`
 * on and refuses any address outside it (gdb `memattr.c`), and cortex-debug
 * writes the 0xE00xxxxx system registers. OpenOCD fills gaps the same way.
 * @module
 */
import type { FlashAlgorithm } from '../algo/algorithm.js';
import type { MemoryRegion } from '../gdb/memory-map.js';
import { UsageError, hex32 } from '../errors.js';

/** One past the last 32-bit address. */
const ADDRESS_SPACE_END = 0x1_0000_0000;

/**
 * The flash regions of the algorithms: one per run of equal sectors
 * (`blocksize` = that sector size), so a device with mixed sector sizes gives
 * several regions, as gdb needs one block size per region.
 *
 * @throws {@link UsageError} when two algorithms' flash overlaps.
 */
export function flashRegions(algorithms: readonly FlashAlgorithm[]): MemoryRegion[] {
  const regions: MemoryRegion[] = [];
  for (const algo of algorithms) {
    for (const run of algo.geometry.sectors) {
      const last = regions.at(-1);
      const length = run.size * run.count;
      // Adjacent runs of the same size (an FLM may list them apart) make one region.
      if (last && last.blockSize === run.size && last.start + last.length === run.address) last.length += length;
      else regions.push({ type: 'flash', start: run.address, length, blockSize: run.size });
    }
  }
  regions.sort((a, b) => a.start - b.start);
  for (let i = 1; i < regions.length; i++) {
    const prev = regions[i - 1]!;
    const cur = regions[i]!;
    if (prev.start + prev.length > cur.start) {
      throw new UsageError(`Two flash algorithms cover the same flash: ${hex32(prev.start)} (length ${prev.length}) and ${hex32(cur.start)} overlap`);
    }
  }
  return regions;
}

/** `region` minus the ranges in `holes` (sorted, non-overlapping). */
function subtract(region: MemoryRegion, holes: readonly MemoryRegion[]): MemoryRegion[] {
  const out: MemoryRegion[] = [];
  let at = region.start;
  const end = region.start + region.length;
  for (const h of holes) {
    const hEnd = h.start + h.length;
    if (hEnd <= at || h.start >= end) continue;
    if (h.start > at) out.push({ ...region, start: at, length: h.start - at });
    at = Math.max(at, hEnd);
  }
  if (at < end) out.push({ ...region, start: at, length: end - at });
  return out;
}

/**
 * The whole map: the algorithms' flash first (it wins where the upstream map
 * says otherwise: the proxy programs it), the upstream regions around it
 * (their own flash stays flash, programmed by the server through forwarded
 * `vFlash*`), and `ram` for every address left, up to 0xffffffff.
 *
 * @example
 * ```ts
 * buildMemoryMap([norSim]); // ram 0..0xc0000000, flash 0xc0000000 (4 KiB blocks), ram to the end
 * ```
 */
export function buildMemoryMap(algorithms: readonly FlashAlgorithm[], upstream: readonly MemoryRegion[] = []): MemoryRegion[] {
  const flash = flashRegions(algorithms);
  const known = [...flash];
  for (const region of upstream) known.push(...subtract(region, flash));
  known.sort((a, b) => a.start - b.start);
  const out: MemoryRegion[] = [];
  let at = 0;
  for (const region of known) {
    if (region.start > at) out.push({ type: 'ram', start: at, length: region.start - at });
    out.push(region);
    at = region.start + region.length;
  }
  if (at < ADDRESS_SPACE_END) out.push({ type: 'ram', start: at, length: ADDRESS_SPACE_END - at });
  return out;
}

/** The map as gdb's memory-map XML (GDB manual, "Memory Map Format"). */
export function memoryMapXml(regions: readonly MemoryRegion[]): string {
  const hex = (n: number) => `0x${n.toString(16)}`;
  const lines = [
    '<?xml version="1.0"?>',
    '<!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN" "http://sourceware.org/gdb/gdb-memory-map.dtd">',
    '<memory-map>',
  ];
  for (const r of regions) {
    const open = `  <memory type="${r.type}" start="${hex(r.start)}" length="${hex(r.length)}"`;
    if (r.type === 'flash') {
      // gdb refuses a flash region without a blocksize.
      lines.push(`${open}>`, `    <property name="blocksize">${hex(r.blockSize ?? 1)}</property>`, '  </memory>');
    } else lines.push(`${open}/>`);
  }
  lines.push('</memory-map>');
  return lines.join('\n') + '\n';
}

/** The region holding `address`, if any. */
export function regionAt(regions: readonly MemoryRegion[], address: number): MemoryRegion | undefined {
  return regions.find((r) => address >= r.start && address < r.start + r.length);
}
