/**
 * Several image files as one image (`rspflash program app.hex ext.bin@0xC0000000`):
 * their segments merged, bytes written twice accepted only when they agree.
 * Pure.
 * @module
 */
import { ImageOverlapError, hex32 } from './errors.js';
import { createImage, type Image } from './image/image.js';

/** One loaded image and the name of its file. */
export interface NamedImage {
  readonly image: Image;
  /** The file, for messages. */
  readonly source: string;
}

/**
 * Merges images into one. Where two of them cover the same address they must
 * hold the same byte there.
 *
 * @throws {@link ImageOverlapError} naming both files and the first address
 * where they differ.
 *
 * @example
 * ```ts
 * const image = mergeImages([{ image: hex, source: 'app.hex' }, { image: bin, source: 'ext_flash.bin' }]);
 * ```
 */
export function mergeImages(images: readonly NamedImage[]): Image {
  // Every segment with its file, by address: a sweep compares each with the earlier ones still open.
  const pieces = images
    .flatMap((n) => n.image.segments.map((s) => ({ ...s, source: n.source })))
    .sort((a, b) => a.address - b.address);
  const open: (typeof pieces)[number][] = [];
  for (const p of pieces) {
    for (let i = open.length - 1; i >= 0; i--) if (open[i]!.address + open[i]!.data.length <= p.address) open.splice(i, 1);
    for (const q of open) {
      const from = p.address;
      const to = Math.min(p.address + p.data.length, q.address + q.data.length);
      for (let at = from; at < to; at++) {
        const a = p.data[at - p.address]!;
        const b = q.data[at - q.address]!;
        if (a !== b) {
          throw new ImageOverlapError(
            `${q.source} and ${p.source} write different bytes at ${hex32(at)} (0x${b.toString(16).padStart(2, '0')} vs 0x${a.toString(16).padStart(2, '0')})`,
            at,
            { hint: 'Leave one of the two files out, or give the .bin another base address (FILE@ADDRESS).' },
          );
        }
      }
    }
    open.push(p);
  }
  return createImage(pieces);
}
