/**
 * Board presets: the RAM an algorithm may use, whether the flash is memory
 * mapped while the algorithm runs, and what to tell the GDB server. Pick one
 * with `--board NAME` or {@link boardPreset}.
 * @module
 */
import { UsageError } from './errors.js';
import type { RamRegion } from './algo/layout.js';

/** What rspflash needs to know about a board beyond the flash algorithm. */
export interface BoardPreset {
  readonly name: string;
  readonly description: string;
  /** RAM for the algorithm, its stack and buffers. */
  readonly ram: RamRegion;
  /** Flash the board's usual algorithm programs (for messages and checks). */
  readonly flash: { readonly start: number; readonly size: number };
  /**
   * Whether the flash reads at its address while the algorithm owns it. Alif's
   * OSPI flash does not (the algorithm drives the controller in command mode),
   * so comparisons and verification go through the algorithm's Verify.
   */
  readonly memoryMapped: boolean;
  /** J-Link device name for `JLinkGDBServerCLExe -device`. */
  readonly jlinkDevice?: string;
  /** Where to get the flash algorithm. */
  readonly algorithm: string;
}

/** Built-in presets by name. */
export const BOARDS: Readonly<Record<string, BoardPreset>> = {
  'alif-e7-hp': {
    name: 'alif-e7-hp',
    description: 'Alif Ensemble E7 DevKit, Cortex-M55 high-performance core (HP), OSPI1 flash IS25WX256',
    // Alif's Ensemble_IS25WX256.FLM is linked to run from ITCM at 0 (RAMsize 0x40000).
    ram: { start: 0x00000000, size: 0x40000 },
    flash: { start: 0xc0000000, size: 32 << 20 },
    memoryMapped: false,
    jlinkDevice: 'AE722F80F55D5_HP',
    algorithm: 'Ensemble_IS25WX256.FLM from the Alif Ensemble CMSIS pack (AlifSemiconductor.Ensemble DFP)',
  },
  'alif-e7-he': {
    name: 'alif-e7-he',
    description: 'Alif Ensemble E7 DevKit, Cortex-M55 high-efficiency core (HE), OSPI1 flash IS25WX256',
    ram: { start: 0x00000000, size: 0x40000 },
    flash: { start: 0xc0000000, size: 32 << 20 },
    memoryMapped: false,
    jlinkDevice: 'AE722F80F55D5_HE',
    algorithm: 'Ensemble_IS25WX256.FLM from the Alif Ensemble CMSIS pack (AlifSemiconductor.Ensemble DFP)',
  },
  'qemu-an547': {
    name: 'qemu-an547',
    description: "QEMU mps3-an547 (Cortex-M55) with rspflash's NOR simulator in DDR at 0xC0000000 (the Alif geometry)",
    // ISRAM (4 MiB at 0x21000000): apart from the boot image's ITCM and DTCM.
    ram: { start: 0x21000000, size: 0x40000 },
    flash: { start: 0xc0000000, size: 32 << 20 },
    memoryMapped: true,
    algorithm: 'test/fixtures/build/nor-sim.flm in the rspflash repository',
  },
  'qemu-microbit': {
    name: 'qemu-microbit',
    description: 'QEMU microbit (nRF51822, Cortex-M0) with its emulated NVMC flash controller',
    ram: { start: 0x20000800, size: 0x3000 },
    flash: { start: 0x00000000, size: 256 << 10 },
    memoryMapped: true,
    algorithm: 'test/fixtures/build/nvmc-nrf51.flm in the rspflash repository',
  },
};

/** The preset called `name`; throws a {@link UsageError} listing the known ones otherwise. */
export function boardPreset(name: string): BoardPreset {
  const board = BOARDS[name];
  if (!board) throw new UsageError(`Unknown board '${name}'. Known boards: ${Object.keys(BOARDS).join(', ')}`);
  return board;
}
