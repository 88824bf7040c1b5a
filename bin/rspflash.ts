#!/usr/bin/env node
/**
 * rspflash command line: a thin shell over the library (lib/index.ts).
 * Argument parsing, progress output, --json and exit codes; no flashing logic.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import {
  BOARDS,
  DIALECTS,
  Flasher,
  UsageError,
  AbortedError,
  boardPreset,
  connect,
  describeAlgorithm,
  describeLayout,
  formatPlan,
  hex32,
  imageEnd,
  imageStart,
  imageSize,
  imageToIntelHex,
  imageToSrec,
  loadAlgorithm,
  loadImage,
  planRamLayout,
  planToJSON,
  planProgram,
  planToSvg,
  planSectorRuns,
  createImage,
  type BoardPreset,
  type FlashAlgorithm,
  type GdbClient,
  type Image,
  type RamRegion,
} from '../lib/index.js';
import { EXIT, createOutput, errorJSON, exitCodeOf, printError, summarize, type Output } from './output.js';

const VERSION: string = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8').catch(() => readFile(new URL('../package.json', import.meta.url), 'utf8'))).version;

/** Parses `0x1000`, `4096`, `64K`, `1M`. */
function parseNumber(text: string, what: string): number {
  const m = /^(0x[0-9a-f]+|\d+)([kKmM]?)$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what}: '${text}' is not a number (use 0x…, decimal, or a K/M suffix)`);
  const base = Number(m[1]);
  const scale = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1 << 20;
  return base * scale;
}

function parseRam(text: string): RamRegion {
  const [start, size] = text.split(':');
  if (start === undefined || size === undefined) throw new UsageError(`--ram '${text}': use ADDR:SIZE, e.g. 0x20000000:0x20000`);
  return { start: parseNumber(start, '--ram address'), size: parseNumber(size, '--ram size') };
}

interface CommonOptions {
  gdb: string;
  algo?: string;
  board?: string;
  ram?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  reset?: boolean;
  after?: 'halt' | 'run' | 'reset';
  timeout?: string;
  memoryMapped?: boolean;
}

interface Context {
  out: Output;
  board: BoardPreset | undefined;
  algorithm: FlashAlgorithm;
  ram: RamRegion;
}

async function context(options: CommonOptions, needsRam = true): Promise<Context> {
  const out = createOutput(options);
  const board = options.board ? boardPreset(options.board) : undefined;
  if (!options.algo) {
    throw new UsageError('--algo FILE is required: a CMSIS .FLM, a SEGGER flash loader ELF, or a probe-rs target YAML', {
      hint: board ? `For ${board.name}: ${board.algorithm}` : 'See rspflash program --help.',
    });
  }
  const algorithm = loadAlgorithm(await readFile(options.algo), options.algo);
  const ram = options.ram ? parseRam(options.ram) : (board?.ram ?? (needsRam ? undefined : { start: 0, size: 0 }));
  if (!ram) throw new UsageError('Where may the algorithm run? Give --ram ADDR:SIZE (RAM the core can execute from) or --board NAME');
  return { out, board, algorithm, ram };
}

async function readImage(file: string, base: string | undefined): Promise<Image> {
  return loadImage(await readFile(file), { source: file, ...(base === undefined ? {} : { base: parseNumber(base, '--base') }) });
}

/** Connects, optionally resets, runs `body` with a Flasher, then leaves the target as asked. */
async function withFlasher<T>(options: CommonOptions, ctx: Context, signal: AbortSignal, body: (flasher: Flasher, gdb: GdbClient) => Promise<T>): Promise<T> {
  const gdb = await connect(options.gdb, options.timeout ? { timeoutMs: parseNumber(options.timeout, '--timeout') } : {});
  let succeeded = false;
  try {
    ctx.out.info(`Connected to ${gdb.server.kind === 'unknown' ? 'a GDB server' : gdb.server.kind} at ${options.gdb} (PacketSize ${gdb.server.packetSize})`);
    if (options.reset) {
      const command = gdb.server.dialect.resetHaltCommand;
      if (!command) throw new UsageError(`--reset: no known reset command for this server (${gdb.server.kind})`);
      await gdb.monitor(command);
    }
    const flasher = await Flasher.create(gdb, ctx.algorithm, {
      ram: ctx.ram,
      memoryMapped: options.memoryMapped ?? ctx.board?.memoryMapped ?? true,
    });
    if (ctx.out.verbose) ctx.out.info(describeLayout(flasher.runner.layout));
    let result: T;
    try {
      if (signal.aborted) throw new AbortedError('Cancelled before flashing started; the target is halted');
      result = await body(flasher, gdb);
    } catch (err) {
      // The operation's own error is what the user needs; a failure to restore afterwards is secondary.
      ctx.out.done();
      await flasher.close().catch(() => undefined);
      throw err;
    }
    ctx.out.done();
    await flasher.close();
    if (options.after === 'reset') {
      const command = gdb.server.dialect.resetRunCommand ?? gdb.server.dialect.resetHaltCommand;
      if (!command) throw new UsageError(`--after reset: no known reset command for this server (${gdb.server.kind}); the target is left halted`);
      await gdb.monitor(command);
    }
    succeeded = true;
    // Resuming is part of the job when asked for: a failure to resume is reported, not swallowed.
    await gdb.close({ resume: options.after === 'run' || options.after === 'reset' });
    return result;
  } finally {
    if (!succeeded) await gdb.close().catch(() => undefined);
  }
}

function addCommon(cmd: Command, needsTarget = true): Command {
  if (needsTarget) {
    cmd
      .option('--gdb <host:port>', 'GDB server to use (host:port, or unix:/path)', 'localhost:2331')
      .option('--reset', 'reset and halt the target before flashing (monitor reset)')
      .addOption(new Option('--after <state>', 'leave the target halted, running, or reset and running').choices(['halt', 'run', 'reset']).default('halt'))
      .option('--timeout <ms>', 'time the GDB server has to answer one request', '10000')
      // Both forms defined, so commander leaves the value undefined unless given and the board's setting applies.
      .option('--memory-mapped', 'the flash reads at its address while the algorithm runs (default: from --board, else yes)')
      .option('--no-memory-mapped', 'the flash cannot be read at its address while the algorithm runs (compare and verify through the algorithm)');
  }
  return cmd
    .option('--algo <file>', 'flash algorithm: CMSIS .FLM, SEGGER flash loader ELF, or probe-rs target YAML')
    .option('--board <name>', `board preset (${Object.keys(BOARDS).join(', ')})`)
    .option('--ram <addr:size>', 'RAM the algorithm may use for code, stack and buffers (overrides the board)')
    .option('--json', 'print one JSON document on stdout instead of human output')
    .option('-v, --verbose', 'more detail (layout, decisions); RSPFLASH_DEBUG=rsp,gdb,algo,flash shows every packet')
    .option('-q, --quiet', 'no progress output');
}

function emitJSON(document: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(document, null, 2) + '\n');
}

const program = new Command('rspflash')
  .version(VERSION)
  .description('Program the flash of Arm Cortex-M targets through any GDB server (J-Link, OpenOCD, pyOCD, QEMU).')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    `
Examples:
  # Alif Ensemble E7 DevKit OSPI flash through SEGGER's GDB server
  JLinkGDBServerCLExe -device AE722F80F55D5_HP -if JTAG -speed 4000 -port 2331
  rspflash program ext_flash.bin --base 0xC0000000 --board alif-e7-hp --algo Ensemble_IS25WX256.FLM

  # See what would happen first (no target needed)
  rspflash plan app.hex --algo MyDevice.FLM --ram 0x20000000:0x10000

  # Any GDB server, any algorithm, JSON for scripts
  rspflash program app.elf --gdb localhost:3333 --algo STM32F4xx_1024.FLM --ram 0x20000000:0x10000 --json

Exit codes:
  0 success   2 bad usage or input file   3 GDB server or connection
  4 flash algorithm failed   5 verify failed   130 cancelled (Ctrl-C)`,
  )
  .exitOverride();

addCommon(
  program
    .command('program')
    .description('erase, program and verify an image (.bin/.hex/.srec/.elf); sectors that already hold it are left alone')
    .argument('<image>', 'image file: .bin (needs --base), Intel HEX, S-record or ELF')
    .option('--base <addr>', 'load address of a .bin image, e.g. 0xC0000000')
    .addOption(new Option('--verify <how>', 'how to check the result').choices(['auto', 'algo', 'crc', 'read', 'none']).default('auto'))
    .option('--no-skip', 'program every touched sector even when it already holds the image')
    .option('--preserve', 'keep bytes of touched sectors outside the image (default when the flash can be read)')
    .option('--no-preserve', 'let bytes of touched sectors outside the image be erased')
    .addOption(new Option('--chip-erase <when>', 'erase the whole chip instead of sectors').choices(['auto', 'always', 'never']).default('auto'))
    .option('--dry-run', 'print the plan and stop (same as `rspflash plan`)')
    .option('--svg <file>', 'with --dry-run: also write the plan as an SVG picture of the flash'),
).action(async (file: string, options: CommonOptions & { base?: string; verify: 'auto'; skip: boolean; preserve?: boolean; chipErase: 'auto'; dryRun?: boolean; svg?: string }) => {
  const ctx = await context(options);
  const image = await readImage(file, options.base);
  const signal = cancelOnSigint();
  if (options.dryRun) return printPlan(ctx, image, options, file);
  const preserve = options.preserve;
  // Plan first, without the target: an image outside the flash is refused before anything is touched.
  const readable = (options.memoryMapped ?? ctx.board?.memoryMapped ?? true) || ctx.algorithm.functions.Read !== undefined;
  planProgram(image, ctx.algorithm, { readable, ...(preserve === undefined ? {} : { preserve }), chipErase: options.chipErase });
  ctx.out.info(`${basename(file)}: ${imageSize(image)} bytes at ${hex32(imageStart(image) ?? 0)}..${hex32((imageEnd(image) ?? 1) - 1)} → ${ctx.algorithm.name}`);
  const report = await withFlasher(options, ctx, signal, (f) =>
    f.program(image, {
      verify: options.verify,
      skipUnchanged: options.skip,
      ...(preserve === undefined ? {} : { preserve }),
      chipErase: options.chipErase,
      signal,
      onProgress: ctx.out.progress,
    }),
  );
  if (ctx.out.json) emitJSON({ ok: true, command: 'program', image: file, report });
  else process.stderr.write(summarize('Done', report) + '\n');
});

addCommon(
  program
    .command('erase')
    .description('erase sectors covering a range, or the whole chip')
    .option('--address <addr>', 'start of the range (default: the start of the flash)')
    .option('--length <bytes>', 'length of the range, e.g. 64K')
    .option('--chip', 'erase the whole device (EraseChip, or every sector)'),
).action(async (options: CommonOptions & { address?: string; length?: string; chip?: boolean }) => {
  const ctx = await context(options);
  const signal = cancelOnSigint();
  if (!options.chip && !options.length) throw new UsageError('Say what to erase: --length LEN [--address ADDR], or --chip');
  const range = options.chip
    ? ('chip' as const)
    : { address: options.address ? parseNumber(options.address, '--address') : ctx.algorithm.geometry.start, length: parseNumber(options.length!, '--length') };
  const report = await withFlasher(options, ctx, signal, (f) => f.erase(range, { signal, onProgress: ctx.out.progress }));
  if (ctx.out.json) emitJSON({ ok: true, command: 'erase', report });
  else process.stderr.write(summarize('Erased', report) + '\n');
});

addCommon(
  program
    .command('verify')
    .description('check that flash holds an image')
    .argument('<image>', 'image file')
    .option('--base <addr>', 'load address of a .bin image')
    .addOption(new Option('--verify <how>', 'how to compare').choices(['auto', 'algo', 'crc', 'read']).default('auto')),
).action(async (file: string, options: CommonOptions & { base?: string; verify: 'auto' }) => {
  const ctx = await context(options);
  const image = await readImage(file, options.base);
  const signal = cancelOnSigint();
  const report = await withFlasher(options, ctx, signal, (f) => f.verify(image, { verify: options.verify, signal, onProgress: ctx.out.progress }));
  if (ctx.out.json) emitJSON({ ok: true, command: 'verify', image: file, report });
  else process.stderr.write(summarize('Verified', report) + '\n');
});

addCommon(
  program
    .command('read')
    .description('read flash into a file (.bin, .hex or .srec by the output name)')
    .argument('<address>', 'first address, e.g. 0xC0000000')
    .argument('<length>', 'bytes to read, e.g. 1M')
    .requiredOption('-o, --output <file>', 'output file'),
).action(async (addressText: string, lengthText: string, options: CommonOptions & { output: string }) => {
  const ctx = await context(options);
  const address = parseNumber(addressText, 'address');
  const length = parseNumber(lengthText, 'length');
  const signal = cancelOnSigint();
  const data = await withFlasher(options, ctx, signal, (f) => f.read(address, length));
  const image = createImage([{ address, data }]);
  const out = /\.(hex|ihex|ihx)$/i.test(options.output)
    ? imageToIntelHex(image)
    : /\.(srec|s19|s28|s37|mot)$/i.test(options.output)
      ? imageToSrec(image)
      : data;
  await writeFile(options.output, out);
  if (ctx.out.json) emitJSON({ ok: true, command: 'read', address, length, output: options.output });
  else ctx.out.info(`Read ${length} bytes at ${hex32(address)} into ${options.output}`);
});

addCommon(
  program
    .command('plan')
    .description('show what `program` would do (sectors to erase, pages to program, bytes to keep) without a target')
    .argument('<image>', 'image file')
    .option('--base <addr>', 'load address of a .bin image')
    .option('--preserve', 'plan to keep bytes of touched sectors outside the image')
    .option('--no-preserve', 'plan as if bytes outside the image may be erased')
    .option('--memory-mapped', 'plan for flash that reads at its address (default: from --board, else yes)')
    .option('--no-memory-mapped', 'plan for flash that cannot be read at its address (no bytes kept)')
    .option('--svg <file>', 'also write the plan as an SVG picture of the flash')
    .addOption(new Option('--chip-erase <when>', 'chip erase decision').choices(['auto', 'always', 'never']).default('auto')),
  false,
).action(async (file: string, options: CommonOptions & { base?: string; preserve?: boolean; chipErase: 'auto'; svg?: string }) => {
  const ctx = await context(options, false);
  await printPlan(ctx, await readImage(file, options.base), options, file);
});

addCommon(
  program
    .command('info')
    .description('describe a flash algorithm (--algo), and with --connect the GDB server and target')
    .option('--connect', 'also connect to the GDB server and show what it reports')
    .option('--gdb <host:port>', 'GDB server to use', 'localhost:2331'),
  false,
).action(async (options: CommonOptions & { connect?: boolean }) => {
  const out = createOutput(options);
  const document: Record<string, unknown> = { ok: true, command: 'info' };
  if (options.algo) {
    const algorithm = loadAlgorithm(await readFile(options.algo), options.algo);
    const board = options.board ? boardPreset(options.board) : undefined;
    const ram = options.ram ? parseRam(options.ram) : board?.ram;
    const layout = ram ? planRamLayout(algorithm, ram) : undefined;
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
    };
    if (!out.json) {
      process.stdout.write(describeAlgorithm(algorithm) + '\n');
      if (layout) process.stdout.write(describeLayout(layout) + '\n');
    }
  }
  if (options.connect || !options.algo) {
    const gdb = await connect(options.gdb);
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
      if (!out.json) {
        const lines = [
          `GDB server  ${gdb.server.kind} at ${options.gdb}`,
          `  PacketSize ${gdb.server.packetSize}, no-ack ${gdb.server.noAck}, resume by ${DIALECTS[gdb.server.kind].resume}`,
          `  features   ${[...gdb.server.features].map(([k, v]) => (v === true ? k : v === false ? `${k}-` : `${k}=${v}`)).join(' ')}`,
          `  registers  ${gdb.registers.length} (${gdb.registers.slice(0, 20).map((r) => r.name).join(' ')}${gdb.registers.length > 20 ? ' …' : ''})`,
          ...Object.entries(registers).map(([name, value]) => `    ${name.padEnd(5)} ${hex32(value)}`),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      }
    } finally {
      await gdb.close();
    }
  }
  if (out.json) emitJSON(document);
});

program
  .command('boards')
  .description('list the board presets')
  .option('--json', 'JSON output')
  .action((options: { json?: boolean }) => {
    if (options.json) return emitJSON({ ok: true, command: 'boards', boards: BOARDS });
    for (const b of Object.values(BOARDS)) {
      process.stdout.write(
        `${b.name.padEnd(14)} ${b.description}\n${''.padEnd(15)}RAM ${hex32(b.ram.start)}+0x${b.ram.size.toString(16)}, flash ${hex32(b.flash.start)}${b.jlinkDevice ? `, J-Link device ${b.jlinkDevice}` : ''}\n`,
      );
    }
  });

async function printPlan(
  ctx: Context,
  image: Image,
  options: CommonOptions & { preserve?: boolean; chipErase?: 'auto' | 'always' | 'never'; svg?: string },
  file: string,
): Promise<void> {
  // The plan needs no target: a pure function of the image and the algorithm's geometry.
  const readable = options.memoryMapped ?? ctx.board?.memoryMapped ?? true;
  const plan = planProgram(image, ctx.algorithm, {
    readable: readable || ctx.algorithm.functions.Read !== undefined,
    ...(options.preserve === undefined ? {} : { preserve: options.preserve }),
    chipErase: options.chipErase ?? 'auto',
  });
  if (options.svg) await writeFile(options.svg, planToSvg(plan, { title: `${basename(file)} → ${ctx.algorithm.name}` }));
  if (ctx.out.json) emitJSON({ ok: true, command: 'plan', image: file, plan: planToJSON(plan), map: planSectorRuns(plan), ...(options.svg ? { svg: options.svg } : {}) });
  else {
    process.stdout.write(formatPlan(plan) + '\n');
    if (options.svg) ctx.out.info(`Wrote ${options.svg}`);
  }
}

/** First Ctrl-C cancels between calls (UnInit still runs, target left halted); a second one exits at once. */
function cancelOnSigint(): AbortSignal {
  const controller = new AbortController();
  let count = 0;
  process.on('SIGINT', () => {
    count++;
    if (count === 1) {
      process.stderr.write('\nCancelling after the current call (Ctrl-C again to quit at once)…\n');
      controller.abort();
    } else process.exit(EXIT.aborted);
  });
  return controller.signal;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    const wantsJson = process.argv.includes('--json');
    if (wantsJson) emitJSON({ ok: false, error: errorJSON(err) });
    else printError(err);
    process.exitCode = exitCodeOf(err);
  }
}
