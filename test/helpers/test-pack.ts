/**
 * CMSIS packs for tests, assembled from our own FLM fixtures:
 *
 * - {@link alifLikePack}: the structure of Alif's public
 *   `AlifSemiconductor.Ensemble.pdsc` (DFP 1.x) — both algorithms at family
 *   level with `RAMstart="0x00000000"` (`Ensemble.FLM` for MRAM 0x80000000,
 *   5.5 MiB, RAMsize 0x20000; `Ensemble_IS25WX256.FLM` for OSPI1 0xC0000000,
 *   32 MiB, RAMsize 0x40000), the processors `M55_HP`/`M55_HE` at subFamily
 *   level, MRAM and SRAM `<memory>` regions, per-core `<debug>` on the
 *   device — with our NOR-simulator FLMs standing in for Alif's (Alif's FLMs
 *   may only be run on Alif silicon, so they are never in this repository).
 * - {@link an547TestPack}: a pack for QEMU mps3-an547 with two flash regions,
 *   `nor-sim-mram.flm` at 0x80000000 and `nor-sim.flm` at 0xC0000000, both
 *   running in ISRAM, for a two-region end-to-end run.
 *
 * @example
 * ```ts
 * const pack = openPackArchive(an547TestPack().bytes, 'an547.pack');
 * const device = await resolveDevice(pack, AN547_TEST_DEVICE);
 * ```
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeZip, type ZipWriterEntry } from './zip-writer.js';

const BUILD = fileURLToPath(new URL('../fixtures/build/', import.meta.url));
const fixture = (name: string) => new Uint8Array(readFileSync(join(BUILD, name)));

/** The Alif device the issue names. */
export const ALIF_DEVICE = 'AE722F80F55D5LS';

/** A PDSC shaped like Alif's Ensemble DFP (abridged: one subFamily, two devices, no components). */
export function alifLikePdsc(): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<package xmlns:xs="http://www.w3.org/2001/XMLSchema-instance" schemaVersion="1.4" xs:noNamespaceSchemaLocation="PACK.xsd">
  <vendor>AlifSemiconductor</vendor>
  <name>Ensemble</name>
  <description>Test pack shaped like the Alif Ensemble DFP</description>
  <releases>
    <release version="1.3.0-rc6" date="2024-10-03">rc</release>
    <release version="1.2.2" date="2024-08-13">older</release>
  </releases>
  <devices>
    <family Dfamily="Ensemble" Dvendor="Alif Semiconductor:165">
      <debugconfig dormant="true"/>
      <algorithm name="Flash/algorithms/Ensemble.FLM" start="0x80000000" size="0x00580000" RAMstart="0x00000000" RAMsize="0x20000" default="1"/>
      <algorithm name="Flash/algorithms/Ensemble_IS25WX256.FLM" start="0xC0000000" size="0x02000000" RAMstart="0x00000000" RAMsize="0x40000" default="1"/>
      <sequences><sequence name="DebugDeviceUnlock"><block>DAP_Delay(500000);</block></sequence></sequences>
      <subFamily DsubFamily="E7">
        <processor Dcore="Cortex-M55" DcoreVersion="r1p0" Dfpu="DP_FPU" Dmpu="MPU" Dmve="FP_MVE" Ddsp="DSP" Dtz="TZ" Dendian="Little-endian" Dclock="400000000" Pname="M55_HP"/>
        <processor Dcore="Cortex-M55" DcoreVersion="r1p0" Dfpu="DP_FPU" Dmpu="MPU" Dmve="FP_MVE" Ddsp="DSP" Dtz="TZ" Dendian="Little-endian" Dclock="160000000" Pname="M55_HE"/>
        <memory name="MRAM" start="0x80000000" size="0x00580000" access="rx" default="1"/>
        <memory name="SRAM0" start="0x02000000" size="0x00400000" access="rwx" default="1"/>
        <memory name="SRAM1" start="0x08000000" size="0x00280000" access="rwx" default="1"/>
        <compile Pname="M55_HP" Pdefine="M55_HP"/>
        <compile Pname="M55_HE" Pdefine="M55_HE"/>
        <accessportV2 __apid="0" address="0x00200000"/>
        <accessportV2 __apid="1" address="0x00300000"/>
        <feature type="XTAL" n="38400000" name="High-Frequency Crystal Oscillator"/>
        <device Dname="AE722F80F55D5AS">
          <debug svd="Debug/SVD/AE722F80F55D5AS_CM55_HP_View.svd" Pname="M55_HP" __apid="0"/>
          <debug svd="Debug/SVD/AE722F80F55D5AS_CM55_HE_View.svd" Pname="M55_HE" __apid="1"/>
        </device>
        <device Dname="${ALIF_DEVICE}">
          <compile Pname="M55_HP" header="Device/core/M55_HP/include/M55_HP.h" define="M55_HP"/>
          <debug svd="Debug/SVD/${ALIF_DEVICE}_CM55_HP_View.svd" Pname="M55_HP" __apid="0"/>
          <debug svd="Debug/SVD/${ALIF_DEVICE}_CM55_HE_View.svd" Pname="M55_HE" __apid="1"/>
          <feature type="BGA" n="194" name="FBGA Package"/>
        </device>
      </subFamily>
    </family>
  </devices>
</package>
`;
}

/** The Alif-like pack as a `.pack` archive: the PDSC and our NOR-simulator FLMs under Alif's file names. */
export function alifLikePack(extra: readonly ZipWriterEntry[] = []): Uint8Array {
  return writeZip([
    { name: 'AlifSemiconductor.Ensemble.pdsc', data: alifLikePdsc() },
    { name: 'Flash/', data: '', method: 'store' },
    { name: 'Flash/algorithms/', data: '', method: 'store' },
    { name: 'Flash/algorithms/Ensemble.FLM', data: fixture('nor-sim-mram.flm') },
    { name: 'Flash/algorithms/Ensemble_IS25WX256.FLM', data: fixture('nor-sim.flm') },
    ...extra,
  ]);
}

/** Device name of {@link an547TestPack}. */
export const AN547_TEST_DEVICE = 'RSPFLASH-AN547';

/** RAM regions of the two algorithms of {@link an547TestPack} (ISRAM, apart from the boot image's ITCM/DTCM). */
export const AN547_TEST_RAM = {
  mram: { start: 0x21000000, size: 0x40000 },
  ospi: { start: 0x21040000, size: 0x40000 },
} as const;

/** The PDSC of {@link an547TestPack}. */
export function an547TestPdsc(): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<package schemaVersion="1.7.7">
  <vendor>rspflash</vendor>
  <name>QEMU_AN547_DFP</name>
  <description>Test pack: QEMU mps3-an547 with rspflash's NOR simulators at 0x80000000 and 0xC0000000</description>
  <releases><release version="1.0.0">first</release></releases>
  <devices>
    <family Dfamily="QEMU MPS3" Dvendor="ARM:82">
      <processor Dcore="Cortex-M55" Dfpu="NO_FPU" Dmpu="MPU" Dtz="TZ" Dendian="Little-endian" Dclock="25000000"/>
      <memory name="ITCM" start="0x00000000" size="0x00080000" access="rwx"/>
      <memory name="DTCM" start="0x20000000" size="0x00080000" access="rwx"/>
      <memory name="ISRAM" start="0x21000000" size="0x00400000" access="rwx" default="1"/>
      <device Dname="${AN547_TEST_DEVICE}">
        <memory name="MRAM" start="0x80000000" size="0x00580000" access="rx" default="1" startup="1"/>
        <algorithm name="Flash\\nor-sim-mram.flm" start="0x80000000" size="0x00580000" RAMstart="0x${AN547_TEST_RAM.mram.start.toString(16)}" RAMsize="0x${AN547_TEST_RAM.mram.size.toString(16)}" default="1"/>
        <algorithm name="Flash\\nor-sim.flm" start="0xC0000000" size="0x02000000" RAMstart="0x${AN547_TEST_RAM.ospi.start.toString(16)}" RAMsize="0x${AN547_TEST_RAM.ospi.size.toString(16)}" default="1"/>
      </device>
    </family>
  </devices>
</package>
`;
}

/**
 * A pack for QEMU mps3-an547 with two flash regions (0x80000000, 5.5 MiB and
 * 0xC0000000, 32 MiB), each programmed by a NOR-simulator FLM from the
 * fixtures. `path` given: also written there (e.g. for `rspflash --pack`).
 */
export function an547TestPack(path?: string): { bytes: Uint8Array; device: string } {
  const bytes = writeZip([
    { name: 'rspflash.QEMU_AN547_DFP.pdsc', data: an547TestPdsc() },
    { name: 'Flash/nor-sim-mram.flm', data: fixture('nor-sim-mram.flm') },
    { name: 'Flash/nor-sim.flm', data: fixture('nor-sim.flm') },
  ]);
  if (path) writeFileSync(path, bytes);
  return { bytes, device: AN547_TEST_DEVICE };
}
