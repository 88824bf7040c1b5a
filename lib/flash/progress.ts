/**
 * Progress of a flash operation as one discriminated union of events.
 *
 * Order of events for {@link Flasher.program}:
 *
 * 1. `recover` — only when a failed earlier run left kept bytes in the
 *    recovery journal: they are programmed back first (its phases follow).
 * 2. `plan` — once, before the target is touched: the job as planned
 *    without knowing what the flash holds.
 * 3. For each phase that has work, in this order — `compare` (skip-unchanged
 *    check), `read` (bytes to keep), `erase` (chip erase only), `write`
 *    (sectors erased and programmed run by run, with the algorithm's Verify in
 *    the same runs when it checks), `verify` (hash, read-back, or pages left
 *    erased): `phase-start`, then `progress` any number of times (`done` grows
 *    to `total`), then `phase-end`.
 * 4. After `compare`: `skip` (only when some sectors are unchanged), then
 *    `replan` with the steps that remain and what changed.
 * 5. `done` with the report, or `failed` with the error (also thrown).
 *
 * {@link Flasher.erase} uses the phase `erase` for its runs; {@link Flasher.verify}
 * the phase `verify`.
 *
 * @module
 */
import type { RspflashError } from '../errors.js';
import type { FlashPlan } from './plan.js';
import type { JobPlan } from './steps.js';
import type { MemoryRange } from '../range.js';

/** Phases of a flash operation, in the order they run. */
export type FlashPhase = 'compare' | 'read' | 'erase' | 'write' | 'verify';

/** What a finished operation did, with measured figures. */
export interface FlashReport {
  /** Bytes the image holds. */
  imageBytes: number;
  sectorsTouched: number;
  /** Sectors found identical to the image and left alone. */
  sectorsSkipped: number;
  sectorsErased: number;
  /** Sectors that differed but were already blank: programmed without an erase. */
  sectorsBlank: number;
  /** True when the whole device was erased with EraseChip. */
  chipErase: boolean;
  pagesProgrammed: number;
  bytesProgrammed: number;
  /** Bytes read back and re-programmed to keep them (preserve). */
  bytesKept: number;
  /** Bytes restored from the recovery journal of a failed earlier run before the job. */
  bytesRecovered: number;
  /**
   * How the result was checked: `algo` (the algorithm's Verify), `hash`
   * (on-target hash), `read` (read back), `none`, or `unchanged` (every
   * sector already held the image: nothing written, nothing to check).
   */
  verify: 'algo' | 'hash' | 'read' | 'none' | 'unchanged';
  /** Decisions taken on the caller's behalf (chip erase declined, bytes not kept), one sentence each. */
  notes: readonly string[];
  /** For erase: the range actually erased (whole sectors). */
  erased?: MemoryRange;
  durationMs: number;
  /** Bytes sent to the GDB server during the operation. */
  bytesSent: number;
  /** Request/reply exchanges with the GDB server during the operation. */
  roundTrips: number;
  /** Runs of code on the target (single calls or sequencer batches). */
  targetRuns: number;
}

/** One progress event. See the module documentation for their order. */
export type FlashEvent =
  | { type: 'recover'; journal: string; ranges: readonly MemoryRange[] }
  | { type: 'plan'; plan: FlashPlan; job: JobPlan }
  | { type: 'replan'; job: JobPlan; notes: readonly string[] }
  | { type: 'phase-start'; phase: FlashPhase; total: number; unit: 'bytes' | 'sectors' }
  | { type: 'progress'; phase: FlashPhase; done: number; total: number; elapsedMs: number }
  | { type: 'phase-end'; phase: FlashPhase; elapsedMs: number }
  | { type: 'skip'; sectors: number; bytes: number }
  | { type: 'done'; report: FlashReport }
  | { type: 'failed'; error: RspflashError };

/** A callback receiving progress events. */
export type ProgressListener = (event: FlashEvent) => void;

/**
 * Runs a flash operation and yields its progress events as an async iterator,
 * for callers who prefer `for await` to a callback. The iterator ends after
 * the `done` event; if the operation fails, the `failed` event is yielded and
 * then the iterator throws the operation's error.
 *
 * @example
 * ```ts
 * for await (const event of watchProgress((onProgress) => flasher.program(image, { onProgress }))) {
 *   if (event.type === 'progress') console.log(`${event.phase} ${event.done}/${event.total}`);
 * }
 * ```
 */
export async function* watchProgress(operation: (onProgress: ProgressListener) => Promise<unknown>): AsyncGenerator<FlashEvent, void, undefined> {
  const queue: FlashEvent[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let failure: { error: unknown } | undefined;
  const running = operation((event) => {
    queue.push(event);
    wake?.();
  }).then(
    () => {
      finished = true;
      wake?.();
    },
    (error: unknown) => {
      failure = { error };
      finished = true;
      wake?.();
    },
  );
  for (;;) {
    while (queue.length > 0) yield queue.shift()!;
    if (finished) break;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
  await running;
  if (failure) throw failure.error;
}
