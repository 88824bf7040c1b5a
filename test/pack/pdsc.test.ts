/**
 * The PDSC model without a pack around it: inheritance down family →
 * subFamily → device → variant, Pname selection, RAM for each algorithm,
 * close matches for unknown devices, and malformed documents.
 */
import { describe, expect, it } from 'vitest';
import { FormatError, UsageError } from '../../lib/errors.js';
import {
  closeMatches,
  describeResolvedAlgorithm,
  matchPdscDevices,
  parsePdsc,
  resolvePdscDevice,
} from '../../lib/pack/pdsc.js';
import { comparePackVersions } from '../../lib/pack/version.js';
import { formatError } from '../helpers/errors.js';
import { ALIF_DEVICE, alifLikePdsc } from '../helpers/test-pack.js';

const pdsc = (devices: string, releases = '') => `<?xml version="1.0"?>
<package schemaVersion="1.7"><vendor>Acme</vendor><name>Widget_DFP</name>
<releases>${releases}</releases><devices>${devices}</devices></package>`;

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('expected a UsageError, nothing was thrown');
}

const INHERITING = pdsc(`
  <family Dfamily="W" Dvendor="Acme:1">
    <processor Dcore="Cortex-M4" Dclock="48000000"/>
    <memory name="FLASH" start="0x08000000" size="0x10000" access="rx" default="1" startup="1"/>
    <memory id="IRAM1" start="0x20000000" size="0x2000"/>
    <algorithm name="Flash\\W_64.FLM" start="0x08000000" size="0x10000" RAMstart="0x20000000" RAMsize="0x1000" default="1"/>
    <subFamily DsubFamily="W1">
      <processor Dclock="64000000"/>
      <device Dname="W1-64">
        <variant Dvariant="W1-64-T"/>
      </device>
      <device Dname="W1-128">
        <memory name="FLASH" start="0x08000000" size="0x20000" access="rx" default="1" startup="1"/>
        <algorithm name="Flash/W_128.FLM" start="0x08000000" size="0x20000" RAMstart="0x20000000" RAMsize="0x1000" default="1"/>
        <algorithm name="Flash/W_OTP.FLM" start="0x1FFF0000" size="0x400" default="0"/>
        <variant Dvariant="W1-128-Q">
          <memory name="RAM2" start="0x10000000" size="0x8000" access="rwx"/>
        </variant>
      </device>
    </subFamily>
    <device Dname="W0"/>
  </family>`, '<release version="1.2.0"/><release version="1.10.0"/><release version="1.10.0-rc1"/>');

describe('parsePdsc', () => {
  const pack = parsePdsc(INHERITING, 'Acme.Widget_DFP.pdsc');

  it('reads the pack identity and takes the newest release by semver, not by order', () => {
    expect([pack.vendor, pack.name, pack.version]).toEqual(['Acme', 'Widget_DFP', '1.10.0']);
  });

  it('lists every device and variant, including devices directly under a family', () => {
    expect(pack.devices.map((d) => [d.name, d.subFamily, d.variantOf])).toEqual([
      ['W0', undefined, undefined],
      ['W1-64', 'W1', undefined],
      ['W1-64-T', 'W1', 'W1-64'],
      ['W1-128', 'W1', undefined],
      ['W1-128-Q', 'W1', 'W1-128'],
    ]);
  });

  it('inherits processors attribute by attribute: a lower level overrides only what it states', () => {
    const byName = (n: string) => pack.devices.find((d) => d.name === n)!;
    expect(byName('W0').processors).toEqual([{ core: 'Cortex-M4', clock: 48_000_000 }]);
    expect(byName('W1-64-T').processors).toEqual([{ core: 'Cortex-M4', clock: 64_000_000 }]);
  });

  it('redefines a memory of the same name lower down, keeps the rest, and reads the deprecated id form', () => {
    const dev = pack.devices.find((d) => d.name === 'W1-128-Q')!;
    expect(dev.memories).toEqual([
      { name: 'FLASH', start: 0x08000000, size: 0x20000, access: 'rx', default: true, startup: true },
      { name: 'IRAM1', start: 0x20000000, size: 0x2000, access: 'rwx', default: false, startup: false },
      { name: 'RAM2', start: 0x10000000, size: 0x8000, access: 'rwx', default: false, startup: false },
    ]);
  });

  it('accumulates algorithms down the hierarchy and turns backslashes into slashes', () => {
    const dev = pack.devices.find((d) => d.name === 'W1-64-T')!;
    expect(dev.algorithms.map((a) => a.path)).toEqual(['Flash/W_64.FLM']);
  });

  it('lets an algorithm of a lower level replace an inherited one whose range it overlaps (a device with more flash)', () => {
    const dev = pack.devices.find((d) => d.name === 'W1-128')!;
    expect(dev.algorithms.map((a) => a.path)).toEqual(['Flash/W_128.FLM', 'Flash/W_OTP.FLM']);
  });
});

describe('resolvePdscDevice', () => {
  const pack = parsePdsc(INHERITING, 'Acme.Widget_DFP.pdsc');

  it('gives each algorithm its RAMstart/RAMsize, or the default rwx memory when they are absent', () => {
    const dev = resolvePdscDevice(pack, 'W1-128');
    expect(dev.algorithms.map((a) => [a.path, a.ram, a.ramFrom, a.default])).toEqual([
      ['Flash/W_128.FLM', { start: 0x20000000, size: 0x1000 }, 'algorithm', true],
      ['Flash/W_OTP.FLM', { start: 0x20000000, size: 0x2000 }, 'memory', false],
    ]);
    expect(describeResolvedAlgorithm(dev.algorithms[1]!)).toBe('0x1fff0000..0x1fff0400 Flash/W_OTP.FLM, RAM 0x20000000+0x00002000 (device RAM)');
  });

  it('finds a device ignoring case', () => {
    expect(resolvePdscDevice(pack, 'w1-64-t').name).toBe('W1-64-T');
  });

  it('names close matches for an unknown device', () => {
    const err = usageError(() => resolvePdscDevice(pack, 'W1-126'));
    expect(err.message).toMatch(/no device "W1-126" in Acme\.Widget_DFP; close matches: W1-128$/);
    expect(usageError(() => resolvePdscDevice(pack, 'W1')).message).toMatch(/close matches: W1-64, W1-128, W1-64-T, W1-128-Q, W0$/);
    expect(usageError(() => resolvePdscDevice(pack, 'NRF52')).message).toMatch(/\(it describes 5 devices\)$/);
    expect(err.hint).toMatch(/`listDevices` lists them/);
  });

  it('skips algorithms in a style it cannot run, and says why', () => {
    const p = parsePdsc(pdsc(`<family Dfamily="F" Dvendor="A:1"><processor Dcore="Cortex-M0"/><device Dname="D">
      <memory name="RAM" start="0x20000000" size="0x1000" access="rwx"/>
      <algorithm name="Flash/D.flash" start="0" size="0x1000" style="IAR"/>
      <algorithm name="Flash/D.FLM" start="0" size="0x1000" style="Keil"/></device></family>`), 'x.pdsc');
    const dev = resolvePdscDevice(p, 'D');
    expect(dev.algorithms.map((a) => a.path)).toEqual(['Flash/D.FLM']);
    expect(dev.skipped).toEqual([{ path: 'Flash/D.flash', reason: 'style IAR (only Keil and CMSIS flash algorithms run here)' }]);
  });

  describe('on an Alif-like multi-core device', () => {
    const alif = parsePdsc(alifLikePdsc(), 'AlifSemiconductor.Ensemble.pdsc');

    it('refuses to guess the processor and lists the Pnames', () => {
      const err = usageError(() => resolvePdscDevice(alif, ALIF_DEVICE));
      expect(err.message).toBe(`${ALIF_DEVICE} has 2 processors (M55_HP, M55_HE): choose one with \`core\``);
    });

    it('refuses an unknown Pname and lists the ones it has', () => {
      expect(usageError(() => resolvePdscDevice(alif, ALIF_DEVICE, { core: 'M55_XX' })).message).toBe(
        `${ALIF_DEVICE} has no processor "M55_XX"; it has M55_HP, M55_HE`,
      );
    });

    it.each([
      ['M55_HP', 400_000_000, 0],
      ['m55_he', 160_000_000, 1],
    ])('resolves core %s: family algorithms with their RAM, subFamily memories, its own debug entry', (core, clock, apid) => {
      const dev = resolvePdscDevice(alif, ALIF_DEVICE, { core });
      expect(dev.processor).toMatchObject({ pname: core.toUpperCase(), core: 'Cortex-M55', clock });
      expect(dev.processors.map((p) => p.pname)).toEqual(['M55_HP', 'M55_HE']);
      expect(dev.algorithms.map((a) => [a.path, a.start, a.size, a.ram, a.default])).toEqual([
        ['Flash/algorithms/Ensemble.FLM', 0x80000000, 0x580000, { start: 0, size: 0x20000 }, true],
        ['Flash/algorithms/Ensemble_IS25WX256.FLM', 0xc0000000, 0x2000000, { start: 0, size: 0x40000 }, true],
      ]);
      expect(dev.memories.map((m) => m.name)).toEqual(['MRAM', 'SRAM0', 'SRAM1']);
      const debug = alif.devices.find((d) => d.name === ALIF_DEVICE)!.debug.find((d) => d.pname === core.toUpperCase());
      expect(debug?.apid).toBe(apid);
    });
  });

  it('keeps Pname-specific memories and algorithms to their processor', () => {
    const p = parsePdsc(pdsc(`<family Dfamily="F" Dvendor="A:1">
      <processor Pname="a" Dcore="Cortex-M33"/><processor Pname="b" Dcore="Cortex-M0+"/>
      <device Dname="D">
        <memory name="RAM_A" start="0x20000000" size="0x1000" access="rwx" Pname="a"/>
        <memory name="RAM_B" start="0x30000000" size="0x1000" access="rwx" Pname="b"/>
        <algorithm name="A.FLM" start="0" size="0x1000" Pname="a"/>
        <algorithm name="B.FLM" start="0x10000000" size="0x1000" Pname="b"/>
      </device></family>`), 'x.pdsc');
    const b = resolvePdscDevice(p, 'D', { core: 'b' });
    expect(b.memories.map((m) => m.name)).toEqual(['RAM_B']);
    expect(b.algorithms.map((a) => [a.path, a.ram.start])).toEqual([['B.FLM', 0x30000000]]);
  });

  it('refuses --core for a device whose single processor has no name', () => {
    expect(usageError(() => resolvePdscDevice(pack, 'W0', { core: 'M4' })).message).toMatch(/single processor without a name/);
  });
});

describe('malformed PDSC documents end in a FormatError', () => {
  it.each([
    ['not XML', 'hello', /not well-formed XML/],
    ['truncated', INHERITING.slice(0, 300), /not well-formed XML/],
    ['another root', '<target/>', /root element is not <package>/],
    ['no vendor', '<package><name>N</name></package>', /needs <vendor> and <name>/],
    ['a DOCTYPE with entities', '<!DOCTYPE package [<!ENTITY x "y">]><package><vendor>&x;</vendor></package>', /DOCTYPE/],
    ['an external DOCTYPE', '<!DOCTYPE package SYSTEM "http://example.com/x.dtd"><package/>', /DOCTYPE/],
    ['a bad number', pdsc('<family Dfamily="F" Dvendor="A:1"><device Dname="D"><memory name="M" start="0xZZ" size="1"/></device></family>'), /device D: memory M: start "0xZZ" is not a number/],
    ['an algorithm without start', pdsc('<family Dfamily="F" Dvendor="A:1"><device Dname="D"><algorithm name="a.FLM" size="1"/></device></family>'), /algorithm a\.FLM lacks start or size/],
    ['a device without a name', pdsc('<family Dfamily="F" Dvendor="A:1"><device/></family>'), /<device> in family F has no Dname/],
  ])('%s', (_what, xml, pattern) => {
    const err = formatError(() => parsePdsc(xml, 'bad.pdsc'));
    expect(err.source).toBe('bad.pdsc');
    expect(err.message).toMatch(pattern);
  });

  it('an algorithm without RAM on a device without RAM', () => {
    const p = parsePdsc(pdsc('<family Dfamily="F" Dvendor="A:1"><device Dname="D"><algorithm name="a.FLM" start="0" size="1"/></device></family>'), 'x.pdsc');
    expect(() => resolvePdscDevice(p, 'D')).toThrow(FormatError);
  });
});

describe('helpers', () => {
  it('closeMatches ranks substrings first, then near misses, and leaves far names out', () => {
    expect(closeMatches('AE722F80F55D5', ['AE722F80F55D5LS', 'AE722F80F55D5AS', 'STM32F407VG'])).toEqual(['AE722F80F55D5AS', 'AE722F80F55D5LS']);
    expect(closeMatches('STM32F407VF', ['STM32F407VG', 'STM32F407ZG', 'NRF52832'])).toEqual(['STM32F407VG', 'STM32F407ZG']);
    expect(closeMatches('XYZ', ['STM32F407VG'])).toEqual([]);
  });

  it('matchPdscDevices takes wildcards or a substring, ignoring case', () => {
    const devices = parsePdsc(INHERITING, 'x').devices;
    expect(matchPdscDevices(devices, 'w1-*').map((d) => d.name)).toEqual(['W1-64', 'W1-64-T', 'W1-128', 'W1-128-Q']);
    expect(matchPdscDevices(devices, '128').map((d) => d.name)).toEqual(['W1-128', 'W1-128-Q']);
    expect(matchPdscDevices(devices, 'W1-??').map((d) => d.name)).toEqual(['W1-64']);
  });

  it('comparePackVersions orders by semver precedence', () => {
    const sorted = ['1.10.0', '1.2.0', '1.3.0-rc6', '1.3.0', '1.3.0-rc10', '1.3.0-alpha', 'junk', '0.9.0+build'].sort(comparePackVersions);
    expect(sorted).toEqual(['junk', '0.9.0+build', '1.2.0', '1.3.0-alpha', '1.3.0-rc10', '1.3.0-rc6', '1.3.0', '1.10.0']);
  });
});
