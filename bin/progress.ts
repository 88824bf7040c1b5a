/**
 * Progress of a flash operation as people and scripts want it: a bar with
 * rate and ETA on a terminal, a line per phase in logs, JSON lines on stderr
 * for IDE tasks (`--progress json`), or nothing. Also the CLI's one place for
 * informational and warning lines, so `--json` keeps stdout to one document.
 */
import cliProgress from 'cli-progress';
import pc from 'picocolors';
import { formatBytes, formatRange, type FlashEvent, type FlashPhase } from '../lib/index.js';
import { errorJSON } from './output.js';

/** How progress is shown: `auto` is a bar on a terminal, lines otherwise. */
export type ProgressMode = 'auto' | 'bar' | 'plain' | 'json' | 'none';

/** What people call each phase. */
export const PHASE_LABEL: Readonly<Record<FlashPhase, string>> = {
  compare: 'Comparing',
  read: 'Reading',
  erase: 'Erasing',
  // Sectors are erased and programmed run by run in this phase; people call that programming.
  write: 'Programming',
  verify: 'Verifying',
};

/** `1 sector`, `16 sectors`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** What a phase covers: `64 KiB` or `16 sectors`. */
export function phaseAmount(total: number, unit: 'bytes' | 'sectors'): string {
  return unit === 'bytes' ? formatBytes(total) : plural(total, 'sector');
}

/** A rate for the bar: `1.25 MB/s`, `310 KB/s`, `12.0 sectors/s`; empty until there is something to measure. */
export function formatRate(done: number, elapsedMs: number, unit: 'bytes' | 'sectors'): string {
  if (!(elapsedMs > 0) || done <= 0) return '';
  const perSecond = (done / elapsedMs) * 1000;
  if (unit === 'sectors') return `${perSecond.toFixed(perSecond < 10 ? 1 : 0)} sectors/s`;
  return perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} MB/s` : `${Math.round(perSecond / 1e3)} KB/s`;
}

/** Time left at the rate so far: `ETA 12s`, `ETA 3m05s`; empty when unknown. */
export function formatEta(done: number, total: number, elapsedMs: number): string {
  if (!(elapsedMs > 0) || done <= 0 || done >= total) return '';
  const seconds = Math.round(((total - done) * elapsedMs) / done / 1000);
  return seconds < 60 ? `ETA ${seconds}s` : `ETA ${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/**
 * A flash event as one JSON line for `--progress json`: the big parts (the
 * plan's sector data) reduced to figures.
 */
export function eventJSON(event: FlashEvent): Record<string, unknown> {
  switch (event.type) {
    case 'plan':
      return { type: 'plan', totals: event.job.totals, notes: event.job.notes, lost: event.job.lost.map(formatRange) };
    case 'replan':
      return { type: 'replan', totals: event.job.totals, notes: event.notes };
    case 'recover':
      return { type: 'recover', journal: event.journal, ranges: event.ranges.map(formatRange) };
    case 'failed':
      return { type: 'failed', error: errorJSON(event.error) };
    default:
      return { ...event };
  }
}

/** The CLI's output channel for one command. */
export interface Console {
  /** `--json`: stdout carries one JSON document, nothing else. */
  readonly json: boolean;
  readonly verbose: boolean;
  /** An informational line on stderr (not with --json or -q); kept for the JSON document's `info`. */
  info(text: string): void;
  /** A warning on stderr (also with -q, not with --json); kept for the JSON document's `warnings`. */
  warn(text: string): void;
  /** A line only with -v. */
  detail(text: string): void;
  /** Listener for the library's progress events. */
  progress: (event: FlashEvent) => void;
  /** Stops a progress bar (before an error is printed). */
  done(): void;
  /** Info lines so far (for --json). */
  readonly infoLines: readonly string[];
  /** Warnings so far (for --json). */
  readonly warnings: readonly string[];
}

/** Writes to a stream unless it is gone (a closed pipe: `rspflash … | head -1`). */
export function safeWrite(stream: NodeJS.WriteStream, text: string): void {
  if (stream.destroyed || !stream.writable) return;
  stream.write(text);
}

/** Options of {@link createConsole}, as the CLI's flags give them. */
export interface ConsoleOptions {
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  progress?: ProgressMode;
}

/** The output channel for the flags given and the terminal the CLI runs in. */
export function createConsole(options: ConsoleOptions): Console {
  const json = options.json === true;
  const quiet = options.quiet === true;
  const verbose = options.verbose === true && !quiet;
  const requested = options.progress ?? 'auto';
  const mode: ProgressMode =
    requested === 'json' ? 'json' : quiet || json || requested === 'none' ? 'none' : requested === 'auto' ? (process.stderr.isTTY ? 'bar' : 'plain') : requested;
  const infoLines: string[] = [];
  const warnings: string[] = [];
  let bar: cliProgress.SingleBar | undefined;
  let unit: 'bytes' | 'sectors' = 'bytes';
  let lastPercent = -1;
  const err = (text: string) => safeWrite(process.stderr, text + '\n');
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  const info = (text: string) => {
    infoLines.push(text);
    if (!json && !quiet) {
      stopBar();
      err(text);
    }
  };
  const warn = (text: string) => {
    warnings.push(text);
    if (!json) {
      stopBar();
      err(`${pc.yellow('!')} ${text}`);
    }
  };
  const detail = (text: string) => {
    if (verbose && !json) err(pc.dim(text));
  };

  const progress = (event: FlashEvent) => {
    if (mode === 'json') {
      // Progress lines at most once per percent: an IDE needs no more, and a 32 MiB compare has thousands of blocks.
      if (event.type === 'progress') {
        const percent = Math.floor((event.done / Math.max(1, event.total)) * 100);
        if (percent === lastPercent && event.done < event.total) return;
        lastPercent = percent;
      } else if (event.type === 'phase-start') lastPercent = -1;
      err(JSON.stringify(eventJSON(event)));
      return;
    }
    switch (event.type) {
      case 'phase-start': {
        unit = event.unit;
        const label = `${PHASE_LABEL[event.phase]} ${phaseAmount(event.total, event.unit)}`;
        lastPercent = -1;
        if (mode === 'bar') {
          stopBar();
          bar = new cliProgress.SingleBar(
            { format: `${label.padEnd(24)} {bar} {percentage}% | {rate} {eta}`, hideCursor: true, stream: process.stderr },
            cliProgress.Presets.shades_classic,
          );
          bar.start(event.total, 0, { rate: '', eta: '' });
        } else if (mode === 'plain') err(label);
        break;
      }
      case 'progress':
        if (bar) bar.update(event.done, { rate: formatRate(event.done, event.elapsedMs, unit), eta: formatEta(event.done, event.total, event.elapsedMs) });
        else if (mode === 'plain' && verbose) {
          const percent = Math.floor((event.done / Math.max(1, event.total)) * 10) * 10;
          if (percent !== lastPercent) {
            lastPercent = percent;
            err(`  ${percent}% ${formatRate(event.done, event.elapsedMs, unit)} ${formatEta(event.done, event.total, event.elapsedMs)}`.trimEnd());
          }
        }
        break;
      case 'phase-end':
        stopBar();
        break;
      case 'skip':
        if (mode !== 'none') err(pc.dim(`Skipping ${plural(event.sectors, 'unchanged sector')} (${formatBytes(event.bytes)})`));
        break;
      case 'failed':
        stopBar();
        break;
      default:
        break;
    }
  };
  return { json, verbose, info, warn, detail, progress, done: stopBar, infoLines, warnings };
}
