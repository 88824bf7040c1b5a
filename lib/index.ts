/**
 * rspflash: program the flash of Arm Cortex-M targets through any GDB server
 * (SEGGER J-Link, OpenOCD, pyOCD, QEMU) by speaking the GDB Remote Serial
 * Protocol and running a flash algorithm (CMSIS `.FLM`, SEGGER loader, probe-rs
 * YAML) on the target's CPU.
 *
 * This entry point holds what a script needs: {@link withFlasher} (connect,
 * load, job, restore, close), the {@link Flasher}, the image and algorithm
 * loaders, the job planner, board presets, errors, and the event and report
 * types. Runner and layout internals live in `rspflash/advanced`.
 *
 * @example Program an image in a script
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { withFlasher, loadAlgorithm, loadImage } from 'rspflash';
 *
 * const algorithm = loadAlgorithm(await readFile('Ensemble_IS25WX256.FLM'), { source: 'Ensemble_IS25WX256.FLM' });
 * const image = loadImage(await readFile('ext_flash.bin'), { source: 'ext_flash.bin', base: 0xc0000000 });
 * const report = await withFlasher({ gdb: 'localhost:2331', algorithm, board: 'alif-e7-hp' }, (flasher) =>
 *   flasher.program(image, { onProgress: (e) => e.type === 'phase-start' && console.log(e.phase) }),
 * );
 * console.log(`${report.bytesProgrammed} bytes in ${report.durationMs} ms`);
 * ```
 * @module rspflash
 */
import { GdbClient, type GdbConnectOptions, type GdbEndpoint } from './gdb/client.js';
import { parseEndpoint } from './endpoint.js';

export * from './errors.js';
export { formatRange, mergeRanges, rangeEnd, spanOf, type MemoryRange } from './range.js';
export { parseEndpoint } from './endpoint.js';
export { GdbClient, DEFAULT_GDB_PORT } from './gdb/client.js';
export type { GdbConnectOptions, GdbEndpoint, ServerInfo, ContinueResult, ConnectionStats } from './gdb/client.js';
export type { StopReply, SignalStop, ExitedStop, KilledStop, NoResumedStop } from './gdb/stop.js';
export type { RegisterInfo, TargetDescription } from './gdb/target-xml.js';
export type { MemoryRegion, MemoryType } from './gdb/memory-map.js';
export type { ServerKind, ServerDialect } from './gdb/servers.js';

export { withFlasher, withConnection, journalKey, type SessionOptions, type ConnectionOptions, type AfterSession } from './session.js';
export { serve, type ServeOptions, type ProxyHandle, type ListenAddress } from './serve/index.js';
export { Flasher, type FlasherOptions, type ProgramOptions, type OperationOptions } from './flash/flasher.js';
export type { FlashOperation, FlashStep } from './flash/operation.js';
export { watchProgress, type FlashEvent, type FlashPhase, type FlashReport, type ProgressListener } from './flash/progress.js';
export { Journal, defaultJournalDir, journalPath, type JournalContent, type KeptBytes } from './flash/journal.js';
export { checkPaths, type CompareMode, type VerifyMode, type CheckMethod, type CheckPaths, type CheckCapabilities } from './flash/checks.js';

export {
  planJob,
  planProgramJob,
  planErase,
  planVerify,
  jobTarget,
  MAX_SECTORS_PER_RUN,
  type JobPlan,
  type JobTarget,
  type JobOptions,
  type JobTotals,
  type CompareOutcome,
  type Step,
  type CompareStep,
  type CompareRange,
  type KeepStep,
  type EraseChipStep,
  type WriteStep,
  type VerifyStep,
  type SectorSpan,
  type BufferPiece,
} from './flash/steps.js';
export { formatSteps, stepsToJSON, type StepJSON } from './flash/steps-format.js';
export { planFlash, type FlashPlan, type PlanOptions, type PlannedSector, type ChipEraseMode, type EraseDecision, type EraseKind, type PlanTotals, type ByteRange, type EraseEstimate } from './flash/plan.js';
export { formatPlan, planToJSON, formatBytes, DEFAULT_MAX_ROWS, type SectorAction, type PageRunJSON, type PlanJSON, type SectorJSON, type AddressJSON, type FormatPlanOptions } from './flash/plan-format.js';
export { planToSvg, type PlanSvgOptions } from './flash/plan-svg.js';

export {
  sectorAt,
  sectorsOf,
  sectorCount,
  describeAlgorithm,
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
export type { RamRegion } from './algo/layout.js';

export { createImage, imageBytes, imageStart, imageEnd, imageSize, type Image, type Segment, type SourcedSegment } from './image/image.js';
export { loadImage, detectImageFormat, type ImageFormat, type LoadImageOptions } from './image/load.js';
export { imageToIntelHex, parseIntelHex, type IntelHexFile, type IntelHexWriteOptions } from './image/hex.js';
export { imageToSrec, parseSrec, type SrecAddressSize, type SrecFile, type SrecWriteOptions } from './image/srec.js';

export { BOARDS, boardPreset, boardMemoryMapped, type BoardPreset } from './boards.js';
export {
  programRegions,
  verifyRegions,
  planRegions,
  splitImageByRegion,
  formatRegionPlan,
  regionPlanToJSON,
  describeRegion,
  sumReports,
  type FlashRegionSpec,
  type RegionInfo,
  type RegionPart,
  type RegionJob,
  type RegionsPlan,
  type RegionEvent,
  type RegionsReport,
  type RegionsSessionOptions,
  type ProgramRegionsOptions,
  type VerifyRegionsOptions,
} from './regions.js';
export { openPack, openPackArchive, listDevices, resolveDevice, type CmsisPack, type PackFiles, type OpenPackOptions, type PackAlgorithm, type PackFlashRegion, type PackDevice } from './pack/pack.js';
export { findInstalledPack, listInstalledPacks, packRoot, defaultPackRoot, type PackRootContext, type InstalledPack, type InstalledDevicePack } from './pack/installed.js';
export { describeResolvedAlgorithm, type PdscDevice, type PdscProcessor, type PdscMemory, type ResolvedAlgorithm, type ResolvedDevice, type ResolveDeviceOptions, type SkippedAlgorithm } from './pack/pdsc.js';
// Shown by CmsisPack, PdscDevice and OpenPackOptions: exported so the API reference can document them.
export type { PackDescription, PdscAlgorithm, PdscDebug } from './pack/pdsc.js';
export type { ZipLimits } from './pack/zip.js';
export { parseProject, PROJECT_FILE, type Project, type ProjectImage, type ProjectAlgorithm, type ParseProjectOptions } from './project.js';

/**
 * Connects to a GDB server: `connect('localhost:2331')`, `connect({ port: 3333 })`,
 * `connect({ path: '/tmp/gdb.sock' })` or `connect({ stream })`.
 * Most scripts use {@link withFlasher}, which connects and closes by itself.
 */
export function connect(endpoint: string | GdbEndpoint = {}, options: GdbConnectOptions = {}): Promise<GdbClient> {
  return GdbClient.connect(typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint, options);
}
