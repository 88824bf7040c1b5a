/**
 * The CLI's arguments as values: numbers with size suffixes, RAM regions,
 * timeouts, check modes. Pure: every refusal is a {@link UsageError} (exit 2)
 * raised before anything connects.
 */
import { UsageError, hex32, type MemoryRange } from '../lib/index.js';

/** One past the last byte a 32-bit address can name. */
const ADDRESS_SPACE = 2 ** 32;
/** The longest delay Node's timers take (a signed 32-bit count of ms); a larger one fires at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Size suffixes and their factors; the tool prints KiB, and people type K. */
const SUFFIXES: Readonly<Record<string, number>> = { '': 1, k: 1024, kib: 1024, m: 1 << 20, mib: 1 << 20, g: 2 ** 30, gib: 2 ** 30 };

/**
 * Parses an address or a size: `0x1000`, `4096`, `64K`, `64KiB`, `1M`, `1MiB`
 * (binary units: K = 1024). Refuses values that do not fit in 32 bits.
 *
 * @example
 * ```ts
 * parseNumber('64KiB', '--length'); // 65536
 * ```
 */
export function parseNumber(text: string, what: string): number {
  const m = /^(0x[0-9a-f]+|\d+)\s*([a-z]*)$/i.exec(text.trim());
  const factor = m ? SUFFIXES[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) {
    throw new UsageError(`${what}: '${text}' is not a number (use 0x…, decimal, or a K, KiB, M or MiB suffix)`);
  }
  const value = Number(m[1]) * factor;
  if (value > ADDRESS_SPACE) throw new UsageError(`${what}: '${text}' is more than the 4 GiB a 32-bit address reaches`);
  return value;
}

/** Parses a length that must be above 0 (`--length`, `read`'s length). */
export function parseLength(text: string, what: string): number {
  const length = parseNumber(text, what);
  if (length === 0) throw new UsageError(`${what} must be above 0 (got '${text}')`);
  return length;
}

/** A range `address`..`address + length - 1` that must not wrap past 4 GiB. */
export function checkedRange(address: number, length: number, what: string): MemoryRange {
  if (address >= ADDRESS_SPACE) throw new UsageError(`${what}: ${hex32(address)} is not a 32-bit address`);
  if (address + length > ADDRESS_SPACE) {
    throw new UsageError(`${what}: ${length} bytes from ${hex32(address)} wrap past the end of the 4 GiB address space`);
  }
  return { address, length };
}

/**
 * Parses `--ram ADDR:SIZE` into a RAM region, refusing an empty region and
 * one that wraps past 4 GiB (a GDB server would answer that with a bare `E14`).
 */
export function parseRam(text: string): MemoryRange {
  const [start, size, extra] = text.split(':');
  if (start === undefined || size === undefined || extra !== undefined || start === '' || size === '') {
    throw new UsageError(`--ram '${text}': use ADDR:SIZE, e.g. 0x20000000:0x20000 or 0x20000000:128K`);
  }
  return checkedRange(parseNumber(start, '--ram address'), parseLength(size, '--ram size'), '--ram');
}

/**
 * Parses `--timeout MS`: a whole number of milliseconds from 1 to
 * {@link MAX_TIMEOUT_MS} (0 would time out every request; Node fires a larger
 * timer at once).
 */
export function parseTimeout(text: string): number {
  const m = /^\d+$/.exec(text.trim());
  const ms = m ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1) throw new UsageError(`--timeout '${text}': give a whole number of milliseconds above 0, e.g. 10000`);
  if (ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout ${text}: at most ${MAX_TIMEOUT_MS} ms (about 24.8 days) — Node's timers take no more`);
  return ms;
}

/** Compare and verify modes the CLI accepts; `crc` is the deprecated name of `hash`. */
export type CheckModeFlag = 'auto' | 'algo' | 'hash' | 'read' | 'none' | 'crc';

/**
 * The library's mode for a `--verify`/`--compare` value, and a deprecation
 * note when the old name was used (`crc` was always a hash, never a CRC).
 */
export function checkMode<T extends CheckModeFlag>(flag: T, option: string): { mode: Exclude<T, 'crc'> | 'hash'; note?: string } {
  if (flag === 'crc') return { mode: 'hash', note: `${option} crc is deprecated: it means ${option} hash (a 128-bit on-target hash, not a CRC)` };
  return { mode: flag as Exclude<T, 'crc'> };
}
