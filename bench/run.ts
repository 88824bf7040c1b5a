/**
 * `npm run bench`: rspflash against the floor of its link and against gdb, on
 * QEMU `mps3-an547` with the NOR simulator of the Alif geometry (32 MiB at
 * 0xC0000000, 4 KiB sectors, 256 B pages). Every figure of issue 5 is
 * measured in the same run, then section S models the seed job of issue 12
 * (seed-model.ts); bench/README.md says what each one means.
 *
 * ```
 * node dist/bench/bench/run.js [--sizes 4,32] [--latency-ms 1] [--latency-mib 1]
 *   [--unbatched-kib 64] [--repeats 3] [--program-repeats 2] [--windows 1,4,16,64]
 *   [--seed-mib 32] [--no-seed-random] [--json] [--out FILE] [--profile DIR] [--smoke]
 * ```
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Flasher, boardPreset, connect, createImage, loadAlgorithm, type FlashAlgorithm, type GdbClient } from '../lib/index.js';
import { FNC_ERASE, FNC_PROGRAM, planRamLayout } from '../lib/advanced.js';
import { computeFloor, type ComputeFloor } from './compute-floor.js';
import { gdbConnectOnly, gdbRestore, gdbVersion } from './gdb-restore.js';
import { startLatencyProxy } from './latency-proxy.js';
import { FIXTURE_DIR, PROGRAM_CHILD, REPO_ROOT } from './paths.js';
import type { Breakdown, ChildResult, ProgramRun } from './program-child.js';
import { processCpuMs, startQemu, type BenchQemu } from './qemu.js';
import { rawWrite } from './raw-writer.js';
import { formatSeed, runSeedModel, type SeedResult } from './seed-model.js';

const MiB = 1 << 20;
const FLASH_BASE = 0xc0000000;
/** Where the RAM transfers go (DDR, far from the flash simulator): one area per writer, so each can be checked. */
const RAM_TARGETS = { raw: 0x60000000, gdb: 0x68000000, rspflash: 0x70000000 } as const;

/** Benchmark options (command line). */
export interface BenchOptions {
  /** Image / transfer sizes, bytes. */
  sizes: number[];
  /** Delay the latency proxy adds in each direction, ms. */
  latencyMs: number;
  /** Bytes programmed with batching through the proxy. */
  latencyBytes: number;
  /** Bytes programmed one call per page through the proxy (extrapolated per MiB). */
  unbatchedBytes: number;
  /** Repeats of the cheap measurements (best is kept). */
  repeats: number;
  /** Program runs per size, each a new random image on flash that holds the previous one (best is kept). */
  programRepeats: number;
  /** Packets in flight tried for the raw writer. */
  windows: number[];
  /** Write a V8 CPU profile of each program child (`node --cpu-prof`) into this directory. */
  profileDir?: string;
  /** Size of the seed-job model's corpus image (section S, seed-model.ts); 0 leaves the section out. */
  seedBytes: number;
  /** Also program the random (worst case) image of that size on a blank board in section S. */
  seedRandom: boolean;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  sizes: [4 * MiB, 32 * MiB],
  latencyMs: 1,
  latencyBytes: 1 * MiB,
  unbatchedBytes: 64 * 1024,
  repeats: 3,
  programRepeats: 2,
  windows: [1, 4, 16, 64],
  seedBytes: 32 * MiB,
  seedRandom: true,
};

export const SMOKE_OPTIONS: BenchOptions = {
  sizes: [128 * 1024, 256 * 1024],
  latencyMs: 1,
  latencyBytes: 128 * 1024,
  unbatchedBytes: 8 * 1024,
  repeats: 1,
  programRepeats: 1,
  windows: [1, 16],
  seedBytes: 1 * MiB,
  seedRandom: false,
};

/** Everything the benchmark measured (`--json`). Times in ms, rates in MB/s (10^6 bytes per second). */
export interface BenchResult {
  environment: {
    node: string;
    qemu: string;
    gdb: string;
    cpus: number;
    cpuModel: string;
    /** Load average at the start and at the end: a busy machine inflates every time. */
    loadAverage: { start: number[]; end: number[] };
    /** The commit measured, `+dirty` when lib/ had uncommitted changes. */
    commit: string;
    date: string;
    options: BenchOptions;
  };
  transferFloor: { bytes: number; ms: number; mbps: number; window: number; packets: number; chunk: number; qemuCpuMs: number; nodeCpuMs: number }[];
  windowSweep: { bytes: number; window: number; ms: number; mbps: number }[];
  computeFloor: (ComputeFloor & { mbps: number; qemuCpuMs: number })[];
  gdbRestore: { bytes: number; totalMs: number; connectOnlyMs: number; ms: number; mbps: number }[];
  writeMemory: {
    bytes: number;
    ms: number;
    mbps: number;
    window: number;
    packets: number;
    vsFloor: number;
    vsGdb: number;
    qemuCpuMs: number;
    nodeCpuMs: number;
    bestWindow: { window: number; ms: number; mbps: number };
  }[];
  program: {
    bytes: number;
    ms: number;
    mbps: number;
    floorMs: number;
    vsFloor: number;
    setupMs: number;
    phases: Record<string, number>;
    bytesSent: number;
    roundTrips: number;
    targetRuns: number;
    chipErase: boolean;
    qemuCpuMs: number;
    nodeCpuMs: number;
    /** Time by GdbClient operation (instrumented in the child); the rest is host-side work. */
    breakdown: Breakdown;
  }[];
  /**
   * The largest size again, another random image, with settings the library already
   * accepts as options: the raw writer's best window and one transfer buffer as large
   * as the board RAM allows (the flasher fills only one buffer at a time anyway).
   */
  programTuned: { bytes: number; writeWindow: number; bufferSize: number; ms: number; mbps: number; vsFloor: number; vsDefault: number; phases: Record<string, number>; targetRuns: number; qemuCpuMs: number; nodeCpuMs: number; breakdown: Breakdown };
  /** `chipErase` is the option passed to program(): `auto` (the default) or `never`. */
  unchanged: { bytes: number; chipErase: 'auto' | 'never'; ms: number; vsFirst: number; bytesSent: number; roundTrips: number; sectorsSkipped: number; phases: Record<string, number> }[];
  onePage: { imageBytes: number; chipErase: 'auto' | 'never'; ms: number; bytesSent: number; roundTrips: number; sectorsErased: number; bytesProgrammed: number; phases: Record<string, number> }[];
  latency: {
    delayMs: number;
    /** Round trip of a `g` through the proxy minus the same without delay. */
    addedRttMs: number;
    dataPacketsPerMiB: number;
    batched: {
      bytes: number;
      ms: number;
      zeroDelayMs: number;
      msPerMiB: number;
      roundTripsPerMiB: number;
      requestPacketsPerMiB: number;
      /** (time with delay - time without) / added RTT, per MiB: the exchanges that actually waited. */
      latencyBoundRoundTripsPerMiB: number;
    };
    unbatched: { bytes: number; ms: number; msPerMiB: number; roundTripsPerMiB: number; requestPacketsPerMiB: number; extrapolated: boolean };
    speedup: number;
  };
  rss: { imageBytes: number; peakBytes: number; baselineBytes: number; ratio: number; ratioAboveBaseline: number };
  /** Section S: the seed job (Alif DevKit behind a J-Link) modelled, with the image corpus; absent with `--seed-mib 0`. */
  seed?: SeedResult;
  goals: { goal: string; target: string; measured: string; met: boolean }[];
}

const log = (text: string) => process.stderr.write(`bench: ${text}\n`);
const mbps = (bytes: number, ms: number) => bytes / ms / 1000;
const sizeName = (bytes: number) => (bytes >= MiB ? `${+(bytes / MiB).toFixed(2)} MiB` : `${+(bytes / 1024).toFixed(1)} KiB`);

async function best<T extends { ms: number }>(repeats: number, run: () => Promise<T>): Promise<T> {
  let kept: T | undefined;
  for (let i = 0; i < Math.max(1, repeats); i++) {
    const r = await run();
    if (!kept || r.ms < kept.ms) kept = r;
  }
  return kept!;
}

function toolVersion(command: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(command, args, { encoding: 'utf8' }, (err, out) => resolve(err ? 'unknown' : (out.split('\n')[0]?.trim() ?? 'unknown'))));
}

/** The commit under test, with `+dirty` when lib/ differs from it. */
async function gitCommit(): Promise<string> {
  const head = await toolVersion('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = await new Promise<boolean>((resolve) =>
    execFile('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--', 'lib'], { encoding: 'utf8' }, (err, out) => resolve(!err && out.trim() !== '')),
  );
  return `${head}${dirty ? '+dirty' : ''}`;
}

/** Reads back a few slices of what a writer put in RAM: a benchmark of a broken writer proves nothing. */
async function checkWritten(gdb: GdbClient, address: number, data: Uint8Array, who: string): Promise<void> {
  const span = Math.min(2048, data.length);
  for (const offset of [0, Math.floor(data.length / 2) & ~3, data.length - span]) {
    const back = await gdb.readMemory(address + offset, span);
    if (Buffer.compare(Buffer.from(back), Buffer.from(data.subarray(offset, offset + span))) !== 0) {
      throw new Error(`${who} did not write what it was given at 0x${(address + offset).toString(16)}`);
    }
  }
}

/** Runs `work` and adds the CPU QEMU (`pid`) and this process used meanwhile. */
async function withCpu<T extends object>(pid: number, work: () => Promise<T>): Promise<T & { qemuCpuMs: number; nodeCpuMs: number }> {
  const q0 = processCpuMs(pid) ?? 0;
  const c0 = process.cpuUsage();
  const result = await work();
  const c = process.cpuUsage(c0);
  return { ...result, qemuCpuMs: (processCpuMs(pid) ?? q0) - q0, nodeCpuMs: (c.user + c.system) / 1000 };
}

function runChild(q: BenchQemu, file: string, extra: string[], profileDir: string | undefined): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const profile = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
    const args = [...profile, PROGRAM_CHILD, q.endpoint, file, `0x${FLASH_BASE.toString(16)}`, '--qemu-pid', String(q.pid), ...extra];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`program child exited with ${code}: ${err.trim()}`));
      else resolve(JSON.parse(out) as ChildResult);
    });
  });
}

async function openFlasher(endpoint: string, algo: FlashAlgorithm) {
  const board = boardPreset('qemu-an547');
  const gdb = await connect(endpoint);
  const flasher = await Flasher.create(gdb, algo, { ram: board.ram, memoryMapped: board.memoryMapped });
  return {
    gdb,
    flasher,
    close: async () => {
      await flasher.close();
      await gdb.close();
    },
  };
}

/**
 * The largest single transfer buffer (a multiple of 4 KiB) the qemu-an547 board RAM
 * holds beside the algorithm, with a batch table of two entries (ProgramPage run +
 * Verify) per 4 KiB sector it can carry: the flasher caps a buffer's chunks at the table
 * size but puts two calls per chunk in it.
 */
function largestBuffer(algo: FlashAlgorithm): { bufferSize: number; tableEntries: number } {
  const ram = boardPreset('qemu-an547').ram;
  for (let size = ram.size; size >= 4096; size -= 4096) {
    const tableEntries = 2 * (size / 4096);
    try {
      planRamLayout(algo, ram, { buffers: 1, bufferSize: size, tableEntries });
      return { bufferSize: size, tableEntries };
    } catch {
      // does not fit: try smaller
    }
  }
  return { bufferSize: algo.geometry.pageSize, tableEntries: 2 };
}

/** Runs every figure; progress goes to stderr. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const boot = join(FIXTURE_DIR, 'boot-an547.elf');
  const algo = loadAlgorithm(readFileSync(join(FIXTURE_DIR, 'nor-sim.flm')), 'nor-sim.flm');
  const work = mkdtempSync(join(tmpdir(), 'rspflash-bench-'));
  const sizes = [...options.sizes].sort((a, b) => a - b);
  const largest = sizes[sizes.length - 1]!;
  const qemus: BenchQemu[] = [];
  const qemu = async () => {
    const q = await startQemu(boot);
    qemus.push(q);
    return q;
  };
  try {
    const environment: BenchResult['environment'] = {
      node: process.version,
      qemu: await toolVersion('qemu-system-arm', ['--version']),
      gdb: (await gdbVersion()) ?? 'missing',
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadAverage: { start: loadavg(), end: [] },
      commit: await gitCommit(),
      date: new Date().toISOString(),
      options,
    };
    const images = new Map(sizes.map((n) => [n, randomBytes(n)]));
    const files = new Map(sizes.map((n) => [n, join(work, `random-${n}.bin`)]));
    for (const n of sizes) writeFileSync(files.get(n)!, images.get(n)!);

    // ---- 1, 3, 4: transfers into RAM ------------------------------------------------------
    const qa = await qemu();
    log('1 transfer floor: raw M packets, window sweep');
    const sweepSize = Math.min(sizes[0]!, 4 * MiB);
    const windowSweep: BenchResult['windowSweep'] = [];
    for (const window of options.windows) {
      const r = await best(options.repeats, () => rawWrite('127.0.0.1', qa.port, RAM_TARGETS.raw, images.get(sweepSize)!.subarray(0, sweepSize), window));
      windowSweep.push({ bytes: sweepSize, window, ms: r.ms, mbps: mbps(sweepSize, r.ms) });
    }
    const bestWindow = windowSweep.reduce((a, b) => (b.ms < a.ms ? b : a)).window;
    const transferFloor: BenchResult['transferFloor'] = [];
    for (const n of sizes) {
      log(`1 transfer floor: ${sizeName(n)}, window ${bestWindow}`);
      const r = await best(options.repeats, () => withCpu(qa.pid, () => rawWrite('127.0.0.1', qa.port, RAM_TARGETS.raw, images.get(n)!, bestWindow)));
      transferFloor.push({ bytes: n, ms: r.ms, mbps: mbps(n, r.ms), window: bestWindow, packets: r.packets, chunk: r.chunk, qemuCpuMs: r.qemuCpuMs, nodeCpuMs: r.nodeCpuMs });
    }

    log('3 gdb-multiarch: connect only, then restore');
    const connectOnly = (await best(options.repeats, async () => ({ ms: await gdbConnectOnly(qa.endpoint) }))).ms;
    const gdbRows: BenchResult['gdbRestore'] = [];
    for (const n of sizes) {
      log(`3 gdb-multiarch restore ${sizeName(n)}`);
      // gdb is slow at large sizes: one run of the largest size, best of `repeats` for the others.
      const totalMs = (await best(n >= largest && sizes.length > 1 ? 1 : options.repeats, async () => ({ ms: await gdbRestore(qa.endpoint, files.get(n)!, RAM_TARGETS.gdb) }))).ms;
      const ms = Math.max(1, totalMs - connectOnly);
      gdbRows.push({ bytes: n, totalMs, connectOnlyMs: connectOnly, ms, mbps: mbps(n, ms) });
    }

    log('4 rspflash writeMemory');
    const writeMemory: BenchResult['writeMemory'] = [];
    {
      const timedWrite = async (window: number | undefined, data: Uint8Array) => {
        const gdb = await connect(qa.endpoint, window === undefined ? {} : { writeWindow: window });
        try {
          await gdb.writeMemory(RAM_TARGETS.rspflash, data.subarray(0, 4)); // probes X vs M outside the timing
          const packets0 = gdb.stats.packetsSent;
          const r = await withCpu(qa.pid, async () => {
            const t = performance.now();
            await gdb.writeMemory(RAM_TARGETS.rspflash, data);
            return { ms: performance.now() - t };
          });
          const packets = gdb.stats.packetsSent - packets0;
          await checkWritten(gdb, RAM_TARGETS.rspflash, data, 'rspflash writeMemory');
          return { ...r, packets, window: window ?? gdb.server.dialect.writeWindow };
        } finally {
          await gdb.close();
        }
      };
      for (const n of sizes) {
        const data = images.get(n)!;
        const r = await best(options.repeats, () => timedWrite(undefined, data));
        const alt = await best(options.repeats, () => timedWrite(bestWindow, data));
        const floor = transferFloor.find((f) => f.bytes === n)!;
        const g = gdbRows.find((f) => f.bytes === n)!;
        writeMemory.push({
          bytes: n,
          ms: r.ms,
          mbps: mbps(n, r.ms),
          window: r.window,
          packets: r.packets,
          vsFloor: floor.ms / r.ms,
          vsGdb: g.ms / r.ms,
          qemuCpuMs: r.qemuCpuMs,
          nodeCpuMs: r.nodeCpuMs,
          bestWindow: { window: bestWindow, ms: alt.ms, mbps: mbps(n, alt.ms) },
        });
      }
      // The raw writer and gdb wrote too: check them once, with a client we trust by now.
      const gdb = await connect(qa.endpoint);
      await checkWritten(gdb, RAM_TARGETS.raw, images.get(largest)!, 'the raw writer');
      await checkWritten(gdb, RAM_TARGETS.gdb, images.get(largest)!, 'gdb restore');
      await gdb.close();
    }
    await qa.stop();

    // ---- 2: compute floor --------------------------------------------------------------------
    const computeRows: BenchResult['computeFloor'] = [];
    {
      const qb = await qemu();
      const s = await openFlasher(qb.endpoint, algo);
      const pattern = randomBytes(s.flasher.runner.buffer(0).size);
      for (const n of sizes) {
        log(`2 compute floor ${sizeName(n)}`);
        const r = await withCpu(qb.pid, () => computeFloor(s.flasher.runner, n, pattern));
        computeRows.push({ ...r, mbps: mbps(n, r.totalMs) });
      }
      await s.close();
      await qb.stop();
    }

    // ---- 5, 6, 7, 9: program in a child process ----------------------------------------------
    const programRows: BenchResult['program'] = [];
    const unchangedRows: BenchResult['unchanged'] = [];
    const onePageRows: BenchResult['onePage'] = [];
    let rssChild: ChildResult | undefined;
    let programTuned: BenchResult['programTuned'] | undefined;
    {
      const qc = await qemu();
      const unchangedRow = (n: number, chipErase: 'auto' | 'never', run: ProgramRun, firstMs: number) => ({
        bytes: n,
        chipErase,
        ms: run.report.durationMs,
        vsFirst: run.report.durationMs / firstMs,
        bytesSent: run.report.bytesSent,
        roundTrips: run.report.roundTrips,
        sectorsSkipped: run.report.sectorsSkipped,
        phases: run.phases,
      });
      const onePageRow = (n: number, chipErase: 'auto' | 'never', run: ProgramRun) => ({
        imageBytes: n,
        chipErase,
        ms: run.report.durationMs,
        bytesSent: run.report.bytesSent,
        roundTrips: run.report.roundTrips,
        sectorsErased: run.report.sectorsErased,
        bytesProgrammed: run.report.bytesProgrammed,
        phases: run.phases,
      });
      for (const n of sizes) {
        const isLargest = n === largest;
        log(`5 program ${sizeName(n)}${isLargest ? ' (own process: peak RSS), then 6 unchanged, 7 one page changed' : ', then 6 unchanged'}`);
        // The page changed lies mid-image, off a sector boundary.
        const extra = ['--rerun', ...(isLargest ? ['--change-page', String(Math.floor(n / 2) + 1000)] : [])];
        let file = files.get(n)!;
        let child = await runChild(qc, file, extra, options.profileDir);
        let peakRss = child.rss.afterProgram;
        for (let r = 1; r < options.programRepeats; r++) {
          file = join(work, `random-${n}-${r}.bin`);
          writeFileSync(file, randomBytes(n));
          const run = await runChild(qc, file, extra, options.profileDir);
          peakRss = Math.max(peakRss, run.rss.afterProgram);
          if (run.first.report.durationMs < child.first.report.durationMs) child = run;
        }
        child.rss.afterProgram = peakRss; // the worst of the runs
        const first = child.first.report;
        const floorMs = transferFloor.find((f) => f.bytes === n)!.ms + computeRows.find((c) => c.bytes === n)!.totalMs;
        programRows.push({
          bytes: n,
          ms: first.durationMs,
          mbps: mbps(n, first.durationMs),
          floorMs,
          vsFloor: first.durationMs / floorMs,
          setupMs: child.setupMs,
          phases: child.first.phases,
          bytesSent: first.bytesSent,
          roundTrips: first.roundTrips,
          targetRuns: first.targetRuns,
          chipErase: first.chipErase,
          qemuCpuMs: child.first.qemuCpuMs ?? 0,
          nodeCpuMs: child.first.nodeCpuMs,
          breakdown: child.breakdown,
        });
        unchangedRows.push(unchangedRow(n, 'auto', child.rerun!, first.durationMs));
        if (isLargest) {
          onePageRows.push(onePageRow(n, 'auto', child.onePage!));
          rssChild = child;
          // A whole-device image makes 'auto' choose chip erase, which rules out skipping
          // unchanged sectors; measure 6 and 7 again with sector erase. The flash now holds the
          // image with one page changed, so this child's first program is itself a one-page change.
          if (first.chipErase) {
            log(`6, 7 again with chipErase 'never' (${sizeName(n)})`);
            const never = await runChild(qc, file, ['--chip-erase', 'never', '--rerun'], options.profileDir);
            onePageRows.push(onePageRow(n, 'never', never.first));
            unchangedRows.push(unchangedRow(n, 'never', never.rerun!, first.durationMs));
          }
        }
      }
      // Settings the library takes already: how much would they give?
      const { bufferSize, tableEntries } = largestBuffer(algo);
      log(`5 program ${sizeName(largest)} again, tuned: write window ${bestWindow}, one ${sizeName(bufferSize)} buffer`);
      const tunedFile = join(work, 'random-tuned.bin');
      writeFileSync(tunedFile, randomBytes(largest));
      const tunedArgs = ['--write-window', String(bestWindow), '--buffer-size', String(bufferSize), '--table-entries', String(tableEntries)];
      const tuned = await runChild(qc, tunedFile, tunedArgs, options.profileDir);
      const ref = programRows[programRows.length - 1]!;
      programTuned = {
        bytes: largest,
        writeWindow: bestWindow,
        bufferSize,
        ms: tuned.first.report.durationMs,
        mbps: mbps(largest, tuned.first.report.durationMs),
        vsFloor: tuned.first.report.durationMs / ref.floorMs,
        vsDefault: tuned.first.report.durationMs / ref.ms,
        phases: tuned.first.phases,
        targetRuns: tuned.first.report.targetRuns,
        qemuCpuMs: tuned.first.qemuCpuMs ?? 0,
        nodeCpuMs: tuned.first.nodeCpuMs,
        breakdown: tuned.breakdown,
      };
      await qc.stop();
    }

    // ---- 8: latency ----------------------------------------------------------------------------
    log(`8 latency proxy (${options.latencyMs} ms each way): batched ${sizeName(options.latencyBytes)}, per page ${sizeName(options.unbatchedBytes)}`);
    let latency: BenchResult['latency'];
    {
      const qd = await qemu();
      const proxy = await startLatencyProxy('127.0.0.1', qd.port, 0);
      const s = await openFlasher(proxy.endpoint, algo);
      const rtt = async () => {
        const t = performance.now();
        for (let i = 0; i < 50; i++) await s.gdb.rawRequest('g');
        return (performance.now() - t) / 50;
      };
      const rttZero = await rtt();
      proxy.setDelay(options.latencyMs);
      const addedRttMs = (await rtt()) - rttZero;

      const batched = async (address: number) => {
        const image = createImage([{ address, data: randomBytes(options.latencyBytes), source: 'latency' }]);
        proxy.resetStats();
        const report = await s.flasher.program(image);
        return { ms: report.durationMs, roundTrips: report.roundTrips, packets: proxy.stats.requestPackets };
      };
      const withDelay = await batched(FLASH_BASE);
      proxy.setDelay(0);
      const noDelay = await batched(FLASH_BASE + options.latencyBytes);
      proxy.setDelay(options.latencyMs);

      // One call per page, as pyOCD and probe-rs drive a CMSIS algorithm: EraseSector per
      // sector, then per page a 256-byte write and a ProgramPage call. No verify (in their favour).
      const runner = s.flasher.runner;
      const g = algo.geometry;
      const base = FLASH_BASE + 2 * options.latencyBytes;
      const pageData = randomBytes(options.unbatchedBytes);
      proxy.resetStats();
      const rt0 = s.gdb.stats.roundTrips;
      const t = performance.now();
      await runner.callChecked('Init', [g.start, 0, FNC_ERASE]);
      for (let at = 0; at < options.unbatchedBytes; at += g.sectors[0]!.size) await runner.callChecked('EraseSector', [base + at]);
      await runner.callChecked('UnInit', [FNC_ERASE]);
      await runner.callChecked('Init', [g.start, 0, FNC_PROGRAM]);
      const buffer = runner.buffer(0).address;
      for (let at = 0; at < options.unbatchedBytes; at += g.pageSize) {
        await runner.writeBuffer(0, pageData.subarray(at, at + g.pageSize));
        await runner.callChecked('ProgramPage', [base + at, g.pageSize, buffer]);
      }
      await runner.callChecked('UnInit', [FNC_PROGRAM]);
      const unbatchedMs = performance.now() - t;
      const unbatchedRoundTrips = s.gdb.stats.roundTrips - rt0;
      const unbatchedPackets = proxy.stats.requestPackets;
      const back = await s.gdb.readMemory(base + options.unbatchedBytes - g.pageSize, g.pageSize);
      if (Buffer.compare(Buffer.from(back), pageData.subarray(options.unbatchedBytes - g.pageSize)) !== 0) throw new Error('per-page programming did not program');
      await s.close();
      await proxy.close();
      await qd.stop();

      const perMiB = (value: number, bytes: number) => (value * MiB) / bytes;
      const batchedMsPerMiB = perMiB(withDelay.ms, options.latencyBytes);
      const unbatchedMsPerMiB = perMiB(unbatchedMs, options.unbatchedBytes);
      latency = {
        delayMs: options.latencyMs,
        addedRttMs,
        dataPacketsPerMiB: Math.ceil(MiB / s.gdb.writeChunk),
        batched: {
          bytes: options.latencyBytes,
          ms: withDelay.ms,
          zeroDelayMs: noDelay.ms,
          msPerMiB: batchedMsPerMiB,
          roundTripsPerMiB: perMiB(withDelay.roundTrips, options.latencyBytes),
          requestPacketsPerMiB: perMiB(withDelay.packets, options.latencyBytes),
          latencyBoundRoundTripsPerMiB: perMiB(Math.max(0, withDelay.ms - noDelay.ms) / addedRttMs, options.latencyBytes),
        },
        unbatched: {
          bytes: options.unbatchedBytes,
          ms: unbatchedMs,
          msPerMiB: unbatchedMsPerMiB,
          roundTripsPerMiB: perMiB(unbatchedRoundTrips, options.unbatchedBytes),
          requestPacketsPerMiB: perMiB(unbatchedPackets, options.unbatchedBytes),
          extrapolated: options.unbatchedBytes !== MiB,
        },
        speedup: unbatchedMsPerMiB / batchedMsPerMiB,
      };
    }

    // ---- S: the seed job, modelled (its own QEMU, J-Link double and link relay) ----------------
    let seed: SeedResult | undefined;
    if (options.seedBytes > 0) {
      log(`S seed job model: ${sizeName(options.seedBytes)} corpus${options.seedRandom ? ' and random image' : ''}`);
      seed = await runSeedModel({ bytes: options.seedBytes, random: options.seedRandom, quickStats: options.seedBytes < 4 * MiB, log });
    }

    // ---- 9 and goals ---------------------------------------------------------------------------
    const child = rssChild!;
    const rss = {
      imageBytes: largest,
      peakBytes: child.rss.afterProgram,
      baselineBytes: child.rss.baseline,
      ratio: child.rss.afterProgram / largest,
      ratioAboveBaseline: (child.rss.afterProgram - child.rss.baseline) / largest,
    };
    const result: Omit<BenchResult, 'goals'> = {
      environment: { ...environment, loadAverage: { start: environment.loadAverage.start, end: loadavg() } },
      transferFloor,
      windowSweep,
      computeFloor: computeRows,
      gdbRestore: gdbRows,
      writeMemory,
      program: programRows,
      programTuned: programTuned!,
      unchanged: unchangedRows,
      onePage: onePageRows,
      latency,
      rss,
      ...(seed ? { seed } : {}),
    };
    return { ...result, goals: judge(result) };
  } finally {
    for (const q of qemus) await q.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The goals of issue 5, each against what was measured (largest size where a size matters). */
export function judge(r: Omit<BenchResult, 'goals'>): BenchResult['goals'] {
  const p = r.program[r.program.length - 1]!;
  const w = r.writeMemory[r.writeMemory.length - 1]!;
  const largest = (rows: BenchResult['unchanged']) => rows.filter((row) => row.bytes === p.bytes);
  const unchanged = largest(r.unchanged).map((u) => ({
    goal: `unchanged re-run ${sizeName(u.bytes)} vs first run (chipErase ${u.chipErase})`,
    target: '< 5%',
    measured: `${(u.vsFirst * 100).toFixed(1)}% (${sizeName(u.bytesSent)} sent)`,
    met: u.vsFirst < 0.05,
  }));
  const l = r.latency;
  const x = (v: number) => `${v.toFixed(2)}x`;
  return [
    { goal: `program ${sizeName(p.bytes)} vs (transfer floor + compute floor)`, target: '<= 1.25x', measured: x(p.vsFloor), met: p.vsFloor <= 1.25 },
    { goal: `writeMemory ${sizeName(w.bytes)} vs transfer floor`, target: '>= 0.90x', measured: x(w.vsFloor), met: w.vsFloor >= 0.9 },
    { goal: `writeMemory ${sizeName(w.bytes)} vs gdb restore`, target: '> 1.00x (faster)', measured: x(w.vsGdb), met: w.vsGdb > 1 },
    ...unchanged,
    {
      goal: 'round trips per MiB under latency vs data packets per MiB',
      target: `<= 1.2 x ${l.dataPacketsPerMiB} = ${Math.floor(1.2 * l.dataPacketsPerMiB)}`,
      measured: `${l.batched.latencyBoundRoundTripsPerMiB.toFixed(0)} latency-bound (${l.batched.roundTripsPerMiB.toFixed(0)} counted, ${l.batched.requestPacketsPerMiB.toFixed(0)} packets)`,
      met: l.batched.latencyBoundRoundTripsPerMiB <= 1.2 * l.dataPacketsPerMiB && l.batched.roundTripsPerMiB <= 1.2 * l.dataPacketsPerMiB,
    },
    { goal: 'batching vs one call per page under latency', target: '>= 10x faster', measured: x(l.speedup), met: l.speedup >= 10 },
    { goal: `peak RSS, program ${sizeName(r.rss.imageBytes)}`, target: '< 3x image', measured: `${x(r.rss.ratio)} (${sizeName(r.rss.peakBytes)}; ${x(r.rss.ratioAboveBaseline)} above Node's ${sizeName(r.rss.baselineBytes)})`, met: r.rss.ratio < 3 },
    ...(r.seed ? judgeSeed(r.seed) : []),
  ];
}

/**
 * The goals of issue 12 on the seed-job model (Alif mode: not memory mapped, J-Link double, link relay):
 * bytes over the link against the corpus' compressed size, erases of blank sectors, the modelled board time
 * against J-Flash's, one sector changed → one erase.
 */
export function judgeSeed(seed: SeedResult): BenchResult['goals'] {
  const find = (name: string) => seed.scenarios.find((s) => s.scenario === name);
  const compressed = seed.corpus.whole.deflate9[15] ?? seed.corpus.whole.deflate9[Math.max(...Object.keys(seed.corpus.whole.deflate9).map(Number))] ?? 0;
  const x = (v: number) => `${v.toFixed(2)}x`;
  const out: BenchResult['goals'] = [];
  const fresh = find('fresh');
  const ultra = seed.profiles.find((p) => /ultra/i.test(p.name))?.name ?? seed.profiles[0]?.name;
  if (fresh) {
    out.push({
      goal: `seed: fresh board, ${sizeName(seed.imageBytes)} corpus, bytes over the link`,
      target: `<= 1.1 x deflated non-blank pages (${sizeName(compressed)})`,
      measured: `${sizeName(fresh.link.bytesDown)} (${x(fresh.link.bytesDown / Math.max(1, compressed))})`,
      met: fresh.link.bytesDown <= 1.1 * compressed,
    });
    out.push({ goal: 'seed: fresh board, erases of blank sectors', target: '0', measured: `${fresh.device.eraseSector} sector, ${fresh.device.eraseChip} chip erases`, met: fresh.device.eraseSector === 0 && fresh.device.eraseChip === 0 });
    const m = ultra ? fresh.models[ultra] : undefined;
    if (m) out.push({ goal: `seed: fresh board, modelled board time (${ultra}) vs J-Flash`, target: '<= 0.5x', measured: `${x(m.vsJflash)} (${(m.rspflash.totalMs / 1000).toFixed(1)} s vs ${(m.jflash.totalMs / 1000).toFixed(1)} s)`, met: m.vsJflash <= 0.5 });
  }
  const unchanged = find('unchanged');
  if (unchanged) {
    out.push({
      goal: 'seed: unchanged re-run (Alif mode), bytes over the link',
      target: `<= 1.1 x deflated image (${sizeName(compressed)})`,
      measured: `${sizeName(unchanged.link.bytesDown)} (${x(unchanged.link.bytesDown / Math.max(1, compressed))})`,
      met: unchanged.link.bytesDown <= 1.1 * compressed,
    });
  }
  const one = find('one-sector');
  if (one) out.push({ goal: 'seed: one sector changed, sectors erased', target: 'exactly 1', measured: String(one.device.eraseSector), met: one.device.eraseSector === 1 });
  return out;
}

// ---- output ------------------------------------------------------------------------------------

function table(title: string, header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [`\n${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const f0 = (v: number) => v.toFixed(0);
const f1 = (v: number) => v.toFixed(1);
const f2 = (v: number) => v.toFixed(2);
const phaseText = (phases: Record<string, number>) =>
  Object.entries(phases)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/** The human table. */
export function formatResult(r: BenchResult): string {
  const e = r.environment;
  const out: string[] = [
    `rspflash benchmark — ${e.date}, commit ${e.commit}, Node ${e.node}, ${e.qemu}, ${e.gdb}, ${e.cpus} x ${e.cpuModel}`,
    `load average at start ${e.loadAverage.start.map(f2).join(' ')}, at end ${e.loadAverage.end.map(f2).join(' ')} (above ${e.cpus} the machine was shared: times are inflated)`,
    'QEMU mps3-an547, NOR simulator at 0xC0000000 (4 KiB sectors, 256 B pages). MB/s = 10^6 bytes/s. Times in ms.',
  ];
  out.push(
    table(
      '1  transfer floor — raw socket, hex M packets of ≤ 4095 chars, pipelined',
      ['size', 'ms', 'MB/s', 'window', 'packets', 'QEMU CPU', 'Node CPU'],
      r.transferFloor.map((t) => [sizeName(t.bytes), f0(t.ms), f1(t.mbps), t.window, t.packets, f0(t.qemuCpuMs), f0(t.nodeCpuMs)]),
    ),
    table('   window sweep', ['size', 'window', 'ms', 'MB/s'], r.windowSweep.map((t) => [sizeName(t.bytes), t.window, f1(t.ms), f1(t.mbps)])),
    table(
      '2  compute floor — erase + program + verify by the algorithm, data already in RAM (compare: not in the floor)',
      ['size', 'erase', 'program', 'verify', 'floor', 'MB/s', 'runs', 'compare CRC-32', 'compare word hash', 'QEMU CPU (all)'],
      r.computeFloor.map((c) => [sizeName(c.bytes), f0(c.eraseMs), f0(c.programMs), f0(c.verifyMs), f0(c.totalMs), f1(c.mbps), c.runs, f0(c.compareMs), f0(c.compareWordHashMs), f0(c.qemuCpuMs)]),
    ),
    table(
      '3  gdb-multiarch restore FILE binary ADDR (whole process minus a connect-only run)',
      ['size', 'total', 'connect only', 'restore', 'MB/s'],
      r.gdbRestore.map((g) => [sizeName(g.bytes), f0(g.totalMs), f0(g.connectOnlyMs), f0(g.ms), f1(g.mbps)]),
    ),
    table(
      '4  rspflash writeMemory',
      ['size', 'ms', 'MB/s', 'window', 'packets', 'vs floor', 'vs gdb', 'QEMU CPU', 'Node CPU', 'at best window'],
      r.writeMemory.map((w) => [
        sizeName(w.bytes),
        f0(w.ms),
        f1(w.mbps),
        w.window,
        w.packets,
        `${f2(w.vsFloor)}x`,
        `${f2(w.vsGdb)}x`,
        f0(w.qemuCpuMs),
        f0(w.nodeCpuMs),
        `${f1(w.bestWindow.mbps)} MB/s (w ${w.bestWindow.window})`,
      ]),
    ),
    table(
      '5  rspflash program (compare + erase + program + verify), random image, fresh flash, default options',
      ['size', 'ms', 'MB/s', 'floor 1+2', 'vs floor', 'sent', 'round trips', 'runs', 'QEMU CPU', 'Node CPU', 'setup', 'phases (ms)'],
      r.program.map((p) => [
        sizeName(p.bytes),
        f0(p.ms),
        f1(p.mbps),
        f0(p.floorMs),
        `${f2(p.vsFloor)}x`,
        sizeName(p.bytesSent),
        p.roundTrips,
        p.targetRuns,
        f0(p.qemuCpuMs),
        f0(p.nodeCpuMs),
        f0(p.setupMs),
        `${phaseText(p.phases)}${p.chipErase ? ' (chip erase)' : ''}`,
      ]),
    ),
    table(
      '5c the largest program again, tuned through existing options (another random image)',
      ['size', 'write window', 'buffer', 'ms', 'MB/s', 'vs floor', 'vs default', 'runs', 'QEMU CPU', 'Node CPU', 'phases (ms)'],
      [
        [
          sizeName(r.programTuned.bytes),
          r.programTuned.writeWindow,
          `1 x ${sizeName(r.programTuned.bufferSize)}`,
          f0(r.programTuned.ms),
          f1(r.programTuned.mbps),
          `${f2(r.programTuned.vsFloor)}x`,
          `${f2(r.programTuned.vsDefault)}x`,
          r.programTuned.targetRuns,
          f0(r.programTuned.qemuCpuMs),
          f0(r.programTuned.nodeCpuMs),
          phaseText(r.programTuned.phases),
        ],
      ],
    ),
    ...[...r.program, { ...r.programTuned, label: 'tuned ' }].map((p) => {
      const b = p.breakdown;
      const floor = r.transferFloor.find((t) => t.bytes === p.bytes)!;
      const compute = r.computeFloor.find((c) => c.bytes === p.bytes)!;
      const used = Object.values(b).reduce((n, e) => n + e.ms, 0);
      const targetFloor = compute.totalMs + ('compare' in p.phases ? compute.compareMs : 0);
      return table(
        `5b where the ${'label' in p ? p.label : ''}${sizeName(p.bytes)} program's time goes (GdbClient calls, instrumented)`,
        ['operation', 'calls', 'ms', 'ms/call', 'MB/s', 'floor ms', 'note'],
        [
          ['writeMemory', b.writeMemory.calls, f0(b.writeMemory.ms), f2(b.writeMemory.ms / Math.max(1, b.writeMemory.calls)), f1(mbps(b.writeMemory.bytes, b.writeMemory.ms)), f0(b.writeMemory.bytes / floor.mbps / 1000), `${sizeName(b.writeMemory.bytes)} at the transfer floor's rate`],
          ['continue (target runs)', b.continue.calls, f0(b.continue.ms), f2(b.continue.ms / Math.max(1, b.continue.calls)), '', f0(targetFloor), `compute floor${'compare' in p.phases ? ' + compare' : ''}`],
          ['writeRegisters (G)', b.writeRegisters.calls, f0(b.writeRegisters.ms), f2(b.writeRegisters.ms / Math.max(1, b.writeRegisters.calls)), '', '', ''],
          ['readCoreRegisters (g)', b.readCoreRegisters.calls, f0(b.readCoreRegisters.ms), f2(b.readCoreRegisters.ms / Math.max(1, b.readCoreRegisters.calls)), '', '', ''],
          ['readMemory', b.readMemory.calls, f0(b.readMemory.ms), f2(b.readMemory.ms / Math.max(1, b.readMemory.calls)), '', '', 'batch results (CRCs)'],
          ['host (rest)', '', f0(Math.max(0, p.ms - used)), '', '', '', 'plan, host CRC, copies, events'],
        ],
      );
    }),
    table(
      '6  same image again (unchanged)',
      ['size', 'chipErase', 'ms', 'vs first', 'sent', 'round trips', 'skipped', 'phases (ms)'],
      r.unchanged.map((u) => [sizeName(u.bytes), u.chipErase, f0(u.ms), `${f1(u.vsFirst * 100)}%`, sizeName(u.bytesSent), u.roundTrips, u.sectorsSkipped, phaseText(u.phases)]),
    ),
    table(
      '7  one page changed',
      ['image', 'chipErase', 'ms', 'sent', 'round trips', 'erased', 'programmed', 'phases (ms)'],
      r.onePage.map((o) => [sizeName(o.imageBytes), o.chipErase, f0(o.ms), sizeName(o.bytesSent), o.roundTrips, o.sectorsErased, sizeName(o.bytesProgrammed), phaseText(o.phases)]),
    ),
  );
  const l = r.latency;
  out.push(
    table(
      `8  latency proxy: ${l.delayMs} ms each way (measured added RTT ${f2(l.addedRttMs)} ms); a MiB needs ${l.dataPacketsPerMiB} data packets`,
      ['mode', 'size', 'ms', 'ms/MiB', 'round trips/MiB', 'packets/MiB', 'latency-bound RT/MiB'],
      [
        ['batched (program)', sizeName(l.batched.bytes), f0(l.batched.ms), f0(l.batched.msPerMiB), f0(l.batched.roundTripsPerMiB), f0(l.batched.requestPacketsPerMiB), f0(l.batched.latencyBoundRoundTripsPerMiB)],
        ['  same, no delay', sizeName(l.batched.bytes), f0(l.batched.zeroDelayMs), '', '', '', ''],
        [`one call per page${l.unbatched.extrapolated ? ' (per MiB extrapolated)' : ''}`, sizeName(l.unbatched.bytes), f0(l.unbatched.ms), f0(l.unbatched.msPerMiB), f0(l.unbatched.roundTripsPerMiB), f0(l.unbatched.requestPacketsPerMiB), ''],
        ['batched speed-up', '', '', `${f1(l.speedup)}x`, '', '', ''],
      ],
    ),
    table(
      '9  peak RSS of the program process',
      ['image', 'peak RSS', 'Node baseline', 'peak / image', 'above baseline / image'],
      [[sizeName(r.rss.imageBytes), sizeName(r.rss.peakBytes), sizeName(r.rss.baselineBytes), `${f2(r.rss.ratio)}x`, `${f2(r.rss.ratioAboveBaseline)}x`]],
    ),
    r.seed ? formatSeed(r.seed) : '',
    table(
      'Goals (issue 5)',
      ['goal', 'target', 'measured', 'met'],
      r.goals.map((g) => [g.goal, g.target, g.measured, g.met ? 'yes' : 'NO']),
    ),
  );
  return out.join('\n');
}

// ---- command line ------------------------------------------------------------------------------

export function parseArgs(argv: readonly string[]): { options: BenchOptions; json: boolean; out: string | undefined } {
  let options: BenchOptions = { ...DEFAULT_OPTIONS };
  let json = false;
  let out: string | undefined;
  const value = (i: number) => {
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${argv[i]} needs a value`);
    return v;
  };
  const numbers = (text: string) =>
    text.split(',').map((s) => {
      const n = Number(s);
      if (!(n > 0)) throw new Error(`'${s}' is not a positive number`);
      return n;
    });
  if (argv.includes('--smoke')) options = { ...SMOKE_OPTIONS };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--smoke':
        break;
      case '--json':
        json = true;
        break;
      case '--out':
        out = value(i++);
        break;
      case '--sizes':
        options.sizes = numbers(value(i++)).map((m) => Math.round((m * MiB) / 4096) * 4096);
        break;
      case '--latency-ms':
        options.latencyMs = numbers(value(i++))[0]!;
        break;
      case '--latency-mib':
        options.latencyBytes = Math.round((numbers(value(i++))[0]! * MiB) / 4096) * 4096;
        break;
      case '--unbatched-kib':
        options.unbatchedBytes = Math.round(numbers(value(i++))[0]! / 4) * 4096;
        break;
      case '--repeats':
        options.repeats = numbers(value(i++))[0]!;
        break;
      case '--program-repeats':
        options.programRepeats = numbers(value(i++))[0]!;
        break;
      case '--windows':
        options.windows = numbers(value(i++));
        break;
      case '--profile':
        options.profileDir = value(i++);
        break;
      case '--seed-mib': {
        const mib = Number(value(i++));
        if (!(mib >= 0 && mib <= 32)) throw new Error(`--seed-mib takes 0..32 (got ${argv[i]})`);
        options.seedBytes = Math.round((mib * MiB) / (64 * 1024)) * 64 * 1024;
        break;
      }
      case '--no-seed-random':
        options.seedRandom = false;
        break;
      default:
        throw new Error(`unknown option ${argv[i]} (see bench/README.md)`);
    }
  }
  if (options.seedBytes !== 0 && options.seedBytes < MiB) throw new Error('--seed-mib must be 0 (no seed section) or at least 1');
  if (options.sizes.some((n) => n < 4096 || n > 32 * MiB)) throw new Error('sizes must be within 4 KiB..32 MiB (the flash simulator)');
  if (2 * options.latencyBytes + options.unbatchedBytes > 32 * MiB) throw new Error('--latency-mib and --unbatched-kib do not fit the 32 MiB flash simulator together');
  return { options, json, out };
}

async function main(): Promise<void> {
  const { options, json, out } = parseArgs(process.argv.slice(2));
  const start = performance.now();
  const result = await runBench(options);
  log(`done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  const text = JSON.stringify(result, null, 2);
  if (out) writeFileSync(out, `${text}\n`);
  process.stdout.write(json ? `${text}\n` : `${formatResult(result)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
