import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';

it('smoke', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'q'));
  const sock = join(dir, 'g.sock');
  const q = spawn('qemu-system-arm', ['-M', 'mps3-an547', '-nographic', '-S', '-monitor', 'none', '-serial', 'null', '-kernel', 'test/fixtures/build/boot-an547.elf', '-chardev', `socket,id=g0,path=${sock},server=on,wait=off`, '-gdb', 'chardev:g0'], { stdio: 'inherit' });
  while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
  try {
    const gdb = await GdbClient.connect({ path: sock });
    console.log(gdb.server.kind, gdb.server.packetSize, [...gdb.server.features]);
    console.log(gdb.registers.map((r) => `${r.name}:${r.regnum}`).join(' '));
    console.log(await gdb.readCoreRegisters());
    const data = new Uint8Array(1 << 20).map((_, i) => i * 7);
    let t = performance.now();
    await gdb.writeMemory(0x21000000, data);
    console.log('write', performance.now() - t, gdb.server.binaryWrite);
    t = performance.now();
    const back = await gdb.readMemory(0x21000000, data.length);
    console.log('read', performance.now() - t, Buffer.compare(Buffer.from(back), Buffer.from(data)));
    await gdb.writeRegisters({ r0: 1, r1: 2, r9: 0x1234 });
    console.log(await gdb.readRegisters(['r0', 'r1', 'r9', 'pc', 'xpsr']));
    console.log(gdb.stats);
    await gdb.close();
  } finally {
    q.kill();
  }
});
