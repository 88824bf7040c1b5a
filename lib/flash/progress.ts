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
  /** Sectors the image touches (partly or wholly). */
  sectorsTouched: number;
  /** Sectors found identical to the image and left alone. */
  sectorsSkipped: number;
  /** Sectors erased one by one with EraseSector (0 when the chip was erased whole). */
  sectorsErased: number;
  /** Sectors that differed but were already blank: programmed without an erase. */
  sectorsBlank: number;
  /** True when the whole device was erased with EraseChip. */
  chipErase: boolean;
  /** Pages written with ProgramPage. */
  pagesProgrammed: number;
  /** Bytes written with ProgramPage (whole pages: image and kept bytes, padding included). */
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
  /** Wall time of the operation, in ms. */
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
  | {
      /** Kept bytes of a failed earlier run are being programmed back first. */
      type: 'recover';
      /** Path of the recovery journal they come from. */
      journal: string;
      /** The ranges being restored. */
      ranges: readonly MemoryRange[];
    }
  | {
      /** The job as planned, before the target is touched. */
      type: 'plan';
      /** Sector by sector: what is erased, programmed, kept. */
      plan: FlashPlan;
      /** The same job as the steps the {@link Flasher} runs. */
      job: JobPlan;
    }
  | {
      /** The job changed after the compare (unchanged sectors dropped, chip erase declined). */
      type: 'replan';
      /** The steps that remain. */
      job: JobPlan;
      /** What changed and why, one sentence each. */
      notes: readonly string[];
    }
  | {
      /** A phase begins. */
      type: 'phase-start';
      /** Which phase. */
      phase: FlashPhase;
      /** Work in the phase, in `unit`s. */
      total: number;
      /** What `total` and `done` count: bytes, or sectors (erase). */
      unit: 'bytes' | 'sectors';
    }
  | {
      /** Work done so far in the current phase. */
      type: 'progress';
      /** Which phase. */
      phase: FlashPhase;
      /** Units done so far, from 0 up to `total`. */
      done: number;
      /** Units in the phase (as in its `phase-start`). */
      total: number;
      /** Time since the phase started, in ms. */
      elapsedMs: number;
    }
  | {
      /** A phase finished. */
      type: 'phase-end';
      /** Which phase. */
      phase: FlashPhase;
      /** How long it took, in ms. */
      elapsedMs: number;
    }
  | {
      /** The compare found sectors that already hold the image: they are left alone. */
      type: 'skip';
      /** How many sectors are skipped. */
      sectors: number;
      /** Their size in bytes. */
      bytes: number;
    }
  | {
      /** The operation finished. */
      type: 'done';
      /** What it did. */
      report: FlashReport;
    }
  | {
      /** The operation failed; the same error is thrown. */
      type: 'failed';
      /** Why. */
      error: RspflashError;
    };

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
