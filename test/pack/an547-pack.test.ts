/**
 * The QEMU an547 test pack on a real (emulated) core: each of its two
 * algorithms, taken from the pack with the RAM the PDSC gives it, erases,
 * programs and verifies its own window (0x80000000, 0xC0000000) and refuses
 * the other one; gdb-multiarch reads the bytes back independently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FNC_PROGRAM } from '../../lib/algo/algorithm.js';
import { loadAlgorithm } from '../../lib/algo/load.js';
import { openPackArchive, resolveDevice, type PackDevice } from '../../lib/pack/pack.js';
import { withRunner } from '../helpers/algorithms.js';
import { seededBytes } from '../helpers/bytes.js';
import { gdbReadMemory } from '../helpers/gdb-multiarch.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { an547TestPack } from '../helpers/test-pack.js';

const PAGE = 256;
const SECTOR = 4096;
const ERR_ARG = 1;

let qemu: QemuInstance;
let device: PackDevice;
beforeAll(async () => {
  qemu = await startQemu({ machine: 'mps3-an547' });
  const { bytes, device: name } = an547TestPack();
  device = await resolveDevice(openPackArchive(bytes, 'rspflash.QEMU_AN547_DFP.pack'), name);
});
afterAll(async () => {
  await qemu?.stop();
});

describe.each([
  ['the MRAM window (nor-sim-mram.flm)', 0, 1],
  ['the OSPI window (nor-sim.flm)', 1, 0],
])('%s', (_name, index, other) => {
  it('erases, programs and verifies a page at the end of its region, from the RAM the PDSC names, and refuses the other region', async () => {
    const region = device.regions[index]!;
    const otherRegion = device.regions[other]!;
    const entry = region.algorithms[0]!;
    const algo = loadAlgorithm(entry.bytes, entry.source);
    const address = region.start + region.size - SECTOR; // last sector: the size in the PDSC is the FLM's
    const data = seededBytes(PAGE, 10 + index);
    await withRunner(qemu, algo, { ram: entry.ram }, async (runner) => {
      expect(runner.buffer(0).address - entry.ram.start, 'buffers lie in the PDSC RAM').toBeLessThan(entry.ram.size);
      await runner.writeBuffer(0, data);
      const buf = runner.buffer(0).address;
      expect(await runner.call('Init', [region.start, 0, FNC_PROGRAM])).toBe(0);
      expect(await runner.call('EraseSector', [address])).toBe(0);
      expect(await runner.call('ProgramPage', [address, PAGE, buf])).toBe(0);
      expect(await runner.call('Verify', [address, PAGE, buf])).toBe(address + PAGE);
      expect(await runner.call('EraseSector', [otherRegion.start]), 'the other region is not this algorithm').toBe(ERR_ARG);
      expect(await runner.call('UnInit', [FNC_PROGRAM])).toBe(0);
    });
    expect(await gdbReadMemory(qemu.connectOptions, address, PAGE)).toEqual(data);
  });
});
