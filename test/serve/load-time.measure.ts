/**
 * The figure of issue 11's closing note, run on demand
 * (`npx vitest run --config vitest.measure.config.ts test/serve/load-time.measure.ts`): gdb `load`
 * of a 4 MiB flash section through the proxy vs `rspflash program` (withFlasher)
 * of the same bytes straight to QEMU, each over flash that holds other data.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FIXTURES, startQemu } from '../helpers/qemu.js';
import { gdbWriteMemory } from '../helpers/gdb-multiarch.js';
import { loadFixtureAlgorithm } from '../helpers/algorithms.js';
import { serve } from '../../lib/serve/index.js';
import { withFlasher } from '../../lib/session.js';
import { createImage } from '../../lib/image/image.js';
import { LAYOUT, buildTestElf, gdbThroughProxy } from './helpers.js';

const SIZE = 4 << 20;

describe('4 MiB: gdb load through the proxy vs rspflash program', () => {
  it('measures both', async () => {
    const qemu = await startQemu({ machine: 'mps3-an547' });
    try {
      const elf = await buildTestElf({ flashDataLength: SIZE, random: true });
      const data = new Uint8Array(await readFile(join(elf.dir, 'flashdata.bin')));
      const algorithm = loadFixtureAlgorithm(FIXTURES.norSim);
      const area = SIZE + 0x2000;
      const reset = () => gdbWriteMemory(qemu.connectOptions, 0xc0000000, new Uint8Array(area + 0x3000).fill(0x00));

      await reset();
      const log: string[] = [];
      const proxy = await serve({ upstream: qemu.connectOptions, listen: { path: join(elf.dir, 'm.sock') }, algorithms: [algorithm], board: 'qemu-an547', journal: false, onLog: (l) => log.push(l) });
      const t0 = performance.now();
      const r = await gdbThroughProxy(proxy.address, ['load'], { file: elf.path, timeoutMs: 600_000 });
      const proxyMs = performance.now() - t0;
      await proxy.close();
      expect(r.stdout).toMatch(/Start address/);

      await reset();
      const image = createImage([
        { address: LAYOUT.flashText, data: Uint8Array.of(0x01, 0x20, 0x02, 0x30, 0x03, 0x30, 0xfe, 0xe7), source: 'text' },
        { address: LAYOUT.flashData, data, source: 'data' },
      ]);
      const t1 = performance.now();
      const report = await withFlasher({ gdb: qemu.connectOptions, algorithm, board: 'qemu-an547', journal: false }, (f) => f.program(image));
      const directMs = performance.now() - t1;
      console.log(
        `MEASURE gdb load through proxy: ${Math.round(proxyMs)} ms (gdb: ${/Transfer rate.*/.exec(r.stdout)?.[0]}); job: ${log.find((l) => /sector\(s\) touched/.test(l))}\n` +
          `MEASURE rspflash program direct: ${Math.round(directMs)} ms (job ${report.durationMs} ms, ${report.bytesProgrammed} bytes programmed)`,
      );
    } finally {
      await qemu.stop();
    }
  }, 900_000);
});
