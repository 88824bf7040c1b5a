/**
 * The built rspflash CLI (dist/bin/rspflash.js; `npm run build` makes it) run
 * as a child process, as a user runs it: the end-to-end CLI tests check its
 * exit code and what it printed on stdout and stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The built binary, from the repository root (where vitest runs). */
export const CLI = resolve('dist/bin/rspflash.js');

/** Throws when the binary is missing, so a run without `npm run build` says why instead of failing every test. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
}

/** How one run ended. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Where and with what the CLI runs. */
export interface CliOptions {
  /** Working folder; the test process's when absent. */
  cwd?: string;
  /** Variables set over the test process's environment (e.g. XDG_CACHE_HOME, so recovery journals stay in the test's folder). */
  env?: Record<string, string>;
}

/** A CLI process still running: its output so far, and how it ended once it closes. */
export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Settles when the process has exited and its pipes have closed (so the output is whole). */
  closed: Promise<CliResult>;
}

/** Starts the CLI with `args` and collects its stdout and stderr; for a run the test must signal or wait on. */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<CliResult>((resolvePromise) => child.on('close', (code) => resolvePromise({ code, stdout, stderr })));
  return { child, stdout: () => stdout, stderr: () => stderr, closed };
}

/** Options of {@link runCli}. */
export interface RunCliOptions extends CliOptions {
  /** Killed (and the run rejected) after this long; 60 s when absent. */
  timeoutMs?: number;
  /** Gets the child once it runs (to send signals or close its pipes), with its stderr so far. */
  onStart?: (child: ChildProcess, output: { stderr: () => string }) => void;
}

/** Runs the CLI with `args` to its end; rejects (with its stderr) if it does not finish in time. */
export function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolvePromise, reject) => {
    const run = startCli(args, options);
    const timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`rspflash ${args.join(' ')} did not finish in ${timeoutMs} ms\n${run.stderr()}`));
    }, timeoutMs);
    void run.closed.then((result) => {
      clearTimeout(timer);
      resolvePromise(result);
    });
    options.onStart?.(run.child, { stderr: run.stderr });
  });
}

/** The error lines of the CLI's stderr (the lines it starts with ✖), in order. */
export const errorLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('✖'));
