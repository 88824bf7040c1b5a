import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ProtocolError, ReplyFormatError } from '../../lib/errors.js';
import {
  DEFAULT_MAX_PACKET,
  PACKET_OVERHEAD,
  PacketParser,
  checksum,
  decodeRunLength,
  escapeBinary,
  escapedLength,
  fitEscaped,
  frame,
  frameText,
  hexDecode,
  hexEncode,
  hexEncodeInto,
  PacketWriter,
  latin1Bytes,
  unescapeBinary,
  type WireEvent,
} from '../../lib/rsp/packet.js';

const text = (s: string): Uint8Array => latin1Bytes(s);
const str = (b: Uint8Array): string => String.fromCharCode(...b);

/**
 * Test-only run-length encoder that obeys the manual: runs of 4 or more become
 * `c*N` with N - 29 extra copies, N printable (32..126) and never `#` or `$`
 * (a run of 6 or 7 extras is sent as 5 plus the rest).
 */
function encodeRunLength(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    const c = data[i]!;
    let run = 1;
    while (i + run < data.length && data[i + run] === c) run++;
    out.push(c);
    let extra = run - 1;
    while (extra >= 3) {
      let k = Math.min(extra, 126 - 29);
      if (k + 29 === 0x23 || k + 29 === 0x24) k = 0x22 - 29;
      out.push(0x2a, k + 29);
      extra -= k;
    }
    for (; extra > 0; extra--) out.push(c);
    i += run;
  }
  return Uint8Array.from(out);
}

/** Splits `stream` at the given cut points (any values; reduced modulo the length). */
function fragment(stream: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % (stream.length + 1))))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let last = 0;
  for (const p of [...points, stream.length]) {
    chunks.push(stream.subarray(last, p));
    last = p;
  }
  return chunks;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function parseAll(chunks: Uint8Array[], parser = new PacketParser()): WireEvent[] {
  return chunks.flatMap((c) => parser.push(c));
}

function describeEvents(events: WireEvent[]): string[] {
  return events.map((e) => {
    switch (e.kind) {
      case 'packet':
      case 'notification':
        return `${e.kind}:${str(e.payload)}:${e.checksumOk ? 'ok' : 'bad'}`;
      case 'garbage':
        return `garbage:${str(e.bytes)}`;
      default:
        return e.kind;
    }
  });
}

describe('checksum and frame', () => {
  it('computes the checksum as the byte sum modulo 256', () => {
    expect(checksum(text('OK'))).toBe(0x9a);
    expect(checksum(new Uint8Array(0))).toBe(0);
    expect(checksum(Uint8Array.of(0xff, 0xff, 0x02))).toBe(0x00);
  });

  it('frames a payload as $payload#cs with two lower-case hex digits', () => {
    expect(str(frameText('qSupported'))).toBe('$qSupported#37');
    expect(str(frameText('g'))).toBe('$g#67');
    expect(str(frame(new Uint8Array(0)))).toBe('$#00');
    expect(str(frameText('m0,4'))).toMatch(/^\$m0,4#[0-9a-f]{2}$/);
  });

  it('adds exactly PACKET_OVERHEAD bytes around the payload', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (payload) => {
        expect(frame(payload).length).toBe(payload.length + PACKET_OVERHEAD);
      }),
    );
  });

  it('refuses text that is not latin1 instead of truncating characters', () => {
    expect(() => frameText('caf\u00e9')).not.toThrow();
    expect(() => frameText('qRcmd,\u20ac')).toThrow(ProtocolError);
  });
});

describe('binary escaping', () => {
  it('escapes #, $, } and * as } followed by the byte XOR 0x20', () => {
    expect([...escapeBinary(text('a#b$c}d*e'))]).toEqual([...text('a}\x03b}\x04c}]d}\x0ae')]);
  });

  it('leaves every other byte alone', () => {
    const plain = Uint8Array.from({ length: 256 }, (_, i) => i).filter((b) => ![0x23, 0x24, 0x7d, 0x2a].includes(b));
    expect(escapeBinary(plain)).toEqual(plain);
  });

  it('round-trips random binary data through escape and unescape', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (data) => {
        const escaped = escapeBinary(data);
        for (const b of escaped) expect([0x23, 0x24, 0x2a]).not.toContain(b);
        expect(unescapeBinary(escaped)).toEqual(data);
      }),
    );
  });

  it('reports a lone trailing escape character as a protocol error', () => {
    expect(() => unescapeBinary(text('abc}'))).toThrow(ProtocolError);
  });

  it('escapedLength agrees with escapeBinary on any range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (data, a, b) => {
        const start = a % (data.length + 1);
        const end = start + (b % (data.length - start + 1));
        expect(escapedLength(data, start, end)).toBe(escapeBinary(data.subarray(start, end)).length);
      }),
    );
    expect(escapedLength(text('##'))).toBe(4);
  });

  it('fitEscaped picks the longest prefix whose escaped form fits the budget', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }).map((d) => d.map((b) => (b % 3 === 0 ? 0x7d : b))), // plenty of escapes
        fc.nat(),
        fc.nat({ max: 400 }),
        (data, s, budget) => {
          const start = s % (data.length + 1);
          const n = fitEscaped(data, start, budget);
          expect(start + n).toBeLessThanOrEqual(data.length);
          expect(escapedLength(data, start, start + n)).toBeLessThanOrEqual(budget);
          if (start + n < data.length) {
            expect(escapedLength(data, start, start + n + 1), 'one more byte would still have fit').toBeGreaterThan(budget);
          }
        },
      ),
    );
  });

  it('fitEscaped never splits an escape pair', () => {
    expect(fitEscaped(text('ab}'), 0, 3)).toBe(2);
    expect(fitEscaped(text('ab}'), 0, 4)).toBe(3);
    expect(fitEscaped(text('ab'), 2, 10)).toBe(0);
  });
});

describe('run-length decoding', () => {
  it('expands c*N to c plus N-29 more copies (the manual: "0* " is "0000")', () => {
    expect(str(decodeRunLength(text('0* ')))).toBe('0000');
    expect(str(decodeRunLength(text('x0*"y')))).toBe('x000000y');
    expect(str(decodeRunLength(text('abc')))).toBe('abc');
  });

  it('repeats the last output character when runs are chained', () => {
    expect(str(decodeRunLength(text('f*~*"')))).toBe('f'.repeat(1 + 97 + 5));
  });

  it('takes the byte after * verbatim as the count, even when it is *', () => {
    expect(str(decodeRunLength(text('a**')))).toBe('a'.repeat(1 + 13));
  });

  it('rejects a * with nothing before it', () => {
    expect(() => decodeRunLength(text('*  '))).toThrow(ProtocolError);
  });

  it('rejects a * without a count byte', () => {
    expect(() => decodeRunLength(text('ab*'))).toThrow(ProtocolError);
  });

  it('rejects count bytes that encode no repeat (29 and below)', () => {
    expect(() => decodeRunLength(Uint8Array.of(0x30, 0x2a, 29))).toThrow(ProtocolError);
    expect(() => decodeRunLength(Uint8Array.of(0x30, 0x2a, 0x00))).toThrow(ProtocolError);
    expect(decodeRunLength(Uint8Array.of(0x30, 0x2a, 30))).toEqual(Uint8Array.of(0x30, 0x30));
  });

  it('refuses to expand beyond maxLength when one is given', () => {
    const bomb = text('a*\xff'.repeat(100));
    expect(decodeRunLength(bomb).length).toBe(100 * (1 + 0xff - 29));
    expect(() => decodeRunLength(bomb, 1000)).toThrow(/more than the 1000 accepted/);
    expect(decodeRunLength(text('0* '), 4)).toEqual(text('0000'));
  });

  it('decodes anything a rule-abiding encoder produces', () => {
    const runs = fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 300 })), { maxLength: 20 });
    fc.assert(
      fc.property(runs, (spec) => {
        // Raw '*', '#', '$' never appear in an encoder's input: replies escape them.
        const data = concat(spec.map(([b, n]) => new Uint8Array(n).fill([0x2a, 0x23, 0x24].includes(b) ? 0x41 : b)));
        const encoded = encodeRunLength(data);
        for (let i = 0; i < encoded.length; i++) {
          if (encoded[i] === 0x2a) expect([0x23, 0x24], 'encoder used a forbidden count').not.toContain(encoded[i + 1]);
        }
        expect(decodeRunLength(encoded)).toEqual(data);
      }),
    );
  });
});

describe('hex', () => {
  it('encodes bytes as lower-case hex, two digits each', () => {
    expect(hexEncode(Uint8Array.of(0x00, 0xab, 0x0f, 0xff))).toBe('00ab0fff');
  });

  it('decodes either case', () => {
    expect(hexDecode('00AbFf')).toEqual(Uint8Array.of(0x00, 0xab, 0xff));
    expect(hexDecode('')).toEqual(new Uint8Array(0));
  });

  it('round-trips random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        expect(hexDecode(hexEncode(data))).toEqual(data);
      }),
    );
  });

  it('rejects odd length and non-hex characters with ReplyFormatError', () => {
    expect(() => hexDecode('abc')).toThrow(ReplyFormatError);
    expect(() => hexDecode('zz')).toThrow(ReplyFormatError);
    expect(() => hexDecode('0g')).toThrow(/offset 1/);
    expect(() => hexDecode('E01 ')).toThrow(ReplyFormatError);
  });
});

describe('PacketParser', () => {
  it('reports acks, nacks, packets and notifications in arrival order', () => {
    const events = parseAll([text('+$OK#9a-%Stop:T05#99+')]);
    expect(describeEvents(events)).toEqual(['ack', 'packet:OK:ok', 'nack', 'notification:Stop:T05:ok', 'ack']);
  });

  it('completes a packet split between # and the checksum digits', () => {
    const parser = new PacketParser();
    expect(parser.push(text('$OK#'))).toEqual([]);
    expect(parser.push(text('9'))).toEqual([]);
    expect(describeEvents(parser.push(text('a')))).toEqual(['packet:OK:ok']);
  });

  it('round-trips random binary payloads under random fragmentation of the stream', () => {
    const item = fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }).map((d) => ({ kind: 'packet' as const, data: d })) },
      { weight: 1, arbitrary: fc.constantFrom({ kind: 'ack' as const }, { kind: 'nack' as const }) },
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 400 }), (items, cuts, maxPacket) => {
        const stream = concat(
          items.map((it) => (it.kind === 'packet' ? frame(escapeBinary(it.data)) : text(it.kind === 'ack' ? '+' : '-'))),
        );
        const chunks = fragment(stream, cuts);
        const tooLong = items.some((it) => it.kind === 'packet' && escapedLength(it.data) > maxPacket);
        if (tooLong) {
          expect(() => parseAll(chunks, new PacketParser({ maxPacket }))).toThrow(ProtocolError);
          return;
        }
        const events = parseAll(chunks, new PacketParser({ maxPacket }));
        expect(events.length).toBe(items.length);
        items.forEach((it, k) => {
          const e = events[k]!;
          if (it.kind !== 'packet') {
            expect(e.kind).toBe(it.kind);
            return;
          }
          expect(e.kind).toBe('packet');
          if (e.kind !== 'packet') return;
          expect(e.checksumOk).toBe(true);
          expect(unescapeBinary(e.payload)).toEqual(it.data);
        });
      }),
    );
  });

  it('round-trips run-length encoded, escaped replies split anywhere', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 120 })), { maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (runs, cuts) => {
          const data = concat(runs.map(([b, n]) => new Uint8Array(n).fill(b)));
          const wire = frame(encodeRunLength(escapeBinary(data)));
          const [event, ...rest] = parseAll(fragment(wire, cuts));
          expect(rest).toEqual([]);
          expect(event?.kind).toBe('packet');
          if (event?.kind !== 'packet') return;
          expect(event.checksumOk).toBe(true);
          expect(unescapeBinary(decodeRunLength(event.payload))).toEqual(data);
        },
      ),
    );
  });

  it('marks a packet whose checksum does not match as checksumOk false', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.integer({ min: 1, max: 255 }), (data, delta) => {
        const wire = frame(escapeBinary(data));
        const cs = (checksum(escapeBinary(data)) + delta) & 0xff;
        const digits = text(cs.toString(16).padStart(2, '0'));
        wire.set(digits, wire.length - 2);
        const events = parseAll([wire]);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({ kind: 'packet', checksumOk: false });
      }),
    );
  });

  it('marks a packet with non-hex checksum digits as checksumOk false', () => {
    expect(describeEvents(parseAll([text('$OK#zz')]))).toEqual(['packet:OK:bad']);
    expect(describeEvents(parseAll([text('$OK#9-')]))).toEqual(['packet:OK:bad']);
  });

  it('accepts upper-case checksum digits', () => {
    expect(describeEvents(parseAll([text('$OK#9A')]))).toEqual(['packet:OK:ok']);
  });

  it('treats an unescaped $ inside a packet as a new packet and reports the partial one as garbage', () => {
    expect(describeEvents(parseAll([text('$m0,4$OK#9a')]))).toEqual(['garbage:$m0,4', 'packet:OK:ok']);
    expect(describeEvents(parseAll([text('$abc#$OK#9a')]))).toEqual(['garbage:$abc#', 'packet:OK:ok']);
    expect(describeEvents(parseAll([text('$abc#1$OK#9a')]))).toEqual(['garbage:$abc#1', 'packet:OK:ok']);
    expect(describeEvents(parseAll([text('%Stop$OK#9a')]))).toEqual(['garbage:%Stop', 'packet:OK:ok']);
  });

  it('reports 0x03 outside a packet as an interrupt, and inside one as data', () => {
    const inside = Uint8Array.of(0x24, 0x03, 0x23, 0x30, 0x33);
    expect(describeEvents(parseAll([Uint8Array.of(0x03), inside]))).toEqual(['interrupt', 'packet:\x03:ok']);
  });

  it('groups bytes outside packets into garbage events without swallowing what follows', () => {
    const events = parseAll([text('hello world\r\n+$OK#9a')]);
    expect(describeEvents(events)).toEqual(['garbage:hello world\r\n', 'ack', 'packet:OK:ok']);
  });

  it('keeps +, - and % inside a payload as data', () => {
    const payload = text('a+b-c%d');
    expect(describeEvents(parseAll([frame(payload)]))).toEqual(['packet:a+b-c%d:ok']);
  });

  it('accepts a payload of exactly maxPacket bytes and refuses one byte more', () => {
    const max = 64;
    const fits = frame(new Uint8Array(max).fill(0x41));
    expect(parseAll([fits], new PacketParser({ maxPacket: max }))).toHaveLength(1);
    const parser = new PacketParser({ maxPacket: max });
    expect(() => parser.push(frame(new Uint8Array(max + 1).fill(0x41)))).toThrow(ProtocolError);
  });

  it('refuses an endless packet from a hostile server without buffering it', () => {
    const parser = new PacketParser({ maxPacket: 1024 });
    parser.push(text('$'));
    const flood = new Uint8Array(256).fill(0x61);
    expect(() => {
      for (let k = 0; k < 100; k++) parser.push(flood);
    }).toThrow(/longer than 1024 bytes/);
  });

  it('defaults the payload cap to DEFAULT_MAX_PACKET', () => {
    const parser = new PacketParser();
    parser.push(text('$'));
    expect(() => parser.push(new Uint8Array(DEFAULT_MAX_PACKET + 1).fill(0x61))).toThrow(ProtocolError);
  });

  it('drops a partial packet on reset', () => {
    const parser = new PacketParser();
    parser.push(text('$partial'));
    parser.reset();
    expect(describeEvents(parser.push(text('+OK#9a')))).toEqual(['ack', 'garbage:OK#9a']);
  });

  it('returns payloads that later pushes do not overwrite', () => {
    const parser = new PacketParser();
    const [first] = parser.push(text('$first#'));
    expect(first).toBeUndefined();
    const events = parser.push(text(`${checksum(text('first')).toString(16)}$other#${checksum(text('other')).toString(16)}`));
    expect(describeEvents(events)).toEqual(['packet:first:ok', 'packet:other:ok']);
  });

  it('parses large streams in linear time, whether in one chunk or byte by byte', () => {
    const big = frame(new Uint8Array(DEFAULT_MAX_PACKET).fill(0x55));
    const many = concat(Array.from({ length: 20_000 }, (_, k) => frameText(`T05thread:${k.toString(16)};`)));
    const t0 = performance.now();
    const parser = new PacketParser();
    let count = 0;
    for (let i = 0; i < big.length; i++) count += parser.push(big.subarray(i, i + 1)).length;
    count += parser.push(many).length;
    const ms = performance.now() - t0;
    expect(count).toBe(20_001);
  });
});

describe('hexEncodeInto', () => {
  it('writes the same digits as hexEncode, at the offset, touching nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(16), (data, offset) => {
        const out = new Uint8Array(offset + data.length * 2 + 3).fill(0x55);
        hexEncodeInto(data, out, offset);
        expect(Buffer.from(out.subarray(offset, offset + data.length * 2)).toString('latin1')).toBe(hexEncode(data));
        expect(out.subarray(0, offset).every((b) => b === 0x55)).toBe(true);
        expect(out.subarray(offset + data.length * 2).every((b) => b === 0x55)).toBe(true);
      }),
    );
  });
});

describe('PacketWriter', () => {
  it('frames text + hex + binary parts exactly as frame() frames their escaped concatenation', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }).filter((h) => !/[#$}]/.test(h) && [...h].every((c) => c.charCodeAt(0) <= 0xff)), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 300 }), fc.nat(600), (header, hex, bin, capacity) => {
        const packet = new PacketWriter(capacity).text(header).hex(hex).binary(bin).finish();
        const payload = Buffer.concat([text(header), text(hexEncode(hex)), escapeBinary(bin)]);
        expect(str(packet)).toBe(str(frame(payload)));
      }),
    );
  });

  it('escapes binary data correctly whatever room is left, even when every byte needs an escape', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }).map((d) => d.map((b) => [0x23, 0x24, 0x7d, 0x2a, b][b % 5]!)), fc.nat(250), (data, capacity) => {
        const packet = new PacketWriter(capacity).text('X0,0:').binary(data).finish();
        expect(str(packet)).toBe(str(frame(Buffer.concat([text('X0,0:'), escapeBinary(data)]))));
      }),
    );
  });

  it('with an exact capacity, returns its own buffer: no view over spare bytes, no copy', () => {
    const data = Uint8Array.of(1, 2, 3, 0xab);
    const packet = new PacketWriter(5 + 8).text('M0,4:').hex(data).finish();
    expect(str(packet)).toBe('$M0,4:010203ab#' + checksum(text('M0,4:010203ab')).toString(16).padStart(2, '0'));
    expect(packet.byteLength).toBe(packet.buffer.byteLength);
  });

  it('reports the payload it holds (for logs) and finishes the same bytes twice', () => {
    const writer = new PacketWriter().text('qRcmd,').hex(text('go'));
    expect(str(writer.payload)).toBe('qRcmd,676f');
    expect(writer.length).toBe(10);
    const once = writer.finish();
    expect(writer.finish()).toBe(once);
  });

  it('refuses to grow after finish() and refuses text that is not one byte per character', () => {
    const writer = new PacketWriter();
    writer.finish();
    expect(() => writer.text('m0,4')).toThrow(ProtocolError);
    expect(() => new PacketWriter().text('\u2603')).toThrow(ProtocolError);
  });
});
