/**
 * One flash session from start to end, the lifecycle the CLI, the gdb proxy,
 * scripts and tests share: connect → reset (if asked) → load the algorithm →
 * the job → restore what was borrowed → leave the target halted, running or
 * reset → close. Every path out restores and closes, failures included.
 * @module
 */
import { GdbClient, type GdbConnectOptions, type GdbEndpoint } from './gdb/client.js';
import { UsageError, toRspflashError } from './errors.js';
import { boardPreset, type BoardPreset } from './boards.js';
import type { FlashAlgorithm } from './algo/algorithm.js';
import type { RamRegion } from './algo/layout.js';
import { formatRange, type MemoryRange } from './range.js';
import { Flasher, type FlasherOptions } from './flash/flasher.js';
import { parseEndpoint } from './endpoint.js';

/** What the target is left doing when the session ends. */
export type AfterSession = 'halt' | 'run' | 'reset';

/** Options of {@link withFlasher}. */
export interface SessionOptions extends Partial<Omit<FlasherOptions, 'ram' | 'signal'>> {
  /**
   * The GDB server: `'localhost:2331'`, an endpoint object, or a connected
   * {@link GdbClient} (borrowed: left open at the end, target halted unless `after` says otherwise).
   */
  gdb: string | GdbEndpoint | GdbClient;
  /** The flash algorithm (see `loadAlgorithm`). */
  algorithm: FlashAlgorithm;
  /** A board preset (by name or object) giving `ram` and `memoryMapped`; explicit options win. */
  board?: string | BoardPreset;
  /** RAM lent to the algorithm: `{ address, length }` (or the older `{ start, size }`). */
  ram?: MemoryRange | RamRegion;
  /** Reset and halt the target before loading the algorithm (the server's `monitor reset` command). Default false. */
  reset?: boolean;
  /** Leave the target halted (default), running, or reset and running. */
  after?: AfterSession;
  /** Cancels the session between steps: the target is restored and the connection closed. */
  signal?: AbortSignal;
  /** Options for connecting (request timeout). */
  connect?: GdbConnectOptions;
  /** Lines worth telling a user (connected to what, reset done, target resumed). */
  onInfo?: (line: string) => void;
}

/**
 * Runs `job` with a {@link Flasher} on a fresh (or given) connection and
 * cleans up on every path: the flasher restores the registers, RAM and
 * breakpoints it borrowed, then the target is left as `after` says and the
 * connection closed (unless the caller passed its own client). The job's
 * error is what is thrown; a failure to restore after it is secondary (logged
 * through `onInfo`).
 *
 * @example
 * ```ts
 * await withFlasher({ gdb: 'localhost:2331', algorithm, board: 'alif-e7-hp', after: 'halt' }, async (flasher) => {
 *   await flasher.program(image, { signal, onProgress });
 * });
 * ```
 */
export async function withFlasher<T>(options: SessionOptions, job: (flasher: Flasher, gdb: GdbClient) => Promise<T>): Promise<T> {
  const board = typeof options.board === 'string' ? boardPreset(options.board) : options.board;
  const ram = regionOf(options.ram) ?? board?.ram;
  if (ram === undefined) {
    throw new UsageError('Where may the algorithm run? Give ram: { address, length } (RAM the core can execute from) or a board');
  }
  const memoryMapped = options.memoryMapped ?? board?.memoryMapped ?? true;
  const info = options.onInfo ?? (() => undefined);
  const after = options.after ?? 'halt';
  return withConnection(options, async (gdb, where) => {
    const { board: _b, ram: _r, gdb: _g, reset: _x, after: _a, connect: _c, onInfo: _i, algorithm, ...rest } = options;
    const journal = rest.journal === false ? false : { ...rest.journal, key: rest.journal?.key ?? journalKey(where, algorithm) };
    // A reset at the end re-initialises registers and RAM: restoring them first would only cost time (issue 12).
    const restore = rest.restore ?? after !== 'reset';
    if (!restore) info("Not restoring the borrowed RAM and registers: the target is reset at the end (after: 'reset')");
    const flasher = await Flasher.create(gdb, algorithm, { ...rest, ram, memoryMapped, journal, restore });
    let result: T;
    try {
      if (options.signal?.aborted) throw toRspflashError(options.signal.reason ?? new DOMException('Aborted', 'AbortError'));
      result = await job(flasher, gdb);
    } catch (err) {
      // The job's own error is what the caller needs; a failure to restore afterwards is secondary.
      await flasher.close().catch((e: unknown) => info(`Could not restore the target after the failure: ${toRspflashError(e).message}`));
      throw err;
    }
    await flasher.close();
    // A killed run's state was found and left as it was (not "restored"): say so, and never run the core from it.
    const dirty = flasher.runner.dirty;
    if (dirty && after === 'run') throw dirty;
    if (dirty && after === 'halt') info(`Warning: ${dirty.message}. ${dirty.hint}`);
    return result;
  });
}

/** What {@link withConnection} needs: where the server is, and what to do before and after. */
export type ConnectionOptions = Pick<SessionOptions, 'gdb' | 'reset' | 'after' | 'signal' | 'connect' | 'onInfo'>;

/**
 * The connection half of a session, shared by {@link withFlasher} and
 * `programRegions`: connect (or borrow a connected client), reset if asked,
 * run `body`, then leave the target as `after` says and close (a borrowed
 * client is left open). `where` names the server for journal keys
 * (`localhost:2331`, `unix:/path`).
 */
export async function withConnection<T>(options: ConnectionOptions, body: (gdb: GdbClient, where: string) => Promise<T>): Promise<T> {
  const info = options.onInfo ?? (() => undefined);
  const after = options.after ?? 'halt';
  if (options.signal?.aborted) throw toRspflashError(options.signal.reason ?? new DOMException('Aborted', 'AbortError'));
  const borrowed = options.gdb instanceof GdbClient;
  if (borrowed && after === 'run') {
    throw new UsageError("after: 'run' needs a connection of the session's own: a borrowed client is left to its owner, target halted");
  }
  const gdb =
    options.gdb instanceof GdbClient
      ? options.gdb
      : await GdbClient.connect(typeof options.gdb === 'string' ? parseEndpoint(options.gdb) : options.gdb, { signal: options.signal, ...options.connect });
  let closed = false;
  try {
    info(`Connected to ${gdb.server.kind === 'unknown' ? 'a GDB server' : gdb.server.kind} (PacketSize ${gdb.server.packetSize})`);
    if (options.reset) {
      const command = gdb.server.dialect.resetHaltCommand;
      if (!command) throw new UsageError(`reset: no known reset command for this server (${gdb.server.kind})`);
      await gdb.monitor(command);
      info(`Reset and halted the target (monitor ${command})`);
    }
    let result: T;
    try {
      result = await body(gdb, typeof options.gdb === 'string' ? options.gdb : describeEndpoint(options.gdb));
    } catch (err) {
      // With after: 'reset' the borrowed state was not restored (the reset was to do it): reset now, halted, so the
      // target is not left on rspflash's vector table and stack after a failure.
      const command = gdb.server.dialect.resetHaltCommand;
      if (after === 'reset' && command && !gdb.closed) {
        await gdb.monitor(command).then(
          () => info(`Reset and halted the target after the failure (monitor ${command})`),
          (e: unknown) => info(`Could not reset the target after the failure: ${toRspflashError(e).message}; reset it before running it`),
        );
      }
      throw err;
    }
    if (after === 'reset') {
      const command = gdb.server.dialect.resetRunCommand ?? gdb.server.dialect.resetHaltCommand;
      if (!command) throw new UsageError(`after: 'reset': no known reset command for this server (${gdb.server.kind}); the target is left halted`);
      await gdb.monitor(command);
      info(`Reset the target (monitor ${command})`);
    }
    if (!borrowed) {
      closed = true;
      // Resuming is part of the job when asked for: a failure to resume is reported, not swallowed.
      await gdb.close({ resume: after === 'run' || after === 'reset' });
      if (after !== 'halt') info(after === 'run' ? 'The target runs on' : 'The target runs from reset');
    }
    return result;
  } finally {
    if (!borrowed && !closed) await gdb.close().catch(() => undefined);
  }
}

/**
 * The recovery journal's key for an algorithm behind a server: one journal per
 * server, algorithm and flash range. The server is named as parsed, with the
 * local host's names made one (`127.0.0.1:2331`, `localhost:2331` and `2331`
 * are the same server).
 */
export function journalKey(where: string, algorithm: FlashAlgorithm): string {
  const g = algorithm.geometry;
  return `${normalizeServer(where)} ${algorithm.name} ${formatRange({ address: g.start, length: g.size })}`;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0']);

function normalizeServer(where: string): string {
  try {
    const e = parseEndpoint(where);
    if ('path' in e) return `unix:${e.path}`;
    if ('stream' in e) return where;
    const host = (e.host ?? 'localhost').toLowerCase();
    return `${LOCAL_HOSTS.has(host) ? 'localhost' : host}:${e.port ?? 2331}`;
  } catch {
    return where;
  }
}

function regionOf(ram: MemoryRange | RamRegion | undefined): RamRegion | undefined {
  if (ram === undefined) return undefined;
  return 'address' in ram ? { start: ram.address, size: ram.length } : ram;
}

function describeEndpoint(gdb: GdbEndpoint | GdbClient): string {
  if (gdb instanceof GdbClient) return 'gdb';
  if ('path' in gdb) return `unix:${gdb.path}`;
  if ('stream' in gdb) return 'stream';
  return `${gdb.host ?? 'localhost'}:${gdb.port ?? 2331}`;
}
