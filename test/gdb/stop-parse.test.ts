import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ReplyFormatError } from '../../lib/errors.js';
import { STOP_REASONS, parseStopReply, signalName, type StopReply } from '../../lib/gdb/stop.js';

function signalStop(payload: string) {
  const stop = parseStopReply(payload);
  if (stop.kind !== 'signal') throw new Error(`expected a signal stop from ${payload}, got ${stop.kind}`);
  return stop;
}

describe('parseStopReply on what real servers send', () => {
  it('reads J-Link\'s "S05" as SIGTRAP without thread or registers', () => {
    const stop = signalStop('S05');
    expect(stop).toEqual({ kind: 'signal', signal: 5, registers: new Map() });
  });

  it('reads QEMU\'s "T05thread:p01.01;" with its multiprocess thread id', () => {
    const stop = signalStop('T05thread:p01.01;');
    expect(stop.signal).toBe(5);
    expect(stop.thread).toBe('p01.01');
    expect(stop.registers.size).toBe(0);
    expect(stop.reason).toBeUndefined();
  });

  it('reads OpenOCD\'s bare "T05"', () => {
    expect(signalStop('T05')).toEqual({ kind: 'signal', signal: 5, registers: new Map() });
  });

  it('reads register values of a T reply by hex register number, in target byte order', () => {
    const stop = signalStop('T050f:00100008;0d:F0FF0120;19:00000001;');
    expect([...stop.registers]).toEqual([
      [15, '00100008'],
      [13, 'f0ff0120'],
      [25, '00000001'],
    ]);
  });

  it('reads "T05swbreak:;thread:1;" as a software breakpoint without a reason value', () => {
    const stop = signalStop('T05swbreak:;thread:1;');
    expect(stop.reason).toBe('swbreak');
    expect(stop.reasonValue).toBeUndefined();
    expect(stop.thread).toBe('1');
  });

  it('keeps the data address of a watchpoint stop as the reason value', () => {
    const stop = signalStop('T05watch:20000010;thread:1;');
    expect(stop.reason).toBe('watch');
    expect(stop.reasonValue).toBe('20000010');
  });

  it('takes names that start with hex letters (awatch, core, create) as names, not registers', () => {
    const stop = signalStop('T05awatch:2000;core:a;create:;');
    expect(stop.registers.size).toBe(0);
    expect(stop.core).toBe(10);
    expect(stop.reason).toBe('create');
  });

  it('accepts every stop reason of the manual', () => {
    for (const reason of STOP_REASONS) expect(signalStop(`T05${reason}:1;`).reason).toBe(reason);
  });

  it('ignores pairs with unknown names, so the protocol can grow', () => {
    const stop = signalStop('T05threads:1,2;thread-pcs:800,900;hwbreak:;');
    expect(stop.reason).toBe('hwbreak');
    expect(stop.registers.size).toBe(0);
  });

  it('tolerates a T reply whose last pair lacks the final ";"', () => {
    expect(signalStop('T02thread:1').thread).toBe('1');
  });

  it('keeps "xx" bytes of an unavailable register as sent', () => {
    expect(signalStop('T0519:xxxxxxxx;').registers.get(25)).toBe('xxxxxxxx');
  });

  it('reads "W00" as an exit with status 0', () => {
    expect(parseStopReply('W00')).toEqual({ kind: 'exited', code: 0 });
  });

  it('reads the process id of "W01;process:a"', () => {
    expect(parseStopReply('W01;process:a')).toEqual({ kind: 'exited', code: 1, pid: 10 });
  });

  it('reads "X09" as killed by signal 9', () => {
    expect(parseStopReply('X09')).toEqual({ kind: 'killed', signal: 9 });
    expect(parseStopReply('X0b;process:1f')).toEqual({ kind: 'killed', signal: 11, pid: 31 });
  });

  it('reads "N" as no resumed threads left', () => {
    expect(parseStopReply('N')).toEqual({ kind: 'no-resumed' });
  });
});

describe('parseStopReply on what is not a stop reply', () => {
  const notStops: Array<[string, string]> = [
    ['', 'empty reply (unsupported)'],
    ['OK', 'OK'],
    ['E01', 'error'],
    ['O48656c6c6f0a', 'console output'],
    ['S5', 'one signal digit'],
    ['Szz', 'non-hex signal'],
    ['S05;', 'S with extra text'],
    ['T0', 'T with one digit'],
    ['T05thread', 'pair without colon'],
    ['T05thread:;', 'empty thread id'],
    ['T05thread:p1.zz;', 'malformed thread id'],
    ['T050f:123;', 'register value of odd length'],
    ['T050f:12g4;', 'register value not hex'],
    ['T05core:zz;', 'core not hex'],
    ['T05ffffffffffffffffffff:00;', 'register number too large'],
    ['W', 'exit without status'],
    ['Wzz', 'non-hex exit status'],
    ['W00;pid:1', 'unknown field after exit status'],
    ['W00;process:', 'empty process id'],
    ['X', 'killed without signal'],
    ['N05', 'obsolete N with fields'],
    ['F1,2,3', 'file-I/O request'],
  ];
  for (const [payload, why] of notStops) {
    it(`rejects ${JSON.stringify(payload)} (${why}) with ReplyFormatError`, () => {
      expect(() => parseStopReply(payload)).toThrow(ReplyFormatError);
    });
  }

  it('quotes the reply in the error', () => {
    try {
      parseStopReply('OK');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ReplyFormatError);
      expect((err as ReplyFormatError).reply).toBe('OK');
      expect((err as ReplyFormatError).message).toContain('"OK"');
    }
  });
});

describe('parseStopReply under fuzzing', () => {
  const onlyReplyFormatErrors = (payload: string): void => {
    try {
      parseStopReply(payload);
    } catch (err) {
      if (!(err instanceof ReplyFormatError)) throw new Error(`${JSON.stringify(payload)} threw ${String(err)}`);
    }
  };

  it('throws nothing but ReplyFormatError on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => onlyReplyFormatErrors(s)), { numRuns: 2000 });
  });

  it('throws nothing but ReplyFormatError on strings made of stop-reply pieces', () => {
    const piece = fc.constantFrom('S', 'T', 'W', 'X', 'N', '0', '5', 'a', 'f', 'x', ':', ';', '.', '-', 'p', 'thread', 'core', 'watch', 'process', 'swbreak', '1f');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (parts) => onlyReplyFormatErrors(parts.join(''))),
      { numRuns: 3000 },
    );
  });

  it('parses back any well-formed T reply it is given', () => {
    const hexByte = fc.integer({ min: 0, max: 255 }).map((b) => b.toString(16).padStart(2, '0'));
    const regValue = fc.array(hexByte, { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 300 }), { maxLength: 6 }),
        fc.array(regValue, { minLength: 6, maxLength: 6 }),
        fc.option(fc.integer({ min: 1, max: 0xffff })),
        fc.option(fc.constantFrom(...STOP_REASONS)),
        (signal, regnums, values, thread, reason) => {
          let payload = `T${signal.toString(16).padStart(2, '0')}`;
          regnums.forEach((n, k) => (payload += `${n.toString(16)}:${values[k]};`));
          if (thread !== null) payload += `thread:${thread.toString(16)};`;
          if (reason !== null) payload += `${reason}:;`;
          const stop: StopReply = parseStopReply(payload);
          expect(stop.kind).toBe('signal');
          if (stop.kind !== 'signal') return;
          expect(stop.signal).toBe(signal);
          expect([...stop.registers.keys()]).toEqual(regnums);
          regnums.forEach((n, k) => expect(stop.registers.get(n)).toBe(values[k]));
          expect(stop.thread).toBe(thread === null ? undefined : thread.toString(16));
          expect(stop.reason).toBe(reason ?? undefined);
        },
      ),
    );
  });
});

describe('signalName', () => {
  it('names the signals a debugger meets on a Cortex-M target', () => {
    expect(signalName(0)).toBe('none');
    expect(signalName(2)).toBe('SIGINT');
    expect(signalName(5)).toBe('SIGTRAP');
    expect(signalName(11)).toBe('SIGSEGV');
    expect(signalName(10)).toBe('SIGBUS');
    expect(signalName(4)).toBe('SIGILL');
  });

  it('falls back to the number for signals without a common name', () => {
    expect(signalName(200)).toBe('signal 200');
    expect(signalName(143)).toBe('unknown signal');
  });
});
