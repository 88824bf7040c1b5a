/**
 * The recovery journal: the bytes a program job promised to keep, written to
 * the host's disk before any sector holding them is erased, removed once the
 * job has programmed and verified them.
 *
 * A fault between erase and program (a dropped link, a killed process, a
 * failing algorithm) would otherwise lose those bytes for good: they exist
 * only in the host's memory. With the journal, the next run against the same
 * flash finds it, says so, and programs those bytes back first
 * ({@link Flasher.recover}, `rspflash recover`).
 *
 * One journal per target and flash range (the key), in the user's cache folder:
 * `$XDG_CACHE_HOME/rspflash/journal` (default `~/.cache/…`) on Linux,
 * `~/Library/Caches/rspflash/journal` on macOS, `%LOCALAPPDATA%\rspflash\journal`
 * on Windows. A JSON document; writes are atomic (temporary file + rename).
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { JournalError, hex32 } from '../errors.js';
import { createImage, type Image } from '../image/image.js';
import { mergeRanges, type MemoryRange } from '../range.js';

/** Version of the journal's JSON layout. */
const JOURNAL_VERSION = 1;

/** Bytes at an address, kept for a job. */
export interface KeptBytes {
  /** Flash address of the first byte. */
  readonly address: number;
  /** The bytes read from flash before their sector was erased. */
  readonly data: Uint8Array;
}

/** What a journal holds. */
export interface JournalContent {
  /** What the journal is for, e.g. `localhost:2331 nor-sim 0xc0000000..0xc1ffffff`. */
  readonly key: string;
  /** When it was first written (ISO 8601). */
  readonly created: string;
  /** Kept bytes not yet programmed back, by address. */
  readonly kept: readonly KeptBytes[];
}

/** Where journals go by default: the per-user cache folder of the OS. */
export function defaultJournalDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  if (platform === 'win32') return join(env.LOCALAPPDATA ?? join(home, 'AppData', 'Local'), 'rspflash', 'journal');
  if (platform === 'darwin') return join(home, 'Library', 'Caches', 'rspflash', 'journal');
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'rspflash', 'journal');
}

/** The journal file for `key` in `dir`: a readable prefix and a hash, safe on every file system. */
export function journalPath(dir: string, key: string): string {
  const readable = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return join(dir, `${readable}-${digest}.json`);
}

/** A journal file: read, merged into, removed. */
export class Journal {
  /** Absolute path of the journal file. */
  readonly path: string;
  /** What the journal is for (server, algorithm, flash range): a journal is replayed only for the same key. */
  readonly key: string;

  constructor(path: string, key: string) {
    this.path = path;
    this.key = key;
  }

  /** The journal's content, or `undefined` when there is none. Throws {@link JournalError} when it cannot be read or parsed. */
  async read(): Promise<JournalContent | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new JournalError(`Cannot read the recovery journal ${this.path}: ${(err as Error).message}`, this.path, { cause: err });
    }
    try {
      const doc = JSON.parse(text) as { version: number; key: string; created: string; kept: { address: number; data: string }[] };
      if (doc.version !== JOURNAL_VERSION || !Array.isArray(doc.kept)) throw new Error(`unknown layout (version ${String(doc.version)})`);
      return {
        key: doc.key,
        created: doc.created,
        kept: doc.kept.map((k) => {
          if (!Number.isInteger(k.address) || typeof k.data !== 'string') throw new Error('malformed entry');
          return { address: k.address, data: new Uint8Array(Buffer.from(k.data, 'base64')) };
        }),
      };
    } catch (err) {
      throw new JournalError(`The recovery journal ${this.path} is damaged (${(err as Error).message})`, this.path, {
        cause: err,
        hint: 'Inspect it; the flash ranges it names may have lost their content. Delete it to go on without recovery.',
      });
    }
  }

  /**
   * Adds `kept` to the journal (entries already there stay: a job that fails
   * while recovering must not lose what it was recovering). Atomic. Throws
   * {@link JournalError} when the file cannot be written — before anything is erased.
   */
  async add(kept: readonly KeptBytes[]): Promise<void> {
    const before = await this.read();
    const merged = mergeKept([...(before?.kept ?? []), ...kept]);
    const doc = {
      version: JOURNAL_VERSION,
      key: this.key,
      created: before?.created ?? new Date().toISOString(),
      kept: merged.map((k) => ({ address: k.address, data: Buffer.from(k.data.buffer, k.data.byteOffset, k.data.byteLength).toString('base64') })),
    };
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(join(this.path, '..'), { recursive: true });
      await writeFile(tmp, JSON.stringify(doc));
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new JournalError(`Cannot write the recovery journal ${this.path}: ${(err as Error).message}`, this.path, {
        cause: err,
        hint: 'Nothing was erased. Free disk space or choose another journal folder (journal.dir), or pass preserve: false.',
      });
    }
  }

  /**
   * Drops the journalled bytes inside `range` (they were erased on purpose, e.g.
   * by an erase of that range); removes the journal when nothing is left.
   */
  async forget(range: MemoryRange): Promise<void> {
    const content = await this.read();
    if (content === undefined) return;
    const end = range.address + range.length;
    const left: KeptBytes[] = [];
    for (const k of content.kept) {
      const kEnd = k.address + k.data.length;
      if (kEnd <= range.address || k.address >= end) {
        left.push(k);
        continue;
      }
      if (k.address < range.address) left.push({ address: k.address, data: k.data.subarray(0, range.address - k.address) });
      if (kEnd > end) left.push({ address: end, data: k.data.subarray(end - k.address) });
    }
    if (left.length === 0) return this.remove();
    if (left.length === content.kept.length && left.every((k, i) => k === content.kept[i])) return;
    await this.remove();
    await this.add(left);
  }

  /** Removes the journal (nothing left at risk). */
  async remove(): Promise<void> {
    try {
      await rm(this.path, { force: true });
    } catch (err) {
      throw new JournalError(`Cannot remove the recovery journal ${this.path}: ${(err as Error).message}`, this.path, { cause: err });
    }
  }
}

/** Kept bytes as ranges, for messages. */
export function keptRanges(kept: readonly KeptBytes[]): MemoryRange[] {
  return mergeRanges(kept.map((k) => ({ address: k.address, length: k.data.length })));
}

/** The kept bytes as an image to program back. */
export function keptImage(kept: readonly KeptBytes[], source: string): Image {
  return createImage(mergeKept(kept).map((k) => ({ address: k.address, data: k.data, source })));
}

/** Later entries win where entries overlap; the result is sorted and disjoint. */
function mergeKept(kept: readonly KeptBytes[]): KeptBytes[] {
  if (kept.length === 0) return [];
  const ranges = keptRanges(kept);
  return ranges.map((r) => {
    const data = new Uint8Array(r.length);
    for (const k of kept) {
      const from = Math.max(r.address, k.address);
      const to = Math.min(r.address + r.length, k.address + k.data.length);
      if (from < to) data.set(k.data.subarray(from - k.address, to - k.address), from - r.address);
    }
    return { address: r.address, data };
  });
}

/** One line naming the journal and what it holds. */
export function describeJournal(journal: Journal, kept: readonly KeptBytes[]): string {
  const ranges = keptRanges(kept);
  const bytes = ranges.reduce((n, r) => n + r.length, 0);
  const first = ranges[0];
  return `${journal.path} (${bytes} bytes in ${ranges.length} range${ranges.length === 1 ? '' : 's'}${first ? `, first at ${hex32(first.address)}` : ''})`;
}
