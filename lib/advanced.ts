/**
 * Internals, for tools that go beyond the main entry point: the machinery under
 * {@link rspflash!Flasher | Flasher} for tools that run
 * their own code on the target or tune the RAM layout — the algorithm runner,
 * the RAM layout planner and its limits, the on-target sequencer's batch
 * format, server dialects, and the plan picture's building blocks. Less stable
 * than the main entry point: these follow the implementation.
 *
 * Import from `rspflash/advanced`; scripts that program, erase or verify need
 * only the main entry point, `rspflash`.
 * @module rspflash/advanced (internals)
 */
export { AlgorithmRunner, MIN_CALL_TIMEOUT_MS, type RunnerOptions, type RunnerStats } from './algo/runner.js';
export { FNC_ERASE, FNC_PROGRAM, FNC_VERIFY } from './algo/algorithm.js';
export {
  planRamLayout,
  describeLayout,
  DEFAULT_MAX_BUFFER,
  DEFAULT_STACK,
  HELPER_STACK,
  MAX_TABLE_ENTRIES,
  MIN_TABLE_ENTRIES,
  type RamRegion,
  type RamLayout,
  type LayoutOptions,
  type BufferSlot,
} from './algo/layout.js';
export type { BatchCall } from './algo/sequencer.js';
export { DIALECTS, type ServerKind, type ServerDialect } from './gdb/servers.js';
export { signalName } from './gdb/stop.js';
export { writeCalls, withInitCalls, openFunction, type CallTarget } from './flash/write-run.js';
export { JobContent, imageContent, type ExpectedContent } from './flash/content.js';
export { findDifferences, compareMethod, verifyMethod, type CheckContext, type CheckCapabilities, type Difference } from './flash/checks.js';
export {
  planSectorRuns,
  SECTOR_STATES,
  SECTOR_STATE_COLORS,
  SECTOR_STATE_LABELS,
  type SectorState,
  type SectorStateRun,
  type SectorStateOptions,
} from './flash/plan-svg.js';
export { murmur3 } from './flash/hash.js';
