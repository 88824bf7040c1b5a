/**
 * `rspflash serve` as a user runs it (the built binary, dist/bin/rspflash.js;
 * `npm run build` first): gdb loads through it, `rspflash program --gdb` is a
 * second client through it, Ctrl-C stops it and leaves the target halted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { runCli, startCli } from '../helpers/cli.js';
import { buildTestElf, flashDataByte, gdbThroughProxy, LAYOUT, type TestElf } from './helpers.js';

let qemu: QemuInstance;
let elf: TestElf;
let dir: string;

beforeAll(async () => {
  [qemu, elf] = await Promise.all([startQemu({ machine: 'mps3-an547' }), buildTestElf()]);
  dir = await mkdtemp(join(tmpdir(), 'rspflash-serve-cli-'));
});
afterAll(async () => {
  await qemu?.stop();
});

describe('rspflash serve', () => {
  it('serves gdb load and a second rspflash program through it, and stops on Ctrl-C with exit code 0', async () => {
    await gdbWriteMemory(qemu.connectOptions, 0xc0000000, new Uint8Array(0x6000).fill(0x44));
    const listen = join(dir, 'serve.sock');
    const env = { XDG_CACHE_HOME: join(dir, 'cache') };
    const serve = startCli(['serve', '--gdb', `unix:${(qemu.connectOptions as { path: string }).path}`, '--listen', `unix:${listen}`, '--algo', FIXTURES.norSim, '--board', 'qemu-an547', '-v'], { env });
    try {
      for (let i = 0; i < 500 && !/listening on/.test(serve.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
      expect(serve.stderr()).toMatch(/listening on .*serve\.sock; upstream qemu server; flash 0xc0000000\.\.0xc1ffffff \(blocks of 4096\)/);
      const r = await gdbThroughProxy(listen, ['load'], { file: elf.path });
      expect(r.stdout).toMatch(/Start address/);
      const bin = join(dir, 'second.bin');
      await writeFile(bin, new Uint8Array(0x100).fill(0x5a));
      const second = await runCli(['program', bin, '--base', '0xc0005f00', '--gdb', `unix:${listen}`, '--algo', FIXTURES.norSim, '--board', 'qemu-an547'], { env });
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout + second.stderr).toMatch(/programmed|Programmed/);
      expect(serve.stderr()).toMatch(/client #1 load: programming 6664 bytes/);
      expect(serve.stderr()).toMatch(/client #2 connected/);
    } finally {
      serve.child.kill('SIGINT');
    }
    const stopped = await serve.closed;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toMatch(/stopped; the target is left halted/);
    const back = await gdbReadMemory(qemu.connectOptions, 0xc0000000, 0x6000);
    expect(back[LAYOUT.flashData - 0xc0000000 + 5]).toBe(flashDataByte(5));
    expect(back[0x5f00]).toBe(0x5a);
    expect(back[0x5eff]).toBe(0x44);
  });
});
