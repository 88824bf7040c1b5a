/**
 * How the CLI reports failures: exit codes by error code, errors for people
 * and as JSON, and the library's option names turned into this CLI's flags.
 * Progress and summaries live in progress.ts and summary.ts.
 */
import pc from 'picocolors';
import { InternalError, toRspflashError, type RspflashErrorCode } from '../lib/index.js';

/** Exit codes, documented in `rspflash --help` and docs/errors.md. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  connection: 3,
  algorithm: 4,
  verify: 5,
  aborted: 130,
} as const;

/**
 * The exit code of each error code. Exhaustive, so a new code does not compile
 * until it has one. Groups: 2 — fix the command or its files; 3 — fix the
 * server, probe or target, then run again; 4 — the flash algorithm failed on
 * this device; 5 — the flash does not hold the image.
 */
export const EXIT_CODES: Readonly<Record<RspflashErrorCode, number>> = Object.freeze({
  RSPFLASH_USAGE: EXIT.usage,
  RSPFLASH_FORMAT: EXIT.usage,
  RSPFLASH_IMAGE_OVERLAP: EXIT.usage,
  RSPFLASH_OUT_OF_FLASH: EXIT.usage,
  RSPFLASH_FILE: EXIT.usage,
  // A journal that cannot be written is refused before anything is erased; one that cannot be read is a damaged host file.
  RSPFLASH_JOURNAL: EXIT.usage,
  RSPFLASH_CONNECT_FAILED: EXIT.connection,
  RSPFLASH_CONNECTION_CLOSED: EXIT.connection,
  RSPFLASH_RSP_TIMEOUT: EXIT.connection,
  RSPFLASH_PROTOCOL: EXIT.connection,
  RSPFLASH_SERVER_ERROR: EXIT.connection,
  RSPFLASH_UNSUPPORTED: EXIT.connection,
  RSPFLASH_TARGET_STATE: EXIT.connection,
  RSPFLASH_TARGET_DIRTY: EXIT.connection,
  RSPFLASH_REPLY_FORMAT: EXIT.connection,
  RSPFLASH_ALGO_FAULT: EXIT.algorithm,
  RSPFLASH_ALGO_TIMEOUT: EXIT.algorithm,
  RSPFLASH_ALGO_FAILED: EXIT.algorithm,
  RSPFLASH_ALGO_STACK_OVERFLOW: EXIT.algorithm,
  RSPFLASH_RAM_LAYOUT: EXIT.algorithm,
  RSPFLASH_LOAD_MISMATCH: EXIT.algorithm,
  RSPFLASH_VERIFY_FAILED: EXIT.verify,
  RSPFLASH_ABORTED: EXIT.aborted,
  RSPFLASH_INTERNAL: EXIT.internal,
});

/** The exit code for anything thrown: by its code once it is an RspflashError (see {@link toRspflashError}). */
export function exitCodeOf(err: unknown): number {
  if ((err as { code?: unknown } | null)?.code === 'commander.error') return EXIT.usage;
  return EXIT_CODES[toRspflashError(err).code];
}

/**
 * How this CLI spells the options the library names in its messages and hints
 * (in backticks, as the API spells them: `` `ram` ``, `` `preserve: false` ``).
 * Text in backticks that is not here is printed as it is.
 */
export const OPTION_FLAGS: Readonly<Record<string, string>> = Object.freeze({
  'force: true': 'rspflash recover --force',
  gdb: '--gdb HOST:PORT',
  ram: '--ram ADDR:SIZE',
  base: '--base ADDR',
  board: '--board NAME',
  pack: '--pack FILE',
  device: '--device NAME',
  core: '--core PNAME',
  project: '--project FILE',
  algorithm: '--algo FILE',
  reset: '--reset',
  timeoutMs: '--timeout MS',
  preserve: '--preserve',
  'preserve: true': '--preserve',
  'preserve: false': '--no-preserve',
  'skipUnchanged: false': '--no-skip-unchanged',
  skip: '--skip BYTES',
  format: '--format',
  memoryMapped: '--memory-mapped',
  'memoryMapped: true': '--memory-mapped',
  'memoryMapped: false': '--no-memory-mapped',
  verify: '--verify',
  "verify: 'auto'": '--verify auto',
  "verify: 'algo'": '--verify algo',
  "verify: 'hash'": '--verify hash',
  "verify: 'crc'": '--verify crc',
  "verify: 'read'": '--verify read',
  "verify: 'none'": '--verify none',
  chipErase: '--chip-erase',
  "chipErase: 'auto'": '--chip-erase auto',
  "chipErase: 'always'": '--chip-erase always',
  "chipErase: 'never'": '--chip-erase never',
  "after: 'halt'": '--after halt',
  "after: 'run'": '--after run',
  "after: 'reset'": '--after reset',
});

/**
 * A library message or hint as this CLI should print it: every option named in
 * backticks that the CLI has a flag for becomes that flag.
 *
 * @example
 * ```ts
 * toFlags('Give `preserve: false` to let chip erase wipe them'); // 'Give --no-preserve to let chip erase wipe them'
 * ```
 */
export function toFlags(text: string): string {
  return text.replace(/`([^`\n]+)`/g, (whole, option: string) => OPTION_FLAGS[option] ?? whole);
}

/**
 * Prints an error for people: message, then what to do, with options named as
 * flags. An internal error (a bug) prints the stack of what was thrown.
 */
export function printError(err: unknown): void {
  const e = toRspflashError(err);
  if (e instanceof InternalError) {
    const original = e.cause;
    process.stderr.write(`${pc.red('✖')} ${original instanceof Error ? (original.stack ?? original.message) : e.message}\n`);
  } else process.stderr.write(`${pc.red('✖')} ${toFlags(e.message)}\n`);
  if (e.hint) process.stderr.write(`  ${pc.dim(toFlags(e.hint))}\n`);
}

/** The JSON form of an error, with options named as flags in `message` and `hint`. */
export function errorJSON(err: unknown): Record<string, unknown> {
  const json = toRspflashError(err).toJSON();
  if (typeof json.message === 'string') json.message = toFlags(json.message);
  if (typeof json.hint === 'string') json.hint = toFlags(json.hint);
  return json;
}
