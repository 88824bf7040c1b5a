/**
 * Parser of the target description a GDB server sends as `target.xml`
 * (`qXfer:features:read`): which registers exist and which number each has
 * in `p`/`P`/`g` and stop replies. Register numbers differ between servers,
 * so registers are looked up by name ({@link registerByName}).
 *
 * Rules from the GDB manual, "Target Descriptions" → "Target Description
 * Format":
 * - `<target>` holds `<architecture>`, `<osabi>`, `<compatible>` and
 *   `<feature name="…">` elements; features hold `<reg>` and type definitions;
 * - `<reg name bitsize [regnum] [type] [group]>`: without `regnum` a register
 *   takes the previous register's number + 1 — the previous register in the
 *   whole description, across features and included documents, in document
 *   order — and the first register defaults to 0; `type` defaults to `int`;
 * - `<xi:include href="…"/>` is replaced by the root element of the named
 *   document (fetched as another annex), recursively, as GDB's XInclude pass
 *   does.
 * @module
 */
import type { Element } from '@xmldom/xmldom';
import { ReplyFormatError } from '../errors.js';
import { childElements, isXInclude, nameOf, parseXml, parseXmlUnsigned, xmlExcerpt } from './xml.js';

/** One register of the target, as the description declares it. */
export interface RegisterInfo {
  /** Name as the server spells it (`xpsr`, or `XPSR` on some J-Link versions). */
  name: string;
  /** Number for `p`/`P`, position in `g`, key in stop replies. */
  regnum: number;
  /** Width in bits. */
  bitsize: number;
  /** Type name (`int`, `code_ptr`, `ieee_double`, a type of the feature…); `int` when not given. */
  type: string;
  /** Register group (`general`, `float`, `vector`, …) when given. */
  group?: string;
  /** Name of the feature that declares it, e.g. `org.gnu.gdb.arm.m-profile`. */
  feature: string;
}

/** A parsed target description. */
export interface TargetDescription {
  /** Contents of `<architecture>`, e.g. `arm` or `armv8.1-m.main`. */
  architecture?: string;
  /** Feature names in document order. */
  features: string[];
  /** Registers in document order. */
  registers: RegisterInfo[];
}

/**
 * Fetches an included annex by its `href` (for a GDB server:
 * `qXfer:features:read:<href>:…`) and returns its text.
 */
export type IncludeResolver = (href: string) => string | Promise<string>;

/** Options of {@link parseTargetXml}. */
export interface TargetXmlOptions {
  /** Annex name of the document itself, for cycle detection. Default `target.xml`. */
  name?: string;
  /** Longest chain of nested includes. Default {@link MAX_INCLUDE_DEPTH}. */
  maxIncludeDepth?: number;
  /** Most includes resolved in total (a wide fan-out is as costly as a deep one). Default {@link MAX_INCLUDES}. */
  maxIncludes?: number;
}

/** Default cap on nested `xi:include` depth. Real descriptions nest one level. */
export const MAX_INCLUDE_DEPTH = 8;
/** Default cap on the number of `xi:include`s in one description. QEMU's has about ten. */
export const MAX_INCLUDES = 256;

interface Walk {
  readonly resolve: IncludeResolver;
  readonly maxDepth: number;
  readonly maxIncludes: number;
  /** One fetch per annex, however often it is included. */
  readonly fetched: Map<string, Promise<string>>;
  includes: number;
  nextRegnum: number;
  architecture: string | undefined;
  readonly features: string[];
  readonly registers: RegisterInfo[];
}

/** An element and the include chain (annex names, outermost first) it came from. */
interface Located {
  el: Element;
  chain: readonly string[];
  /** Text of the document it is in, for error messages. */
  source: string;
}

function bad(message: string, source: string): ReplyFormatError {
  return new ReplyFormatError(message, xmlExcerpt(source));
}

/** Replaces an `<xi:include>` by the root of the document it names (which may itself be an include). */
async function include(walk: Walk, node: Located): Promise<Located> {
  let current = node;
  while (isXInclude(current.el)) {
    const where = current.chain[current.chain.length - 1]!;
    const href = current.el.getAttribute('href');
    if (!href) throw bad(`<xi:include> without href in ${where}`, current.source);
    if (current.chain.includes(href)) {
      throw bad(`${where} includes ${href}, which includes itself (${[...current.chain, href].join(' → ')})`, current.source);
    }
    if (current.chain.length > walk.maxDepth) {
      throw bad(`Includes nest deeper than ${walk.maxDepth} levels (${[...current.chain, href].join(' → ')})`, current.source);
    }
    if (++walk.includes > walk.maxIncludes) {
      throw bad(`The target description includes more than ${walk.maxIncludes} documents`, current.source);
    }
    let pending = walk.fetched.get(href);
    if (!pending) {
      pending = Promise.resolve(walk.resolve(href));
      walk.fetched.set(href, pending);
    }
    const text = await pending;
    if (typeof text !== 'string') throw bad(`Fetching ${href} gave no text`, current.source);
    current = { el: parseXml(text, href), chain: [...current.chain, href], source: text };
  }
  return current;
}

/** The element children of `node` with includes replaced, in document order. */
async function children(walk: Walk, node: Located): Promise<Located[]> {
  const out: Located[] = [];
  for (const el of childElements(node.el)) {
    out.push(await include(walk, { el, chain: node.chain, source: node.source }));
  }
  return out;
}

function where(node: Located): string {
  return node.chain[node.chain.length - 1]!;
}

function addRegister(walk: Walk, node: Located, feature: string): void {
  const { el, source } = node;
  const name = el.getAttribute('name');
  if (!name) throw bad(`<reg> without a name in feature ${feature} (${where(node)})`, source);
  const bitsizeText = el.getAttribute('bitsize');
  if (bitsizeText === null) throw bad(`Register ${name} has no bitsize (${where(node)})`, source);
  const bitsize = parseXmlUnsigned(bitsizeText, `bitsize of register ${name}`, source);
  if (bitsize === 0) throw bad(`Register ${name} has bitsize 0 (${where(node)})`, source);
  const regnumText = el.getAttribute('regnum');
  const regnum = regnumText === null ? walk.nextRegnum : parseXmlUnsigned(regnumText, `regnum of register ${name}`, source);
  walk.nextRegnum = regnum + 1;
  const reg: RegisterInfo = { name, regnum, bitsize, type: el.getAttribute('type') || 'int', feature };
  const group = el.getAttribute('group');
  if (group) reg.group = group;
  walk.registers.push(reg);
}

async function walkFeature(walk: Walk, node: Located): Promise<void> {
  const name = node.el.getAttribute('name');
  if (!name) throw bad(`<feature> without a name (${where(node)})`, node.source);
  walk.features.push(name);
  for (const child of await children(walk, node)) {
    const tag = nameOf(child.el);
    if (tag === 'reg') addRegister(walk, child, name);
    else if (tag === 'feature') throw bad(`Feature ${name} contains another <feature> (${where(child)})`, child.source);
    // Type definitions (TYPE_ELEMENTS) and unknown elements are skipped: only registers matter here.
  }
}

async function walkTarget(walk: Walk, node: Located): Promise<void> {
  for (const child of await children(walk, node)) {
    switch (nameOf(child.el)) {
      case 'architecture':
        walk.architecture ??= (child.el.textContent ?? '').trim() || undefined;
        break;
      case 'feature':
        await walkFeature(walk, child);
        break;
      case 'reg':
        throw bad(`<reg> outside a <feature> (${where(child)})`, child.source);
      case 'target':
        throw bad(`<target> nested inside <target> (${where(child)})`, child.source);
      default:
        // osabi, compatible and future elements: not needed to find registers.
        break;
    }
  }
}

/**
 * Parses a target description, fetching included documents through
 * `resolveInclude`. The root may be `<target>` or, leniently, a lone
 * `<feature>`.
 *
 * @example
 * ```ts
 * const desc = await parseTargetXml(await client.readXfer('features', 'target.xml'),
 *   (href) => client.readXfer('features', href));
 * const xpsr = registerByName(desc, 'xpsr'); // regnum 25 on QEMU and J-Link
 * ```
 * @throws {@link ReplyFormatError} for malformed or unsafe XML (see
 * `xml.ts`), a `<reg>` without name or bitsize, an include cycle, includes
 * nested deeper than `maxIncludeDepth` or more than `maxIncludes` of them.
 * Errors thrown by `resolveInclude` propagate unchanged.
 */
export async function parseTargetXml(
  xml: string,
  resolveInclude: IncludeResolver,
  options: TargetXmlOptions = {},
): Promise<TargetDescription> {
  const name = options.name ?? 'target.xml';
  const walk: Walk = {
    resolve: resolveInclude,
    maxDepth: options.maxIncludeDepth ?? MAX_INCLUDE_DEPTH,
    maxIncludes: options.maxIncludes ?? MAX_INCLUDES,
    fetched: new Map(),
    includes: 0,
    nextRegnum: 0,
    architecture: undefined,
    features: [],
    registers: [],
  };
  const root = await include(walk, { el: parseXml(xml, name), chain: [name], source: xml });
  const tag = nameOf(root.el);
  if (tag === 'target') await walkTarget(walk, root);
  else if (tag === 'feature') await walkFeature(walk, root);
  else throw bad(`${name} has root element <${root.el.tagName}>, expected <target>`, xml);
  const desc: TargetDescription = { features: walk.features, registers: walk.registers };
  if (walk.architecture !== undefined) desc.architecture = walk.architecture;
  return desc;
}

/**
 * Finds a register by name: an exact match first, else ignoring case (some
 * J-Link versions spell names in upper case). Returns `undefined` when the
 * description has no such register.
 *
 * @example
 * ```ts
 * registerByName(desc, 'xpsr')?.regnum; // 25
 * ```
 */
export function registerByName(desc: TargetDescription, name: string): RegisterInfo | undefined {
  const exact = desc.registers.find((r) => r.name === name);
  if (exact) return exact;
  const lower = name.toLowerCase();
  return desc.registers.find((r) => r.name.toLowerCase() === lower);
}
