/**
 * The CLI's pure parts: argument parsing that refuses before connecting,
 * progress figures, report summaries and warnings (issue 14), and the .bin
 * `skip` option of the image loader.
 */
import { describe, expect, it } from 'vitest';
import { MAX_TIMEOUT_MS, checkMode, checkedRange, parseLength, parseNumber, parseRam, parseTimeout } from '../bin/args.js';
import { eventJSON, formatEta, formatRate, phaseAmount } from '../bin/progress.js';
import { describeVerify, lostWarning, riskLines, summarizeErase, summarizeProgram } from '../bin/summary.js';
import { loadImage, type FlashReport } from '../lib/index.js';

const REPORT: FlashReport = {
  imageBytes: 4096,
  sectorsTouched: 1,
  sectorsSkipped: 0,
  sectorsErased: 1,
  sectorsBlank: 0,
  chipErase: false,
  pagesProgrammed: 16,
  bytesProgrammed: 4096,
  bytesKept: 0,
  bytesRecovered: 0,
  verify: 'algo',
  notes: [],
  durationMs: 36,
  bytesSent: 5000,
  roundTrips: 10,
  targetRuns: 1,
};

describe('sizes and addresses', () => {
  it('reads hex, decimal and the binary suffixes K, KiB, M, MiB in any case', () => {
    expect(parseNumber('0xC0000000', 'x')).toBe(0xc0000000);
    expect(parseNumber('4096', 'x')).toBe(4096);
    expect(parseNumber('64K', 'x')).toBe(65536);
    expect(parseNumber('64KiB', 'x')).toBe(65536);
    expect(parseNumber('64kib', 'x')).toBe(65536);
    expect(parseNumber('1M', 'x')).toBe(1 << 20);
    expect(parseNumber('1MiB', 'x')).toBe(1 << 20);
  });

  it('refuses junk and values past 4 GiB, naming the option', () => {
    expect(() => parseNumber('12Q', '--length')).toThrow(/--length: '12Q' is not a number/);
    expect(() => parseNumber('5G', '--length')).toThrow(/more than the 4 GiB/);
  });

  it('refuses a length of 0', () => {
    expect(() => parseLength('0', '--length')).toThrow(/--length must be above 0/);
  });

  it('refuses a range that wraps past 4 GiB', () => {
    expect(() => checkedRange(0xfffff000, 0x2000, 'read')).toThrow(/wrap past the end of the 4 GiB address space/);
    expect(checkedRange(0xfffff000, 0x1000, 'read')).toEqual({ address: 0xfffff000, length: 0x1000 });
  });
});

describe('--ram', () => {
  it('takes ADDR:SIZE with suffixes', () => {
    expect(parseRam('0x20000000:64K')).toEqual({ address: 0x20000000, length: 0x10000 });
  });

  it('refuses a region that wraps past 4 GiB (a server would answer a bare E14)', () => {
    expect(() => parseRam('0xFFFFF000:0x40000')).toThrow(/--ram: 262144 bytes from 0xfffff000 wrap past the end/);
  });

  it('refuses an empty region and a malformed one', () => {
    expect(() => parseRam('0x20000000:0')).toThrow(/--ram size must be above 0/);
    expect(() => parseRam('0x20000000')).toThrow(/use ADDR:SIZE/);
    expect(() => parseRam('1:2:3')).toThrow(/use ADDR:SIZE/);
  });
});

describe('--timeout', () => {
  it('takes whole milliseconds from 1 to the largest Node timer', () => {
    expect(parseTimeout('1')).toBe(1);
    expect(parseTimeout(String(MAX_TIMEOUT_MS))).toBe(2147483647);
  });

  it('refuses 0, fractions and values Node would fire at once (issue 15 item 7)', () => {
    expect(() => parseTimeout('0')).toThrow(/above 0/);
    expect(() => parseTimeout('1.5')).toThrow(/whole number/);
    expect(() => parseTimeout('2147483648')).toThrow(/at most 2147483647 ms/);
  });
});

describe('--verify and --compare modes', () => {
  it('keeps crc as a deprecated alias of hash, and says so', () => {
    expect(checkMode('crc', '--verify')).toEqual({ mode: 'hash', note: expect.stringMatching(/--verify crc is deprecated: it means --verify hash/) });
    expect(checkMode('read', '--verify')).toEqual({ mode: 'read' });
  });
});

describe('progress figures', () => {
  it('shows rate and time left from what is done so far', () => {
    expect(formatRate(2_000_000, 1000, 'bytes')).toBe('2.00 MB/s');
    expect(formatRate(300_000, 1000, 'bytes')).toBe('300 KB/s');
    expect(formatRate(12, 1000, 'sectors')).toBe('12 sectors/s');
    expect(formatEta(25, 100, 5000)).toBe('ETA 15s');
    expect(formatEta(1, 100, 5000)).toBe('ETA 8m15s');
  });

  it('shows nothing it cannot know yet, and nothing once done', () => {
    expect(formatRate(0, 0, 'bytes')).toBe('');
    expect(formatEta(0, 100, 0)).toBe('');
    expect(formatEta(100, 100, 5000)).toBe('');
  });

  it('counts sectors in good English', () => {
    expect(phaseAmount(1, 'sectors')).toBe('1 sector');
    expect(phaseAmount(16, 'sectors')).toBe('16 sectors');
    expect(phaseAmount(65536, 'bytes')).toBe('64 KiB');
  });

  it('reduces events to small JSON lines (no sector data)', () => {
    const line = eventJSON({ type: 'progress', phase: 'write', done: 3, total: 16, elapsedMs: 20 });
    expect(line).toEqual({ type: 'progress', phase: 'write', done: 3, total: 16, elapsedMs: 20 });
    expect(JSON.parse(JSON.stringify(eventJSON({ type: 'recover', journal: '/j.json', ranges: [{ address: 0xc0000000, length: 16 }] })))).toEqual({
      type: 'recover',
      journal: '/j.json',
      ranges: ['0xc0000000..0xc000000f'],
    });
  });
});

describe('summaries', () => {
  it('says how the result was checked in words, never "verified (crc)"', () => {
    expect(summarizeProgram(REPORT)).toMatch(/Done: programmed 4 KiB, erased 1 sector, verified by the algorithm's Verify in 0\.04 s$/);
    expect(describeVerify('unchanged')).toBe('verify skipped (unchanged)');
    expect(describeVerify('hash')).toBe('verified by on-target hash');
  });

  it('shows MB/s only for transfers large enough for it to mean something', () => {
    expect(summarizeProgram(REPORT)).not.toMatch(/MB\/s/);
    expect(summarizeProgram({ ...REPORT, bytesProgrammed: 2 << 20, durationMs: 1000 })).toMatch(/\(2\.10 MB\/s\)$/);
  });

  it('names the range an erase widened to whole sectors', () => {
    const report = { ...REPORT, erased: { address: 0xc1900000, length: 4096 } };
    expect(summarizeErase(report, { address: 0xc1900100, length: 100 })).toMatch(
      /Erased 0xc1900000..0xc1900fff \(1 sector, widened from 0xc1900100..0xc1900163 to whole sectors\)/,
    );
    expect(summarizeErase(report, { address: 0xc1900000, length: 4096 })).toMatch(/Erased 0xc1900000..0xc1900fff \(1 sector\) in/);
  });

  it('lists every range a failure left at risk, with its state', () => {
    const lines = riskLines([
      { address: 0xc0000000, length: 0x1000, state: 'erased-or-partial' },
      { address: 0xc0010000, length: 0x2000, state: 'erased' },
    ]);
    expect(lines[0]).toMatch(/Flash left erased or half-written/);
    expect(lines[1]).toMatch(/0xc0000000..0xc0000fff {2}4 KiB {2}erased or half-written/);
    expect(lines[2]).toMatch(/0xc0010000..0xc0011fff {2}8 KiB {2}erased \(old content gone\)/);
    expect(riskLines([])).toEqual([]);
  });

  it('warns with the count and the ranges of bytes a job will erase without keeping', () => {
    expect(lostWarning([{ address: 0xc0000000, length: 0x100 }, { address: 0xc0001100, length: 0xf00 }], 'why')).toBe(
      '4096 bytes outside the image will be erased (why): 0xc0000000..0xc00000ff, 0xc0001100..0xc0001fff',
    );
    expect(lostWarning([], 'why')).toBeUndefined();
  });
});

describe('loadImage skip (.bin)', () => {
  const bytes = Uint8Array.from({ length: 16 }, (_, i) => i);

  it('leaves out the first bytes: the byte at skip goes to base', () => {
    const image = loadImage(bytes, { source: 'a.bin', base: 0x1000, skip: 4 });
    expect(image.segments[0]!.address).toBe(0x1000);
    expect([...image.segments[0]!.data]).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it('reads a file starting with the ELF magic as .bin when told the format', () => {
    const elfLike = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 2);
    const image = loadImage(elfLike, { source: 'x.bin', format: 'bin', base: 0 });
    expect(image.segments[0]!.data.length).toBe(6);
  });

  it('refuses skip beyond the file and skip for formats with addresses', () => {
    expect(() => loadImage(bytes, { source: 'a.bin', base: 0, skip: 17 })).toThrow(/`skip` is 17 bytes but a\.bin has only 16/);
    expect(() => loadImage(new TextEncoder().encode(':00000001FF\n'), { source: 'a.hex', skip: 1 })).toThrow(/`skip` applies only to \.bin images/);
  });
});
