/**
 * What a new user hit (issue 14, issue 15 items 5 and 7), each as the user
 * did it: the built CLI (dist/bin/rspflash.js) run as a child process against
 * QEMU, a fault relay, or a peer that is not a GDB server; checked by exit
 * code, the lines on stdout/stderr, and the --json document.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startQemu, type QemuInstance } from './helpers/qemu.js';
import { gdbReadMemory } from './helpers/gdb-multiarch.js';
import { FaultProxy } from './faults/fault-proxy.js';
import { assertCliBuilt, errorLines, runCli, type RunCliOptions } from './helpers/cli.js';

const FLASH = 0xc0000000;
let qemu: QemuInstance;
let work: string;

/** Runs the CLI with its recovery journals in the test's folder; `onStart` gets the child (to send signals or close its pipes). */
const run = (args: string[], options: Omit<RunCliOptions, 'env'> = {}) => runCli(args, { ...options, env: { XDG_CACHE_HOME: join(work, 'cache') } });

/** A TCP peer that counts connections and greets with `banner` (or stays silent); never speaks RSP. */
async function foreignPeer(banner?: string): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    if (banner) socket.write(banner);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const target = () => ['--gdb', `${qemu.host}:${qemu.port}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim];
const write = (name: string, data: Uint8Array) => {
  const path = join(work, name);
  writeFileSync(path, data);
  return path;
};

beforeAll(async () => {
  assertCliBuilt();
  qemu = await startQemu({ machine: 'mps3-an547', transport: 'tcp' });
  work = mkdtempSync(join(tmpdir(), 'rspflash-cli-user-'));
});
afterAll(async () => {
  await qemu?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('refused before connecting (exit 2)', () => {
  let peer: Awaited<ReturnType<typeof foreignPeer>>;
  beforeAll(async () => {
    peer = await foreignPeer();
  });
  afterAll(async () => peer?.close());
  const at = () => ['--gdb', `127.0.0.1:${peer.port}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim];

  it('erase --chip with --length or --address (it used to erase the whole chip)', async () => {
    for (const extra of [['--length', '4K'], ['--address', '0xC0000000']]) {
      const r = await run(['erase', '--chip', ...extra, ...at()]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--chip erases the whole device and cannot be combined with --address or --length/);
    }
    expect(peer.connections()).toBe(0);
  });

  it('erase --length 0, --ram wrapping past 4 GiB, --timeout 0 and --timeout 2147483648, with clear messages', async () => {
    const cases: [string[], RegExp][] = [
      [['erase', '--length', '0', ...at()], /--length must be above 0/],
      [['erase', '--length', '4K', ...at(), '--ram', '0xFFFFF000:0x40000'], /--ram: 262144 bytes from 0xfffff000 wrap past the end of the 4 GiB address space/],
      [['erase', '--length', '4K', ...at(), '--timeout', '0'], /--timeout '0': give a whole number of milliseconds above 0/],
      [['erase', '--length', '4K', ...at(), '--timeout', '2147483648'], /--timeout 2147483648: at most 2147483647 ms/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(peer.connections()).toBe(0);
  });

  it('read outside the flash, of length 0, or into a folder that does not exist', async () => {
    const outside = await run(['read', '0xC1FFFF00', '0x200', '-o', join(work, 'r.bin'), ...at()]);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/0xc1ffff00..0xc20000ff is not inside the flash 0xc0000000..0xc1ffffff/);
    expect(outside.stderr).toMatch(/add --memory/);
    const ram = await run(['read', '0x21000000', '16', '-o', join(work, 'r.bin'), ...at()]);
    expect(ram.code).toBe(2);
    const empty = await run(['read', '0xC0000000', '0', '-o', join(work, 'r.bin'), ...at()]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/length must be above 0/);
    const nodir = await run(['read', '0xC0000000', '16', '-o', '/nodir/r.bin', ...at(), '--json']);
    expect(nodir.code).toBe(2);
    expect(JSON.parse(nodir.stdout).error).toMatchObject({ code: 'RSPFLASH_FILE', path: '/nodir/r.bin', reason: 'ENOENT' });
    expect(existsSync(join(work, 'r.bin'))).toBe(false);
    expect(peer.connections()).toBe(0);
  });

  it('missing and unreadable files: one line with the path and the reason, no stack trace', async () => {
    const missing = await run(['program', join(work, 'nope.bin'), '--base', '0xC0000000', ...at()]);
    expect(missing.code).toBe(2);
    expect(errorLines(missing.stderr)).toEqual([`✖ Cannot open ${join(work, 'nope.bin')}: no such file or directory (ENOENT)`]);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    const folder = join(work, 'a-folder.flm');
    mkdirSync(folder, { recursive: true });
    const dir = await run(['program', write('one.bin', new Uint8Array(16)), '--base', '0xC0000000', '--gdb', `127.0.0.1:${peer.port}`, '--board', 'qemu-an547', '--algo', folder, '--json']);
    expect(dir.code).toBe(2);
    expect(JSON.parse(dir.stdout).error).toMatchObject({ code: 'RSPFLASH_FILE', reason: 'EISDIR' });
    expect(peer.connections()).toBe(0);
  });

  it('--svg without --dry-run', async () => {
    const r = await run(['program', write('svg.bin', new Uint8Array(16)), '--base', '0xC0000000', ...at(), '--svg', join(work, 'p.svg')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--svg draws the plan and needs --dry-run/);
    expect(peer.connections()).toBe(0);
  });

  it('info with neither --algo nor --connect does not connect', async () => {
    const r = await run(['info', '--gdb', `127.0.0.1:${peer.port}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Say what to describe: --algo FILE .* and\/or --connect/);
    expect(peer.connections()).toBe(0);
  });

  it('usage errors from the option parser honour --json: one JSON document, nothing on stderr', async () => {
    const r = await run(['program', 'x.bin', '--frobnicate', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'RSPFLASH_USAGE', message: "unknown option '--frobnicate'" } });
  });

  it('--board qemu-an547 without --algo says where its algorithm comes from, not a path the package lacks', async () => {
    const r = await run(['program', write('b.bin', new Uint8Array(16)), '--base', '0xC0000000', '--board', 'qemu-an547']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/npm run fixtures/);
    expect(r.stderr).not.toMatch(/test\/fixtures\/build/);
  });
});

describe('a peer that is not a GDB server', () => {
  it('says so and shows the first bytes it sent', async () => {
    const peer = await foreignPeer('SSH-2.0-OpenSSH_9.2p1 Debian\r\n');
    try {
      const r = await run(['info', '--connect', '--gdb', `127.0.0.1:${peer.port}`, '--timeout', '300']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/probably not a GDB server/);
      expect(r.stderr).toMatch(/SSH-2\.0-OpenSSH_9\.2p1 Debian/);
    } finally {
      await peer.close();
    }
  });

  it('says that a silent peer sent nothing (or serves another client)', async () => {
    const peer = await foreignPeer();
    try {
      const r = await run(['info', '--connect', '--gdb', `tcp:127.0.0.1:${peer.port}`, '--timeout', '300', '--json']);
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stdout).error.message).toMatch(/it sent nothing\): it is probably not a GDB server, or a GDB server busy with another client/);
    } finally {
      await peer.close();
    }
  });
});

describe('what users expect to see', () => {
  it('confirms --reset and --after, in text and in --json', async () => {
    const bin = write('reset.bin', new Uint8Array(randomBytes(4096)));
    const r = await run(['program', bin, '--base', '0xC1C00000', ...target(), '--reset', '--after', 'run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.info).toEqual(expect.arrayContaining([expect.stringMatching(/^Reset and halted the target \(monitor /), 'The target runs on']));
    const text = await run(['program', bin, '--base', '0xC1C00000', ...target(), '--reset']);
    expect(text.stderr).toMatch(/Reset and halted the target/);
  });

  it('erase says the range it actually erased, in whole sectors ("1 sector"), with 4KiB sizes and tcp: endpoints', async () => {
    const args = ['erase', '--address', '0xC1C00100', '--length', '4KiB', '--gdb', `tcp:${qemu.host}:${qemu.port}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim];
    const r = await run(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^Erasing 2 sectors$/m);
    expect(r.stderr).toMatch(/Erased 0xc1c00000..0xc1c01fff \(2 sectors, widened from 0xc1c00100..0xc1c010ff to whole sectors\)/);
    const one = await run(['erase', '--address', '0xC1C00000', '--length', '4K', ...target(), '--json']);
    expect(JSON.parse(one.stdout)).toMatchObject({ ok: true, requested: { address: 0xc1c00000, length: 4096 }, erased: { address: 0xc1c00000, length: 4096 } });
    const text = await run(['erase', '--address', '0xC1C00000', '--length', '4K', ...target()]);
    expect(text.stderr).toMatch(/^Erasing 1 sector$/m);
  });

  it('says "verify skipped (unchanged)" when every sector already holds the image, never "verified (crc)"', async () => {
    const bin = write('same.bin', new Uint8Array(randomBytes(8192)));
    const args = ['program', bin, '--base', '0xC1C10000', ...target()];
    const first = await run(args);
    expect(first.stderr).toMatch(/Done: programmed 8 KiB, erased 2 sectors, verified by the algorithm's Verify in [\d.]+ s$/m);
    expect(first.stderr).not.toMatch(/MB\/s/);
    const again = await run([...args, '--verify', 'crc']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/--verify crc is deprecated/);
    expect(again.stderr).toMatch(/Done: 2 sectors unchanged, verify skipped \(unchanged\)/);
    expect(again.stderr).not.toMatch(/verified \(/);
  });

  it('streams progress as JSON lines on stderr with --progress json', async () => {
    const bin = write('progress.bin', new Uint8Array(randomBytes(16384)));
    const r = await run(['program', bin, '--base', '0xC1C20000', ...target(), '--progress', 'json', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stderr.trim().split('\n').map((line) => JSON.parse(line) as { type: string; phase?: string });
    expect(events[0]).toMatchObject({ type: 'plan' });
    expect(events).toContainEqual(expect.objectContaining({ type: 'phase-start', phase: 'write' }));
    expect(events.at(-1)).toMatchObject({ type: 'done' });
    expect(JSON.parse(r.stdout).ok).toBe(true);
  });

  it('programs a .bin from --skip N, and a file starting with \\x7fELF as --format bin', async () => {
    const data = new Uint8Array(randomBytes(4096));
    data.set([0x7f, 0x45, 0x4c, 0x46], 0);
    const bin = write('elfish.dat', data);
    const r = await run(['program', bin, '--format', 'bin', '--base', '0xC1C30000', '--skip', '16', ...target()]);
    expect(r.code, r.stderr).toBe(0);
    const back = await gdbReadMemory(qemu.connectOptions, 0xc1c30000, 4096 - 16);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data.subarray(16)))).toBe(0);
  });

  it('reads memory-mapped ranges with read --memory, without an algorithm', async () => {
    const out = join(work, 'mem.bin');
    const r = await run(['read', '0xC1C30000', '256', '-o', out, '--memory', '--gdb', `${qemu.host}:${qemu.port}`]);
    expect(r.code, r.stderr).toBe(0);
    const back = await gdbReadMemory(qemu.connectOptions, 0xc1c30000, 256);
    expect(Buffer.compare(Buffer.from(back), (await import('node:fs')).readFileSync(out))).toBe(0);
  });

  it('info --connect prints core registers only with -v', async () => {
    const plain = await run(['info', '--connect', '--gdb', `${qemu.host}:${qemu.port}`]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toMatch(/^ {4}xpsr /m);
    const verbose = await run(['info', '--connect', '--gdb', `${qemu.host}:${qemu.port}`, '-v']);
    expect(verbose.stdout).toMatch(/^ {4}xpsr /m);
  });

  it('warns, in plan and in --json, about bytes outside the image that cannot be kept', async () => {
    const bin = write('lost.bin', new Uint8Array(100));
    const r = await run(['plan', bin, '--base', '0xC0000100', '--algo', FIXTURES.norSim, '--board', 'qemu-an547', '--no-memory-mapped']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/3996 bytes outside the image will be erased \(.*cannot be kept\): 0xc0000000..0xc00000ff, 0xc0000164..0xc0000fff/);
    expect(r.stdout).toMatch(/Steps:\n/);
    const json = JSON.parse((await run(['plan', bin, '--base', '0xC0000100', '--algo', FIXTURES.norSim, '--board', 'qemu-an547', '--no-memory-mapped', '--json'])).stdout);
    expect(json.warnings).toEqual([expect.stringMatching(/^3996 bytes outside the image will be erased/)]);
    expect(json.steps.map((s: { kind: string }) => s.kind)).toContain('write');
    const asked = await run(['plan', bin, '--base', '0xC0000100', '--algo', FIXTURES.norSim, '--board', 'qemu-an547', '--no-memory-mapped', '--no-preserve', '--json']);
    expect(JSON.parse(asked.stdout).warnings).toEqual([]);
  });

  it('a closed stderr pipe (rspflash … | head -1) does not crash the job: it finishes and the flash holds the image', async () => {
    const data = new Uint8Array(randomBytes(65536));
    const bin = write('pipe.bin', data);
    const r = await run(['program', bin, '--base', '0xC1C40000', ...target(), '-v'], { onStart: (child) => child.stderr!.destroy() });
    expect(r.code).toBe(0);
    const back = await gdbReadMemory(qemu.connectOptions, 0xc1c40000, data.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
  });
});

describe('a failure mid-job names the flash at risk; the journal restores the kept bytes', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await FaultProxy.start(qemu.connectOptions);
  });
  afterAll(async () => proxy?.close());

  it('lists the erased or half-written ranges in text and --json, then recover restores the kept bytes', async () => {
    const journal = join(work, 'journal');
    const base = FLASH + 0x1d00000;
    // Old content around the image: the head of its first sector must survive.
    expect((await run(['program', write('old.bin', new Uint8Array(0x102000).fill(0x5a)), '--base', hexOf(base), ...target()])).code).toBe(0);
    const image = write('new.bin', new Uint8Array(randomBytes(1 << 20)));
    const via = ['--gdb', `unix:${proxy.connectOptions.path}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim, '--journal-dir', journal];
    // The link drops part-way through the transfers of the write runs.
    proxy.reset({ rules: [{ direction: 'toServer', afterBytes: 1_300_000, action: { kind: 'drop' } }] });
    const text = await run(['program', image, '--base', hexOf(base + 0x100), ...via]);
    expect(text.code, text.stderr).toBe(3);
    expect(text.stderr).toMatch(/Flash left erased or half-written \(program the image again to complete it\):\n {2}0xc1d[0-9a-f]{5}\.\.0xc1d[0-9a-f]{5} {2}\d+ KiB {2}erased or half-written/);
    await proxy.idle();

    // The second run restores the journal, skips the sectors the first completed, and drops half-way through the rest.
    proxy.reset({ rules: [{ direction: 'toServer', afterBytes: 600_000, action: { kind: 'drop' } }] });
    const json = await run(['program', image, '--base', hexOf(base + 0x100), ...via, '--reset', '--json']);
    expect(json.code).toBe(3);
    const doc = JSON.parse(json.stdout);
    expect(doc.ok, json.stdout).toBe(false);
    expect(doc.error.ranges?.length ?? 0, json.stdout).toBeGreaterThan(0);
    expect(doc.error.ranges.length).toBeGreaterThan(0);
    expect(doc.error.ranges[0]).toMatchObject({ state: 'erased-or-partial' });
    expect(doc.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^Restoring .* left in the journal .* by a failed run/)]));
    await proxy.idle();

    // The journal is per GDB endpoint, algorithm and flash range: recover through the same endpoint.
    proxy.reset();
    const recover = await run(['recover', ...via, '--reset']);
    expect(recover.code, recover.stderr).toBe(0);
    expect(recover.stderr).toMatch(/Restored [\d.]+ (B|KiB) from the journal .*: 0xc1[de]0[0-9a-f]{4}\.\.0xc1[de]0[0-9a-f]{4}/);
    // Whichever run restored them, the bytes around the image hold their old content again.
    const head = await gdbReadMemory(qemu.connectOptions, base, 0x100);
    expect(head.every((b) => b === 0x5a)).toBe(true);
    const tail = await gdbReadMemory(qemu.connectOptions, base + 0x100100, 0xf00);
    expect(tail.every((b) => b === 0x5a)).toBe(true);
    await proxy.idle();
    const nothing = await run(['recover', ...via, '--json']);
    expect(JSON.parse(nothing.stdout)).toMatchObject({ ok: true, restored: false });
  });
});

function hexOf(n: number): string {
  return `0x${n.toString(16)}`;
}

describe('signals', () => {
  let own: QemuInstance;
  beforeAll(async () => {
    own = await startQemu({ machine: 'mps3-an547', transport: 'tcp' });
  });
  afterAll(async () => own?.stop());
  const at = () => ['--gdb', `${own.host}:${own.port}`, '--board', 'qemu-an547', '--algo', FIXTURES.norSim];
  const onPhase = (signals: NodeJS.Signals[]) => (child: ChildProcess, output: { stderr: () => string }) => {
    const poll = setInterval(() => {
      if (/Programming/.test(output.stderr())) {
        clearInterval(poll);
        for (const s of signals) child.kill(s);
      }
    }, 5);
    child.on('close', () => clearInterval(poll));
  };

  it('SIGTERM cancels like the first Ctrl-C: exit 130, the target restored (the next run works without a reset)', async () => {
    const bin = write('big.bin', new Uint8Array(randomBytes(8 << 20)));
    const r = await run(['program', bin, '--base', '0xC0000000', ...at()], { onStart: onPhase(['SIGTERM']) });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SIGTERM: cancelling after the current call; the target will be restored/);
    expect(errorLines(r.stderr)[0]).toMatch(/cancelled/i);
    const small = write('small.bin', new Uint8Array(randomBytes(4096)));
    const next = await run(['program', small, '--base', '0xC1F00000', ...at()]);
    expect(next.code, next.stderr).toBe(0);
  });

  // Two SIGINTs sent at once may arrive as one (POSIX does not queue a pending signal): the second is a SIGTERM.
  it('a second signal quits at once and says what is left on the target and how to recover', async () => {
    const bin = write('big2.bin', new Uint8Array(randomBytes(8 << 20)));
    const r = await run(['program', bin, '--base', '0xC0800000', ...at()], { onStart: onPhase(['SIGINT', 'SIGTERM']) });
    expect(r.code).toBe(130);
    // Both signals are sent together; the process may see either first: the second one quits.
    expect(r.stderr).toMatch(/(SIGTERM|Ctrl-C) again: quitting at once/);
    expect(r.stderr).toMatch(/RAM {8}0x21000000..0x2103ffff holds the flash algorithm/);
    expect(r.stderr).toMatch(/breakpoint at 0x2100[0-9a-f]{4} \(the return trap\)/);
    expect(r.stderr).toMatch(/To recover: reset the target/);
  });
});
