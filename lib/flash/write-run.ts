/**
 * From a {@link WriteStep} to the batch of calls the on-target sequencer runs:
 * Init(erase), the erases, UnInit, Init(program), the programs, UnInit,
 * Init(verify), the Verifies, UnInit — Init and UnInit paired by construction,
 * inside one run. Pure.
 * @module
 */
import { FNC_ERASE, FNC_PROGRAM, FNC_VERIFY, type AlgorithmFunction } from '../algo/algorithm.js';
import type { BatchCall } from '../algo/sequencer.js';
import type { WriteStep } from './steps.js';

/** What the call builder needs to know of the loaded algorithm. */
export interface CallTarget {
  /** Entry address of a routine the algorithm has; `undefined` when it has not. */
  readonly entry: (fn: AlgorithmFunction) => number | undefined;
  /** First address of the flash device (Init's `adr`). */
  readonly flashStart: number;
  /** Init's `clk`. */
  readonly clock: number;
  /** Bytes ProgramPage takes at most (the flash page size). */
  readonly pageSize: number;
  /** Address of the transfer buffer the step's pieces are placed in. */
  readonly buffer: number;
}

/** Init for `fnc` and its UnInit around `body`, as batch calls (either absent when the algorithm has none). */
export function withInitCalls(target: CallTarget, fnc: number, body: readonly BatchCall[]): BatchCall[] {
  if (body.length === 0) return [];
  const init = target.entry('Init');
  const uninit = target.entry('UnInit');
  return [
    ...(init === undefined ? [] : [{ fn: 'Init', entry: init, args: [target.flashStart, target.clock, fnc], expect: 0 }]),
    ...body,
    ...(uninit === undefined ? [] : [{ fn: 'UnInit', entry: uninit, args: [fnc], expect: 0 }]),
  ];
}

/** The calls of one write run, in order. */
export function writeCalls(step: WriteStep, target: CallTarget): BatchCall[] {
  const erase: BatchCall[] = [];
  const single = target.entry('EraseSector');
  const multi = target.entry('Erase');
  for (const span of step.erase) {
    if (single !== undefined) {
      // EraseSector(adr) ignores r1, so r1 carries the stride for the sequencer.
      erase.push({ fn: 'EraseSector', entry: single, args: [span.address, span.size], expect: 0, repeat: span.count, stride: true });
    } else if (multi !== undefined) {
      erase.push({ fn: 'Erase', entry: multi, args: [span.address, span.index, span.count], expect: 0 });
    } else {
      throw new RangeError('the algorithm has neither EraseSector nor Erase');
    }
  }
  const program: BatchCall[] = [];
  const programMany = target.entry('Program');
  const programPage = target.entry('ProgramPage');
  for (const piece of step.program) {
    const at = target.buffer + piece.offset;
    if (programMany !== undefined) program.push({ fn: 'Program', entry: programMany, args: [piece.address, piece.length, at], expect: 0 });
    else if (programPage !== undefined) {
      program.push({ fn: 'ProgramPage', entry: programPage, args: [piece.address, target.pageSize, at], expect: 0, repeat: piece.length / target.pageSize, stride: true });
    } else throw new RangeError('the algorithm has neither ProgramPage nor Program');
  }
  const check: BatchCall[] = [];
  if (step.verify) {
    const verify = target.entry('Verify');
    if (verify === undefined) throw new RangeError('the algorithm has no Verify');
    for (const piece of step.program) {
      check.push({ fn: 'Verify', entry: verify, args: [piece.address, piece.length, target.buffer + piece.offset], expect: (piece.address + piece.length) >>> 0 });
    }
  }
  // CMSIS: Init(fnc) prepares the algorithm for one function; Verify gets fnc 3 (a QSPI algorithm may switch modes for it).
  return [...withInitCalls(target, FNC_ERASE, erase), ...withInitCalls(target, FNC_PROGRAM, program), ...withInitCalls(target, FNC_VERIFY, check)];
}

/**
 * The Init function left open when a run stopped at a failing call `fn` with
 * arguments `args`: the executor must UnInit it. `undefined` when none is open
 * (Init itself failed, or UnInit did).
 */
export function openFunction(fn: string, args: readonly number[]): number | undefined {
  switch (fn) {
    case 'EraseSector':
    case 'Erase':
    case 'EraseChip':
      return FNC_ERASE;
    case 'ProgramPage':
    case 'Program':
      return FNC_PROGRAM;
    case 'Verify':
      return FNC_VERIFY;
    default:
      void args;
      return undefined;
  }
}
