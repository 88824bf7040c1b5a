/**
 * The sparse memory image every input format (.bin, ELF, Intel HEX, S-record)
 * is turned into: sorted, non-overlapping, merged segments.
 * @module
 */
import { ImageOverlapError, hex32 } from '../errors.js';

/** A run of bytes at an absolute address. */
export interface Segment {
  /** Address of the first byte. */
  readonly address: number;
  /** The bytes, from `address` on. */
  readonly data: Uint8Array;
}

/** A piece of input before merging, with the name of where it came from for error messages. */
export interface SourcedSegment extends Segment {
  /** e.g. `app.hex line 12` or `app.elf PT_LOAD[1]`. */
  readonly source?: string;
}

/** A sparse image: segments sorted by address, never overlapping, never adjacent (adjacent ones are merged). */
export interface Image {
  /** The segments, by ascending address. */
  readonly segments: readonly Segment[];
}

/** First address of the image (`undefined` if empty). */
export function imageStart(image: Image): number | undefined {
  return image.segments[0]?.address;
}

/** One past the last address of the image (`undefined` if empty). */
export function imageEnd(image: Image): number | undefined {
  const last = image.segments.at(-1);
  return last === undefined ? undefined : last.address + last.data.length;
}

/** Number of bytes the image holds (holes not counted). */
export function imageSize(image: Image): number {
  return image.segments.reduce((n, s) => n + s.data.length, 0);
}

/**
 * Builds an {@link Image} from pieces in any order. Overlaps that write the
 * same bytes are accepted; overlaps that disagree throw {@link ImageOverlapError}
 * naming both sources and the first differing address. Empty pieces are dropped.
 */
export function createImage(pieces: readonly SourcedSegment[]): Image {
  const sorted = pieces.filter((p) => p.data.length > 0).slice().sort((a, b) => a.address - b.address);
  const merged: { address: number; parts: Uint8Array[]; length: number; source: string }[] = [];
  for (const piece of sorted) {
    const last = merged.at(-1);
    const lastEnd = last ? last.address + last.length : -1;
    if (!last || piece.address > lastEnd) {
      merged.push({ address: piece.address, parts: [piece.data], length: piece.data.length, source: piece.source ?? 'input' });
      continue;
    }
    // Overlapping or adjacent: compare the overlap, append the tail.
    const overlap = Math.min(lastEnd - piece.address, piece.data.length);
    if (overlap > 0) {
      const existing = flatten(last.parts, last.length);
      last.parts = [existing];
      const base = piece.address - last.address;
      for (let i = 0; i < overlap; i++) {
        if (existing[base + i] !== piece.data[i]) {
          const at = piece.address + i;
          throw new ImageOverlapError(
            `${piece.source ?? 'input'} and ${last.source} write different bytes at ${hex32(at)} ` +
              `(0x${piece.data[i]!.toString(16).padStart(2, '0')} vs 0x${existing[base + i]!.toString(16).padStart(2, '0')})`,
            at,
          );
        }
      }
    }
    if (piece.data.length > overlap) {
      last.parts.push(piece.data.subarray(overlap));
      last.length += piece.data.length - overlap;
    }
  }
  return { segments: merged.map((m) => ({ address: m.address, data: flatten(m.parts, m.length) })) };
}

function flatten(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.length === length) return parts[0]!;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * The bytes of `[address, address + length)`: image data where the image has
 * some, `fill` elsewhere. Also returns whether any image byte was in the range.
 */
export function imageBytes(
  image: Image,
  address: number,
  length: number,
  fill: number,
): {
  /** `length` bytes from `address`: the image's bytes, `fill` where it has none. */
  data: Uint8Array;
  /** The image has at least one byte in the range. */
  covered: boolean;
} {
  const data = new Uint8Array(length).fill(fill);
  let covered = false;
  const end = address + length;
  for (const seg of image.segments) {
    const segEnd = seg.address + seg.data.length;
    if (segEnd <= address) continue;
    if (seg.address >= end) break;
    const from = Math.max(seg.address, address);
    const to = Math.min(segEnd, end);
    data.set(seg.data.subarray(from - seg.address, to - seg.address), from - address);
    covered = true;
  }
  return { data, covered };
}
