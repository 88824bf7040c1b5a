/**
 * The peer RSP client: gdb-multiarch's `restore FILE binary ADDR`, timed as a
 * whole process, and the same gdb run without the restore (start, connect,
 * read the target description, disconnect) so the difference is the transfer.
 * @module
 */
import { execFile } from 'node:child_process';

const GDB = 'gdb-multiarch';

function runGdb(endpoint: string, commands: readonly string[]): Promise<number> {
  const all = ['set confirm off', 'set pagination off', 'set architecture arm', `target remote ${endpoint}`, ...commands, 'disconnect'];
  const args = ['-nx', '-batch', ...all.flatMap((c) => ['-ex', c])];
  const start = performance.now();
  return new Promise((resolve, reject) => {
    execFile(GDB, args, { encoding: 'utf8', timeout: 300_000 }, (err, _stdout, stderr) => {
      const ms = performance.now() - start;
      const problems = stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !/^warning:/i.test(l) && !/^determining executable automatically/i.test(l));
      if (err) reject(new Error(`${GDB} failed: ${err.message} ${problems.join(' | ')}`));
      else if (problems.length > 0) reject(new Error(`${GDB} reported: ${problems.join(' | ')}`));
      else resolve(ms);
    });
  });
}

/** The gdb version line, or undefined when gdb-multiarch is missing. */
export function gdbVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(GDB, ['--version'], { encoding: 'utf8' }, (err, stdout) => resolve(err ? undefined : stdout.split('\n')[0]?.trim()));
  });
}

/** Time of a gdb run that only connects and disconnects, ms. */
export function gdbConnectOnly(endpoint: string): Promise<number> {
  return runGdb(endpoint, []);
}

/** Time of a gdb run that restores `file` (raw binary) at `address`, ms (whole process). */
export function gdbRestore(endpoint: string, file: string, address: number): Promise<number> {
  return runGdb(endpoint, [`restore ${file} binary 0x${address.toString(16)}`]);
}
