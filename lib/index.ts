/**
 * rspflash: program the flash of Arm Cortex-M targets through any GDB server
 * (SEGGER J-Link, OpenOCD, pyOCD, QEMU) by speaking the GDB Remote Serial
 * Protocol and running a flash algorithm (CMSIS `.FLM`, SEGGER loader, probe-rs
 * YAML) on the target's CPU.
 *
 * @example Program an image in a script
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { connect, Flasher, loadAlgorithm, loadImage, boardPreset } from 'rspflash';
 *
 * const board = boardPreset('alif-e7-hp');
 * const gdb = await connect('localhost:2331');
 * const algo = loadAlgorithm(await readFile('Ensemble_IS25WX256.FLM'), 'Ensemble_IS25WX256.FLM');
 * const image = loadImage(await readFile('ext_flash.bin'), { source: 'ext_flash.bin', base: 0xc0000000 });
 * const flasher = await Flasher.create(gdb, algo, { ram: board.ram, memoryMapped: board.memoryMapped });
 * try {
 *   const report = await flasher.program(image);
 *   console.log(`${report.bytesProgrammed} bytes in ${report.durationMs} ms`);
 * } finally {
 *   await flasher.close();
 *   await gdb.close();
 * }
 * ```
 * @packageDocumentation
 */
import { GdbClient, DEFAULT_GDB_PORT, type GdbConnectOptions, type GdbEndpoint } from './gdb/client.js';
import { UsageError } from './errors.js';

export * from './errors.js';
export { GdbClient, DEFAULT_GDB_PORT } from './gdb/client.js';
export type { GdbConnectOptions, GdbEndpoint, ServerInfo, ContinueResult, ConnectionStats } from './gdb/client.js';
export { signalName } from './gdb/stop.js';
export type { StopReply, SignalStop, ExitedStop, KilledStop, NoResumedStop } from './gdb/stop.js';
export type { RegisterInfo, TargetDescription } from './gdb/target-xml.js';
export type { MemoryRegion, MemoryType } from './gdb/memory-map.js';
export { DIALECTS, type ServerKind, type ServerDialect } from './gdb/servers.js';

export {
  sectorAt,
  sectorsOf,
  sectorCount,
  describeAlgorithm,
  FNC_ERASE,
  FNC_PROGRAM,
  FNC_VERIFY,
  type FlashAlgorithm,
  type FlashGeometry,
  type AlgorithmFunction,
  type AlgorithmFormat,
  type AlgorithmTimeouts,
  type Sector,
  type SectorRun,
} from './algo/algorithm.js';
export { loadAlgorithm, type LoadAlgorithmOptions } from './algo/load.js';
export { listProbeRsAlgorithms, type ProbeRsAlgorithmSummary } from './algo/probe-rs.js';
export { AlgorithmRunner, MIN_CALL_TIMEOUT_MS, type RunnerOptions, type RunnerStats } from './algo/runner.js';
export {
  planRamLayout,
  describeLayout,
  DEFAULT_MAX_BUFFER,
  DEFAULT_STACK,
  HELPER_STACK,
  MAX_TABLE_ENTRIES,
  MIN_TABLE_ENTRIES,
  type RamRegion, type RamLayout, type LayoutOptions, type BufferSlot } from './algo/layout.js';
export type { BatchCall } from './algo/sequencer.js';

export { createImage, imageBytes, imageStart, imageEnd, imageSize, type Image, type Segment, type SourcedSegment } from './image/image.js';
export { loadImage, detectImageFormat, type ImageFormat, type LoadImageOptions } from './image/load.js';
export { imageToIntelHex, parseIntelHex, type IntelHexFile, type IntelHexWriteOptions } from './image/hex.js';
export { imageToSrec, parseSrec, type SrecAddressSize, type SrecFile, type SrecWriteOptions } from './image/srec.js';

export { planFlash, type FlashPlan, type PlanOptions, type PlannedSector, type ChipEraseMode, type EraseDecision, type EraseKind, type PlanTotals, type ByteRange, type EraseEstimate } from './flash/plan.js';
export { formatPlan, planToJSON, formatBytes, DEFAULT_MAX_ROWS, type SectorAction, type PageRunJSON, type PlanJSON, type SectorJSON, type AddressJSON, type FormatPlanOptions } from './flash/plan-format.js';
export {
  planToSvg,
  planSectorRuns,
  SECTOR_STATES,
  SECTOR_STATE_COLORS,
  SECTOR_STATE_LABELS,
  type PlanSvgOptions,
  type SectorState,
  type SectorStateRun,
  type SectorStateOptions,
} from './flash/plan-svg.js';
export { Flasher, planProgram, type FlashStep, type FlasherOptions, type ProgramOptions, type VerifyMode, type CompareMode } from './flash/flasher.js';
export { watchProgress, type FlashEvent, type FlashPhase, type FlashReport, type ProgressListener } from './flash/progress.js';
export { BOARDS, boardPreset, type BoardPreset } from './boards.js';

/**
 * Parses `host:port`, `:port`, `port`, `host` or `unix:/path` into an endpoint.
 * Defaults: host `localhost`, port 2331 (JLinkGDBServer's).
 */
export function parseEndpoint(text: string): GdbEndpoint {
  if (text.startsWith('unix:')) return { path: text.slice(5) };
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`'${text}' is not host:port`);
  const host = m[1] ?? (m[2] || 'localhost');
  if (/^\d+$/.test(host) && m[3] === undefined) {
    const port = Number(host);
    if (!(port > 0 && port < 65536)) throw new UsageError(`Port ${host} is out of range`);
    return { host: 'localhost', port };
  }
  const port = m[3] === undefined ? DEFAULT_GDB_PORT : Number(m[3]);
  if (!(port > 0 && port < 65536)) throw new UsageError(`Port ${m[3]} is out of range`);
  return { host, port };
}

/**
 * Connects to a GDB server: `connect('localhost:2331')`, `connect({ port: 3333 })`,
 * `connect({ path: '/tmp/gdb.sock' })` or `connect({ stream })`.
 */
export function connect(endpoint: string | GdbEndpoint = {}, options: GdbConnectOptions = {}): Promise<GdbClient> {
  return GdbClient.connect(typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint, options);
}
