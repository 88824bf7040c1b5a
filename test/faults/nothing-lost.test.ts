/**
 * "No fault at any moment loses a byte the plan promised to keep" (issue 15,
 * failure 1): an image that covers its first and last sectors only partly, over
 * old content, programmed through a fault at a random packet (a link drop in
 * either direction, a stalled reply, an `E01`), one sector per target run so a
 * fault can land between any two runs or inside one. After each faulted run the
 * flash is read back independently (gdb-multiarch) and:
 *
 * - every sector the progress events claimed written holds the image and the kept bytes;
 * - every sector that holds neither its old nor its new content is named in the
 *   error's `ranges` (the flash left at risk);
 * - kept bytes that are gone from the flash are in the recovery journal;
 * - a clean re-run restores them from the journal first, and the flash ends as
 *   image + kept bytes, with the journal removed.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { Flasher } from '../../lib/flash/flasher.js';
import type { FlashEvent } from '../../lib/flash/progress.js';
import { Journal, journalPath } from '../../lib/flash/journal.js';
import { RspflashError } from '../../lib/errors.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';
import { FLASH, Outcomes, RAM, SECTOR, flashRun, image, norSim, randomData, startBed, type Bed } from './harness.js';
import { seededRandom, type FaultAction, type FaultRule } from './fault-proxy.js';

const REGION = FLASH + 0x140_0000;
const SECTORS = 8;
const SIZE = SECTORS * SECTOR;
/** The image leaves 0x800 bytes at each end of the region to keep. */
const HEAD = 0x800;
const TAIL = 0x800;
const OLD = randomData(SIZE, 7);
const NEW = randomData(SIZE - HEAD - TAIL, 8);
const IMG = image(REGION + HEAD, NEW);
/** What the region must hold after a successful program: the image, the old bytes around it. */
const EXPECTED = (() => {
  const out = new Uint8Array(OLD);
  out.set(NEW, HEAD);
  return out;
})();
const SEEDS = 32;

const journalDir = mkdtempSync(join(tmpdir(), 'rspflash-nothing-lost-'));
/** One sector per run: a fault can fall between any two runs. */
const FLASHER = { bufferSize: SECTOR, journal: { dir: journalDir, key: 'nothing-lost' } };

let bed: Bed;
let packetsOfCleanRun = 0;
/** How the faulted runs ended, for the campaign's figures (and to prove the at-risk path was taken). */
const outcomes = { succeeded: 0, failedClean: 0, atRisk: 0, keptGone: 0, recovered: 0 };

beforeAll(async () => {
  bed = await startBed();
  await resetRegion();
  const clean = await flashRun(bed, IMG, { flasher: FLASHER });
  expect(clean.error).toBeUndefined();
  packetsOfCleanRun = bed.proxy.stats.toServer.packets;
  expect(await readRegion()).toEqual(EXPECTED);
});
const rows = new Outcomes();
afterAll(async () => {
  rows.write();
  await bed?.stop();
});

/** The region back to its old content, straight through QEMU (no proxy, no journal). */
async function resetRegion(): Promise<void> {
  const gdb = await GdbClient.connect(bed.qemu.connectOptions, { timeoutMs: 5000 });
  try {
    const flasher = await Flasher.create(gdb, norSim(), { ram: RAM, memoryMapped: true, journal: false });
    try {
      await flasher.program(image(REGION, OLD), { preserve: false, skipUnchanged: false });
    } finally {
      await flasher.close();
    }
  } finally {
    await gdb.close();
  }
}

async function readRegion(): Promise<Uint8Array> {
  return gdbReadMemory(bed.qemu.connectOptions, REGION, SIZE);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** Sectors the `write` phase claimed done (they complete in address order). */
function claimedSectors(events: readonly FlashEvent[]): number {
  let done = 0;
  for (const e of events) if (e.type === 'progress' && e.phase === 'write') done = e.done;
  return done;
}

function faultFor(seed: number): FaultRule {
  const rng = seededRandom(seed);
  const nth = 1 + Math.floor(rng() * packetsOfCleanRun);
  const kinds: [FaultRule['direction'], FaultAction][] = [
    ['toServer', { kind: 'drop' }],
    ['toClient', { kind: 'drop' }],
    ['toClient', { kind: 'stall' }],
    ['toClient', { kind: 'error' }],
  ];
  const [direction, action] = kinds[seed % kinds.length]!;
  return { direction, nth, action };
}

describe('a fault at any moment of a program run loses no byte the plan promised to keep', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}: claims match the flash, the journal holds what is at risk, the next run restores it`, async () => {
      await resetRegion();
      const rule = faultFor(seed);
      const faulted = await flashRun(bed, IMG, { flasher: FLASHER, faults: { rules: [rule] } });
      const what = `seed ${seed} (${rule.action.kind} ${rule.direction} at packet ${rule.nth} of ${packetsOfCleanRun}; ${faulted.error ? (faulted.error as Error).message : 'no error'})`;
      const back = await readRegion();

      // Claims: the sectors reported written hold the image and the kept bytes.
      const claimed = claimedSectors(faulted.events);
      for (let i = 0; i < claimed; i++) {
        expect(same(back.subarray(i * SECTOR, (i + 1) * SECTOR), EXPECTED.subarray(i * SECTOR, (i + 1) * SECTOR)), `${what}: sector ${i} claimed written`).toBe(true);
      }
      if (faulted.error === undefined) {
        outcomes.succeeded++;
        expect(same(back, EXPECTED), `${what}: success reported`).toBe(true);
      } else {
        expect(faulted.error, what).toBeInstanceOf(RspflashError);
        const atRisk = (faulted.error as RspflashError).ranges ?? [];
        if (atRisk.length > 0) outcomes.atRisk++;
        else outcomes.failedClean++;
        for (let i = 0; i < SECTORS; i++) {
          const got = back.subarray(i * SECTOR, (i + 1) * SECTOR);
          const neither = !same(got, OLD.subarray(i * SECTOR, (i + 1) * SECTOR)) && !same(got, EXPECTED.subarray(i * SECTOR, (i + 1) * SECTOR));
          if (neither) {
            const address = REGION + i * SECTOR;
            expect(atRisk.some((r) => r.address <= address && address + SECTOR <= r.address + r.length), `${what}: sector ${i} was changed but is not named at risk`).toBe(true);
          }
        }
      }
      const changed = Array.from({ length: SECTORS }, (_, i) => i).filter((i) => {
        const got = back.subarray(i * SECTOR, (i + 1) * SECTOR);
        return !same(got, OLD.subarray(i * SECTOR, (i + 1) * SECTOR)) && !same(got, EXPECTED.subarray(i * SECTOR, (i + 1) * SECTOR));
      }).length;
      // Kept bytes gone from the flash must be in the journal.
      const keptGone = !same(back.subarray(0, HEAD), OLD.subarray(0, HEAD)) || !same(back.subarray(SIZE - TAIL), OLD.subarray(SIZE - TAIL));
      const journal = new Journal(journalPath(journalDir, 'nothing-lost'), 'nothing-lost');
      const content = await journal.read();
      if (keptGone) {
        outcomes.keptGone++;
        expect(content, `${what}: kept bytes are gone and no journal holds them`).toBeDefined();
        expect((faulted.error as Error | undefined)?.message ?? '', `${what}: the error names the journal`).toContain(journal.path);
      }

      // The next run restores from the journal first, then completes the job.
      const again = await flashRun(bed, IMG, { flasher: FLASHER });
      expect(again.error, `${what}: the re-run failed`).toBeUndefined();
      if (content !== undefined) {
        expect(again.events.some((e) => e.type === 'recover'), `${what}: the re-run did not recover`).toBe(true);
        expect(again.report!.bytesRecovered).toBeGreaterThan(0);
        outcomes.recovered++;
      }
      expect(same(await readRegion(), EXPECTED), `${what}: the flash after the re-run is not image + kept bytes`).toBe(true);
      expect(existsSync(journal.path), `${what}: the journal outlived a successful run`).toBe(false);
      const error = faulted.error as RspflashError | undefined;
      rows.add({
        group: 'Nothing lost (seeded faults across a program run)',
        fault: `seed ${seed}: ${rule.action.kind} ${rule.direction === 'toServer' ? 'to the server' : 'to rspflash'} at packet ${rule.nth} of ${packetsOfCleanRun}`,
        outcome: error
          ? `typed error, ${error.ranges?.length ?? 0} range(s) at risk named${keptGone ? ', kept bytes gone from flash and in the journal' : ''}; re-run ${content ? 'restored the journal and ' : ''}completed`
          : 'no error (the fault hit nothing that mattered); flash = image + kept bytes',
        code: error?.code ?? '—',
        timeMs: Math.round(faulted.elapsedMs),
        content: `${changed} of ${SECTORS} sectors neither old nor new after the fault; image + kept bytes after the re-run`,
      });
    });
  }

  it('took the at-risk path in some runs, and left no journal behind after all of it', () => {
    console.log(`nothing-lost campaign over ${SEEDS} seeds: ${JSON.stringify(outcomes)}`);
    expect(outcomes.atRisk + outcomes.keptGone, 'no fault ever left flash at risk: the campaign tests nothing').toBeGreaterThan(0);
    expect(readdirSync(journalDir).filter((f) => f.endsWith('.json'))).toEqual([]);
  });
});
