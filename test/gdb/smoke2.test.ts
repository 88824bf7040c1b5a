import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import { GdbClient } from '../../lib/gdb/client.js';
import { parseFlm } from '../../lib/algo/flm.js';
import { AlgorithmRunner } from '../../lib/algo/runner.js';

it('smoke runner', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'q'));
  const sock = join(dir, 'g.sock');
  const q = spawn('qemu-system-arm', ['-M', 'mps3-an547', '-nographic', '-S', '-monitor', 'none', '-serial', 'null', '-kernel', 'test/fixtures/build/boot-an547.elf', '-chardev', `socket,id=g0,path=${sock},server=on,wait=off`, '-gdb', 'chardev:g0'], { stdio: 'inherit' });
  while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
  try {
    const gdb = await GdbClient.connect({ path: sock });
    const algo = parseFlm(readFileSync('test/fixtures/build/nor-sim.flm'), 'nor-sim.flm');
    const runner = await AlgorithmRunner.create(gdb, algo, { ram: { start: 0x21000000, size: 0x40000 } });
    console.log(runner.layout);
    let t = performance.now();
    console.log('init', await runner.call('Init', [0xc0000000, 0, 1]));
    console.log('erase', await runner.call('EraseSector', [0xc0000000]));
    const N = 200;
    t = performance.now();
    for (let i = 0; i < N; i++) await runner.call('BlankCheck', [0xc0000000, 256, 0xff]);
    console.log('per call ms', (performance.now() - t) / N, gdb.stats.roundTrips);
    const data = new Uint8Array(65536).map((_, i) => i * 13);
    const b = runner.buffer(0);
    t = performance.now();
    await runner.batch(0, [
      { fn: 'EraseSector', entry: runner.entry('EraseSector'), args: [0xc0000000, 4096], expect: 0, repeat: 16, stride: true },
      { fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [0xc0000000, 256, b.address], expect: 0, repeat: 256, stride: true },
      { fn: 'Verify', entry: runner.entry('Verify'), args: [0xc0000000, 256, b.address], expect: 0xc0000100, repeat: 256, stride: true, expectStride: true },
    ], { data });
    console.log('batch ms', performance.now() - t);
    const back = await gdb.readMemory(0xc0000000, 65536);
    console.log('match', Buffer.compare(Buffer.from(back), Buffer.from(data)));
    const { crc32 } = await import('node:zlib');
    console.log('crc', (await runner.crc32(0xc0000000, 65536)).toString(16), crc32(data).toString(16));
    try { await runner.batch(0, [{ fn: 'ProgramPage', entry: runner.entry('ProgramPage'), args: [0xc0000001, 256, b.address], expect: 0 }]); } catch (e) { console.log('expected failure:', (e as Error).message); }
    await runner.close();
    console.log(await gdb.readCoreRegisters());
    await gdb.close();
  } finally {
    q.kill();
  }
});
