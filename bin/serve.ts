/**
 * `rspflash serve`: the flash-adding GDB proxy (lib/serve) as a command. All
 * its logic lives in lib/serve; this file turns flags into `serve()` options,
 * prints the log, and runs until a signal or until the upstream link is lost.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { BOARDS, UsageError, loadAlgorithm, type FlashAlgorithm } from '../lib/index.js';
import { HANDLED_PACKETS, serve } from '../lib/serve/index.js';
import { parseRam, parseTimeout } from './args.js';
import { safeWrite } from './progress.js';

interface ServeFlags {
  gdb: string;
  listen: string;
  algo: string[];
  board?: string;
  ram?: string;
  memoryMapped?: boolean;
  timeout: string;
  journalDir?: string;
  verbose?: boolean;
  quiet?: boolean;
}

/**
 * Adds the `serve` command to the CLI's program.
 *
 * @example
 * ```ts
 * addServeCommand(program); // rspflash serve --gdb localhost:2331 --listen 3333 --algo A.FLM --board alif-e7-hp
 * ```
 */
export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('a GDB proxy that adds flash: debuggers connect to it, it forwards to the GDB server and programs the flash with the algorithm on gdb load')
    .option('--gdb <endpoint>', 'the GDB server to forward to: host:port, :port, or unix:/path', 'localhost:2331')
    .option('--listen <[host:]port>', 'where debuggers connect (host defaults to 127.0.0.1), or unix:/path', '3333')
    .option('--algo <file>', 'flash algorithm (repeat for several flash devices): CMSIS .FLM, SEGGER loader ELF, probe-rs YAML', (v: string, all: string[]) => [...all, v], [])
    .option('--board <name>', `board preset for RAM and memory-mapped (${Object.keys(BOARDS).join(', ')})`)
    .option('--ram <addr:size>', 'RAM the algorithm may use, e.g. 0x20000000:64K (overrides the board)')
    .option('--memory-mapped', 'the flash reads at its address while the algorithm runs (default: from --board, else yes)')
    .option('--no-memory-mapped', 'the flash cannot be read at its address while the algorithm runs')
    .option('--timeout <ms>', 'time the GDB server has to answer a forwarded request', '30000')
    .option('--journal-dir <dir>', 'folder of the recovery journal of kept bytes')
    .addOption(new Option('-v, --verbose', 'print each client, each flash job with its plan and figures').conflicts('quiet'))
    .option('-q, --quiet', 'print only errors')
    .addHelpText(
      'after',
      `
Then, in gdb: target extended-remote localhost:3333, load (flash sections are programmed with the algorithm).
cortex-debug: "servertype": "external", "gdbTarget": "localhost:3333".
RSPFLASH_DEBUG=proxy shows every packet on both sides.
The proxy answers itself: ${HANDLED_PACKETS.join(', ')}.

Examples:
  rspflash serve --gdb localhost:2331 --listen 3333 --algo Ensemble_IS25WX256.FLM --board alif-e7-hp
  rspflash serve --gdb localhost:3333 --listen 4444 --algo STM32F4xx_1024.FLM --ram 0x20000000:64K -v`,
    )
    .action(async (flags: ServeFlags) => {
      if (flags.algo.length === 0) {
        throw new UsageError('--algo FILE is required (once per flash device): the proxy programs flash with it', { hint: 'See rspflash serve --help.' });
      }
      const algorithms: FlashAlgorithm[] = [];
      for (const file of flags.algo) algorithms.push(loadAlgorithm(await readFile(file), { source: file }));
      const ram = flags.ram === undefined ? undefined : parseRam(flags.ram);
      if (ram === undefined && flags.board === undefined) {
        throw new UsageError('Where may the algorithm run? Give --ram ADDR:SIZE (RAM the core can execute from) or --board NAME');
      }
      const say = (line: string) => safeWrite(process.stderr, `${line}\n`);
      const important = /listening|failed|lost|refused|outside|discarded|kept|could not/;
      const proxy = await serve({
        upstream: flags.gdb,
        listen: flags.listen,
        algorithms,
        ...(ram === undefined ? {} : { ram }),
        ...(flags.board === undefined ? {} : { board: flags.board }),
        ...(flags.memoryMapped === undefined ? {} : { memoryMapped: flags.memoryMapped }),
        ...(flags.journalDir === undefined ? {} : { journal: { dir: flags.journalDir } }),
        requestTimeoutMs: parseTimeout(flags.timeout),
        onLog: (line) => {
          if (flags.quiet) return;
          if (flags.verbose || important.test(line)) say(line);
        },
      });
      if (!flags.quiet) say(`rspflash serve: gdb → ${proxy.address} → ${flags.gdb} (Ctrl-C to stop)`);
      const stop = new Promise<'signal'>((resolve) => {
        for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(name, () => resolve('signal'));
      });
      const outcome = await Promise.race([proxy.done, stop]);
      if (outcome === 'signal') {
        await proxy.close();
        if (!flags.quiet) say('rspflash serve: stopped; the target is left halted');
        return;
      }
      if (outcome !== undefined) throw outcome;
    });
}
