/**
 * The package description (`.pdsc`) of a CMSIS pack, read into a model of its
 * devices — only what programming flash needs: processors, memories, flash
 * algorithms (with their RAM), debug entries. What is read and what is
 * ignored, and why, is in docs/packs.md.
 *
 * Device properties are inherited down `<family>` → `<subFamily>` →
 * `<device>` → `<variant>` (CMSIS-Pack, "/package/devices"): each level adds
 * entries, and an entry with the same identity as one above it redefines it,
 * attribute by attribute. Identities: a processor by `Pname`, a memory by
 * `name` (or the deprecated `id`), an algorithm by its file, start and `Pname`,
 * a debug entry by `Pname`. {@link parsePdsc} flattens that into one
 * {@link PdscDevice} per device and variant; {@link resolvePdscDevice} picks
 * one of them and one of its processors.
 *
 * The XML is parsed with `@xmldom/xmldom` as lib/gdb/xml.ts does it: no
 * entity expansion, any DOCTYPE refused (no PDSC needs one), every parser
 * complaint an error, and a size limit before parsing.
 *
 * @example
 * ```ts
 * const pack = parsePdsc(text, 'AlifSemiconductor.Ensemble.pdsc');
 * const dev = resolvePdscDevice(pack, 'AE722F80F55D5LS', { core: 'M55_HP' });
 * for (const a of dev.algorithms) console.log(a.path, hex32(a.start), hex32(a.ram.start));
 * ```
 * @module
 */
import { DOMParser } from '@xmldom/xmldom';
import type { Element } from '@xmldom/xmldom';
import { FormatError, UsageError, hex32 } from '../errors.js';
import { comparePackVersions } from './version.js';

/** Largest PDSC accepted, characters. The largest public ones are a few MiB. */
export const MAX_PDSC_LENGTH = 32 << 20;

/** A `<processor>`: one core of a device. */
export interface PdscProcessor {
  /** `Pname`; absent on single-core devices. */
  readonly pname?: string;
  /** `Dcore`, e.g. `Cortex-M55`. */
  readonly core?: string;
  /** `Dclock`, Hz. */
  readonly clock?: number;
  /** `Dfpu` as written, e.g. `DP_FPU`. */
  readonly fpu?: string;
  /** `Dmpu` as written, e.g. `MPU`. */
  readonly mpu?: string;
  /** `Dtz` (TrustZone) as written, e.g. `TZ`. */
  readonly tz?: string;
  /** `Ddsp` as written, e.g. `DSP`. */
  readonly dsp?: string;
  /** `Dmve` (Helium) as written, e.g. `FP_MVE`. */
  readonly mve?: string;
  /** `Dendian` as written, e.g. `Little-endian`. */
  readonly endian?: string;
}

/** A `<memory>` region. */
export interface PdscMemory {
  /** `name`, or the deprecated `id` (`IROM1`, `IRAM1`). */
  readonly name: string;
  /** `start`: first address. */
  readonly start: number;
  /** `size`, bytes. */
  readonly size: number;
  /** `access` letters (`r`, `w`, `x`, `s`, `n`, `c`, `p`); from an `id`, `rx` for IROM and `rwx` for IRAM. */
  readonly access: string;
  /** `default`: the region is used by default (e.g. by a linker script). */
  readonly default: boolean;
  /** `startup`: the region holds the boot code. */
  readonly startup: boolean;
  /** The only processor that sees the region; absent = all. */
  readonly pname?: string;
}

/** An `<algorithm>`: a flash algorithm file and the range it programs. */
export interface PdscAlgorithm {
  /** File inside the pack, `/`-separated (PDSC files often use `\`). */
  readonly path: string;
  /** `start`: first address of the flash range it programs. */
  readonly start: number;
  /** `size` of that range, bytes. */
  readonly size: number;
  /** `RAMstart`/`RAMsize`: where the algorithm runs; absent = the device's RAM. */
  readonly ramStart?: number;
  /** `RAMsize`, bytes (see `ramStart`). */
  readonly ramSize?: number;
  /** `default`: the algorithm to use when several program the same range. */
  readonly default: boolean;
  /** The only processor that uses it; absent = all. */
  readonly pname?: string;
  /** `style`: `Keil` (absent = Keil), `IAR`, `CMSIS`. */
  readonly style?: string;
}

/** A `<debug>` entry (per processor). */
export interface PdscDebug {
  /** The processor it applies to; absent = all. */
  readonly pname?: string;
  /** `svd`: the System View Description file inside the pack. */
  readonly svd?: string;
  /** `__apid`: the access port id. */
  readonly apid?: number;
  /** `__ap`: the access port index. */
  readonly ap?: number;
}

/** One device (or variant) with everything it inherits. */
export interface PdscDevice {
  /** `Dname`, or `Dvariant` for a variant. */
  readonly name: string;
  /** `Dvendor` of the family, e.g. `Alif Semiconductor:165`. */
  readonly vendor?: string;
  /** `Dfamily`, e.g. `Ensemble`. */
  readonly family: string;
  /** `DsubFamily`, when the device is in one. */
  readonly subFamily?: string;
  /** For a variant, the device it varies. */
  readonly variantOf?: string;
  /** Its cores (one `<processor>` each). */
  readonly processors: readonly PdscProcessor[];
  /** Its memory regions, inherited ones included. */
  readonly memories: readonly PdscMemory[];
  /** Its flash algorithms, inherited ones included. */
  readonly algorithms: readonly PdscAlgorithm[];
  /** Its `<debug>` entries, inherited ones included. */
  readonly debug: readonly PdscDebug[];
}

/** What a PDSC (a pack's description file) says, as {@link CmsisPack.description} holds it. */
export interface PackDescription {
  /** `<vendor>`, e.g. `AlifSemiconductor`. */
  readonly vendor: string;
  /** `<name>`, e.g. `Ensemble`. */
  readonly name: string;
  /** Newest `<release version>` (semver precedence), if any. */
  readonly version?: string;
  /** Every device and variant, in document order. */
  readonly devices: readonly PdscDevice[];
  /** The document, for messages (e.g. its path). */
  readonly source: string;
}

// ---------------------------------------------------------------------------
// XML

const ELEMENT_NODE = 1;

function children(el: Element): Element[] {
  const out: Element[] = [];
  for (let node = el.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) out.push(node as Element);
  }
  return out;
}

function tag(el: Element): string {
  return el.localName ?? el.tagName;
}

function parseDocument(xml: string, source: string): Element {
  if (xml.length > MAX_PDSC_LENGTH) {
    throw new FormatError(`${source}: ${xml.length} characters, more than the ${MAX_PDSC_LENGTH} accepted for a PDSC`, source);
  }
  // Refused before parsing: xmldom would stop at an entity first and say less.
  if (/<!DOCTYPE/i.test(xml)) throw new FormatError(`${source}: declares a DOCTYPE, which a PDSC has no use for (refused: entities)`, source);
  let detail: string | undefined;
  const parser = new DOMParser({
    locator: true,
    onError: (level, message) => {
      detail ??= `${level}: ${message}`;
      throw new Error(message); // makes xmldom stop; caught below
    },
  });
  let root: Element | null;
  try {
    const doc = parser.parseFromString(xml, 'text/xml');
    root = doc.documentElement;
  } catch (err) {
    if (err instanceof FormatError) throw err;
    throw new FormatError(`${source}: not well-formed XML (${detail ?? (err as Error).message})`, source, undefined, { cause: err });
  }
  if (!root || tag(root) !== 'package') throw new FormatError(`${source}: not a PDSC (the root element is not <package>)`, source);
  return root;
}

// ---------------------------------------------------------------------------
// Attributes

type Attrs = Record<string, string>;

function attrsOf(el: Element): Attrs {
  const out: Attrs = {};
  for (let i = 0; i < el.attributes.length; i++) {
    const a = el.attributes.item(i)!;
    out[a.localName ?? a.name] = a.value;
  }
  return out;
}

const HEX = /^0[xX][0-9a-fA-F]+$/;
const DECIMAL = /^[0-9]+$/;

function number(text: string, what: string, source: string): number {
  const t = text.trim();
  const value = HEX.test(t) ? parseInt(t.slice(2), 16) : DECIMAL.test(t) ? parseInt(t, 10) : NaN;
  if (!Number.isSafeInteger(value)) throw new FormatError(`${source}: ${what} ${JSON.stringify(text)} is not a number`, source);
  return value;
}

function optionalNumber(text: string | undefined, what: string, source: string): number | undefined {
  return text === undefined || text.trim() === '' ? undefined : number(text, what, source);
}

function flag(text: string | undefined): boolean {
  return text !== undefined && /^(1|true)$/i.test(text.trim());
}

/** `Flash\\STM32.FLM` → `Flash/STM32.FLM`; the pack reader refuses `..` and absolute paths. */
function packPath(text: string): string {
  return text.trim().replace(/\\/g, '/').replace(/^\.\//, '');
}

// ---------------------------------------------------------------------------
// Inheritance

/** One level's worth of properties, keyed by identity (insertion order kept). */
interface Properties {
  processors: Map<string, Attrs>;
  memories: Map<string, Attrs>;
  algorithms: Map<string, Attrs>;
  debug: Map<string, Attrs>;
}

function emptyProperties(): Properties {
  return { processors: new Map(), memories: new Map(), algorithms: new Map(), debug: new Map() };
}

function copyProperties(p: Properties): Properties {
  return {
    processors: new Map(p.processors),
    memories: new Map(p.memories),
    algorithms: new Map(p.algorithms),
    debug: new Map(p.debug),
  };
}

/** Redefines `key` in `map` attribute by attribute (a lower level overrides). */
function merge(map: Map<string, Attrs>, key: string, attrs: Attrs): void {
  map.set(key, { ...map.get(key), ...attrs });
}

/** Whether two elements' `start`/`size` ranges overlap (false if either is unreadable; reported later). */
function rangesOverlap(a: Attrs, b: Attrs): boolean {
  const range = (x: Attrs) => {
    const start = Number(x.start?.trim());
    const size = Number(x.size?.trim());
    return Number.isFinite(start) && Number.isFinite(size) ? [start, start + size] : undefined;
  };
  const ra = range(a);
  const rb = range(b);
  return !!ra && !!rb && ra[0]! < rb[1]! && rb[0]! < ra[1]!;
}

/** The properties of `el`'s level added to those inherited. */
function inherit(parent: Properties, el: Element): Properties {
  const p = copyProperties(parent);
  const named: Attrs[] = [];
  const algorithms: Attrs[] = [];
  const unnamed: Attrs[] = [];
  for (const child of children(el)) {
    const a = attrsOf(child);
    switch (tag(child)) {
      case 'processor':
        (a.Pname ? named : unnamed).push(a);
        break;
      case 'memory':
        merge(p.memories, a.name ?? a.id ?? '', a);
        break;
      case 'algorithm':
        algorithms.push(a);
        break;
      case 'debug':
        merge(p.debug, a.Pname ?? '', a);
        break;
      default:
        break; // everything else is ignored: see docs/packs.md
    }
  }
  // An algorithm redefines an inherited one with the same file, start and
  // Pname, and replaces inherited ones for the same processor whose range it
  // overlaps (a device with more flash than its family's algorithm covers).
  for (const a of algorithms) {
    for (const [key, above] of parent.algorithms) {
      if ((above.Pname ?? '') === (a.Pname ?? '') && rangesOverlap(above, a)) p.algorithms.delete(key);
    }
  }
  for (const a of algorithms) merge(p.algorithms, `${packPath(a.name ?? '')}\0${a.start ?? ''}\0${a.Pname ?? ''}`, a);
  // A processor without Pname adds to every processor (a family's Dcore for
  // all cores); a named one starts from what an unnamed one above said.
  for (const a of unnamed) {
    if (p.processors.size === 0) p.processors.set('', a);
    else for (const key of p.processors.keys()) merge(p.processors, key, a);
  }
  for (const a of named) {
    const key = a.Pname!;
    p.processors.set(key, { ...(p.processors.get(key) ?? p.processors.get('')), ...a });
  }
  if (named.length > 0) p.processors.delete('');
  return p;
}

function toDevice(
  props: Properties,
  context: { name: string; vendor?: string; family: string; subFamily?: string; variantOf?: string },
  source: string,
): PdscDevice {
  const where = `device ${context.name}`;
  const processors = [...props.processors.values()].map((a): PdscProcessor => ({
    ...(a.Pname ? { pname: a.Pname } : {}),
    ...(a.Dcore ? { core: a.Dcore } : {}),
    ...(a.Dclock ? { clock: number(a.Dclock, `${where}: Dclock`, source) } : {}),
    ...(a.Dfpu ? { fpu: a.Dfpu } : {}),
    ...(a.Dmpu ? { mpu: a.Dmpu } : {}),
    ...(a.Dtz ? { tz: a.Dtz } : {}),
    ...(a.Ddsp ? { dsp: a.Ddsp } : {}),
    ...(a.Dmve ? { mve: a.Dmve } : {}),
    ...(a.Dendian ? { endian: a.Dendian } : {}),
  }));
  const memories = [...props.memories.values()].map((a): PdscMemory => {
    const name = a.name ?? a.id;
    if (!name) throw new FormatError(`${source}: ${where}: a <memory> has neither name nor id`, source);
    const what = `${where}: memory ${name}`;
    if (a.start === undefined || a.size === undefined) throw new FormatError(`${source}: ${what} lacks start or size`, source);
    const fromId = a.id === undefined ? undefined : /^IROM/i.test(a.id) ? 'rx' : /^IRAM/i.test(a.id) ? 'rwx' : undefined;
    return {
      name,
      start: number(a.start, `${what}: start`, source),
      size: number(a.size, `${what}: size`, source),
      access: a.access ?? fromId ?? 'r',
      default: flag(a.default),
      startup: flag(a.startup),
      ...(a.Pname ? { pname: a.Pname } : {}),
    };
  });
  const algorithms = [...props.algorithms.values()].map((a): PdscAlgorithm => {
    if (!a.name) throw new FormatError(`${source}: ${where}: an <algorithm> has no name`, source);
    const what = `${where}: algorithm ${a.name}`;
    if (a.start === undefined || a.size === undefined) throw new FormatError(`${source}: ${what} lacks start or size`, source);
    const ramStart = optionalNumber(a.RAMstart, `${what}: RAMstart`, source);
    const ramSize = optionalNumber(a.RAMsize, `${what}: RAMsize`, source);
    return {
      path: packPath(a.name),
      start: number(a.start, `${what}: start`, source),
      size: number(a.size, `${what}: size`, source),
      ...(ramStart !== undefined ? { ramStart } : {}),
      ...(ramSize !== undefined ? { ramSize } : {}),
      default: flag(a.default),
      ...(a.Pname ? { pname: a.Pname } : {}),
      ...(a.style ? { style: a.style } : {}),
    };
  });
  const debug = [...props.debug.values()].map((a): PdscDebug => {
    const apid = optionalNumber(a.__apid, `${where}: debug __apid`, source);
    const ap = optionalNumber(a.__ap, `${where}: debug __ap`, source);
    return {
      ...(a.Pname ? { pname: a.Pname } : {}),
      ...(a.svd ? { svd: packPath(a.svd) } : {}),
      ...(apid !== undefined ? { apid } : {}),
      ...(ap !== undefined ? { ap } : {}),
    };
  });
  return {
    name: context.name,
    ...(context.vendor ? { vendor: context.vendor } : {}),
    family: context.family,
    ...(context.subFamily ? { subFamily: context.subFamily } : {}),
    ...(context.variantOf ? { variantOf: context.variantOf } : {}),
    processors,
    memories,
    algorithms,
    debug,
  };
}

/**
 * Reads a PDSC into a {@link PackDescription}: pack identity, newest release,
 * and every device and variant with its inherited properties.
 *
 * @param source the file, for messages
 * @throws {@link FormatError} for malformed XML, a DOCTYPE, a root other than
 * `<package>`, missing `<vendor>`/`<name>`, or a malformed number in a
 * property rspflash reads.
 */
export function parsePdsc(xml: string, source: string): PackDescription {
  const root = parseDocument(xml.replace(/^\uFEFF/, ''), source);
  const top = children(root);
  const text = (name: string) => top.find((e) => tag(e) === name)?.textContent?.trim();
  const vendor = text('vendor');
  const name = text('name');
  if (!vendor || !name) throw new FormatError(`${source}: a PDSC needs <vendor> and <name>`, source);
  const versions = top
    .filter((e) => tag(e) === 'releases')
    .flatMap((e) => children(e))
    .filter((e) => tag(e) === 'release')
    .map((e) => e.getAttribute('version')?.trim())
    .filter((v): v is string => !!v)
    .sort(comparePackVersions);
  const devices: PdscDevice[] = [];
  for (const list of top.filter((e) => tag(e) === 'devices')) {
    for (const family of children(list).filter((e) => tag(e) === 'family')) {
      const fam = { family: family.getAttribute('Dfamily') ?? '', vendor: family.getAttribute('Dvendor') ?? undefined };
      const familyProps = inherit(emptyProperties(), family);
      const deviceParents: { el: Element; props: Properties; subFamily?: string }[] = [{ el: family, props: familyProps }];
      for (const sub of children(family).filter((e) => tag(e) === 'subFamily')) {
        deviceParents.push({ el: sub, props: inherit(familyProps, sub), subFamily: sub.getAttribute('DsubFamily') ?? '' });
      }
      for (const parent of deviceParents) {
        for (const device of children(parent.el).filter((e) => tag(e) === 'device')) {
          const dname = device.getAttribute('Dname')?.trim();
          if (!dname) throw new FormatError(`${source}: a <device> in family ${fam.family} has no Dname`, source);
          const context = { ...fam, ...(parent.subFamily !== undefined ? { subFamily: parent.subFamily } : {}) };
          const props = inherit(parent.props, device);
          devices.push(toDevice(props, { ...context, name: dname }, source));
          for (const variant of children(device).filter((e) => tag(e) === 'variant')) {
            const vname = variant.getAttribute('Dvariant')?.trim();
            if (!vname) throw new FormatError(`${source}: a <variant> of ${dname} has no Dvariant`, source);
            devices.push(toDevice(inherit(props, variant), { ...context, name: vname, variantOf: dname }, source));
          }
        }
      }
    }
  }
  const version = versions.at(-1);
  return { vendor, name, ...(version ? { version } : {}), devices, source };
}

// ---------------------------------------------------------------------------
// Finding and resolving a device

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Names from `candidates` close to `name` (case ignored), best first: those
 * containing it or contained in it, then those within an edit distance of a
 * third of its length (at least 2).
 *
 * @example
 * ```ts
 * closeMatches('AE722F80F55D5', names); // ['AE722F80F55D5AS', 'AE722F80F55D5LS']
 * ```
 */
export function closeMatches(name: string, candidates: readonly string[], max = 5): string[] {
  const want = name.toUpperCase();
  const limit = Math.max(2, Math.floor(want.length / 3));
  return candidates
    .map((c) => {
      const up = c.toUpperCase();
      const contained = up.includes(want) || want.includes(up);
      return { c, score: contained ? Math.abs(up.length - want.length) - 1000 : editDistance(want, up) };
    })
    .filter((m) => m.score < 0 || m.score <= limit)
    .sort((a, b) => a.score - b.score || (a.c < b.c ? -1 : 1))
    .slice(0, max)
    .map((m) => m.c);
}

/**
 * The device called `name` (exact, else ignoring case).
 *
 * @throws {@link UsageError} naming close matches when there is none.
 */
export function findPdscDevice(pack: PackDescription, name: string): PdscDevice {
  const found = pack.devices.find((d) => d.name === name) ?? pack.devices.find((d) => d.name.toUpperCase() === name.toUpperCase());
  if (found) return found;
  const close = closeMatches(name, pack.devices.map((d) => d.name));
  throw new UsageError(
    `${pack.source}: no device ${JSON.stringify(name)} in ${pack.vendor}.${pack.name}` +
      (close.length > 0 ? `; close matches: ${close.join(', ')}` : ` (it describes ${pack.devices.length} devices)`),
    { hint: 'Device names are the Dname and Dvariant entries of the PDSC; `listDevices` lists them.' },
  );
}

/**
 * Devices whose name matches `pattern`: `*` and `?` wildcards if it has any,
 * else a substring; case ignored. No pattern: all.
 */
export function matchPdscDevices(devices: readonly PdscDevice[], pattern?: string): PdscDevice[] {
  if (!pattern) return [...devices];
  const up = pattern.toUpperCase();
  if (!/[*?]/.test(up)) return devices.filter((d) => d.name.toUpperCase().includes(up));
  const re = new RegExp(`^${up.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return devices.filter((d) => re.test(d.name.toUpperCase()));
}

/** One flash algorithm of a resolved device, with the RAM it runs in. */
export interface ResolvedAlgorithm {
  /** File inside the pack. */
  readonly path: string;
  /** The flash range it programs. */
  readonly start: number;
  /** Size of that range, bytes. */
  readonly size: number;
  /** RAM for the algorithm, its stack and buffers. */
  readonly ram: {
    /** First address. */
    readonly start: number;
    /** Size, bytes. */
    readonly size: number;
  };
  /** `'algorithm'`: `RAMstart`/`RAMsize` of the `<algorithm>`; `'memory'`: the device's RAM region (they were absent). */
  readonly ramFrom: 'algorithm' | 'memory';
  /** The PDSC marks it as the default for its range. */
  readonly default: boolean;
}

/** An algorithm of the device that rspflash will not use, and why. */
export interface SkippedAlgorithm {
  /** File inside the pack. */
  readonly path: string;
  /** Why it is not used, e.g. `style IAR (only Keil and CMSIS flash algorithms run here)`. */
  readonly reason: string;
}

/** A device resolved for one processor (the pack-level {@link PackDevice} adds its algorithm files). */
export interface ResolvedDevice {
  /** The device name (`Dname`, or `Dvariant`). */
  readonly name: string;
  /** `Dvendor` of the family. */
  readonly vendor?: string;
  /** `Dfamily`. */
  readonly family: string;
  /** `DsubFamily`, when the device is in one. */
  readonly subFamily?: string;
  /** The processor chosen (option `core`), or the only one. */
  readonly processor: PdscProcessor;
  /** All processors of the device. */
  readonly processors: readonly PdscProcessor[];
  /** The memories this processor sees. */
  readonly memories: readonly PdscMemory[];
  /** The algorithms this processor uses, by start address, defaults first. */
  readonly algorithms: readonly ResolvedAlgorithm[];
  /** Algorithms of this processor that rspflash cannot run, and why. */
  readonly skipped: readonly SkippedAlgorithm[];
}

/** Options of {@link resolveDevice}: which processor of the device. */
export interface ResolveDeviceOptions {
  /** `Pname` of the processor, needed when the device has several (the CLI's `--core`). */
  readonly core?: string;
}

/** Algorithm styles rspflash runs: Keil's FLM (the default style) and CMSIS's own. */
const RUNNABLE_STYLES = new Set(['keil', 'cmsis']);

/**
 * Picks device `name` and one of its processors, and gives each of that
 * processor's flash algorithms the RAM to run in.
 *
 * @throws {@link UsageError} if the device is unknown (naming close matches),
 * has several processors and no `core` was given, or has no processor `core`
 * (naming those it has).
 * @throws {@link FormatError} if an algorithm has no RAM and the device
 * declares no writable, executable memory to fall back on.
 */
export function resolvePdscDevice(pack: PackDescription, name: string, options: ResolveDeviceOptions = {}): ResolvedDevice {
  const device = findPdscDevice(pack, name);
  const processor = chooseProcessor(pack, device, options.core);
  const pname = processor.pname;
  const mine = <T extends { readonly pname?: string }>(x: T) => x.pname === undefined || pname === undefined || x.pname === pname;
  const memories = device.memories.filter(mine);
  const skipped: SkippedAlgorithm[] = [];
  const algorithms: ResolvedAlgorithm[] = [];
  for (const a of device.algorithms.filter(mine)) {
    if (a.style !== undefined && !RUNNABLE_STYLES.has(a.style.toLowerCase())) {
      skipped.push({ path: a.path, reason: `style ${a.style} (only Keil and CMSIS flash algorithms run here)` });
      continue;
    }
    let ram: { start: number; size: number };
    let ramFrom: ResolvedAlgorithm['ramFrom'] = 'algorithm';
    if (a.ramStart !== undefined && a.ramSize !== undefined) {
      ram = { start: a.ramStart, size: a.ramSize };
    } else {
      const fallback = defaultRam(memories);
      if (!fallback) {
        throw new FormatError(
          `${pack.source}: algorithm ${a.path} of ${device.name} has no RAMstart/RAMsize and the device declares no writable, executable memory`,
          pack.source,
        );
      }
      ram = { start: fallback.start, size: fallback.size };
      ramFrom = 'memory';
    }
    algorithms.push({ path: a.path, start: a.start, size: a.size, ram, ramFrom, default: a.default });
  }
  algorithms.sort((x, y) => x.start - y.start || Number(y.default) - Number(x.default));
  return {
    name: device.name,
    ...(device.vendor ? { vendor: device.vendor } : {}),
    family: device.family,
    ...(device.subFamily !== undefined ? { subFamily: device.subFamily } : {}),
    processor,
    processors: device.processors,
    memories,
    algorithms,
    skipped,
  };
}

function chooseProcessor(pack: PackDescription, device: PdscDevice, core: string | undefined): PdscProcessor {
  const names = device.processors.map((p) => p.pname).filter((n): n is string => n !== undefined);
  const list = names.join(', ');
  if (core === undefined) {
    if (device.processors.length > 1) {
      throw new UsageError(`${device.name} has ${device.processors.length} processors (${list}): choose one with \`core\``, {
        hint: `Give one of ${list} as \`core\`.`,
      });
    }
    return device.processors[0] ?? {};
  }
  const found = device.processors.find((p) => p.pname === core) ?? device.processors.find((p) => p.pname?.toUpperCase() === core.toUpperCase());
  if (found) return found;
  throw new UsageError(
    names.length > 0
      ? `${device.name} has no processor ${JSON.stringify(core)}; it has ${list}`
      : `${device.name} has a single processor without a name in ${pack.source}: leave out \`core\``,
  );
}

/** The RAM an algorithm without RAMstart/RAMsize runs in: the first default rwx memory, else the first rwx one. */
function defaultRam(memories: readonly PdscMemory[]): PdscMemory | undefined {
  const rwx = memories.filter((m) => m.access.includes('w') && m.access.includes('x'));
  return rwx.find((m) => m.default) ?? rwx[0];
}

/** A one-line description of an algorithm's range and RAM, e.g. for `rspflash info`. */
export function describeResolvedAlgorithm(a: ResolvedAlgorithm): string {
  const ram = `RAM ${hex32(a.ram.start)}+${hex32(a.ram.size)}${a.ramFrom === 'memory' ? ' (device RAM)' : ''}`;
  return `${hex32(a.start)}..${hex32(a.start + a.size)} ${a.path}${a.default ? ' (default)' : ''}, ${ram}`;
}
