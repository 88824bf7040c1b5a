#!/usr/bin/env node
// `npm run demo`: flashes a sample image onto an emulated Cortex-M55 board.
//
// Starts QEMU mps3-an547 (halted, gdbstub on a free loopback port) with
// rspflash's NOR-flash simulator at 0xC0000000 (the Alif OSPI geometry:
// 32 MiB, 4 KiB sectors, 256 B pages), then drives the real CLI against it:
// show the server, plan, program + verify, program again (everything is
// skipped as unchanged), change one byte (one sector is reprogrammed), and
// shut QEMU down. Bootstrap and build happen before this script (package.json).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'bin', 'rspflash.js');
const boot = join(root, 'test', 'fixtures', 'build', 'boot-an547.elf');
const algo = join(root, 'test', 'fixtures', 'build', 'nor-sim.flm');

function freePort() {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => res(port));
    });
  });
}

async function waitForPort(port, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`QEMU exited with code ${child.exitCode}`);
    const ok = spawnSync('bash', ['-c', `grep -qi ":$(printf '%04X' ${port}) 00000000:0000 0A" /proc/net/tcp`]).status === 0;
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`QEMU did not open port ${port}`);
}

function step(title, args) {
  console.log(`\n\x1b[1m▶ ${title}\x1b[0m\n  $ rspflash ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`rspflash ${args[0]} exited with ${r.status}`);
}

const work = mkdtempSync(join(tmpdir(), 'rspflash-demo-'));
const port = await freePort();
const qemu = spawn(
  'qemu-system-arm',
  ['-M', 'mps3-an547', '-nographic', '-S', '-monitor', 'none', '-serial', 'null', '-kernel', boot, '-gdb', `tcp:127.0.0.1:${port}`],
  { stdio: ['ignore', 'inherit', 'inherit'] },
);
const stop = () => {
  if (qemu.exitCode === null) qemu.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', stop);
process.on('SIGINT', () => process.exit(130));

try {
  await waitForPort(port, qemu);
  console.log(`QEMU mps3-an547 (Cortex-M55) is halted with its gdbstub on 127.0.0.1:${port}`);
  const image = join(work, 'ext_flash.bin');
  const data = randomBytes(2 << 20);
  writeFileSync(image, data);
  const target = ['--gdb', `127.0.0.1:${port}`, '--board', 'qemu-an547', '--algo', algo];

  step('What the GDB server and the flash algorithm say', ['info', '--connect', ...target.filter((a) => a !== '--board' && a !== 'qemu-an547')]);
  step('The plan for a 2 MiB ext_flash.bin at 0xC0000000 (no target needed)', ['plan', image, '--base', '0xC0000000', '--algo', algo]);
  step('Erase, program and verify it', ['program', image, '--base', '0xC0000000', ...target]);
  step('Program the same image again: every sector is unchanged, nothing is erased', ['program', image, '--base', '0xC0000000', ...target]);
  data[0x12345] ^= 0xff;
  writeFileSync(image, data);
  step('Change one byte: only its sector is erased and programmed', ['program', image, '--base', '0xC0000000', ...target]);
  step('Verify the flash against the image by a hash computed on the target', ['verify', image, '--base', '0xC0000000', '--verify', 'hash', ...target]);
  console.log('\n\x1b[32mDemo finished: the emulated board holds ext_flash.bin at 0xC0000000.\x1b[0m');
} catch (err) {
  console.error(`\ndemo failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  stop();
}
