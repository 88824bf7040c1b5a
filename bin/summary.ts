/**
 * What the CLI says when an operation ends: one line per report, the flash a
 * failure left at risk, the bytes a job will not keep. Pure: text in, text out.
 */
import pc from 'picocolors';
import { formatBytes, formatRange, type FlashReport, type MemoryRange, type RangeAtRisk } from '../lib/index.js';
import { plural } from './progress.js';

/**
 * Below this many programmed bytes a transfer rate says more about the fixed
 * cost of connecting and loading the algorithm than about the link: not shown.
 */
export const MIN_BYTES_FOR_RATE = 256 << 10;

/** How a report's check reads: `verified by the algorithm's Verify`, `verify skipped (unchanged)`. */
export function describeVerify(verify: FlashReport['verify']): string {
  switch (verify) {
    case 'algo':
      return "verified by the algorithm's Verify";
    case 'hash':
      return 'verified by on-target hash';
    case 'read':
      return 'verified by reading back';
    case 'unchanged':
      return 'verify skipped (unchanged)';
    case 'none':
      return 'not verified';
  }
}

function seconds(report: FlashReport): string {
  return `${(report.durationMs / 1000).toFixed(2)} s`;
}

/** `✔ Done: programmed 64 KiB, erased 16 sectors, verified by … in 0.52 s`, with MB/s for large transfers. */
export function summarizeProgram(report: FlashReport): string {
  const parts = [
    report.bytesRecovered > 0 ? `restored ${formatBytes(report.bytesRecovered)} from the journal` : undefined,
    report.bytesProgrammed > 0 ? `programmed ${formatBytes(report.bytesProgrammed)}` : undefined,
    report.chipErase ? 'chip erased' : report.sectorsErased > 0 ? `erased ${plural(report.sectorsErased, 'sector')}` : undefined,
    report.sectorsSkipped > 0 ? `${plural(report.sectorsSkipped, 'sector')} unchanged` : undefined,
    report.sectorsBlank > 0 ? `${plural(report.sectorsBlank, 'sector')} already blank (not erased)` : undefined,
    report.bytesKept > 0 ? `kept ${formatBytes(report.bytesKept)}` : undefined,
    report.sectorsTouched > 0 || report.verify !== 'none' ? describeVerify(report.verify) : undefined,
  ].filter(Boolean);
  const rate =
    report.bytesProgrammed >= MIN_BYTES_FOR_RATE && report.durationMs > 0
      ? ` (${(report.bytesProgrammed / (report.durationMs / 1000) / 1e6).toFixed(2)} MB/s)`
      : '';
  return `${pc.green('✔')} Done: ${parts.join(', ') || 'nothing to do'} in ${seconds(report)}${rate}`;
}

/** `✔ Erased 0xc1b00000..0xc1b00fff (1 sector) in 0.02 s`, saying when the range asked for was widened. */
export function summarizeErase(report: FlashReport, asked: MemoryRange | 'chip'): string {
  if (report.chipErase) return `${pc.green('✔')} Erased the whole chip (EraseChip) in ${seconds(report)}`;
  const widened =
    asked !== 'chip' && report.erased && (report.erased.address !== asked.address || report.erased.length !== asked.length)
      ? `, widened from ${formatRange(asked)} to whole sectors`
      : '';
  const what = `${report.erased ? formatRange(report.erased) : 'nothing'} (${plural(report.sectorsErased, 'sector')}${widened})`;
  return `${pc.green('✔')} Erased ${what} in ${seconds(report)}`;
}

/** `✔ Verified: 8 KiB match the image (on-target hash) in 0.05 s`. */
export function summarizeVerify(report: FlashReport): string {
  const how = report.verify === 'algo' ? "the algorithm's Verify" : report.verify === 'hash' ? 'on-target hash' : report.verify === 'read' ? 'read back' : report.verify;
  return `${pc.green('✔')} Verified: ${formatBytes(report.imageBytes)} match the image (${how}) in ${seconds(report)}`;
}

/** What each at-risk state means to a user. */
const RISK_STATE: Readonly<Record<RangeAtRisk['state'], string>> = {
  erased: 'erased (old content gone)',
  partial: 'half-written',
  'erased-or-partial': 'erased or half-written',
};

/** Lines naming the flash a failure left erased or half-written (all of them, up to `max`). */
export function riskLines(ranges: readonly RangeAtRisk[], max = 16): string[] {
  if (ranges.length === 0) return [];
  const lines = ranges.slice(0, max).map((r) => `  ${formatRange(r)}  ${formatBytes(r.length)}  ${RISK_STATE[r.state]}`);
  if (ranges.length > max) lines.push(`  … ${ranges.length - max} more range(s)`);
  return [`Flash left erased or half-written (program the image again to complete it):`, ...lines];
}

/** The warning for bytes a job will erase without keeping (`preserve` off), naming the ranges. */
export function lostWarning(lost: readonly MemoryRange[], reason: string): string | undefined {
  if (lost.length === 0) return undefined;
  const bytes = lost.reduce((n, r) => n + r.length, 0);
  const list = lost.slice(0, 4).map(formatRange).join(', ') + (lost.length > 4 ? `, … (${lost.length} ranges)` : '');
  return `${plural(bytes, 'byte')} outside the image will be erased (${reason}): ${list}`;
}
