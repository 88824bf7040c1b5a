/**
 * `rspflash serve` as a user runs it (the built binary, dist/bin/rspflash.js;
 * `npm run build` first): gdb loads through it, `rspflash program --gdb` is a
 * second client through it, Ctrl-C stops it and leaves the target halted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { gdbReadMemory, gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { buildTestElf, flashDataByte, gdbThroughProxy, LAYOUT, type TestElf } from './helpers.js';

const CLI = resolve('dist/bin/rspflash.js');
const run = promisify(execFile);
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
    const child = spawn(process.execPath, [CLI, 'serve', '--gdb', `unix:${(qemu.connectOptions as { path: string }).path}`, '--listen', `unix:${listen}`, '--algo', FIXTURES.norSim, '--board', 'qemu-an547', '-v'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      for (let i = 0; i < 500 && !/listening on/.test(stderr); i++) await new Promise((r) => setTimeout(r, 20));
      expect(stderr).toMatch(/listening on .*serve\.sock; upstream qemu server; flash 0xc0000000\.\.0xc1ffffff \(blocks of 4096\)/);
      const r = await gdbThroughProxy(listen, ['load'], { file: elf.path });
      expect(r.stdout).toMatch(/Start address/);
      const bin = join(dir, 'second.bin');
      await writeFile(bin, new Uint8Array(0x100).fill(0x5a));
      const second = await run(process.execPath, [CLI, 'program', bin, '--base', '0xc0005f00', '--gdb', `unix:${listen}`, '--algo', FIXTURES.norSim, '--board', 'qemu-an547'], {
        env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') },
      });
      expect(second.stdout + second.stderr).toMatch(/programmed|Programmed/);
      expect(stderr).toMatch(/client #1 load: programming 6664 bytes/);
      expect(stderr).toMatch(/client #2 connected/);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/stopped; the target is left halted/);
    const back = await gdbReadMemory(qemu.connectOptions, 0xc0000000, 0x6000);
    expect(back[LAYOUT.flashData - 0xc0000000 + 5]).toBe(flashDataByte(5));
    expect(back[0x5f00]).toBe(0x5a);
    expect(back[0x5eff]).toBe(0x44);
  });
});
