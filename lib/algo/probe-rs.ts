/**
 * Flash algorithms from probe-rs target description YAML (the files in
 * probe-rs's `targets/` folder, or what `target-gen` writes) turned into the
 * {@link FlashAlgorithm} model.
 *
 * A target file lists algorithms under `flash_algorithms`:
 *
 * ```yaml
 * flash_algorithms:
 * - name: nrf51
 *   default: true
 *   instructions: ASBJHgpohQAIcAHgQBhASFQhBFhgBFoDA=   # base64 of the code
 *   load_address: 0x20000008   # optional: absent = position independent
 *   pc_init: 0x1               # entry offsets from the code start
 *   pc_uninit: 0x5d
 *   pc_program_page: 0xed
 *   pc_erase_sector: 0x71
 *   pc_erase_all: 0x45
 *   data_section_offset: 0x144 # R9 = code start + this
 *   flash_properties:
 *     address_range: { start: 0x0, end: 0x40000 }
 *     page_size: 0x400
 *     erased_byte_value: 0xff
 *     program_page_timeout: 1000
 *     erase_sector_timeout: 2000
 *     sectors:
 *     - { size: 0x400, address: 0x0 }   # address relative to address_range.start
 * ```
 *
 * The `pc_*` values are `st_value - code start` as `target-gen` copies them
 * from the algorithm's ELF symbols, so Arm entries carry the Thumb bit
 * (`pc_init: 0x1` for Init at offset 0); it is cleared here.
 *
 * Target files use YAML local tags for enum variants (`!Ram {…}`, `!Nvm {…}`,
 * `!Generic`, `!Arm {…}`, `!NordicConfigId {…}`). They are registered so
 * their mappings parse as mappings (and {@link listProbeRsMemoryRegions} can
 * tell RAM from flash); tags this module does not know still parse as plain
 * mappings, sequences or strings.
 *
 * @example
 * ```ts
 * const text = await readFile('nRF51822.yaml', 'utf8');
 * listProbeRsAlgorithms(text).map((a) => a.name); // ['nrf51']
 * const algo = parseProbeRsYaml(text, 'nRF51822.yaml', { name: 'nrf51' });
 * ```
 * @module
 */
import { Document, YAMLMap, YAMLSeq, isMap, isSeq, parseDocument, type Tags } from 'yaml';
import { FormatError, hex32 } from '../errors.js';
import { sectorCount, type AlgorithmFunction, type FlashAlgorithm, type SectorRun } from './algorithm.js';
import { INIT_TIMEOUT_MS, MAX_ERASE_CHIP_TIMEOUT_MS, MIN_ERASE_CHIP_TIMEOUT_MS, checkGeometryAsFormatError } from './flm.js';

/**
 * The local tags probe-rs target files use (serde enum variants of
 * `MemoryRegion`, `CoreAccessOptions`, `ChipDetectionMethod`), registered
 * with the YAML parser for mappings, sequences and scalars alike.
 */
export const PROBE_RS_TAGS: readonly string[] = [
  'Ram',
  'Nvm',
  'Generic',
  'Arm',
  'Riscv',
  'Xtensa',
  'NordicConfigId',
  'NordicFicrInfo',
  'AtsamDsu',
  'Espressif',
  'InfineonXmcScu',
  'InfineonPsocSiid',
];

/** `!Ram` etc. as yaml custom tags that keep the node (and its `tag`) as is. */
const customTags: Tags = PROBE_RS_TAGS.flatMap((name): Tags => [
  { tag: `!${name}`, collection: 'map', resolve: (map: YAMLMap.Parsed | YAMLSeq.Parsed) => map },
  { tag: `!${name}`, collection: 'seq', resolve: (seq: YAMLMap.Parsed | YAMLSeq.Parsed) => seq },
  { tag: `!${name}`, resolve: (text: string) => text },
]);

/** Parses YAML text into a document, any syntax error → FormatError. */
function parseYaml(text: string, source: string): Document.Parsed {
  const doc = parseDocument(text, {
    customTags,
    // Unknown tags are warnings (the node parses untagged); never print them.
    logLevel: 'silent',
    prettyErrors: false,
  });
  const error = doc.errors[0];
  if (error !== undefined) {
    throw new FormatError(`${source}: not valid YAML: ${error.message.split('\n')[0]}`, source, error.pos[0], { cause: error });
  }
  return doc;
}

/** The document as plain JS values; alias bombs and the like → FormatError. */
function toPlain(node: unknown, doc: Document.Parsed, source: string): unknown {
  try {
    if (node instanceof Document) return node.toJS({ maxAliasCount: 1000 });
    return (node as { toJS?: (d: Document, o: object) => unknown }).toJS?.(doc, { maxAliasCount: 1000 }) ?? node;
  } catch (err) {
    throw new FormatError(`${source}: YAML could not be converted: ${(err as Error).message}`, source, undefined, { cause: err });
  }
}

type Plain = Record<string, unknown>;

const isRecord = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Field readers that name the field in every error. */
class Fields {
  constructor(
    private readonly obj: Plain,
    private readonly path: string,
    private readonly source: string,
  ) {}

  fail(field: string, message: string): never {
    throw new FormatError(`${this.source}: ${this.path}.${field} ${message}`, this.source);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  /** An unsigned integer up to `max`, or `undefined` when absent and optional. */
  uint(field: string, required: true, max?: number): number;
  uint(field: string, required: false, max?: number): number | undefined;
  uint(field: string, required: boolean, max = 0xffffffff): number | undefined {
    const value = this.obj[field];
    if (value === undefined || value === null) {
      if (required) this.fail(field, 'is missing');
      return undefined;
    }
    if (typeof value !== 'number') {
      this.fail(field, `must be a number, found ${typeof value === 'string' ? `the string '${value}'` : typeof value}`);
    }
    if (!Number.isSafeInteger(value) || value < 0 || value > max) {
      this.fail(field, `must be an integer from 0 to 0x${max.toString(16)}, found ${value}`);
    }
    return value;
  }

  string(field: string, required: true): string;
  string(field: string, required: false): string | undefined;
  string(field: string, required: boolean): string | undefined {
    const value = this.obj[field];
    if (value === undefined || value === null) {
      if (required) this.fail(field, 'is missing');
      return undefined;
    }
    if (typeof value !== 'string') this.fail(field, `must be a string, found ${typeof value}`);
    return value;
  }

  boolean(field: string): boolean | undefined {
    const value = this.obj[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') this.fail(field, `must be true or false, found ${JSON.stringify(value)}`);
    return value;
  }

  record(field: string): Fields {
    const value = this.obj[field];
    if (value === undefined || value === null) this.fail(field, 'is missing');
    if (!isRecord(value)) this.fail(field, 'must be a mapping');
    return new Fields(value, `${this.path}.${field}`, this.source);
  }

  list(field: string): Fields[] {
    const value = this.obj[field];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(field, 'must be a list');
    return value.map((item, i) => {
      if (!isRecord(item)) this.fail(`${field}[${i}]`, 'must be a mapping');
      return new Fields(item, `${this.path}.${field}[${i}]`, this.source);
    });
  }
}

/** The raw algorithm mappings of a target file, or of a file that is a single algorithm. */
function algorithmsOf(text: string, source: string): Plain[] {
  const doc = parseYaml(text, source);
  const root = toPlain(doc, doc, source);
  if (isRecord(root) && Array.isArray(root.flash_algorithms)) {
    return root.flash_algorithms.map((item, i) => {
      if (!isRecord(item)) throw new FormatError(`${source}: flash_algorithms[${i}] must be a mapping`, source);
      return item;
    });
  }
  // A lone algorithm (as `target-gen` prints one) instead of a whole target file.
  if (isRecord(root) && 'instructions' in root) return [root];
  throw new FormatError(
    `${source}: no flash algorithms: expected a probe-rs target file with a 'flash_algorithms' list (or one algorithm with 'instructions')`,
    source,
  );
}

/** One algorithm of a probe-rs target file, as {@link listProbeRsAlgorithms} lists it. */
export interface ProbeRsAlgorithmSummary {
  /** `name`, what {@link LoadAlgorithmOptions.name} selects (`#i` if the entry has none). */
  readonly name: string;
  /** `description`, e.g. the FLM's DevName. */
  readonly description: string | undefined;
  /** `default: true` in the file. */
  readonly default: boolean;
  /** `flash_properties.address_range`, when present and numeric. */
  readonly start: number | undefined;
  /** End of the address range (exclusive). */
  readonly end: number | undefined;
}

/**
 * Lists the flash algorithms of a probe-rs target file without decoding them.
 *
 * @param text The YAML text.
 * @param source File name for messages (default `probe-rs YAML`).
 * @throws A {@link FormatError} for invalid YAML or a file without algorithms.
 */
export function listProbeRsAlgorithms(text: string, source = 'probe-rs YAML'): ProbeRsAlgorithmSummary[] {
  return algorithmsOf(text, source).map((raw, i) => {
    const f = new Fields(raw, `flash_algorithms[${i}]`, source);
    const range = isRecord(raw.flash_properties) ? raw.flash_properties.address_range : undefined;
    const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
    return {
      name: f.string('name', false) ?? `#${i}`,
      description: f.string('description', false),
      default: f.boolean('default') ?? false,
      start: isRecord(range) ? num(range.start) : undefined,
      end: isRecord(range) ? num(range.end) : undefined,
    };
  });
}

/** Options of {@link parseProbeRsYaml}. */
export interface ProbeRsOptions {
  /**
   * Which algorithm to take (its `name`). Without it: the one marked
   * `default: true`, else the only one.
   */
  readonly name?: string;
}

/** `pc_*` fields and the routine each names. */
const PC_FIELDS: readonly { field: string; fn: AlgorithmFunction; required: boolean }[] = [
  { field: 'pc_init', fn: 'Init', required: false },
  { field: 'pc_uninit', fn: 'UnInit', required: false },
  { field: 'pc_program_page', fn: 'ProgramPage', required: true },
  { field: 'pc_erase_sector', fn: 'EraseSector', required: true },
  { field: 'pc_erase_all', fn: 'EraseChip', required: false },
  { field: 'pc_verify', fn: 'Verify', required: false },
  { field: 'pc_blank_check', fn: 'BlankCheck', required: false },
  { field: 'pc_read', fn: 'Read', required: false },
];

/** Standard base64 alphabet with padding, whitespace removed (what probe-rs's `base64` STANDARD engine accepts). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Reads one flash algorithm from probe-rs target YAML.
 *
 * - `blob`: `instructions` (base64), offset 0 = code start.
 * - `functions`: `pc_*` fields (`pc_erase_all` → `EraseChip`, `pc_read` →
 *   `Read`), Thumb bit cleared; `pc_program_page` and `pc_erase_sector` are required.
 * - `staticBaseOffset`: `data_section_offset`; `loadAddress`: `load_address`;
 *   `stackSize`: `stack_size`.
 * - `geometry` from `flash_properties` (sector addresses are relative to
 *   `address_range.start`, each entry runs to the next or the end).
 * - `timeouts`: `program_page_timeout`, `erase_sector_timeout`,
 *   `erase_chip_timeout` (when given, else as for FLMs: sectors × erase
 *   timeout, clamped), init 5 s.
 *
 * @param text The YAML text.
 * @param source File name for messages.
 * @throws A {@link FormatError} for invalid YAML, no or ambiguous algorithm
 *   (the message lists the names), a field of the wrong type (named in the
 *   message), bad base64, big-endian or compressed (`transfer_encoding: miniz`)
 *   algorithms, or an inconsistent geometry.
 */
export function parseProbeRsYaml(text: string, source: string, options: ProbeRsOptions = {}): FlashAlgorithm {
  const all = algorithmsOf(text, source);
  const names = all.map((a, i) => (typeof a.name === 'string' ? a.name : `#${i}`));
  let index: number;
  if (options.name !== undefined) {
    index = names.indexOf(options.name);
    if (index < 0) {
      throw new FormatError(`${source}: no flash algorithm named '${options.name}'; the file has: ${names.join(', ')}`, source);
    }
  } else {
    const defaults = all.flatMap((a, i) => (a.default === true ? [i] : []));
    if (defaults.length === 1) index = defaults[0]!;
    else if (all.length === 1) index = 0;
    else {
      throw new FormatError(
        `${source}: ${all.length} flash algorithms and ${defaults.length === 0 ? 'none' : 'more than one'} marked default; choose one by name: ${names.join(', ')}`,
        source,
      );
    }
  }
  return decodeAlgorithm(all[index]!, `flash_algorithms[${index}]`, source);
}

function decodeAlgorithm(raw: Plain, path: string, source: string): FlashAlgorithm {
  const f = new Fields(raw, path, source);
  const name = f.string('name', true);
  if (f.boolean('big_endian') === true) f.fail('big_endian', 'is true: only little-endian (Cortex-M) algorithms are supported');
  const encoding = f.string('transfer_encoding', false);
  if (encoding !== undefined && encoding !== 'raw') {
    f.fail('transfer_encoding', `is '${encoding}': only raw transfer encoding is supported`);
  }

  const instructions = f.string('instructions', true).replace(/\s+/g, '');
  if (instructions.length === 0) f.fail('instructions', 'is empty (a host-side algorithm without code cannot run on the target)');
  if (instructions.length % 4 !== 0 || !BASE64.test(instructions)) f.fail('instructions', 'is not valid base64');
  const blob = new Uint8Array(Buffer.from(instructions, 'base64'));

  const functions: Partial<Record<AlgorithmFunction, number>> = {};
  for (const { field, fn, required } of PC_FIELDS) {
    const value = required ? f.uint(field, true) : f.uint(field, false);
    if (value === undefined) continue;
    // target-gen copies st_value, so Thumb entries are odd; the model wants the instruction address.
    const offset = value & ~1;
    if (offset >= blob.length) f.fail(field, `(0x${value.toString(16)}) is outside the ${blob.length}-byte code`);
    functions[fn] = offset;
  }

  const props = f.record('flash_properties');
  const range = props.record('address_range');
  const start = range.uint('start', true);
  const end = range.uint('end', true, 2 ** 32);
  if (end <= start) range.fail('end', `(${hex32(end)}) is not above start (${hex32(start)})`);
  const size = end - start;
  const pageSize = props.uint('page_size', true);
  const erasedValue = props.uint('erased_byte_value', true, 0xff);
  const programPage = props.uint('program_page_timeout', true);
  const eraseSector = props.uint('erase_sector_timeout', true);
  const eraseChipGiven = props.uint('erase_chip_timeout', false);

  const entries = props.list('sectors').map((s) => ({ fields: s, size: s.uint('size', true), offset: s.uint('address', true) }));
  if (entries.length === 0) props.fail('sectors', 'is missing or empty');
  const runs: SectorRun[] = entries.map((entry, i) => {
    const next = entries[i + 1]?.offset ?? size;
    if (entry.size === 0) entry.fields.fail('size', 'is 0');
    if (next <= entry.offset) entry.fields.fail('address', `(0x${entry.offset.toString(16)}) is not below the next sector entry or the end of the flash`);
    if ((next - entry.offset) % entry.size !== 0) {
      entry.fields.fail('size', `(0x${entry.size.toString(16)}) does not divide the 0x${(next - entry.offset).toString(16)} bytes up to the next entry`);
    }
    return { address: start + entry.offset, size: entry.size, count: (next - entry.offset) / entry.size };
  });
  const geometry = { start, size, pageSize, erasedValue, sectors: runs };
  checkGeometryAsFormatError(geometry, source);

  const eraseChip =
    eraseChipGiven ?? Math.min(Math.max(eraseSector * sectorCount(geometry), MIN_ERASE_CHIP_TIMEOUT_MS), MAX_ERASE_CHIP_TIMEOUT_MS);
  const staticBaseOffset = f.uint('data_section_offset', false);
  return {
    name,
    format: 'probe-rs',
    blob,
    loadAddress: f.uint('load_address', false),
    functions,
    staticBaseOffset,
    relocations: [],
    stackSize: f.uint('stack_size', false),
    geometry,
    timeouts: { init: INIT_TIMEOUT_MS, programPage, eraseSector, eraseChip },
  };
}

/** A `memory_map` entry of a probe-rs target file. */
export interface ProbeRsMemoryRegion {
  /** The entry's tag: `Ram`, `Nvm`, `Generic` (or another tag a newer probe-rs writes). */
  readonly kind: string;
  /** `name`, e.g. `FLASH` or `RAM`. */
  readonly name: string | undefined;
  /** `range.start`. */
  readonly start: number;
  /** `range.end` (exclusive). */
  readonly end: number;
  /** Cores that can access it (`cores`), empty if not listed. */
  readonly cores: readonly string[];
}

/** The memory map of one chip variant of a probe-rs target file. */
export interface ProbeRsVariantMemory {
  /** The variant's `name`, e.g. `nRF51822_xxAA` (`#i` if it has none). */
  readonly variant: string;
  /** Its `memory_map`, in file order. */
  readonly regions: ProbeRsMemoryRegion[];
}

/**
 * The `memory_map` of every variant of a probe-rs target file, with each
 * region's kind taken from its YAML tag (`!Ram`, `!Nvm`, `!Generic`): the
 * RAM regions are where a flash algorithm can run.
 *
 * @returns One list per `variants[]` entry, named by the variant's `name`.
 * @throws A {@link FormatError} for invalid YAML or a region without a numeric range.
 */
export function listProbeRsMemoryRegions(text: string, source = 'probe-rs YAML'): ProbeRsVariantMemory[] {
  const doc = parseYaml(text, source);
  const variants = doc.get('variants', true);
  if (!isSeq(variants)) return [];
  return variants.items.map((variant, v) => {
    const name = isMap(variant) ? variant.get('name') : undefined;
    const map = isMap(variant) ? variant.get('memory_map', true) : undefined;
    const regions = isSeq(map)
      ? map.items.map((item, i) => {
          const plain = toPlain(item, doc, source);
          const where = `variants[${v}].memory_map[${i}]`;
          if (!isRecord(plain)) throw new FormatError(`${source}: ${where} must be a mapping`, source);
          const fields = new Fields(plain, where, source);
          const range = fields.record('range');
          const tag = (item as { tag?: string }).tag;
          return {
            kind: tag?.replace(/^!/, '') ?? 'Generic',
            name: fields.string('name', false),
            start: range.uint('start', true),
            end: range.uint('end', true, 2 ** 32),
            cores: Array.isArray(plain.cores) ? plain.cores.filter((c): c is string => typeof c === 'string') : [],
          };
        })
      : [];
    return { variant: typeof name === 'string' ? name : `#${v}`, regions };
  });
}
