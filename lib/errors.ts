/**
 * One error hierarchy for every layer of rspflash.
 *
 * Every error thrown by the library is an {@link RspflashError} with a stable
 * {@link RspflashError.code | code} from the closed union {@link RspflashErrorCode},
 * so a caller can `switch (err.code)` and have the compiler check that every
 * code is handled, plus the context a user needs (address, call, server
 * reply, flash left at risk) as fields. Each code has one class
 * ({@link ERROR_CLASSES}); lower-level errors are kept as `cause`.
 *
 * Messages and hints name options the way the API spells them, in backticks
 * (`` `ram` ``, `` `preserve: false` ``); the CLI translates those to its flags.
 *
 * @example
 * ```ts
 * try {
 *   await flasher.program(image);
 * } catch (err) {
 *   if (err instanceof RspflashError && err.code === 'RSPFLASH_ALGO_TIMEOUT') {
 *     console.error(`${err.message}\n${err.hint}`);
 *   }
 * }
 * ```
 * @module
 */

/** Formats an address as `0x` + 8 hex digits, the way every message in rspflash prints one. */
export function hex32(value: number): string {
  return '0x' + (value >>> 0).toString(16).padStart(8, '0');
}

/**
 * Every code an {@link RspflashError} can carry; one class each (see
 * {@link ERROR_CLASSES} and docs/errors.md). A `switch` over it with a `never`
 * default fails to compile when a code is added.
 *
 * @example
 * ```ts
 * function exitCode(code: RspflashErrorCode): number {
 *   switch (code) {
 *     case 'RSPFLASH_VERIFY_FAILED': return 5;
 *     // … every other code …
 *     default: { const unhandled: never = code; return unhandled; }
 *   }
 * }
 * ```
 */
export type RspflashErrorCode =
  // Wire (lib/rsp)
  | 'RSPFLASH_CONNECTION_CLOSED'
  | 'RSPFLASH_CONNECT_FAILED'
  | 'RSPFLASH_RSP_TIMEOUT'
  | 'RSPFLASH_PROTOCOL'
  // Debug target (lib/gdb)
  | 'RSPFLASH_SERVER_ERROR'
  | 'RSPFLASH_UNSUPPORTED'
  | 'RSPFLASH_TARGET_STATE'
  | 'RSPFLASH_TARGET_DIRTY'
  | 'RSPFLASH_REPLY_FORMAT'
  // Input and host files
  | 'RSPFLASH_FORMAT'
  | 'RSPFLASH_IMAGE_OVERLAP'
  | 'RSPFLASH_FILE'
  | 'RSPFLASH_JOURNAL'
  // Running algorithms (lib/algo)
  | 'RSPFLASH_RAM_LAYOUT'
  | 'RSPFLASH_LOAD_MISMATCH'
  | 'RSPFLASH_ALGO_FAULT'
  | 'RSPFLASH_ALGO_TIMEOUT'
  | 'RSPFLASH_ALGO_FAILED'
  | 'RSPFLASH_ALGO_STACK_OVERFLOW'
  // Flashing (lib/flash)
  | 'RSPFLASH_OUT_OF_FLASH'
  | 'RSPFLASH_VERIFY_FAILED'
  // Any layer
  | 'RSPFLASH_ABORTED'
  | 'RSPFLASH_USAGE'
  | 'RSPFLASH_INTERNAL';

/**
 * A flash range a failed operation left in a state other than the one it
 * found or promised: `erased` (blank now; its old content is gone), `partial`
 * (half-written), or `erased-or-partial` (one of the two, not known which —
 * the run was cut while it worked on that range).
 */
export interface RangeAtRisk {
  /** First byte of the range. */
  address: number;
  /** Bytes in the range. */
  length: number;
  /** What the range holds now. */
  state: 'erased' | 'partial' | 'erased-or-partial';
}

/** Options common to every {@link RspflashError}. */
export interface RspflashErrorOptions {
  /** The lower-level error that caused this one. */
  cause?: unknown;
  /** What the user can do about it, one sentence. Name options as the API spells them, in backticks. */
  hint?: string;
  /** Flash ranges the failure left erased or half-written; becomes {@link RspflashError.ranges}. */
  atRisk?: readonly RangeAtRisk[];
}

/**
 * Base class of every error rspflash throws. Not constructed directly: each
 * code has its own subclass (see {@link ERROR_CLASSES}).
 */
export class RspflashError extends Error {
  /** Stable machine-readable code, e.g. `RSPFLASH_SERVER_ERROR`. */
  readonly code: RspflashErrorCode;
  /** What to do next, when there is advice to give. */
  readonly hint: string | undefined;
  /**
   * What the flash operation was doing when this happened, e.g.
   * `program 0xc0010000..0xc001ffff`; set by {@link RspflashError.within}.
   */
  declare readonly operation?: string;
  /** The flash ranges left erased or half-written by the failure, when any. */
  declare readonly ranges?: readonly RangeAtRisk[];

  /** Protected: only the subclasses, one per code, construct it; a bare code string from outside would escape the closed set. */
  protected constructor(code: RspflashErrorCode, message: string, options: RspflashErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    if (options.atRisk !== undefined) this.ranges = options.atRisk;
  }

  /**
   * The same error told from one level up: a **new** error of the same class,
   * code, fields and hint, with `message` replaced, `operation` set, and this
   * error as its `cause`. `instanceof` and `switch (err.code)` still work on
   * the result; the original stays untouched (a wrap, not an edit in place).
   *
   * @param operation - What was being done, e.g. `erase 0xc0000000..0xc000ffff`.
   * @param message - The whole new message, usually naming the operation and ending with this error's message.
   * @param options - `atRisk`: flash ranges the failure left erased or half-written (sets `ranges`).
   *
   * @example
   * ```ts
   * catch (err) {
   *   const e = toRspflashError(err);
   *   throw e.within('erase 0xc0000000..0xc000ffff', `Erasing 0xc0000000..0xc000ffff failed: ${e.message}`);
   * }
   * ```
   */
  within(operation: string, message: string, options: { atRisk?: readonly RangeAtRisk[] } = {}): this {
    const wrapped = Object.create(Object.getPrototypeOf(this) as object) as this;
    for (const key of Reflect.ownKeys(this)) {
      if (key === 'stack') continue;
      Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(this, key)!);
    }
    const define = (key: string, value: unknown, enumerable: boolean) =>
      Object.defineProperty(wrapped, key, { value, enumerable, writable: true, configurable: true });
    // Like Error's own: message and cause are not enumerable, context fields are (toJSON lists them).
    define('message', message, false);
    define('cause', this, false);
    define('operation', operation, true);
    if (options.atRisk !== undefined) define('ranges', options.atRisk, true);
    // The stack is where the error happened; only its first line repeats the message.
    const head = `${this.name}: ${this.message}`;
    const stack = this.stack;
    if (stack !== undefined) define('stack', stack.startsWith(head) ? `${this.name}: ${message}${stack.slice(head.length)}` : stack, false);
    return wrapped;
  }

  /** A plain object for `--json` output and logs. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, code: this.code, message: this.message };
    if (this.hint) out.hint = this.hint;
    for (const [key, value] of Object.entries(this)) {
      if (key === 'code' || key === 'hint' || key === 'cause' || value === undefined) continue;
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) continue;
      out[key] = value;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------
// Wire (lib/rsp)

/** The byte stream closed, or was closed by us after it became unusable. */
export class ConnectionClosedError extends RspflashError {
  declare readonly code: 'RSPFLASH_CONNECTION_CLOSED';

  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_CONNECTION_CLOSED', message, {
      hint: 'Check that the GDB server is still running and that no other client took the connection, then run again.',
      ...options,
    });
  }
}

/** Could not open the connection to the GDB server. */
export class ConnectError extends RspflashError {
  declare readonly code: 'RSPFLASH_CONNECT_FAILED';

  constructor(
    message: string,
    /** The host rspflash tried to reach (or the socket path, for a local socket). */
    readonly host: string,
    /** The TCP port; `undefined` for a local socket or a stream. */
    readonly port: number | undefined,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_CONNECT_FAILED', message, {
      hint: 'Start the GDB server first (e.g. JLinkGDBServerCLExe -port 2331) and check its address (`gdb`).',
      ...options,
    });
  }
}

/** The server did not answer a request in time. The link is closed afterwards: a late reply would desynchronize it. */
export class RspTimeoutError extends RspflashError {
  declare readonly code: 'RSPFLASH_RSP_TIMEOUT';

  constructor(
    message: string,
    /** The request that went unanswered, abbreviated (e.g. `m 0x20000000,0x400`). */
    readonly request: string,
    /** How long rspflash waited for the reply, in ms. */
    readonly timeoutMs: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_RSP_TIMEOUT', message, {
      hint: 'The server or probe stopped answering; check the probe connection and power, restart the GDB server, and run again.',
      ...options,
    });
  }
}

/** The server sent bytes that break the protocol (bad framing, oversized packet, repeated checksum failures). */
export class ProtocolError extends RspflashError {
  declare readonly code: 'RSPFLASH_PROTOCOL';

  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_PROTOCOL', message, {
      hint: 'Is the port really a GDB server (not telnet or SWO)? Run with RSPFLASH_DEBUG=rsp to see the packets.',
      ...options,
    });
  }
}

// ---------------------------------------------------------------------------
// Debug target (lib/gdb)

/** The server answered a request with an error (`E01`, `E.text`). */
export class ServerError extends RspflashError {
  declare readonly code: 'RSPFLASH_SERVER_ERROR';

  constructor(
    message: string,
    /** The request, abbreviated (e.g. `m 0x20000000,0x400`). */
    readonly request: string,
    /** The server's reply verbatim, e.g. `E01`. */
    readonly reply: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_SERVER_ERROR', message, options);
  }
}

/** The server does not support something rspflash needs (empty reply). */
export class UnsupportedError extends RspflashError {
  declare readonly code: 'RSPFLASH_UNSUPPORTED';

  constructor(
    message: string,
    /** The request the server did not support, abbreviated (e.g. `qXfer:memory-map:read`). */
    readonly request: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_UNSUPPORTED', message, options);
  }
}

/** The target is in a state that does not allow the operation (running, exited, no such register). */
export class TargetStateError extends RspflashError {
  declare readonly code: 'RSPFLASH_TARGET_STATE';

  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_TARGET_STATE', message, options);
  }
}

/**
 * The target still holds rspflash's state from a run that was killed before
 * it restored the core: PC on rspflash's return trap, VTOR on its vector
 * table, SP inside the RAM it borrowed. Running on would start from that state.
 */
export class DirtyTargetError extends RspflashError {
  declare readonly code: 'RSPFLASH_TARGET_DIRTY';

  constructor(
    message: string,
    /** What gave it away, e.g. `PC 0x20000404 is on the return trap`. */
    readonly reason: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_TARGET_DIRTY', message, {
      hint: 'An earlier rspflash run was interrupted before it restored the core: reset the target, then run again.',
      ...options,
    });
  }
}

/** A reply or document from the server could not be parsed (target.xml, memory map, stop reply). */
export class ReplyFormatError extends RspflashError {
  declare readonly code: 'RSPFLASH_REPLY_FORMAT';

  constructor(
    message: string,
    /** The reply that could not be parsed (abbreviated when long). */
    readonly reply: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_REPLY_FORMAT', message, options);
  }
}

// ---------------------------------------------------------------------------
// Input files (lib/algo, lib/image)

/** A file is not what it claims to be: malformed ELF, FLM without descriptor, bad HEX checksum. */
export class FormatError extends RspflashError {
  declare readonly code: 'RSPFLASH_FORMAT';

  constructor(
    message: string,
    /** Which file, or which kind of input, e.g. `ELF` or `app.hex`. */
    readonly source: string,
    /** Byte offset or line where the problem is, when known. */
    readonly offset?: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_FORMAT', message, options);
  }
}

/** Two parts of an image write different bytes to the same address. */
export class ImageOverlapError extends RspflashError {
  declare readonly code: 'RSPFLASH_IMAGE_OVERLAP';

  constructor(
    message: string,
    /** The first address written twice with different bytes. */
    readonly address: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_IMAGE_OVERLAP', message, options);
  }
}

/**
 * A file on the host could not be read or written (an image, an algorithm, an
 * output file). {@link FileError.fromSystemError} builds one from Node's
 * `ENOENT`-style errors.
 */
export class FileError extends RspflashError {
  declare readonly code: 'RSPFLASH_FILE';

  constructor(
    message: string,
    /** The file, as given. */
    readonly path: string,
    /** The operating system's reason, e.g. `ENOENT`, when it gave one. */
    readonly reason?: string,
    /** The system call that failed, e.g. `open`, when known. */
    readonly syscall?: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_FILE', message, options);
  }

  /**
   * A FileError from a Node system error (`err.code`, `err.syscall`,
   * `err.path`), with a message like `Cannot open app.bin: no such file or
   * directory (ENOENT)` and the system error as `cause`.
   *
   * @param err - What `fs` threw.
   * @param path - The file, if `err` does not name it (or names it differently than the user did).
   *
   * @example
   * ```ts
   * const bytes = await readFile(path).catch((err: unknown) => { throw FileError.fromSystemError(err, path); });
   * ```
   */
  static fromSystemError(err: unknown, path?: string): FileError {
    const sys = (err ?? {}) as { code?: unknown; syscall?: unknown; path?: unknown; message?: unknown };
    const reason = typeof sys.code === 'string' ? sys.code : undefined;
    const syscall = typeof sys.syscall === 'string' ? sys.syscall : undefined;
    const file = path ?? (typeof sys.path === 'string' ? sys.path : '(unknown file)');
    const text = typeof sys.message === 'string' ? sys.message : String(err);
    // Node's message reads "ENOENT: no such file or directory, open 'app.bin'": keep the middle part.
    const why = /^[A-Z0-9_]+: ([^,]+)/.exec(text)?.[1] ?? text;
    const message = `Cannot ${syscall ?? 'access'} ${file}: ${why}${reason !== undefined && !why.includes(reason) ? ` (${reason})` : ''}`;
    return new FileError(message, file, reason, syscall, { cause: err, ...fileHint(reason) });
  }
}

/** Advice for the common system errors on files. */
function fileHint(reason: string | undefined): Pick<RspflashErrorOptions, 'hint'> {
  switch (reason) {
    case 'ENOENT':
    case 'ENOTDIR':
      return { hint: 'Check the path: the file or a directory on the way to it does not exist.' };
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return { hint: 'Check the permissions of the file and its directory.' };
    case 'EISDIR':
      return { hint: 'Give a file, not a directory.' };
    default:
      return {};
  }
}

/**
 * The recovery journal (the bytes of partly covered sectors that a run keeps,
 * written before anything is erased so the next run can restore them) cannot
 * be written, read, parsed or removed.
 */
export class JournalError extends RspflashError {
  declare readonly code: 'RSPFLASH_JOURNAL';

  constructor(
    message: string,
    /** The journal file. */
    readonly path: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_JOURNAL', message, options);
  }
}

// ---------------------------------------------------------------------------
// Running algorithms (lib/algo/runner)

/** The RAM region given for the algorithm cannot hold it, or overlaps what it must not. */
export class RamLayoutError extends RspflashError {
  declare readonly code: 'RSPFLASH_RAM_LAYOUT';

  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_RAM_LAYOUT', message, options);
  }
}

/**
 * Code rspflash loaded (its helpers or the flash algorithm) did not read back
 * as written: the region is not RAM (flash, ROM, a peripheral, a hole in the
 * memory map) or something else writes to it. Raised before anything runs.
 */
export class LoadMismatchError extends RspflashError {
  declare readonly code: 'RSPFLASH_LOAD_MISMATCH';

  constructor(
    message: string,
    /** The first address that read back differently. */
    readonly address: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_LOAD_MISMATCH', message, {
      hint: 'Check the RAM region (`ram`): it must be writable, executable RAM that nothing else uses while flashing.',
      ...options,
    });
  }
}

/** Context of a call into a flash algorithm, carried by algorithm errors. */
export interface AlgorithmCallContext {
  /** Routine name, e.g. `EraseSector`. */
  fn: string;
  /** Arguments R0–R3 as passed. */
  args: readonly number[];
}

/** The algorithm stopped somewhere other than its return trap (a fault, lockup or stray breakpoint). */
export class AlgorithmFaultError extends RspflashError {
  declare readonly code: 'RSPFLASH_ALGO_FAULT';

  constructor(
    message: string,
    /** The routine that faulted, e.g. `ProgramPage`. */
    readonly fn: string,
    /** Its arguments R0–R3 as passed. */
    readonly args: readonly number[],
    /** Where the core stopped (PC), if the registers could be read. */
    readonly pc: number | undefined,
    /** xPSR at the stop: its low 9 bits are the exception number (3 = HardFault). `undefined` if unread. */
    readonly xpsr: number | undefined,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_ALGO_FAULT', message, {
      hint: 'The flash algorithm crashed: check that it matches this device and that its RAM region (`ram`) is RAM the core can execute from.',
      ...options,
    });
  }
}

/** The algorithm did not return within its timeout; the core was halted. */
export class AlgorithmTimeoutError extends RspflashError {
  declare readonly code: 'RSPFLASH_ALGO_TIMEOUT';

  constructor(
    message: string,
    /** The routine that did not return, e.g. `EraseChip`. */
    readonly fn: string,
    /** Its arguments R0–R3 as passed. */
    readonly args: readonly number[],
    /** The timeout that ran out, in ms. */
    readonly timeoutMs: number,
    /** Where the core was when halted (PC): shows where it hung. `undefined` if unread. */
    readonly pc: number | undefined,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_ALGO_TIMEOUT', message, {
      hint: 'The flash algorithm hung: check the flash is connected and powered, or raise the timeout.',
      ...options,
    });
  }
}

/** The algorithm returned a failure code (non-zero from Init/EraseSector/ProgramPage, a failing Verify address). */
export class AlgorithmCallError extends RspflashError {
  declare readonly code: 'RSPFLASH_ALGO_FAILED';

  constructor(
    message: string,
    /** The routine that failed, e.g. `EraseSector`. */
    readonly fn: string,
    /** Its arguments R0–R3 as passed. */
    readonly args: readonly number[],
    /** What it returned in R0: non-zero for Init/EraseSector/ProgramPage; for Verify, the first failing address. */
    readonly result: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_ALGO_FAILED', message, options);
  }
}

/** The algorithm's stack canary was overwritten: it used more stack than the layout gave it. */
export class StackOverflowError extends RspflashError {
  declare readonly code: 'RSPFLASH_ALGO_STACK_OVERFLOW';

  constructor(
    message: string,
    /** The routine whose call overran its stack, e.g. `ProgramPage`. */
    readonly fn: string,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_ALGO_STACK_OVERFLOW', message, {
      hint: 'Give the algorithm more stack: a larger `stackSize`, or a larger RAM region (`ram`).',
      ...options,
    });
  }
}

// ---------------------------------------------------------------------------
// Flashing (lib/flash)

/** The image writes outside the flash device. Raised before anything is touched. */
export class OutOfFlashError extends RspflashError {
  declare readonly code: 'RSPFLASH_OUT_OF_FLASH';

  constructor(
    message: string,
    /** Start of the image part that does not fit. */
    readonly address: number,
    /** Its length in bytes. */
    readonly length: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_OUT_OF_FLASH', message, options);
  }
}

/** Flash content differs from the image after programming. */
export class VerifyError extends RspflashError {
  declare readonly code: 'RSPFLASH_VERIFY_FAILED';

  constructor(
    message: string,
    /** The first address whose flash content differs from the image. */
    readonly address: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_VERIFY_FAILED', message, {
      hint: 'Erase and program again; if it persists the flash may be worn, protected, or the algorithm wrong for this device.',
      ...options,
    });
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends RspflashError {
  declare readonly code: 'RSPFLASH_ABORTED';

  constructor(message = 'Operation cancelled', options: RspflashErrorOptions = {}) {
    super('RSPFLASH_ABORTED', message, options);
  }
}

/** Bad arguments from the caller (CLI or API). */
export class UsageError extends RspflashError {
  declare readonly code: 'RSPFLASH_USAGE';

  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_USAGE', message, options);
  }
}

/**
 * Anything that is not an {@link RspflashError}, converted by
 * {@link toRspflashError}: a bug in rspflash or in code it calls. The original
 * error is the `cause`.
 */
export class InternalError extends RspflashError {
  declare readonly code: 'RSPFLASH_INTERNAL';

  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_INTERNAL', message, {
      hint: 'This looks like a bug: please report it with the output of RSPFLASH_DEBUG=rsp,gdb,algo,flash.',
      ...options,
    });
  }
}

// ---------------------------------------------------------------------------

/**
 * The class of each {@link RspflashErrorCode}: one per code, and every code
 * has one (checked by the compiler). Useful to list the codes at run time.
 *
 * @example
 * ```ts
 * const codes = Object.keys(ERROR_CLASSES) as RspflashErrorCode[];
 * ```
 */
export const ERROR_CLASSES = Object.freeze({
  /** {@link ConnectionClosedError} */
  RSPFLASH_CONNECTION_CLOSED: ConnectionClosedError,
  /** {@link ConnectError} */
  RSPFLASH_CONNECT_FAILED: ConnectError,
  /** {@link RspTimeoutError} */
  RSPFLASH_RSP_TIMEOUT: RspTimeoutError,
  /** {@link ProtocolError} */
  RSPFLASH_PROTOCOL: ProtocolError,
  /** {@link ServerError} */
  RSPFLASH_SERVER_ERROR: ServerError,
  /** {@link UnsupportedError} */
  RSPFLASH_UNSUPPORTED: UnsupportedError,
  /** {@link TargetStateError} */
  RSPFLASH_TARGET_STATE: TargetStateError,
  /** {@link DirtyTargetError} */
  RSPFLASH_TARGET_DIRTY: DirtyTargetError,
  /** {@link ReplyFormatError} */
  RSPFLASH_REPLY_FORMAT: ReplyFormatError,
  /** {@link FormatError} */
  RSPFLASH_FORMAT: FormatError,
  /** {@link ImageOverlapError} */
  RSPFLASH_IMAGE_OVERLAP: ImageOverlapError,
  /** {@link FileError} */
  RSPFLASH_FILE: FileError,
  /** {@link JournalError} */
  RSPFLASH_JOURNAL: JournalError,
  /** {@link RamLayoutError} */
  RSPFLASH_RAM_LAYOUT: RamLayoutError,
  /** {@link LoadMismatchError} */
  RSPFLASH_LOAD_MISMATCH: LoadMismatchError,
  /** {@link AlgorithmFaultError} */
  RSPFLASH_ALGO_FAULT: AlgorithmFaultError,
  /** {@link AlgorithmTimeoutError} */
  RSPFLASH_ALGO_TIMEOUT: AlgorithmTimeoutError,
  /** {@link AlgorithmCallError} */
  RSPFLASH_ALGO_FAILED: AlgorithmCallError,
  /** {@link StackOverflowError} */
  RSPFLASH_ALGO_STACK_OVERFLOW: StackOverflowError,
  /** {@link OutOfFlashError} */
  RSPFLASH_OUT_OF_FLASH: OutOfFlashError,
  /** {@link VerifyError} */
  RSPFLASH_VERIFY_FAILED: VerifyError,
  /** {@link AbortedError} */
  RSPFLASH_ABORTED: AbortedError,
  /** {@link UsageError} */
  RSPFLASH_USAGE: UsageError,
  /** {@link InternalError} */
  RSPFLASH_INTERNAL: InternalError,
} as const satisfies { [C in RspflashErrorCode]: abstract new (...args: never[]) => RspflashError & { code: C } });

/**
 * Any thrown value as an {@link RspflashError}: an RspflashError as it is;
 * an `AbortError` (an aborted `AbortSignal`, Node's `events`/`fs` cancellation)
 * or a `TimeoutError` DOMException (`AbortSignal.timeout`) as
 * {@link AbortedError}; a Node file-system error naming a path as
 * {@link FileError}; anything else as {@link InternalError}. The original is
 * the `cause` of the new error.
 *
 * @example
 * ```ts
 * catch (err) {
 *   const e = toRspflashError(err);
 *   switch (e.code) { … }
 * }
 * ```
 */
export function toRspflashError(err: unknown): RspflashError {
  if (err instanceof RspflashError) return err;
  const name = err instanceof Error || isDomException(err) ? (err as Error).name : undefined;
  if (name === 'AbortError') return new AbortedError(undefined, { cause: err });
  if (name === 'TimeoutError' && isDomException(err)) return new AbortedError(`Operation cancelled: ${err.message}`, { cause: err });
  if (isFileSystemError(err)) return FileError.fromSystemError(err);
  return new InternalError(err instanceof Error ? err.message : `Non-error thrown: ${String(err)}`, { cause: err });
}

function isDomException(err: unknown): err is DOMException {
  return typeof DOMException !== 'undefined' && err instanceof DOMException;
}

/** Node's system errors from `fs` carry `code`, `syscall` and the `path`; a socket's carry no path. */
function isFileSystemError(err: unknown): err is NodeJS.ErrnoException & { path: string } {
  const e = err as Partial<NodeJS.ErrnoException> | null;
  return err instanceof Error && typeof e?.code === 'string' && typeof e.syscall === 'string' && typeof e.path === 'string';
}
