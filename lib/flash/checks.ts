/**
 * How rspflash finds out whether the flash holds given bytes: the one place
 * where `compare` and `verify` modes get their meaning, `'auto'` included.
 *
 * Three ways exist, each with its own cost:
 *
 * - `'hash'`: a 128-bit hash of the flash computed on the target against the
 *   host's hash of the expected bytes. Sends nothing but the ranges; needs the
 *   flash to read at its address while the algorithm owns it (memory mapped).
 *   Not a defence against crafted images (a hash can be attacked); `'algo'`
 *   and `'read'` compare every byte.
 * - `'algo'`: the algorithm's `Verify(adr, sz, buf)` on the expected bytes in
 *   target RAM. Works for flash that is not memory mapped (Alif OSPI), but the
 *   bytes must be in RAM: free right after programming them, a full transfer
 *   otherwise.
 * - `'read'`: read the flash back over the link and compare on the host. The
 *   slowest; needs memory-mapped flash.
 *
 * `'auto'` means one thing everywhere: **the cheapest way that reads the
 * flash**. When the expected bytes are already in target RAM (right after
 * programming) that is `Verify`; otherwise `'hash'` where the flash is memory
 * mapped, else `Verify`; `'none'` when the algorithm has neither.
 * `'crc'` is accepted as a deprecated alias of `'hash'`.
 * @module
 */
import { JournalError, UsageError, VerifyError, hex32 } from '../errors.js';
import { FNC_VERIFY } from '../algo/algorithm.js';
import type { AlgorithmRunner } from '../algo/runner.js';
import type { GdbClient } from '../gdb/client.js';
import { formatRange, pagesOf, spanOf, type MemoryRange } from '../range.js';
import { murmur3x128 } from './hash.js';

/** How a check reads the flash. */
export type CheckMethod = 'hash' | 'algo' | 'read';

/**
 * How {@link Flasher.program}'s skip-unchanged step compares flash with the image.
 * `'crc'` is a deprecated alias of `'hash'` (the hash was never a CRC).
 */
export type CompareMode = 'auto' | 'hash' | 'algo' | 'none' | 'crc';

/**
 * How programmed data is checked, and how {@link Flasher.verify} checks.
 * `'crc'` is a deprecated alias of `'hash'`.
 */
export type VerifyMode = 'auto' | 'hash' | 'algo' | 'read' | 'none' | 'crc';

/** What the target offers for checking. */
export interface CheckCapabilities {
  /** The flash reads at its address while the algorithm owns it. */
  readonly memoryMapped: boolean;
  /** The algorithm has a `Verify` routine. */
  readonly hasVerify: boolean;
  /** Name of the algorithm, for messages. */
  readonly algorithm: string;
}

/** The compare method for skip-unchanged, or `undefined` for none. Throws {@link UsageError} for a mode the target cannot do. */
export function compareMethod(mode: CompareMode, caps: CheckCapabilities): Exclude<CheckMethod, 'read'> | undefined {
  const m = mode === 'crc' ? 'hash' : mode;
  if (m === 'none') return undefined;
  if (m === 'auto') return caps.memoryMapped ? 'hash' : caps.hasVerify ? 'algo' : undefined;
  if (m !== 'hash' && m !== 'algo') throw new UsageError(`compare must be 'auto', 'hash', 'algo' or 'none', not ${JSON.stringify(mode)}`);
  return checkable(m, caps);
}

/**
 * The verify method, or `undefined` for none. `dataInRam`: the expected bytes
 * are already in target RAM (right after programming them), which makes
 * `Verify` free. Throws {@link UsageError} for a mode the target cannot do.
 */
export function verifyMethod(mode: VerifyMode, caps: CheckCapabilities, dataInRam: boolean): CheckMethod | undefined {
  const m = mode === 'crc' ? 'hash' : mode;
  if (m === 'none') return undefined;
  if (m === 'auto') {
    if (dataInRam && caps.hasVerify) return 'algo';
    return caps.memoryMapped ? 'hash' : caps.hasVerify ? 'algo' : undefined;
  }
  if (m !== 'hash' && m !== 'algo' && m !== 'read') {
    throw new UsageError(`verify must be 'auto', 'hash', 'algo', 'read' or 'none', not ${JSON.stringify(mode)}`);
  }
  return checkable(m, caps);
}

function checkable<M extends CheckMethod>(method: M, caps: CheckCapabilities): M {
  if (method === 'algo' && !caps.hasVerify) {
    throw new UsageError(`The flash algorithm '${caps.algorithm}' has no Verify routine; check with 'hash' or 'read' instead`);
  }
  if ((method === 'hash' || method === 'read') && !caps.memoryMapped) {
    throw new UsageError(
      `Checking by '${method}' reads the flash at its address, which this flash does not allow while the algorithm owns it (memoryMapped: false); use 'algo'`,
    );
  }
  return method;
}

// ---------------------------------------------------------------------------
// Running checks on the target

/**
 * What a check needs from the executor: the runner and link, the expected
 * bytes of a range, cancellation and progress.
 */
export interface CheckContext {
  /** Runs the algorithm and the on-target helpers. */
  readonly runner: AlgorithmRunner;
  /** The link, for plain memory reads. */
  readonly gdb: GdbClient;
  /** The value of an erased byte, for blank checks. */
  readonly erasedValue: number;
  /** The expected bytes of a range, as views in address order. */
  readonly expected: (range: MemoryRange) => readonly Uint8Array[];
  /** Throws when the operation was cancelled. */
  readonly checkAbort: () => void;
  /** Bytes checked so far grew by `n`. */
  readonly advance: (n: number) => void;
  /** The range under way, for the error if it fails. */
  readonly at: (range: MemoryRange) => void;
  /** Runs `body` between Init(FNC_VERIFY) and its UnInit. */
  readonly withInit: <T>(fnc: number, body: () => Promise<T>) => Promise<T>;
}

/** A range's difference: where it starts to differ, when known. */
export interface Difference extends MemoryRange {
  /** First differing address, when the method can tell. */
  readonly firstDifference?: number;
}

/** Largest block the coarse hash pass hashes in one call. */
const HASH_BLOCK = 256 * 1024;
/** With at least this many blocks all differing, the per-range pass is skipped (a first run: nothing to skip). */
const SKIP_FINE_PASS_BLOCKS = 16;
/** Differing ranges the hash method reads back to find the first differing byte of. */
const LOCATE_RANGES = 8;
/** Largest differing range read back for that. */
const LOCATE_MAX_BYTES = 1 << 20;
/** Bytes read back per request by the `read` method. */
const READ_CHUNK = 64 * 1024;
/** Bytes of the erased-value block sent once for checking erased ranges with Verify. */
const ERASED_BLOCK = 4096;

/**
 * Which of `ranges` differ from the expected bytes (or, with `erased`, from the
 * erased value). Each range is reported whole; `stopAtFirst` ends at the first
 * difference (verify), otherwise every range is checked (compare).
 */
export async function findDifferences(
  method: CheckMethod,
  ranges: readonly MemoryRange[],
  ctx: CheckContext,
  options: { erased?: boolean; stopAtFirst?: boolean } = {},
): Promise<Difference[]> {
  const expected = options.erased ? erasedExpectation(ctx.erasedValue) : ctx.expected;
  if (method === 'hash') {
    const differs = await hashDifferences(ranges, expected, ctx);
    // A hash says only that a range differs: read the first few back (small ones only) to say where.
    const out: Difference[] = [];
    for (const [i, d] of differs.entries()) {
      if (i >= LOCATE_RANGES || d.length > LOCATE_MAX_BYTES) out.push(d);
      else out.push((await readDifferences([d], expected, { ...ctx, advance: () => undefined }, true))[0] ?? d);
    }
    return out;
  }
  if (method === 'read') return readDifferences(ranges, expected, ctx, options.stopAtFirst ?? false);
  return ctx.withInit(FNC_VERIFY, () => verifyDifferences(ranges, options.erased ? undefined : expected, ctx, options.stopAtFirst ?? false));
}

function erasedExpectation(value: number): (range: MemoryRange) => Uint8Array[] {
  let block = new Uint8Array(0);
  return (range) => {
    if (block.length < range.length) block = new Uint8Array(Math.max(range.length, 4096)).fill(value);
    return [block.subarray(0, range.length)];
  };
}

/** Coarse pass (one hash per block of adjacent ranges), then per range inside the blocks that differ. */
async function hashDifferences(ranges: readonly MemoryRange[], expected: (r: MemoryRange) => readonly Uint8Array[], ctx: CheckContext): Promise<Difference[]> {
  const blocks: { address: number; length: number; ranges: MemoryRange[] }[] = [];
  for (const r of ranges) {
    const last = blocks.at(-1);
    if (last && last.address + last.length === r.address && last.length + r.length <= HASH_BLOCK) {
      last.length += r.length;
      last.ranges.push(r);
    } else {
      blocks.push({ address: r.address, length: r.length, ranges: [r] });
    }
  }
  const total = ranges.reduce((n, r) => n + r.length, 0);
  const blockHashes = await targetHashes(blocks, ctx);
  const differing = blocks.filter((b, i) => blockHashes[i] !== hostHash(expected(b)));
  if (differing.length === 0) {
    ctx.advance(total);
    return [];
  }
  const candidates = differing.flatMap((b) => b.ranges);
  ctx.advance(total);
  if (differing.length === blocks.length && blocks.length >= SKIP_FINE_PASS_BLOCKS) return candidates;
  if (candidates.length === differing.length) return candidates; // one range per block: the coarse pass said it all
  const hashes = await targetHashes(candidates, ctx);
  return candidates.filter((r, j) => hashes[j] !== hostHash(expected(r)));
}

/** Target-side hashes of ranges, one sequencer run per table-full. */
async function targetHashes(ranges: readonly MemoryRange[], ctx: CheckContext): Promise<string[]> {
  const perRun = ctx.runner.layout.buffers[0]!.tableEntries;
  const out: string[] = [];
  for (let i = 0; i < ranges.length; i += perRun) {
    ctx.checkAbort();
    const group = ranges.slice(i, i + perRun);
    ctx.at(spanOf(group));
    out.push(...(await ctx.runner.hashMany(group)));
  }
  return out;
}

/** The host twin of the target hash over parts taken as one byte string. */
function hostHash(parts: readonly Uint8Array[]): string {
  return murmur3x128(joinViews(parts));
}

async function readDifferences(
  ranges: readonly MemoryRange[],
  expected: (r: MemoryRange) => readonly Uint8Array[],
  ctx: CheckContext,
  stopAtFirst: boolean,
): Promise<Difference[]> {
  const out: Difference[] = [];
  for (const range of ranges) {
    for (let off = 0; off < range.length; off += READ_CHUNK) {
      ctx.checkAbort();
      const piece = { address: range.address + off, length: Math.min(READ_CHUNK, range.length - off) };
      ctx.at(piece);
      const back = await ctx.gdb.readMemory(piece.address, piece.length);
      const want = joinViews(expected(piece));
      const bad = back.findIndex((b, k) => b !== want[k]);
      ctx.advance(piece.length);
      if (bad >= 0) {
        out.push({ ...range, firstDifference: piece.address + bad });
        if (stopAtFirst) return out;
        break;
      }
    }
  }
  return out;
}

/**
 * The algorithm's Verify on the expected bytes, in pieces of at most
 * {@link ERASED_BLOCK} bytes, one buffer-full per run. A piece whose expected
 * bytes are all the erased value (or every piece, with `expected` undefined) is
 * checked against one erased block at the start of the buffer, sent once per
 * run: blank pages cost no data over the link.
 */
async function verifyDifferences(
  ranges: readonly MemoryRange[],
  expected: ((r: MemoryRange) => readonly Uint8Array[]) | undefined,
  ctx: CheckContext,
  stopAtFirst: boolean,
): Promise<Difference[]> {
  const runner = ctx.runner;
  const buffer = runner.buffer(0);
  const entries = runner.layout.buffers[0]!.tableEntries;
  const verify = runner.entry('Verify');
  const pieceMax = Math.min(buffer.size, ERASED_BLOCK);
  const pieces: { piece: MemoryRange; owner: MemoryRange; data: Uint8Array | undefined }[] = [];
  for (const r of ranges) {
    for (let off = 0; off < r.length; off += pieceMax) {
      const piece = { address: r.address + off, length: Math.min(pieceMax, r.length - off) };
      const data = expected === undefined ? undefined : joinViews(expected(piece));
      pieces.push({ piece, owner: r, data: data === undefined || allEqual(data, ctx.erasedValue) ? undefined : data });
    }
  }
  const out: Difference[] = [];
  const differs = new Set<MemoryRange>();
  let i = 0;
  while (i < pieces.length) {
    ctx.checkAbort();
    // The erased block (when a piece of this run needs it) first, then each data piece.
    const group: { piece: MemoryRange; owner: MemoryRange; offset: number; data: Uint8Array | undefined }[] = [];
    let used = 0;
    let erasedBlock = 0;
    while (i < pieces.length && group.length < entries) {
      const p = pieces[i]!;
      if (p.data === undefined) {
        if (erasedBlock === 0 && used + pieceMax > buffer.size) break;
        if (erasedBlock === 0) {
          erasedBlock = pieceMax;
          used += pieceMax;
          for (const g of group) g.offset += pieceMax;
        }
        group.push({ ...p, offset: 0 });
      } else {
        if (used + p.piece.length > buffer.size) break;
        group.push({ ...p, offset: used });
        used += p.piece.length;
      }
      i++;
    }
    ctx.at(spanOf(group.map((g) => g.piece)));
    const data = [
      ...(erasedBlock > 0 ? [new Uint8Array(erasedBlock).fill(ctx.erasedValue)] : []),
      ...group.flatMap((g) => (g.data === undefined ? [] : [g.data])),
    ];
    const results = await runner.batch(
      0,
      group.map((g) => ({ fn: 'Verify', entry: verify, args: [g.piece.address, g.piece.length, buffer.address + g.offset], expect: 0, collect: true })),
      { data },
    );
    group.forEach((g, j) => {
      if (results[j] !== ((g.piece.address + g.piece.length) >>> 0) && !differs.has(g.owner)) {
        differs.add(g.owner);
        out.push({ ...g.owner, firstDifference: results[j] });
      }
    });
    ctx.advance(group.reduce((n, g) => n + g.piece.length, 0));
    if (stopAtFirst && out.length > 0) return out;
  }
  return out;
}

function allEqual(data: Uint8Array, value: number): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== value) return false;
  return true;
}

/**
 * The compare of a program job: which touched sectors differ from what the
 * plan wants, and which of those hold only the erased value (no erase needed).
 * With `blankFirst` (the compare sends data) the blank check runs first and the
 * content compare only where a sector is not blank.
 */
export async function compareSectors(
  method: Exclude<CheckMethod, 'read'>,
  step: { ranges: readonly (MemoryRange & { sector: number })[]; sectors: readonly MemoryRange[]; blankFirst: boolean },
  ctx: CheckContext,
): Promise<{ differs: Set<number>; blank: Set<number> }> {
  const quiet = { ...ctx, advance: () => undefined };
  const blankOf = async (sectors: readonly MemoryRange[]) => {
    const notBlank = new Set((await findDifferences(method, sectors, quiet, { erased: true })).map((d) => d.address));
    return new Set(sectors.filter((s) => !notBlank.has(s.address)).map((s) => s.address));
  };
  if (step.blankFirst) {
    const blank = await blankOf(step.sectors);
    const differs = new Set<number>();
    // A blank sector holds the image only where the image is the erased value too.
    for (const r of step.ranges) if (blank.has(r.sector) && !ctx.expected(r).every((p) => allEqual(p, ctx.erasedValue))) differs.add(r.sector);
    const rest = step.ranges.filter((r) => !blank.has(r.sector));
    ctx.advance(step.ranges.reduce((n, r) => n + (blank.has(r.sector) ? r.length : 0), 0));
    const sectorOf = new Map(rest.map((r) => [r.address, r.sector]));
    for (const d of await findDifferences(method, rest, ctx, {})) differs.add(sectorOf.get(d.address)!);
    return { differs, blank: new Set([...blank].filter((a) => differs.has(a))) };
  }
  const sectorOf = new Map(step.ranges.map((r) => [r.address, r.sector]));
  const differs = new Set((await findDifferences(method, step.ranges, ctx, {})).map((d) => sectorOf.get(d.address)!));
  const blank = differs.size === 0 ? new Set<number>() : await blankOf(step.sectors.filter((s) => differs.has(s.address)));
  return { differs, blank };
}

/**
 * The parts as one array: a view when they lie back to back in one buffer (the
 * sectors of one image segment do), else a copy.
 */
export function joinViews(parts: readonly Uint8Array[]): Uint8Array {
  const first = parts[0];
  if (!first) return new Uint8Array(0);
  if (parts.length === 1) return first;
  let end = first.byteOffset + first.byteLength;
  let contiguous = true;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.buffer !== first.buffer || p.byteOffset !== end) {
      contiguous = false;
      break;
    }
    end += p.byteLength;
  }
  if (contiguous) return new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The error for a check that found differences: how many ranges, which (up to 8), and where each starts to differ. */
export function differenceError(differences: readonly Difference[], step: { method: CheckMethod; expect: 'image' | 'erased' }): VerifyError {
  const first = differences[0]!;
  const list = differences
    .slice(0, 8)
    .map((d) => `${formatRange(d)}${d.firstDifference === undefined ? '' : ` (first at ${hex32(d.firstDifference)})`}`);
  const n = differences.length;
  return new VerifyError(
    `Flash differs from ${step.expect === 'erased' ? 'the erased value' : 'the image'} in ${n} range${n === 1 ? '' : 's'} (checked by ${step.method}): ${list.join(', ')}${n > 8 ? ', …' : ''}`,
    first.firstDifference ?? first.address,
  );
}

/**
 * The ranges (pages) that hold neither the expected bytes nor the erased value:
 * what a failed job cannot have left, so a journal must not be restored over them.
 */
export async function pagesNeitherExpectedNorErased(method: Exclude<CheckMethod, 'read'>, pages: readonly MemoryRange[], ctx: CheckContext): Promise<Difference[]> {
  const notExpected = await findDifferences(method, pages, ctx);
  return notExpected.length === 0 ? [] : findDifferences(method, notExpected, ctx, { erased: true });
}

/**
 * Refuses to restore a recovery journal onto flash that is not what a failed
 * job leaves: every page of the kept ranges must hold either the journalled
 * bytes or the erased value. Anything else means another board, or flash
 * changed since (reprogrammed, erased by another tool): restoring would write
 * stale bytes over it. Throws {@link JournalError}; does nothing where no
 * method can read the flash.
 */
export async function refuseForeignJournal(
  image: { segments: readonly { address: number; data: Uint8Array }[] },
  path: string,
  target: { memoryMapped: boolean; routines: ReadonlySet<string>; geometry: { pageSize: number } },
  ctx: CheckContext,
): Promise<void> {
  const method = target.memoryMapped ? 'hash' : target.routines.has('Verify') ? 'algo' : undefined;
  if (method === undefined) return;
  const pages = pagesOf(image.segments.map((seg) => ({ address: seg.address, length: seg.data.length })), target.geometry.pageSize);
  const foreign = await pagesNeitherExpectedNorErased(method, pages, ctx);
  if (foreign.length > 0) {
    throw new JournalError(
      `The recovery journal ${path} does not fit this flash: ${foreign.length} page(s) it would restore hold neither its bytes nor the erased value (first ${formatRange(foreign[0]!)}). ` +
        'Another board, or flash changed since the failed run; nothing was written',
      path,
      { hint: 'Delete the journal file to discard it, or restore it anyway with `force: true` (recover).' },
    );
  }
}

/** How a board/algorithm pair compares, verifies and keeps bytes, and why: what `rspflash info` shows. */
export interface CheckPaths {
  /** How skip-unchanged compares. */
  compare: {
    /** The method `'auto'` picks; `undefined`: no compare (every touched sector is rewritten). */
    method: Exclude<CheckMethod, 'read'> | undefined;
    /** Why, in one sentence. */
    why: string;
  };
  /** How programmed data is checked. */
  verify: {
    /** The method `'auto'` picks; `undefined`: not checked. */
    method: CheckMethod | undefined;
    /** Why, in one sentence. */
    why: string;
  };
  /** Whether the bytes of partly covered sectors outside the image can be kept. */
  keep: {
    /** They can be read back (memory mapped, or a Read routine). */
    possible: boolean;
    /** How, or why not, in one sentence. */
    why: string;
  };
}

/**
 * The compare, verify and keep paths `'auto'` gives a target, each with the
 * reason in one sentence. Pure.
 *
 * @example
 * ```ts
 * checkPaths({ memoryMapped: false, hasVerify: true, hasRead: false, algorithm: 'IS25WX256' }).compare;
 * // { method: 'algo', why: "the flash is not memory mapped: the algorithm's Verify, after a blank check …" }
 * ```
 */
export function checkPaths(caps: CheckCapabilities & { hasRead: boolean }): CheckPaths {
  const compare = compareMethod('auto', caps);
  const verify = verifyMethod('auto', caps, true);
  return {
    compare: {
      method: compare,
      why: caps.memoryMapped
        ? 'the flash reads at its address: a 128-bit hash computed on the target, no image data sent'
        : compare === 'algo'
          ? "the flash is not memory mapped: the algorithm's Verify on the image's non-blank pages (sent), after a blank check against one erased block (nothing sent)"
          : 'nothing can read this flash (not memory mapped, no Verify): every touched sector is rewritten',
    },
    verify: {
      method: verify,
      why:
        verify === 'algo'
          ? "the algorithm's Verify in the same run as programming, on the bytes already in RAM; pages left erased checked " +
            (caps.memoryMapped ? 'by hash' : 'against one erased block')
          : verify === 'hash'
            ? 'a 128-bit hash of every rewritten sector computed on the target (no Verify routine)'
            : 'nothing can read this flash: programmed data is not checked',
    },
    keep: {
      possible: caps.memoryMapped || caps.hasRead,
      why: caps.memoryMapped
        ? 'bytes of partly covered sectors are read at their address and programmed back (journalled first)'
        : caps.hasRead
          ? "bytes of partly covered sectors are read through the algorithm's Read routine and programmed back (journalled first)"
          : 'bytes of partly covered sectors cannot be read back: they end up erased (preserve: false; the plan warns which)',
    },
  };
}
