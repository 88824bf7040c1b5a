/**
 * The seed-job model's pure parts (bench/link-model.ts, bench/seed-model.ts,
 * bench/corpus.ts), without a target: how RSP traffic is charged to a J-Link,
 * how counts become time, and that the corpus is deterministic and has the
 * erased regions it promises.
 */
import { describe, expect, it } from 'vitest';
import { LINK_PROFILES, LinkCounter, emptyCounts, linkTimeMs, requestCost } from '../bench/link-model.js';
import { PAGE, SECTOR, arMembers, buildCorpus, elfAllocSections, erasedUnits, nonBlankPages, randomImage } from '../bench/corpus.js';
import {
  IS25WX256,
  NOR_STATS_MAGIC,
  NOR_STATS_SIZE,
  changeSectors,
  cheapestEraseMs,
  deviceTimeMs,
  imageFacts,
  jflashModel,
  parseDeviceCounts,
  perPageModel,
  pickSectors,
} from '../bench/seed-model.js';

const bytes = (text: string) => Buffer.from(text, 'latin1');
/** `$payload#cs` with a real checksum. */
function packet(payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? bytes(payload) : Buffer.from(payload);
  let sum = 0;
  for (const b of body) sum = (sum + b) & 0xff;
  return Buffer.concat([bytes('$'), body, bytes(`#${sum.toString(16).padStart(2, '0')}`)]);
}

describe('link model: what a J-Link carries for each request', () => {
  it('charges memory writes and reads their payload, registers 4 bytes each, and nothing for server-only requests', () => {
    expect(requestCost(bytes('M20000000,10:00112233'))).toMatchObject({ target: true, down: 16, up: 0 });
    expect(requestCost(bytes('X20000000,4:'), 4)).toMatchObject({ target: true, down: 4 });
    expect(requestCost(bytes('m c0000000,800'.replace(' ', '')))).toMatchObject({ target: true, up: 0x800 });
    expect(requestCost(bytes('g'))).toMatchObject({ target: true, up: 68 });
    expect(requestCost(bytes('G' + '0'.repeat(136)))).toMatchObject({ target: true, down: 68 });
    expect(requestCost(bytes('c'))).toMatchObject({ target: true, run: true });
    for (const serverOnly of ['qSupported:multiprocess+', 'QStartNoAckMode', '?', 'Hg0', 'qXfer:features:read:target.xml:0,ffb']) {
      expect(requestCost(bytes(serverOnly)), serverOnly).toMatchObject({ target: false, down: 0, up: 0 });
    }
    expect(requestCost(bytes('qRcmd,7265736574'))).toMatchObject({ target: true });
  });

  it('counts unescaped X data across chunk boundaries, and waits only when nothing was outstanding', () => {
    const counter = new LinkCounter();
    // 8 data bytes, two of them escaped ('}' then byte ^ 0x20): 10 bytes on the wire.
    const x = packet(Buffer.concat([bytes('X0,8:'), Buffer.from([1, 0x7d, 0x03, 2, 3, 0x7d, 0x5d, 4, 5, 6])]));
    counter.fromClient(x.subarray(0, 7));
    counter.fromClient(x.subarray(7));
    counter.fromClient(packet('M10,2:abcd')); // pipelined: the X is still unanswered
    counter.fromServer(Buffer.concat([packet('OK'), packet('OK')]));
    counter.fromClient(Buffer.concat([bytes('+'), packet('g')])); // after both replies: a wait
    counter.fromServer(packet('O48690a')); // console output is not the reply
    counter.fromClient(Uint8Array.of(0x03)); // interrupt: one more probe request
    const c = counter.counts;
    expect(c).toMatchObject({ requests: 3, targetRequests: 4, waits: 2, bytesDown: 8 + 2, bytesUp: 68 });
    expect(c.wireBytesToServer).toBe(x.length + packet('M10,2:abcd').length + 1 + packet('g').length + 1);
  });

  it('computes link time as round trips plus bytes over bandwidth', () => {
    const counts = { ...emptyCounts(), targetRequests: 1000, bytesDown: 2_000_000, bytesUp: 500_000 };
    const base = linkTimeMs(counts, LINK_PROFILES['jlink-base']);
    expect(base.latencyMs).toBeCloseTo(1000 * 0.5);
    expect(base.transferMs).toBeCloseTo(2500);
    expect(linkTimeMs(counts, LINK_PROFILES['jlink-ultra']).totalMs).toBeLessThan(base.totalMs / 3);
  });
});

describe('seed model: device counts and the two other loaders', () => {
  it('reads struct nor_stats and refuses memory without its magic', () => {
    const raw = new Uint8Array(NOR_STATS_SIZE);
    const view = new DataView(raw.buffer);
    [NOR_STATS_MAGIC, 2, 2, 0, 3, 48, 12288, 1, 4096, 0, 0].forEach((v, i) => view.setUint32(4 * i, v, true));
    const counts = parseDeviceCounts(raw);
    expect(counts).toMatchObject({ init: 2, eraseSector: 3, programPage: 48, programBytes: 12288, verifyBytes: 4096 });
    expect(deviceTimeMs(counts, IS25WX256)).toBeCloseTo(3 * 30 + 48 * 0.2 + (4096 / 50e6) * 1000);
    expect(parseDeviceCounts(new Uint8Array(NOR_STATS_SIZE)).eraseSector).toBe(0); // zeroed: nothing since the reset
    view.setUint32(0, 0xdeadbeef, true);
    expect(() => parseDeviceCounts(raw)).toThrow(/rebuild the fixtures/);
  });

  it('lets J-Flash erase with the cheapest units: blocks for a part of the device, chip erase only when cheaper', () => {
    expect(cheapestEraseMs(128 * 1024 + 8192, IS25WX256, 32 << 20)).toBe(300 + 2 * 30);
    expect(cheapestEraseMs(32 << 20, IS25WX256, 32 << 20)).toBe(Math.min(IS25WX256.chipEraseMs, 256 * 300));
  });

  it('charges the per-page loader a write and a call per non-blank page, J-Flash the whole image once', () => {
    const data = new Uint8Array(64 * 1024).fill(0xff);
    data.fill(0, 0, 3 * PAGE); // three pages in the first sector
    const facts = imageFacts(data);
    expect(facts).toEqual({ bytes: 65536, pages: 256, nonBlankPages: 3, sectors: 16, nonBlankSectors: 1 });
    const link = LINK_PROFILES['jlink-base'];
    const perPage = perPageModel(facts, IS25WX256, link, false);
    expect(perPage.bytesDown).toBe(3 * PAGE);
    expect(perPage.deviceMs).toBeCloseTo(16 * 30 + 3 * 0.2);
    const jflash = jflashModel(facts, IS25WX256, link, 32 << 20, false);
    expect(jflash.bytesDown).toBe(65536);
    expect(jflashModel(facts, IS25WX256, link, 32 << 20, true).bytesDown).toBe(0);
  });

  it('picks distinct sectors and changes exactly those', () => {
    const picked = pickSectors(100, 10, 7);
    expect(new Set(picked).size).toBe(10);
    expect(pickSectors(100, 10, 7)).toEqual(picked);
    const data = new Uint8Array(100 * SECTOR).fill(0xff);
    const changed = changeSectors(data, picked, 1);
    for (let s = 0; s < 100; s++) {
      const same = Buffer.compare(Buffer.from(changed.subarray(s * SECTOR, (s + 1) * SECTOR)), Buffer.from(data.subarray(s * SECTOR, (s + 1) * SECTOR))) === 0;
      expect(same, `sector ${s}`).toBe(!picked.includes(s));
    }
  });
});

describe('image corpus', () => {
  it('is the same for the same seed and size, and differs for another seed', () => {
    const a = buildCorpus(1 << 20, 12);
    expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(buildCorpus(1 << 20, 12).bytes))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(buildCorpus(1 << 20, 13).bytes))).not.toBe(0);
  });

  it('lays out code, weights, audio, a mostly erased file system and erased free space', () => {
    const { bytes: image, parts } = buildCorpus(2 << 20);
    expect(parts.map((p) => p.name)).toEqual(['code', 'weights', 'audio', 'filesystem', 'free']);
    expect(parts.reduce((n, p) => n + p.length, 0)).toBe(image.length);
    const unitsOf = (name: string) => {
      const p = parts.find((q) => q.name === name)!;
      return erasedUnits(image.subarray(p.offset, p.offset + p.length));
    };
    expect(unitsOf('free').erasedPages).toBe(unitsOf('free').pages);
    expect(unitsOf('filesystem').erasedSectors / unitsOf('filesystem').sectors).toBeGreaterThan(0.7);
    expect(unitsOf('weights').erasedPages / unitsOf('weights').pages).toBeLessThan(0.1);
    expect(nonBlankPages(image).length % PAGE).toBe(0);
  });

  it('has no erased page in the random worst case', () => {
    expect(erasedUnits(randomImage(256 * 1024)).erasedPages).toBe(0);
  });

  it('reads ar archives and the allocated sections of ELF objects', () => {
    // A minimal ELF32 LE with one SHT_PROGBITS|SHF_ALLOC section of 4 bytes at offset 52.
    const elf = new Uint8Array(52 + 4 + 2 * 40);
    const v = new DataView(elf.buffer);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1]);
    v.setUint32(0x20, 56, true); // e_shoff
    v.setUint16(0x2e, 40, true); // e_shentsize
    v.setUint16(0x30, 2, true); // e_shnum (null section + one)
    elf.set([0xde, 0xad, 0xbe, 0xef], 52);
    v.setUint32(56 + 40 + 4, 1, true); // sh_type PROGBITS
    v.setUint32(56 + 40 + 8, 6, true); // sh_flags ALLOC|EXECINSTR
    v.setUint32(56 + 40 + 16, 52, true);
    v.setUint32(56 + 40 + 20, 4, true);
    expect(elfAllocSections(elf).map((s) => [...s])).toEqual([[0xde, 0xad, 0xbe, 0xef]]);
    const header = (size: number) => bytes('obj.o/'.padEnd(48) + String(size).padEnd(10) + '`\n');
    const archive = Buffer.concat([bytes('!<arch>\n'), header(3), bytes('abc\n'), header(elf.length), Buffer.from(elf)]);
    expect(arMembers(archive).map((m) => m.length)).toEqual([3, elf.length]);
  });
});
