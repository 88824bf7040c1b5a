/**
 * Property tests: whatever happens to a valid file — cut short, bytes or
 * header words overwritten, text mangled — the readers either return a
 * consistent result or throw a FormatError. Never a RangeError from a
 * DataView, a TypeError from a missing field, or a hang.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, ImageOverlapError } from '../../lib/errors.js';
import type { FlashAlgorithm } from '../../lib/algo/algorithm.js';
import { parseElf } from '../../lib/elf.js';
import { parseFlm } from '../../lib/algo/flm.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { parseProbeRsYaml } from '../../lib/algo/probe-rs.js';
import { parseSeggerLoader } from '../../lib/algo/segger.js';
import { elfToImage } from '../../lib/image/elf.js';
import { alifLikeFlm, smallFlm } from './synthetic.js';

const BUILD = fileURLToPath(new URL('../fixtures/build/', import.meta.url));
const fixture = (name: string) => (existsSync(BUILD + name) ? new Uint8Array(readFileSync(BUILD + name)) : undefined);

/** Valid inputs to mutate: synthetic shapes, plus the compiled fixtures when present. */
const SEEDS: { name: string; bytes: Uint8Array }[] = [
  { name: 'alif-like.flm', bytes: alifLikeFlm().bytes },
  { name: 'small.flm', bytes: smallFlm().bytes },
  ...(['nor-sim.flm', 'nor-sim-segger.elf', 'boot-an547.elf'] as const).flatMap((name) => {
    const bytes = fixture(name);
    return bytes ? [{ name, bytes }] : [];
  }),
];

/** Runs `fn`; passes if it returns or throws one of `allowed`, fails on anything else or on a slow run. */
function onlyThrows(fn: () => unknown, allowed: readonly (abstract new (...args: never[]) => Error)[] = [FormatError]): unknown {
  const started = performance.now();
  try {
    return fn();
  } catch (err) {
    if (!allowed.some((type) => err instanceof type)) throw err;
    return undefined;
  } finally {
    const elapsed = performance.now() - started;
    if (elapsed > 2000) throw new Error(`took ${elapsed.toFixed(0)} ms: too slow, possibly a hang`);
  }
}

/** A successful parse must be self-consistent. */
function checkAlgorithm(algo: unknown): void {
  if (algo === undefined) return;
  const a = algo as FlashAlgorithm;
  for (const [name, offset] of Object.entries(a.functions)) {
    expect(offset, name).toBeLessThan(a.blob.length);
    expect(offset & 1, name).toBe(0);
  }
  for (const r of a.relocations) expect(r + 4).toBeLessThanOrEqual(a.blob.length);
  expect(a.geometry.sectors.length).toBeGreaterThan(0);
}

const seed = fc.constantFrom(...SEEDS);

/** A mutation of a file: truncation, a few random bytes, or interesting 32-bit words at random aligned offsets. */
const mutated = seed.chain(({ name, bytes }) =>
  fc.oneof(
    fc.nat({ max: bytes.length - 1 }).map((n) => ({ name: `${name} cut at ${n}`, bytes: bytes.slice(0, n) })),
    fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => {
      const out = bytes.slice();
      for (const [at, value] of edits) out[at] = value;
      return { name: `${name} with ${edits.length} bytes changed`, bytes: out };
    }),
    fc
      .array(
        fc.tuple(
          // Bias towards the headers and tables at the start and end of the file.
          fc.oneof(fc.nat({ max: Math.min(bytes.length, 256) - 4 }), fc.nat({ max: bytes.length - 4 })),
          fc.constantFrom(0, 1, 0xffffffff, 0x7fffffff, 0x80000000, bytes.length, bytes.length - 1, 0xffff, 0x10000),
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((edits) => {
        const out = bytes.slice();
        const view = new DataView(out.buffer);
        for (const [at, value] of edits) view.setUint32(at & ~3, value >>> 0, true);
        return { name: `${name} with ${edits.length} words changed`, bytes: out };
      }),
  ),
);

describe('corrupted ELF and FLM files only ever throw FormatError', () => {
  it('parseElf', () => {
    fc.assert(fc.property(mutated, ({ name, bytes }) => void onlyThrows(() => parseElf(bytes, name))), { numRuns: 1500 });
  });

  it('parseFlm', () => {
    fc.assert(fc.property(mutated, ({ name, bytes }) => checkAlgorithm(onlyThrows(() => parseFlm(bytes, name)))), { numRuns: 1500 });
  });

  it('parseSeggerLoader', () => {
    fc.assert(fc.property(mutated, ({ name, bytes }) => checkAlgorithm(onlyThrows(() => parseSeggerLoader(bytes, name)))), { numRuns: 800 });
  });

  it('loadAlgorithm', () => {
    fc.assert(fc.property(mutated, ({ name, bytes }) => checkAlgorithm(onlyThrows(() => loadAlgorithm(bytes, name)))), { numRuns: 800 });
  });

  it('elfToImage (overlapping segments may also be reported as ImageOverlapError)', () => {
    fc.assert(fc.property(mutated, ({ name, bytes }) => void onlyThrows(() => elfToImage(bytes, name), [FormatError, ImageOverlapError])), { numRuns: 800 });
  });

  it('arbitrary bytes, with or without an ELF magic in front', () => {
    const magic = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 1, 1);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (tail, withMagic) => {
        const bytes = withMagic ? Uint8Array.from([...magic, ...tail]) : tail;
        checkAlgorithm(onlyThrows(() => loadAlgorithm(bytes, 'random.bin')));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('mangled probe-rs YAML only ever throws FormatError', () => {
  const yamlSeed =
    fixture('nor-sim.yaml') === undefined
      ? undefined
      : new TextDecoder().decode(fixture('nor-sim.yaml'));
  const text =
    yamlSeed ??
    `flash_algorithms:
- name: a
  instructions: AQIDBAUGBwgJCgsMDQ4PEA==
  pc_program_page: 0x1
  pc_erase_sector: 0x5
  flash_properties:
    address_range: { start: 0x0, end: 0x1000 }
    page_size: 0x100
    erased_byte_value: 0xff
    program_page_timeout: 100
    erase_sector_timeout: 100
    sectors: [{ size: 0x1000, address: 0x0 }]
`;

  it('parseProbeRsYaml after random edits', () => {
    const edit = fc.tuple(
      fc.nat({ max: text.length - 1 }),
      fc.nat({ max: 8 }),
      fc.oneof(fc.constantFrom('', ' ', '\n', ':', '- ', '!', '!Ram ', '&a ', '*a', '0x', '"', '[', '{', '}', '#', '-1', '1e9', 'null', '~'), fc.string({ maxLength: 6 })),
    );
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let mangled = text;
        for (const [at, remove, insert] of edits) mangled = mangled.slice(0, at) + insert + mangled.slice(at + remove);
        checkAlgorithm(onlyThrows(() => parseProbeRsYaml(mangled, 'mangled.yaml')));
      }),
      { numRuns: 1500 },
    );
  });
});
