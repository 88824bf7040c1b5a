/**
 * The options of a {@link Flasher} and of its operations.
 * @module
 */
import type { RunnerOptions } from '../algo/runner.js';
import type { RamRegion } from '../algo/layout.js';
import type { JobOptions } from './steps.js';
import type { ProgressListener } from './progress.js';

/** Options of {@link Flasher.create}. */
export interface FlasherOptions extends Omit<RunnerOptions, 'ram'> {
  /** RAM lent to the algorithm, its stack and buffers. */
  ram: RamRegion;
  /**
   * Whether the flash can be read at its address while the algorithm owns it
   * (internal flash, simulated NOR: yes; Alif OSPI: no). Decides how sectors
   * are compared, kept and verified. Default true.
   */
  memoryMapped?: boolean;
  /** Clock argument for Init (CMSIS `clk`), default 0. */
  clock?: number;
  /**
   * The recovery journal of kept bytes ({@link Journal}): `key` names the
   * target (default: the algorithm and its flash range), `dir` the folder
   * (default: the user's cache folder). `false` turns it off.
   */
  journal?: false | {
    /** Folder of the journal files; default {@link defaultJournalDir}. */
    dir?: string;
    /** What the journal is for; a journal is replayed only for the same key. */
    key?: string;
  };
  /** Cancels loading the algorithm. */
  signal?: AbortSignal;
}

/** Options of {@link Flasher.program}. */
export interface ProgramOptions extends JobOptions {
  /** Cancels the job, which then throws {@link AbortedError}. */
  signal?: AbortSignal;
  /** Receives the job's {@link FlashEvent}s, in the order documented there. */
  onProgress?: ProgressListener;
}

/** Options of operations that only report progress and may be cancelled. */
export interface OperationOptions {
  /** Cancels the operation, which then throws {@link AbortedError}. */
  signal?: AbortSignal;
  /** Receives the operation's {@link FlashEvent}s. */
  onProgress?: ProgressListener;
}
