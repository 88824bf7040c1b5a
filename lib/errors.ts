/**
 * One error hierarchy for every layer of rspflash.
 *
 * Every error thrown by the library is an {@link RspflashError} with a stable
 * {@link RspflashError.code | code}, so a caller can `switch (err.code)` without
 * `instanceof` chains, plus the context a user needs (address, call, server
 * reply) as fields. Lower-level errors are kept as `cause`.
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

/** Options common to every {@link RspflashError}. */
export interface RspflashErrorOptions {
  /** The lower-level error that caused this one. */
  cause?: unknown;
  /** What the user can do about it, one sentence. */
  hint?: string;
}

/** Base class of every error rspflash throws. */
export class RspflashError extends Error {
  /** Stable machine-readable code, e.g. `RSPFLASH_SERVER_ERROR`. */
  readonly code: string;
  /** What to do next, when there is advice to give. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: RspflashErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
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
  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_CONNECTION_CLOSED', message, {
      hint: 'Check that the GDB server is still running and that no other client took the connection, then run again.',
      ...options,
    });
  }
}

/** Could not open the connection to the GDB server. */
export class ConnectError extends RspflashError {
  constructor(
    message: string,
    readonly host: string,
    readonly port: number | undefined,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_CONNECT_FAILED', message, {
      hint: 'Start the GDB server first (e.g. JLinkGDBServerCLExe -port 2331) and check --gdb host:port.',
      ...options,
    });
  }
}

/** The server did not answer a request in time. The link is closed afterwards: a late reply would desynchronize it. */
export class RspTimeoutError extends RspflashError {
  constructor(
    message: string,
    readonly request: string,
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
  constructor(message: string, readonly request: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_UNSUPPORTED', message, options);
  }
}

/** The target is in a state that does not allow the operation (running, exited, no such register). */
export class TargetStateError extends RspflashError {
  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_TARGET_STATE', message, options);
  }
}

/** A reply or document from the server could not be parsed (target.xml, memory map, stop reply). */
export class ReplyFormatError extends RspflashError {
  constructor(message: string, readonly reply: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_REPLY_FORMAT', message, options);
  }
}

// ---------------------------------------------------------------------------
// Input files (lib/algo, lib/image)

/** A file is not what it claims to be: malformed ELF, FLM without descriptor, bad HEX checksum. */
export class FormatError extends RspflashError {
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
  constructor(message: string, readonly address: number, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_IMAGE_OVERLAP', message, options);
  }
}

// ---------------------------------------------------------------------------
// Running algorithms (lib/algo/runner)

/** The RAM region given for the algorithm cannot hold it, or overlaps what it must not. */
export class RamLayoutError extends RspflashError {
  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_RAM_LAYOUT', message, options);
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
  constructor(
    message: string,
    readonly fn: string,
    readonly args: readonly number[],
    readonly pc: number | undefined,
    readonly xpsr: number | undefined,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_ALGO_FAULT', message, {
      hint: 'The flash algorithm crashed: check that it matches this device and that --ram points at RAM the core can execute from.',
      ...options,
    });
  }
}

/** The algorithm did not return within its timeout; the core was halted. */
export class AlgorithmTimeoutError extends RspflashError {
  constructor(
    message: string,
    readonly fn: string,
    readonly args: readonly number[],
    readonly timeoutMs: number,
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
  constructor(
    message: string,
    readonly fn: string,
    readonly args: readonly number[],
    readonly result: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_ALGO_FAILED', message, options);
  }
}

/** The algorithm's stack canary was overwritten: it used more stack than the layout gave it. */
export class StackOverflowError extends RspflashError {
  constructor(message: string, readonly fn: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_ALGO_STACK_OVERFLOW', message, {
      hint: 'Give the algorithm more stack (a larger --ram region or stack size).',
      ...options,
    });
  }
}

// ---------------------------------------------------------------------------
// Flashing (lib/flash)

/** The image writes outside the flash device. Raised before anything is touched. */
export class OutOfFlashError extends RspflashError {
  constructor(
    message: string,
    readonly address: number,
    readonly length: number,
    options: RspflashErrorOptions = {},
  ) {
    super('RSPFLASH_OUT_OF_FLASH', message, options);
  }
}

/** Flash content differs from the image after programming. */
export class VerifyError extends RspflashError {
  constructor(message: string, readonly address: number, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_VERIFY_FAILED', message, {
      hint: 'Erase and program again; if it persists the flash may be worn, protected, or the algorithm wrong for this device.',
      ...options,
    });
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends RspflashError {
  constructor(message = 'Operation cancelled', options: RspflashErrorOptions = {}) {
    super('RSPFLASH_ABORTED', message, options);
  }
}

/** Bad arguments from the caller (CLI or API). */
export class UsageError extends RspflashError {
  constructor(message: string, options: RspflashErrorOptions = {}) {
    super('RSPFLASH_USAGE', message, options);
  }
}
