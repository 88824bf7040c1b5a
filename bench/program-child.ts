/**
 * One `program` case in a process of its own, so that its peak RSS is the
 * program's and nothing else's (figure 9). Run by bench/run.ts:
 *
 * ```
 * node dist/bench/bench/program-child.js ENDPOINT IMAGE.bin BASE [--qemu-pid PID]
 *   [--chip-erase auto|never|always] [--write-window N] [--buffer-size BYTES] [--table-entries N]
 *   [--rerun] [--change-page OFFSET]
 * ```
 *
 * Connects, loads the NOR simulator, programs IMAGE at BASE (default
 * options: compare, erase, program, verify with the algorithm), then
 * optionally programs it again unchanged, then with one page changed. Prints
 * one JSON object ({@link ChildResult}) on stdout. With `--qemu-pid`, each run
 * also says how much CPU QEMU used (from /proc), next to Node's own.
 * `--write-window` and `--buffer-size` (one transfer buffer of that size) try
 * settings the library already takes as options.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Flasher, boardPreset, connect, createImage, loadAlgorithm, type ChipEraseMode, type FlashReport, type GdbClient, type Image } from '../lib/index.js';
import { FIXTURE_DIR } from './paths.js';
import { processCpuMs } from './qemu.js';

/** One program() run: its report, the time of each phase, and CPU used, ms. */
export interface ProgramRun {
  report: FlashReport;
  phases: Record<string, number>;
  /** CPU time of this (Node) process during the run. */
  nodeCpuMs: number;
  /** CPU time of QEMU during the run (all its threads), when its pid was given. */
  qemuCpuMs: number | undefined;
}

/** Time spent in each GdbClient operation during a run: where the time went. */
export type Breakdown = Record<'writeMemory' | 'continue' | 'writeRegisters' | 'readCoreRegisters' | 'readMemory', { calls: number; ms: number; bytes: number }>;

/** What the child prints. */
export interface ChildResult {
  /** connect + Flasher.create (algorithm load, core clean-up), ms. */
  setupMs: number;
  first: ProgramRun;
  /** Time of the first run by GdbClient operation; the rest of its time is host-side work. */
  breakdown: Breakdown;
  rerun?: ProgramRun;
  onePage?: ProgramRun;
  rss: {
    /** maxRSS right after start-up and imports, bytes. */
    baseline: number;
    /** maxRSS after the image file was read. */
    afterLoad: number;
    /** maxRSS after the first program (peak of the whole first program). */
    afterProgram: number;
  };
}

const maxRss = () => process.resourceUsage().maxRSS * 1024;

/**
 * Wraps the client's operations on this instance (the runner and the flasher
 * call them through it) to add up their time while `breakdown.on` is true.
 */
function instrument(gdb: GdbClient): { on: boolean; totals: Breakdown } {
  const state = {
    on: false,
    totals: {
      writeMemory: { calls: 0, ms: 0, bytes: 0 },
      continue: { calls: 0, ms: 0, bytes: 0 },
      writeRegisters: { calls: 0, ms: 0, bytes: 0 },
      readCoreRegisters: { calls: 0, ms: 0, bytes: 0 },
      readMemory: { calls: 0, ms: 0, bytes: 0 },
    } as Breakdown,
  };
  const target = gdb as unknown as Record<keyof Breakdown, (...args: unknown[]) => Promise<unknown>>;
  for (const name of Object.keys(state.totals) as (keyof Breakdown)[]) {
    const original = target[name].bind(gdb);
    target[name] = async (...args: unknown[]) => {
      const start = performance.now();
      try {
        return await original(...args);
      } finally {
        if (state.on) {
          const entry = state.totals[name];
          entry.calls++;
          entry.ms += performance.now() - start;
          if (name === 'writeMemory') entry.bytes += (args[1] as Uint8Array).length;
          if (name === 'readMemory') entry.bytes += args[1] as number;
        }
      }
    };
  }
  return state;
}

async function programOnce(flasher: Flasher, image: Image, chipErase: ChipEraseMode, qemuPid: number | undefined): Promise<ProgramRun> {
  const phases: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const qemu0 = qemuPid === undefined ? undefined : processCpuMs(qemuPid);
  const report = await flasher.program(image, {
    chipErase,
    onProgress: (e) => {
      if (e.type === 'phase-end') phases[e.phase] = (phases[e.phase] ?? 0) + e.elapsedMs;
    },
  });
  const cpu = process.cpuUsage(cpu0);
  const qemuCpuMs = qemuPid === undefined || qemu0 === undefined ? undefined : processCpuMs(qemuPid)! - qemu0;
  return { report, phases, nodeCpuMs: (cpu.user + cpu.system) / 1000, qemuCpuMs };
}

function option(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

async function main(): Promise<void> {
  const [endpoint, file, baseText, ...rest] = process.argv.slice(2);
  if (!endpoint || !file || !baseText) throw new Error('usage: program-child ENDPOINT IMAGE BASE [--qemu-pid PID] [--chip-erase MODE] [--write-window N] [--buffer-size BYTES] [--table-entries N] [--rerun] [--change-page OFFSET]');
  const rerun = rest.includes('--rerun');
  const changeText = option(rest, '--change-page');
  const changeOffset = changeText === undefined ? undefined : Number(changeText);
  const pidText = option(rest, '--qemu-pid');
  const qemuPid = pidText === undefined ? undefined : Number(pidText);
  const chipErase = (option(rest, '--chip-erase') ?? 'auto') as ChipEraseMode;
  const baseline = maxRss();
  const data = readFileSync(file);
  const image = createImage([{ address: Number(baseText), data, source: file }]);
  const afterLoad = maxRss();

  const t0 = performance.now();
  const board = boardPreset('qemu-an547');
  const windowText = option(rest, '--write-window');
  const bufferText = option(rest, '--buffer-size');
  const gdb = await connect(endpoint, windowText === undefined ? {} : { writeWindow: Number(windowText) });
  const timing = instrument(gdb);
  const algo = loadAlgorithm(readFileSync(join(FIXTURE_DIR, 'nor-sim.flm')), 'nor-sim.flm');
  const entriesText = option(rest, '--table-entries');
  const layout = {
    ...(bufferText === undefined ? {} : { buffers: 1, bufferSize: Number(bufferText) }),
    ...(entriesText === undefined ? {} : { tableEntries: Number(entriesText) }),
  };
  const flasher = await Flasher.create(gdb, algo, { ram: board.ram, memoryMapped: board.memoryMapped, ...layout });
  const setupMs = performance.now() - t0;
  try {
    timing.on = true;
    const first = await programOnce(flasher, image, chipErase, qemuPid);
    timing.on = false;
    const result: ChildResult = { setupMs, first, breakdown: timing.totals, rss: { baseline, afterLoad, afterProgram: maxRss() } };
    if (rerun) result.rerun = await programOnce(flasher, image, chipErase, qemuPid);
    if (changeOffset !== undefined) {
      const changed = new Uint8Array(data);
      const pageSize = algo.geometry.pageSize;
      changed.set(randomBytes(pageSize), changeOffset - (changeOffset % pageSize));
      result.onePage = await programOnce(flasher, createImage([{ address: Number(baseText), data: changed, source: `${file} (one page changed)` }]), chipErase, qemuPid);
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await flasher.close();
    await gdb.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
