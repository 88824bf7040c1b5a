/**
 * The seed job, modelled (issue 12): rspflash programming the Alif Ensemble
 * DevKit's OSPI flash (IS25WX256, not memory mapped while the algorithm runs)
 * through a J-Link. On this machine that is QEMU `mps3-an547` with the NOR
 * simulator (the same geometry), the algorithm in ITCM at 0x0 (256 KiB, as on
 * the board), the J-Link test double in front of QEMU (so `X` binary writes,
 * J-Link's packet size and dialect), and {@link startLinkModel} in front of
 * the double counting what a probe would carry.
 *
 * Each scenario's **modelled board time** = the flash device's operations
 * (counted by the simulator, {@link NOR_STATS_ADDRESS}) × the IS25WX256's
 * typical timings ({@link IS25WX256}) + link time (the relay's counts over a
 * {@link LinkProfile}). Two other ways of doing the same job are modelled on the
 * same image and timings: J-Flash's Production Programming and a loader that
 * makes one call per page (pyOCD, probe-rs). bench/README.md, "Seed job model",
 * says how each is computed. Alone (without the rest of the bench):
 *
 * ```
 * node dist/bench/bench/seed-model.js [--mib 32] [--random] [--json]
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Flasher, boardPreset, connect, createImage, loadAlgorithm, withFlasher, type FlashAlgorithm, type FlashReport, type Image } from '../lib/index.js';
import { startJlinkProxy } from '../test/helpers/jlink-proxy.js';
import { DEFAULT_SEED, PAGE, SECTOR, buildCorpus, corpusStats, erasedUnits, isErased, prng, randomImage, type CorpusStats } from './corpus.js';
import { LINK_PROFILES, linkTimeMs, startLinkModel, type LinkCounts, type LinkProfile } from './link-model.js';
import { FIXTURE_DIR } from './paths.js';
import { startQemu } from './qemu.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Where the seed job's image goes: OSPI1 of the DevKit (and the simulator). */
export const SEED_FLASH_BASE = 0xc0000000;

// ---- the flash device ---------------------------------------------------------------------------

/** Typical timings of a flash device. */
export interface DeviceTimings {
  readonly name: string;
  /** Erase of one 4 KiB sector, ms. */
  readonly sectorEraseMs: number;
  /** Larger erase units the device has (the J-Flash model may use them). */
  readonly blockErases: readonly { readonly size: number; readonly ms: number }[];
  readonly chipEraseMs: number;
  /** Program of one 256 B page, ms. */
  readonly pageProgramMs: number;
  /** What an algorithm reading through the OSPI controller (Verify, CRC) gets, bytes/s. */
  readonly readBytesPerSecond: number;
  readonly source: string;
}

/**
 * The DevKit's IS25WX256 (ISSI, 256 Mb octal xSPI, 1.8 V), typical values. The
 * datasheet could not be retrieved in this session (the search found only
 * ISSI's quad-SPI IS25LP/WP256D); the numbers are the typical values of
 * octal NOR of this generation (ISSI IS25WX, Macronix MX25UW25645G, Micron
 * MT35XU256: 4 KiB erase 25–50 ms, 128 KiB erase 0.2–0.5 s, 256 B program
 * 0.12–0.2 ms, chip erase ~1–2 min for 256 Mb). To be checked against the
 * IS25WX256 datasheet's "AC characteristics" table. Read rate: the bus does
 * 400 MB/s (200 MHz DDR × 8 lines), but Alif's algorithm reads through the
 * controller in command mode (FACTS.md: not memory mapped), so 50 MB/s is
 * assumed for Verify and CRC reads.
 */
export const IS25WX256: DeviceTimings = {
  name: 'IS25WX256 (typical)',
  sectorEraseMs: 30,
  blockErases: [
    { size: 32 * KiB, ms: 100 },
    { size: 128 * KiB, ms: 300 },
  ],
  chipEraseMs: 80_000,
  pageProgramMs: 0.2,
  readBytesPerSecond: 50e6,
  source: 'typical values of 256 Mb octal NOR (IS25WX / MX25UW / MT35XU class); IS25WX256 datasheet not retrieved here — check its AC table',
};

// ---- the simulator's counters -------------------------------------------------------------------

/** Where nor-sim.flm keeps its counters (test/fixtures/src/nor-core.h, `struct nor_stats`). */
export const NOR_STATS_ADDRESS = 0xc2000000;
/** `NOR_STATS_MAGIC` ("NORS"). */
export const NOR_STATS_MAGIC = 0x53524f4e;
const NOR_STATS_FIELDS = ['magic', 'init', 'uninit', 'eraseChip', 'eraseSector', 'programPage', 'programBytes', 'verify', 'verifyBytes', 'blankCheck', 'blankCheckBytes'] as const;
/** Bytes of `struct nor_stats`. */
export const NOR_STATS_SIZE = 4 * NOR_STATS_FIELDS.length;

/** What the flash device was asked to do (counted by the simulator). */
export type DeviceCounts = Record<Exclude<(typeof NOR_STATS_FIELDS)[number], 'magic'>, number>;

/** Decodes `struct nor_stats`; a zero magic (no Init since the reset) is all zeros. */
export function parseDeviceCounts(bytes: Uint8Array): DeviceCounts {
  if (bytes.length < NOR_STATS_SIZE) throw new Error(`nor_stats needs ${NOR_STATS_SIZE} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const word = (i: number) => view.getUint32(4 * i, true);
  if (word(0) !== 0 && word(0) !== NOR_STATS_MAGIC) throw new Error(`no NOR simulator counters at 0x${NOR_STATS_ADDRESS.toString(16)} (magic 0x${word(0).toString(16)}): rebuild the fixtures`);
  const out = {} as DeviceCounts;
  NOR_STATS_FIELDS.forEach((name, i) => {
    if (name !== 'magic') out[name] = word(i);
  });
  return out;
}

/** Device time of `counts`, ms: erases, page programs, and the bytes Verify/BlankCheck read. */
export function deviceTimeMs(counts: DeviceCounts, t: DeviceTimings): number {
  return (
    counts.eraseSector * t.sectorEraseMs +
    counts.eraseChip * t.chipEraseMs +
    counts.programPage * t.pageProgramMs +
    ((counts.verifyBytes + counts.blankCheckBytes) / t.readBytesPerSecond) * 1000
  );
}

// ---- the image and the other two ways ----------------------------------------------------------

/** What the other models need to know about an image. */
export interface ImageFacts {
  bytes: number;
  pages: number;
  nonBlankPages: number;
  sectors: number;
  nonBlankSectors: number;
}

/** Pages, sectors and how many are not erased. */
export function imageFacts(data: Uint8Array): ImageFacts {
  const u = erasedUnits(data);
  return { bytes: data.length, pages: u.pages, nonBlankPages: u.pages - u.erasedPages, sectors: u.sectors, nonBlankSectors: u.sectors - u.erasedSectors };
}

/** A modelled time, split. */
export interface ModelTime {
  deviceMs: number;
  linkMs: number;
  totalMs: number;
  /** Payload bytes over the link, host → target. */
  bytesDown: number;
}

/** Round trips of one algorithm call through a GDB server: write registers, run, see it halted, read R0. */
export const CALL_ROUND_TRIPS = 4;
/** J-Flash's transfer unit to its RAM code (one USB round trip each), bytes. */
const JFLASH_CHUNK = 64 * KiB;

/** The cheapest way to erase `bytes` from offset 0 with the device's units: chip, or blocks and sectors. */
export function cheapestEraseMs(bytes: number, t: DeviceTimings, deviceBytes: number): number {
  let rest = bytes;
  let ms = 0;
  for (const block of [...t.blockErases].sort((a, b) => b.size - a.size)) {
    ms += Math.floor(rest / block.size) * block.ms;
    rest %= block.size;
  }
  ms += Math.ceil(rest / SECTOR) * t.sectorEraseMs;
  return bytes >= deviceBytes ? Math.min(ms, t.chipEraseMs) : ms;
}

/**
 * J-Flash Production Programming (erase, program, verify) of the whole image,
 * whatever the flash holds, in its favour: the cheapest erase (chip or largest
 * blocks), only non-blank pages programmed, the link transfer overlapped with
 * programming (SEGGER's RAM code double-buffers), verify by an on-target CRC
 * (device reads, no image over the link). `verifyOnly`: the verify step alone.
 */
export function jflashModel(f: ImageFacts, t: DeviceTimings, link: LinkProfile, deviceBytes: number, verifyOnly: boolean): ModelTime {
  const verifyMs = (f.bytes / t.readBytesPerSecond) * 1000;
  if (verifyOnly) return { deviceMs: verifyMs, linkMs: CALL_ROUND_TRIPS * link.roundTripMs, totalMs: verifyMs + CALL_ROUND_TRIPS * link.roundTripMs, bytesDown: 0 };
  const eraseMs = cheapestEraseMs(f.bytes, t, deviceBytes);
  const programMs = f.nonBlankPages * t.pageProgramMs;
  const linkMs = (f.bytes / link.downBytesPerSecond) * 1000 + Math.ceil(f.bytes / JFLASH_CHUNK) * link.roundTripMs;
  return { deviceMs: eraseMs + programMs + verifyMs, linkMs, totalMs: eraseMs + Math.max(programMs, linkMs) + verifyMs, bytesDown: f.bytes };
}

/**
 * A loader that calls the algorithm once per page (pyOCD, probe-rs with a CMSIS
 * FLM): EraseSector per sector of the image, then per non-blank page a 256 B
 * write and a ProgramPage call; no verify (in its favour), no skipping of
 * unchanged data. `verifyOnly`: per page a write and a Verify call.
 */
export function perPageModel(f: ImageFacts, t: DeviceTimings, link: LinkProfile, verifyOnly: boolean): ModelTime {
  const callMs = CALL_ROUND_TRIPS * link.roundTripMs;
  const pageDownMs = link.roundTripMs + (PAGE / link.downBytesPerSecond) * 1000;
  if (verifyOnly) {
    const deviceMs = (f.bytes / t.readBytesPerSecond) * 1000;
    const linkMs = f.pages * (pageDownMs + callMs);
    return { deviceMs, linkMs, totalMs: deviceMs + linkMs, bytesDown: f.bytes };
  }
  const deviceMs = f.sectors * t.sectorEraseMs + f.nonBlankPages * t.pageProgramMs;
  const linkMs = f.sectors * callMs + f.nonBlankPages * (pageDownMs + callMs);
  return { deviceMs, linkMs, totalMs: deviceMs + linkMs, bytesDown: f.nonBlankPages * PAGE };
}

/** rspflash's modelled board time: counted device operations + counted link traffic. */
export function rspflashModel(device: DeviceCounts, link: LinkCounts, t: DeviceTimings, profile: LinkProfile): ModelTime {
  const deviceMs = deviceTimeMs(device, t);
  const linkMs = linkTimeMs(link, profile).totalMs;
  // All-stop GDB: the link and the target never work at the same time.
  return { deviceMs, linkMs, totalMs: deviceMs + linkMs, bytesDown: link.bytesDown };
}

// ---- scenarios ----------------------------------------------------------------------------------

/** The five scenarios of issue 12, in the order they run (each starts from the flash the previous one left). */
export const SCENARIOS = ['fresh', 'unchanged', 'one-sector', 'ten-percent', 'verify-only'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const SCENARIO_TEXT: Record<ScenarioName, string> = {
  fresh: 'fresh (blank) board',
  unchanged: 'unchanged re-run',
  'one-sector': 'one sector changed',
  'ten-percent': '10 % of sectors changed',
  'verify-only': 'verify only',
};

/** One scenario's measurements and the three models for each link profile. */
export interface ScenarioResult {
  scenario: ScenarioName | 'fresh-random';
  description: string;
  image: ImageFacts;
  /** Sectors whose content differs from what the flash held before. */
  sectorsChanged: number;
  /** What the flash device was asked to do. */
  device: DeviceCounts;
  link: LinkCounts;
  report: Pick<FlashReport, 'sectorsSkipped' | 'sectorsErased' | 'chipErase' | 'pagesProgrammed' | 'bytesProgrammed' | 'verify' | 'bytesSent' | 'roundTrips' | 'targetRuns'>;
  /** Wall time on QEMU behind the double and the relay (not the model), ms. */
  wallMs: number;
  models: Record<string, { rspflash: ModelTime; jflash: ModelTime; perPage: ModelTime; vsJflash: number; vsPerPage: number }>;
}

/** Everything the seed section reports (`--json`: `seed`). */
export interface SeedResult {
  imageBytes: number;
  seed: number;
  board: { ram: { start: number; size: number }; memoryMapped: boolean };
  timings: DeviceTimings;
  profiles: LinkProfile[];
  corpus: CorpusStats;
  random: CorpusStats['whole'];
  scenarios: ScenarioResult[];
}

/** Options of {@link runSeedModel}. */
export interface SeedOptions {
  /** Image size, bytes (a multiple of 64 KiB, up to 32 MiB). */
  bytes: number;
  seed?: number;
  /** Also program the random (worst case) image on a blank board. */
  random?: boolean;
  /** Smaller compression matrix (smoke runs). */
  quickStats?: boolean;
  log?: (text: string) => void;
}

/** Sector offsets to change: `count` distinct sectors of `sectors`, seeded. */
export function pickSectors(sectors: number, count: number, seed: number): number[] {
  const rand = prng(seed);
  const order = Array.from({ length: sectors }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (sectors - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, count).sort((a, b) => a - b);
}

/** A copy of `data` with the given sectors replaced by seeded random bytes. */
export function changeSectors(data: Uint8Array, sectors: readonly number[], seed: number): Uint8Array {
  const out = new Uint8Array(data);
  for (const s of sectors) out.set(randomImage(SECTOR, seed + s), s * SECTOR);
  return out;
}

/**
 * The one place the bench drives the library for the seed job: a session as a
 * CLI run has one (connect, load the algorithm, the job, restore, close), with
 * the Alif board's RAM and `memoryMapped: false`. Keep library calls here so the
 * executor rework only has to be followed in one function.
 */
async function seedSession<T>(endpoint: string, algo: FlashAlgorithm, job: (flasher: Flasher) => Promise<T>): Promise<T> {
  return withFlasher({ gdb: endpoint, algorithm: algo, board: 'alif-e7-hp' }, (flasher) => job(flasher));
}

/** Straight to QEMU, outside the model: blank the flash (EraseChip), reset or read the counters. */
async function control(endpoint: string, algo: FlashAlgorithm, job: { eraseChip?: boolean; read?: boolean }): Promise<DeviceCounts | undefined> {
  const gdb = await connect(endpoint);
  try {
    if (job.read) return parseDeviceCounts(await gdb.readMemory(NOR_STATS_ADDRESS, NOR_STATS_SIZE));
    if (job.eraseChip) {
      const board = boardPreset('qemu-an547');
      const flasher = await Flasher.create(gdb, algo, { ram: board.ram, memoryMapped: board.memoryMapped });
      try {
        await flasher.erase('chip');
      } finally {
        await flasher.close();
      }
    }
    await gdb.writeMemory(NOR_STATS_ADDRESS, new Uint8Array(NOR_STATS_SIZE));
    return undefined;
  } finally {
    await gdb.close();
  }
}

const imageAt = (data: Uint8Array, source: string): Image => createImage([{ address: SEED_FLASH_BASE, data, source }]);

/** Runs the five scenarios (and the random worst case) and models each. */
export async function runSeedModel(options: SeedOptions): Promise<SeedResult> {
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? DEFAULT_SEED;
  const algo = loadAlgorithm(readFileSync(join(FIXTURE_DIR, 'nor-sim.flm')), 'nor-sim.flm');
  const deviceBytes = algo.geometry.size;
  const corpus = buildCorpus(options.bytes, seed);
  log(`seed: corpus ${options.bytes / MiB} MiB statistics`);
  const stats = corpusStats(corpus, options.quickStats ? { levels: [9], windowBits: [10, 15], partWindowBits: [15] } : {});
  const randomData = randomImage(options.bytes, seed);
  const randomStats = corpusStats({ bytes: randomData, parts: [], seed }, { levels: [9], windowBits: [15], partWindowBits: [15] }).whole;
  const board = boardPreset('alif-e7-hp');
  const profiles: LinkProfile[] = [LINK_PROFILES['jlink-base'], LINK_PROFILES['jlink-ultra']];

  const qemu = await startQemu(join(FIXTURE_DIR, 'boot-an547.elf'));
  const jlink = await startJlinkProxy({ host: '127.0.0.1', port: qemu.port });
  const link = await startLinkModel('127.0.0.1', jlink.port);
  const scenarios: ScenarioResult[] = [];
  try {
    const run = async (scenario: ScenarioResult['scenario'], data: Uint8Array, before: Uint8Array | undefined, job: 'program' | 'verify') => {
      log(`seed: ${scenario}`);
      await control(qemu.endpoint, algo, { eraseChip: before === undefined });
      link.resetCounts();
      const t0 = performance.now();
      const image = imageAt(data, scenario);
      const report = await seedSession(link.endpoint, algo, (f) => (job === 'program' ? f.program(image) : f.verify(image)));
      const wallMs = performance.now() - t0;
      const linkCounts = { ...link.counts };
      const device = (await control(qemu.endpoint, algo, { read: true }))!;
      const facts = imageFacts(data);
      let sectorsChanged = 0;
      for (let at = 0; at < data.length; at += SECTOR) {
        const now = data.subarray(at, at + SECTOR);
        const was = before?.subarray(at, at + SECTOR);
        if (was === undefined ? !isErased(now) : Buffer.compare(Buffer.from(now), Buffer.from(was)) !== 0) sectorsChanged++;
      }
      const models: ScenarioResult['models'] = {};
      for (const p of profiles) {
        const verifyOnly = job === 'verify';
        const rspflash = rspflashModel(device, linkCounts, IS25WX256, p);
        const jflash = jflashModel(facts, IS25WX256, p, deviceBytes, verifyOnly);
        const perPage = perPageModel(facts, IS25WX256, p, verifyOnly);
        models[p.name] = { rspflash, jflash, perPage, vsJflash: rspflash.totalMs / jflash.totalMs, vsPerPage: rspflash.totalMs / perPage.totalMs };
      }
      const { sectorsSkipped, sectorsErased, chipErase, pagesProgrammed, bytesProgrammed, verify, bytesSent, roundTrips, targetRuns } = report;
      scenarios.push({
        scenario,
        description: scenario === 'fresh-random' ? 'fresh board, random image (worst case)' : SCENARIO_TEXT[scenario],
        image: facts,
        sectorsChanged,
        device,
        link: linkCounts,
        report: { sectorsSkipped, sectorsErased, chipErase, pagesProgrammed, bytesProgrammed, verify, bytesSent, roundTrips, targetRuns },
        wallMs,
        models,
      });
    };
    const sectors = options.bytes / SECTOR;
    const image = corpus.bytes;
    await run('fresh', image, undefined, 'program');
    await run('unchanged', image, image, 'program');
    // One sector inside the weights (non-blank), then 10 % of all sectors, seeded.
    const one = changeSectors(image, [Math.floor(sectors * 0.3)], seed);
    await run('one-sector', one, image, 'program');
    const tenth = changeSectors(one, pickSectors(sectors, Math.floor(sectors / 10), seed + 1), seed + 2);
    await run('ten-percent', tenth, one, 'program');
    await run('verify-only', tenth, tenth, 'verify');
    if (options.random) await run('fresh-random', randomData, undefined, 'program');
  } finally {
    await link.close();
    await jlink.close();
    await qemu.stop();
  }
  return {
    imageBytes: options.bytes,
    seed,
    board: { ram: { start: board.ram.start, size: board.ram.size }, memoryMapped: board.memoryMapped },
    timings: IS25WX256,
    profiles,
    corpus: stats,
    random: randomStats,
    scenarios,
  };
}

// ---- output -------------------------------------------------------------------------------------

const sizeName = (bytes: number) => (bytes >= MiB ? `${+(bytes / MiB).toFixed(2)} MiB` : `${+(bytes / KiB).toFixed(1)} KiB`);
const seconds = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(2)} s`);

function table(title: string, header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [`\n${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** The seed section of the bench's table. */
export function formatSeed(r: SeedResult): string {
  const t = r.timings;
  const out: string[] = [];
  out.push(
    table(
      `S1 seed job model: ${sizeName(r.imageBytes)} corpus image at 0x${SEED_FLASH_BASE.toString(16).padStart(8, '0')}, algorithm in RAM 0x${r.board.ram.start.toString(16).padStart(8, '0')} (${sizeName(r.board.ram.size)}), memoryMapped ${r.board.memoryMapped}, J-Link double + link relay — what was counted`,
      ['scenario', 'changed', 'down', 'up', 'target req', 'runs', 'sector erases', 'chip', 'pages', 'verify bytes', 'blank-check', 'skipped', 'wall (QEMU)'],
      r.scenarios.map((s) => [
        s.description,
        `${s.sectorsChanged}/${s.image.sectors}`,
        sizeName(s.link.bytesDown),
        sizeName(s.link.bytesUp),
        s.link.targetRequests,
        s.link.runs,
        s.device.eraseSector,
        s.device.eraseChip,
        s.device.programPage,
        sizeName(s.device.verifyBytes),
        sizeName(s.device.blankCheckBytes),
        s.report.sectorsSkipped,
        `${s.wallMs.toFixed(0)} ms`,
      ]),
    ),
  );
  for (const p of r.profiles) {
    out.push(
      table(
        `S2 modelled board time, ${p.description} — device (${t.name}: sector erase ${t.sectorEraseMs} ms, page ${t.pageProgramMs} ms, chip ${t.chipEraseMs / 1000} s, read ${t.readBytesPerSecond / 1e6} MB/s) + link`,
        ['scenario', 'rspflash device', 'link', 'board', 'J-Flash', 'one call/page', 'vs J-Flash', 'vs per page'],
        r.scenarios.map((s) => {
          const m = s.models[p.name]!;
          return [s.description, seconds(m.rspflash.deviceMs), seconds(m.rspflash.linkMs), seconds(m.rspflash.totalMs), seconds(m.jflash.totalMs), seconds(m.perPage.totalMs), `${m.vsJflash.toFixed(2)}x`, `${m.vsPerPage.toFixed(2)}x`];
        }),
      ),
    );
  }
  const c = r.corpus;
  out.push(
    table(
      `S3 image corpus (seed ${r.seed}): erased pages and raw-deflate size (level 9) of the non-blank pages`,
      ['part', 'size', 'erased pages', 'non-blank', ...Object.keys(c.whole.deflate9).map((w) => `deflate w${w}`)],
      [...c.parts, c.whole, { ...r.random, name: 'random (worst case)' }].map((p) => [
        p.name,
        sizeName(p.length),
        `${p.erasedPages}/${p.pages}`,
        sizeName(p.nonBlankBytes),
        ...Object.keys(c.whole.deflate9).map((w) => {
          const n = p.deflate9[Number(w)];
          return n === undefined ? '' : `${sizeName(n)} (${p.nonBlankBytes ? ((100 * n) / p.nonBlankBytes).toFixed(1) : '0.0'}%)`;
        }),
      ]),
    ),
  );
  const m = c.matrix;
  out.push(
    table(
      `S4 whole corpus, non-blank pages (${sizeName(c.whole.nonBlankBytes)}), raw deflate by level × windowBits; each 64 KiB alone (9, w15): ${sizeName(m.perBlock64KiB)}`,
      ['level', ...m.windowBits.map((w) => `w${w}`)],
      m.levels.map((level, i) => [level, ...m.sizes[i]!.map(sizeName)]),
    ),
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--mib');
  const mib = at >= 0 ? Number(args[at + 1]) : 32;
  if (!(mib >= 1 && mib <= 32)) throw new Error('--mib takes 1..32');
  const result = await runSeedModel({
    bytes: Math.round((mib * MiB) / (64 * KiB)) * 64 * KiB,
    random: args.includes('--random'),
    quickStats: mib < 4,
    log: (text) => process.stderr.write(`${text}\n`),
  });
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(result, null, 2)}\n` : `${formatSeed(result)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`seed model failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
