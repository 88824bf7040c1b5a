/**
 * Faults on the wire between rspflash and QEMU, injected by the fault proxy.
 *
 * For every fault rspflash either recovers (and the flash holds the image), or
 * ends with a typed error naming the step and the flash range, within a bounded
 * time, leaving no socket or timer behind. Either way it never claims what is
 * not in flash: gdb-multiarch reads the sectors back after every run and the
 * progress events must agree; and running the same job again completes it,
 * skipping exactly the sectors that already hold the image.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Image } from '../../lib/image/image.js';
import { RspflashError } from '../../lib/errors.js';
import { gdbExec } from '../helpers/gdb-multiarch.js';
import type { FaultProxyOptions, FaultKind } from './fault-proxy.js';
import {
  FAIL_WITHIN_MS,
  FLASH,
  Outcomes,
  SECTOR,
  TIMEOUT_MS,
  activeResources,
  claimedProgrammed,
  expectNoLeaks,
  flashRun,
  image,
  nthIn,
  phaseMap,
  randomData,
  resetDirect,
  sectorsHolding,
  startBed,
  typed,
  type Bed,
  type PhaseMap,
  type RunResult,
} from './harness.js';

/** Sectors per test image (128 KiB: two 64 KiB transfer buffers, so a fault can hit the second). */
const SECTORS = 32;
/**
 * A 16 KiB transfer buffer: the 128 KiB image takes 8 write runs (4 sectors erased and programmed in each),
 * so a fault can be aimed at the 2nd, 3rd or 4th run.
 */
const RUNS = { flasher: { bufferSize: 16 * 1024 } };
/** A step name and a flash range, as Flasher errors carry them. */
const NAMES_FLASH_RANGE = /(Comparing|Reading|Erasing|Programming|Verifying|Initialising|Finishing)[^:]* 0xc[0-9a-f]{7}\.\.0xc[0-9a-f]{7} failed: /;

const outcomes = new Outcomes();
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
let bed: Bed;
let map: PhaseMap;
let region = 0;

/** A random image in a flash region no other test uses (so nothing in it matches by chance). */
function freshImage(): Image {
  region++;
  return image(FLASH + region * 0x40000, randomData(SECTORS * SECTOR, 1000 + region));
}

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  bed = await startBed();
  await resetDirect(bed);
  map = await phaseMap(bed, freshImage(), RUNS);
});
afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  outcomes.write();
  await bed?.stop();
});
afterEach(() => {
  expect(rejections, 'unhandled promise rejections').toEqual([]);
});

function describeContent(holding: number, total: number): string {
  return holding === total ? 'image complete' : holding === 0 ? 'no sector holds the image' : `${holding} of ${total} sectors hold the image`;
}

/**
 * The checks every faulted run must pass: nothing leaked; an error is typed;
 * the progress events claim no more than gdb-multiarch finds in flash; a
 * clean run of the same job then completes it, skipping exactly the sectors
 * found holding the image.
 */
async function checkAfterFault(img: Image, run: RunResult, what: string): Promise<{ holding: number; total: number }> {
  const { holding, total } = await sectorsHolding(bed, img);
  const claimed = Math.floor(claimedProgrammed(run.events) / SECTOR);
  for (let i = 0; i < claimed; i++) {
    expect(holding, `${what}: progress claimed sector ${i} (${(FLASH + i * SECTOR).toString(16)}…) programmed, but it does not hold the image`).toContain(i);
  }
  if (run.report) {
    expect(holding.length, `${what}: reported success, but only ${holding.length} of ${total} sectors hold the image`).toBe(total);
    return { holding: holding.length, total };
  }
  typed(run.error);
  const again = await flashRun(bed, img, RUNS);
  expect(again.error, `${what}: the second run failed`).toBeUndefined();
  expect(again.report!.sectorsSkipped, `${what}: the second run should skip the sectors already holding the image`).toBe(holding.length);
  const after = await sectorsHolding(bed, img);
  expect(after.holding.length, `${what}: after the second run`).toBe(total);
  return { holding: holding.length, total };
}

interface Recoverable {
  fault: string;
  faults: () => FaultProxyOptions;
  /**
   * The damage must be noticed: a `-` from the client (`client`: a damaged reply) or from the
   * server (`server`: a damaged request), or the client sending the request again.
   */
  resend?: 'client' | 'server';
}

const recoverable: Recoverable[] = [
  {
    fault: 'a memory-read reply with a bad checksum',
    faults: () => ({ rules: [{ direction: 'toClient', match: /^[0-9a-f]{64,}$/, nth: 3, action: { kind: 'corrupt' } }] }),
    resend: 'client',
  },
  {
    fault: 'a stop reply with a bad checksum',
    faults: () => ({ rules: [{ direction: 'toClient', match: /^T05/, nth: 3, action: { kind: 'corrupt' } }] }),
    resend: 'client',
  },
  {
    fault: 'a target.xml chunk with a bad checksum (while connecting)',
    faults: () => ({ rules: [{ direction: 'toClient', match: /^[lm]<\?xml/, action: { kind: 'corrupt' } }] }),
    resend: 'client',
  },
  {
    // QEMU re-sends only its LAST reply on '-': with writes in flight that is the OK of a later
    // write, not the damaged one, so a '-' cannot recover it (found here; the client now takes the
    // damaged reply and sends the write again).
    fault: "an 'OK' to a pipelined memory write with a bad checksum",
    faults: () => ({ rules: [{ direction: 'toClient', replyTo: /^M/, nth: nthIn(map, 'write', /^M/, 5), action: { kind: 'corrupt' } }] }),
    resend: 'client',
  },
  {
    fault: "a request ('c') with a bad checksum: QEMU answers '-'",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^c$/, nth: 2, action: { kind: 'corrupt' } }] }),
    resend: 'server',
  },
  {
    fault: "a register write ('G') with a bad checksum",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^G/, nth: 2, action: { kind: 'corrupt' } }] }),
    resend: 'server',
  },
  {
    // Found here: it failed with RSPFLASH_PROTOCOL "rejected a packet ('-') while 4 were in flight"
    // (QEMU stays in ack mode, yet memory writes were pipelined 4 deep).
    fault: 'a pipelined memory write with a bad checksum',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^M/, nth: nthIn(map, 'write', /^M/, 5), action: { kind: 'corrupt' } }] }),
    resend: 'server',
  },
  {
    fault: "3 console ('O') packets before every stop reply",
    faults: () => ({ rules: [{ direction: 'toClient', match: /^T05/, times: Infinity, action: { kind: 'console', count: 3 } }] }),
  },
  {
    fault: "a console ('O') packet before every reply",
    faults: () => ({ rules: [{ direction: 'toClient', match: /./, times: Infinity, action: { kind: 'console', count: 1 } }] }),
  },
  {
    fault: 'garbage bytes before every reply',
    faults: () => ({ rules: [{ direction: 'toClient', match: /./, times: Infinity, action: { kind: 'garbage', length: 24 } }] }),
  },
  {
    fault: 'every reply delayed 2 ms',
    faults: () => ({ rules: [{ direction: 'toClient', match: /./, times: Infinity, action: { kind: 'delay', ms: 2 } }] }),
  },
  {
    fault: `one stop reply delayed ${TIMEOUT_MS - 500} ms (under the request timeout)`,
    faults: () => ({ rules: [{ direction: 'toClient', match: /^T05/, nth: 4, action: { kind: 'delay', ms: TIMEOUT_MS - 500 } }] }),
  },
];

describe('faults rspflash recovers from', () => {
  for (const c of recoverable) {
    it(`completes the job despite ${c.fault}`, async () => {
      const img = freshImage();
      await resetDirect(bed); // the fault's aim is a request count: start as the reference run did
      const baseline = activeResources();
      const run = await flashRun(bed, img, { ...RUNS, faults: c.faults() });
      const fired = bed.proxy.stats.fired.length;
      const nacks = c.resend === 'client' ? bed.proxy.stats.toServer.nacks : bed.proxy.stats.toClient.nacks;
      const resent = nacks + (run.wire?.retransmits ?? 0);
      await expectNoLeaks(baseline, c.fault);
      const content = await sectorsHolding(bed, img);
      const err = run.error as RspflashError | undefined;
      outcomes.add({
        group: 'Recoverable wire faults',
        fault: c.fault,
        outcome: err
          ? 'failed (should recover)'
          : `recovered${c.resend ? ` (${nacks} '-' from the ${c.resend === 'client' ? 'client' : 'server'}, ${run.wire?.retransmits ?? 0} requests sent again)` : ''}`,
        code: err?.code ?? '—',
        timeMs: Math.round(run.elapsedMs),
        content: describeContent(content.holding.length, content.total),
      });
      expect(fired, 'the fault was injected').toBeGreaterThan(0);
      expect(err?.message, `${c.fault}: the run should have recovered`).toBeUndefined();
      expect(content.holding.length, 'sectors holding the image').toBe(content.total);
      if (c.resend) expect(resent, "a '-' or a retransmission made up for the damaged packet").toBeGreaterThan(0);
    });
  }
});

interface Failing {
  fault: string;
  faults: () => FaultProxyOptions;
  /** Acceptable error codes. */
  codes: string[];
  /** What the message must say (default: a step and a flash range). */
  names?: RegExp;
  withinMs?: number;
  /**
   * The fault may land after the run it aims at has already finished (a reset between two runs is
   * harmless: the code stays in RAM). Then the run must succeed for real: every sector holds the image.
   */
  mayComplete?: boolean;
}

const failing: Failing[] = [
  {
    fault: 'E01 to the first memory write (loading the algorithm)',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^M/, action: { kind: 'error' } }] }),
    codes: ['RSPFLASH_SERVER_ERROR'],
    names: /Loading the flash algorithm into RAM 0x21000000\.\.0x2103ffff failed: Writing memory at 0x2100[0-9a-f]{4} failed: the server answered 'E01'/,
  },
  {
    fault: 'E01 to a memory read while comparing (CRC results)',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^m/, nth: nthIn(map, 'compare', /^m/, 1), action: { kind: 'error' } }] }),
    codes: ['RSPFLASH_SERVER_ERROR'],
  },
  {
    fault: "E01 to a register write ('G') in the first write run (erase + program)",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^G/, nth: nthIn(map, 'write', /^G/, 1), action: { kind: 'error' } }] }),
    codes: ['RSPFLASH_SERVER_ERROR'],
  },
  {
    fault: 'E01 to a memory write of the second program buffer',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^M/, nth: nthIn(map, 'write', /^M/, 40), action: { kind: 'error' } }] }),
    codes: ['RSPFLASH_SERVER_ERROR'],
    names: /Erasing and programming 0xc[0-9a-f]{7}\.\.0xc[0-9a-f]{7} failed: Writing memory at 0x21[0-9a-f]{6} failed: the server answered 'E01'/,
  },
  {
    fault: "E01 instead of a stop reply to 'c' while programming",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^c$/, nth: nthIn(map, 'write', /^c$/, 3), action: { kind: 'error' } }] }),
    codes: ['RSPFLASH_SERVER_ERROR'],
    names: /Resuming the core \('c'\) failed: the server answered 'E01'/,
  },
  {
    fault: "E01 to a register read ('g') after a program run",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^g$/, nth: nthIn(map, 'write', /^g$/, 3), action: { kind: 'error' } }] }),
    codes: ['RSPFLASH_SERVER_ERROR'],
  },
  {
    fault: 'connection dropped while loading the algorithm',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^M/, nth: 2, action: { kind: 'drop' } }] }),
    codes: ['RSPFLASH_CONNECTION_CLOSED'],
    names: /Loading the flash algorithm into RAM 0x21000000\.\.0x2103ffff failed: /,
  },
  {
    fault: 'connection dropped while comparing',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^m/, nth: nthIn(map, 'compare', /^m/, 1), action: { kind: 'drop' } }] }),
    codes: ['RSPFLASH_CONNECTION_CLOSED'],
  },
  {
    fault: "connection dropped at the second write run's 'c'",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^c$/, nth: nthIn(map, 'write', /^c$/, 2), action: { kind: 'drop' } }] }),
    codes: ['RSPFLASH_CONNECTION_CLOSED'],
  },
  {
    fault: "connection dropped just after a program run's 'c' (the core runs on, nobody connected)",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^c$/, nth: nthIn(map, 'write', /^c$/, 4), action: { kind: 'drop', after: true } }] }),
    codes: ['RSPFLASH_CONNECTION_CLOSED'],
  },
  {
    fault: 'connection cut in the middle of a memory-write packet (program buffer)',
    faults: () => ({ rules: [{ direction: 'toServer', afterBytes: map.bytesAt.write! + 40_000, action: { kind: 'drop' } }] }),
    codes: ['RSPFLASH_CONNECTION_CLOSED'],
  },
  {
    fault: "the board reset (QEMU 'monitor system_reset') while a program run executes",
    faults: () => ({
      rules: [
        {
          direction: 'toServer',
          match: /^c$/,
          nth: nthIn(map, 'write', /^c$/, 4),
          action: { kind: 'inject', payload: 'qRcmd,' + Buffer.from('system_reset').toString('hex'), afterMs: 0 },
        },
      ],
    }),
    // The core stops at the reset vector instead of the return trap. Runs take a few ms now, so the
    // reset sometimes arrives after the run: then the job must have completed, verified.
    codes: ['RSPFLASH_ALGO_FAULT', 'RSPFLASH_ALGO_TIMEOUT'],
    // The reset may hit the last program run or the UnInit right after it: either step is named.
    names: /^((Erasing and p|P)rogramming 0xc[0-9a-f]{7}\.\.0xc[0-9a-f]{7}|Finishing with the algorithm \(UnInit\)[^:]*) failed: .*(stopped at PC 0x000000c0|did not return|faulted)/,
    mayComplete: true,
  },
  {
    fault: 'no reply to a memory read while comparing',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^m/, nth: nthIn(map, 'compare', /^m/, 1), action: { kind: 'stall' } }] }),
    codes: ['RSPFLASH_RSP_TIMEOUT'],
    withinMs: TIMEOUT_MS + 1500,
  },
  {
    fault: 'no reply to a memory write while programming',
    faults: () => ({ rules: [{ direction: 'toServer', match: /^M/, nth: nthIn(map, 'write', /^M/, 3), action: { kind: 'stall' } }] }),
    codes: ['RSPFLASH_RSP_TIMEOUT'],
    withinMs: TIMEOUT_MS + 1500,
  },
  {
    fault: "no stop reply to a compare run's 'c' (and none to the interrupt)",
    faults: () => ({ rules: [{ direction: 'toServer', match: /^c$/, nth: nthIn(map, 'compare', /^c$/, 1), action: { kind: 'stall' } }] }),
    codes: ['RSPFLASH_RSP_TIMEOUT'],
    // The run's own timeout (5 s for a CRC of 128 KiB), then 3 s for the core to answer the interrupt.
    withinMs: 5000 + 3000 + 2000,
  },
];

describe('faults that end the run with a typed error', () => {
  for (const c of failing) {
    it(`fails cleanly on ${c.fault}, claims nothing that is not in flash, and a re-run completes the job`, async () => {
      const img = freshImage();
      // Every faulted run starts from the state the reference run had: the fault's aim is a request count.
      await resetDirect(bed);
      const baseline = activeResources();
      const run = await flashRun(bed, img, { ...RUNS, faults: c.faults() });
      const fired = bed.proxy.stats.fired.length;
      await expectNoLeaks(baseline, c.fault);
      const err = run.error as RspflashError | undefined;
      const state = await checkAfterFault(img, run, c.fault);
      outcomes.add({
        group: 'Wire faults that end the run',
        fault: c.fault,
        outcome: err ? `typed error; re-run completed (skipped ${state.holding} sectors)` : 'no error (fault had no effect)',
        code: err?.code ?? '—',
        timeMs: Math.round(run.elapsedMs),
        content: describeContent(state.holding, state.total),
      });
      expect(fired, 'the fault was injected').toBeGreaterThan(0);
      if (c.mayComplete && err === undefined) {
        expect(state.holding, `${c.fault}: reported success, so every sector must hold the image`).toBe(state.total);
        return;
      }
      const e = typed(err);
      expect(c.codes, `${c.fault}: unexpected ${e.code}: ${e.message}`).toContain(e.code);
      expect(e.message).toMatch(c.names ?? NAMES_FLASH_RANGE);
    });
  }

  it('fails to connect with RSPFLASH_RSP_TIMEOUT when the server never answers', async () => {
    const baseline = activeResources();
    const run = await flashRun(bed, freshImage(), { ...RUNS, faults: { rules: [{ direction: 'toServer', match: /^qSupported/, action: { kind: 'stall' } }] } });
    await expectNoLeaks(baseline, 'a silent server');
    const e = typed(run.error);
    outcomes.add({
      group: 'Wire faults that end the run',
      fault: 'no reply at all (qSupported unanswered)',
      outcome: 'typed error while connecting',
      code: e.code,
      timeMs: Math.round(run.elapsedMs),
      content: 'untouched',
    });
    expect(e.code).toBe('RSPFLASH_RSP_TIMEOUT');
    expect(e.message).toMatch(/did not answer 'qSupported/);
    expect(run.memoryWrites).toBe(0);
  });
});

describe('faults at random, replayable from a seed', () => {
  const SEEDS = 10;
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}: console output, garbage and delays never change the outcome`, async () => {
      const img = freshImage();
      const run = await flashRun(bed, img, { ...RUNS,
        faults: { random: { seed, rate: 0.1, kinds: ['console', 'garbage', 'delay'], directions: ['toClient'], maxDelayMs: 5 } },
      });
      const fired = bed.proxy.stats.fired.length;
      expect(run.error, `seed ${seed} (${fired} faults)`).toBeUndefined();
      const { holding, total } = await sectorsHolding(bed, img);
      expect(holding.length).toBe(total);
      if (seed === 1) {
        outcomes.add({
          group: 'Random faults (seeded)',
          fault: `O packets, garbage, 1–5 ms delays on 10% of replies (seeds 1–${SEEDS}, ~${fired} faults each)`,
          outcome: 'recovered',
          code: '—',
          timeMs: Math.round(run.elapsedMs),
          content: 'image complete',
        });
      }
    });
  }

  const tally = new Map<string, number>();
  /** Sectors holding the image after each failed run (before the re-run). */
  const heldAfterFailure: number[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}: any fault (drop, E01, bad checksum, delay, O, garbage) — never a false success, and a re-run completes`, async () => {
      const img = freshImage();
      const kinds: Exclude<FaultKind, 'rewrite' | 'stall'>[] = ['drop', 'error', 'corrupt', 'delay', 'console', 'garbage'];
      const baseline = activeResources();
      const run = await flashRun(bed, img, { ...RUNS,
        faults: { random: { seed: 100 + seed, rate: 0.01, kinds, directions: ['toClient', 'toServer'], after: 40, maxDelayMs: 20 } },
      });
      await expectNoLeaks(baseline, `seed ${seed}`);
      const state = await checkAfterFault(img, run, `seed ${seed}`);
      const key = run.report ? 'completed' : (run.error as RspflashError).code;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      if (!run.report) heldAfterFailure.push(state.holding);
      if (seed === SEEDS) {
        outcomes.add({
          group: 'Random faults (seeded)',
          fault: `any of drop, E01, bad checksum, delay, O, garbage on 1% of packets, both directions (seeds 101–${100 + SEEDS})`,
          outcome: `${[...tally].map(([k, n]) => `${n}× ${k}`).join(', ')}; every failed run resumed by a re-run`,
          code: [...tally.keys()].filter((k) => k !== 'completed').join(', ') || '—',
          timeMs: undefined,
          content: `successes: image complete; after failures ${heldAfterFailure.length ? `${Math.min(...heldAfterFailure)}–${Math.max(...heldAfterFailure)} of ${state.total}` : 'none'} sectors held it, all claimed ones among them; image complete after each re-run`,
        });
      }
    });
  }
});

describe('resuming after the connection was lost while the core ran', () => {
  it('connects to a target that is running (QEMU then sends an unasked stop reply first) and completes the job', async () => {
    const img = freshImage();
    // Let the core run a spin loop with nobody connected, as after a cable pulled during a call.
    const rtSpin = 286; // boot-an547.json: rt_spin
    await gdbExec(bed.qemu.connectOptions, [`set $pc = ${rtSpin}`, 'detach']);
    const run = await flashRun(bed, img, RUNS);
    const content = await sectorsHolding(bed, img);
    const e = run.error as RspflashError | undefined;
    outcomes.add({
      group: 'Resuming',
      fault: 'target running when rspflash connects (QEMU answers the first request with an unasked T02)',
      outcome: e ? 'failed' : 'completed',
      code: e?.code ?? '—',
      timeMs: Math.round(run.elapsedMs),
      content: describeContent(content.holding.length, content.total),
    });
    expect(e?.message).toBeUndefined();
    expect(content.holding.length).toBe(content.total);
  });
});
