/**
 * ELF executables (what `arm-none-eabi-gcc`, Arm Compiler, IAR and Rust
 * produce) as an {@link Image} to program.
 *
 * What goes to flash is what a loader would put in memory *before* the
 * program runs: the file bytes of every `PT_LOAD` segment, at the segment's
 * **physical** address (`p_paddr`, the load memory address). The virtual
 * address can differ — `.data` runs from RAM (`p_vaddr`) but its initial
 * values are stored in flash (`p_paddr`) for the start-up code to copy. The
 * zero-filled tail of a segment (`p_memsz` beyond `p_filesz`, i.e. `.bss`) is
 * not part of the image: start-up code clears it in RAM.
 *
 * Sections are ignored: the program headers are what loaders honour, and
 * sections such as `.debug_*` or `.comment` have no address.
 *
 * @example
 * ```ts
 * const image = elfToImage(await readFile('app.elf'), 'app.elf');
 * for (const s of image.segments) console.log(hex32(s.address), s.data.length);
 * ```
 * @module
 */
import { FormatError } from '../errors.js';
import { PT_LOAD, parseElf } from '../elf.js';
import { createImage, type Image, type SourcedSegment } from './image.js';

/**
 * Builds an {@link Image} from an ELF file's loadable segments (`PT_LOAD`
 * with `p_filesz > 0`), each placed at its physical address. Pieces are named
 * `app.elf PT_LOAD[i]` (i = program header index, as `readelf -l` counts) in
 * overlap errors.
 *
 * @param bytes The ELF file.
 * @param source The file name, for messages.
 * @throws A {@link FormatError} for a malformed ELF or one without loadable
 *   bytes (an object file `.o`, or a stripped-down file without program headers).
 * @throws `ImageOverlapError` if two segments write different bytes to the same address.
 */
export function elfToImage(bytes: Uint8Array, source: string): Image {
  const elf = parseElf(bytes, source);
  const pieces: SourcedSegment[] = elf.programHeaders
    .filter((ph) => ph.type === PT_LOAD && ph.filesz > 0)
    .map((ph) => ({
      address: ph.paddr,
      // A copy: the image must not change if the caller reuses its buffer.
      data: bytes.slice(ph.offset, ph.offset + ph.filesz),
      source: `${source} PT_LOAD[${ph.index}]`,
    }));
  if (pieces.length === 0) {
    throw new FormatError(
      `${source}: no loadable segments (PT_LOAD with file content); is it a linked executable and not an object file?`,
      source,
    );
  }
  return createImage(pieces);
}
