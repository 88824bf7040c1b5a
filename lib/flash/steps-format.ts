/**
 * A job's steps for people (`rspflash plan`, `program -v`) and for scripts
 * (`--json`). Pure.
 * @module
 */
import { formatRange, spanOf, type MemoryRange } from '../range.js';
import type { JobPlan, Step } from './steps.js';

/** One step as JSON: its kind, what it covers, and its figures. */
export interface StepJSON {
  /** Which step (see {@link Step}). */
  kind: Step['kind'];
  /** `hash`, `algo`, `read`, `memory` where the step has a method. */
  method?: string;
  /** The flash the step covers, as `0x….. 0x…` text. */
  range?: string;
  /** Number of ranges the step covers. */
  ranges?: number;
  /** Bytes the step moves or checks. */
  bytes?: number;
  /** Write steps: sectors erased in the run. */
  sectorsErased?: number;
  /** Write steps: pieces programmed from the transfer buffer. */
  pieces?: number;
  /** Write steps: batch-table entries of the run. */
  entries?: number;
  /** Write steps: the algorithm's Verify runs in the same run. */
  verify?: boolean;
  /** Verify steps: `image` (planned content) or `erased` (pages left erased). */
  expect?: 'image' | 'erased';
  /** Erase-chip steps: why the chip is erased whole. */
  reason?: string;
}

/** The steps as JSON, in order. */
export function stepsToJSON(job: Pick<JobPlan, 'steps'>): StepJSON[] {
  return job.steps.map((step): StepJSON => {
    switch (step.kind) {
      case 'compare':
        return { kind: step.kind, method: step.method, range: formatRange(spanOf(step.ranges)), ranges: step.ranges.length, bytes: step.bytes };
      case 'keep':
        return { kind: step.kind, method: step.method, range: formatRange(spanOf(step.ranges)), ranges: step.ranges.length, bytes: step.bytes };
      case 'erase-chip':
        return { kind: step.kind, reason: step.reason };
      case 'write':
        return {
          kind: step.kind,
          range: formatRange(writeSpan(step)),
          sectorsErased: step.erase.reduce((n, e) => n + e.count, 0),
          pieces: step.program.length,
          bytes: step.bytes,
          entries: step.entries,
          verify: step.verify,
        };
      case 'verify':
        return { kind: step.kind, method: step.method, expect: step.expect, range: formatRange(spanOf(step.ranges)), ranges: step.ranges.length, bytes: step.bytes };
    }
  });
}

function writeSpan(step: Extract<Step, { kind: 'write' }>): MemoryRange {
  return spanOf([...step.erase.map((e) => ({ address: e.address, length: e.size * e.count })), ...step.program]);
}

/**
 * The steps as lines of text: one line per step, write runs summarised
 * (first and last `maxRuns / 2` shown) so a 32 MiB job stays readable.
 */
export function formatSteps(job: Pick<JobPlan, 'steps' | 'notes'>, options: { maxRuns?: number } = {}): string {
  const maxRuns = options.maxRuns ?? 8;
  const lines: string[] = [];
  const writes = job.steps.filter((s) => s.kind === 'write');
  let writeIndex = 0;
  let elided = false;
  for (const step of job.steps) {
    switch (step.kind) {
      case 'compare':
        lines.push(`compare   ${formatRange(spanOf(step.ranges))}  ${step.ranges.length} range(s), ${kib(step.bytes)} by ${step.method === 'hash' ? 'on-target hash' : "the algorithm's Verify (data sent)"}`);
        break;
      case 'keep':
        lines.push(`keep      ${formatRange(spanOf(step.ranges))}  ${kib(step.bytes)} read back ${step.method === 'memory' ? 'from memory' : 'through Read'}, journalled before any erase`);
        break;
      case 'erase-chip':
        lines.push(`erase     chip  (${step.reason})`);
        break;
      case 'write': {
        const i = writeIndex++;
        if (writes.length > maxRuns && i >= Math.ceil(maxRuns / 2) && i < writes.length - Math.floor(maxRuns / 2)) {
          if (!elided) lines.push(`          … ${writes.length - maxRuns} more run(s) …`);
          elided = true;
          break;
        }
        const erased = step.erase.reduce((n, e) => n + e.count, 0);
        const parts = [
          erased > 0 ? `erase ${erased} sector(s)` : undefined,
          step.program.length > 0 ? `program ${kib(step.bytes)} in ${step.program.length} piece(s)` : undefined,
          step.verify ? 'Verify' : undefined,
        ].filter(Boolean);
        lines.push(`run ${String(i + 1).padStart(5)} ${formatRange(writeSpan(step))}  ${parts.join(', ')}  [${step.entries} calls]`);
        break;
      }
      case 'verify':
        lines.push(
          `verify    ${formatRange(spanOf(step.ranges))}  ${kib(step.bytes)} ${step.expect === 'erased' ? 'left at the erased value ' : ''}by ${step.method}`,
        );
        break;
    }
  }
  if (lines.length === 0) lines.push('nothing to do');
  for (const note of job.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

function kib(bytes: number): string {
  return bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
}
