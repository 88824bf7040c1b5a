/**
 * GdbClient through the JLinkGDBServer test double (test/helpers/jlink-proxy.ts)
 * in front of QEMU mps3-an547: what differs on J-Link — detection, no-ack
 * mode, binary X writes, p refused, upper-case register names, S05 stop
 * replies, `monitor go` instead of detach.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '../../lib/errors.js';
import { GdbClient, type GdbConnectOptions } from '../../lib/gdb/client.js';
import { hexEncode } from '../../lib/rsp/packet.js';
import { startJlinkProxy, type JlinkProxy, type JlinkProxyOptions } from '../helpers/jlink-proxy.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { DTCM, XPSR_THUMB, bootSymbol, callRegisters } from '../helpers/boot-an547.js';
import { u32 } from '../helpers/bytes.js';
import { closeAfterTest } from '../helpers/cleanup.js';

const RESET = bootSymbol('Reset_Handler');
const IDLE = bootSymbol('idle');
const RT_ADD = bootSymbol('rt_add');
const RT_SPIN = bootSymbol('rt_spin');
const RT_FAULT = bootSymbol('rt_fault');
const RT_COUNTER = bootSymbol('rt_counter');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const monitorPacket = (command: string): string => `qRcmd,${hexEncode(Buffer.from(command))}`;

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

/** A client through proxy `p`, closed after the test (before the proxy; a test may close it first). */
async function client(p: JlinkProxy, options: GdbConnectOptions = {}): Promise<GdbClient> {
  return closeAfterTest(await GdbClient.connect({ host: p.host, port: p.port }, options), { ignoreErrors: true });
}

/** A proxy and a client through it; the core is reset (halted at the reset vector) first. */
async function session(
  proxyOptions?: JlinkProxyOptions,
  clientOptions: GdbConnectOptions = {},
): Promise<{ p: JlinkProxy; gdb: GdbClient }> {
  const p = await proxy(proxyOptions);
  const gdb = await client(p, clientOptions);
  await gdb.monitor('reset');
  return { p, gdb };
}

/** Requests the client sent since `from` (an index into the proxy's log). */
const since = (p: JlinkProxy, from: number): string[] => p.requests.slice(from);

describe('GdbClient on the J-Link dialect', () => {
  it('detects jlink, switches to no-ack mode and learns PacketSize 0x4000', async () => {
    const { p, gdb } = await session();
    expect(gdb.server.kind).toBe('jlink');
    expect(gdb.server.dialect.resume).toBe('monitor-go');
    expect(gdb.server.noAck).toBe(true);
    expect(p.requests).toContain('QStartNoAckMode');
    expect(gdb.server.packetSize).toBe(0x4000);
    expect(gdb.initialStop).toEqual({ kind: 'signal', signal: 5, registers: new Map() }); // J-Link's bare S05
  });

  it('finds the upper-case register names by lower-case name (xpsr = 25)', async () => {
    const { gdb } = await session();
    expect(gdb.register('xpsr')).toMatchObject({ name: 'XPSR', regnum: 25 });
    expect(gdb.register('pc')).toMatchObject({ name: 'PC', regnum: 15 });
    expect(gdb.register('sp')).toMatchObject({ name: 'SP', regnum: 13 });
    expect(gdb.register('r13').name).toBe('SP');
    expect(gdb.register('msp')).toMatchObject({ name: 'MSP', regnum: 26 });
    expect(gdb.register('control').regnum).toBe(31);
    const regs = await gdb.readRegisters(['pc', 'xpsr', 'sp']);
    expect(regs.pc).toBe(RESET);
    expect(regs.xpsr & XPSR_THUMB).toBe(XPSR_THUMB); // QEMU resets xPSR to 0x41000000: Z and T
    expect(regs.sp).toBe(0x20080000);
  });

  it('writes memory with binary X packets (escaped #, $, }, *) and reads it back identical', async () => {
    const { p, gdb } = await session();
    const data = new Uint8Array(0x9000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 9)) & 0xff;
    data.set([0x23, 0x24, 0x7d, 0x2a, 0x03, 0x00, 0x7d, 0x7d], 0x3ffc); // across the first packet's end
    const from = p.requests.length;
    await gdb.writeMemory(DTCM + 1, data);
    expect(gdb.server.binaryWrite).toBe(true);
    const sent = since(p, from);
    expect(sent[0]).toBe(`X${(DTCM + 1).toString(16)},0:`); // the probe
    const writes = sent.slice(1);
    expect(writes.length).toBeGreaterThanOrEqual(3); // 36 KiB in packets of < 16 KiB
    expect(writes.every((r) => r.startsWith('X'))).toBe(true);
    expect(writes.every((r) => r.length + 4 <= 0x4000 + 4)).toBe(true); // payload within PacketSize
    expect(sent.some((r) => r.startsWith('M'))).toBe(false);
    const back = await gdb.readMemory(DTCM + 1, data.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
  });

  it('reads registers with g (J-Link answers p with E01); a register g lacks gives UnsupportedError', async () => {
    const { p, gdb } = await session();
    const from = p.requests.length;
    await gdb.readRegisters(['r0', 'r12', 'lr', 'pc', 'xpsr']);
    expect(since(p, from)).toEqual(['g']);
    const err = await gdb.readRegisters(['msp']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/register MSP: p answered 'E01'/);
    // The link is fine afterwards.
    expect((await gdb.readRegisters(['pc'])).pc).toBe(RESET);
  });

  it('writes several registers with one G', async () => {
    const { p, gdb } = await session();
    await gdb.readRegisters(['pc']);
    const from = p.requests.length;
    await gdb.writeRegisters({ r0: 0x11111111, r1: 0x22222222, r7: 0x77777777 });
    const sent = since(p, from);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^G[0-9a-f]{136}$/);
    const regs = await gdb.readRegisters(['r0', 'r1', 'r7', 'pc']);
    expect(regs).toEqual({ r0: 0x11111111, r1: 0x22222222, r7: 0x77777777, pc: RESET });
  });

  it('on an older J-Link that refuses P (E01), writes single registers with G too', async () => {
    const { p, gdb } = await session({ allowP: false });
    const from = p.requests.length;
    await gdb.writeRegisters({ r5: 0x55555555 });
    await gdb.writeRegisters({ r6: 0x66666666 });
    const sent = since(p, from).map((r) => r.slice(0, 2));
    // g for the layout, P refused, G; then straight to G.
    expect(sent).toEqual(['g', 'P5', 'G0', 'G0']);
    // The core really has them: run nothing, just read back through a fresh g.
    const regs = await gdb.readCoreRegisters();
    expect(regs.r5).toBe(0x55555555);
    expect(regs.r6).toBe(0x66666666);
  });

  it('stops at a breakpoint on continue (S05) with the right result, in 3 round trips per call', async () => {
    const { gdb } = await session();
    await gdb.insertBreakpoint(IDLE, 'hw');
    for (const [a, b] of [
      [40, 2],
      [0x7fffffff, 1],
    ] as const) {
      await gdb.writeRegisters(callRegisters(RT_ADD, [a, b]));
      const before = gdb.stats.roundTrips;
      const result = await gdb.continue({ timeoutMs: 5000 });
      expect(result).toEqual({ stop: { kind: 'signal', signal: 5, registers: new Map() }, interrupted: false });
      const regs = await gdb.readRegisters(['r0', 'pc']);
      expect(gdb.stats.roundTrips - before).toBe(2); // c, g (the G was before)
      expect(regs.pc).toBe(IDLE);
      expect(regs.r0).toBe((a + b) >>> 0);
    }
  });

  it('interrupts a spinning core after the timeout (^C → S02) and stays usable', async () => {
    const { gdb } = await session();
    await gdb.writeMemory(RT_COUNTER, new Uint8Array(4));
    await gdb.writeRegisters(callRegisters(RT_SPIN, []));
    const result = await gdb.continue({ timeoutMs: 200 });
    expect(result.interrupted).toBe(true);
    expect(result.stop).toMatchObject({ kind: 'signal', signal: 2 });
    expect(u32(await gdb.readMemory(RT_COUNTER, 4))).toBeGreaterThan(1000);
    const { pc } = await gdb.readRegisters(['pc']);
    expect(pc).toBeGreaterThanOrEqual(RT_SPIN);
    expect(pc).toBeLessThan(RT_FAULT);
  });

  it('monitor commands: output from O packets; an unknown command (empty reply) is UnsupportedError', async () => {
    const { gdb } = await session();
    expect(await gdb.monitor('speed 4000')).toBe('Target interface speed set to 4000 kHz\n');
    expect(await gdb.monitor('memU32 0x00000004')).toMatch(/Reading from address 0x00000004 \(Data = 0x000000C1\)/);
    await expect(gdb.monitor('frobnicate')).rejects.toBeInstanceOf(UnsupportedError);
  });

  it('monitor reset (the dialect reset-halt command) resets the core and cached registers are dropped', async () => {
    const { gdb } = await session();
    await gdb.writeRegisters(callRegisters(RT_ADD, [1, 2]));
    expect((await gdb.readRegisters(['pc'])).pc).toBe(RT_ADD);
    expect(gdb.server.dialect.resetHaltCommand).toBe('reset');
    await gdb.monitor(gdb.server.dialect.resetHaltCommand!);
    expect((await gdb.readRegisters(['pc'])).pc).toBe(RESET);
  });

  it('close({ resume: true }) sends monitor go, not D, and the core runs', async () => {
    const { p, gdb } = await session();
    await gdb.insertBreakpoint(IDLE, 'hw');
    await gdb.writeMemory(RT_COUNTER, new Uint8Array(4));
    await gdb.writeRegisters(callRegisters(RT_SPIN, []));
    const from = p.requests.length;
    await gdb.close({ resume: true });
    const sent = since(p, from);
    expect(sent).toEqual([`z1,${IDLE.toString(16)},2`, monitorPacket('go')]);
    expect(sent).not.toContain('D');
    await sleep(100);
    // A new session (the proxy's next upstream link stops the VM when it connects).
    const again = await client(await proxy());
    expect(u32(await again.readMemory(RT_COUNTER, 4))).toBeGreaterThan(1000);
  });

  it('close() leaves the core halted and sends neither D nor monitor go', async () => {
    const { p, gdb } = await session();
    await gdb.writeMemory(RT_COUNTER, new Uint8Array(4));
    await gdb.writeRegisters(callRegisters(RT_SPIN, []));
    const from = p.requests.length;
    await gdb.close();
    expect(since(p, from)).toEqual([]);
    await sleep(100);
    const q = await proxy();
    const again = await client(q);
    expect(u32(await again.readMemory(RT_COUNTER, 4))).toBe(0);
    expect((await again.readRegisters(['pc'])).pc).toBe(RT_SPIN);
  });

  it('with noAck: false stays in ack mode and still works', async () => {
    const { p, gdb } = await session(undefined, { noAck: false });
    expect(gdb.server.noAck).toBe(false);
    expect(p.requests).not.toContain('QStartNoAckMode');
    await gdb.writeMemory(DTCM, Uint8Array.of(0x23, 0x24, 0x7d, 0x2a));
    expect([...(await gdb.readMemory(DTCM, 4))]).toEqual([0x23, 0x24, 0x7d, 0x2a]);
  });
});
