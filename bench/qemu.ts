/**
 * A small QEMU launcher for the benchmark: `mps3-an547` halted (`-S`), gdbstub
 * on a free 127.0.0.1 port, ready when the port shows as LISTEN in
 * /proc/net/tcp. Readiness is never probed by connecting: any connection stops
 * the VM and QEMU's stub serves one client at a time.
 *
 * (test/helpers/qemu.ts does the same for vitest; it is not compiled into
 * dist/, so the benchmark carries its own.)
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A running QEMU with its gdbstub on `127.0.0.1:port`. */
export interface BenchQemu {
  readonly port: number;
  readonly pid: number;
  /** `host:port` for connect() and gdb's `target remote`. */
  readonly endpoint: string;
  /** SIGTERM, then SIGKILL after 2 s. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const live = new Set<ChildProcess>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  // Leave no emulator behind, whatever ends the benchmark.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** 127.0.0.1:port in state LISTEN (0A) in /proc/net/tcp. */
function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((line) => {
      const cols = line.trim().split(/\s+/);
      return cols[1] === local && cols[3] === '0A';
    });
}

/** CPU time (user + system, all threads) a process has used so far, ms; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    // Fields after the command name: state is field 3, utime 14 and stime 15 (proc(5)), in clock ticks.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts `qemu-system-arm -M mps3-an547 -S` with `kernel` and waits until its gdbstub listens. */
export async function startQemu(kernel: string): Promise<BenchQemu> {
  if (!existsSync(kernel)) throw new Error(`boot image ${kernel} not found (npm run fixtures)`);
  installExitHook();
  const port = await freePort();
  const args = ['-M', 'mps3-an547', '-nographic', '-S', '-monitor', 'none', '-serial', 'null', '-kernel', kernel, '-gdb', `tcp:127.0.0.1:${port}`];
  // setpriv --pdeathsig: QEMU dies with us even if we are killed by a signal.
  const child = existsSync('/usr/bin/setpriv')
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', 'qemu-system-arm', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('qemu-system-arm', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4096)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const gone = await Promise.race([exited.then(() => true), sleep(2000).then(() => false)]);
        if (!gone) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      live.delete(child);
    })());
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!listening(port)) {
    if (spawnError) throw new Error(`qemu-system-arm failed to start: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`qemu-system-arm exited before its gdbstub listened: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`qemu-system-arm: gdbstub not listening after ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`);
    }
    await sleep(5);
  }
  return { port, pid: child.pid ?? -1, endpoint: `127.0.0.1:${port}`, stop };
}
