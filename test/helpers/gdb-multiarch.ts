/**
 * Independent access to a QEMU gdbstub through `gdb-multiarch` (not our RSP
 * code), to check what rspflash did — or to set a target up — with a second
 * implementation.
 *
 * QEMU's gdbstub serves ONE client at a time: call these only while no other
 * client is connected. Every session ends with gdb's `disconnect`, which
 * leaves the core halted; gdb's `detach` (and gdb quitting while attached)
 * would make QEMU resume the VM. A client connecting stops a running VM.
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QemuConnectOptions } from './qemu.js';

const GDB = 'gdb-multiarch';

export interface GdbRunOptions {
  /**
   * After this many ms gdb gets SIGINT, which interrupts a pending `continue`
   * (the target halts, "Program received signal SIGINT") and lets the
   * remaining commands run. Default: no interrupt.
   */
  interruptAfterMs?: number;
  /** Hard limit: gdb is killed (and the promise rejects) after this many ms. Default 30 s. */
  timeoutMs?: number;
  /** ELF whose symbols gdb loads (`gdb-multiarch <file>`), e.g. FIXTURES.bootAn547. */
  file?: string;
  /** Return output even when gdb reported errors on stderr. Default false: throw. */
  allowErrors?: boolean;
}

export interface GdbResult {
  stdout: string;
  stderr: string;
  /** gdb's exit code (0 even when a command in the middle failed). */
  code: number | null;
}

/** `target remote` argument for the connect options of a QEMU instance. */
export function gdbTarget(conn: QemuConnectOptions): string {
  return 'path' in conn ? conn.path : `${conn.host}:${conn.port}`;
}

/**
 * Runs gdb-multiarch in batch mode: `set architecture arm`, `target remote`,
 * the commands, then `disconnect` (core stays halted). Resolves with stdout
 * and stderr; never throws for gdb-level errors (see {@link gdbRun}).
 */
export function gdbExec(
  conn: QemuConnectOptions,
  commands: readonly string[],
  options: GdbRunOptions = {},
): Promise<GdbResult> {
  const pre = [
    'set confirm off',
    'set pagination off',
    'set width 0',
    'set height 0',
    // Do not look for source files when printing a frame (avoids "No such file" noise).
    'set print frame-info location-and-address',
    'set architecture arm',
    `target remote ${gdbTarget(conn)}`,
  ];
  const all = [...pre, ...commands, 'disconnect'];
  const args = ['-nx', '-batch', ...all.flatMap((c) => ['-ex', c])];
  if (options.file) args.push(options.file);
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = execFile(GDB, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      clearTimeout(interrupt);
      clearTimeout(kill);
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${GDB} not found (apt-get install gdb-multiarch)`));
        return;
      }
      if (timedOut) {
        reject(new Error(`${GDB} killed after ${timeoutMs} ms; output so far:\n${stdout}\n${stderr}`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ stdout, stderr, code });
    });
    let timedOut = false;
    const interrupt =
      options.interruptAfterMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGINT'), options.interruptAfterMs);
    const kill = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
  });
}

/** stderr lines gdb prints in normal operation (warnings and their continuation lines). */
const BENIGN = [/^warning:/i, /^determining executable automatically\./];

/** stderr lines that are errors (gdb prints errors there without a prefix). */
function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !BENIGN.some((re) => re.test(l)));
}

/**
 * Like {@link gdbExec} but resolves with stdout only, and rejects if gdb
 * printed an error (unless `allowErrors`).
 */
export async function gdbRun(
  conn: QemuConnectOptions,
  commands: readonly string[],
  options: GdbRunOptions = {},
): Promise<string> {
  const r = await gdbExec(conn, commands, options);
  const errors = errorLines(r.stderr);
  if (!options.allowErrors && (errors.length > 0 || (r.code !== 0 && r.code !== null))) {
    throw new Error(`${GDB} failed (exit ${r.code}): ${errors.join(' | ')}\n--- stdout ---\n${r.stdout}`);
  }
  return r.stdout;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Reads `length` bytes at `address` with gdb's `dump binary memory`. */
export async function gdbReadMemory(
  conn: QemuConnectOptions,
  address: number,
  length: number,
): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const dir = await mkdtemp(join(tmpdir(), 'rspflash-gdb-'));
  try {
    const file = join(dir, 'mem.bin');
    await gdbRun(conn, [`dump binary memory ${file} ${hex(address)} ${hex(address + length)}`]);
    const data = await readFile(file);
    if (data.length !== length) throw new Error(`gdb dumped ${data.length} bytes, expected ${length}`);
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes `data` at `address` with gdb's `restore FILE binary ADDRESS`
 * (plain RAM only: QEMU ignores debugger writes to MMIO and to nRF51 flash).
 */
export async function gdbWriteMemory(conn: QemuConnectOptions, address: number, data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  const dir = await mkdtemp(join(tmpdir(), 'rspflash-gdb-'));
  try {
    const file = join(dir, 'mem.bin');
    await writeFile(file, data);
    await gdbRun(conn, [`restore ${file} binary ${hex(address)}`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Parses `info registers` style output (`r0  0x1  1`) into name → value. */
export function parseGdbRegisters(stdout: string): Record<string, number> {
  const regs: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([a-z][a-z0-9_]*)\s+(0x[0-9a-f]+)\b/i.exec(line.trim());
    if (m && m[1] && m[2]) regs[m[1].toLowerCase()] = parseInt(m[2], 16);
  }
  return regs;
}
