/**
 * The program the microbit proxy test loads: C for the nRF51 (Cortex-M0)
 * whose code runs from flash at 0 — a vector table, `Reset_Handler` looping
 * `counter = bump(counter)`, `bump` adding the RAM variable `step` — with a
 * constant table in the middle of two flash pages and `step` in RAM (written
 * by gdb's `load`, not copied by start-up code). Built with arm-none-eabi-gcc
 * and debug info, so `break bump` and `next` work by line.
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where the program puts things (nRF51: 1 KiB flash pages at 0, RAM at 0x20000000). */
export const MICROBIT_LAYOUT = {
  /** Vector table and code: the start of page 0x00000000 (the rest of that page is not written by the load). */
  text: 0x00000000,
  /** The constant table: from the middle of page 0x00001000 to the middle of page 0x00001400. */
  table: 0x00001200,
  tableLength: 0x300,
  /** `step` (initialised, loaded by gdb), then `counter` (bss). Below the algorithm's RAM (board qemu-microbit: 0x20000800). */
  data: 0x20000000,
  bss: 0x20000100,
  /** Initial SP: the top 2 KiB of RAM, above the algorithm's RAM, hold the stack. */
  stackTop: 0x20004000,
} as const;

/** The byte at `i` of the constant table. */
export function tableByte(i: number): number {
  return (i * 11 + 0x3c) & 0xff;
}

/** A built program: the ELF, its symbols (Thumb bit clear), and its flash text as loaded. */
export interface MicrobitElf {
  path: string;
  symbols: Record<string, number>;
  /** The bytes of `.text` (vector table and code), for the read-back. */
  text: Uint8Array;
}

const SOURCE = `/* Runs from flash on QEMU microbit. */
volatile unsigned counter;            /* .bss */
volatile unsigned step = 1;           /* .data, in RAM: written by gdb load */

__attribute__((noinline)) unsigned bump(unsigned x)
{
  unsigned y = x + BUMP_OP step;
  return y;
}

void Reset_Handler(void)
{
  for (;;) {
    unsigned next = bump(counter);
    counter = next;
  }
}

void Fault_Handler(void)
{
  for (;;) {
  }
}

extern unsigned __stack_top;
__attribute__((section(".vectors"), used)) void *const vectors[16] = {
  &__stack_top, Reset_Handler, Fault_Handler, Fault_Handler,
  0, 0, 0, 0, 0, 0, 0, Fault_Handler, 0, 0, Fault_Handler, Fault_Handler,
};
`;

/**
 * A `-kernel` for QEMU microbit that puts nothing in flash: one word in RAM
 * at 0x20000400 (below the program's data and the algorithm's RAM).
 *
 * Why: QEMU copies the `-kernel` image into memory again at every system
 * reset, and the nRF51 flash (a ROM device, not ROM) is no exception. With
 * the usual boot image in page 0, `monitor system_reset` after a `load`
 * would put the boot image's vector table back over the loaded one. With no
 * kernel in flash the core starts at PC 0, SP 0 (flash reads 0x00), halted.
 */
export async function buildBlankKernel(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rspflash-microbit-kernel-'));
  await writeFile(join(dir, 'blank.S'), '  .section .mark,"a",%progbits\n  .word 0x6b6e6c62\n');
  await writeFile(join(dir, 'blank.ld'), 'SECTIONS { .mark 0x20000400 : { KEEP(*(.mark)) } /DISCARD/ : { *(.ARM.attributes) } }\n');
  const path = join(dir, 'blank.elf');
  // -n (no page alignment): otherwise ld starts the segment at 0x20000000 with the ELF header in it,
  // and every reset would write '\x7fELF…' over the program's data.
  await run('arm-none-eabi-gcc', ['-mcpu=cortex-m0', '-mthumb', '-nostdlib', '-nostartfiles', '-Wl,-n', '-T', join(dir, 'blank.ld'), '-o', path, join(dir, 'blank.S')]);
  return path;
}

/**
 * Builds the program. `variant` changes one instruction of `bump`
 * (`x - step` instead of `x + step`, same size): everything else, including
 * every address, stays the same.
 */
export async function buildMicrobitElf(options: { variant?: boolean } = {}): Promise<MicrobitElf> {
  const dir = await mkdtemp(join(tmpdir(), 'rspflash-microbit-elf-'));
  const table = Uint8Array.from({ length: MICROBIT_LAYOUT.tableLength }, (_, i) => tableByte(i));
  await writeFile(join(dir, 'table.bin'), table);
  await writeFile(join(dir, 'app.c'), SOURCE);
  await writeFile(
    join(dir, 'table.S'),
    `  .section .table,"a",%progbits
  .global table
table:
  .incbin "${join(dir, 'table.bin')}"
`,
  );
  const hex = (n: number) => `0x${n.toString(16)}`;
  await writeFile(
    join(dir, 'app.ld'),
    `ENTRY(Reset_Handler)
__stack_top = ${hex(MICROBIT_LAYOUT.stackTop)};
SECTIONS {
  .text ${hex(MICROBIT_LAYOUT.text)} : { KEEP(*(.vectors)) *(.text*) *(.rodata*) }
  .table ${hex(MICROBIT_LAYOUT.table)} : { KEEP(*(.table)) }
  .data ${hex(MICROBIT_LAYOUT.data)} : { *(.data*) }
  .bss ${hex(MICROBIT_LAYOUT.bss)} (NOLOAD) : { *(.bss*) *(COMMON) }
  /DISCARD/ : { *(.ARM.attributes) *(.comment) }
}
`,
  );
  const path = join(dir, options.variant ? 'app-variant.elf' : 'app.elf');
  await run('arm-none-eabi-gcc', [
    '-mcpu=cortex-m0', '-mthumb', '-Os', '-g', '-nostdlib', '-nostartfiles', '-ffreestanding',
    `-DBUMP_OP=${options.variant ? '-' : '+'}`,
    '-T', join(dir, 'app.ld'), '-o', path, join(dir, 'app.c'), join(dir, 'table.S'),
  ]);
  const { stdout } = await run('arm-none-eabi-nm', [path]);
  const symbols: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([0-9a-f]+)\s+\w\s+(\S+)$/.exec(line.trim());
    if (m) symbols[m[2]!] = parseInt(m[1]!, 16) & ~1;
  }
  const textFile = join(dir, `${options.variant ? 'variant' : 'app'}-text.bin`);
  await run('arm-none-eabi-objcopy', ['-O', 'binary', '-j', '.text', path, textFile]);
  return { path, symbols, text: new Uint8Array(await readFile(textFile)) };
}
