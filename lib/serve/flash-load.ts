/**
 * What one client's gdb `load` sends between its first `vFlashErase` and its
 * `vFlashDone`, collected into images, one per flash algorithm. Pure state:
 * nothing is sent to the target until `vFlashDone` hands the images over.
 *
 * gdb's order (gdb 13 `target-memory.c`): every `vFlashErase` (block aligned,
 * ascending), then the `vFlashWrite`s (ascending), then one `vFlashDone`.
 * Erasing is left to the program job: it erases only the sectors the data
 * changes and keeps the bytes of erased blocks that gdb does not write
 * (gdb itself would discard them).
 * @module
 */
import type { FlashAlgorithm } from '../algo/algorithm.js';
import { createImage, type Image, type SourcedSegment } from '../image/image.js';
import type { MemoryRange } from '../range.js';

/** Where a range falls. */
export type Owner = { kind: 'algorithm'; algorithm: FlashAlgorithm } | { kind: 'none' } | { kind: 'split' };

/** Which algorithm's flash holds all of `range`: one, none, or more than one / partly (`split`). */
export function ownerOf(algorithms: readonly FlashAlgorithm[], range: MemoryRange): Owner {
  const end = range.address + Math.max(range.length, 1);
  for (const algorithm of algorithms) {
    const g = algorithm.geometry;
    const gEnd = g.start + g.size;
    if (range.address >= g.start && end <= gEnd) return { kind: 'algorithm', algorithm };
    if (range.address < gEnd && end > g.start) return { kind: 'split' };
  }
  return { kind: 'none' };
}

/** Data of one algorithm, as written so far. */
interface Pending {
  algorithm: FlashAlgorithm;
  /** Contiguous runs: a write that continues the last run is appended to it. */
  runs: { address: number; parts: Uint8Array[]; length: number }[];
  erased: MemoryRange[];
}

/**
 * The flash load of one client.
 *
 * @example
 * ```ts
 * const load = new FlashLoad(algorithms, 'gdb load');
 * load.erase({ address: 0xc0000000, length: 0x2000 });
 * load.write(0xc0000010, data);
 * for (const { algorithm, image } of load.finish()) await program(algorithm, image);
 * ```
 */
export class FlashLoad {
  readonly #algorithms: readonly FlashAlgorithm[];
  readonly #source: string;
  #pending = new Map<FlashAlgorithm, Pending>();

  /** @param source - names the image in errors and logs, e.g. `gdb load (client #1)`. */
  constructor(algorithms: readonly FlashAlgorithm[], source: string) {
    this.#algorithms = algorithms;
    this.#source = source;
  }

  /** Whether anything was erased or written since the last {@link finish}. */
  get active(): boolean {
    return this.#pending.size > 0;
  }

  /** Bytes written so far. */
  get bytes(): number {
    let n = 0;
    for (const p of this.#pending.values()) for (const r of p.runs) n += r.length;
    return n;
  }

  /** Notes an erase request; false when the range is not inside one algorithm's flash. */
  erase(range: MemoryRange): boolean {
    const owner = ownerOf(this.#algorithms, range);
    if (owner.kind !== 'algorithm') return false;
    this.#of(owner.algorithm).erased.push(range);
    return true;
  }

  /** Adds written data; false when it is not inside one algorithm's flash. */
  write(address: number, data: Uint8Array): boolean {
    if (data.length === 0) return true;
    const owner = ownerOf(this.#algorithms, { address, length: data.length });
    if (owner.kind !== 'algorithm') return false;
    const runs = this.#of(owner.algorithm).runs;
    const last = runs.at(-1);
    if (last && last.address + last.length === address) {
      last.parts.push(data.slice());
      last.length += data.length;
    } else runs.push({ address, parts: [data.slice()], length: data.length });
    return true;
  }

  /**
   * The images to program, one per algorithm that got data, and the erase
   * requests that no data falls in (gdb erases only blocks it writes, so these
   * are rare; they are reported, not erased). Resets the load.
   *
   * @throws ImageOverlapError when gdb wrote the same address twice.
   */
  finish(): { algorithm: FlashAlgorithm; image: Image; erasedOnly: MemoryRange[] }[] {
    const out: { algorithm: FlashAlgorithm; image: Image; erasedOnly: MemoryRange[] }[] = [];
    const pending = [...this.#pending.values()];
    this.#pending = new Map();
    for (const p of pending) {
      const segments: SourcedSegment[] = p.runs.map((r) => ({ address: r.address, data: concat(r.parts, r.length), source: this.#source }));
      const erasedOnly = p.erased.filter((e) => !p.runs.some((r) => r.address < e.address + e.length && r.address + r.length > e.address));
      out.push({ algorithm: p.algorithm, image: createImage(segments), erasedOnly });
    }
    return out;
  }

  /** Drops everything collected (the client left or the load failed). Returns the bytes dropped. */
  discard(): number {
    const n = this.bytes;
    this.#pending = new Map();
    return n;
  }

  #of(algorithm: FlashAlgorithm): Pending {
    let p = this.#pending.get(algorithm);
    if (!p) {
      p = { algorithm, runs: [], erased: [] };
      this.#pending.set(algorithm, p);
    }
    return p;
  }
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
