/**
 * The project file rspflash.json (lib/project.ts): what it accepts, how
 * values are normalised, and that every refusal names the file and the JSON
 * path of the offending value.
 */
import { describe, expect, it } from 'vitest';
import { FormatError, parseProject } from '../lib/index.js';

const parse = (value: unknown, dir?: string) => parseProject(JSON.stringify(value), { source: 'rspflash.json', ...(dir ? { dir } : {}) });

function refusal(value: unknown): string {
  try {
    parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(FormatError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('parseProject', () => {
  it('reads what a J-Flash project holds: server, device, algorithms with RAM, images with bases, choices, after', () => {
    // Taken as they are (the journal folder is already absolute): only relative paths, addresses and sizes are normalised.
    const choices = {
      compare: 'hash',
      verify: 'algo',
      skipUnchanged: false,
      preserve: true,
      chipErase: 'never',
      reset: true,
      after: 'reset',
      timeoutMs: 20000,
      journalDir: '/var/tmp/journal',
    };
    const project = parse(
      {
        $schema: 'https://example.invalid/rspflash.schema.json',
        gdb: 'localhost:2331',
        pack: 'packs/AlifSemiconductor.Ensemble.1.3.0.pack',
        device: 'AE722F80F55D5LS',
        core: 'M55_HP',
        algorithms: [{ file: 'Ensemble_IS25WX256.FLM', ram: '0x0:256K', memoryMapped: false }, 'Ensemble.FLM'],
        ram: { address: '0x20000000', length: 65536 },
        images: ['build/app.hex', { file: 'build/ext_flash.bin', base: '0xC0000000', skip: '0x200' }],
        ...choices,
      },
      '/work/proj',
    );
    expect(project).toEqual({
      source: 'rspflash.json',
      gdb: 'localhost:2331',
      pack: '/work/proj/packs/AlifSemiconductor.Ensemble.1.3.0.pack',
      device: 'AE722F80F55D5LS',
      core: 'M55_HP',
      algorithms: [{ file: '/work/proj/Ensemble_IS25WX256.FLM', ram: { address: 0, length: 0x40000 }, memoryMapped: false }, { file: '/work/proj/Ensemble.FLM' }],
      ram: { address: 0x20000000, length: 0x10000 },
      images: [{ file: '/work/proj/build/app.hex' }, { file: '/work/proj/build/ext_flash.bin', base: 0xc0000000, skip: 0x200 }],
      ...choices,
    });
  });

  it('takes a single algorithm and a single image under their singular keys', () => {
    expect(parse({ algorithm: 'a.FLM', image: { file: 'x.bin', base: 4096 } })).toMatchObject({ algorithms: [{ file: 'a.FLM' }], images: [{ file: 'x.bin', base: 4096 }] });
  });

  it('an empty object is a valid project: flags give the rest', () => {
    expect(parse({})).toEqual({ source: 'rspflash.json' });
  });

  it('refuses unknown keys with their path, suggesting the closest known one', () => {
    expect(refusal({ imagez: [] })).toMatch(/^rspflash.json: \$\.imagez: unknown key \(did you mean "images"\?\)/);
    expect(refusal({ images: [{ file: 'a.bin', adress: 1 }] })).toMatch(/\$\.images\[0\]\.adress: unknown key; known here: file, base, format, skip/);
    expect(refusal({ Device: 'x' })).toMatch(/\$\.Device: unknown key \(did you mean "device"\?\)/);
  });

  it('refuses wrong types and values, naming the path and what was expected', () => {
    expect(refusal({ images: [{ file: 'a.bin', base: true }] })).toMatch(/\$\.images\[0\]\.base: expected an address or size .*got true/);
    expect(refusal({ images: 'a.hex' })).toMatch(/\$\.images: expected an array, got "a.hex"/);
    expect(refusal({ verify: 'crc32' })).toMatch(/\$\.verify: expected one of "auto", "algo", "hash", "read", "none", got "crc32"/);
    expect(refusal({ after: 1 })).toMatch(/\$\.after: expected one of "halt", "run", "reset", got 1/);
    expect(refusal({ timeoutMs: 0 })).toMatch(/\$\.timeoutMs: expected whole milliseconds/);
    expect(refusal({ ram: '0x20000000' })).toMatch(/\$\.ram: expected "ADDR:SIZE"/);
    expect(refusal({ ram: '0xFFFFF000:64K' })).toMatch(/\$\.ram: 65536 bytes from 0xfffff000 wrap past the end/);
    expect(refusal({ algorithms: [{ ram: '0:4K' }] })).toMatch(/\$\.algorithms\[0\]\.file: missing/);
    expect(refusal({ images: [{ file: 'a.bin', base: '0x100000000' }] })).toMatch(/does not fit in 32 bits/);
    expect(refusal({ algorithm: 'a.FLM', algorithms: ['b.FLM'] })).toMatch(/either algorithm or algorithms/);
    expect(refusal([])).toMatch(/^rspflash.json: \$: expected an object, got an array/);
  });

  it('refuses text that is not JSON, naming the file', () => {
    expect(() => parseProject('{ "gdb": ', { source: 'p/rspflash.json' })).toThrow(/^p\/rspflash.json: not valid JSON/);
  });
});
