/**
 * What every flash operation shares: its mutable state while it runs, its
 * phases and progress events, and how its failure is named — the operation
 * and flash range it interrupted, and the flash it left at risk.
 * @module
 */
import { toRspflashError, type RangeAtRisk, type RspflashError } from '../errors.js';
import { formatRange, type MemoryRange } from '../range.js';
import type { FlashPhase, FlashReport, ProgressListener } from './progress.js';

/**
 * What an operation was doing when it failed: a failed operation throws the
 * lower layer's error (same class and `code`) wrapped with this in its message
 * (`Programming 0xc0010000..0xc001ffff failed: …`) and in `operation`.
 */
export interface FlashOperation {
  /** What was being done (e.g. `program`: `Programming …` in the message). */
  operation: 'load' | 'recover' | 'compare' | 'keep' | 'erase' | 'program' | 'write' | 'verify' | 'read' | 'uninit' | 'restore';
  /** The flash range it was done to. */
  range: MemoryRange;
}
/** @deprecated Use {@link FlashOperation}. */
export type FlashStep = FlashOperation;

export const VERBS: Record<FlashOperation['operation'], string> = {
  load: 'Loading the flash algorithm into RAM',
  recover: 'Restoring kept bytes from the recovery journal at',
  compare: 'Comparing the flash with the image at',
  keep: 'Reading the bytes to keep at',
  erase: 'Erasing',
  program: 'Programming',
  write: 'Erasing and programming',
  verify: 'Verifying',
  read: 'Reading',
  uninit: 'Finishing with the algorithm (UnInit) after',
  restore: "Restoring the target's registers and RAM",
};

/** Errors that already say all there is: no operation prefix. */
const SELF_EXPLAINING = new Set(['RSPFLASH_ABORTED', 'RSPFLASH_USAGE', 'RSPFLASH_OUT_OF_FLASH', 'RSPFLASH_JOURNAL']);

/** The error, wrapped with the operation it interrupted and the flash left at risk. */
export function named(err: unknown, at: FlashOperation | undefined, atRisk: readonly RangeAtRisk[], journal: string | undefined): RspflashError {
  const e = toRspflashError(err);
  if (at === undefined || SELF_EXPLAINING.has(e.code) || e.operation !== undefined) {
    return atRisk.length > 0 ? e.within(e.operation ?? 'flash', e.message + riskNote(atRisk, journal), { atRisk }) : e;
  }
  const where = formatRange(at.range);
  return e.within(`${at.operation} ${where}`, `${VERBS[at.operation]} ${where} failed: ${e.message}${riskNote(atRisk, journal)}`, { atRisk });
}

function riskNote(atRisk: readonly RangeAtRisk[], journal: string | undefined): string {
  if (atRisk.length === 0) return '';
  const list = atRisk.slice(0, 4).map((r) => `${formatRange(r)} ${r.state}`).join(', ');
  return `. Flash left ${list}${atRisk.length > 4 ? `, … (${atRisk.length} ranges)` : ''}` + (journal ? `; the bytes to keep are in the journal ${journal}, restored by the next run (or recover())` : '');
}

/** Progress of one phase. */
export interface Phase {
  advance(n: number): void;
  end(): void;
}

/** Mutable state of one operation. */
export interface Run {
  emit: ProgressListener;
  signal: AbortSignal | undefined;
  at: FlashOperation | undefined;
  /** Sectors erased and not yet completely programmed. */
  pending: Map<number, MemoryRange>;
  journal: string | undefined;
  /** This operation wrote the journal (it did not exist before): it may remove it if nothing was erased. */
  journalOwned?: boolean;
  /** A run that erases (or a chip erase) has been started: the journal must outlive a failure. */
  erased?: boolean;
  start: number;
}


/** A report's figures before an operation adds its own. */
export const EMPTY_REPORT: Omit<FlashReport, 'durationMs' | 'bytesSent' | 'roundTrips' | 'targetRuns'> = {
  imageBytes: 0,
  sectorsTouched: 0,
  sectorsSkipped: 0,
  sectorsErased: 0,
  sectorsBlank: 0,
  chipErase: false,
  pagesProgrammed: 0,
  bytesProgrammed: 0,
  bytesKept: 0,
  bytesRecovered: 0,
  verify: 'none',
  notes: [],
};

/** Emits a phase's start now, its progress and end as the caller reports them. */
export function startPhase(run: Run, phase: FlashPhase, total: number, unit: 'bytes' | 'sectors'): Phase {
  const start = performance.now();
  let done = 0;
  run.emit({ type: 'phase-start', phase, total, unit });
  return {
    advance: (n: number) => {
      done += n;
      run.emit({ type: 'progress', phase, done, total, elapsedMs: Math.round(performance.now() - start) });
    },
    end: () => run.emit({ type: 'phase-end', phase, elapsedMs: Math.round(performance.now() - start) }),
  };
}

/**
 * The operation a failing algorithm call was doing, by the call and its
 * arguments as made (`EraseSector(adr, size)`, `ProgramPage(adr, sz, buf)`,
 * `Erase(adr, index, count)`, `Program(adr, n, src)`, `Verify(adr, sz, buf)`),
 * so an error names the sector or page, not the whole run.
 */
export function operationOfCall(fn: string, args: readonly number[], sectorSize: (address: number) => number): FlashOperation | undefined {
  const address = args[0];
  if (address === undefined) return undefined;
  switch (fn) {
    case 'EraseSector':
      return { operation: 'erase', range: { address, length: sectorSize(address) } };
    case 'Erase':
      return { operation: 'erase', range: { address, length: sectorSize(address) * (args[2] ?? 1) } };
    case 'ProgramPage':
    case 'Program':
      return { operation: 'program', range: { address, length: args[1] ?? 0 } };
    case 'Verify':
      return { operation: 'verify', range: { address, length: args[1] ?? 0 } };
    default:
      return undefined;
  }
}
