/**
 * The proxy's pure parts, without a target: gdb's CRC, the memory map, the
 * edited qSupported, the packets it parses, the flash load it collects.
 */
import { describe, expect, it } from 'vitest';
import { parseMemoryMap } from '../../lib/gdb/memory-map.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { buildMemoryMap, flashRegions, memoryMapXml } from '../../lib/serve/memory-map.js';
import { crcMpeg2 } from '../../lib/serve/crc.js';
import { editSupported, isResume, parseFlashWrite, parseRspflashCommand, xferChunk } from '../../lib/serve/packets.js';
import { FlashLoad } from '../../lib/serve/flash-load.js';

function algo(name: string, start: number, runs: [size: number, count: number][]): FlashAlgorithm {
  let at = start;
  const sectors = runs.map(([size, count]) => {
    const run = { address: at, size, count };
    at += size * count;
    return run;
  });
  return { name, geometry: { start, size: at - start, pageSize: 256, erasedValue: 0xff, sectors } } as unknown as FlashAlgorithm;
}

describe("gdb's CRC (qCRC)", () => {
  it('is CRC-32/MPEG-2: the catalogue check value of "123456789" is 0x0376e6e7', () => {
    expect(crcMpeg2(new TextEncoder().encode('123456789'))).toBe(0x0376e6e7);
  });
  it('of nothing is the initial value, as gdb computes it', () => {
    expect(crcMpeg2(new Uint8Array(0))).toBe(0xffffffff);
  });
});

describe('memory map', () => {
  const nor = algo('nor', 0xc0000000, [[0x1000, 0x2000]]);
  it('covers every 32-bit address: ram around the flash, flash with the sector size as blocksize', () => {
    const map = buildMemoryMap([nor]);
    expect(map).toEqual([
      { type: 'ram', start: 0, length: 0xc0000000 },
      { type: 'flash', start: 0xc0000000, length: 0x2000000, blockSize: 0x1000 },
      { type: 'ram', start: 0xc2000000, length: 0x3e000000 },
    ]);
  });
  it('gives a device with mixed sector sizes one flash region per size run', () => {
    const stm = algo('stm32f4', 0x08000000, [[0x4000, 4], [0x10000, 1], [0x20000, 7]]);
    expect(flashRegions([stm])).toEqual([
      { type: 'flash', start: 0x08000000, length: 0x10000, blockSize: 0x4000 },
      { type: 'flash', start: 0x08010000, length: 0x10000, blockSize: 0x10000 },
      { type: 'flash', start: 0x08020000, length: 0xe0000, blockSize: 0x20000 },
    ]);
  });
  it("merges the upstream map: its regions stay, cut around the algorithms' flash, which wins", () => {
    const map = buildMemoryMap([nor], [
      { type: 'flash', start: 0x08000000, length: 0x100000, blockSize: 0x800 },
      { type: 'ram', start: 0xbff00000, length: 0x200000 },
    ]);
    expect(map.filter((r) => r.type === 'flash')).toEqual([
      { type: 'flash', start: 0x08000000, length: 0x100000, blockSize: 0x800 },
      { type: 'flash', start: 0xc0000000, length: 0x2000000, blockSize: 0x1000 },
    ]);
    expect(map).toContainEqual({ type: 'ram', start: 0xbff00000, length: 0x100000 });
  });
  it('refuses two algorithms over the same flash', () => {
    expect(() => flashRegions([nor, algo('again', 0xc1000000, [[0x1000, 16]])])).toThrow(/cover the same flash/);
  });
  it('is XML that parses back to the same regions (gdb-readable: blocksize on every flash region)', () => {
    const map = buildMemoryMap([nor]);
    const xml = memoryMapXml(map);
    expect(xml).toMatch(/<property name="blocksize">0x1000<\/property>/);
    expect(parseMemoryMap(xml)).toEqual(map);
  });
  it('is served in qXfer chunks: m while more follows, l for the last', () => {
    const doc = new TextEncoder().encode('0123456789');
    expect(xferChunk(doc, 0, 4)).toBe('m0123');
    expect(xferChunk(doc, 8, 4)).toBe('l89');
    expect(xferChunk(doc, 10, 4)).toBe('l');
  });
});

describe('qSupported, edited', () => {
  it("keeps QEMU's features, adds the memory map and no-ack mode", () => {
    const { reply, packetSize } = editSupported('PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+', 1 << 20);
    expect(reply).toBe('PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+;qXfer:memory-map:read+;QStartNoAckMode+');
    expect(packetSize).toBe(0x1000);
  });
  it("turns J-Link's 'memory-map -' into '+' in place", () => {
    const { reply } = editSupported('PacketSize=4000;qXfer:memory-map:read-;QStartNoAckMode+;hwbreak+;qXfer:features:read+', 1 << 20);
    expect(reply).toBe('PacketSize=4000;qXfer:memory-map:read+;QStartNoAckMode+;hwbreak+;qXfer:features:read+');
  });
  it('caps PacketSize at what the proxy accepts and turns non-stop off', () => {
    const { reply } = editSupported('PacketSize=200000;QNonStop+', 0x10000);
    expect(reply).toBe('PacketSize=10000;QNonStop-;qXfer:memory-map:read+;QStartNoAckMode+');
  });
});

describe('packets', () => {
  it('unescapes vFlashWrite data', () => {
    const w = parseFlashWrite('vFlashWrite:c0000000:a}\x03}\x04}]}\x0a');
    expect(w?.address).toBe(0xc0000000);
    expect([...w!.data]).toEqual([0x61, 0x23, 0x24, 0x7d, 0x2a]);
  });
  it('refuses a vFlashWrite cut after an escape', () => {
    expect(parseFlashWrite('vFlashWrite:c0000000:ab}')).toBeUndefined();
  });
  it('knows which requests resume the core', () => {
    for (const p of ['c', 'c20000000', 'C05', 's', 'S05', 'vCont;c', 'vCont;s:p1.1;c']) expect(isResume(p), p).toBe(true);
    for (const p of ['vCont?', 'qC', 'qSupported', 'g', 'Z1,c0001106,2']) expect(isResume(p), p).toBe(false);
  });
  it('parses monitor rspflash commands and says what is wrong with a bad one', () => {
    expect(parseRspflashCommand('reset halt')).toBeUndefined();
    expect(parseRspflashCommand('rspflash program app.bin 0xC0000000')).toEqual({ kind: 'program', file: 'app.bin', base: 0xc0000000 });
    expect(parseRspflashCommand('rspflash erase 0xc0001000 4K')).toEqual({ kind: 'erase', range: { address: 0xc0001000, length: 4096 } });
    expect(parseRspflashCommand('rspflash erase chip')).toEqual({ kind: 'erase', range: 'chip' });
    expect(parseRspflashCommand('rspflash')).toEqual({ kind: 'help' });
    expect(parseRspflashCommand('rspflash erase here')).toEqual({ error: 'usage: monitor rspflash erase ADDR LEN | erase chip' });
    expect(parseRspflashCommand('rspflash verify a.bin x')).toEqual({ error: "'x' is not an address" });
  });
});

describe('flash load (vFlashErase/vFlashWrite until vFlashDone)', () => {
  const a = algo('a', 0xc0000000, [[0x1000, 16]]);
  const b = algo('b', 0x08000000, [[0x800, 64]]);
  it('collects writes into one image per algorithm, contiguous writes joined', () => {
    const load = new FlashLoad([a, b], 'gdb load');
    expect(load.erase({ address: 0xc0000000, length: 0x2000 })).toBe(true);
    expect(load.write(0xc0000100, new Uint8Array(0x100).fill(1))).toBe(true);
    expect(load.write(0xc0000200, new Uint8Array(0x100).fill(2))).toBe(true);
    expect(load.write(0x08000000, new Uint8Array(4).fill(3))).toBe(true);
    const done = load.finish();
    expect(done.map((d) => [d.algorithm.name, d.image.segments.map((s) => [s.address, s.data.length])])).toEqual([
      ['a', [[0xc0000100, 0x200]]],
      ['b', [[0x08000000, 4]]],
    ]);
    expect(done[0]!.erasedOnly).toEqual([]);
    expect(load.active).toBe(false);
  });
  it('reports erase requests no data falls in (they are kept, not erased)', () => {
    const load = new FlashLoad([a], 'gdb load');
    load.erase({ address: 0xc0005000, length: 0x1000 });
    load.write(0xc0000000, new Uint8Array(4));
    expect(load.finish()[0]!.erasedOnly).toEqual([{ address: 0xc0005000, length: 0x1000 }]);
  });
  it('refuses ranges outside, or across the end of, every flash', () => {
    const load = new FlashLoad([a], 'gdb load');
    expect(load.erase({ address: 0x10000000, length: 0x1000 })).toBe(false);
    expect(load.write(0xc000fffe, new Uint8Array(4))).toBe(false);
  });
  it('discards what a client that left had collected', () => {
    const load = new FlashLoad([a], 'gdb load');
    load.write(0xc0000000, new Uint8Array(10));
    expect(load.discard()).toBe(10);
    expect(load.finish()).toEqual([]);
  });
});
