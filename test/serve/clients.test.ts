/**
 * More than one client, and faults on either side of the proxy, on QEMU
 * (mps3-an547, NOR simulator at 0xC0000000); and the proxy in front of the
 * JLinkGDBServer test double. Each fault ends typed and bounded, leaves the
 * upstream link or the target usable, and programs nothing that is reported
 * otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { loadFixtureAlgorithm } from '../helpers/algorithms.js';
import { startJlinkProxy } from '../helpers/jlink-proxy.js';
import type { ProxyHandle, ServeOptions } from '../../lib/serve/index.js';
import { GdbClient } from '../../lib/gdb/client.js';
import { withFlasher } from '../../lib/session.js';
import { createImage } from '../../lib/image/image.js';
import { frameText } from '../../lib/rsp/packet.js';
import { LAYOUT, buildTestElf, flashDataByte, gdbThroughProxy, startMi, withServeProxy, type TestElf } from './helpers.js';

const FLASH = 0xc0000000;
const algorithm = loadFixtureAlgorithm(FIXTURES.norSim);
let qemu: QemuInstance;
let elf: TestElf;
let dir: string;

beforeAll(async () => {
  [qemu, elf] = await Promise.all([startQemu({ machine: 'mps3-an547' }), buildTestElf()]);
  dir = await mkdtemp(join(tmpdir(), 'rspflash-serve-clients-'));
});
afterAll(async () => {
  await qemu?.stop();
});

/** Runs `body` with a proxy in front of `upstream` (QEMU unless given) and the lines it logged. */
const withProxy = <T>(body: (proxy: ProxyHandle, log: string[]) => Promise<T>, upstream: ServeOptions['upstream'] = qemu.connectOptions) =>
  withServeProxy({ upstream, algorithms: [algorithm], board: 'qemu-an547', dir }, body);

/** A raw client: sends bytes, collects what comes back. */
async function rawClient(path: string): Promise<{ socket: net.Socket; received: () => string; waitFor: (re: RegExp, ms?: number) => Promise<string> }> {
  const socket = net.connect({ path });
  await new Promise((resolve) => socket.once('connect', resolve));
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  const waitFor = async (re: RegExp, ms = 5000) => {
    const end = Date.now() + ms;
    while (!re.test(text)) {
      if (Date.now() > end) throw new Error(`no ${re} in ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return text;
  };
  return { socket, received: () => text, waitFor };
}

describe('a second client while gdb stays connected', () => {
  it("programs through the proxy while gdb is connected and halted; gdb's registers are untouched and it sees the new flash", async () => {
    await gdbWriteMemory(qemu.connectOptions, FLASH, new Uint8Array(0x2000).fill(0x11));
    await withProxy(async (proxy, log) => {
      const gdb = startMi(elf.path);
      try {
        await gdb.command('-interpreter-exec console "set architecture arm"');
        expect(await gdb.command(`-target-select extended-remote ${proxy.address}`)).toMatch(/\^connected/);
        await gdb.command('-interpreter-exec console "set $r4 = 0x1234abcd"');
        await gdb.command('-interpreter-exec console "set $pc = ram_fn"');
        // The second client: a script's withFlasher through the proxy.
        const data = Uint8Array.from({ length: 0x1000 }, (_, i) => i & 0xff);
        const report = await withFlasher({ gdb: `unix:${proxy.address}`, algorithm, board: 'qemu-an547', journal: false }, (f) =>
          f.program(createImage([{ address: FLASH + 0x800, data, source: 'second client' }])),
        );
        expect(report.bytesProgrammed).toBeGreaterThan(0);
        // And one that changes a register and leaves: the proxy puts gdb's view back.
        const rogue = await GdbClient.connect({ path: proxy.address });
        await rogue.writeRegisters({ r4: 0 });
        await rogue.close();
        const regs = await gdb.command('-data-list-register-values x 4 15');
        expect(regs).toMatch(/\{number="4",value="0x1234abcd"\}/);
        expect(regs).toMatch(new RegExp(`\\{number="15",value="0x${elf.symbols.ram_fn!.toString(16)}"\\}`));
        await gdb.command('-interpreter-exec console "maintenance flush dcache"');
        const mem = await gdb.command(`-data-read-memory-bytes 0x${(FLASH + 0x7fe).toString(16)} 4`);
        expect(mem).toMatch(/contents="11110001"/);
        expect(log.join('\n')).toMatch(/registers changed by another client were put back/);
      } finally {
        await gdb.close();
      }
    });
  });

  it('refuses other clients while one has the core running, and serves them once it stops', async () => {
    await withProxy(async (proxy) => {
      const a = await rawClient(proxy.address);
      a.socket.write(frameText('QStartNoAckMode'));
      await a.waitFor(/\$OK#9a/);
      a.socket.write(frameText(`P f=${'00'.repeat(4)}`.replace(' ', '')));
      a.socket.write(frameText('c'));
      await new Promise((r) => setTimeout(r, 200));
      const b = await GdbClient.connect({ path: proxy.address }).catch((e: unknown) => e as Error);
      expect(b).toBeInstanceOf(Error);
      expect(String((b as Error).message)).toMatch(/the core is running \(resumed by client 1\)/);
      a.socket.write(Uint8Array.of(0x03));
      await a.waitFor(/\$T02/);
      a.socket.destroy();
      const c = await GdbClient.connect({ path: proxy.address });
      expect((await c.readRegisters(['pc'])).pc).toBeTypeOf('number');
      await c.close();
    });
  });
});

describe('faults', () => {
  it('a client that drops in the middle of vFlashWrite programs nothing, and the proxy serves the next client', async () => {
    await gdbWriteMemory(qemu.connectOptions, FLASH, new Uint8Array(0x1000).fill(0x22));
    await withProxy(async (proxy, log) => {
      const a = await rawClient(proxy.address);
      a.socket.write(frameText('qSupported:multiprocess+'));
      a.socket.write(frameText('vFlashErase:c0000000,1000'));
      a.socket.write(frameText('vFlashWrite:c0000000:abcd'));
      await a.waitFor(/OK.*OK/s);
      a.socket.destroy();
      await new Promise((r) => setTimeout(r, 100));
      expect(log.join('\n')).toMatch(/client #1 disconnected; its unfinished flash load \(4 bytes, no vFlashDone\) was discarded: nothing of it was programmed/);
      const c = await GdbClient.connect({ path: proxy.address });
      expect([...(await c.readMemory(FLASH, 4))]).toEqual([0x22, 0x22, 0x22, 0x22]);
      await c.close();
    });
  });

  it('garbage and damaged packets from a client are logged and asked again, and the link goes on', async () => {
    await withProxy(async (proxy, log) => {
      const a = await rawClient(proxy.address);
      a.socket.write('hello\r\n');
      a.socket.write('$g#00'); // bad checksum
      await a.waitFor(/-/);
      a.socket.write(frameText('qC'));
      await a.waitFor(/\$QC/);
      a.socket.destroy();
      expect(log.join('\n')).toMatch(/ignored \d+ bytes outside any packet/);
      expect(log.join('\n')).toMatch(/damaged packet \(bad checksum\), asked again/);
    });
  });

  it('a lost upstream link ends the proxy with a typed error, closes its clients, and leaves the target usable', async () => {
    // A relay between the proxy and QEMU that the test cuts.
    const sockets: net.Socket[] = [];
    const relay = net.createServer((down) => {
      const up = net.connect(qemu.connectOptions);
      sockets.push(down, up);
      down.pipe(up);
      up.pipe(down);
    });
    const relayPath = join(dir, 'relay.sock');
    await new Promise<void>((r) => relay.listen(relayPath, () => r()));
    try {
      await withProxy(async (proxy, log) => {
        const client = await GdbClient.connect({ path: proxy.address });
        for (const s of sockets) s.destroy();
        const error = await Promise.race([proxy.done, new Promise((r) => setTimeout(() => r('timeout'), 5000))]);
        expect(error).toMatchObject({ code: 'RSPFLASH_CONNECTION_CLOSED' });
        await expect(client.readRegisters(['pc'])).rejects.toMatchObject({ code: 'RSPFLASH_CONNECTION_CLOSED' });
        expect(log.join('\n')).toMatch(/upstream connection lost/);
      }, { path: relayPath });
    } finally {
      relay.close();
    }
    // The target is still there, halted, for a direct client.
    expect((await gdbReadMemory(qemu.connectOptions, FLASH, 4)).length).toBe(4);
  });
});

describe('in front of the JLinkGDBServer test double', () => {
  it('gdb load programs the flash that J-Link has no loader for, and compare-sections matches', async () => {
    await gdbWriteMemory(qemu.connectOptions, FLASH + 0x3000, new Uint8Array(0x3000).fill(0x33));
    const jlink = await startJlinkProxy(qemu.connectOptions);
    try {
      await withProxy(
        async (proxy) => {
          const r = await gdbThroughProxy(proxy.address, ['load', 'compare-sections'], { file: elf.path });
          expect(r.stdout).toMatch(/Section \.flashdata, range 0xc0003800 -- 0xc0005200: matched/);
          expect(r.stdout).toMatch(/Section \.ramdata, range 0x20010000 -- 0x20010100: matched/);
        },
        { host: jlink.host, port: jlink.port },
      );
      // No plain write reached J-Link's side for the flash: the proxy programmed it with the algorithm.
      const flashWrites = jlink.requests.filter((p) => /^[XM]c[0-9a-f]{7},(?!0:)/.test(p));
      expect(flashWrites).toEqual([]);
      expect(jlink.requests.some((p) => p.startsWith('X2001'))).toBe(true); // the RAM section went as plain X
    } finally {
      await jlink.close();
    }
    const back = await gdbReadMemory(qemu.connectOptions, LAYOUT.flashData, 0x10);
    expect([...back]).toEqual(Array.from({ length: 0x10 }, (_, i) => flashDataByte(i)));
    expect((await gdbReadMemory(qemu.connectOptions, FLASH + 0x3000, 4))[0]).toBe(0x33); // kept
  });
});
