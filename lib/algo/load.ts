/**
 * One entry point for every flash algorithm format rspflash reads: it looks
 * at the bytes and hands them to the right parser.
 *
 * | input | recognised by | parser |
 * | --- | --- | --- |
 * | SEGGER flash loader (SFL) | ELF with `SEGGER_FL_*` symbols | {@link parseSeggerLoader} |
 * | SEGGER flash loader (legacy OFL) | ELF with a `SEGGER_OFL_Api` symbol | {@link parseSeggerLoader} |
 * | CMSIS `.FLM` | any other ELF | {@link parseFlm} |
 * | probe-rs target YAML | text | {@link parseProbeRsYaml} |
 *
 * The file name does not matter (FLMs come as `.FLM`, `.flm`, `.elf`, `.axf`).
 *
 * @example
 * ```ts
 * const algo = loadAlgorithm(await readFile(path), { source: path, name: 'nrf51' });
 * console.log(describeAlgorithm(algo));
 * ```
 * @module
 */
import { FormatError } from '../errors.js';
import type { FlashAlgorithm } from './algorithm.js';
import { parseElf } from '../elf.js';
import { parseFlm } from './flm.js';
import { parseProbeRsYaml } from './probe-rs.js';
import { parseSeggerLoader, seggerLoaderKind } from './segger.js';

/** Options of {@link loadAlgorithm}. */
export interface LoadAlgorithmOptions {
  /** Where the bytes came from (a file name), for messages. Default `'algorithm'`. */
  readonly source?: string;
  /**
   * For probe-rs YAML, which algorithm of the file to take (by `name`);
   * ignored for ELF files, which hold exactly one.
   */
  readonly name?: string;
}

/** What {@link loadAlgorithm} accepts, for error messages. */
export const ACCEPTED_ALGORITHM_FORMATS =
  'a CMSIS flash algorithm (.FLM), a SEGGER flash loader (ELF) or a probe-rs target description (YAML)';

/** How many leading bytes are inspected to tell text from binary. */
const SNIFF_LENGTH = 4096;

/**
 * Reads a flash algorithm in any supported format (see the table above).
 *
 * @param bytes The file's content.
 * @param options `source` (the file name, for messages) and the format's options.
 * @throws A {@link FormatError} if the bytes are neither ELF nor text, or the
 *   chosen parser rejects them. The message says which formats are accepted.
 */
export function loadAlgorithm(bytes: Uint8Array, options?: LoadAlgorithmOptions): FlashAlgorithm;
/**
 * Reads a flash algorithm, the file name given on its own.
 * @deprecated Pass the source in the options: `loadAlgorithm(bytes, { source, name })`.
 */
export function loadAlgorithm(bytes: Uint8Array, source: string, options?: LoadAlgorithmOptions): FlashAlgorithm;
export function loadAlgorithm(bytes: Uint8Array, a: string | LoadAlgorithmOptions = {}, b: LoadAlgorithmOptions = {}): FlashAlgorithm {
  const options = typeof a === 'string' ? { ...b, source: a } : a;
  const source = options.source ?? 'algorithm';
  if (bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    const elf = parseElf(bytes, source);
    return seggerLoaderKind(elf) !== undefined ? parseSeggerLoader(bytes, source) : parseFlm(bytes, source);
  }
  const text = asText(bytes);
  if (text === undefined) {
    throw new FormatError(`${source}: neither an ELF file nor text; expected ${ACCEPTED_ALGORITHM_FORMATS}`, source, 0);
  }
  try {
    return parseProbeRsYaml(text, source, options);
  } catch (err) {
    // A text file that is not a probe-rs target at all deserves the list of formats.
    if (err instanceof FormatError && /not valid YAML|no flash algorithms/.test(err.message)) {
      throw new FormatError(`${err.message}. Expected ${ACCEPTED_ALGORITHM_FORMATS}`, source, err.offset, { cause: err });
    }
    throw err;
  }
}

/** The bytes as UTF-8 text, or `undefined` if they look binary (NUL bytes, invalid UTF-8). */
function asText(bytes: Uint8Array): string | undefined {
  if (bytes.subarray(0, SNIFF_LENGTH).includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    return undefined;
  }
}
