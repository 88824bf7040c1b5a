/**
 * The JLinkGDBServer test double (test/helpers/jlink-proxy.ts) against a real
 * QEMU mps3-an547 running the boot image: driven by a raw RspConnection and by
 * an independent client, gdb-multiarch.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RspConnection } from '../lib/rsp/connection.js';
import { escapeBinary, frameText, hexDecode, hexEncode } from '../lib/rsp/packet.js';
import { JLINK_QSUPPORTED, JLINK_REGISTERS, JLINK_TARGET_XML, startJlinkProxy, type JlinkProxy, type JlinkProxyOptions } from './helpers/jlink-proxy.js';
import { startQemu, type QemuInstance } from './helpers/qemu.js';
import { bootSymbol } from './helpers/boot-an547.js';
import { closeAfterTest } from './helpers/cleanup.js';

const RESET = bootSymbol('Reset_Handler');
const IDLE = bootSymbol('idle');
const RT_ADD = bootSymbol('rt_add');
const RT_SPIN = bootSymbol('rt_spin');
const RT_COUNTER = bootSymbol('rt_counter');
const STACK_TOP = 0x20080000;
const DTCM_BUF = 0x20000000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const u32le = (v: number): string => hexEncode(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff));
const fromLe = (hex: string): number => {
  const b = hexDecode(hex);
  return ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
};
/** Register `i` (0–15 = r0–r15, 16 = xpsr) of a `g` reply. */
const reg = (g: string, i: number): number => fromLe(g.slice(8 * i, 8 * i + 8));

let qemu: QemuInstance;

beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  await qemu?.stop();
});

/** A proxy in front of the file's QEMU, closed after the test. */
async function proxy(options?: JlinkProxyOptions): Promise<JlinkProxy> {
  return closeAfterTest(await startJlinkProxy(qemu.connectOptions, options));
}

async function connect(p: JlinkProxy): Promise<RspConnection> {
  const socket = net.connect({ host: p.host, port: p.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  const c = new RspConnection(socket);
  c.on('error', () => undefined);
  return closeAfterTest(c);
}

/** Connects like rspflash/GDB: qSupported, no-ack mode, `?`. */
async function session(options?: JlinkProxyOptions): Promise<{ p: JlinkProxy; c: RspConnection }> {
  const p = await proxy(options);
  const c = await connect(p);
  expect(await c.requestText('qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+')).toBe(JLINK_QSUPPORTED);
  expect(await c.requestText('QStartNoAckMode')).toBe('OK');
  c.setNoAck();
  expect(await c.requestText('?')).toBe('S05');
  return { p, c };
}

/** `g`-order values: r0–r12, sp, lr, pc, xpsr. */
function gHex(pc: number, r: Partial<Record<'r0' | 'r1' | 'lr' | 'sp', number>> = {}): string {
  const values = Array.from({ length: 17 }, () => 0);
  values[0] = r.r0 ?? 0;
  values[1] = r.r1 ?? 0;
  values[13] = r.sp ?? STACK_TOP;
  values[14] = r.lr ?? (IDLE | 1);
  values[15] = pc;
  values[16] = 0x01000000; // Thumb
  return values.map(u32le).join('');
}

async function setCore(c: RspConnection, pc: number, r: Parameters<typeof gHex>[1] = {}): Promise<void> {
  expect(await c.requestText(`G${gHex(pc, r)}`)).toBe('OK');
}

async function monitor(c: RspConnection, command: string): Promise<{ reply: string; output: string }> {
  let output = '';
  const reply = await c.requestText(`qRcmd,${hexEncode(Buffer.from(command))}`, { onOutput: (t) => (output += t) });
  return { reply, output };
}

async function readU32(c: RspConnection, addr: number): Promise<number> {
  return fromLe(await c.requestText(`m${addr.toString(16)},4`));
}

describe('J-Link dialect over a raw RSP connection', () => {
  it('answers qSupported, no-ack mode, ? and thread queries like JLinkGDBServer', async () => {
    const { c } = await session();
    expect(await c.requestText('qAttached')).toBe('1');
    expect(await c.requestText('qC')).toBe('QC0000dead');
    expect(await c.requestText('qfThreadInfo')).toBe('m0000dead');
    expect(await c.requestText('qsThreadInfo')).toBe('l');
    expect(await c.requestText('Hg0')).toBe('OK');
    expect(await c.requestText('vMustReplyEmpty')).toBe('');
    expect(await c.requestText('vCont?')).toBe('');
    expect(await c.requestText('vCont;c')).toBe('');
    expect(await c.requestText('qXfer:memory-map:read::0,400')).toBe('');
    expect(await c.requestText('qTStatus')).toBe('');
    expect(await c.requestText('?')).toBe('S05'); // second `?`: answered locally, QEMU's breakpoints survive
  });

  it('serves a J-Link target.xml in off,len chunks', async () => {
    const { c } = await session();
    let xml = '';
    for (;;) {
      const reply = await c.requestText(`qXfer:features:read:target.xml:${xml.length.toString(16)},80`);
      expect(reply[0]).toMatch(/[ml]/);
      xml += reply.slice(1);
      if (reply[0] === 'l') break;
      expect(reply.length).toBe(0x81);
    }
    expect(xml).toBe(JLINK_TARGET_XML);
    for (const r of JLINK_REGISTERS) expect(xml).toContain(`name="${r.name}" bitsize="32" regnum="${r.regnum}"`);
    expect(xml).toContain('name="XPSR" bitsize="32" regnum="25"');
    expect(await c.requestText('qXfer:features:read:arm-m-profile.xml:0,400')).toBe('E00');
  });

  it('g returns 17 registers, G writes them, p answers E01, P maps J-Link numbers to QEMU', async () => {
    const { c } = await session();
    const g = await c.requestText('g');
    expect(g).toMatch(/^[0-9a-f]{136}$/);
    const values = gHex(RT_ADD, { r0: 0x11223344, r1: 0x55667788, sp: 0x20070000 });
    await setCore(c, RT_ADD, { r0: 0x11223344, r1: 0x55667788, sp: 0x20070000 });
    expect(await c.requestText('g')).toBe(values);
    expect(await c.requestText('p0')).toBe('E01');
    expect(await c.requestText('pf')).toBe('E01');
    expect(await c.requestText('P2=efbeadde')).toBe('OK');
    expect(await c.requestText('P19=000000f0')).toBe('OK'); // xpsr (J-Link 25) = NZCV, Thumb clear
    const after = await c.requestText('g');
    expect(reg(after, 2)).toBe(0xdeadbeef);
    expect(reg(after, 16) >>> 24).toBe(0xf0);
    for (const n of [0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x10, 0x18]) {
      expect(await c.requestText(`P${n.toString(16)}=00000000`)).toBe('E01'); // MSP…CONTROL: QEMU 7.2 lacks them; 16–24 do not exist
    }
    expect(await c.requestText(`G${'00'.repeat(16)}`)).toBe('E01'); // not 17 registers
    await setCore(c, IDLE);
  });

  it('older J-Link (allowP: false) answers E01 to P as well', async () => {
    const { c } = await session({ allowP: false });
    expect(await c.requestText('P0=01000000')).toBe('E01');
    expect(await c.requestText('p0')).toBe('E01');
  });

  it('X writes escaped binary (split into QEMU-sized M), m reads up to 0x4000 bytes in one request', async () => {
    const { c } = await session();
    const data = new Uint8Array(0x3000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    data.set([0x23, 0x24, 0x7d, 0x2a, 0x03, 0x00], 0x10); // # $ } * ^C NUL
    const header = Buffer.from(`X${DTCM_BUF.toString(16)},${data.length.toString(16)}:`, 'latin1');
    const packet = Buffer.concat([header, escapeBinary(data)]);
    expect(packet.length).toBeLessThanOrEqual(0x4000);
    expect(await c.requestText(packet)).toBe('OK');
    expect(await c.requestText(`m${DTCM_BUF.toString(16)},3000`)).toBe(hexEncode(data));
    expect(await c.requestText(`X${DTCM_BUF.toString(16)},0:`)).toBe('OK');
    expect((await c.requestText(`m${DTCM_BUF.toString(16)},5000`)).length).toBe(0x4000 * 2); // clamped to PacketSize

    const hex = hexEncode(data.subarray(0, 0x1800).map((b) => b ^ 0xff));
    expect(await c.requestText(`M${(DTCM_BUF + 4).toString(16)},1800:${hex}`)).toBe('OK');
    expect(await c.requestText(`m${(DTCM_BUF + 4).toString(16)},1800`)).toBe(hex);
    expect(await c.requestText(`X${DTCM_BUF.toString(16)},10:abc`)).toBe('E01'); // length mismatch
  });

  it('Z0 breakpoint + c stops with S05; z0 removes it; s steps with S05', async () => {
    const { c } = await session();
    await setCore(c, RT_ADD, { r0: 40, r1: 2 });
    expect(await c.requestText(`Z0,${IDLE.toString(16)},2`)).toBe('OK');
    expect(await c.requestText('c', { timeoutMs: 5000 })).toBe('S05');
    const g = await c.requestText('g');
    expect(reg(g, 15)).toBe(IDLE);
    expect(reg(g, 0)).toBe(42);
    expect(await c.requestText(`z0,${IDLE.toString(16)},2`)).toBe('OK');

    await setCore(c, RT_ADD, { r0: 1, r1: 2 });
    expect(await c.requestText(`Z1,${IDLE.toString(16)},2`)).toBe('OK');
    expect(await c.requestText('s', { timeoutMs: 5000 })).toBe('S05');
    expect(reg(await c.requestText('g'), 15)).toBe(RT_ADD + 2);
    expect(await c.requestText('c', { timeoutMs: 5000 })).toBe('S05');
    expect(reg(await c.requestText('g'), 15)).toBe(IDLE);
    expect(await c.requestText(`z1,${IDLE.toString(16)},2`)).toBe('OK');
  });

  it('an interrupt (0x03) stops a running loop with S02, also right after c', async () => {
    const { c } = await session();
    expect(await c.requestText(`M${RT_COUNTER.toString(16)},4:00000000`)).toBe('OK');
    await setCore(c, RT_SPIN);
    const stopped = c.requestText('c', { timeoutMs: Infinity });
    await sleep(100);
    c.interrupt();
    expect(await stopped).toBe('S02');
    const counter = await readU32(c, RT_COUNTER);
    expect(counter).toBeGreaterThan(1000);
    const pc = reg(await c.requestText('g'), 15);
    expect(pc).toBeGreaterThanOrEqual(RT_SPIN);
    expect(pc).toBeLessThan(RT_SPIN + 12);

    const again = c.requestText('c', { timeoutMs: 5000 });
    c.interrupt(); // same chunk as the `c`, before the proxy sent it upstream
    expect(await again).toBe('S02');
    await sleep(50);
    expect(await readU32(c, RT_COUNTER)).toBe(await readU32(c, RT_COUNTER)); // halted
  });

  it('D answers empty and leaves the target halted', async () => {
    const { c } = await session();
    await setCore(c, RT_SPIN);
    expect(await c.requestText('D')).toBe('');
    const before = await readU32(c, RT_COUNTER);
    await sleep(50);
    expect(await readU32(c, RT_COUNTER)).toBe(before);
    expect(reg(await c.requestText('g'), 15)).toBe(RT_SPIN);
  });

  it('monitor reset resets through QEMU (system_reset) and keeps the core halted at the reset handler', async () => {
    const { c } = await session();
    await setCore(c, RT_SPIN, { r0: 0x55 });
    expect(await monitor(c, 'reset')).toEqual({ reply: 'OK', output: 'Resetting target\n' });
    const g = await c.requestText('g');
    expect(reg(g, 15)).toBe(RESET);
    expect(reg(g, 13)).toBe(STACK_TOP);
    expect(reg(g, 0)).toBe(0);
    expect(reg(g, 16) & 0x01000000).toBe(0x01000000);
    await sleep(50);
    expect(await c.requestText('g')).toBe(g); // still halted
    expect((await monitor(c, 'reset 0')).reply).toBe('OK');
  });

  it('monitor memU32, reg, regs, sleep, speed; unknown commands answer empty', async () => {
    const { c } = await session();
    expect(await c.requestText(`M${DTCM_BUF.toString(16)},4:78563412`)).toBe('OK');
    expect(await monitor(c, `memU32 0x${DTCM_BUF.toString(16)}`)).toEqual({
      reply: 'OK',
      output: 'Reading from address 0x20000000 (Data = 0x12345678)\n',
    });
    expect(await monitor(c, 'memU32 0x20000000 = 0xCAFEF00D')).toEqual({ reply: 'OK', output: 'Writing 0xCAFEF00D to address 0x20000000\n' });
    expect(await readU32(c, DTCM_BUF)).toBe(0xcafef00d);
    await setCore(c, IDLE, { r1: 0xabc });
    expect(await monitor(c, 'reg pc')).toEqual({ reply: 'OK', output: `Reading register (PC = 0x${IDLE.toString(16).toUpperCase().padStart(8, '0')})\n` });
    expect((await monitor(c, 'reg R1')).output).toBe('Reading register (R1 = 0x00000ABC)\n');
    expect((await monitor(c, 'reg msp')).output).toMatch(/^ERROR/);
    expect((await monitor(c, 'regs')).output).toContain('R1 = 0x00000ABC');
    const t0 = Date.now();
    expect(await monitor(c, 'sleep 30')).toEqual({ reply: 'OK', output: '' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(await monitor(c, 'speed 4000')).toEqual({ reply: 'OK', output: 'Target interface speed set to 4000 kHz\n' });
    expect(await monitor(c, 'no-such-command')).toEqual({ reply: '', output: '' });
  });

  it('monitor go runs the target without a reply; monitor halt and c + ^C stop it', async () => {
    const { c } = await session();
    expect(await c.requestText(`M${RT_COUNTER.toString(16)},4:00000000`)).toBe('OK');
    await setCore(c, RT_SPIN);
    expect(await monitor(c, 'go')).toEqual({ reply: 'OK', output: '' });
    await sleep(50);
    expect(await c.requestText(`m${RT_COUNTER.toString(16)},4`)).toBe('E01'); // nothing goes upstream while it runs
    expect(await c.requestText('?')).toBe('S05');
    expect(await monitor(c, 'halt')).toEqual({ reply: 'OK', output: '' });
    const counter = await readU32(c, RT_COUNTER);
    expect(counter).toBeGreaterThan(1000);
    await sleep(30);
    expect(await readU32(c, RT_COUNTER)).toBe(counter);

    expect((await monitor(c, 'go')).reply).toBe('OK');
    const stopped = c.requestText('c', { timeoutMs: 5000 }); // attaches to the running target
    await sleep(30);
    c.interrupt();
    expect(await stopped).toBe('S02');
    expect(await readU32(c, RT_COUNTER)).toBeGreaterThan(counter);

    expect((await monitor(c, 'go')).reply).toBe('OK');
    expect(await monitor(c, 'reset')).toEqual({ reply: 'OK', output: 'Resetting target\n' }); // halts first
    expect(reg(await c.requestText('g'), 15)).toBe(RESET);
  });

  it('logs every request in options.log (the same array as proxy.requests)', async () => {
    const log: string[] = [];
    const { p, c } = await session({ log });
    await c.requestText('g');
    await c.requestText(`m${DTCM_BUF.toString(16)},4`);
    expect(p.requests).toBe(log);
    expect(log).toEqual(['qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+', 'QStartNoAckMode', '?', 'g', `m${DTCM_BUF.toString(16)},4`]);
  });
});

describe('J-Link connection handling', () => {
  /** Raw bytes from a socket, with a wait for some text to appear. */
  function reader(socket: net.Socket): { text: () => string; waitFor: (s: string) => Promise<void> } {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    return {
      text: () => text,
      waitFor: async (s) => {
        for (let i = 0; i < 200 && !text.includes(s); i++) await sleep(10);
        expect(text).toContain(s);
      },
    };
  }

  it('verifies checksums: "-" in ack mode, silently ignored in no-ack mode', async () => {
    const p = await proxy();
    const socket = net.connect({ host: p.host, port: p.port });
    await new Promise((r) => socket.once('connect', r));
    const r = reader(socket);
    socket.write(frameText('qAttached'));
    await r.waitFor('$1#31');
    expect(r.text()).toBe('+$1#31');
    socket.write('+$qAttached#00');
    await r.waitFor('-');
    expect(r.text()).toBe('+$1#31-');
    socket.write('-'); // a nack makes the proxy resend its last reply
    await r.waitFor('-$1#31');
    socket.write(Buffer.concat([Buffer.from('+'), frameText('QStartNoAckMode')]));
    await r.waitFor('$OK#9a');
    socket.write('+$qAttached#00');
    socket.write(frameText('qC'));
    await r.waitFor('$QC0000dead');
    await sleep(20);
    expect(r.text()).toBe(`+$1#31-$1#31+$OK#9a${Buffer.from(frameText('QC0000dead')).toString('latin1')}`);
    expect(p.requests).toEqual(['qAttached', 'QStartNoAckMode', 'qC']); // damaged packets are not requests
    socket.destroy();
  });

  it('a ^C after monitor go stops the target and sends the stop reply S02', async () => {
    const p = await proxy();
    const socket = net.connect({ host: p.host, port: p.port });
    await new Promise((r) => socket.once('connect', r));
    const r = reader(socket);
    const setPc = `G${gHex(RT_SPIN)}`;
    socket.write(frameText('QStartNoAckMode'));
    await r.waitFor('$OK#9a');
    socket.write(Buffer.concat([Buffer.from('+'), frameText(setPc), frameText(`qRcmd,${hexEncode(Buffer.from('go'))}`)]));
    await r.waitFor('$OK#9a$OK#9a$OK#9a');
    await sleep(30);
    socket.write(Uint8Array.of(0x03));
    await r.waitFor('$S02#b5');
    expect(r.text()).toBe('+$OK#9a$OK#9a$OK#9a$S02#b5');
    socket.destroy();
  });

  it('serves one client at a time', async () => {
    const { p, c } = await session();
    const second = net.connect({ host: p.host, port: p.port });
    await new Promise((r) => second.once('close', r));
    expect(await c.requestText('qAttached')).toBe('1');
  });

  it('a client that disconnects while the target runs closes the upstream link; the next client finds it halted', async () => {
    const { c } = await session();
    expect(await c.requestText(`M${RT_COUNTER.toString(16)},4:00000000`)).toBe('OK');
    await setCore(c, RT_SPIN);
    c.requestText('c', { timeoutMs: Infinity }).catch(() => undefined);
    await sleep(50);
    c.close();

    const next = await session();
    const counter = await readU32(next.c, RT_COUNTER);
    expect(counter).toBeGreaterThan(1000);
    await sleep(30);
    expect(await readU32(next.c, RT_COUNTER)).toBe(counter); // QEMU halts the VM when a gdb client connects
  });

  it('close() ends the client and the upstream link', async () => {
    const { p, c } = await session();
    const closed = new Promise((r) => c.once('close', r));
    await p.close();
    await closed;
    expect(c.closed).toBe(true);
    await expect(c.requestText('g')).rejects.toThrow();
    const again = await session(); // QEMU accepts the next upstream connection
    expect(await again.c.requestText('qAttached')).toBe('1');
  });

  it('a QEMU that goes away closes the client', async () => {
    const own = await startQemu({ machine: 'mps3-an547', transport: 'tcp' });
    try {
      const p = closeAfterTest(await startJlinkProxy(own.connectOptions));
      const c = await connect(p);
      expect(await c.requestText('qSupported')).toBe(JLINK_QSUPPORTED);
      const closed = new Promise((r) => c.once('close', r));
      await own.stop();
      await closed;
      expect(c.closed).toBe(true);
    } finally {
      await own.stop();
    }
  });
});

describe('gdb-multiarch as an independent client', () => {
  function gdb(port: number, commands: string[]): Promise<{ stdout: string; stderr: string }> {
    const args = ['-nx', '-batch', '-ex', 'set pagination off', '-ex', `target remote 127.0.0.1:${port}`];
    for (const command of commands) args.push('-ex', command);
    return new Promise((resolve) => {
      execFile('gdb-multiarch', args, { timeout: 30_000 }, (_err, stdout, stderr) => resolve({ stdout, stderr }));
    });
  }

  it('reads registers and memory, writes a register, resets via monitor and steps', async () => {
    const { p, c } = await session();
    expect(await c.requestText(`M${DTCM_BUF.toString(16)},10:0100000002000000030000000400adde`)).toBe('OK');
    c.close();
    await sleep(50);
    p.requests.length = 0;

    const { stdout, stderr } = await gdb(p.port, [
      'info registers',
      `x/4wx 0x${DTCM_BUF.toString(16)}`,
      'set $r0 = 0x1234abcd',
      'p/x $r0',
      `set {int}0x${(DTCM_BUF + 0x40).toString(16)} = 0x2a2a2324`,
      `x/1wx 0x${(DTCM_BUF + 0x40).toString(16)}`,
      'monitor reset',
      'maintenance flush register-cache',
      'p/x $pc',
      'stepi',
      'p/x $pc',
      'monitor memU32 0x20000000',
    ]);
    // info registers: the 17 registers of `g`; MSP (not in `g`, `p` → E01) stops the listing, as with an old J-Link.
    expect(stdout).toMatch(/^R0\s+0x/m);
    expect(stdout).toMatch(/^PC\s+0x/m);
    expect(stdout).toMatch(/^XPSR\s+0x/m);
    expect(stderr).toContain('Could not fetch register "MSP"; remote failure reply \'E01\'');
    expect(stdout).toMatch(/0x20000000:\s+0x00000001\s+0x00000002\s+0x00000003\s+0xdead0004/);
    expect(stdout).toContain('$1 = 0x1234abcd');
    expect(stdout).toMatch(/0x20000040:\s+0x2a2a2324/);
    expect(stderr + stdout).toContain('Resetting target');
    expect(stdout).toContain(`$2 = 0x${RESET.toString(16)}`);
    expect(stdout).toMatch(/\$3 = 0x([0-9a-f]+)/);
    const stepped = parseInt(/\$3 = 0x([0-9a-f]+)/.exec(stdout)![1]!, 16);
    expect(stepped).toBeGreaterThan(RESET);
    expect(stepped).toBeLessThanOrEqual(RESET + 4);
    expect(stderr + stdout).toContain('Reading from address 0x20000000 (Data = 0x00000001)');

    const requests = p.requests;
    expect(requests).toContain('QStartNoAckMode');
    expect(requests).toContain('P0=cdab3412');
    expect(requests.some((r) => r.startsWith('X20000040,4:'))).toBe(true); // GDB found X and used it
    expect(requests).toContain('vCont?');
    expect(requests.at(-1)).toBe('D');
  });
});
