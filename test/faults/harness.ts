/**
 * Shared test bed of the fault tests: QEMU mps3-an547 with the NOR simulator
 * (32 MiB at 0xC0000000, 4 KiB sectors) behind a {@link FaultProxy}; one
 * flashing run through the proxy with short timeouts; the independent
 * read-back that says which sectors really hold an image; a check that a run
 * left no socket or timer behind.
 * @module
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { GdbClient, type ConnectionStats, type GdbConnectOptions } from '../../lib/gdb/client.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { Flasher, type FlasherOptions, type ProgramOptions } from '../../lib/flash/flasher.js';
import type { FlashEvent, FlashPhase, FlashReport } from '../../lib/flash/progress.js';
import { createImage, type Image } from '../../lib/image/image.js';
import { RspflashError } from '../../lib/errors.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';
import { FaultProxy, seededRandom, type FaultProxyOptions } from './fault-proxy.js';

export const FLASH = 0xc0000000;
export const SECTOR = 4096;
export const RAM = BOARDS['qemu-an547']!.ram;
/** Request timeout for runs through the proxy: a fault must end a run in seconds, not the default 10 s. */
export const TIMEOUT_MS = 2000;
/** What "within a bounded time" means for a faulted run: request timeout + interrupt grace + slack. */
export const FAIL_WITHIN_MS = TIMEOUT_MS + 3000 + 2000;

let algorithm: FlashAlgorithm | undefined;
/** The NOR simulator algorithm (FLM), loaded once. */
export function norSim(): FlashAlgorithm {
  algorithm ??= loadAlgorithm(readFileSync(FIXTURES.norSim), FIXTURES.norSim);
  return algorithm;
}

/** QEMU and a proxy in front of it. */
export interface Bed {
  qemu: QemuInstance;
  proxy: FaultProxy;
  stop(): Promise<void>;
}

export async function startBed(): Promise<Bed> {
  const qemu = await startQemu({ machine: 'mps3-an547' });
  const proxy = await FaultProxy.start(qemu.connectOptions);
  return {
    qemu,
    proxy,
    async stop() {
      await proxy.close();
      await qemu.stop();
    },
  };
}

/** A one-segment image. */
export function image(address: number, data: Uint8Array): Image {
  return createImage([{ address, data, source: 'fault-test' }]);
}

/** Deterministic pseudo-random bytes. */
export function randomData(length: number, seed: number): Uint8Array {
  const rng = seededRandom(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(rng() * 256);
  return out;
}

/** What one run through the proxy did. */
export interface RunResult {
  report: FlashReport | undefined;
  error: unknown;
  events: FlashEvent[];
  elapsedMs: number;
  /** Memory-write packets that reached the server, from the proxy's counters. */
  memoryWrites: number;
  /** Resumes (`c`) that reached the server. */
  resumes: number;
  /** The client's own counters (retransmits, …) at the end of the run. */
  wire: ConnectionStats | undefined;
}

/** Options of {@link flashRun}. */
export interface RunOptions {
  program?: ProgramOptions;
  flasher?: Partial<FlasherOptions>;
  faults?: FaultProxyOptions;
  algorithm?: FlashAlgorithm;
  /** Extra options of GdbClient.connect (the timeouts are set short already). */
  connect?: GdbConnectOptions;
  /** What to do: program (default), or verify. */
  op?: 'program' | 'verify';
  /** Sees every progress event as it is emitted. */
  onEvent?: (event: FlashEvent) => void;
}

/**
 * Connects through the proxy (faults armed first), loads the algorithm,
 * programs `img`, closes everything, waits until the proxy has no client (so
 * QEMU is free for gdb-multiarch). Never throws for a flashing failure: the
 * error is returned. Anything that is not an RspflashError fails the test.
 */
export async function flashRun(bed: Bed, img: Image, options: RunOptions = {}): Promise<RunResult> {
  bed.proxy.reset(options.faults ?? {});
  const events: FlashEvent[] = [];
  const started = performance.now();
  let report: FlashReport | undefined;
  let error: unknown;
  let gdb: GdbClient | undefined;
  try {
    gdb = await GdbClient.connect(bed.proxy.connectOptions, { timeoutMs: TIMEOUT_MS, connectTimeoutMs: TIMEOUT_MS, ...options.connect });
    const flasher = await Flasher.create(gdb, options.algorithm ?? norSim(), { ram: RAM, memoryMapped: true, ...options.flasher });
    try {
      const programOptions = {
        ...options.program,
        onProgress: (e: FlashEvent) => {
          events.push(e);
          options.onEvent?.(e);
        },
      };
      report = options.op === 'verify' ? await flasher.verify(img, programOptions) : await flasher.program(img, programOptions);
    } finally {
      await flasher.close().catch((e: unknown) => {
        // A close after a dead link fails too; the first error is what the run reports.
        error ??= e;
      });
    }
  } catch (err) {
    error = err;
  } finally {
    await gdb?.close().catch(() => undefined);
  }
  const elapsedMs = performance.now() - started;
  if (error !== undefined && !(error instanceof RspflashError)) {
    throw new Error(`the run failed with an untyped error: ${String((error as Error)?.stack ?? error)}`);
  }
  await bed.proxy.idle();
  const { memoryWrites, resumes } = bed.proxy.stats.toServer;
  return { report, error, events, elapsedMs, memoryWrites, resumes, wire: gdb ? { ...gdb.stats } : undefined };
}

/** Index of every sector of `img` (contiguous, sector aligned) that holds the image, read by gdb-multiarch. */
export async function sectorsHolding(bed: Bed, img: Image): Promise<{ holding: number[]; total: number; back: Uint8Array }> {
  const seg = img.segments[0]!;
  const back = await gdbReadMemory(bed.qemu.connectOptions, seg.address, seg.data.length);
  const holding: number[] = [];
  const total = Math.ceil(seg.data.length / SECTOR);
  for (let i = 0; i < total; i++) {
    const a = back.subarray(i * SECTOR, (i + 1) * SECTOR);
    const b = seg.data.subarray(i * SECTOR, (i + 1) * SECTOR);
    if (Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0) holding.push(i);
  }
  return { holding, total, back };
}

/**
 * Bytes of the image the progress events claim are in flash: the last
 * `progress` of the `write` phase × the sector size (sectors go in address
 * order, and with the algorithm's Verify each run is verified before it is counted).
 */
export function claimedProgrammed(events: readonly FlashEvent[]): number {
  let done = 0;
  // The write phase counts sectors (each erased, programmed and verified in one run), in address order.
  for (const e of events) if (e.type === 'progress' && e.phase === 'write') done = e.done * SECTOR;
  return done;
}

/** Counts of the kinds of active handles and requests (sockets, timers, …), minus those of vitest's own at rest. */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Waits (up to 1 s) until no kind of resource is above its count in `baseline`; fails the test naming the leak otherwise. */
export async function expectNoLeaks(baseline: Map<string, number>, what: string): Promise<void> {
  let extra: string[] = [];
  for (let i = 0; i < 100; i++) {
    extra = [];
    for (const [kind, n] of activeResources()) if (n > (baseline.get(kind) ?? 0)) extra.push(`${kind} ×${n - (baseline.get(kind) ?? 0)}`);
    if (extra.length === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(extra, `${what} left resources behind`).toEqual([]);
}

/** The error as an RspflashError (fails the test if it is not one). */
export function typed(error: unknown): RspflashError {
  expect(error, 'the run should have failed with an RspflashError').toBeInstanceOf(RspflashError);
  return error as RspflashError;
}

/** Erases `[address, address + length)` through QEMU directly (no proxy), so each test starts from blank flash. */
export async function eraseDirect(bed: Bed, address: number, length: number): Promise<void> {
  const gdb = await GdbClient.connect(bed.qemu.connectOptions, { timeoutMs: 5000 });
  try {
    const flasher = await Flasher.create(gdb, norSim(), { ram: RAM, memoryMapped: true });
    try {
      await flasher.erase({ address, length });
    } finally {
      await flasher.close();
    }
  } finally {
    await gdb.close();
  }
}

/**
 * Resets the board through QEMU directly (no proxy): after a run that was cut
 * while the core ran, the core is left on rspflash's trap, and the next run
 * then reads a little more to recognise that state (dirty-state detection).
 * Runs whose faults are aimed by request count must all start alike.
 */
export async function resetDirect(bed: Bed): Promise<void> {
  const gdb = await GdbClient.connect(bed.qemu.connectOptions, { timeoutMs: 5000 });
  try {
    await gdb.monitor(gdb.server.dialect.resetHaltCommand ?? 'system_reset');
  } finally {
    await gdb.close();
  }
}

/** Where each phase of a run starts in the stream of requests (index into the proxy's request log). */
export interface PhaseMap {
  /** Requests sent before the phase started, by phase; `end` = the requests of the job (up to its `done`). */
  starts: Partial<Record<FlashPhase, number>> & { end: number };
  /** Bytes the client had sent (through the proxy) when each phase started. */
  bytesAt: Partial<Record<FlashPhase, number>>;
  requests: string[];
}

/**
 * A fault-free run of the same job (same image size, options) at another
 * address, to learn which request belongs to which phase: a fault can then be
 * aimed at "the 3rd memory write of the program phase" however the runner
 * lays its work out.
 */
export async function phaseMap(bed: Bed, img: Image, options: RunOptions = {}): Promise<PhaseMap> {
  const starts: PhaseMap['starts'] = { end: 0 };
  const bytesAt: PhaseMap['bytesAt'] = {};
  const run = await flashRun(bed, img, {
    ...options,
    onEvent: (e) => {
      // The job ends at 'done': what follows (restoring the borrowed registers and RAM) belongs to no phase.
      if (e.type === 'done') starts.end = bed.proxy.stats.toServer.requests.length;
      if (e.type !== 'phase-start') return;
      starts[e.phase] = bed.proxy.stats.toServer.requests.length;
      bytesAt[e.phase] = bed.proxy.bytes('toServer');
    },
  });
  if (run.error) throw new Error(`the reference run failed: ${String(run.error)}`);
  const requests = [...bed.proxy.stats.toServer.requests];
  return { starts, bytesAt, requests };
}

/**
 * The `nth` (for a {@link FaultRule}) of the `k`th request (1-based) matching
 * `re` inside `phase` of a run like the reference. Throws if the phase has
 * fewer such requests.
 */
export function nthIn(map: PhaseMap, phase: FlashPhase, re: RegExp, k: number): number {
  const start = map.starts[phase];
  if (start === undefined) throw new Error(`the reference run has no ${String(phase)} phase`);
  const later = Object.values(map.starts).filter((v) => v !== undefined && v > start) as number[];
  const end = Math.min(map.starts.end, ...later);
  const before = map.requests.slice(0, start).filter((r) => re.test(r)).length;
  const inside = map.requests.slice(start, end).filter((r) => re.test(r)).length;
  if (k > inside) throw new Error(`the ${String(phase)} phase has only ${inside} requests matching ${re}`);
  return before + k;
}

/** One row of docs/reliability.md. */
export interface OutcomeRow {
  group: string;
  fault: string;
  outcome: string;
  code: string;
  timeMs: number | undefined;
  content: string;
}

/** Rows recorded by a test file; written out with {@link writeOutcomes}. */
export class Outcomes {
  readonly rows: OutcomeRow[] = [];
  add(row: OutcomeRow): void {
    this.rows.push(row);
  }
  /**
   * Appends the rows as JSON lines to `$RSPFLASH_RELIABILITY_OUT` when set
   * (test/faults/make-reliability-doc.mjs turns them into docs/reliability.md).
   */
  write(): void {
    const out = process.env['RSPFLASH_RELIABILITY_OUT'];
    if (!out) return;
    appendFileSync(out, this.rows.map((r) => JSON.stringify(r) + '\n').join(''));
  }
}
