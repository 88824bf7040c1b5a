/**
 * A picture of a {@link FlashPlan}: the whole flash device as a grid of
 * sectors, each coloured by what a run will do to it, so a user sees at a
 * glance what `program` does to a 32 MiB device (`rspflash plan --svg FILE`).
 *
 * Pure and dependency-free: plan in, SVG text out. {@link planSectorRuns} gives
 * the same picture as data (runs of sectors in one state) for `--json`.
 * @module
 */
import { hex32 } from '../errors.js';
import type { FlashPlan, PlannedSector } from './plan.js';
import { formatBytes } from './plan-format.js';

/**
 * What happens to a sector, as drawn:
 *
 * - `program`: erased, then programmed (the image covers it, or covers it
 *   partly and the rest is left erased with `preserve: false`).
 * - `keep`: partly covered; the bytes the image does not cover are read back
 *   before the erase and programmed again.
 * - `erase`: erased only (every image byte there is the erased value).
 * - `skip`: touched, but found to hold the image already: left alone.
 * - `untouched`: not in the image, left as it is.
 * - `wiped`: not in the image, but erased by a chip erase (`preserve: false`).
 */
export type SectorState = 'program' | 'keep' | 'erase' | 'skip' | 'untouched' | 'wiped';

/** Every {@link SectorState} in legend order. */
export const SECTOR_STATES: readonly SectorState[] = ['program', 'keep', 'erase', 'skip', 'untouched', 'wiped'];

/** Fill colour of each state (Tableau-like, distinguishable in grey scale by lightness too). */
export const SECTOR_STATE_COLORS: Readonly<Record<SectorState, string>> = {
  program: '#1f6fb4',
  keep: '#8e44ad',
  erase: '#f0b429',
  skip: '#2ca02c',
  untouched: '#e3e3e3',
  wiped: '#8a8a8a',
};

/** Legend text of each state. */
export const SECTOR_STATE_LABELS: Readonly<Record<SectorState, string>> = {
  program: 'erase + program',
  keep: 'erase + program, rest of sector kept (read back first)',
  erase: 'erase only',
  skip: 'unchanged: skipped',
  untouched: 'untouched',
  wiped: 'wiped by chip erase',
};

/** A run of adjacent sectors in one state: the JSON form of the picture. */
export interface SectorStateRun {
  /** Index of the first sector in the device (0 = first). */
  readonly index: number;
  /** Address of the first sector. */
  readonly address: number;
  /** `address` as `0x` + 8 hex digits. */
  readonly addressHex: string;
  /** Number of sectors in the run. */
  readonly count: number;
  /** Bytes the run covers. */
  readonly size: number;
  /** What happens to these sectors. */
  readonly state: SectorState;
}

/** Options of {@link planSectorRuns} and {@link planToSvg}. */
export interface SectorStateOptions {
  /**
   * Addresses of touched sectors found to hold the image already (the
   * flasher's skip-unchanged comparison). They are drawn as `skip`. Ignored
   * with a chip erase, which rewrites every sector.
   */
  readonly unchanged?: Iterable<number>;
}

/** Options of {@link planToSvg}. */
export interface PlanSvgOptions extends SectorStateOptions {
  /**
   * Cell size in pixels. Default: by sector count, so the grid is 512 px wide:
   * 16 px (32 per row) up to 512 sectors, 8 px (64 per row) up to 2048,
   * 4 px (128 per row) beyond.
   */
  readonly cell?: number;
  /** Sectors per row. Default `512 / cell`. */
  readonly columns?: number;
  /**
   * Most grid rows drawn before runs of identical rows are collapsed into one
   * labelled band (default 64: a 32 MiB device of 4 KiB sectors fits uncollapsed).
   */
  readonly maxRows?: number;
  /** A title line above the grid, e.g. the image file name. */
  readonly title?: string;
}

const GRID_WIDTH = 512;
const LABEL_WIDTH = 84;
const MARGIN = 12;
const LINE = 16;
const BAND_HEIGHT = 14;
const LEGEND_SWATCH = 10;
const FONT = 'font-family="ui-monospace, Menlo, Consolas, monospace"';
/** Advance of one character at font-size 11 in a monospace font (0.6 em), for wrapping. */
const CHAR_WIDTH = 6.7;

/** The state of every sector of the device, by index. */
function sectorStates(plan: FlashPlan, options: SectorStateOptions): SectorState[] {
  const total = plan.geometry.sectors.reduce((n, run) => n + run.count, 0);
  const chip = plan.erase.kind === 'chip';
  const states = new Array<SectorState>(total).fill(chip ? 'wiped' : 'untouched');
  const unchanged = chip ? new Set<number>() : new Set(options.unchanged ?? []);
  for (const sector of plan.sectors) states[sector.index] = stateOf(sector, unchanged);
  return states;
}

function stateOf(sector: PlannedSector, unchanged: ReadonlySet<number>): SectorState {
  if (unchanged.has(sector.address)) return 'skip';
  if (sector.keep.length > 0) return 'keep';
  return sector.pages.length > 0 ? 'program' : 'erase';
}

/** Start address of every sector, by index (geometries are short lists of runs, so this is cheap). */
function sectorAddresses(plan: FlashPlan): { address: number; size: number }[] {
  const out: { address: number; size: number }[] = [];
  for (const run of plan.geometry.sectors) {
    for (let i = 0; i < run.count; i++) out.push({ address: run.address + i * run.size, size: run.size });
  }
  return out;
}

/**
 * The device as runs of adjacent sectors in one state, covering every sector
 * in address order: the data behind {@link planToSvg}, compact enough for JSON.
 *
 * @example
 * ```ts
 * planSectorRuns(plan, { unchanged: [0xc0000000] });
 * // [{ index: 0, address: 0xc0000000, count: 1, state: 'skip', … },
 * //  { index: 1, address: 0xc0001000, count: 2, state: 'program', … },
 * //  { index: 3, address: 0xc0003000, count: 8189, state: 'untouched', … }]
 * ```
 */
export function planSectorRuns(plan: FlashPlan, options: SectorStateOptions = {}): SectorStateRun[] {
  const states = sectorStates(plan, options);
  const sectors = sectorAddresses(plan);
  const runs: SectorStateRun[] = [];
  let i = 0;
  while (i < states.length) {
    let j = i + 1;
    let size = sectors[i]!.size;
    while (j < states.length && states[j] === states[i]) size += sectors[j++]!.size;
    const address = sectors[i]!.address;
    runs.push({ index: i, address, addressHex: hex32(address), count: j - i, size, state: states[i]! });
    i = j;
  }
  return runs;
}

/** One drawn line of the grid: a row of sectors, or a band standing for collapsed rows. */
type GridLine = { kind: 'row'; row: number } | { kind: 'band'; first: number; rows: number; state: SectorState };

/** Rows whose sectors all share one state: that state; mixed rows: undefined. */
function uniformState(states: readonly SectorState[], row: number, columns: number): SectorState | undefined {
  const first = states[row * columns]!;
  const end = Math.min(states.length, (row + 1) * columns);
  for (let i = row * columns + 1; i < end; i++) if (states[i] !== first) return undefined;
  return first;
}

/**
 * Which rows to draw. When there are more than `maxRows`, every run of
 * identical uniform rows long enough for a band to be shorter than the rows it
 * replaces keeps its first and last row, and the rows between become one band.
 */
function gridLines(states: readonly SectorState[], columns: number, maxRows: number, cell: number): GridLine[] {
  const minCollapse = 2 + Math.ceil((BAND_HEIGHT + 4) / cell) + 1;
  const rows = Math.ceil(states.length / columns);
  const lines: GridLine[] = [];
  if (rows <= maxRows) {
    for (let row = 0; row < rows; row++) lines.push({ kind: 'row', row });
    return lines;
  }
  let row = 0;
  while (row < rows) {
    const state = uniformState(states, row, columns);
    let end = row + 1;
    if (state !== undefined) while (end < rows && uniformState(states, end, columns) === state) end++;
    if (state !== undefined && end - row >= minCollapse) {
      lines.push({ kind: 'row', row });
      lines.push({ kind: 'band', first: row + 1, rows: end - row - 2, state });
      lines.push({ kind: 'row', row: end - 1 });
    } else {
      for (let r = row; r < end; r++) lines.push({ kind: 'row', row: r });
    }
    row = end;
  }
  return lines;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Splits `text` into lines of at most `width` characters at spaces (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function defaultCell(sectors: number): number {
  if (sectors <= 512) return 16;
  if (sectors <= 2048) return 8;
  return 4;
}

/**
 * Draws `plan` as an SVG document: one cell per sector (`columns` per row,
 * address of each labelled row on the left), coloured by {@link SectorState},
 * with a legend that counts the sectors in each state, and the erase decision.
 *
 * Each horizontal run of same-state cells is one `<rect>` carrying
 * `data-state`, `data-count` (sectors) and `data-address`, with a `<title>`
 * tooltip; a grid pattern drawn over them separates the cells. Runs of identical
 * rows beyond `maxRows` collapse into a labelled band, whose `<rect>` carries
 * the same attributes (and `data-collapsed="true"`), so summing `data-count` per
 * state always gives the legend's counts.
 *
 * @example
 * ```ts
 * import { writeFile } from 'node:fs/promises';
 * const plan = planProgram(image, algo, { readable: false });
 * await writeFile('plan.svg', planToSvg(plan, { title: 'ext_flash.bin' }));
 * ```
 */
export function planToSvg(plan: FlashPlan, options: PlanSvgOptions = {}): string {
  const g = plan.geometry;
  const states = sectorStates(plan, options);
  const sectors = sectorAddresses(plan);
  const total = states.length;
  const cell = Math.max(1, Math.floor(options.cell ?? defaultCell(total)));
  const columns = Math.max(1, Math.floor(options.columns ?? Math.max(1, Math.floor(GRID_WIDTH / cell))));
  const maxRows = Math.max(1, Math.floor(options.maxRows ?? 64));
  const gap = cell >= 4 ? 1 : 0;
  const gridWidth = columns * cell;
  const lines = gridLines(states, columns, maxRows, cell);

  const counts = Object.fromEntries(SECTOR_STATES.map((s) => [s, 0])) as Record<SectorState, number>;
  for (const s of states) counts[s]++;

  const out: string[] = [];
  let y = MARGIN;
  const text = (x: number, yy: number, content: string, attrs = '') =>
    out.push(`<text x="${x}" y="${yy}" ${attrs}>${escapeXml(content)}</text>`);

  // Header: what, where, the erase decision; wrapped to the picture's width.
  const width = LABEL_WIDTH + Math.max(gridWidth, 420) + MARGIN;
  const chars = Math.floor((width - 2 * MARGIN) / CHAR_WIDTH);
  const header: { text: string; attrs: string }[] = [];
  if (options.title) header.push(...wrap(options.title, chars).map((text) => ({ text, attrs: ' font-weight="bold"' })));
  const sizes = g.sectors.map((r) => `${r.count} × ${formatBytes(r.size)}`).join(' + ');
  const flashLine = `flash ${hex32(g.start)}–${hex32(g.start + g.size - 1)}: ${formatBytes(g.size)}, ${sizes} sectors, ${formatBytes(g.pageSize)} pages`;
  header.push(...wrap(flashLine, chars).map((text) => ({ text, attrs: '' })));
  header.push(...wrap(`erase: ${plan.erase.reason}`, chars).map((text) => ({ text, attrs: ' fill="#444"' })));
  const headerTop = y;
  y += header.length * LINE + 6;

  // Grid.
  const gridTop = y;
  const labelEvery = Math.max(1, 2 ** Math.ceil(Math.log2(Math.max(1, 14 / cell))));
  const grid: string[] = [];
  const gridLabels: string[] = [];
  const blocks: { top: number; height: number }[] = [];
  let blockTop = y;
  let blockRows = 0;
  const closeBlock = () => {
    if (blockRows > 0) blocks.push({ top: blockTop, height: blockRows * cell });
    blockRows = 0;
  };
  let lastLabelY = -Infinity;
  const rowLabel = (row: number, yy: number, force: boolean) => {
    const baseline = yy + Math.min(cell, 10);
    if (!force && row % labelEvery !== 0) return;
    if (baseline - lastLabelY < 12) return;
    lastLabelY = baseline;
    gridLabels.push(`<text x="${LABEL_WIDTH - 6}" y="${baseline}" text-anchor="end">${hex32(sectors[row * columns]!.address)}</text>`);
  };
  let previous: GridLine | undefined;
  for (const line of lines) {
    if (line.kind === 'row') {
      if (blockRows === 0) blockTop = y;
      rowLabel(line.row, y, previous?.kind === 'band');
      const from = line.row * columns;
      const to = Math.min(total, from + columns);
      let i = from;
      while (i < to) {
        let j = i + 1;
        while (j < to && states[j] === states[i]) j++;
        const first = sectors[i]!;
        const last = sectors[j - 1]!;
        const tip = `${hex32(first.address)}–${hex32(last.address + last.size - 1)}: ${plural(j - i, 'sector')}, ${SECTOR_STATE_LABELS[states[i]!]}`;
        grid.push(
          `<rect x="${LABEL_WIDTH + (i - from) * cell}" y="${y}" width="${(j - i) * cell}" height="${cell}" fill="${SECTOR_STATE_COLORS[states[i]!]}" ` +
            `data-state="${states[i]}" data-count="${j - i}" data-address="${hex32(first.address)}"><title>${escapeXml(tip)}</title></rect>`,
        );
        i = j;
      }
      y += cell;
      blockRows++;
    } else {
      closeBlock();
      const firstSector = line.first * columns;
      const count = line.rows * columns;
      const first = sectors[firstSector]!;
      const last = sectors[firstSector + count - 1]!;
      const label = `⋮ ${plural(line.rows, 'more row')} like this: ${plural(count, 'sector')} ${SECTOR_STATE_LABELS[line.state]}, ${hex32(first.address)}–${hex32(last.address + last.size - 1)}`;
      const top = y + 2;
      grid.push(
        `<rect x="${LABEL_WIDTH}" y="${top}" width="${gridWidth}" height="${BAND_HEIGHT}" fill="${SECTOR_STATE_COLORS[line.state]}" fill-opacity="0.35" ` +
          `data-state="${line.state}" data-count="${count}" data-address="${hex32(first.address)}" data-collapsed="true"><title>${escapeXml(label)}</title></rect>`,
      );
      grid.push(`<text x="${LABEL_WIDTH + 6}" y="${top + BAND_HEIGHT - 4}" font-size="10">${escapeXml(label)}</text>`);
      y += BAND_HEIGHT + 4;
    }
    previous = line;
  }
  closeBlock();
  const gridBottom = y;

  // Legend: every state that occurs, and always "erase + program" so an empty plan still explains itself.
  y += LINE;
  const legendTop = y;
  const shown = SECTOR_STATES.filter((s) => counts[s] > 0 || s === 'program');
  const legend: string[] = [];
  for (const s of shown) {
    legend.push(
      `<g class="legend" data-state="${s}" data-count="${counts[s]}">` +
        `<rect x="${LABEL_WIDTH}" y="${y - LEGEND_SWATCH + 1}" width="${LEGEND_SWATCH}" height="${LEGEND_SWATCH}" fill="${SECTOR_STATE_COLORS[s]}" stroke="#555" stroke-width="0.5"/>` +
        `<text x="${LABEL_WIDTH + LEGEND_SWATCH + 6}" y="${y}">${escapeXml(`${SECTOR_STATE_LABELS[s]}: ${plural(counts[s], 'sector')}`)}</text></g>`,
    );
    y += LINE;
  }
  const t = plan.totals;
  const totals =
    `erase ${plan.erase.kind === 'chip' ? 'chip' : plural(t.sectorsToErase, 'sector')} (${formatBytes(t.bytesToErase)}), ` +
    `program ${plural(t.pagesToProgram, 'page')} (${formatBytes(t.bytesToProgram)})` +
    (t.bytesToKeep > 0 ? `, read back ${formatBytes(t.bytesToKeep)}` : '');
  const footer = wrap(`totals: ${totals}`, Math.floor((width - LABEL_WIDTH - MARGIN) / CHAR_WIDTH));
  const footerY = y - 4;
  y = footerY + footer.length * LINE;
  const height = y + MARGIN;
  const svg: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="11">`,
    `<title>${escapeXml(`Flash plan: ${options.title ? options.title + ', ' : ''}${flashLine}`)}</title>`,
    `<defs><pattern id="cells" x="${LABEL_WIDTH}" y="${gridTop}" width="${cell}" height="${cell}" patternUnits="userSpaceOnUse">` +
      (gap > 0
        ? `<rect x="${cell - gap}" y="0" width="${gap}" height="${cell}" fill="#ffffff"/><rect x="0" y="${cell - gap}" width="${cell}" height="${gap}" fill="#ffffff"/>`
        : '') +
      `</pattern></defs>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  header.forEach((h, k) => svg.push(`<text x="${MARGIN}" y="${headerTop + (k + 1) * LINE - 4}"${h.attrs}>${escapeXml(h.text)}</text>`));
  svg.push(`<g class="grid" data-columns="${columns}" data-cell="${cell}">`, ...grid, `</g>`);
  if (gap > 0) {
    // Drawn over the runs so every sector shows as its own cell; per block, so bands stay clean.
    for (const b of blocks) svg.push(`<rect x="${LABEL_WIDTH}" y="${b.top}" width="${gridWidth}" height="${b.height}" fill="url(#cells)" pointer-events="none"/>`);
  }
  svg.push(`<g class="addresses" font-size="10" fill="#333">`, ...gridLabels, `</g>`);
  svg.push(`<line x1="${LABEL_WIDTH}" y1="${gridBottom + 4}" x2="${LABEL_WIDTH + gridWidth}" y2="${gridBottom + 4}" stroke="#bbb" stroke-width="0.5"/>`);
  svg.push(`<g class="legend-items" data-top="${legendTop}">`, ...legend, `</g>`);
  footer.forEach((f, k) => svg.push(`<text x="${LABEL_WIDTH}" y="${footerY + (k + 1) * LINE - 4}" fill="#444">${escapeXml(f)}</text>`));
  svg.push(`</svg>`, '');
  return svg.join('\n');
}
