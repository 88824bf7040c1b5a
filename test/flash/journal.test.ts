/**
 * The recovery journal must only ever restore what a failed job of this very
 * flash left at risk: never another board's bytes, never bytes the user erased
 * since, and it must not outlive a run that erased nothing.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { withFlasher, journalKey } from '../../lib/session.js';
import { Journal, journalPath } from '../../lib/flash/journal.js';
import { createImage } from '../../lib/image/image.js';
import { BOARDS } from '../../lib/boards.js';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';

const FLASH = 0xc0000000;
const board = BOARDS['qemu-an547']!;
const algorithm = loadAlgorithm(readFileSync(FIXTURES.norSim), { source: 'nor-sim.flm' });
let qemu: QemuInstance;
let dir: string;

beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
  dir = mkdtempSync(join(tmpdir(), 'rspflash-journal-test-'));
});
afterAll(async () => {
  await qemu?.stop();
});

const session = <T>(key: string, job: Parameters<typeof withFlasher<T>>[1]) =>
  withFlasher({ gdb: qemu.connectOptions, algorithm, board, journal: { dir, key } }, job);
const fill = (length: number, value: number) => new Uint8Array(length).fill(value);
const image = (address: number, data: Uint8Array) => createImage([{ address, data, source: 'test' }]);

describe('Journal (no target)', () => {
  it('forgets the bytes inside an erased range, keeps the rest, and removes itself when nothing is left', async () => {
    const j = new Journal(journalPath(dir, 'forget'), 'forget');
    await j.add([{ address: 0x1000, data: fill(0x100, 1) }, { address: 0x3000, data: fill(0x100, 2) }]);
    await j.forget({ address: 0x1080, length: 0x2000 });
    expect((await j.read())!.kept.map((k) => [k.address, k.data.length])).toEqual([
      [0x1000, 0x80],
      [0x3080, 0x80],
    ]);
    await j.forget({ address: 0, length: 0x10000 });
    expect(existsSync(j.path)).toBe(false);
  });

  it('names one server one way: 127.0.0.1, localhost and a bare port give the same key', () => {
    expect(journalKey('127.0.0.1:2331', algorithm)).toBe(journalKey('localhost:2331', algorithm));
    expect(journalKey('2331', algorithm)).toBe(journalKey('localhost', algorithm));
    expect(journalKey('otherhost:2331', algorithm)).not.toBe(journalKey('localhost:2331', algorithm));
  });
});

describe('restoring a journal', () => {
  it('refuses a journal whose bytes would overwrite other content (another board), and writes nothing', async () => {
    const at = FLASH + 0x1c00000;
    // This board's flash: 0x33 everywhere in the sector. A journal from "another board" says 0x5a at +0x100.
    await session('foreign', (f) => f.program(image(at, fill(4096, 0x33)), { preserve: false }));
    const j = new Journal(journalPath(dir, 'foreign'), 'foreign');
    await j.add([{ address: at + 0x100, data: fill(0x100, 0x5a) }]);
    const err = await session('foreign', (f) => f.program(image(at + 0x2000, fill(16, 0x11)))).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RSPFLASH_JOURNAL' });
    expect((err as Error).message).toMatch(/does not fit this flash: 1 page\(s\).*nothing was written/);
    expect((await gdbReadMemory(qemu.connectOptions, at, 4096)).every((b) => b === 0x33)).toBe(true);
    // The user decides: force restores it.
    const report = await session('foreign', (f) => f.recover({ force: true }));
    expect(report?.bytesRecovered).toBe(0x100);
    const back = await gdbReadMemory(qemu.connectOptions, at, 4096);
    expect(back.subarray(0x100, 0x200).every((b) => b === 0x5a)).toBe(true);
    expect(back.subarray(0, 0x100).every((b) => b === 0x33)).toBe(true);
    expect(existsSync(j.path)).toBe(false);
  });

  it('restores onto the erased or already-restored pages a failed job leaves', async () => {
    const at = FLASH + 0x1c10000;
    await session('fits', (f) => f.erase({ address: at, length: 4096 }));
    const j = new Journal(journalPath(dir, 'fits'), 'fits');
    await j.add([{ address: at + 0x100, data: fill(0x200, 0x6b) }]);
    const report = await session('fits', (f) => f.recover());
    expect(report?.bytesRecovered).toBe(0x200);
    expect((await gdbReadMemory(qemu.connectOptions, at + 0x100, 0x200)).every((b) => b === 0x6b)).toBe(true);
  });

  it('drops what the journal kept inside a range the user erases since', async () => {
    const at = FLASH + 0x1c20000;
    const j = new Journal(journalPath(dir, 'erased'), 'erased');
    await j.add([{ address: at + 0x100, data: fill(0x100, 0x77) }]);
    await session('erased', (f) => f.erase({ address: at, length: 4096 }));
    expect(existsSync(j.path)).toBe(false);
    // The next program does not bring the old bytes back into the erased sector.
    await session('erased', (f) => f.program(image(at + 0x800, fill(16, 0x12))));
    expect((await gdbReadMemory(qemu.connectOptions, at + 0x100, 0x100)).every((b) => b === 0xff)).toBe(true);
  });

  it('leaves no journal behind when a run fails before it erased anything', async () => {
    const at = FLASH + 0x1c30000;
    await session('cancel', (f) => f.program(image(at, fill(8192, 0x44)), { preserve: false }));
    const controller = new AbortController();
    const err = await session('cancel', (f) =>
      f.program(image(at + 0x100, fill(0x100, 0x55)), {
        signal: controller.signal,
        // Cancel once the bytes to keep have been read (and journalled), before the first write run.
        onProgress: (e) => e.type === 'phase-end' && e.phase === 'read' && controller.abort(),
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RSPFLASH_ABORTED' });
    expect((err as { ranges?: unknown[] }).ranges ?? []).toEqual([]);
    expect(existsSync(journalPath(dir, 'cancel'))).toBe(false);
    expect((await gdbReadMemory(qemu.connectOptions, at, 8192)).every((b) => b === 0x44)).toBe(true);
  });
});
