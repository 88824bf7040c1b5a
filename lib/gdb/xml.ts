/**
 * Safe parsing of the XML documents a GDB server sends (target description,
 * memory map), shared by `target-xml.ts` and `memory-map.ts`.
 *
 * The documents come from a program on the network, so:
 * - no entity expansion: xmldom never expands entities declared in a DTD, an
 *   undeclared entity reference is an error, and a DOCTYPE with an internal
 *   subset (`<!DOCTYPE x [ … ]>`, the only place entities can be declared) is
 *   refused outright — no GDB server needs one;
 * - a DOCTYPE with only an external id (`<!DOCTYPE target SYSTEM
 *   "gdb-target.dtd">`, which every GDB document carries) is accepted and the
 *   DTD is never fetched;
 * - every parser complaint, warnings included, becomes a
 *   {@link ReplyFormatError} instead of reaching the console;
 * - documents larger than {@link MAX_XML_LENGTH} are refused before parsing.
 * @module
 */
import { DOMParser } from '@xmldom/xmldom';
import type { Element } from '@xmldom/xmldom';
import { ReplyFormatError } from '../errors.js';

/** Namespace of `<xi:include>`. */
export const XINCLUDE_NS = 'http://www.w3.org/2001/XInclude';

/** Largest XML document accepted, characters. Real target descriptions are a few KiB. */
export const MAX_XML_LENGTH = 4 << 20;

function excerpt(xml: string, max = 200): string {
  return xml.length <= max ? xml : `${xml.slice(0, max)}…`;
}

/**
 * Parses an XML document and returns its root element.
 *
 * The `xi` prefix is predeclared as the XInclude namespace: QEMU writes
 * `<xi:include>` without declaring `xmlns:xi`, and GDB accepts that.
 *
 * @param what - names the document in error messages, e.g. `target.xml`
 * @throws {@link ReplyFormatError} for malformed XML, a DOCTYPE with an
 * internal subset, an undeclared entity, or a document that is too large.
 */
export function parseXml(xml: string, what: string): Element {
  if (xml.length > MAX_XML_LENGTH) {
    throw new ReplyFormatError(`${what} is ${xml.length} characters long, more than the ${MAX_XML_LENGTH} accepted`, excerpt(xml));
  }
  const problems: string[] = [];
  const parser = new DOMParser({
    locator: true,
    xmlns: { xi: XINCLUDE_NS },
    onError: (level, message) => {
      // Throwing here makes xmldom stop and throw its ParseError, caught below.
      problems.push(`${level}: ${message}`);
      throw new Error(message);
    },
  });
  let root: Element | null;
  try {
    const doc = parser.parseFromString(xml, 'text/xml');
    if (doc.doctype && doc.doctype.internalSubset) {
      throw new ReplyFormatError(`${what} declares a DOCTYPE with an internal subset (entities), which is refused`, excerpt(xml));
    }
    root = doc.documentElement;
  } catch (err) {
    if (err instanceof ReplyFormatError) throw err;
    const detail = problems[0] ?? (err instanceof Error ? err.message : String(err));
    throw new ReplyFormatError(`${what} is not well-formed XML (${detail})`, excerpt(xml), { cause: err });
  }
  if (!root) throw new ReplyFormatError(`${what} has no root element`, excerpt(xml));
  return root;
}

const ELEMENT_NODE = 1;

/** The element children of `el`, in document order. */
export function childElements(el: Element): Element[] {
  const out: Element[] = [];
  for (let node = el.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) out.push(node as Element);
  }
  return out;
}

/** Whether `el` is an `<xi:include>` (any prefix bound to the XInclude namespace). */
export function isXInclude(el: Element): boolean {
  return el.localName === 'include' && el.namespaceURI === XINCLUDE_NS;
}

/** Element name without prefix or namespace: GDB's documents use no namespace, and a default one changes nothing. */
export function nameOf(el: Element): string {
  return el.localName ?? el.tagName;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const HEX = /^0[xX][0-9a-fA-F]+$/;
const OCTAL = /^0[0-7]+$/;

/**
 * Parses an unsigned number attribute the way GDB does (`strtoulst` with base
 * 0): `0x…` hex, a leading `0` octal, otherwise decimal. Surrounding
 * whitespace is ignored.
 *
 * @param what - the attribute, for the error message, e.g. `start of <memory>`
 * @param document - the document, quoted in the error
 * @throws {@link ReplyFormatError} if it is not such a number or exceeds
 * `Number.MAX_SAFE_INTEGER`.
 */
export function parseXmlUnsigned(text: string, what: string, document: string): number {
  const t = text.trim();
  let value: number;
  if (HEX.test(t)) value = parseInt(t.slice(2), 16);
  else if (OCTAL.test(t)) value = parseInt(t.slice(1), 8);
  else if (DECIMAL.test(t)) value = parseInt(t, 10);
  else throw new ReplyFormatError(`${what} ${JSON.stringify(text)} is not a number`, excerpt(document));
  if (!Number.isSafeInteger(value)) {
    throw new ReplyFormatError(`${what} ${JSON.stringify(text)} is too large`, excerpt(document));
  }
  return value;
}

/** The document text abbreviated for an error's `reply` field. */
export function xmlExcerpt(xml: string): string {
  return excerpt(xml);
}
