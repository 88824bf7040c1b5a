/**
 * Flash geometries of real devices, for tests of planning and of the plan's
 * picture: one with uniform sectors, one with sectors of three sizes.
 * @module
 */
import type { FlashGeometry } from '../../lib/algo/algorithm.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Alif DevKit OSPI1: IS25WX256, 32 MiB of uniform 4 KiB sectors at 0xC0000000, 256 B pages (Ensemble_IS25WX256.FLM). */
export const ALIF_OSPI1: FlashGeometry = {
  start: 0xc000_0000,
  size: 32 * MiB,
  pageSize: 256,
  erasedValue: 0xff,
  sectors: [{ address: 0xc000_0000, size: 4 * KiB, count: 8192 }],
};

/** STM32F4 1 MiB bank at 0x08000000: 4 × 16 KiB, 1 × 64 KiB, 7 × 128 KiB sectors; 1 KiB pages. */
export const STM32F4_1MIB: FlashGeometry = {
  start: 0x0800_0000,
  size: 1 * MiB,
  pageSize: 1 * KiB,
  erasedValue: 0xff,
  sectors: [
    { address: 0x0800_0000, size: 16 * KiB, count: 4 },
    { address: 0x0801_0000, size: 64 * KiB, count: 1 },
    { address: 0x0802_0000, size: 128 * KiB, count: 7 },
  ],
};
