/**
 * RspConnection against a scripted fake server on an in-memory stream pair.
 *
 * Mocks are right here: these are the fault cases (damaged packets, a server
 * that stops answering or hangs up, floods) that no real server produces on
 * demand. The happy paths are also proven against QEMU in test/gdb/.
 */
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, ConnectionClosedError, ProtocolError, RspTimeoutError } from '../../lib/errors.js';
import { ABORT_GRACE_MS, MAX_RETRANSMITS, RspConnection } from '../../lib/rsp/connection.js';
import { PacketParser, PacketWriter, checksum, frameText, latin1Bytes, type WireEvent } from '../../lib/rsp/packet.js';

const str = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Two cross-wired in-memory streams: what one side writes, the other reads. */
function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        other().push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
      // Like a socket: when one end is destroyed, the other sees the end of the stream.
      destroy(err, callback) {
        other().push(null);
        callback(err);
      },
    });
  sides.push(make(() => sides[1]!), make(() => sides[0]!));
  return [sides[0]!, sides[1]!];
}

/** A packet with a wrong checksum (the right one plus 1). */
function badFrame(payload: string): string {
  const cs = (checksum(latin1Bytes(payload)) + 1) & 0xff;
  return `$${payload}#${cs.toString(16).padStart(2, '0')}`;
}

/**
 * The server side of a pair: records what the client sent (raw bytes and
 * parsed events) and lets the test script the answers. `onPacket` is called
 * for every well-formed packet the client sends.
 */
class FakeServer {
  readonly raw: number[] = [];
  readonly events: WireEvent[] = [];
  readonly #parser = new PacketParser();
  onPacket: (payload: string, server: FakeServer) => void = () => undefined;

  constructor(readonly stream: Duplex) {
    stream.on('data', (chunk: Buffer) => {
      this.raw.push(...chunk);
      for (const event of this.#parser.push(chunk)) {
        this.events.push(event);
        if (event.kind === 'packet' && event.checksumOk) this.onPacket(str(event.payload), this);
      }
    });
    stream.on('error', () => undefined);
  }

  /** Request payloads received, in order (retransmits included). */
  get packets(): string[] {
    return this.events.filter((e): e is Extract<WireEvent, { kind: 'packet' }> => e.kind === 'packet').map((e) => str(e.payload));
  }

  get rawText(): string {
    return Buffer.from(this.raw).toString('latin1');
  }

  send(text: string): void {
    this.stream.write(Buffer.from(text, 'latin1'));
  }

  reply(payload: string): void {
    this.send(str(frameText(payload)));
  }
}

const open: RspConnection[] = [];

function setup(options: ConstructorParameters<typeof RspConnection>[1] = {}): { conn: RspConnection; server: FakeServer } {
  const [client, server] = duplexPair();
  const conn = new RspConnection(client, options);
  open.push(conn);
  return { conn, server: new FakeServer(server) };
}

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

describe('RspConnection in ack mode', () => {
  it('sends a framed request, acknowledges the reply with + and resolves with its payload', async () => {
    const { conn, server } = setup();
    server.onPacket = (p, s) => {
      s.send('+');
      if (p === 'qSupported') s.reply('PacketSize=1000');
    };
    expect(await conn.requestText('qSupported')).toBe('PacketSize=1000');
    await tick();
    // Exactly the frame, then our '+' for the reply — nothing else.
    expect(server.rawText).toBe('$qSupported#37+');
    expect(conn.stats).toMatchObject({ packetsSent: 1, packetsReceived: 1, roundTrips: 1, retransmits: 0 });
  });

  it('run-length decodes a reply', async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => s.send('+' + str(frameText('0* ')));
    expect(await conn.requestText('m0,2')).toBe('0000');
  });

  it('re-sends the same packet when the server answers -, and counts the retransmit', async () => {
    const { conn, server } = setup();
    let seen = 0;
    server.onPacket = (_p, s) => {
      if (++seen === 1) s.send('-');
      else s.send('+$OK#9a');
    };
    expect(await conn.requestText('Hg0')).toBe('OK');
    expect(server.packets).toEqual(['Hg0', 'Hg0']);
    expect(conn.stats.retransmits).toBe(1);
    expect(conn.stats.packetsSent).toBe(1);
  });

  it(`gives up with a ProtocolError after ${MAX_RETRANSMITS} retransmits and closes the link`, async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => s.send('-');
    const err = await conn.requestText('Hg0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/rejected 'Hg0' 4 times/);
    expect(server.packets).toHaveLength(MAX_RETRANSMITS + 1);
    expect(conn.closed).toBe(true);
    await expect(conn.requestText('?')).rejects.toBe(err);
  });

  it('answers a reply with a bad checksum with - and accepts the resend', async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => s.send('+' + badFrame('1234'));
    const reply = conn.requestText('p0');
    await tick(5);
    expect(server.rawText.endsWith('-')).toBe(true);
    server.reply('1234');
    expect(await reply).toBe('1234');
    await tick();
    expect(server.rawText).toBe('$p0#a0-+');
    expect(conn.closed).toBe(false);
  });

  it('ignores garbage between packets', async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => s.send('+\r\nnoise\x00\xff $OK#9a trailing');
    expect(await conn.requestText('Hg0')).toBe('OK');
    server.onPacket = (_p, s) => s.send('junk$E01#a6');
    expect(await conn.requestText('m0,4')).toBe('E01');
  });
});

describe('RspConnection in no-ack mode', () => {
  it('sends no + for replies', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    server.onPacket = (_p, s) => s.reply('OK');
    expect(await conn.requestText('Hg0')).toBe('OK');
    await tick();
    expect(server.rawText).toBe('$Hg0#df');
  });

  it('fails only the request whose reply had a bad checksum: the link stays usable', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    server.onPacket = (_p, s) => s.send(badFrame('deadbeef'));
    const err = await conn.requestText('p0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/'p0' had a bad checksum/);
    expect(conn.closed).toBe(false);
    expect(server.rawText).not.toContain('-');
    server.onPacket = (_p, s) => s.reply('OK');
    expect(await conn.requestText('Hg0')).toBe('OK');
  });

  it('drops damaged console output without failing the request that is still waiting for its reply', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    server.onPacket = (_p, s) => {
      s.send(badFrame('O6869'));
      s.reply('OK');
    };
    // The damaged O packet is not the reply: failing the request on it would make
    // the real 'OK' arrive as the answer to the next request.
    expect(await conn.requestText('qRcmd,6869')).toBe('OK');
    server.onPacket = (_p, s) => s.reply('1234');
    expect(await conn.requestText('p0')).toBe('1234');
  });

  it('ignores the last + the server may send after QStartNoAckMode', async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => s.send('+$OK#9a');
    expect(await conn.requestText('QStartNoAckMode')).toBe('OK');
    conn.setNoAck();
    server.onPacket = (_p, s) => s.send('+$S05#b8');
    expect(await conn.requestText('?')).toBe('S05');
  });
});

describe('console output', () => {
  it('reports O packets before the reply as output events and to onOutput; the request gets its real reply', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    const events: string[] = [];
    conn.on('output', (t: string) => events.push(t));
    const seen: string[] = [];
    server.onPacket = (_p, s) => {
      s.reply(`O${Buffer.from('Hello, ').toString('hex')}`);
      s.reply(`O${Buffer.from('world\n').toString('hex')}`);
      s.reply('OK');
    };
    expect(await conn.requestText('qRcmd,6869', { onOutput: (t) => seen.push(t) })).toBe('OK');
    expect(seen).toEqual(['Hello, ', 'world\n']);
    expect(events).toEqual(['Hello, ', 'world\n']);
  });

  it('takes OK as a reply, not as output, and a hex reply to qRcmd as the reply', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    const events: string[] = [];
    conn.on('output', (t: string) => events.push(t));
    server.onPacket = (_p, s) => s.reply('OK');
    expect(await conn.requestText('qRcmd,6869')).toBe('OK');
    server.onPacket = (_p, s) => s.reply('4f4b0a');
    expect(await conn.requestText('qRcmd,6869')).toBe('4f4b0a');
    expect(events).toEqual([]);
  });

  it('reports output that arrives while no request waits (a running target printing)', async () => {
    const { conn, server } = setup();
    const events: string[] = [];
    conn.on('output', (t: string) => events.push(t));
    server.reply(`O${Buffer.from('boot\n').toString('hex')}`);
    await tick(5);
    expect(events).toEqual(['boot\n']);
  });
});

describe('timeouts and a dead link', () => {
  it('closes the link with RspTimeoutError on a timeout; every queued request fails with it; nothing hangs or goes unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { conn, server } = setup({ timeoutMs: 40 });
      const closed = new Promise<Error | undefined>((r) => conn.once('close', r));
      const first = conn.requestText('m0,4');
      const queued = [conn.requestText('m4,4'), conn.request('m8,4'), conn.pipeline([latin1Bytes('Mc,1:00')], 4)];
      const results = await Promise.allSettled([first, ...queued]);
      for (const r of results) expect(r.status).toBe('rejected');
      const reason = (results[0] as PromiseRejectedResult).reason as RspTimeoutError;
      expect(reason).toBeInstanceOf(RspTimeoutError);
      expect(reason.request).toBe('m0,4');
      expect(reason.timeoutMs).toBe(40);
      for (const r of results.slice(1)) expect((r as PromiseRejectedResult).reason).toBe(reason);
      expect(await closed).toBe(reason);
      expect(conn.closed).toBe(true);
      expect(conn.closeReason).toBe(reason);
      // Only the first request ever reached the wire: the others failed on the closed link.
      expect(server.packets).toEqual(['m0,4']);
      // A reply arriving late goes nowhere.
      server.reply('00000000');
      await tick(10);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a request with timeoutMs Infinity waits beyond the default timeout', async () => {
    const { conn, server } = setup({ timeoutMs: 20 });
    conn.setNoAck();
    const reply = conn.requestText('c', { timeoutMs: Infinity });
    await tick(60);
    server.reply('S05');
    expect(await reply).toBe('S05');
  });

  it('rejects a pending request with ConnectionClosedError when the server hangs up', async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => {
      s.send('+');
      s.stream.end();
    };
    const err = await conn.requestText('g').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(conn.closed).toBe(true);
    await expect(conn.requestText('g')).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('rejects a pending request with ConnectionClosedError when the stream is destroyed under it', async () => {
    const { conn, server } = setup();
    server.onPacket = (_p, s) => s.stream.destroy();
    await expect(conn.requestText('g')).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('close() fails the pending request with ConnectionClosedError and later requests too', async () => {
    const { conn } = setup();
    const pending = conn.requestText('c', { timeoutMs: Infinity });
    conn.close();
    await expect(pending).rejects.toBeInstanceOf(ConnectionClosedError);
    await expect(conn.requestText('?')).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(conn.closeReason).toBeUndefined();
  });

  it('closes the link with a ProtocolError on a packet longer than maxPacket', async () => {
    const { conn, server } = setup({ maxPacket: 64 });
    server.onPacket = (_p, s) => s.send('+$' + 'a'.repeat(100));
    const err = await conn.requestText('m0,100').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/longer than 64 bytes/);
    expect(conn.closed).toBe(true);
    expect(conn.closeReason).toBe(err);
  });

  it('refuses a run-length encoded reply that expands beyond maxPacket', async () => {
    const { conn, server } = setup({ maxPacket: 64 });
    conn.setNoAck();
    // 9 bytes on the wire, 3 × 98 = 294 bytes decoded.
    server.onPacket = (_p, s) => s.reply('0*~0*~0*~');
    await expect(conn.requestText('m0,100')).rejects.toBeInstanceOf(ProtocolError);
    expect(conn.closed).toBe(true);
  });
});

describe('cancellation (issue 15 item 7)', () => {
  it(`rejects a request the server never answers with AbortedError ${ABORT_GRACE_MS} ms after the cancel, not after its timeout, and closes the link`, async () => {
    const controller = new AbortController();
    const { conn, server } = setup({ timeoutMs: 60_000, signal: controller.signal });
    conn.setNoAck();
    const pending = conn.requestText('m0,4');
    const queued = conn.requestText('m4,4');
    await tick(5);
    controller.abort(new Error('SIGINT'));
    const err = await pending.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).code).toBe('RSPFLASH_ABORTED');
    expect((err as Error).message).toMatch(/Cancelled, and the GDB server did not answer 'm0,4' within 1000 ms/);
    expect(conn.closed, 'a late reply would desynchronize the link').toBe(true);
    await expect(queued).rejects.toBe(err);
    expect(server.packets).toEqual(['m0,4']);
  });

  it('after a cancel, a live server still gets its requests answered (the target can be restored)', async () => {
    const controller = new AbortController();
    const { conn, server } = setup({ timeoutMs: 60_000, signal: controller.signal });
    conn.setNoAck();
    server.onPacket = (payload, s) => s.reply(payload.startsWith('m') ? '01020304' : 'OK');
    controller.abort();
    expect(await conn.requestText('m0,4')).toBe('01020304');
    expect(await conn.requestText('M0,1:00')).toBe('OK');
    expect(conn.closed).toBe(false);
  });

  it('does not cut short a request without a timeout (a c, whose caller interrupts the core)', async () => {
    const controller = new AbortController();
    const { conn, server } = setup({ timeoutMs: 60_000, signal: controller.signal });
    conn.setNoAck();
    const running = conn.requestText('c', { timeoutMs: Infinity });
    controller.abort();
    await tick(ABORT_GRACE_MS + 100);
    server.reply('S05');
    expect(await running).toBe('S05');
  });
});

describe('request order', () => {
  it('sends concurrent requests one at a time: the second is not written before the first reply', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    const a = conn.requestText('m0,4');
    const b = conn.requestText('m4,4');
    const c = conn.requestText('m8,4');
    await tick(20);
    expect(server.packets).toEqual(['m0,4']);
    server.reply('00000000');
    expect(await a).toBe('00000000');
    await tick(5);
    expect(server.packets).toEqual(['m0,4', 'm4,4']);
    server.onPacket = (p, s) => s.reply(p === 'm8,4' ? '22222222' : 'bad');
    server.reply('11111111');
    expect(await b).toBe('11111111');
    expect(await c).toBe('22222222');
    expect(conn.stats.roundTrips).toBe(3);
  });

  it('pipeline() keeps up to `window` packets in flight and returns the replies in request order', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    let inFlight = 0;
    let maxInFlight = 0;
    server.onPacket = (p, s) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // Answer later, in order, as a real server reading its socket one packet at a time.
      setTimeout(() => {
        inFlight--;
        s.reply(`R${p.slice(1)}`);
      }, 2);
    };
    const payloads = Array.from({ length: 10 }, (_, i) => latin1Bytes(`M${i}`));
    const replies = await conn.pipeline(payloads, 3);
    expect(replies.map(str)).toEqual(Array.from({ length: 10 }, (_, i) => `R${i}`));
    expect(server.packets).toEqual(payloads.map(str));
    expect(maxInFlight).toBe(3);
  });

  it('pipeline() in ack mode keeps up to `window` packets in flight, one round trip per window', async () => {
    const { conn, server } = setup();
    let inFlight = 0;
    let maxInFlight = 0;
    server.onPacket = (_p, s) => {
      s.send('+');
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        s.reply('OK');
      }, 1);
    };
    const replies = await conn.pipeline(Array.from({ length: 6 }, (_, i) => latin1Bytes(`M${i}`)), 4);
    expect(replies.map(str)).toEqual(new Array(6).fill('OK'));
    expect(maxInFlight).toBe(4);
    expect(conn.stats.roundTrips).toBe(2);
  });

  it("pipeline() in ack mode: the server's '-' for one write of a window gets that write again, behind the others", async () => {
    const { conn, server } = setup();
    let seen = 0;
    server.onPacket = (p, s) => {
      if (p === 'M2' && seen++ === 0) s.send('-');
      else s.send('+' + str(frameText(`R${p.slice(1)}`)));
    };
    const replies = await conn.pipeline(Array.from({ length: 4 }, (_, i) => latin1Bytes(`M${i}`)), 4);
    // Each write still gets its own reply, though M2's came last.
    expect(replies.map(str)).toEqual(['R0', 'R1', 'R2', 'R3']);
    expect(server.packets).toEqual(['M0', 'M1', 'M2', 'M3', 'M2']);
    expect(conn.closed).toBe(false);
  });

  it('frames payloads built with a PacketWriter itself, in request() and pipeline(), and sends the same frame again after a -', async () => {
    const { conn, server } = setup();
    let nacked = false;
    server.onPacket = (p, s) => {
      if (p === 'M20000004,2:}]fff' && !nacked) {
        nacked = true;
        s.send('-');
      } else s.send('+' + str(frameText('OK')));
    };
    const writes = [0, 4].map((at) => new PacketWriter(14).text(`M2000000${at},2:`).binary(Uint8Array.of(0x7d, 0x66)).text('ff'));
    expect((await conn.pipeline(writes, 2)).map(str)).toEqual(['OK', 'OK']);
    expect(await conn.requestText(new PacketWriter().text('qRcmd,').hex(latin1Bytes('go')))).toBe('OK');
    expect(server.packets).toEqual(['M20000000,2:}]fff', 'M20000004,2:}]fff', 'M20000004,2:}]fff', 'qRcmd,676f']);
    expect(server.events.filter((e) => e.kind === 'packet').every((e) => e.kind === 'packet' && e.checksumOk)).toBe(true);
  });

  it("pipeline() in ack mode: a damaged reply within a window is taken with '+' (a '-' would repeat the server's last reply) and its write sent again", async () => {
    const { conn, server } = setup();
    let damaged = false;
    server.onPacket = (p, s) => {
      s.send('+');
      if (p === 'M1' && !damaged) {
        damaged = true;
        s.send(badFrame('R1'));
      } else s.reply(`R${p.slice(1)}`);
    };
    const replies = await conn.pipeline(Array.from({ length: 3 }, (_, i) => latin1Bytes(`M${i}`)), 4);
    expect(replies.map(str)).toEqual(['R0', 'R1', 'R2']);
    expect(server.packets.filter((p) => p === 'M1')).toHaveLength(2);
    expect(server.rawText).not.toContain('-');
    expect(conn.stats.retransmits).toBe(1);
  });

  it('pipeline() in no-ack mode sends a write again, behind those in flight, when its reply had a bad checksum', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    let damaged = false;
    server.onPacket = (p, s) => {
      if (p === 'M1' && !damaged) {
        damaged = true;
        s.send(badFrame(`R1`));
      } else s.reply(`R${p.slice(1)}`);
    };
    const replies = await conn.pipeline(Array.from({ length: 5 }, (_, i) => latin1Bytes(`M${i}`)), 3);
    // Each request still gets its own reply, though M1's second answer came after M2's and M3's.
    expect(replies.map(str)).toEqual(['R0', 'R1', 'R2', 'R3', 'R4']);
    expect(server.packets.slice(0, 3)).toEqual(['M0', 'M1', 'M2']);
    expect(server.packets.filter((p) => p === 'M1')).toHaveLength(2);
    expect(conn.stats.retransmits).toBe(1);
    expect(conn.closed).toBe(false);
  });

  it('pipeline() stops sending at the first error reply and drains what is in flight', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    server.onPacket = (p, s) => s.reply(p === 'M1' ? 'E01' : 'OK');
    const payloads = Array.from({ length: 6 }, (_, i) => latin1Bytes(`M${i}`));
    const replies = await conn.pipeline(payloads, 2, { isError: (r) => str(r) !== 'OK' });
    // M0, M1 go out; M0's OK lets M2 go; M1's E01 stops: M2 is drained, M3… never sent.
    expect(replies.map(str)).toEqual(['OK', 'E01', 'OK']);
    expect(server.packets).toEqual(['M0', 'M1', 'M2']);
    // The link is in step: the next request gets its own reply.
    server.onPacket = (_p, s) => s.reply('S05');
    expect(await conn.requestText('?')).toBe('S05');
  });

  it('pipeline() with window 1 is plain request/reply', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    let inFlight = 0;
    let maxInFlight = 0;
    server.onPacket = (_p, s) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        s.reply('OK');
      }, 1);
    };
    const before = conn.stats.roundTrips;
    await conn.pipeline([latin1Bytes('M0'), latin1Bytes('M1'), latin1Bytes('M2')], 1);
    expect(maxInFlight).toBe(1);
    expect(conn.stats.roundTrips - before).toBe(3);
  });

  it('isReply skips a packet that cannot be the answer (QEMU greets a client with T02 while the request waits)', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    server.onPacket = (_p, s) => {
      s.reply('T02thread:01;');
      s.reply('PacketSize=1000');
    };
    const isReply = (payload: Uint8Array): boolean => payload[0] !== 0x54; // not 'T'
    expect(await conn.requestText('qSupported', { isReply })).toBe('PacketSize=1000');
    server.onPacket = (_p, s) => s.reply('OK');
    expect(await conn.requestText('Hg0')).toBe('OK');
  });

  it('a reply nobody waits for (e.g. a late stop reply) is dropped, not handed to the next request', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    server.reply('T02');
    await tick(5);
    server.onPacket = (_p, s) => s.reply('OK');
    expect(await conn.requestText('Hg0')).toBe('OK');
  });
});

describe('request text', () => {
  it('refuses a request with a character that is not one byte, without sending anything', async () => {
    const { conn, server } = setup();
    await expect(conn.requestText('qRcmd,\u20ac')).rejects.toBeInstanceOf(ProtocolError);
    await tick(5);
    expect(server.raw).toEqual([]);
    expect(conn.closed).toBe(false);
    expect(conn.stats.packetsSent).toBe(0);
  });
});

describe('interrupt', () => {
  it('interrupt() writes exactly one 0x03 byte, outside the request queue', async () => {
    const { conn, server } = setup();
    conn.setNoAck();
    const running = conn.requestText('c', { timeoutMs: Infinity });
    await tick(5);
    const before = server.raw.length;
    conn.interrupt();
    await tick(5);
    expect(server.raw.slice(before)).toEqual([0x03]);
    expect(server.events.at(-1)).toEqual({ kind: 'interrupt' });
    server.reply('T02');
    expect(await running).toBe('T02');
  });

  it('interrupt() on a closed link writes nothing and does not throw', async () => {
    const { conn, server } = setup();
    conn.close();
    expect(() => conn.interrupt()).not.toThrow();
    await tick(5);
    expect(server.raw).toEqual([]);
  });
});

describe('pipeline() gives up cleanly', () => {
  it('rejects (never hangs) when a pipelined write keeps getting damaged replies in ack mode', async () => {
    const { conn, server } = setup();
    server.onPacket = (p, s) => {
      s.send('+');
      if (p === 'M1') s.send(badFrame('OK'));
      else s.reply('OK');
    };
    const outcome = await Promise.race([
      conn.pipeline(Array.from({ length: 3 }, (_, i) => latin1Bytes(`M${i}`)), 4).then(
        () => 'resolved',
        (err: unknown) => err,
      ),
      new Promise((r) => setTimeout(() => r('hung'), 2000)),
    ]);
    expect(outcome).toBeInstanceOf(ProtocolError);
    expect(conn.closed).toBe(true);
    // The queue behind it is not stuck either: the next request fails at once.
    await expect(conn.request('g')).rejects.toBeInstanceOf(Error);
  });
});
