/**
 * What the proxy tests share: an ELF built with arm-none-eabi-gcc whose
 * sections lie both in RAM and in the NOR simulator's flash (partly covering
 * their sectors), gdb-multiarch driven through the proxy with
 * `target extended-remote`, and a proxy in front of a QEMU instance.
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serve, type ProxyHandle, type ServeOptions } from '../../lib/serve/index.js';

const run = promisify(execFile);

/** Where the test ELF puts things (the NOR simulator's 4 KiB sectors start at 0xC0000000). */
export const LAYOUT = {
  /** Code in flash, in the middle of sector 0xC0001000. */
  flashText: 0xc0001100,
  /** Data in flash from the middle of sector 0xC0003000 to the middle of 0xC0005000. */
  flashData: 0xc0003800,
  flashDataLength: 0x1a00,
  /** Initialised data in DTCM (not the algorithm's RAM, 0x21000000). */
  ramData: 0x20010000,
  ramDataLength: 0x100,
  /**
   * Code in DTCM, for stepping: QEMU follows the Cortex-M default memory map, where
   * 0xA0000000..0xDFFFFFFF is execute-never (a jump to the NOR simulator's flash faults).
   */
  ramText: 0x20010200,
} as const;

/** The byte at `i` of the flash data section (a pattern with `$`, `#`, `}` and `*` in it, which must be escaped). */
export function flashDataByte(i: number): number {
  return (i * 7 + (i >> 8)) & 0xff;
}

export interface TestElf {
  path: string;
  dir: string;
  /** Symbol addresses (Thumb bit clear for code). */
  symbols: Record<string, number>;
}

/**
 * Builds the test ELF: `flash_fn` in flash and `ram_fn` in RAM (each
 * `movs r0,#1; adds r0,#2; adds r0,#3; *_done: b *_done`), a data section in
 * flash that covers parts of three sectors, and one in RAM.
 * `flashDataLength` overrides the flash data size (the 4 MiB measurement).
 */
export async function buildTestElf(options: { flashDataLength?: number; random?: boolean } = {}): Promise<TestElf> {
  const dir = await mkdtemp(join(tmpdir(), 'rspflash-serve-elf-'));
  const length = options.flashDataLength ?? LAYOUT.flashDataLength;
  const data = new Uint8Array(length);
  if (options.random) {
    let x = 0x12345678;
    for (let i = 0; i < length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      data[i] = x & 0xff;
    }
  } else for (let i = 0; i < length; i++) data[i] = flashDataByte(i);
  await writeFile(join(dir, 'flashdata.bin'), data);
  await writeFile(
    join(dir, 'test.S'),
    `  .syntax unified
  .thumb
  .section .flashtext,"ax",%progbits
  .global flash_fn
  .global flash_done
  .thumb_func
flash_fn:
  movs r0, #1
  adds r0, #2
  adds r0, #3
  .thumb_func
flash_done:
  b flash_done
  .section .ramtext,"ax",%progbits
  .global ram_fn
  .global ram_done
  .thumb_func
ram_fn:
  movs r0, #1
  adds r0, #2
  adds r0, #3
  .thumb_func
ram_done:
  b ram_done
  .section .flashdata,"a",%progbits
  .global flash_data
flash_data:
  .incbin "${join(dir, 'flashdata.bin')}"
  .section .ramdata,"aw",%progbits
  .global ram_data
ram_data:
  .rept ${LAYOUT.ramDataLength / 4}
  .word 0xa5a55a5a
  .endr
`,
  );
  await writeFile(
    join(dir, 'test.ld'),
    `SECTIONS {
  .flashtext 0x${LAYOUT.flashText.toString(16)} : { *(.flashtext) }
  .flashdata 0x${LAYOUT.flashData.toString(16)} : { *(.flashdata) }
  .ramdata 0x${LAYOUT.ramData.toString(16)} : { *(.ramdata) }
  .ramtext 0x${LAYOUT.ramText.toString(16)} : { *(.ramtext) }
  /DISCARD/ : { *(.ARM.attributes) }
}
`,
  );
  const path = join(dir, 'test.elf');
  await run('arm-none-eabi-gcc', ['-mcpu=cortex-m0', '-mthumb', '-nostdlib', '-nostartfiles', '-T', join(dir, 'test.ld'), '-o', path, join(dir, 'test.S')]);
  const { stdout } = await run('arm-none-eabi-nm', [path]);
  const symbols: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([0-9a-f]+)\s+\w\s+(\S+)$/.exec(line.trim());
    if (m) symbols[m[2]!] = parseInt(m[1]!, 16) & ~1;
  }
  return { path, dir, symbols };
}

export interface GdbSession {
  stdout: string;
  stderr: string;
  code: number | null;
}

/**
 * Runs gdb-multiarch in batch mode against the proxy: `target extended-remote`
 * then the commands, then `disconnect` (the core stays halted). With `mi`,
 * the commands are MI commands on stdin (cortex-debug's way).
 */
export function gdbThroughProxy(target: string, commands: readonly string[], options: { file?: string; timeoutMs?: number } = {}): Promise<GdbSession> {
  const pre = ['set confirm off', 'set pagination off', 'set width 0', 'set architecture arm', `target extended-remote ${target}`];
  const args = ['-nx', '-batch', ...[...pre, ...commands, 'disconnect'].flatMap((c) => ['-ex', c])];
  if (options.file) args.push(options.file);
  return new Promise((resolve, reject) => {
    const child = execFile('gdb-multiarch', args, { maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error('gdb-multiarch not found'));
      if (err && err.killed) return reject(new Error(`gdb-multiarch killed after ${options.timeoutMs ?? 60_000} ms:\n${stdout}\n${stderr}`));
      resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : null) : 0 });
    });
    child.stdin?.end();
  });
}

/**
 * Runs gdb-multiarch with `--interpreter=mi` and feeds it MI commands one per
 * line (as cortex-debug does), ending with `-gdb-exit`. Resolves with the
 * whole MI transcript.
 */
export function gdbMi(commands: readonly string[], options: { file?: string; timeoutMs?: number } = {}): Promise<GdbSession> {
  const args = ['-nx', '--interpreter=mi2', ...(options.file ? [options.file] : [])];
  return new Promise((resolve, reject) => {
    const child = execFile('gdb-multiarch', args, { maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err && err.killed) return reject(new Error(`gdb-multiarch (MI) killed:\n${stdout}\n${stderr}`));
      resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : null) : 0 });
    });
    child.stdin?.end([...commands, '-gdb-exit'].join('\n') + '\n');
  });
}

/** gdb-multiarch in MI mode, kept open: each command waits for its `^done`/`^error` record. */
export interface MiSession {
  /** Sends one MI command and resolves with the output up to and including its result record. */
  command(line: string, timeoutMs?: number): Promise<string>;
  /** `-gdb-exit`, and waits for the process to end. */
  close(): Promise<void>;
}

/** Starts an interactive gdb-multiarch MI session (what cortex-debug keeps open while debugging). */
export function startMi(file?: string): MiSession {
  const child = spawn('gdb-multiarch', ['-nx', '--interpreter=mi2', ...(file ? [file] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
  let buffer = '';
  let token = 100;
  let waiter: { token: number; resolve: (text: string) => void } | undefined;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffer += chunk;
    if (!waiter) return;
    // The result record of a command carries its token: `123^done,…`.
    const m = new RegExp(`^${waiter.token}\\^(done|error|connected|running|exit).*$`, 'm').exec(buffer);
    if (m) {
      const end = m.index + m[0].length;
      const text = buffer.slice(0, end);
      buffer = buffer.slice(end);
      const w = waiter;
      waiter = undefined;
      w.resolve(text);
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    command(line, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`gdb MI: no result for '${line}' within ${timeoutMs} ms; output: ${buffer}`)), timeoutMs);
        const t = token++;
        waiter = {
          token: t,
          resolve: (text) => {
            clearTimeout(timer);
            resolve(text);
          },
        };
        child.stdin.write(`${t}${line}\n`);
      });
    },
    async close() {
      child.stdin.end('-gdb-exit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What {@link withServeProxy} passes on to `serve`, and the folder its socket goes in. */
export type ServeProxyOptions = Pick<ServeOptions, 'upstream' | 'algorithms' | 'board'> & { dir: string };

let proxies = 0;

/**
 * Runs `body` with a proxy (`serve`) listening on a new Unix socket in `dir`,
 * without a recovery journal (each test sets the flash it needs), and the lines
 * the proxy has logged so far; closes the proxy when `body` settles.
 */
export async function withServeProxy<T>(options: ServeProxyOptions, body: (proxy: ProxyHandle, log: string[]) => Promise<T>): Promise<T> {
  const { dir, ...rest } = options;
  const log: string[] = [];
  const proxy = await serve({ ...rest, listen: { path: join(dir, `p${proxies++}.sock`) }, journal: false, onLog: (line) => log.push(line) });
  try {
    return await body(proxy, log);
  } finally {
    await proxy.close();
  }
}
