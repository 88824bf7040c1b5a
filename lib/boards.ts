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
  /** The name `board` options and `--board` take, e.g. `alif-e7-hp`. */
  readonly name: string;
  /** What the board is, one line for `rspflash boards`. */
  readonly description: string;
  /** RAM for the algorithm, its stack and buffers. */
  readonly ram: RamRegion;
  /** Flash the board's usual algorithm programs (for messages and checks). */
  readonly flash: {
    /** First address. */
    readonly start: number;
    /** Size, bytes. */
    readonly size: number;
  };
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
  /**
   * The CMSIS pack device this board is, and which of its processors: with an
   * installed pack that defines it, the algorithms and their RAM come from the
   * pack. What the pack does not know stays here: `memoryMapped` applies to the
   * pack regions inside `flash`, the others are memory mapped.
   */
  readonly pack?: {
    /** The pack's device name (`Dname`), e.g. `AE722F80F55D5LS`. */
    readonly device: string;
    /** The processor (`Pname`), for devices with several. */
    readonly core?: string;
  };
}

/**
 * Whether a pack region of `board` reads at its address while its algorithm
 * runs: the board's `memoryMapped` inside its `flash`, else yes (a pack does
 * not say, and internal flash and MRAM do).
 */
export function boardMemoryMapped(board: BoardPreset | undefined, region: { start: number; size: number }): boolean {
  if (board === undefined) return true;
  const f = board.flash;
  return region.start < f.start + f.size && region.start + region.size > f.start ? board.memoryMapped : true;
}

/** OSPI1 of the Alif Ensemble DevKit (IS25WX256, 32 MiB), and where the QEMU NOR simulator copies its geometry. */
const ALIF_OSPI1_FLASH = { start: 0xc0000000, size: 32 << 20 } as const;

/**
 * The Alif Ensemble E7 DevKit seen from one of its two Cortex-M55 cores. Both
 * run the same FLM on the same OSPI1 flash, each from its own ITCM (mapped at
 * 0 on either core); only the name and the J-Link device differ.
 */
function alifE7Preset(core: 'HP' | 'HE', kind: string): BoardPreset {
  return {
    name: `alif-e7-${core.toLowerCase()}`,
    description: `Alif Ensemble E7 DevKit, Cortex-M55 ${kind} core (${core}), OSPI1 flash IS25WX256`,
    // Alif's Ensemble_IS25WX256.FLM is linked to run from ITCM at 0 (RAMsize 0x40000).
    ram: { start: 0x00000000, size: 0x40000 },
    flash: ALIF_OSPI1_FLASH,
    memoryMapped: false,
    jlinkDevice: `AE722F80F55D5_${core}`,
    algorithm: 'Ensemble_IS25WX256.FLM from the Alif Ensemble CMSIS pack (AlifSemiconductor.Ensemble DFP)',
    // Alif's DFP names the device once for both cores; the core picks the processor (and so its algorithms).
    pack: { device: 'AE722F80F55D5LS', core: `M55_${core}` },
  };
}

/** Built-in presets by name. */
/** Freezes the presets and their regions: one caller must not change them for every other. */
function freezePresets(boards: Record<string, BoardPreset>): Readonly<Record<string, BoardPreset>> {
  for (const board of Object.values(boards)) {
    Object.freeze(board.ram);
    Object.freeze(board.flash);
    if (board.pack) Object.freeze(board.pack);
    Object.freeze(board);
  }
  return Object.freeze(boards);
}

/**
 * The built-in board presets by name: RAM for the algorithm, the flash range,
 * whether it is memory mapped, where to get the algorithm. Pass a name as
 * `board` ({@link withFlasher}) or `--board`.
 *
 * @example
 * ```ts
 * for (const board of Object.values(BOARDS)) console.log(`${board.name}: ${board.description}`);
 * ```
 */
export const BOARDS: Readonly<Record<string, BoardPreset>> = freezePresets({
  'alif-e7-hp': alifE7Preset('HP', 'high-performance'),
  'alif-e7-he': alifE7Preset('HE', 'high-efficiency'),
  'qemu-an547': {
    name: 'qemu-an547',
    description: "QEMU mps3-an547 (Cortex-M55) with rspflash's NOR simulator in DDR at 0xC0000000 (the Alif geometry)",
    // ISRAM (4 MiB at 0x21000000): apart from the boot image's ITCM and DTCM.
    ram: { start: 0x21000000, size: 0x40000 },
    flash: ALIF_OSPI1_FLASH,
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
});

/** The preset called `name`; throws a {@link UsageError} listing the known ones otherwise. */
export function boardPreset(name: string): BoardPreset {
  const board = BOARDS[name];
  if (!board) throw new UsageError(`Unknown board '${name}'. Known boards: ${Object.keys(BOARDS).join(', ')}`);
  return board;
}
