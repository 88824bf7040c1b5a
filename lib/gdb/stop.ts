/**
 * Parser of GDB stop replies: the answer to `?`, `c`, `s`, `vCont` and the
 * payload of a non-stop `%Stop:` notification.
 *
 * Syntax from the GDB manual, "Remote Protocol" → "Stop Reply Packets":
 * - `S AA` — signal AA (two hex digits);
 * - `T AA n1:r1;n2:r2;…` — the same, with pairs: a hex `n` is a register
 *   number and `r` its value in target byte order; `thread`, `core` and the
 *   stop reasons (`swbreak`, `watch`, …) are named; any other name is ignored,
 *   which is how the protocol is extended;
 * - `W AA[;process:pid]` — the process exited with status AA;
 * - `X AA[;process:pid]` — the process was killed by signal AA;
 * - `N` — no resumed threads are left.
 *
 * `O` console output, `F` file-I/O requests and `E` errors are not stop
 * replies: the connection and client handle them before calling this.
 * @module
 */
import { ReplyFormatError } from '../errors.js';

/** Stop reasons a `T` reply may name (GDB manual, "Stop Reply Packets"). */
export const STOP_REASONS = [
  'swbreak',
  'hwbreak',
  'watch',
  'rwatch',
  'awatch',
  'library',
  'replaylog',
  'syscall_entry',
  'syscall_return',
  'fork',
  'vfork',
  'vforkdone',
  'exec',
  'clone',
  'create',
] as const;

/**
 * Why the target stopped, when a `T` reply says so: `swbreak`/`hwbreak` a
 * software/hardware breakpoint, `watch`/`rwatch`/`awatch` a watchpoint (the
 * value is the data address), the rest process events of hosted targets.
 */
export type StopReason = (typeof STOP_REASONS)[number];

/** The target stopped with a signal (`S` or `T`). */
export interface SignalStop {
  /** Discriminant: `S` or `T` reply. */
  kind: 'signal';
  /** GDB signal number (5 = SIGTRAP for breakpoints and steps, 2 = SIGINT after an interrupt); see {@link signalName}. */
  signal: number;
  /** The thread that stopped, as the server spells it (`1`, `p01.01`, `-1`). */
  thread?: string;
  /** The core it ran on. */
  core?: number;
  /** Register values carried by a `T` reply: register number → hex bytes in target byte order, lower case (`x` = unavailable). */
  registers: Map<number, string>;
  /** Why it stopped, when the server says. */
  reason?: StopReason;
  /** The reason's value when it has one (watchpoint data address, syscall number, child thread id, hex path), verbatim. */
  reasonValue?: string;
}

/** The process exited (`W`). */
export interface ExitedStop {
  /** Discriminant: `W` reply. */
  kind: 'exited';
  /** Exit status. */
  code: number;
  /** Process id, with the multiprocess extension. */
  pid?: number;
}

/** The process was terminated by a signal (`X`). */
export interface KilledStop {
  /** Discriminant: `X` reply. */
  kind: 'killed';
  /** GDB signal number. */
  signal: number;
  /** Process id, with the multiprocess extension. */
  pid?: number;
}

/** No resumed thread is left to report on (`N`). */
export interface NoResumedStop {
  /** Discriminant: `N` reply. */
  kind: 'no-resumed';
}

/**
 * A parsed stop reply; switch on `kind`.
 *
 * @example
 * ```ts
 * const stop = parseStopReply('T05swbreak:;thread:1;');
 * if (stop.kind === 'signal' && stop.signal === 5) console.log(stop.reason); // 'swbreak'
 * ```
 */
export type StopReply = SignalStop | ExitedStop | KilledStop | NoResumedStop;

const HEX = /^[0-9a-fA-F]+$/;
const REGISTER_VALUE = /^[0-9a-fA-Fx]*$/;
/** Thread-id syntax (manual, "Packets" → thread-id): `pPID.TID`, `pPID`, or `TID`; each hex, or -1 for all. */
const THREAD_ID = /^(?:p(?:-1|[0-9a-fA-F]+)(?:\.(?:-1|[0-9a-fA-F]+))?|-1|[0-9a-fA-F]+)$/;
const REASONS: ReadonlySet<string> = new Set(STOP_REASONS);

function fail(message: string, reply: string): never {
  throw new ReplyFormatError(`Bad stop reply ${JSON.stringify(abbreviate(reply))}: ${message}`, reply);
}

function abbreviate(text: string, max = 120): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** A hex number that fits a JavaScript number exactly. */
function hexNumber(text: string, what: string, reply: string): number {
  if (!HEX.test(text)) fail(`${what} ${JSON.stringify(text)} is not hex`, reply);
  const value = parseInt(text, 16);
  if (!Number.isSafeInteger(value)) fail(`${what} ${text} is too large`, reply);
  return value;
}

/** The two-hex-digit signal number after `S`/`T` (exactly two digits, as GDB reads them). */
function signalField(payload: string): number {
  const digits = payload.slice(1, 3);
  if (digits.length !== 2 || !HEX.test(digits)) fail('expected a two-digit hex signal number', payload);
  return parseInt(digits, 16);
}

/** `W`/`X`: a hex number, then optionally `;process:pid`. */
function parseExit(payload: string): { value: number; pid?: number } {
  const [head, ...extras] = payload.slice(1).split(';');
  const value = hexNumber(head ?? '', payload[0] === 'W' ? 'exit status' : 'signal', payload);
  let pid: number | undefined;
  for (const extra of extras) {
    if (extra === '') continue;
    const colon = extra.indexOf(':');
    const name = colon < 0 ? extra : extra.slice(0, colon);
    if (name !== 'process' || colon < 0) fail(`unexpected ${JSON.stringify(extra)} after the status`, payload);
    pid = hexNumber(extra.slice(colon + 1), 'process id', payload);
  }
  return pid === undefined ? { value } : { value, pid };
}

function parseSignal(payload: string): SignalStop {
  const stop: SignalStop = { kind: 'signal', signal: signalField(payload), registers: new Map() };
  const rest = payload.slice(3);
  if (payload[0] === 'S') {
    if (rest !== '') fail('an S reply carries only the signal number', payload);
    return stop;
  }
  // Each pair ends with ';' (GDB insists); the last ';' is tolerated missing.
  for (const pair of rest.split(';')) {
    if (pair === '') continue;
    const colon = pair.indexOf(':');
    if (colon < 0) fail(`pair ${JSON.stringify(pair)} has no ":"`, payload);
    const name = pair.slice(0, colon);
    const value = pair.slice(colon + 1);
    if (name === 'thread') {
      if (!THREAD_ID.test(value)) fail(`thread id ${JSON.stringify(value)} is malformed`, payload);
      stop.thread = value;
    } else if (name === 'core') {
      stop.core = hexNumber(value, 'core', payload);
    } else if (REASONS.has(name)) {
      stop.reason = name as StopReason;
      if (value === '') delete stop.reasonValue;
      else stop.reasonValue = value;
    } else if (HEX.test(name)) {
      // Named pairs are checked first: names like "awatch" or "core" start with hex letters.
      const regnum = hexNumber(name, 'register number', payload);
      if (value.length % 2 !== 0 || !REGISTER_VALUE.test(value)) {
        fail(`register ${regnum} value ${JSON.stringify(value)} is not whole hex bytes`, payload);
      }
      stop.registers.set(regnum, value.toLowerCase());
    }
    // Any other name: ignored, so that the protocol can grow (manual, "Stop Reply Packets").
  }
  return stop;
}

/**
 * Parses a stop reply payload (already run-length decoded, as text).
 *
 * @example
 * ```ts
 * parseStopReply('S05');            // { kind: 'signal', signal: 5, registers: Map {} }
 * parseStopReply('T05thread:p01.01;'); // QEMU: thread 'p01.01'
 * parseStopReply('W00;process:a');  // { kind: 'exited', code: 0, pid: 10 }
 * ```
 * @throws {@link ReplyFormatError} for anything that is not a stop reply
 * (including `OK`, `E01`, an empty reply and `O` output).
 */
export function parseStopReply(payload: string): StopReply {
  switch (payload[0]) {
    case 'S':
    case 'T':
      return parseSignal(payload);
    case 'W': {
      const { value, pid } = parseExit(payload);
      return pid === undefined ? { kind: 'exited', code: value } : { kind: 'exited', code: value, pid };
    }
    case 'X': {
      const { value, pid } = parseExit(payload);
      return pid === undefined ? { kind: 'killed', signal: value } : { kind: 'killed', signal: value, pid };
    }
    case 'N':
      if (payload !== 'N') fail('an N reply carries nothing else', payload);
      return { kind: 'no-resumed' };
    default:
      return fail(payload === '' ? 'empty reply' : 'not a stop reply (expected S, T, W, X or N)', payload);
  }
}

/**
 * GDB's names of its signal numbers (`include/gdb/signals.def`), the numbering
 * of the remote protocol — not the host's.
 */
const SIGNAL_NAMES: readonly string[] = [
  'none', // 0: no signal
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGEMT',
  'SIGFPE',
  'SIGKILL',
  'SIGBUS',
  'SIGSEGV',
  'SIGSYS',
  'SIGPIPE',
  'SIGALRM',
  'SIGTERM',
  'SIGURG',
  'SIGSTOP',
  'SIGTSTP',
  'SIGCONT',
  'SIGCHLD',
  'SIGTTIN',
  'SIGTTOU',
  'SIGIO',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGVTALRM',
  'SIGPROF',
  'SIGWINCH',
  'SIGLOST',
  'SIGUSR1',
  'SIGUSR2',
  'SIGPWR',
];

/** GDB's "unknown signal" number. */
const GDB_SIGNAL_UNKNOWN = 143;

/**
 * The name of a GDB signal number, for messages: `signalName(5)` is
 * `'SIGTRAP'` (breakpoint or step), `2` `'SIGINT'` (interrupted), `11`
 * `'SIGSEGV'`, `0` `'none'`; numbers without a common name give `'signal N'`.
 */
export function signalName(signal: number): string {
  if (signal === GDB_SIGNAL_UNKNOWN) return 'unknown signal';
  return SIGNAL_NAMES[signal] ?? `signal ${signal}`;
}
