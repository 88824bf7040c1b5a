/**
 * A hostile (or badly broken) GDB server: oversized packets, endless console
 * output, a qXfer that never ends, replies that never come, garbage, a
 * run-length bomb. rspflash's caps and timeouts hold: each ends with a typed
 * error within a bounded time, memory stays bounded, nothing leaks.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { RspflashError } from '../../lib/errors.js';
import { frame } from '../../lib/rsp/packet.js';
import { Outcomes, activeResources, expectNoLeaks, typed } from './harness.js';
import { basics, startHostileServer, type HostileServer, type Script } from './hostile-server.js';

const TIMEOUT_MS = 1000;
/** Largest growth of heap + array buffers allowed during one scenario (caps: 1 MiB packets, 4 MiB qXfer). */
const MEMORY_BOUND = 64 << 20;

const outcomes = new Outcomes();
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onRejection);
});
afterAll(() => {
  process.off('unhandledRejection', onRejection);
  outcomes.write();
});
afterEach(() => {
  expect(rejections, 'unhandled promise rejections').toEqual([]);
});

const latin1 = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const CONSOLE = frame(latin1('O' + Buffer.from('the server will not stop talking\n').toString('hex')));

interface Scenario {
  name: string;
  script: Script;
  /** What the client does once connected (default: nothing beyond connecting). */
  then?: (gdb: GdbClient) => Promise<unknown>;
  code: string;
  message: RegExp;
  withinMs: number;
}

const scenarios: Scenario[] = [
  {
    name: 'a reply that never ends (a packet beyond the 1 MiB cap)',
    script: (req, side) => {
      if (!req.startsWith('qSupported')) return;
      side.raw(latin1('$'));
      const chunk = new Uint8Array(64 << 10).fill(0x41);
      side.stream(() => chunk);
    },
    code: 'RSPFLASH_PROTOCOL',
    message: /longer than 1048576/,
    withinMs: 1000,
  },
  {
    name: 'a run-length bomb (1 MiB of "*" pairs, ~118 MB expanded)',
    script: (req, side) => {
      if (!req.startsWith('qSupported')) return;
      const payload = new Uint8Array(1 << 20 - 0);
      payload[0] = 0x30;
      for (let i = 1; i + 1 < payload.length; i += 2) {
        payload[i] = 0x2a;
        payload[i + 1] = 0xfe;
      }
      if (payload[payload.length - 1] === 0) payload[payload.length - 1] = 0x30;
      side.raw(frame(payload));
    },
    code: 'RSPFLASH_PROTOCOL',
    message: /run-length|expan/i,
    withinMs: 1000,
  },
  {
    name: "endless console output ('O' packets) instead of a reply",
    script: (req, side) => {
      if (req.startsWith('qSupported')) side.stream(() => CONSOLE);
    },
    code: 'RSPFLASH_RSP_TIMEOUT',
    message: /did not answer 'qSupported/,
    withinMs: TIMEOUT_MS + 1000,
  },
  {
    name: "endless console output during 'monitor reset'",
    script: (req, side) => {
      if (basics(req, side)) return;
      if (req.startsWith('qRcmd')) side.stream(() => CONSOLE);
    },
    then: (gdb) => gdb.monitor('reset'),
    code: 'RSPFLASH_RSP_TIMEOUT',
    message: /did not answer 'monitor reset'/,
    withinMs: TIMEOUT_MS + 1000,
  },
  {
    name: "a qXfer target.xml that never sends 'l' (4 KiB chunks)",
    script: (req, side) => {
      if (basics(req, side, 'PacketSize=1000;qXfer:features:read+')) return;
      if (req.startsWith('qXfer:features:read:')) side.reply('m' + '<'.repeat(4000));
    },
    code: 'RSPFLASH_REPLY_FORMAT',
    message: /exceeds 4194304 bytes/,
    withinMs: 5000,
  },
  {
    name: "a qXfer target.xml that never sends 'l' (1-byte chunks)",
    script: (req, side) => {
      if (basics(req, side, 'PacketSize=1000;qXfer:features:read+')) return;
      if (req.startsWith('qXfer:features:read:')) side.reply('m<');
    },
    code: 'RSPFLASH_REPLY_FORMAT',
    message: /qXfer/,
    // Found here: with only the 4 MiB byte cap this took 4 Mi round trips (over a minute);
    // lib/gdb/client.ts now also caps the number of chunks.
    withinMs: 10_000,
  },
  {
    name: 'a request acknowledged but never answered',
    script: (req, side) => {
      if (req.startsWith('qSupported')) side.reply('PacketSize=1000');
      // '?' gets its '+' and nothing more.
    },
    code: 'RSPFLASH_RSP_TIMEOUT',
    message: /did not answer '\?' within 1000 ms/,
    withinMs: TIMEOUT_MS + 1000,
  },
  {
    name: 'endless garbage (no packet at all)',
    script: (req, side) => {
      if (!req.startsWith('qSupported')) return;
      const junk = latin1('garbage, not a packet. '.repeat(2000));
      side.stream(() => junk);
    },
    code: 'RSPFLASH_RSP_TIMEOUT',
    message: /did not answer 'qSupported/,
    withinMs: TIMEOUT_MS + 1000,
  },
  {
    name: "no stop reply to 'c', and the interrupt ignored",
    script: (req, side) => {
      basics(req, side);
    },
    then: (gdb) => gdb.continue({ timeoutMs: 300 }),
    code: 'RSPFLASH_RSP_TIMEOUT',
    message: /did not stop within 3000 ms of an interrupt/,
    withinMs: 300 + 3000 + 1000,
  },
  {
    name: "an 'm' reply longer than asked",
    script: (req, side) => {
      if (basics(req, side)) return;
      if (req.startsWith('m')) side.reply('ab'.repeat(64));
    },
    then: (gdb) => gdb.readMemory(0x20000000, 16),
    code: 'RSPFLASH_REPLY_FORMAT',
    message: /Reading 16 bytes at 0x20000000: the server sent 64/,
    withinMs: 1000,
  },
  {
    name: 'connection closed in the middle of a reply',
    script: (req, side) => {
      if (!req.startsWith('qSupported')) return;
      side.raw(latin1('$PacketSize=10'));
      setTimeout(() => side.close(), 20);
    },
    code: 'RSPFLASH_CONNECTION_CLOSED',
    message: /closed the connection/,
    withinMs: 1000,
  },
];

/** Runs `body` while sampling memory; returns the largest growth of heapUsed + arrayBuffers seen. */
async function peakGrowth<T>(body: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const usage = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const start = usage();
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, usage())), 5);
  try {
    const result = await body();
    peak = Math.max(peak, usage());
    return { result, growth: peak - start };
  } finally {
    clearInterval(sampler);
  }
}

describe('a hostile GDB server', () => {
  // Servers still open when a test ends (one that timed out must not close the next test's server).
  const open = new Set<HostileServer>();
  afterEach(async () => {
    for (const s of open) await s.close();
    open.clear();
  });

  for (const s of scenarios) {
    it(`ends with ${s.code} in bounded time and memory on ${s.name}`, async () => {
      const server = await startHostileServer(s.script);
      open.add(server);
      const baseline = activeResources();
      const started = performance.now();
      const { result: error, growth } = await peakGrowth(async () => {
        let gdb: GdbClient | undefined;
        try {
          gdb = await GdbClient.connect(server.connectOptions, { timeoutMs: TIMEOUT_MS, connectTimeoutMs: TIMEOUT_MS });
          await s.then?.(gdb);
          return undefined;
        } catch (err) {
          return err;
        } finally {
          await gdb?.close().catch(() => undefined);
        }
      });
      const elapsed = performance.now() - started;
      open.delete(server);
      await server.close();
      await expectNoLeaks(baseline, s.name);
      const e = error as RspflashError | undefined;
      outcomes.add({
        group: 'Hostile server (scripted)',
        fault: s.name,
        outcome: `${e ? 'typed error' : 'no error'}; peak memory growth ${(growth / (1 << 20)).toFixed(1)} MiB`,
        code: e?.code ?? '—',
        timeMs: Math.round(elapsed),
        content: 'n/a',
      });
      const err = typed(error);
      expect(err.code, err.message).toBe(s.code);
      expect(err.message).toMatch(s.message);
      expect(growth, `memory growth on ${s.name}`).toBeLessThan(MEMORY_BOUND);
    }, s.withinMs + 5000);
  }
});
