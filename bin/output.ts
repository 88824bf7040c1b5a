/**
 * How the CLI talks to people and scripts: a progress bar on a terminal, plain
 * lines otherwise, one JSON document with --json; exit codes by error code.
 */
import cliProgress from 'cli-progress';
import pc from 'picocolors';
import { RspflashError, formatBytes, type FlashEvent, type FlashReport } from '../lib/index.js';

/** Exit codes, documented in `rspflash --help` and the README. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  connection: 3,
  algorithm: 4,
  verify: 5,
  aborted: 130,
} as const;

/** The exit code for an error, by its stable code. */
export function exitCodeOf(err: unknown): number {
  if (!(err instanceof RspflashError)) return (err as { code?: string })?.code === 'commander.error' ? EXIT.usage : EXIT.internal;
  switch (err.code) {
    case 'RSPFLASH_USAGE':
    case 'RSPFLASH_FORMAT':
    case 'RSPFLASH_IMAGE_OVERLAP':
    case 'RSPFLASH_OUT_OF_FLASH':
      return EXIT.usage;
    case 'RSPFLASH_CONNECT_FAILED':
    case 'RSPFLASH_CONNECTION_CLOSED':
    case 'RSPFLASH_RSP_TIMEOUT':
    case 'RSPFLASH_PROTOCOL':
    case 'RSPFLASH_SERVER_ERROR':
    case 'RSPFLASH_UNSUPPORTED':
    case 'RSPFLASH_TARGET_STATE':
    case 'RSPFLASH_REPLY_FORMAT':
      return EXIT.connection;
    case 'RSPFLASH_VERIFY_FAILED':
      return EXIT.verify;
    case 'RSPFLASH_ABORTED':
      return EXIT.aborted;
    default:
      return EXIT.algorithm;
  }
}

/** Output mode chosen from the flags and the terminal. */
export interface Output {
  json: boolean;
  verbose: boolean;
  /** Informational line (stderr; suppressed in JSON mode). */
  info(text: string): void;
  /** Progress listener for flash operations. */
  progress: (event: FlashEvent) => void;
  /** Stops any progress bar. */
  done(): void;
}

const PHASE_LABEL: Record<string, string> = {
  compare: 'Comparing',
  read: 'Reading back',
  erase: 'Erasing',
  program: 'Programming',
  verify: 'Verifying',
};

export function createOutput(options: { json?: boolean; verbose?: boolean; quiet?: boolean }): Output {
  const json = options.json === true;
  const tty = process.stderr.isTTY === true && !json && !options.quiet;
  const quiet = json || options.quiet === true;
  let bar: cliProgress.SingleBar | undefined;
  let lastPlainPercent = -1;
  const info = (text: string) => {
    if (!quiet) process.stderr.write(text + '\n');
  };
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  const progress = (event: FlashEvent) => {
    if (quiet) return;
    switch (event.type) {
      case 'phase-start': {
        const label = PHASE_LABEL[event.phase] ?? event.phase;
        const unit = event.unit === 'bytes' ? formatBytes(event.total) : `${event.total} sectors`;
        if (tty) {
          bar = new cliProgress.SingleBar(
            { format: `${label.padEnd(13)} {bar} {percentage}% | ${unit} | {duration_formatted}`, hideCursor: true, stream: process.stderr },
            cliProgress.Presets.shades_classic,
          );
          bar.start(event.total, 0);
        } else {
          lastPlainPercent = -1;
          info(`${label} ${unit}`);
        }
        break;
      }
      case 'progress':
        if (bar) bar.update(event.done);
        else if (options.verbose) {
          const percent = Math.floor((event.done / Math.max(1, event.total)) * 10) * 10;
          if (percent !== lastPlainPercent) {
            lastPlainPercent = percent;
            info(`  ${percent}% (${event.elapsedMs} ms)`);
          }
        }
        break;
      case 'phase-end':
        stopBar();
        break;
      case 'skip':
        if (event.sectors > 0) info(pc.dim(`Skipping ${event.sectors} unchanged sector(s) (${formatBytes(event.bytes)})`));
        break;
      case 'failed':
        stopBar();
        break;
      default:
        break;
    }
  };
  return { json, verbose: options.verbose === true, info, progress, done: stopBar };
}

/** A one-line human summary of a report. */
export function summarize(verb: string, report: FlashReport): string {
  const seconds = report.durationMs / 1000;
  const rate = report.bytesProgrammed > 0 && seconds > 0 ? `, ${(report.bytesProgrammed / seconds / 1e6).toFixed(2)} MB/s` : '';
  const parts = [
    report.bytesProgrammed > 0 ? `programmed ${formatBytes(report.bytesProgrammed)}` : undefined,
    report.chipErase ? 'chip erased' : report.sectorsErased > 0 ? `erased ${report.sectorsErased} sector(s)` : undefined,
    report.sectorsSkipped > 0 ? `${report.sectorsSkipped} sector(s) unchanged` : undefined,
    report.bytesKept > 0 ? `kept ${formatBytes(report.bytesKept)}` : undefined,
    report.verify !== 'none' ? `verified (${report.verify})` : undefined,
  ].filter(Boolean);
  return `${pc.green('✔')} ${verb}: ${parts.join(', ') || 'nothing to do'} in ${seconds.toFixed(2)} s${rate}`;
}

/** Prints an error for people: message, then what to do. */
export function printError(err: unknown): void {
  if (err instanceof RspflashError) {
    process.stderr.write(`${pc.red('✖')} ${err.message}\n`);
    if (err.hint) process.stderr.write(`  ${pc.dim(err.hint)}\n`);
    return;
  }
  process.stderr.write(`${pc.red('✖')} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

/** The JSON form of an error. */
export function errorJSON(err: unknown): Record<string, unknown> {
  if (err instanceof RspflashError) return err.toJSON();
  return { name: 'Error', code: 'RSPFLASH_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}
