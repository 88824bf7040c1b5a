/**
 * Inputs built to make a parser allocate or loop without bound — sizes that
 * claim gigabytes, documents that expand, replies that go on — end quickly
 * with a typed error (or a correct, small result), and memory stays bounded.
 * Complements the property tests in test/rsp, test/gdb/*-parse*,
 * test/algo/fuzz.test.ts and test/image/corruption.property.test.ts, which
 * cover random damage but not sizes chosen to hurt.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, ReplyFormatError, RspflashError } from '../../lib/errors.js';
import { elfToImage } from '../../lib/image/elf.js';
import { loadImage } from '../../lib/image/load.js';
import { parseFlm } from '../../lib/algo/flm.js';
import { parseProbeRsYaml } from '../../lib/algo/probe-rs.js';
import { parseStopReply } from '../../lib/gdb/stop.js';
import { parseTargetXml } from '../../lib/gdb/target-xml.js';
import { parseMemoryMap } from '../../lib/gdb/memory-map.js';
import { PacketParser, decodeRunLength } from '../../lib/rsp/packet.js';
import { planProgramJob } from '../../lib/flash/steps.js';
import type { Image } from '../../lib/image/image.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { BOARDS } from '../../lib/boards.js';

import { PT_LOAD, SHF, writeElf } from '../helpers/elf-writer.js';
import { alifLikeFlm } from '../algo/synthetic.js';
import { Outcomes, norSim } from './harness.js';

/** The job `program` would plan, without a target. */
function planProgram(img: Image, algorithm: FlashAlgorithm) {
  return planProgramJob(img, algorithm, { ram: BOARDS['qemu-an547']!.ram });
}


const outcomes = new Outcomes();
afterAll(() => outcomes.write());

/** Largest growth of heap + array buffers a bomb may cause. */
const MEMORY_BOUND = 64 << 20;

/** Runs `body`, returning its result or error, the time taken and the memory growth seen right after. */
async function defuse(name: string, body: () => unknown): Promise<{ error: unknown; result: unknown; ms: number; growth: number }> {
  const usage = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const before = usage();
  const started = performance.now();
  let error: unknown;
  let result: unknown;
  try {
    result = await body();
  } catch (err) {
    error = err;
  }
  const ms = performance.now() - started;
  const growth = usage() - before;
  outcomes.add({
    group: 'Parser bombs (no target)',
    fault: name,
    outcome: error ? `refused; memory +${Math.max(0, growth / (1 << 20)).toFixed(1)} MiB` : `parsed; memory +${Math.max(0, growth / (1 << 20)).toFixed(1)} MiB`,
    code: error instanceof RspflashError ? error.code : error ? String(error) : '—',
    timeMs: Math.round(ms),
    content: 'n/a',
  });
  return { error, result, ms, growth };
}

describe('size bombs', () => {
  it('an ELF image whose PT_LOAD claims 3.5 GiB of memory but 16 bytes of file takes the 16 bytes', async () => {
    const { bytes } = writeElf({
      sections: [{ name: '.data', flags: SHF.ALLOC | SHF.WRITE, addr: 0x10000000, data: new Uint8Array(16).fill(7) }],
      segments: [{ type: PT_LOAD, sections: [0], paddr: 0x10000000, vaddr: 0x10000000, memsz: 0xe0000000 }],
    });
    const r = await defuse('ELF image: PT_LOAD p_memsz 0xe0000000 (3.5 GiB), p_filesz 16', () => elfToImage(bytes, 'bomb.elf'));
    expect(r.error).toBeUndefined();
    expect((r.result as { segments: { data: Uint8Array }[] }).segments.map((s) => s.data.length)).toEqual([16]);
    expect(r.growth).toBeLessThan(MEMORY_BOUND);
  });

  it('an ELF image whose PT_LOAD claims a 2 GiB file size in a small file is refused', async () => {
    const { bytes } = writeElf({
      sections: [{ name: '.data', flags: SHF.ALLOC | SHF.WRITE, addr: 0xc0000000, data: new Uint8Array(16) }],
      segments: [{ type: PT_LOAD, sections: [0], paddr: 0xc0000000, vaddr: 0xc0000000, filesz: 0x7ffffff0, memsz: 0x7ffffff0 }],
    });
    const r = await defuse('ELF image: PT_LOAD p_filesz 0x7ffffff0 in a tiny file', () => elfToImage(bytes, 'bomb.elf'));
    expect(r.error).toBeInstanceOf(FormatError);
    expect(r.growth).toBeLessThan(MEMORY_BOUND);
  });

  it('an FLM whose zero-initialised data claims 2 GiB is refused without allocating it', async () => {
    const { bytes, layout } = alifLikeFlm();
    const bomb = new Uint8Array(bytes);
    // sh_size of the PrgData NOBITS section (the ZI the loader must zero).
    new DataView(bomb.buffer).setUint32(layout.shoff + layout.sectionIndex(2) * 40 + 20, 0x7ffffff0, true);
    const r = await defuse('FLM: PrgData ZI (NOBITS) of 0x7ffffff0 bytes', () => parseFlm(bomb, 'bomb.flm'));
    expect(r.error).toBeInstanceOf(FormatError);
    expect((r.error as Error).message).toMatch(/more than a flash algorithm can/);
    expect(r.growth).toBeLessThan(MEMORY_BOUND);
  });

  it('an FLM whose section headers claim 65535 entries beyond the end of the file is refused', async () => {
    const { bytes } = alifLikeFlm();
    const bomb = new Uint8Array(bytes);
    new DataView(bomb.buffer).setUint16(48, 0xffff, true); // e_shnum
    const r = await defuse('FLM: e_shnum 65535 in a 10 KiB file', () => parseFlm(bomb, 'bomb.flm'));
    expect(r.error).toBeInstanceOf(FormatError);
  });

  it('a 100 MB .bin placed near the end of the flash is refused by the plan, before any target', async () => {
    const big = new Uint8Array(100 << 20);
    const r = await defuse('100 MB .bin image at 0xc1f00000 (planProgram, no target)', () =>
      planProgram(loadImage(big, { source: 'huge.bin', base: 0xc1f00000 }), norSim()),
    );
    expect((r.error as RspflashError).code).toBe('RSPFLASH_OUT_OF_FLASH');
  });

  it('an Intel HEX of 200,000 scattered one-byte records loads and plans in bounded time', async () => {
    const lines: string[] = [':020000040000FA'];
    let upper = -1;
    for (let i = 0; i < 200_000; i++) {
      const address = 0xc0000000 + i * 160; // every 160th byte of the first 31 MiB
      const hi = address >>> 16;
      if (hi !== upper) {
        upper = hi;
        const rec = [0x02, 0x00, 0x00, 0x04, hi >>> 8, hi & 0xff];
        lines.push(':' + rec.map((b) => b.toString(16).padStart(2, '0')).join('') + ((0x100 - (rec.reduce((a, b) => a + b, 0) & 0xff)) & 0xff).toString(16).padStart(2, '0'));
      }
      const lo = address & 0xffff;
      const rec = [0x01, lo >>> 8, lo & 0xff, 0x00, i & 0xff];
      lines.push(':' + rec.map((b) => b.toString(16).padStart(2, '0')).join('') + ((0x100 - (rec.reduce((a, b) => a + b, 0) & 0xff)) & 0xff).toString(16).padStart(2, '0'));
    }
    lines.push(':00000001FF', '');
    const text = new TextEncoder().encode(lines.join('\n'));
    const r = await defuse('Intel HEX: 200,000 one-byte records spread over 31 MiB (load + plan)', () => planProgram(loadImage(text, { source: 'scatter.hex' }), norSim()));
    expect(r.error).toBeUndefined();
  });
});

describe('expansion bombs', () => {
  it('a probe-rs YAML billion-laughs document is refused', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const text = `${levels.join('\n')}\nname: bomb\nflash_algorithms: *j\n`;
    const r = await defuse('probe-rs YAML: billion laughs (9 levels of 9 aliases)', () => parseProbeRsYaml(text, 'bomb.yaml'));
    expect(r.error).toBeInstanceOf(FormatError);
    expect(r.growth).toBeLessThan(MEMORY_BOUND);
  });

  it('a 100 MB target description is refused before parsing', async () => {
    const xml = '<target>' + '<!-- padding -->'.repeat((100 << 20) / 16) + '</target>';
    const r = await defuse('target.xml of 100 MB', () => parseTargetXml(xml, async () => ''));
    expect(r.error).toBeInstanceOf(ReplyFormatError);
  });

  it('a 100 MB memory map is refused before parsing', async () => {
    const xml = '<memory-map>' + ' '.repeat(100 << 20) + '</memory-map>';
    const r = await defuse('memory-map XML of 100 MB', () => parseMemoryMap(xml));
    expect(r.error).toBeInstanceOf(ReplyFormatError);
  });

  it('a 16 MB stop reply is parsed or refused in bounded time', async () => {
    const reply = 'T05' + 'thread:1;'.repeat(1) + 'ab:01020304;'.repeat((16 << 20) / 12);
    const r = await defuse('stop reply of 16 MB (T05 with 1.4 M register pairs)', () => parseStopReply(reply));
    if (r.error) expect(r.error).toBeInstanceOf(ReplyFormatError);
  });

  it('a run-length bomb is refused at the cap, not expanded', async () => {
    const payload = new Uint8Array(1 << 20);
    payload[0] = 0x30;
    for (let i = 1; i + 1 < payload.length; i += 2) {
      payload[i] = 0x2a;
      payload[i + 1] = 0xfe;
    }
    payload[payload.length - 1] = 0x30;
    const r = await defuse('run-length bomb: 1 MiB of "*" pairs (118 MB if expanded), cap 1 MiB', () => decodeRunLength(payload, 1 << 20));
    expect(r.error).toBeInstanceOf(RspflashError);
    expect(r.growth).toBeLessThan(MEMORY_BOUND);
  });

  it('100 MB of bytes that never close a packet are refused at 1 MiB', async () => {
    const parser = new PacketParser();
    const chunk = new Uint8Array(1 << 20).fill(0x41);
    const r = await defuse('100 MB stream, one packet never closed', () => {
      parser.push(Uint8Array.of(0x24));
      for (let i = 0; i < 100; i++) parser.push(chunk);
    });
    expect(r.error).toBeInstanceOf(RspflashError);
    expect(r.growth).toBeLessThan(MEMORY_BOUND);
  });
});
