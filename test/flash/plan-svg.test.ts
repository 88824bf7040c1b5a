/**
 * planToSvg / planSectorRuns: the picture of a plan is well-formed SVG whose
 * cells, counted per colour, are exactly the plan's sectors.
 */
import { describe, expect, it } from 'vitest';
import { DOMParser } from '@xmldom/xmldom';
import type { Element } from '@xmldom/xmldom';
import { planFlash } from '../../lib/flash/plan.js';
import type { FlashPlan } from '../../lib/flash/plan.js';
import { SECTOR_STATES, SECTOR_STATE_COLORS, planSectorRuns, planToSvg, type SectorState } from '../../lib/flash/plan-svg.js';
import { createImage } from '../../lib/image/image.js';
import { ALIF_OSPI1, STM32F4_1MIB } from '../helpers/geometries.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Start of the Alif OSPI1 flash, where most plans here are made. */
const BASE = ALIF_OSPI1.start;

function bytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) % 0xff);
}

/**
 * 1 MiB + 100 B at the start (256 full sectors, one partly covered → kept),
 * 8 KiB of 0xFF at 4 MiB (2 erase-only sectors), 10 000 B at 8 MiB + 0x100
 * (3 sectors: partly, fully, partly covered).
 */
function alifPlan(options: { preserve?: boolean; chipErase?: 'always' } = {}): FlashPlan {
  const image = createImage([
    { address: BASE, data: bytes(1 * MiB + 100) },
    { address: BASE + 4 * MiB, data: new Uint8Array(8 * KiB).fill(0xff) },
    { address: BASE + 8 * MiB + 0x100, data: bytes(10_000) },
  ]);
  return planFlash(image, ALIF_OSPI1, options);
}

function parse(svg: string): Element {
  const errors: string[] = [];
  const doc = new DOMParser({ onError: (level, message) => void errors.push(`${level}: ${message}`) }).parseFromString(svg, 'image/svg+xml');
  expect(errors, 'the SVG parses as XML without warnings or errors').toEqual([]);
  const root = doc.documentElement;
  if (!root) throw new Error('no root element');
  return root;
}

function elements(root: Element, name: string): Element[] {
  return Array.from(root.getElementsByTagName(name) as unknown as ArrayLike<Element>);
}

/** Sum of data-count of the grid's rects, per data-state. */
function cellCounts(root: Element): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const rect of elements(root, 'rect')) {
    const state = rect.getAttribute('data-state');
    if (!state || (rect.parentNode as Element | null)?.getAttribute('class') === 'legend') continue;
    counts[state] = (counts[state] ?? 0) + Number(rect.getAttribute('data-count'));
  }
  return counts;
}

/** data-count of each legend entry, per state. */
function legendCounts(root: Element): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const g of elements(root, 'g')) {
    if (g.getAttribute('class') === 'legend') counts[g.getAttribute('data-state')!] = Number(g.getAttribute('data-count'));
  }
  return counts;
}

function expectedCounts(plan: FlashPlan, unchanged: ReadonlySet<number> = new Set()): Record<string, number> {
  const counts: Record<string, number> = {};
  const add = (state: SectorState, n = 1) => (counts[state] = (counts[state] ?? 0) + n);
  for (const s of plan.sectors) {
    if (unchanged.has(s.address) && plan.erase.kind !== 'chip') add('skip');
    else if (s.keep.length > 0) add('keep');
    else if (s.pages.length > 0) add('program');
    else add('erase');
  }
  const total = plan.geometry.sectors.reduce((n, r) => n + r.count, 0);
  add(plan.erase.kind === 'chip' ? 'wiped' : 'untouched', total - plan.sectors.length);
  return counts;
}

describe('planToSvg', () => {
  it('draws every sector of a 32 MiB device once, coloured by what happens to it', () => {
    const plan = alifPlan();
    const root = parse(planToSvg(plan));
    expect(root.nodeName).toBe('svg');
    expect(root.getAttribute('xmlns')).toBe('http://www.w3.org/2000/svg');
    const counts = cellCounts(root);
    expect(counts).toEqual(expectedCounts(plan));
    expect(counts).toEqual({ program: 257, keep: 3, erase: 2, untouched: 8192 - 262 });
    // Each state has its own colour, and the rects use it.
    for (const rect of elements(root, 'rect')) {
      const state = rect.getAttribute('data-state') as SectorState | null;
      if (state) expect(rect.getAttribute('fill'), `fill of a ${state} cell`).toBe(SECTOR_STATE_COLORS[state]);
    }
    expect(new Set(Object.values(SECTOR_STATE_COLORS)).size).toBe(SECTOR_STATES.length);
  });

  it('has a legend whose counts match the cells, and says how the device is erased', () => {
    const plan = alifPlan();
    const svg = planToSvg(plan, { title: 'ext_flash.bin' });
    const root = parse(svg);
    expect(legendCounts(root)).toEqual(expectedCounts(plan));
    const texts = elements(root, 'text').map((t) => t.textContent ?? '');
    expect(texts).toContain('ext_flash.bin');
    expect(texts.join(' ')).toContain('erase + program: 257 sectors');
    expect(texts.join(' ')).toContain('untouched: 7930 sectors');
    expect(texts.join(' ')).toMatch(/erase: sector erase: the image touches 262 of 8192/);
    expect(texts.some((t) => t.startsWith('totals: erase 262 sectors'))).toBe(true);
  });

  it('labels rows with the address of their first sector', () => {
    const root = parse(planToSvg(alifPlan()));
    const labels = elements(root, 'g')
      .filter((g) => g.getAttribute('class') === 'addresses')
      .flatMap((g) => elements(g, 'text').map((t) => t.textContent));
    expect(labels[0]).toBe('0xc0000000');
    // 128 sectors of 4 KiB per row: every label is a multiple of 512 KiB from the start.
    for (const label of labels) expect((Number(label) - BASE) % (128 * 4 * KiB), `label ${label}`).toBe(0);
    expect(labels.length).toBeGreaterThanOrEqual(8);
  });

  it('fits 8192 sectors into 64 rows of 128 cells of 4 px without collapsing anything', () => {
    const root = parse(planToSvg(alifPlan()));
    const grid = elements(root, 'g').find((g) => g.getAttribute('class') === 'grid')!;
    expect(grid.getAttribute('data-columns')).toBe('128');
    expect(grid.getAttribute('data-cell')).toBe('4');
    const rects = elements(grid, 'rect');
    expect(rects.some((r) => r.getAttribute('data-collapsed'))).toBe(false);
    const rows = new Set(rects.map((r) => r.getAttribute('y')));
    expect(rows.size).toBe(64);
    for (const r of rects) expect(Number(r.getAttribute('x')) + Number(r.getAttribute('width'))).toBeLessThanOrEqual(84 + 512);
    // Runs are merged per row: far fewer rects than sectors.
    expect(rects.length).toBeLessThan(200);
  });

  it('collapses long runs of identical rows into bands beyond maxRows, keeping the counts', () => {
    const plan = alifPlan();
    const root = parse(planToSvg(plan, { maxRows: 16 }));
    const rects = elements(root, 'rect').filter((r) => r.getAttribute('data-state') && r.getAttribute('data-collapsed'));
    expect(rects.length).toBeGreaterThan(0);
    expect(cellCounts(root)).toEqual(expectedCounts(plan));
    const rows = new Set(elements(root, 'rect').filter((r) => r.getAttribute('data-state') && !r.getAttribute('data-collapsed') && r.getAttribute('data-address')).map((r) => r.getAttribute('y')));
    expect(rows.size).toBeLessThan(32);
  });

  it('shows sectors found unchanged as skipped', () => {
    const plan = alifPlan();
    const unchanged = new Set(plan.sectors.slice(0, 100).map((s) => s.address));
    const root = parse(planToSvg(plan, { unchanged }));
    expect(cellCounts(root)).toEqual(expectedCounts(plan, unchanged));
    expect(cellCounts(root).skip).toBe(100);
  });

  it('shows the sectors a chip erase wipes, and ignores "unchanged" then', () => {
    const plan = alifPlan({ preserve: false, chipErase: 'always' });
    const root = parse(planToSvg(plan, { unchanged: [BASE] }));
    const counts = cellCounts(root);
    expect(counts.wiped).toBe(8192 - 262);
    expect(counts.skip).toBeUndefined();
    expect(counts.untouched).toBeUndefined();
  });

  it('draws small devices with sectors of several sizes in larger cells', () => {
    const image = createImage([{ address: 0x0800_0000, data: bytes(100_000) }]);
    const plan = planFlash(image, STM32F4_1MIB, { preserve: false });
    const root = parse(planToSvg(plan));
    expect(cellCounts(root)).toEqual({ program: 5, untouched: 7 });
    const grid = elements(root, 'g').find((g) => g.getAttribute('class') === 'grid')!;
    expect(grid.getAttribute('data-cell')).toBe('16');
  });

  it('escapes text that would break the XML', () => {
    const root = parse(planToSvg(alifPlan(), { title: 'a<b> & "c"' }));
    expect(elements(root, 'text').map((t) => t.textContent)).toContain('a<b> & "c"');
  });

  it('draws an empty plan as an all-untouched device', () => {
    const plan = planFlash(createImage([]), ALIF_OSPI1);
    expect(cellCounts(parse(planToSvg(plan)))).toEqual({ untouched: 8192 });
  });
});

describe('planSectorRuns', () => {
  it('covers the device with runs of one state, in address order', () => {
    const plan = alifPlan();
    const runs = planSectorRuns(plan);
    expect(runs.reduce((n, r) => n + r.count, 0)).toBe(8192);
    expect(runs.reduce((n, r) => n + r.size, 0)).toBe(32 * MiB);
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]!.index).toBe(runs[i - 1]!.index + runs[i - 1]!.count);
      expect(runs[i]!.state).not.toBe(runs[i - 1]!.state);
    }
    expect(runs.slice(0, 3)).toEqual([
      { index: 0, address: BASE, addressHex: '0xc0000000', count: 256, size: 1 * MiB, state: 'program' },
      { index: 256, address: BASE + 1 * MiB, addressHex: '0xc0100000', count: 1, size: 4 * KiB, state: 'keep' },
      { index: 257, address: BASE + 1 * MiB + 4 * KiB, addressHex: '0xc0101000', count: 767, size: 767 * 4 * KiB, state: 'untouched' },
    ]);
  });

  it('gives sectors of different sizes their own size', () => {
    const image = createImage([{ address: 0x0801_0000, data: bytes(64 * KiB) }]);
    const runs = planSectorRuns(planFlash(image, STM32F4_1MIB));
    expect(runs.map((r) => [r.addressHex, r.count, r.size, r.state])).toEqual([
      ['0x08000000', 4, 64 * KiB, 'untouched'],
      ['0x08010000', 1, 64 * KiB, 'program'],
      ['0x08020000', 7, 7 * 128 * KiB, 'untouched'],
    ]);
  });
});
