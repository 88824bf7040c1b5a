/**
 * Progress of a flash operation as one discriminated union of events.
 *
 * Order of events for {@link Flasher.program}:
 *
 * 1. `plan` — once, before the target is touched.
 * 2. For each phase that has work, in this order — `compare` (skip-unchanged
 *    check), `read` (bytes to keep), `erase`, `program` (includes the
 *    algorithm's Verify when `verify` is `algo`), `verify` (CRC or read-back):
 *    `phase-start`, then `progress` any number of times (`done` grows to
 *    `total`), then `phase-end`.
 * 3. `skip` — after `compare`, with the number of sectors left alone.
 * 4. `done` with the report, or `failed` with the error (also thrown).
 *
 * @module
 */
import type { RspflashError } from '../errors.js';
import type { FlashPlan } from './plan.js';

/** Phases of a flash operation, in the order they run. */
export type FlashPhase = 'compare' | 'read' | 'erase' | 'program' | 'verify';

/** What a finished operation did, with measured figures. */
export interface FlashReport {
  /** Bytes the image holds. */
  imageBytes: number;
  sectorsTouched: number;
  /** Sectors found identical to the image and left alone. */
  sectorsSkipped: number;
  sectorsErased: number;
  /** True when the whole device was erased with EraseChip. */
  chipErase: boolean;
  pagesProgrammed: number;
  bytesProgrammed: number;
  /** Bytes read back and re-programmed to keep them (preserve). */
  bytesKept: number;
  /** How the result was checked: `algo` (the algorithm's Verify), `crc`, `read`, or `none`. */
  verify: 'algo' | 'crc' | 'read' | 'none';
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
  | { type: 'plan'; plan: FlashPlan }
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
