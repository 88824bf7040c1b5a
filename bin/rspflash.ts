#!/usr/bin/env node
/**
 * rspflash command line: a thin shell over the library (lib/index.ts).
 * Argument parsing, progress output, --json and exit codes; no flashing logic.
 * Everything a command can refuse (options, files, ranges) is refused before
 * it connects.
 */
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { homedir } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import {
  AbortedError,
  BOARDS,
  FileError,
  UsageError,
  boardPreset,
  connect,
  checkPaths,
  createImage,
  describeAlgorithm,
  formatBytes,
  formatPlan,
  formatRange,
  formatSteps,
  hex32,
  imageEnd,
  imageSize,
  imageStart,
  imageToIntelHex,
  imageToSrec,
  jobTarget,
  loadAlgorithm,
  loadImage,
  planErase,
  planProgramJob,
  planToJSON,
  planToSvg,
  planVerify,
  stepsToJSON,
  toRspflashError,
  withFlasher,
  type BoardPreset,
  type FlashAlgorithm,
  type FlashEvent,
  type Flasher,
  type GdbClient,
  type Image,
  type ImageFormat,
  type JobOptions,
  type JobPlan,
  type MemoryRange,
  type RamRegion,
  formatRegionPlan,
  listDevices,
  openPack,
  packRoot,
  listInstalledPacks,
  planRegions,
  programRegions,
  regionPlanToJSON,
  resolveDevice,
  splitImageByRegion,
  verifyRegions,
  describeResolvedAlgorithm,
  type RegionEvent,
} from '../lib/index.js';
import { DIALECTS, describeLayout, planRamLayout, planSectorRuns } from '../lib/advanced.js';
import { EXIT, errorJSON, exitCodeOf, printError } from './output.js';
import { checkMode, checkedRange, parseLength, parseNumber, parseRam, parseTimeout, type CheckModeFlag } from './args.js';
import { createConsole, safeWrite, type Console, type ProgressMode } from './progress.js';
import { lostWarning, riskLines, summarizeErase, summarizeProgram, summarizeVerify } from './summary.js';
import { addServeCommand } from './serve.js';
import { applyProject, collect, imageSpecs, loadProject, readImages, resolveTargets, type CliRegion, type Targets } from './targets.js';

const VERSION: string = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8').catch(() => readFile(new URL('../package.json', import.meta.url), 'utf8'))).version;

/** Bytes read per request in `read`: progress and cancellation between reads. */
const READ_CHUNK = 1 << 20;
/** Most bytes `read --memory` takes at once: it is held in memory before the file is written. */
const MAX_MEMORY_READ = 256 << 20;

// ---------------------------------------------------------------------------
// Process plumbing: closed pipes, signals.

/** A closed stdout/stderr (`rspflash … | head -1`) must not crash a flash job half-way: output is dropped, the job finishes. */
function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/**
 * Cancellation by signal. The first SIGINT, SIGTERM or SIGHUP cancels between
 * target calls (UnInit runs, registers, RAM and breakpoints are restored, the
 * connection closed); a second one quits at once and says what is left on the
 * target and how to recover.
 */
class Cancellation {
  readonly #controller = new AbortController();
  #count = 0;
  /** What rspflash holds on the target right now (RAM lent to the algorithm, its trap), for the message on a forced quit. */
  borrowed: { ram: RamRegion; trap?: number } | undefined;
  /** Called before the message of a forced quit (stops a progress bar). */
  beforeQuit: () => void = () => undefined;

  constructor() {
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, () => this.#on(name));
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  #on(name: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): void {
    this.#count++;
    const who = name === 'SIGINT' ? 'Ctrl-C' : name;
    if (this.#count === 1) {
      this.beforeQuit();
      safeWrite(process.stderr, `\n${who}: cancelling after the current call; the target will be restored (Ctrl-C again to quit at once, leaving it as it is)…\n`);
      this.#controller.abort(new AbortedError(`Cancelled by ${who}`));
      return;
    }
    this.beforeQuit();
    safeWrite(process.stderr, `\n${who} again: quitting at once.\n${leftOnTarget(this.borrowed)}\n`);
    process.exit(EXIT.aborted);
  }
}

/** What a forced quit leaves on the target, and how to get back to a clean state. */
function leftOnTarget(borrowed: { ram: RamRegion; trap?: number } | undefined): string {
  if (borrowed === undefined) return 'Nothing of rspflash is on the target (it was not loaded, or already restored).';
  const ram = formatRange({ address: borrowed.ram.start, length: borrowed.ram.size });
  return [
    'Left on the target as it is now:',
    `  registers  PC, SP, LR, xPSR, R0-R12 (and VTOR, PRIMASK, CONTROL where the core has them) may still be rspflash's, pointing into ${ram}`,
    `  RAM        ${ram} holds the flash algorithm and its buffers instead of its old content`,
    `  breakpoint ${borrowed.trap === undefined ? "on rspflash's return trap" : `at ${hex32(borrowed.trap)} (the return trap)`}, and possibly one on the application's HardFault handler`,
    '  flash      sectors being written may be erased or half-written',
    'To recover: reset the target (gdb: monitor reset; or run rspflash with --reset), then run the same command again —',
    'it restores bytes kept in the recovery journal first (or run `rspflash recover` to do only that).',
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Options and inputs.

interface CommonOptions {
  gdb: string;
  /** One or more algorithm files (`--algo` repeated, or the project's). */
  algo?: string[];
  board?: string;
  pack?: string;
  device?: string;
  core?: string;
  project?: string;
  projectAlgorithms?: import('../lib/index.js').Project['algorithms'];
  ram?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  progress?: ProgressMode;
  reset?: boolean;
  after?: 'halt' | 'run' | 'reset';
  timeout: string;
  memoryMapped?: boolean;
  journalDir?: string;
}

interface ImageOptions {
  base?: string;
  format?: ImageFormat;
  skip?: string | boolean;
}

/** What every target command needs, checked before connecting. */
interface Context {
  con: Console;
  board: BoardPreset | undefined;
  algorithm: FlashAlgorithm;
  ram: RamRegion;
  memoryMapped: boolean;
  timeoutMs: number;
}

/** Reads an input file; a missing or unreadable one is a {@link FileError} naming it (exit 2). */
async function readInput(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw FileError.fromSystemError(err, path);
  }
}

/** Checks that an output file can be written (its folder exists and is writable; it is not a folder), before any work. */
async function checkOutputPath(path: string): Promise<void> {
  const existing = await stat(path).catch(() => undefined);
  try {
    if (existing?.isDirectory()) {
      throw Object.assign(new Error(`EISDIR: is a directory, open '${path}'`), { code: 'EISDIR', syscall: 'open', path });
    }
    await access(existing ? path : dirname(resolve(path)), fsConstants.W_OK);
  } catch (err) {
    throw FileError.fromSystemError(err, path);
  }
}

/** Where the algorithm of a board comes from, for messages: the QEMU boards' FLMs are built from the rspflash sources. */
function algorithmSource(board: BoardPreset): string {
  if (board.name.startsWith('qemu-')) {
    return `${board.name} runs rspflash's own test flash algorithm (a QEMU simulation, not a real device): build it from a clone of the rspflash source repository with \`npm run fixtures\` (C sources in test/fixtures/src); the npm package does not include it`;
  }
  return `${board.name}: ${board.algorithm}`;
}

function regionOf(range: MemoryRange): RamRegion {
  return { start: range.address, size: range.length };
}

async function context(options: CommonOptions, con: Console, pick?: { range?: MemoryRange; what: string }): Promise<Context> {
  const targets = await resolveTargets(options, con, { hint: algorithmSource });
  const timeoutMs = parseTimeout(options.timeout ?? '10000');
  return contextOf(targets, pickRegion(targets, pick), con, timeoutMs);
}

function contextOf(targets: Targets, region: CliRegion, con: Console, timeoutMs: number): Context {
  return { con, board: targets.board, algorithm: region.algorithm, ram: region.ram, memoryMapped: region.memoryMapped, timeoutMs };
}

/** The one region a command works on: the only one, or the one holding `pick.range`. */
function pickRegion(targets: Targets, pick: { range?: MemoryRange; what: string } | undefined): CliRegion {
  const regions = targets.regions;
  if (regions.length === 1) return regions[0]!;
  const range = pick?.range;
  const found = range && regions.find((r) => range.address >= r.algorithm.geometry.start && range.address < r.algorithm.geometry.start + r.algorithm.geometry.size);
  if (found) return found;
  const list = regions.map((r) => `${formatRange({ address: r.algorithm.geometry.start, length: r.algorithm.geometry.size })} (${basename(r.file)})`).join(', ');
  throw new UsageError(
    range
      ? `${formatRange(range)} is not inside any of the flash regions: ${list}`
      : `${pick?.what ?? 'This command'} works on one flash region at a time, and there are ${regions.length}: ${list}`,
    { hint: pick?.what === 'erase' ? 'Give --address in the region to erase (with --length).' : 'Give --algo FILE for the region you mean.' },
  );
}

/** Fills options from the project file (rspflash.json or --project) where the command line left them out. */
async function withProject(command: Command, options: CommonOptions, con: Console): Promise<import('../lib/index.js').Project | undefined> {
  const project = await loadProject(options.project);
  if (project === undefined) return undefined;
  applyProject(command, options as unknown as Record<string, unknown>, project);
  con.info(`Project ${project.source}`);
  return project;
}

/** `app.bin: 64 KiB at 0xc0000000..0xc000ffff → algorithm`, an empty image at its --base. */
function describeImage(file: string, image: Image, options: ImageOptions, algorithm: FlashAlgorithm): string {
  const start = imageStart(image);
  if (start === undefined) {
    const base = options.base === undefined ? undefined : parseNumber(options.base, '--base');
    return `${basename(file)}: empty${base === undefined ? '' : ` (0 bytes at ${hex32(base)})`}, nothing to write → ${algorithm.name}`;
  }
  return `${basename(file)}: ${formatBytes(imageSize(image))} at ${formatRange({ address: start, length: imageEnd(image)! - start })} → ${algorithm.name}`;
}

/** Runs `job` in a flash session (connect, reset, load, job, restore, after, close) with the CLI's output and signals. */
async function session<T>(ctx: Context, options: CommonOptions, cancel: Cancellation, job: (flasher: Flasher, gdb: GdbClient) => Promise<T>): Promise<T> {
  cancel.borrowed = { ram: ctx.ram };
  cancel.beforeQuit = () => ctx.con.done();
  try {
    return await withFlasher(
      {
        gdb: options.gdb,
        algorithm: ctx.algorithm,
        ram: ctx.ram,
        memoryMapped: ctx.memoryMapped,
        reset: options.reset === true,
        after: options.after ?? 'halt',
        signal: cancel.signal,
        connect: { timeoutMs: ctx.timeoutMs, signal: cancel.signal },
        onInfo: (line) => ctx.con.info(line),
        ...(options.journalDir === undefined ? {} : { journal: { dir: options.journalDir } }),
      },
      async (flasher, gdb) => {
        cancel.borrowed = { ram: ctx.ram, trap: flasher.runner.layout.trap };
        ctx.con.detail(describeLayout(flasher.runner.layout));
        try {
          return await job(flasher, gdb);
        } finally {
          ctx.con.done();
        }
      },
    );
  } finally {
    cancel.borrowed = undefined;
  }
}

/** The JSON document's common tail: what the session said and warned about. */
function said(con: Console): Record<string, unknown> {
  return { info: con.infoLines, warnings: con.warnings };
}

function emitJSON(document: Record<string, unknown>): void {
  safeWrite(process.stdout, JSON.stringify(document, null, 2) + '\n');
}

// ---------------------------------------------------------------------------
// Commands.

/** The command being run, for the JSON document of a failure. */
const current: { command?: string; con?: Console } = {};

function start(command: string, options: { json?: boolean; verbose?: boolean; quiet?: boolean; progress?: ProgressMode }): Console {
  const con = createConsole(options);
  current.command = command;
  current.con = con;
  return con;
}

function addTarget(cmd: Command): Command {
  return cmd
    .option('--gdb <endpoint>', 'GDB server: host:port, tcp:host:port, :port, or unix:/path', 'localhost:2331')
    .option('--reset', 'reset and halt the target before flashing (the server\'s monitor reset command)')
    .addOption(new Option('--after <state>', 'leave the target halted, running, or reset and running').choices(['halt', 'run', 'reset']).default('halt'))
    .option('--timeout <ms>', 'time the GDB server has to answer one request, 1 to 2147483647 ms', '10000')
    // Both forms defined, so commander leaves the value undefined unless given and the board's setting applies.
    .option('--memory-mapped', 'the flash reads at its address while the algorithm runs (default: from --board, else yes)')
    .option('--no-memory-mapped', 'the flash cannot be read at its address while the algorithm runs (compare and verify through the algorithm)')
    .option('--journal-dir <dir>', "folder of the recovery journal of kept bytes (default: the user's cache folder, e.g. ~/.cache/rspflash/journal)");
}

function addAlgorithm(cmd: Command): Command {
  return cmd
    .option('--algo <file>', 'flash algorithm: CMSIS .FLM, SEGGER flash loader ELF, or probe-rs target YAML (repeat for several flash devices)', collect)
    .option('--pack <file>', 'CMSIS pack (.pack/.zip, folder or .pdsc): the algorithms and their RAM come from --device (default: the installed packs)')
    .option('--device <name>', 'device of the pack (list them with rspflash devices)')
    .option('--core <pname>', 'processor of a device with several, e.g. M55_HP')
    .option('--project <file>', 'project file (default: rspflash.json in the current folder when there is one)')
    .option('--board <name>', `board preset (${Object.keys(BOARDS).join(', ')})`)
    .option('--ram <addr:size>', 'RAM the algorithm may use for code, stack and buffers, e.g. 0x20000000:64K (overrides the board)');
}

function addOutput(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON document on stdout instead of human output (failures too)')
    .addOption(new Option('--progress <how>', 'progress: a bar on a terminal, lines otherwise (auto), or JSON lines on stderr (json)').choices(['auto', 'bar', 'plain', 'json', 'none']).default('auto'))
    .option('-v, --verbose', 'more detail (layout, steps, decisions); RSPFLASH_DEBUG=rsp,gdb,algo,flash shows every packet')
    .option('-q, --quiet', 'no progress or informational output (warnings and errors still show)');
}

function addImage(cmd: Command): Command {
  return cmd
    .option('--base <addr>', 'load address of a .bin image, e.g. 0xC0000000')
    .addOption(new Option('--format <format>', 'read the image as this format instead of telling it from content and name').choices(['bin', 'elf', 'hex', 'srec']))
    .option('--skip <bytes>', 'leave out this many bytes at the start of a .bin image (the byte at --skip goes to --base)');
}

function addJobOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--verify <how>', 'how to check the result (crc: deprecated name of hash)').choices(['auto', 'algo', 'hash', 'read', 'none', 'crc']).default('auto'))
    .addOption(new Option('--compare <how>', 'how to find sectors that already hold the image (crc: deprecated name of hash)').choices(['auto', 'hash', 'algo', 'none', 'crc']).default('auto'))
    .option('--no-skip-unchanged', 'program every touched sector even when it already holds the image')
    .addOption(new Option('--no-skip', 'deprecated: --no-skip-unchanged').hideHelp())
    .option('--preserve', 'keep bytes of touched sectors outside the image (default when the flash can be read)')
    .option('--no-preserve', 'let bytes of touched sectors outside the image be erased')
    .addOption(new Option('--chip-erase <when>', 'erase the whole chip instead of sectors').choices(['auto', 'always', 'never']).default('auto'));
}

type JobFlags = ImageOptions & {
  verify: CheckModeFlag;
  compare: CheckModeFlag;
  skipUnchanged: boolean;
  preserve?: boolean;
  chipErase: 'auto' | 'always' | 'never';
};

/** The library's job options for the flags, with deprecation warnings. */
function jobOptions(options: JobFlags, con: Console): JobOptions {
  const verify = checkMode(options.verify, '--verify');
  const compare = checkMode(options.compare, '--compare');
  for (const note of [verify.note, compare.note]) if (note) con.warn(note);
  // `--no-skip` (old name) sets the .bin offset option to false.
  const skipUnchanged = options.skipUnchanged !== false && options.skip !== false;
  return {
    verify: verify.mode as JobOptions['verify'],
    compare: compare.mode as JobOptions['compare'],
    skipUnchanged,
    chipErase: options.chipErase,
    ...(options.preserve === undefined ? {} : { preserve: options.preserve }),
  };
}

/** Warns about bytes the job will erase without keeping, unless the user asked for that with --no-preserve. */
function warnLost(job: JobPlan, ctx: Context, preserve: boolean | undefined): void {
  const readable = ctx.memoryMapped || ctx.algorithm.functions.Read !== undefined;
  const why = readable ? '--no-preserve' : `the flash is not memory mapped and '${ctx.algorithm.name}' has no Read routine, so they cannot be kept`;
  const text = lostWarning(job.lost, why);
  if (text === undefined) return;
  if (preserve === false) ctx.con.info(text);
  else ctx.con.warn(text);
}

/** A RAM region for planning without a target: the layout only sizes the transfers. */
function nominalRam(algorithm: FlashAlgorithm): RamRegion {
  const g = algorithm.geometry;
  const start = g.start + g.size <= 0x20000000 || g.start >= 0x20040000 ? 0x20000000 : 0x60000000;
  return { start, size: 0x40000 };
}

const program = new Command('rspflash')
  .version(VERSION)
  .description('Program the flash of Arm Cortex-M targets through any GDB server (J-Link, OpenOCD, pyOCD, QEMU).')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({
    // With --json every failure is one JSON document on stdout (printed in the catch below); commander stays quiet.
    writeErr: (text) => {
      if (!wantsJson()) safeWrite(process.stderr, text);
    },
    outputError: (text, write) => {
      if (!wantsJson()) write(text);
    },
  })
  .addHelpText(
    'after',
    `
Examples:
  # Alif Ensemble E7 DevKit OSPI flash through SEGGER's GDB server
  JLinkGDBServerCLExe -device AE722F80F55D5_HP -if JTAG -speed 4000 -port 2331
  rspflash program ext_flash.bin --base 0xC0000000 --board alif-e7-hp --algo Ensemble_IS25WX256.FLM

  # See what would happen first (no target needed)
  rspflash plan app.hex --algo MyDevice.FLM --ram 0x20000000:64K

  # Any GDB server, any algorithm, JSON for scripts
  rspflash program app.elf --gdb localhost:3333 --algo STM32F4xx_1024.FLM --ram 0x20000000:64K --json

Sizes and addresses: 0x… or decimal, with K, KiB, M or MiB (binary units).
Signals: the first Ctrl-C (or SIGTERM, SIGHUP) cancels and restores the target; a second quits at once.

Exit codes:
  0 success   2 bad usage or input file   3 GDB server or connection
  4 flash algorithm failed   5 verify failed   130 cancelled (Ctrl-C, SIGTERM, SIGHUP)`,
  )
  .exitOverride();

function wantsJson(): boolean {
  return process.argv.includes('--json');
}

// program ---------------------------------------------------------------------

addOutput(addJobOptions(addImage(addAlgorithm(addTarget(
  program
    .command('program')
    .description('erase, program and verify images (.bin/.hex/.srec/.elf) over one or more flash regions; sectors that already hold them are left alone')
    .argument('[images...]', 'image files: Intel HEX, S-record, ELF, or .bin (FILE@ADDRESS, or --base); none: the images of rspflash.json'),
))))
  .option('--dry-run', 'print the plan and stop (same as `rspflash plan`)')
  .option('--svg <file>', 'with --dry-run: also write the plan as an SVG picture of the flash'))
  .addHelpText(
    'after',
    `
Examples:
  rspflash program ext_flash.bin --base 0xC0000000 --board alif-e7-hp --algo Ensemble_IS25WX256.FLM
  rspflash program app.hex ext_flash.bin@0xC0000000 --device AE722F80F55D5LS --core M55_HP
  rspflash program app.hex --pack Vendor.DFP.1.0.0.pack --device MYDEVICE --gdb localhost:3333
  rspflash program                 # runs rspflash.json in the current folder
  rspflash program app.hex --gdb localhost:3333 --algo STM32F4xx_1024.FLM --ram 0x20000000:64K --after reset
  rspflash program app.bin --base 0x08000000 --skip 0x200 --algo MyDevice.FLM --ram 0x20000000:64K --progress json`,
  )
  .action(async (files: string[], options: CommonOptions & JobFlags & { dryRun?: boolean; svg?: string }, command: Command) => {
    const con = start('program', options);
    const project = await withProject(command, options, con);
    if (options.svg !== undefined && !options.dryRun) {
      throw new UsageError('--svg draws the plan and needs --dry-run (or use rspflash plan --svg FILE)');
    }
    const cancel = new Cancellation();
    const targets = await resolveTargets(options, con, { hint: algorithmSource });
    const specs = imageSpecs(files, options, project);
    const image = await readImages(specs);
    const file = specs.map((s) => s.file).join(', ');
    if (options.svg !== undefined) await checkOutputPath(options.svg);
    const opts = jobOptions(options, con);
    if (targets.regions.length > 1) return programSeveral(targets, image, specs.map((s) => s.file), options, opts, con, cancel);
    const ctx = contextOf(targets, targets.regions[0]!, con, parseTimeout(options.timeout ?? '10000'));
    // Planned without the target: an image outside the flash, or options it cannot honour, are refused before connecting.
    const job = planProgramJob(image, ctx.algorithm, { ram: ctx.ram, memoryMapped: ctx.memoryMapped }, opts);
    if (options.dryRun) return printPlan(ctx, image, job, options, file);
    warnLost(job, ctx, options.preserve);
    if (specs.length === 1) con.info(describeImage(specs[0]!.file, image, { ...options, ...(specs[0]!.base === undefined ? {} : { base: hex32(specs[0]!.base) }) }, ctx.algorithm));
    else con.info(describeImage(file, image, options, ctx.algorithm));
    const onProgress = jobProgress(con);
    const report = await session(ctx, options, cancel, (f) => f.program(image, { ...opts, signal: cancel.signal, onProgress }));
    if (con.json) emitJSON({ ok: true, command: 'program', image: file, ...(specs.length > 1 ? { images: specs.map((s) => s.file) } : {}), report, notes: report.notes, ...said(con) });
    else safeWrite(process.stderr, summarizeProgram(report) + '\n');
  });

/** Progress of a program job: the journal warning, the steps and revised notes with -v, the progress bar. */
function jobProgress(con: Console): (event: FlashEvent) => void {
  return (event) => {
    if (event.type === 'recover') {
      const bytes = event.ranges.reduce((n, r) => n + r.length, 0);
      con.warn(`Restoring ${formatBytes(bytes)} left in the journal ${event.journal} by a failed run: ${event.ranges.slice(0, 4).map(formatRange).join(', ')}${event.ranges.length > 4 ? ', …' : ''}`);
    } else if (event.type === 'plan') con.detail(formatSteps(event.job));
    else if (event.type === 'replan') for (const note of event.notes) con.detail(`note: ${note}`);
    con.progress(event);
  };
}

/** Progress of a job over several regions: a line per region, then its events as for one. */
function regionProgress(con: Console): (event: RegionEvent) => void {
  const job = jobProgress(con);
  let started = 0;
  return (event) => {
    if (event.type === 'region-start') {
      con.info(`Region ${++started}/${event.count}: ${formatBytes(event.imageBytes)} → ${formatRange(event.region.flash)} ${event.region.algorithm}${event.region.name ? ` (${event.region.name})` : ''}`);
      return;
    }
    job(event);
  };
}

/** The session options of a job over several regions, as the CLI's flags give them. */
function regionSession(targets: Targets, options: CommonOptions, con: Console, cancel: Cancellation) {
  const timeoutMs = parseTimeout(options.timeout ?? '10000');
  cancel.beforeQuit = () => con.done();
  return {
    gdb: options.gdb,
    regions: targets.regions,
    reset: options.reset === true,
    after: options.after ?? 'halt',
    signal: cancel.signal,
    connect: { timeoutMs, signal: cancel.signal },
    onInfo: (line: string) => con.info(line),
    onProgress: regionProgress(con),
    onLoaded: (f: Flasher) => {
      const region = targets.regions.find((r) => r.algorithm === f.algorithm);
      if (region) cancel.borrowed = { ram: region.ram, trap: f.runner.layout.trap };
      con.detail(describeLayout(f.runner.layout));
    },
    ...(options.journalDir === undefined ? {} : { journal: { dir: options.journalDir } }),
  } as const;
}

/** `program` over several flash regions: one plan per region, one connection, one summary. */
async function programSeveral(targets: Targets, image: Image, files: string[], options: CommonOptions & JobFlags & { dryRun?: boolean; svg?: string }, opts: JobOptions, con: Console, cancel: Cancellation): Promise<void> {
  // Planned without the target: bytes outside every region, or options a region cannot honour, are refused before connecting.
  const plan = planRegions(image, targets.regions, opts);
  if (options.svg !== undefined) throw new UsageError('--svg draws one flash region: give --algo FILE for the region to draw');
  const lost = lostWarning(plan.lost, '--no-preserve');
  if (lost !== undefined) {
    if (options.preserve === false) con.info(lost);
    else con.warn(lost);
  }
  if (options.dryRun) return printRegionPlan(plan, files, con);
  con.info(`${files.map((f) => basename(f)).join(', ')}: ${formatBytes(imageSize(image))} over ${plan.regions.filter((r) => r.imageBytes > 0).length} of ${plan.regions.length} flash regions`);
  try {
    const report = await programRegions({ ...regionSession(targets, options, con, cancel), image, options: opts });
    con.done();
    if (con.json) emitJSON({ ok: true, command: 'program', image: files.join(', '), images: files, report: report.totals, regions: report.regions, notes: report.totals.notes, ...said(con) });
    else safeWrite(process.stderr, summarizeProgram(report.totals) + '\n');
  } finally {
    cancel.borrowed = undefined;
    con.done();
  }
}

function printRegionPlan(plan: ReturnType<typeof planRegions>, files: string[], con: Console): void {
  if (con.json) {
    const json = regionPlanToJSON(plan);
    emitJSON({ ok: true, command: 'plan', image: files.join(', '), images: files, regions: json.regions, totals: json.totals, notes: plan.notes, lost: plan.lost, ...said(con) });
    return;
  }
  safeWrite(process.stdout, `${formatRegionPlan(plan)}\n`);
}

// erase -----------------------------------------------------------------------

addOutput(addAlgorithm(addTarget(
  program
    .command('erase')
    .description('erase the sectors covering a range (widened to whole sectors), or the whole chip')
    .option('--address <addr>', 'start of the range (default: the start of the flash)')
    .option('--length <bytes>', 'length of the range, e.g. 64K')
    .option('--chip', 'erase the whole device (EraseChip, or every sector); not with --address or --length'),
)))
  .addHelpText(
    'after',
    `
Examples:
  rspflash erase --address 0xC0100000 --length 64K --board alif-e7-hp --algo Ensemble_IS25WX256.FLM
  rspflash erase --chip --gdb localhost:3333 --algo STM32F4xx_1024.FLM --ram 0x20000000:64K`,
  )
  .action(async (options: CommonOptions & { address?: string; length?: string; chip?: boolean }, command: Command) => {
    const con = start('erase', options);
    await withProject(command, options, con);
    // A destructive command refuses ambiguous input: `--chip --length 4K` must not erase the whole chip.
    if (options.chip && (options.length !== undefined || options.address !== undefined)) {
      throw new UsageError('--chip erases the whole device and cannot be combined with --address or --length: give one or the other');
    }
    if (!options.chip && options.length === undefined) throw new UsageError('Say what to erase: --length LEN [--address ADDR], or --chip');
    const cancel = new Cancellation();
    const address = options.address ? parseNumber(options.address, '--address') : undefined;
    const ctx = await context(options, con, { what: 'erase', ...(address === undefined ? {} : { range: { address, length: 1 } }) });
    const range: MemoryRange | 'chip' = options.chip
      ? 'chip'
      : checkedRange(options.address ? parseNumber(options.address, '--address') : ctx.algorithm.geometry.start, parseLength(options.length!, '--length'), 'erase range');
    // Planned without the target: a range outside the flash is refused before connecting.
    const layout = planRamLayout(ctx.algorithm, ctx.ram, { buffers: 1 });
    const planned = planErase(range, jobTarget(ctx.algorithm, layout, ctx.memoryMapped));
    if (range !== 'chip' && (planned.erased.address !== range.address || planned.erased.length !== range.length)) {
      con.info(`${formatRange(range)} is widened to whole sectors: ${formatRange(planned.erased)} (${planned.sectors} sector${planned.sectors === 1 ? '' : 's'})`);
    }
    const report = await session(ctx, options, cancel, (f) => f.erase(range, { signal: cancel.signal, onProgress: con.progress }));
    if (con.json) {
      emitJSON({ ok: true, command: 'erase', requested: range === 'chip' ? 'chip' : range, erased: report.erased, report, ...said(con) });
    } else safeWrite(process.stderr, summarizeErase(report, range) + '\n');
  });

// verify ----------------------------------------------------------------------

addOutput(addImage(addAlgorithm(addTarget(
  program
    .command('verify')
    .description('check that the flash holds images (over one or more flash regions); lists the differing ranges when it does not (exit 5)')
    .argument('[images...]', 'image files (.bin as FILE@ADDRESS or with --base); none: the images of rspflash.json')
    .addOption(new Option('--verify <how>', 'how to compare (crc: deprecated name of hash)').choices(['auto', 'algo', 'hash', 'read', 'crc']).default('auto')),
))))
  .addHelpText(
    'after',
    `
Examples:
  rspflash verify ext_flash.bin --base 0xC0000000 --board alif-e7-hp --algo Ensemble_IS25WX256.FLM
  rspflash verify app.hex ext_flash.bin@0xC0000000 --device AE722F80F55D5LS --core M55_HP
  rspflash verify app.elf --verify read --gdb localhost:3333 --algo STM32F4xx_1024.FLM --ram 0x20000000:64K`,
  )
  .action(async (files: string[], options: CommonOptions & ImageOptions & { verify: CheckModeFlag }, command: Command) => {
    const con = start('verify', options);
    const project = await withProject(command, options, con);
    const cancel = new Cancellation();
    const targets = await resolveTargets(options, con, { hint: algorithmSource });
    const specs = imageSpecs(files, options, project);
    const image = await readImages(specs);
    const file = specs.map((s) => s.file).join(', ');
    const { mode, note } = checkMode(options.verify, '--verify');
    if (note) con.warn(note);
    if (targets.regions.length > 1) {
      splitImageByRegion(image, targets.regions); // refuses bytes outside every region before connecting
      try {
        const report = await verifyRegions({ ...regionSession(targets, options, con, cancel), image, verify: mode as 'auto' });
        con.done();
        if (con.json) emitJSON({ ok: true, command: 'verify', image: file, images: specs.map((s) => s.file), report: report.totals, regions: report.regions, ...said(con) });
        else safeWrite(process.stderr, summarizeVerify(report.totals) + '\n');
      } finally {
        cancel.borrowed = undefined;
        con.done();
      }
      return;
    }
    const ctx = contextOf(targets, targets.regions[0]!, con, parseTimeout(options.timeout ?? '10000'));
    const layout = planRamLayout(ctx.algorithm, ctx.ram, { buffers: 1 });
    planVerify(image, jobTarget(ctx.algorithm, layout, ctx.memoryMapped), mode as 'auto'); // refuses an image outside the flash before connecting
    const report = await session(ctx, options, cancel, (f) => f.verify(image, { verify: mode as 'auto', signal: cancel.signal, onProgress: con.progress }));
    if (con.json) emitJSON({ ok: true, command: 'verify', image: file, report, ...said(con) });
    else safeWrite(process.stderr, summarizeVerify(report) + '\n');
  });

// read ------------------------------------------------------------------------

addOutput(addAlgorithm(addTarget(
  program
    .command('read')
    .description('read flash (through the algorithm) or, with --memory, any memory-mapped range, into a .bin, .hex or .srec file')
    .argument('<address>', 'first address, e.g. 0xC0000000')
    .argument('<length>', 'bytes to read, e.g. 1M')
    .requiredOption('-o, --output <file>', 'output file; .hex/.ihex and .srec/.s19/.s28/.s37/.mot by name, else raw binary')
    .option('--memory', 'read memory as the core sees it, without a flash algorithm (memory-mapped flash, RAM, registers); needs no --algo'),
)))
  .addHelpText(
    'after',
    `
Examples:
  rspflash read 0xC0000000 1M -o dump.bin --board alif-e7-hp --algo Ensemble_IS25WX256.FLM
  rspflash read 0x08000000 64K -o app.hex --memory --gdb localhost:3333`,
  )
  .action(async (addressText: string, lengthText: string, options: CommonOptions & { output: string; memory?: boolean }, command: Command) => {
    const con = start('read', options);
    await withProject(command, options, con);
    const range = checkedRange(parseNumber(addressText, 'address'), parseLength(lengthText, 'length'), 'read');
    await checkOutputPath(options.output);
    const cancel = new Cancellation();
    let data: Uint8Array;
    if (options.memory) {
      if (range.length > MAX_MEMORY_READ) throw new UsageError(`read --memory takes at most ${formatBytes(MAX_MEMORY_READ)} at once (asked ${formatBytes(range.length)})`);
      data = await readMemory(options, range, con, cancel);
    } else {
      const ctx = await context(options, con, { what: 'read', range });
      const g = ctx.algorithm.geometry;
      const flash = { address: g.start, length: g.size };
      if (range.address < g.start || range.address + range.length > g.start + g.size) {
        throw new UsageError(`${formatRange(range)} is not inside the flash ${formatRange(flash)} of '${ctx.algorithm.name}'`, {
          hint: 'To read other memory (RAM, memory-mapped flash) without a flash algorithm, add --memory.',
        });
      }
      data = await session(ctx, options, cancel, (f) => readInChunks(range, con, cancel.signal, (r) => f.read(r, { signal: cancel.signal })));
    }
    await writeOutput(options.output, range.address, data);
    if (con.json) emitJSON({ ok: true, command: 'read', address: range.address, length: range.length, output: options.output, memory: options.memory === true, ...said(con) });
    else con.info(`Read ${formatBytes(range.length)} at ${formatRange(range)} into ${options.output}`);
  });

/** Reads a range a chunk at a time, with progress and cancellation between chunks. */
async function readInChunks(range: MemoryRange, con: Console, signal: AbortSignal, read: (r: MemoryRange) => Promise<Uint8Array>): Promise<Uint8Array> {
  const out = new Uint8Array(range.length);
  const started = performance.now();
  con.progress({ type: 'phase-start', phase: 'read', total: range.length, unit: 'bytes' });
  for (let done = 0; done < range.length; ) {
    if (signal.aborted) throw new AbortedError('Reading was cancelled; nothing was written to the output file');
    const n = Math.min(READ_CHUNK, range.length - done);
    out.set(await read({ address: range.address + done, length: n }), done);
    done += n;
    con.progress({ type: 'progress', phase: 'read', done, total: range.length, elapsedMs: Math.round(performance.now() - started) });
  }
  con.progress({ type: 'phase-end', phase: 'read', elapsedMs: Math.round(performance.now() - started) });
  return out;
}

/** `read --memory`: a plain GDB memory read, no algorithm loaded; the target is left as it was found (halted by the connect). */
async function readMemory(options: CommonOptions, range: MemoryRange, con: Console, cancel: Cancellation): Promise<Uint8Array> {
  const timeoutMs = parseTimeout(options.timeout ?? '10000');
  const gdb = await connect(options.gdb, { timeoutMs, signal: cancel.signal });
  try {
    con.info(`Connected to ${gdb.server.kind === 'unknown' ? 'a GDB server' : gdb.server.kind} (PacketSize ${gdb.server.packetSize})`);
    return await readInChunks(range, con, cancel.signal, (r) => gdb.readMemory(r.address, r.length));
  } finally {
    con.done();
    await gdb.close().catch(() => undefined);
  }
}

async function writeOutput(path: string, address: number, data: Uint8Array): Promise<void> {
  const image = createImage([{ address, data }]);
  const bytes = /\.(hex|ihex|ihx)$/i.test(path) ? imageToIntelHex(image) : /\.(srec|s19|s28|s37|mot)$/i.test(path) ? imageToSrec(image) : data;
  await writeFile(path, bytes).catch((err: unknown) => {
    throw FileError.fromSystemError(err, path);
  });
}

// plan ------------------------------------------------------------------------

addOutput(addJobOptions(addImage(addAlgorithm(
  program
    .command('plan')
    .description('show what `program` would do (per flash region: sectors, steps, bytes kept or lost) without a target')
    .argument('[images...]', 'image files (.bin as FILE@ADDRESS or with --base); none: the images of rspflash.json')
    .option('--memory-mapped', 'plan for flash that reads at its address (default: from --board, else yes)')
    .option('--no-memory-mapped', 'plan for flash that cannot be read at its address')
    .option('--svg <file>', 'also write the plan as an SVG picture of the flash'),
))))
  .addHelpText(
    'after',
    `
Examples:
  rspflash plan app.hex --algo MyDevice.FLM --ram 0x20000000:64K
  rspflash plan ext_flash.bin --base 0xC0000000 --board alif-e7-hp --algo Ensemble_IS25WX256.FLM --svg plan.svg`,
  )
  .action(async (files: string[], options: CommonOptions & JobFlags & { svg?: string }, command: Command) => {
    const con = start('plan', options);
    const project = await withProject(command, options, con);
    const targets = await resolveTargets(options, con, { hint: algorithmSource, nominalRam, what: "(the plan follows the algorithm's sectors)" });
    const specs = imageSpecs(files, options, project);
    const image = await readImages(specs);
    const file = specs.map((s) => s.file).join(', ');
    if (options.svg !== undefined) await checkOutputPath(options.svg);
    if (targets.regions.length > 1) {
      if (options.svg !== undefined) throw new UsageError('--svg draws one flash region: give --algo FILE for the region to draw');
      const plan = planRegions(image, targets.regions, jobOptions(options, con));
      const lost = lostWarning(plan.lost, '--no-preserve');
      if (lost !== undefined) (options.preserve === false ? con.info : con.warn)(lost);
      return printRegionPlan(plan, specs.map((s) => s.file), con);
    }
    const region = targets.regions[0]!;
    if (!options.ram && !targets.board && !targets.device) con.detail(`No --ram or --board: transfers planned for ${formatBytes(region.ram.size)} of RAM; give --ram for the real run sizes`);
    const ctx = contextOf(targets, region, con, 0);
    const job = planProgramJob(image, ctx.algorithm, { ram: ctx.ram, memoryMapped: ctx.memoryMapped }, jobOptions(options, con));
    await printPlan(ctx, image, job, options, file);
  });

async function printPlan(ctx: Context, image: Image, job: JobPlan, options: JobFlags & { svg?: string; preserve?: boolean }, file: string): Promise<void> {
  warnLost(job, ctx, options.preserve);
  if (options.svg) {
    await writeFile(options.svg, planToSvg(job.layout, { title: `${basename(file)} → ${ctx.algorithm.name}` })).catch((err: unknown) => {
      throw FileError.fromSystemError(err, options.svg);
    });
  }
  if (ctx.con.json) {
    emitJSON({
      ok: true,
      command: 'plan',
      image: file,
      plan: planToJSON(job.layout),
      steps: stepsToJSON(job),
      notes: job.notes,
      lost: job.lost,
      map: planSectorRuns(job.layout),
      ...(options.svg ? { svg: options.svg } : {}),
      ...said(ctx.con),
    });
    return;
  }
  safeWrite(process.stdout, `${formatPlan(job.layout)}\n\nSteps:\n${formatSteps(job)}\n`);
  if (options.svg) ctx.con.info(`Wrote ${options.svg}`);
  void image;
}

// recover ---------------------------------------------------------------------

addOutput(addAlgorithm(addTarget(
  program
    .command('recover')
    .description('restore the bytes a failed or cancelled program run kept in the recovery journal, and nothing else')
    .option('--force', 'restore even where the flash holds neither the journalled bytes nor the erased value (another board, or flash changed since)'),
)))
  .addHelpText(
    'after',
    `
A program run journals the bytes it keeps (parts of touched sectors outside the image) on the host
before it erases them; if the run fails, the next program run restores them first. recover does only
that, with the same --gdb/--algo/--board/--ram (the journal is per server, algorithm and flash range).
It refuses when the flash holds neither the journalled bytes nor the erased value there (another
board, or flash changed since the failed run): --force restores anyway; deleting the file discards it.
An erase of a range drops what the journal kept inside it.

Examples:
  rspflash recover --board alif-e7-hp --algo Ensemble_IS25WX256.FLM`,
  )
  .action(async (options: CommonOptions & { force?: boolean }, command: Command) => {
    const con = start('recover', options);
    await withProject(command, options, con);
    const cancel = new Cancellation();
    const ctx = await context(options, con);
    let ranges: readonly MemoryRange[] = [];
    let journal: string | undefined;
    const onProgress = (event: FlashEvent) => {
      if (event.type === 'recover') ranges = event.ranges;
      con.progress(event);
    };
    const report = await session(ctx, options, cancel, async (f) => {
      journal = f.journal?.path;
      return f.recover({ signal: cancel.signal, onProgress, force: options.force === true });
    });
    if (con.json) {
      emitJSON({ ok: true, command: 'recover', restored: report !== undefined, journal, ranges, ...(report ? { report } : {}), ...said(con) });
    } else if (report === undefined) {
      safeWrite(process.stderr, `Nothing to recover: no journal of kept bytes for '${ctx.algorithm.name}'${journal ? ` (${journal})` : ''}\n`);
    } else {
      safeWrite(
        process.stderr,
        `✔ Restored ${formatBytes(report.bytesRecovered)} from the journal ${journal}: ${ranges.slice(0, 8).map(formatRange).join(', ')}${ranges.length > 8 ? ', …' : ''}\n`,
      );
    }
  });

// info ------------------------------------------------------------------------

addOutput(addAlgorithm(
  program
    .command('info')
    .description('describe a flash algorithm (--algo) and its RAM layout, and with --connect the GDB server and target')
    .option('--connect', 'connect to the GDB server and show what it reports (core registers with -v)')
    .option('--gdb <endpoint>', 'GDB server for --connect', 'localhost:2331')
    .option('--timeout <ms>', 'time the GDB server has to answer one request', '10000'),
))
  .addHelpText(
    'after',
    `
Examples:
  rspflash info --algo Ensemble_IS25WX256.FLM --board alif-e7-hp
  rspflash info --pack AlifSemiconductor.Ensemble.1.3.0.pack --device AE722F80F55D5LS --core M55_HP
  rspflash info --connect --gdb localhost:2331 -v`,
  )
  .action(async (options: CommonOptions & { connect?: boolean }, command: Command) => {
    const con = start('info', options);
    await withProject(command, options, con);
    const packDevice = options.algo === undefined && (options.device !== undefined || options.pack !== undefined || (options.board !== undefined && boardPreset(options.board).pack !== undefined));
    if (!options.algo && !options.connect && !packDevice) {
      throw new UsageError('Say what to describe: --algo FILE (a flash algorithm and its RAM layout), --pack/--device (a device\'s flash regions) and/or --connect (the GDB server and target)');
    }
    const document: Record<string, unknown> = { ok: true, command: 'info' };
    const timeoutMs = parseTimeout(options.timeout ?? '10000');
    if (packDevice) Object.assign(document, await describeDevice(options, con));
    for (const algo of options.algo ?? []) {
      const algorithm = loadAlgorithm(await readInput(algo), { source: algo });
      const board = options.board ? boardPreset(options.board) : undefined;
      const ram = options.ram ? regionOf(parseRam(options.ram)) : board?.ram;
      // One transfer buffer, as the Flasher lays it out.
      const layout = ram ? planRamLayout(algorithm, ram, { buffers: 1 }) : undefined;
      // Which compare/verify/keep path 'auto' gives this algorithm on this board, and why.
      const memoryMapped = options.memoryMapped ?? board?.memoryMapped ?? true;
      const has = (fn: string) => fn in algorithm.functions;
      const paths = checkPaths({ memoryMapped, hasVerify: has('Verify'), hasRead: has('Read'), algorithm: algorithm.name });
      document.algorithm = {
        name: algorithm.name,
        format: algorithm.format,
        deviceType: algorithm.deviceType,
        size: algorithm.blob.length,
        loadAddress: algorithm.loadAddress,
        staticBaseOffset: algorithm.staticBaseOffset,
        functions: algorithm.functions,
        geometry: algorithm.geometry,
        timeouts: algorithm.timeouts,
        ...(layout ? { layout } : {}),
        paths,
      };
      if ((options.algo?.length ?? 0) > 1) ((document.algorithms ??= []) as unknown[]).push(document.algorithm);
      if (!con.json) {
        safeWrite(process.stdout, describeAlgorithm(algorithm) + '\n');
        if (layout) safeWrite(process.stdout, describeLayout(layout) + '\n');
        safeWrite(
          process.stdout,
          [
            `  compare    ${paths.compare.method ?? 'none'}: ${paths.compare.why}`,
            `  verify     ${paths.verify.method ?? 'none'}: ${paths.verify.why}`,
            `  keep       ${paths.keep.possible ? 'yes' : 'no'}: ${paths.keep.why}`,
          ].join('\n') + '\n',
        );
      }
    }
    if (options.connect) {
      const gdb = await connect(options.gdb, { timeoutMs });
      try {
        const registers = gdb.state === 'halted' ? await gdb.readCoreRegisters() : {};
        document.server = {
          kind: gdb.server.kind,
          packetSize: gdb.server.packetSize,
          noAck: gdb.server.noAck,
          features: Object.fromEntries(gdb.server.features),
          stop: gdb.initialStop,
          registers: gdb.registers.map((r) => ({ name: r.name, regnum: r.regnum, bitsize: r.bitsize })),
          values: registers,
          memoryMap: await gdb.memoryMap(),
        };
        if (!con.json) {
          const lines = [
            `GDB server  ${gdb.server.kind} at ${options.gdb}`,
            `  PacketSize ${gdb.server.packetSize}, no-ack ${gdb.server.noAck}, resume by ${DIALECTS[gdb.server.kind].resume}`,
            `  features   ${[...gdb.server.features].map(([k, v]) => (v === true ? k : v === false ? `${k}-` : `${k}=${v}`)).join(' ')}`,
            `  registers  ${gdb.registers.length} (${gdb.registers.slice(0, 20).map((r) => r.name).join(' ')}${gdb.registers.length > 20 ? ' …' : ''})`,
            ...(con.verbose ? Object.entries(registers).map(([name, value]) => `    ${name.padEnd(5)} ${hex32(value)}`) : []),
          ];
          safeWrite(process.stdout, lines.join('\n') + '\n');
        }
      } finally {
        await gdb.close();
      }
    }
    if (con.json) emitJSON({ ...document, ...said(con) });
  });

/** `info --pack/--device`: the device's flash regions, their algorithms and RAM (text on stdout), and the JSON part. */
async function describeDevice(options: CommonOptions, con: Console): Promise<Record<string, unknown>> {
  const targets = await resolveTargets(options, con, { hint: algorithmSource });
  const device = targets.device!;
  const core = device.processor.pname ? ` ${device.processor.pname}` : '';
  const lines = [`Device ${device.name}${core} (${device.family}${device.subFamily ? ` / ${device.subFamily}` : ''}) from ${device.pack.vendor}.${device.pack.name}${device.pack.version ? ` ${device.pack.version}` : ''} (${device.pack.source})`];
  const regions = device.regions.map((region, i) => {
    const used = targets.regions[i]!;
    const layout = planRamLayout(used.algorithm, used.ram);
    lines.push(
      `flash  ${formatRange({ address: region.start, length: region.size })}${region.memory ? ` ${region.memory}` : ''}, ${formatBytes(region.size)}, ${used.memoryMapped ? 'memory mapped' : 'not memory mapped (compare and verify through the algorithm)'}`,
      ...region.algorithms.map((a, j) => `  ${j === 0 ? 'uses   ' : 'also   '}${describeResolvedAlgorithm(a)}`),
      ...describeAlgorithm(used.algorithm).split('\n').map((l) => `    ${l}`),
      ...describeLayout(layout).split('\n').map((l) => `    ${l}`),
    );
    return {
      start: region.start,
      size: region.size,
      ...(region.memory ? { memory: region.memory } : {}),
      memoryMapped: used.memoryMapped,
      ram: used.ram,
      algorithm: { file: region.algorithms[0]!.path, name: used.algorithm.name, geometry: used.algorithm.geometry, layout },
      algorithms: region.algorithms.map((a) => ({ path: a.path, start: a.start, size: a.size, ram: a.ram, ramFrom: a.ramFrom, default: a.default })),
    };
  });
  for (const s of device.skipped) lines.push(`skipped ${s.path}: ${s.reason}`);
  if (!con.json) safeWrite(process.stdout, lines.join('\n') + '\n');
  return {
    device: {
      name: device.name,
      family: device.family,
      ...(device.subFamily ? { subFamily: device.subFamily } : {}),
      processor: device.processor,
      processors: device.processors,
      pack: device.pack,
      regions,
      skipped: device.skipped,
    },
  };
}

// devices ---------------------------------------------------------------------

program
  .command('devices')
  .description('list the devices of a CMSIS pack (--pack), or of the installed packs')
  .argument('[pattern]', 'device name, a part of it, or a pattern with * and ?')
  .option('--pack <file>', 'CMSIS pack: .pack/.zip, unpacked folder or .pdsc (default: the installed packs)')
  .option('--json', 'JSON output')
  .addHelpText(
    'after',
    `
Examples:
  rspflash devices --pack AlifSemiconductor.Ensemble.1.3.0.pack
  rspflash devices 'AE722*'`,
  )
  .action(async (pattern: string | undefined, options: { pack?: string; json?: boolean }) => {
    current.command = 'devices';
    const found: { device: string; family: string; subFamily?: string; processors: string[]; pack: string }[] = [];
    const add = (pack: import('../lib/index.js').CmsisPack) => {
      for (const d of listDevices(pack, pattern)) {
        found.push({
          device: d.name,
          family: d.family,
          ...(d.subFamily ? { subFamily: d.subFamily } : {}),
          processors: d.processors.map((p) => p.pname).filter((n): n is string => n !== undefined),
          pack: `${pack.description.vendor}.${pack.description.name}${pack.description.version ? ` ${pack.description.version}` : ''}`,
        });
      }
    };
    let root: string | undefined;
    if (options.pack !== undefined) add(await openPack(options.pack));
    else {
      root = packRoot({ env: process.env, platform: process.platform, home: homedir() });
      if (root === undefined) throw new UsageError('No pack root to search: give --pack FILE, or set CMSIS_PACK_ROOT');
      const seen = new Set<string>();
      // Newest version of each pack only: older versions repeat the same devices.
      for (const installed of await listInstalledPacks(root)) {
        const id = `${installed.vendor}.${installed.name}`;
        if (seen.has(id)) continue;
        seen.add(id);
        add(await openPack(installed.pdsc));
      }
    }
    if (options.json) return emitJSON({ ok: true, command: 'devices', ...(root ? { root } : {}), devices: found });
    if (found.length === 0) {
      safeWrite(process.stderr, `No device${pattern ? ` matches ${JSON.stringify(pattern)}` : ''} in ${options.pack ?? `the packs installed in ${root}`}\n`);
      return;
    }
    for (const d of found) safeWrite(process.stdout, `${d.device.padEnd(24)} ${d.family}${d.subFamily ? ` / ${d.subFamily}` : ''}${d.processors.length > 1 ? `  cores ${d.processors.join(', ')}` : ''}  (${d.pack})\n`);
  });

// serve (lib/serve, bin/serve.ts) --------------------------------------------

addServeCommand(program);

// boards ----------------------------------------------------------------------

program
  .command('boards')
  .description('list the board presets')
  .option('--json', 'JSON output')
  .action((options: { json?: boolean }) => {
    current.command = 'boards';
    if (options.json) return emitJSON({ ok: true, command: 'boards', boards: BOARDS });
    for (const b of Object.values(BOARDS)) {
      safeWrite(
        process.stdout,
        `${b.name.padEnd(14)} ${b.description}\n${''.padEnd(15)}RAM ${formatRange({ address: b.ram.start, length: b.ram.size })}, flash ${hex32(b.flash.start)}${b.jlinkDevice ? `, J-Link device ${b.jlinkDevice}` : ''}${b.pack ? `, pack device ${b.pack.device}${b.pack.core ? ` ${b.pack.core}` : ''}` : ''}\n${''.padEnd(15)}algorithm: ${algorithmSource(b)}\n`,
      );
    }
  });

// ---------------------------------------------------------------------------

ignoreClosedPipes();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  current.con?.done();
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err.exitCode !== 0 && wantsJson()) {
      emitJSON({ ok: false, ...(current.command ? { command: current.command } : {}), error: { name: 'UsageError', code: 'RSPFLASH_USAGE', message: err.message.replace(/^error: /, '') } });
    }
  } else {
    const e = toRspflashError(err);
    const ranges = e.ranges ?? [];
    if (wantsJson()) {
      const error = errorJSON(err);
      if (ranges.length > 0 && error.ranges === undefined) error.ranges = ranges;
      emitJSON({ ok: false, ...(current.command ? { command: current.command } : {}), error, ...(current.con ? said(current.con) : {}) });
    } else {
      printError(err);
      const lines = riskLines(ranges);
      if (lines.length > 0) safeWrite(process.stderr, lines.join('\n') + '\n');
    }
    process.exitCode = exitCodeOf(err);
  }
}
