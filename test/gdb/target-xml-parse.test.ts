import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReplyFormatError, ServerError } from '../../lib/errors.js';
import { parseTargetXml, registerByName, type TargetDescription } from '../../lib/gdb/target-xml.js';

// Fixtures written for these tests after the register layout of QEMU's gdb-xml/arm-m-profile.xml,
// arm-vfp.xml and arm-m-profile-mve.xml (names, sizes, types, regnums) and of J-Link's
// Cortex-M description as recorded in FACTS.md.

const QEMU_TARGET = `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>arm</architecture><xi:include href="arm-m-profile.xml"/><xi:include href="arm-vfp.xml"/><xi:include href="arm-m-profile-mve.xml"/></target>`;

const coreRegs = Array.from({ length: 13 }, (_, i) => `  <reg name="r${i}" bitsize="32"/>`).join('\n');

const QEMU_ANNEXES: Record<string, string> = {
  'arm-m-profile.xml': `<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.arm.m-profile">
${coreRegs}
  <reg name="sp" bitsize="32" type="data_ptr"/>
  <reg name="lr" bitsize="32"/>
  <reg name="pc" bitsize="32" type="code_ptr"/>
  <!-- xpsr is 25, not 16: the FPA registers once sat between pc and cpsr in "g" -->
  <reg name="xpsr" bitsize="32" regnum="25"/>
</feature>
`,
  'arm-vfp.xml': `<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.arm.vfp">
${Array.from({ length: 16 }, (_, i) => `  <reg name="d${i}" bitsize="64" type="float"/>`).join('\n')}
  <reg name="fpsid" bitsize="32" type="int" group="float"/>
  <reg name="fpscr" bitsize="32" type="int" group="float"/>
  <reg name="fpexc" bitsize="32" type="int" group="float"/>
</feature>
`,
  'arm-m-profile-mve.xml': `<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.arm.m-profile-mve">
  <flags id="vpr_reg" size="4">
    <field name="P0" start="0" end="15"/>
    <field name="MASK01" start="16" end="19"/>
    <field name="MASK23" start="20" end="23"/>
  </flags>
  <reg name="vpr" bitsize="32" type="vpr_reg"/>
</feature>
`,
};

const JLINK_TARGET = `<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>arm</architecture>
<feature name="org.gnu.gdb.arm.m-profile">
${Array.from({ length: 13 }, (_, i) => `<reg name="R${i}" bitsize="32" type="uint32" group="general"/>`).join('\n')}
<reg name="SP" bitsize="32" type="data_ptr" group="general"/>
<reg name="LR" bitsize="32" type="uint32" group="general"/>
<reg name="PC" bitsize="32" type="code_ptr" group="general"/>
<reg name="XPSR" bitsize="32" regnum="25" type="uint32" group="general"/>
<reg name="MSP" bitsize="32" type="uint32" group="general"/>
<reg name="PSP" bitsize="32" type="uint32" group="general"/>
<reg name="PRIMASK" bitsize="32" type="uint32" group="general"/>
<reg name="BASEPRI" bitsize="32" type="uint32" group="general"/>
<reg name="FAULTMASK" bitsize="32" type="uint32" group="general"/>
<reg name="CONTROL" bitsize="32" type="uint32" group="general"/>
</feature>
<feature name="org.gnu.gdb.arm.vfp">
<reg name="FPSCR" bitsize="32" type="int" group="float"/>
${Array.from({ length: 32 }, (_, i) => `<reg name="S${i}" bitsize="32" type="float" group="float"/>`).join('\n')}
</feature>
</target>
`;

function fromMap(annexes: Record<string, string>) {
  const calls: string[] = [];
  const resolve = (href: string): string => {
    calls.push(href);
    const text = annexes[href];
    if (text === undefined) throw new Error(`test resolver: no annex ${href}`);
    return text;
  };
  return { calls, resolve };
}

const noIncludes = (href: string): string => {
  throw new Error(`unexpected include of ${href}`);
};

function regnums(desc: TargetDescription): Record<string, number> {
  return Object.fromEntries(desc.registers.map((r) => [r.name, r.regnum]));
}

describe('parseTargetXml on QEMU\'s Cortex-M description (xi:include of feature annexes)', () => {
  it('numbers r0–pc 0–15 and gives xpsr 25', async () => {
    const desc = await parseTargetXml(QEMU_TARGET, fromMap(QEMU_ANNEXES).resolve);
    const n = regnums(desc);
    expect(n.r0).toBe(0);
    expect(n.r12).toBe(12);
    expect([n.sp, n.lr, n.pc]).toEqual([13, 14, 15]);
    expect(n.xpsr).toBe(25);
  });

  it('continues numbering after xpsr into the next included feature', async () => {
    const n = regnums(await parseTargetXml(QEMU_TARGET, fromMap(QEMU_ANNEXES).resolve));
    expect(n.d0).toBe(26);
    expect(n.d15).toBe(41);
    expect([n.fpsid, n.fpscr, n.fpexc]).toEqual([42, 43, 44]);
    expect(n.vpr).toBe(45);
  });

  it('reports architecture, features in document order, types, groups and owning feature', async () => {
    const desc = await parseTargetXml(QEMU_TARGET, fromMap(QEMU_ANNEXES).resolve);
    expect(desc.architecture).toBe('arm');
    expect(desc.features).toEqual(['org.gnu.gdb.arm.m-profile', 'org.gnu.gdb.arm.vfp', 'org.gnu.gdb.arm.m-profile-mve']);
    expect(registerByName(desc, 'sp')).toEqual({ name: 'sp', regnum: 13, bitsize: 32, type: 'data_ptr', feature: 'org.gnu.gdb.arm.m-profile' });
    expect(registerByName(desc, 'r3')?.type).toBe('int');
    expect(registerByName(desc, 'fpscr')).toMatchObject({ group: 'float', feature: 'org.gnu.gdb.arm.vfp' });
    expect(registerByName(desc, 'd7')?.bitsize).toBe(64);
    expect(registerByName(desc, 'vpr')?.type).toBe('vpr_reg');
    expect(desc.registers).toHaveLength(17 + 19 + 1);
  });

  it('asks the resolver for each annex by its href, in document order', async () => {
    const { calls, resolve } = fromMap(QEMU_ANNEXES);
    await parseTargetXml(QEMU_TARGET, resolve);
    expect(calls).toEqual(['arm-m-profile.xml', 'arm-vfp.xml', 'arm-m-profile-mve.xml']);
  });

  it('works with an asynchronous resolver (qXfer over the wire)', async () => {
    const { resolve } = fromMap(QEMU_ANNEXES);
    const slow = async (href: string): Promise<string> => {
      await new Promise((r) => setTimeout(r, 1));
      return resolve(href);
    };
    expect(regnums(await parseTargetXml(QEMU_TARGET, slow)).xpsr).toBe(25);
  });

  it('fetches an annex included twice only once', async () => {
    const { calls, resolve } = fromMap({
      'regs.xml': '<feature name="f"><reg name="a" bitsize="8"/></feature>',
    });
    const desc = await parseTargetXml('<target><xi:include href="regs.xml"/><xi:include href="regs.xml"/></target>', resolve);
    expect(calls).toEqual(['regs.xml']);
    expect(desc.registers.map((r) => r.regnum)).toEqual([0, 1]);
  });

  it('accepts xi:include with the XInclude namespace declared under another prefix', async () => {
    const xml = '<target xmlns:inc="http://www.w3.org/2001/XInclude"><inc:include href="arm-m-profile.xml"/></target>';
    expect(regnums(await parseTargetXml(xml, fromMap(QEMU_ANNEXES).resolve)).xpsr).toBe(25);
  });
});

describe('parseTargetXml on J-Link\'s single-document description with upper-case names', () => {
  it('gives XPSR 25 and finds it by its lower-case name', async () => {
    const desc = await parseTargetXml(JLINK_TARGET, noIncludes);
    expect(registerByName(desc, 'xpsr')).toMatchObject({ name: 'XPSR', regnum: 25 });
    expect(registerByName(desc, 'pc')?.regnum).toBe(15);
  });

  it('numbers the registers after XPSR from 26 on, across features (msp 26 … control 31, fpscr 32, s0–s31 33–64)', async () => {
    const desc = await parseTargetXml(JLINK_TARGET, noIncludes);
    const at = (name: string) => registerByName(desc, name)?.regnum;
    expect([at('msp'), at('psp'), at('primask'), at('basepri'), at('faultmask'), at('control')]).toEqual([26, 27, 28, 29, 30, 31]);
    expect(at('fpscr')).toBe(32);
    expect(at('s0')).toBe(33);
    expect(at('s31')).toBe(64);
    expect(registerByName(desc, 'S31')?.feature).toBe('org.gnu.gdb.arm.vfp');
  });
});

describe('parseTargetXml register numbering', () => {
  it('starts at 0, and an explicit regnum resets the count for the registers after it', async () => {
    const xml = `<target><feature name="f">
      <reg name="a" bitsize="32"/>
      <reg name="b" bitsize="32" regnum="10"/>
      <reg name="c" bitsize="32"/>
      <reg name="d" bitsize="32" regnum="3"/>
      <reg name="e" bitsize="32"/>
    </feature></target>`;
    expect(regnums(await parseTargetXml(xml, noIncludes))).toEqual({ a: 0, b: 10, c: 11, d: 3, e: 4 });
  });

  it('counts across inline features and included documents in document order', async () => {
    const { resolve } = fromMap({ 'mid.xml': '<feature name="mid"><reg name="m0" bitsize="32"/><reg name="m1" bitsize="32"/></feature>' });
    const xml = `<target>
      <feature name="first"><reg name="f0" bitsize="32"/></feature>
      <xi:include href="mid.xml"/>
      <feature name="last"><reg name="l0" bitsize="32"/></feature>
    </target>`;
    const desc = await parseTargetXml(xml, resolve);
    expect(regnums(desc)).toEqual({ f0: 0, m0: 1, m1: 2, l0: 3 });
    expect(desc.features).toEqual(['first', 'mid', 'last']);
  });

  it('reads regnum and bitsize in hex when written 0x…, as GDB does', async () => {
    const xml = '<target><feature name="f"><reg name="a" bitsize="0x20" regnum="0x19"/><reg name="b" bitsize="32"/></feature></target>';
    expect((await parseTargetXml(xml, noIncludes)).registers.map((r) => [r.regnum, r.bitsize])).toEqual([
      [25, 32],
      [26, 32],
    ]);
  });

  it('ignores type definitions and unknown elements', async () => {
    const xml = `<target><architecture> armv8.1-m.main </architecture><osabi>none</osabi><compatible>arm</compatible>
      <feature name="f"><vector id="v" type="uint8" count="16"/><union id="u"><field name="a" type="v"/></union>
      <enum id="e" size="4"><evalue name="x" value="0"/></enum><struct id="s"/><newthing/>
      <reg name="q0" bitsize="128" type="u"/></feature></target>`;
    const desc = await parseTargetXml(xml, noIncludes);
    expect(desc.architecture).toBe('armv8.1-m.main');
    expect(desc.registers).toEqual([{ name: 'q0', regnum: 0, bitsize: 128, type: 'u', feature: 'f' }]);
  });

  it('accepts a lone <feature> as the whole description', async () => {
    const desc = await parseTargetXml(QEMU_ANNEXES['arm-m-profile.xml']!, noIncludes);
    expect(desc.features).toEqual(['org.gnu.gdb.arm.m-profile']);
    expect(desc.architecture).toBeUndefined();
    expect(regnums(desc).xpsr).toBe(25);
  });
});

describe('parseTargetXml includes', () => {
  it('resolves nested includes (a register annex included from a feature annex)', async () => {
    const { calls, resolve } = fromMap({
      'core.xml': '<feature name="core"><reg name="r0" bitsize="32"/><xi:include href="more.xml"/><reg name="r2" bitsize="32"/></feature>',
      'more.xml': '<?xml version="1.0"?><reg name="r1" bitsize="32"/>',
    });
    const desc = await parseTargetXml('<target><xi:include href="core.xml"/></target>', resolve);
    expect(regnums(desc)).toEqual({ r0: 0, r1: 1, r2: 2 });
    expect(desc.registers.every((r) => r.feature === 'core')).toBe(true);
    expect(calls).toEqual(['core.xml', 'more.xml']);
  });

  it('rejects a document that includes itself', async () => {
    const { resolve } = fromMap({ 'a.xml': '<feature name="a"><xi:include href="a.xml"/></feature>' });
    await expect(parseTargetXml('<target><xi:include href="a.xml"/></target>', resolve)).rejects.toThrow(ReplyFormatError);
  });

  it('rejects an include cycle through several documents, naming the chain', async () => {
    const { resolve } = fromMap({
      'a.xml': '<feature name="a"><xi:include href="b.xml"/></feature>',
      'b.xml': '<xi:include href="target.xml"/>',
      'target.xml': '<target/>',
    });
    await expect(parseTargetXml('<target><xi:include href="a.xml"/></target>', resolve)).rejects.toThrow(
      /target\.xml → a\.xml → b\.xml → target\.xml/,
    );
  });

  it('rejects includes nested deeper than the cap, even without a cycle', async () => {
    const resolve = (href: string): string => {
      const n = Number(href.replace(/\D/g, ''));
      return `<xi:include href="level${n + 1}.xml"/>`;
    };
    await expect(parseTargetXml('<target><xi:include href="level1.xml"/></target>', resolve, { maxIncludeDepth: 5 })).rejects.toThrow(
      /deeper than 5/,
    );
  });

  it('rejects more includes in total than the cap (fan-out)', async () => {
    const { resolve } = fromMap({ 'x.xml': '<feature name="x"/>' });
    const xml = `<target>${'<xi:include href="x.xml"/>'.repeat(20)}</target>`;
    await expect(parseTargetXml(xml, resolve, { maxIncludes: 10 })).rejects.toThrow(/more than 10 documents/);
  });

  it('rejects an include without href', async () => {
    await expect(parseTargetXml('<target><xi:include/></target>', noIncludes)).rejects.toThrow(ReplyFormatError);
  });

  it('reports malformed XML in an included document as ReplyFormatError naming it', async () => {
    const { resolve } = fromMap({ 'bad.xml': '<feature name="bad"><reg name="r0" bitsize="32"></feature>' });
    await expect(parseTargetXml('<target><xi:include href="bad.xml"/></target>', resolve)).rejects.toThrow(/bad\.xml is not well-formed/);
  });

  it('lets the resolver\'s own errors through unchanged', async () => {
    const failure = new ServerError('qXfer failed', 'qXfer:features:read:a.xml:0,fff', 'E01');
    const resolve = (): never => {
      throw failure;
    };
    await expect(parseTargetXml('<target><xi:include href="a.xml"/></target>', resolve)).rejects.toBe(failure);
  });
});

describe('parseTargetXml on malformed descriptions', () => {
  const cases: Array<[string, string]> = [
    ['not XML at all', 'E01'],
    ['an empty document', ''],
    ['mismatched tags', '<target><feature name="f"></target>'],
    ['an unquoted attribute', '<target><feature name=f/></target>'],
    ['two root elements', '<target/><target/>'],
    ['a root that is neither target nor feature', '<memory-map/>'],
    ['a register outside any feature', '<target><reg name="r0" bitsize="32"/></target>'],
    ['a feature without a name', '<target><feature><reg name="r0" bitsize="32"/></feature></target>'],
    ['a register without a name', '<target><feature name="f"><reg bitsize="32"/></feature></target>'],
    ['a register without bitsize', '<target><feature name="f"><reg name="r0"/></feature></target>'],
    ['a register with bitsize 0', '<target><feature name="f"><reg name="r0" bitsize="0"/></feature></target>'],
    ['a non-numeric regnum', '<target><feature name="f"><reg name="r0" bitsize="32" regnum="pc"/></feature></target>'],
    ['a negative regnum', '<target><feature name="f"><reg name="r0" bitsize="32" regnum="-1"/></feature></target>'],
    ['a feature nested in a feature', '<target><feature name="f"><feature name="g"/></feature></target>'],
  ];
  for (const [why, xml] of cases) {
    it(`rejects ${why} with ReplyFormatError`, async () => {
      await expect(parseTargetXml(xml, noIncludes)).rejects.toThrow(ReplyFormatError);
    });
  }
});

describe('parseTargetXml XML safety', () => {
  let consoleSpies: Array<ReturnType<typeof vi.spyOn>> = [];
  beforeEach(() => {
    consoleSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m).mockImplementation(() => {}));
  });
  afterEach(() => {
    for (const spy of consoleSpies) spy.mockRestore();
  });

  it('does not expand an entity declared in the document, and rejects the document', async () => {
    const xml = '<!DOCTYPE target [<!ENTITY a "r0">]><target><feature name="f"><reg name="&a;" bitsize="32"/></feature></target>';
    await expect(parseTargetXml(xml, noIncludes)).rejects.toThrow(ReplyFormatError);
  });

  it('rejects a DOCTYPE with an internal subset even when no entity is used', async () => {
    const xml = '<!DOCTYPE target [<!ENTITY a "r0">]><target><feature name="f"><reg name="r0" bitsize="32"/></feature></target>';
    await expect(parseTargetXml(xml, noIncludes)).rejects.toThrow(/internal subset/);
  });

  it('rejects a billion-laughs document quickly without expanding it', async () => {
    let xml = '<?xml version="1.0"?><!DOCTYPE target [<!ENTITY lol0 "lol">';
    for (let i = 1; i <= 9; i++) xml += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
    xml += ']><target><architecture>&lol9;</architecture></target>';
    const t0 = performance.now();
    await expect(parseTargetXml(xml, noIncludes)).rejects.toThrow(ReplyFormatError);
  });

  it('accepts the external DOCTYPE every GDB document carries, without fetching the DTD', async () => {
    const desc = await parseTargetXml(
      '<?xml version="1.0"?><!DOCTYPE target SYSTEM "http://127.0.0.1:9/gdb-target.dtd"><target><architecture>arm</architecture></target>',
      noIncludes,
    );
    expect(desc).toEqual({ architecture: 'arm', features: [], registers: [] });
  });

  it('expands only the predefined entities and character references', async () => {
    const xml = '<target><feature name="a&amp;b"><reg name="r&#48;" bitsize="32"/></feature></target>';
    const desc = await parseTargetXml(xml, noIncludes);
    expect(desc.features).toEqual(['a&b']);
    expect(desc.registers[0]?.name).toBe('r0');
  });

  it('never prints to the console, whatever it is given', async () => {
    const inputs = ['<target><reg', '<x a=1/>', '<target>\ufffd</target>', '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', '<a></b>', '<target></target>junk'];
    for (const xml of inputs) await parseTargetXml(xml, noIncludes).catch(() => undefined);
    for (const spy of consoleSpies) expect(spy).not.toHaveBeenCalled();
  });
});

describe('registerByName', () => {
  const desc: TargetDescription = {
    features: ['f'],
    registers: [
      { name: 'PC', regnum: 15, bitsize: 32, type: 'code_ptr', feature: 'f' },
      { name: 'pc', regnum: 99, bitsize: 32, type: 'code_ptr', feature: 'f' },
      { name: 'Xpsr', regnum: 25, bitsize: 32, type: 'int', feature: 'f' },
    ],
  };

  it('prefers an exact match over a match ignoring case', () => {
    expect(registerByName(desc, 'pc')?.regnum).toBe(99);
    expect(registerByName(desc, 'PC')?.regnum).toBe(15);
  });

  it('ignores case when there is no exact match', () => {
    expect(registerByName(desc, 'XPSR')?.regnum).toBe(25);
    expect(registerByName(desc, 'xpsr')?.regnum).toBe(25);
  });

  it('returns undefined for a register the description lacks', () => {
    expect(registerByName(desc, 'msp')).toBeUndefined();
  });
});
