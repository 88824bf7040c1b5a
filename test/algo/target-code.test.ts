/**
 * The on-target helpers (lib/algo/target-code.ts) are generated from
 * target-src/ by scripts/build-target-code.sh and committed: a fresh build must
 * give the same file byte for byte, and the blob must hold nothing but the
 * routines TARGET_ENTRY names.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TARGET_CODE, TARGET_ENTRY } from '../../lib/algo/target-code.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMMITTED = join(ROOT, 'lib/algo/target-code.ts');
// Honest test: without the toolchain it fails loudly (npm test installs it via scripts/bootstrap.sh).
for (const tool of ['arm-none-eabi-gcc', 'arm-none-eabi-nm', 'arm-none-eabi-objcopy', 'arm-none-eabi-readelf']) {
  if (spawnSync(tool, ['--version']).status !== 0) {
    throw new Error(`${tool} not found: npm test installs it via scripts/bootstrap.sh (apt-get install gcc-arm-none-eabi)`);
  }
}

let dir: string;
let built: string;
let elf: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rspflash-target-code-'));
  built = join(dir, 'target-code.ts');
  elf = join(dir, 'blob.elf');
  const run = spawnSync('bash', [join(ROOT, 'scripts/build-target-code.sh'), built, elf], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`scripts/build-target-code.sh failed (${run.status}):\n${run.stderr}`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `nm -S` symbols of the built blob: name → [address, size]. */
function symbols(): Map<string, { address: number; size: number; type: string }> {
  const out = spawnSync('arm-none-eabi-nm', ['-S', '-n', elf], { encoding: 'utf8' }).stdout;
  const map = new Map<string, { address: number; size: number; type: string }>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{8}) (?:([0-9a-f]{8}) )?(\w) (\S+)$/.exec(line.trim());
    if (m) map.set(m[4]!, { address: parseInt(m[1]!, 16), size: m[2] ? parseInt(m[2], 16) : 0, type: m[3]! });
  }
  return map;
}

const camel = (sym: string) => sym.replace(/^rsp_/, '').replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

describe('lib/algo/target-code.ts', () => {
  it('is byte-identical to a fresh build of target-src/ (run scripts/build-target-code.sh after editing target-src)', () => {
    const fresh = readFileSync(built);
    const committed = readFileSync(COMMITTED);
    expect(fresh.equals(committed), 'lib/algo/target-code.ts differs from a fresh build: rerun bash scripts/build-target-code.sh and commit').toBe(true);
  });

  it('names every function of the blob in TARGET_ENTRY, at its address, Thumb bit clear', () => {
    const functions = [...symbols()].filter(([, s]) => s.type === 'T' || s.type === 't');
    expect(functions.length).toBeGreaterThan(0);
    const fromElf = Object.fromEntries(functions.map(([name, s]) => [camel(name), s.address]));
    expect(fromElf).toEqual({ ...TARGET_ENTRY });
    for (const offset of Object.values(TARGET_ENTRY)) expect(offset % 2).toBe(0);
  });

  it('has no bytes beyond the routines TARGET_ENTRY describes (only alignment padding between them)', () => {
    const routines = [...symbols()].filter(([, s]) => s.type === 'T').map(([name, s]) => ({ name, ...s })).sort((a, b) => a.address - b.address);
    for (const r of routines) expect(r.size, `${r.name} has no size (missing .size in assembly?)`).toBeGreaterThan(0);
    let covered = 0;
    for (const r of routines) {
      expect(r.address - covered, `gap of ${r.address - covered} bytes before ${r.name}`).toBeLessThan(4);
      // Padding is zero (or a Thumb nop) and never code of its own.
      for (let i = covered; i < r.address; i++) expect([0x00, 0x46, 0xc0]).toContain(TARGET_CODE[i]);
      covered = r.address + r.size;
    }
    expect(TARGET_CODE.length - covered, 'bytes after the last routine').toBeLessThan(4);
    expect(TARGET_CODE.length % 4, 'the blob is a whole number of words').toBe(0);
  });

  it('needs no relocation (loaded at any address) and has no data sections', () => {
    const sections = spawnSync('arm-none-eabi-readelf', ['-S', '-W', elf], { encoding: 'utf8' }).stdout;
    const alloc = sections.split('\n').filter((l) => /\]\s+\.\S+\s+\S+\s+[0-9a-f]{8}\s+[0-9a-f]+\s+[0-9a-f]+\s+\d+\s+\S*A/.test(l));
    expect(alloc.map((l) => /\]\s+(\.\S+)/.exec(l)![1])).toEqual(['.text']);
    expect(spawnSync('arm-none-eabi-readelf', ['-r', elf], { encoding: 'utf8' }).stdout).not.toMatch(/Relocation section/);
  });

  it('starts with the call shim, and holds no breakpoint instruction (the trap lives on a page of its own)', () => {
    expect(TARGET_ENTRY.call).toBe(0);
    const halfwords = new Uint16Array(TARGET_CODE.buffer.slice(TARGET_CODE.byteOffset, TARGET_CODE.byteOffset + (TARGET_CODE.length & ~1)));
    expect([...halfwords].some((h) => (h & 0xff00) === 0xbe00 && h !== 0xbe00 - 0x100)).toBe(false);
  });
});
