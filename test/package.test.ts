/**
 * The npm package as a user gets it (scripts/check-package.sh): `npm pack`,
 * install the tarball into an empty folder, `npx rspflash --help`, an ESM
 * import of 'rspflash' and a TypeScript consumer written from the README,
 * compiled under strict and run against QEMU. Needs the npm registry for
 * the package's dependencies; takes about 10–30 s.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startQemu, type QemuInstance } from './helpers/qemu.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function checkPackage(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', [join(ROOT, 'scripts', 'check-package.sh')], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 16 << 20, timeout: 170_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let qemu: QemuInstance;
beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
});
afterAll(async () => {
  await qemu?.stop();
});

describe('the npm package', () => {
  it('installs from its tarball into an empty folder, and its CLI and library work from there', { timeout: 180_000 }, async () => {
    const where = qemu.connectOptions as { path?: string; host?: string; port?: number };
    const endpoint = where.path !== undefined ? `unix:${where.path}` : `${where.host ?? 'localhost'}:${where.port}`;
    const { code, stdout, stderr } = await checkPackage({ RSPFLASH_GDB: endpoint, RSPFLASH_FLM: FIXTURES.norSim });
    expect(code, `scripts/check-package.sh failed:\n${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/files: dist\/lib, dist\/bin, README\.md, LICENSE; no tests or fixtures/);
    expect(stdout).toMatch(/npx rspflash --help and --version \(\d+\.\d+\.\d+\) work/);
    expect(stdout).toMatch(/import from 'rspflash' works/);
    expect(stdout).toMatch(/typings resolve .*exhaustive switch over RspflashErrorCode/);
    // The README's snippet, compiled from the tarball's typings, programs QEMU's flash.
    expect(stdout).toMatch(/consumer programmed 8192 bytes, verified by algo/);
    expect(stdout).toMatch(/check-package: OK$/m);
  });
});
