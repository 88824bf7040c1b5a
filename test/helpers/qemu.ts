/**
 * Starts QEMU Cortex-M machines halted (`-S`) with a gdbstub, for tests that
 * talk RSP to real code. Linux only (readiness is read from /proc/net).
 *
 * ```ts
 * const q = await startQemu({ machine: 'mps3-an547' });
 * const sock = net.connect(q.connectOptions);   // QEMU serves ONE client at a time
 * ...
 * await q.stop();
 * ```
 *
 * QEMU gdbstub behaviour worth knowing (7.2, checked with gdb-multiarch 13):
 * - A client connecting stops the VM (it does so even for a bare connect/close,
 *   which is why readiness is not probed by connecting).
 * - Closing the connection leaves the VM as it is (halted stays halted).
 *   gdb's `disconnect` just closes; gdb's `detach` (and gdb quitting while
 *   attached) sends `D`, on which QEMU RESUMES the VM.
 * - xPSR writes from the debugger never change IPSR: after a fault the core
 *   stays in Handler mode; `monitor system_reset` (qRcmd) resets it, halted.
 * - A fault while in HardFault locks up and ends the QEMU process.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type QemuMachine = 'mps3-an547' | 'microbit';

/** Options for `net.connect()` (or our own connect()) to reach the gdbstub. */
export type QemuConnectOptions = { path: string } | { host: string; port: number };

export interface QemuOptions {
  machine: QemuMachine;
  /** ELF given to `-kernel`; default: the boot image of the machine ({@link FIXTURES}). */
  kernel?: string;
  /** gdbstub on a Unix socket in a fresh temp dir (default) or on a free 127.0.0.1 port. */
  transport?: 'unix' | 'tcp';
  /** Appended to the QEMU command line. */
  extraArgs?: string[];
}

export interface QemuInstance {
  machine: QemuMachine;
  /** Unix transport: the gdbstub socket. */
  socketPath?: string;
  /** TCP transport: always 127.0.0.1. */
  host?: string;
  /** TCP transport: the gdbstub port. */
  port?: number;
  pid: number;
  connectOptions: QemuConnectOptions;
  /** SIGTERM, then SIGKILL after 2 s; removes temp files. Idempotent. */
  stop(): Promise<void>;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const BUILD = resolve(HERE, '..', 'fixtures', 'build');
const b = (name: string): string => join(BUILD, name);

/**
 * Absolute paths of the built fixtures (test/fixtures/build, committed; rebuild
 * with `npm run fixtures`). See test/fixtures/README.md for what each one is.
 * `*Json` files describe an algorithm (geometry, offsets, entry symbols) or a
 * boot image (symbol addresses); `*Blob` = PrgCode + PrgData RW + zeroed ZI.
 */
export const FIXTURES = {
  dir: BUILD,
  bootAn547: b('boot-an547.elf'),
  bootAn547Json: b('boot-an547.json'),
  bootMicrobit: b('boot-microbit.elf'),
  bootMicrobitJson: b('boot-microbit.json'),
  norSim: b('nor-sim.flm'),
  norSimBlob: b('nor-sim.blob'),
  norSimJson: b('nor-sim.json'),
  norSimYaml: b('nor-sim.yaml'),
  norSimSegger: b('nor-sim-segger.elf'),
  norSimSeggerBlob: b('nor-sim-segger.blob'),
  norSimSeggerJson: b('nor-sim-segger.json'),
  nvmcNrf51: b('nvmc-nrf51.flm'),
  nvmcNrf51Blob: b('nvmc-nrf51.blob'),
  nvmcNrf51Json: b('nvmc-nrf51.json'),
  broken: b('broken.flm'),
  brokenBlob: b('broken.blob'),
  brokenJson: b('broken.json'),
} as const;

/** Contents of an algorithm's `<name>.json` (written by test/fixtures/tools/flmtool.mjs). */
export interface AlgorithmFixtureInfo {
  file: string;
  device: {
    vers: number;
    devName: string;
    devType: number;
    devAdr: number;
    szDev: number;
    szPage: number;
    valEmpty: number;
    toProg: number;
    toErase: number;
    sectors: { size: number; address: number }[];
  };
  codeSize: number;
  /** Offset of PrgData RW in the blob: R9 = load address + rwOffset. */
  rwOffset: number;
  rwSize: number;
  ziOffset: number;
  ziSize: number;
  blobSize: number;
  /** ELF st_value of each exported function: offset from blob start WITH the Thumb bit set. */
  functions: Record<string, number>;
}

/** Contents of a boot image's `<name>.json`. */
export interface BootFixtureInfo {
  file: string;
  /** Global symbols; functions WITHOUT the Thumb bit (usable as PC / breakpoint address). */
  addresses: Record<string, number>;
}

/** Reads and parses a fixture JSON (`FIXTURES.norSimJson`, …). */
export function readFixtureJson<T = AlgorithmFixtureInfo>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

const DEFAULT_KERNEL: Record<QemuMachine, string> = {
  'mps3-an547': FIXTURES.bootAn547,
  microbit: FIXTURES.bootMicrobit,
};

const QEMU = 'qemu-system-arm';
const READY_TIMEOUT_MS = 10_000;

function findOnPath(exe: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, exe);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

// ---- cleanup of every instance on process exit ---------------------------------------------

interface Live {
  child: ChildProcess;
  tempDir: string | undefined;
}
const live = new Set<Live>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const l of live) {
      try {
        l.child.kill('SIGKILL');
      } catch {
        // already gone
      }
      if (l.tempDir) rmSync(l.tempDir, { recursive: true, force: true });
    }
    live.clear();
  });
}

// ---- readiness without connecting -----------------------------------------------------------

/** A listening Unix socket shows in /proc/net/unix with flag __SO_ACCEPTCON (0x10000). */
function unixListening(path: string): boolean {
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return existsSync(path); // no procfs: the file appears at bind(), listen() follows at once
  }
  for (const line of table.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path
    if (cols.length >= 8 && cols.slice(7).join(' ') === path) {
      if ((parseInt(cols[3] ?? '0', 16) & 0x10000) !== 0) return true;
    }
  }
  return false;
}

/** 127.0.0.1:port in state LISTEN (0A) in /proc/net/tcp. */
function tcpListening(port: number): boolean {
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return false;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[1] === local && cols[3] === '0A';
  });
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- start ----------------------------------------------------------------------------------

class QemuStartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'QemuStartError';
  }
}

async function startOnce(options: QemuOptions, qemuPath: string): Promise<QemuInstance> {
  const machine = options.machine;
  const kernel = options.kernel ?? DEFAULT_KERNEL[machine];
  if (!existsSync(kernel)) throw new Error(`kernel ${kernel} not found (run: npm run fixtures)`);
  const transport = options.transport ?? 'unix';

  let tempDir: string | undefined;
  let socketPath: string | undefined;
  let port: number | undefined;
  let gdbArgs: string[];
  if (transport === 'unix') {
    tempDir = mkdtempSync(join(tmpdir(), 'rspflash-qemu-'));
    socketPath = join(tempDir, 'gdb.sock');
    gdbArgs = ['-chardev', `socket,id=g0,path=${socketPath},server=on,wait=off`, '-gdb', 'chardev:g0'];
  } else {
    port = await freePort();
    gdbArgs = ['-gdb', `tcp:127.0.0.1:${port}`];
  }

  const args = [
    '-M', machine,
    '-nographic',
    '-S',
    '-monitor', 'none',
    '-serial', 'null',
    '-kernel', kernel,
    ...gdbArgs,
    ...(options.extraArgs ?? []),
  ];
  // setpriv (util-linux) execs QEMU with PR_SET_PDEATHSIG=SIGKILL: QEMU dies with the test
  // process even when that is killed by a signal (vitest ends its workers with SIGTERM, which
  // skips 'exit' handlers). Same pid as QEMU itself.
  const setpriv = findOnPath('setpriv');
  const child = setpriv
    ? spawn(setpriv, ['--pdeathsig', 'KILL', qemuPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(qemuPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const entry: Live = { child, tempDir };
  live.add(entry);
  installExitHook();

  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolveExit) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(entry);
      resolveExit();
    });
  });
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  // A forgotten instance must not keep the test process alive; the exit hook kills it.
  child.unref();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exitPromise.then(() => true), sleep(2000).then(() => false)]);
        if (!killed && !exited) {
          child.kill('SIGKILL');
          await exitPromise;
        }
      }
      live.delete(entry);
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError) {
      await stop();
      throw new Error(`${QEMU} failed to start: ${spawnError.message}`);
    }
    if (exited) {
      await stop();
      const inUse = /in use|Failed to bind|could not bind/i.test(stderr);
      throw new QemuStartError(
        `${QEMU} -M ${machine} exited (${exited.signal ?? `code ${exited.code}`}) before its gdbstub was ready: ${stderr.trim()}`,
        inUse,
      );
    }
    if (socketPath ? unixListening(socketPath) : tcpListening(port!)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${QEMU} -M ${machine}: gdbstub not listening after ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`);
    }
    await sleep(5);
  }

  const connectOptions: QemuConnectOptions = socketPath
    ? { path: socketPath }
    : { host: '127.0.0.1', port: port! };
  const instance: QemuInstance = {
    machine,
    pid: child.pid ?? -1,
    connectOptions,
    stop,
  };
  if (socketPath) instance.socketPath = socketPath;
  else {
    instance.host = '127.0.0.1';
    instance.port = port!;
  }
  return instance;
}

/**
 * Starts `qemu-system-arm -M <machine> -nographic -S -monitor none -serial null
 * -kernel <elf>` with a gdbstub and resolves once the stub listens (read from
 * /proc/net, never by connecting). The core is halted at the reset vector.
 * TCP: retries with another port if the chosen one was taken meanwhile.
 */
export async function startQemu(options: QemuOptions): Promise<QemuInstance> {
  const qemuPath = findOnPath(QEMU);
  if (!qemuPath) {
    throw new Error(
      'qemu-system-arm not found: `npm test` installs it via scripts/bootstrap.sh (apt-get install qemu-system-arm)',
    );
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, qemuPath);
    } catch (err) {
      if (err instanceof QemuStartError && err.portInUse && attempt < 5) continue;
      throw err;
    }
  }
}
