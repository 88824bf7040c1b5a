/**
 * Raw binary images: the file's bytes, placed at an address the user gives,
 * because a `.bin` carries no address of its own.
 * @module
 */
import { UsageError, hex32 } from '../errors.js';
import { createImage, type Image } from './image.js';

/** One past the highest byte address of the 32-bit address space. */
const ADDRESS_SPACE_END = 0x1_0000_0000;

/**
 * Places the bytes of a raw binary at `base`.
 *
 * The image shares `bytes` (no copy is made), so do not modify the buffer
 * afterwards. An empty file gives an empty image.
 *
 * @param bytes - The whole file.
 * @param base - Address of the first byte, e.g. the start of flash (`0x08000000`).
 * @param source - The file name, for error messages.
 * @throws {@link UsageError} if `base` is not a 32-bit address or the data would run past `0xFFFFFFFF`.
 *
 * @example
 * ```ts
 * const image = binToImage(await readFile('app.bin'), 0x0800_0000, 'app.bin');
 * ```
 */
export function binToImage(bytes: Uint8Array, base: number, source: string): Image {
  if (!Number.isInteger(base) || base < 0 || base >= ADDRESS_SPACE_END) {
    throw new UsageError(`${source}: base address ${String(base)} is not a 32-bit address`, {
      hint: 'Give `base` as a number between 0 and 0xFFFFFFFF, e.g. 0x08000000.',
    });
  }
  if (base + bytes.length > ADDRESS_SPACE_END) {
    throw new UsageError(
      `${source}: ${bytes.length} bytes at ${hex32(base)} run past the end of the 32-bit address space`,
    );
  }
  return createImage([{ address: base, data: bytes, source }]);
}
