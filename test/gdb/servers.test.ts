/**
 * Server detection from real `qSupported` replies, and the parser of those
 * replies. Each reply is what that server's source sends (or, for QEMU 7.2
 * and J-Link, what was seen on the wire), with where it comes from.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIALECTS, detectServer, parseSupported, type ServerKind } from '../../lib/gdb/servers.js';

/** Real replies: [server, reply, where it comes from]. */
const REPLIES: ReadonlyArray<[ServerKind, string, string]> = [
  [
    'jlink',
    'PacketSize=4000;qXfer:memory-map:read-;QStartNoAckMode+;hwbreak+;qXfer:features:read+',
    'JLinkGDBServer V6.54–V7.x logs (FACTS.md)',
  ],
  ['qemu', 'PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+', 'qemu-system-arm 7.2, seen on the wire'],
  [
    'qemu',
    'PacketSize=1000;qXfer:features:read+;ReverseStep+;ReverseContinue+;vContSupported+;multiprocess+',
    'QEMU gdbstub handle_query_supported with record/replay',
  ],
  [
    'qemu',
    'PacketSize=1000;qXfer:features:read+;qXfer:auxv:read+;qXfer:exec-file:read+;vContSupported+;multiprocess+',
    'QEMU user-mode gdbstub (later versions)',
  ],
  [
    'qemu',
    'PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+;QStartNoAckMode+',
    'a QEMU that learns no-ack mode: still QEMU by vContSupported + multiprocess without memory map or threads',
  ],
  [
    'openocd',
    'PacketSize=4000;qXfer:memory-map:read+;qXfer:features:read+;qXfer:threads:read+;QStartNoAckMode+;vContSupported+',
    'OpenOCD src/server/gdb_server.c gdb_query_packet, GDB_BUFFER_SIZE 16384, flash banks configured',
  ],
  [
    'openocd',
    'PacketSize=4000;qXfer:memory-map:read-;qXfer:features:read+;qXfer:threads:read+;QStartNoAckMode+;vContSupported+',
    'OpenOCD with no flash bank (e.g. a chip whose flash it does not know): memory map "-"',
  ],
  [
    'openocd',
    'PacketSize=4000;qXfer:memory-map:read+;qXfer:features:read-;qXfer:threads:read+;QStartNoAckMode+;vContSupported+',
    'OpenOCD with `gdb_target_description disable`',
  ],
  [
    'pyocd',
    'qXfer:features:read+;QStartNoAckMode+;qXfer:threads:read+;QNonStop+;PacketSize=800;qXfer:memory-map:read+',
    'pyOCD pyocd/gdbserver/gdbserver.py handle_query, packet_size 2048',
  ],
  [
    'pyocd',
    'qXfer:features:read+;QStartNoAckMode+;qXfer:threads:read+;QNonStop+;PacketSize=800',
    'pyOCD on a target without a memory map',
  ],
  [
    'unknown',
    'PacketSize=400;qXfer:memory-map:read+;qXfer:features:read+;vContSupported+;QStartNoAckMode+',
    'Black Magic Probe exec_q_supported: not to be mistaken for OpenOCD (other monitor commands)',
  ],
  ['unknown', '', 'a server without qSupported (empty reply)'],
  ['unknown', 'PacketSize=3fff', 'a minimal stub'],
];

describe('detectServer', () => {
  it.each(REPLIES)('detects %s from %j (%s)', (kind, reply) => {
    expect(detectServer(parseSupported(reply))).toBe(kind);
  });

  it('does not take an OpenOCD without flash banks for J-Link (both say memory-map "-")', () => {
    const openocd = parseSupported(REPLIES.find((r) => r[2].includes('no flash bank'))![1]);
    expect(openocd.get('qXfer:memory-map:read')).toBe(false);
    expect(detectServer(openocd)).toBe('openocd');
  });

  it('does not depend on the order of features', () => {
    for (const [kind, reply] of REPLIES) {
      const reversed = reply.split(';').reverse().join(';');
      expect(detectServer(parseSupported(reversed)), reversed).toBe(kind);
    }
  });
});

describe('parseSupported', () => {
  it('maps name+ to true, name- to false, name=value to the value text', () => {
    const features = parseSupported(REPLIES[0]![1]);
    expect([...features]).toEqual([
      ['PacketSize', '4000'],
      ['qXfer:memory-map:read', false],
      ['QStartNoAckMode', true],
      ['hwbreak', true],
      ['qXfer:features:read', true],
    ]);
  });

  it('gives the PacketSize of each server as hex text', () => {
    const sizes = REPLIES.filter(([, reply]) => reply.includes('PacketSize')).map(([kind, reply]) => [
      kind,
      parseInt(parseSupported(reply).get('PacketSize') as string, 16),
    ]);
    expect(sizes).toContainEqual(['jlink', 0x4000]);
    expect(sizes).toContainEqual(['qemu', 0x1000]);
    expect(sizes).toContainEqual(['openocd', 0x4000]);
    expect(sizes).toContainEqual(['pyocd', 0x800]);
  });

  it('treats name? ("may be supported, probe it") as not announced', () => {
    expect(parseSupported('qXfer:libraries:read?').get('qXfer:libraries:read')).toBe(false);
  });

  it('keeps "=" inside a value, skips empty items, and lets a repeated name take its last value', () => {
    const features = parseSupported(';foo=a=b;;bar+;bar-;');
    expect(features.get('foo')).toBe('a=b');
    expect(features.get('bar')).toBe(false);
    expect(features.size).toBe(2);
  });

  it('gives an empty map for an empty reply (qSupported not supported)', () => {
    expect(parseSupported('').size).toBe(0);
  });

  it('round-trips any feature list it is given (property)', () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9:._]{0,20}$/);
    const value = fc.oneof(fc.constant(true), fc.constant(false), fc.stringMatching(/^[0-9A-Za-z:,.+-]{0,12}$/));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, value), { selector: ([n]) => n, maxLength: 12 }), (items) => {
        const reply = items.map(([n, v]) => (v === true ? `${n}+` : v === false ? `${n}-` : `${n}=${v}`)).join(';');
        expect([...parseSupported(reply)]).toEqual(items);
      }),
    );
  });
});

describe('DIALECTS', () => {
  it('has one dialect per kind, naming its kind', () => {
    for (const kind of ['jlink', 'openocd', 'pyocd', 'qemu', 'unknown'] as const) expect(DIALECTS[kind].kind).toBe(kind);
  });

  it('J-Link resumes with monitor go (it answers D with an empty reply and stays halted); the others detach', () => {
    expect(DIALECTS.jlink.resume).toBe('monitor-go');
    for (const kind of ['openocd', 'pyocd', 'qemu', 'unknown'] as const) expect(DIALECTS[kind].resume).toBe('detach');
  });

  it('QEMU: 16 writes in flight, reads capped at 0x800 bytes, system_reset, and its "unknown command" text recognised', () => {
    expect(DIALECTS.qemu).toMatchObject({ writeWindow: 16, maxReadChunk: 0x800, resetHaltCommand: 'system_reset' });
    expect(DIALECTS.qemu.unknownMonitorCommand?.test("unknown command: 'frobnicate'\r\n")).toBe(true);
    expect(DIALECTS.qemu.unknownMonitorCommand?.test('7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3\r\n')).toBe(false);
  });

  it('servers not measured safe for pipelining write one packet at a time', () => {
    for (const kind of ['jlink', 'openocd', 'pyocd', 'unknown'] as const) expect(DIALECTS[kind].writeWindow).toBe(1);
  });
});
