/**
 * Test double of SEGGER's JLinkGDBServer: a TCP server that speaks the J-Link
 * dialect of GDB RSP to its client (see /work/shared/FACTS.md, "JLinkGDBServer
 * dialect") and translates every request to QEMU's gdbstub behind it.
 *
 * What the client sees, J-Link style:
 * - `qSupported` → {@link JLINK_QSUPPORTED}; `QStartNoAckMode` works (checksums
 *   are still verified: a damaged packet is logged and ignored, like J-Link).
 * - a J-Link target.xml (upper-case names, xpsr = 25, msp…control = 26–31);
 *   `g` = 17 registers; `p` → `E01`; `P` only when `allowP`.
 * - `X` binary writes; `m`/`M` up to 0x4000 bytes (split for QEMU); no `vCont`,
 *   no threads (pseudo-thread 0xdead); `?` → `S05`; stop replies `S05`/`S02`;
 *   `D` → empty reply, the target stays halted.
 * - `qRcmd` monitor commands halt, go, reset, sleep, speed, memU32, reg, regs:
 *   output as `O` packets, then `OK`; an unknown command → empty reply.
 *
 * One client at a time (a second connection is closed at once); each client gets
 * its own upstream connection to QEMU, opened when it connects.
 * @module
 */
import net from 'node:net';
import { RspConnection } from '../../lib/rsp/connection.js';
import { PacketParser, escapeBinary, frame, hexDecode, hexEncode, unescapeBinary } from '../../lib/rsp/packet.js';

/** J-Link's `qSupported` reply, verbatim. */
export const JLINK_QSUPPORTED = 'PacketSize=4000;qXfer:memory-map:read-;QStartNoAckMode+;hwbreak+;qXfer:features:read+';

/** Registers of the J-Link target description: name and J-Link's register number. */
export const JLINK_REGISTERS: ReadonlyArray<{ name: string; regnum: number }> = [
  ...Array.from({ length: 13 }, (_, i) => ({ name: `R${i}`, regnum: i })),
  { name: 'SP', regnum: 13 },
  { name: 'LR', regnum: 14 },
  { name: 'PC', regnum: 15 },
  { name: 'XPSR', regnum: 25 },
  { name: 'MSP', regnum: 26 },
  { name: 'PSP', regnum: 27 },
  { name: 'PRIMASK', regnum: 28 },
  { name: 'BASEPRI', regnum: 29 },
  { name: 'FAULTMASK', regnum: 30 },
  { name: 'CONTROL', regnum: 31 },
];

/** The 17 registers of J-Link's `g` packet, in order: r0–r15, xpsr. */
const G_REGNUMS = [...Array.from({ length: 16 }, (_, i) => i), 25];
/** Largest `m` QEMU answers (more → `E22`). */
const QEMU_MAX_READ = 0x800;
/** Bytes per upstream `M`: QEMU drops an `M` whose payload exceeds 4095 characters. */
const QEMU_MAX_WRITE = 0x7c0;
/** Largest `m` the proxy serves (J-Link's PacketSize); longer reads return this much. */
const JLINK_MAX_READ = 0x4000;

function regXml(name: string, regnum: number, type: string, group: string): string {
  return `    <reg name="${name}" bitsize="32" regnum="${regnum}" type="${type}" group="${group}"/>\n`;
}

/** The target description the proxy serves (J-Link style: upper-case names, explicit numbers). */
export const JLINK_TARGET_XML =
  '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n' +
  '  <architecture>arm</architecture>\n  <feature name="org.gnu.gdb.arm.m-profile">\n' +
  JLINK_REGISTERS.filter((r) => r.regnum <= 25)
    .map((r) => regXml(r.name, r.regnum, r.name === 'SP' ? 'data_ptr' : r.name === 'PC' ? 'code_ptr' : 'uint32', 'general'))
    .join('') +
  '  </feature>\n  <feature name="com.segger.jlink.system">\n' +
  JLINK_REGISTERS.filter((r) => r.regnum > 25)
    .map((r) => regXml(r.name, r.regnum, r.name.endsWith('SP') ? 'data_ptr' : 'uint32', 'system'))
    .join('') +
  '  </feature>\n</target>\n';

/** Where QEMU's gdbstub listens. */
export type JlinkProxyUpstream = { path: string } | { host: string; port: number };

/** Options of {@link startJlinkProxy}. */
export interface JlinkProxyOptions {
  /** Accept `P` (newer J-Link versions do); false answers `E01`. Default true. */
  allowP?: boolean;
  /** Every request from the client (latin1 payload) is pushed here. */
  log?: string[];
}

/** A running proxy. */
export interface JlinkProxy {
  host: '127.0.0.1';
  port: number;
  /** Every request from the client so far (the `log` option's array when given). */
  requests: string[];
  /** Closes the listener, the client and the upstream link. */
  close(): Promise<void>;
}

/** Converts a QEMU stop reply to J-Link's: `S02` after an interrupt, `S05` for any other stop. */
function jlinkStop(reply: string): string {
  const m = /^[ST]([0-9a-fA-F]{2})/.exec(reply);
  if (!m) return reply; // W/X (exited/killed) or an error: pass through
  return m[1] === '02' ? 'S02' : 'S05';
}

function parseHex(text: string | undefined): number {
  if (text === undefined || !/^(0x)?[0-9a-fA-F]+$/.test(text)) throw new Error(`bad number ${JSON.stringify(text)}`);
  return parseInt(text.replace(/^0x/, ''), 16);
}

const hex8 = (v: number): string => `0x${(v >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
const u32le = (v: number): string => hexEncode(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff));
const fromLe = (hex: string): number => {
  const b = hexDecode(hex);
  return ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
};

/** A target run in progress upstream: `c`/`s` from the client, or `monitor go`. */
interface Run {
  stopped: Promise<string>;
  /** `monitor go`: nobody waits for the stop reply. */
  free: boolean;
  /** Send the stop reply to the client when it arrives (a `^C` during a free run). */
  notify: boolean;
}

/** One client connection and its upstream link. */
class Session {
  readonly #socket: net.Socket;
  readonly #parser = new PacketParser({ maxPacket: 0x8000 });
  readonly #allowP: boolean;
  readonly #log: string[];
  #upstream: RspConnection | undefined;
  /** J-Link register number → QEMU register number, for those QEMU has. */
  readonly #regMap = new Map<number, number>();
  #chain: Promise<void>;
  #noAck = false;
  #lastReply: Uint8Array | undefined;
  #questionForwarded = false;
  #run: Run | undefined;
  #queuedResumes = 0;
  #pendingInterrupt = false;
  closed = false;

  constructor(socket: net.Socket, upstream: JlinkProxyUpstream, options: { allowP: boolean; log: string[] }) {
    this.#socket = socket;
    this.#allowP = options.allowP;
    this.#log = options.log;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    this.#chain = this.#connectUpstream(upstream).catch(() => this.close());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#upstream?.close();
    this.#socket.destroy();
  }

  // --- upstream setup ------------------------------------------------------

  async #connectUpstream(where: JlinkProxyUpstream): Promise<void> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = 'path' in where ? net.connect({ path: where.path }) : net.connect({ host: where.host, port: where.port });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    const up = new RspConnection(socket);
    this.#upstream = up;
    up.on('close', () => this.close());
    if (this.closed) return up.close();
    // QEMU stops a running VM when a gdb client connects and then sends that client an
    // unsolicited `T02…` first: it takes the place of our answer, whose real reply then
    // arrives with nobody waiting and is dropped. Ask again until the answer is the real one.
    for (let attempt = 0; ; attempt++) {
      const reply = await up.requestText('qSupported:multiprocess+;xmlRegisters=arm;qRelocInsn+;swbreak+;hwbreak+');
      if (reply.includes('PacketSize=')) break;
      if (attempt >= 5) throw new Error(`QEMU answered qSupported with ${JSON.stringify(reply)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // QEMU answers P only after target.xml was read; its numbers are learnt from it, by name.
    const byName = new Map<string, number>();
    let next = 0;
    const collect = async (annex: string): Promise<void> => {
      const xml = await this.#readAnnex(annex);
      for (const m of xml.matchAll(/<xi:include\s+href="([^"]+)"|<reg\s([^>]*)>/g)) {
        if (m[1] !== undefined) {
          await collect(m[1]);
          continue;
        }
        const attrs = m[2] ?? '';
        const regnum = /regnum="(\d+)"/.exec(attrs)?.[1];
        if (regnum !== undefined) next = Number(regnum);
        const name = /name="([^"]+)"/.exec(attrs)?.[1];
        if (name !== undefined) byName.set(name.toLowerCase(), next);
        next++;
      }
    };
    await collect('target.xml');
    for (const r of JLINK_REGISTERS) {
      const qemu = byName.get(r.name.toLowerCase());
      if (qemu !== undefined) this.#regMap.set(r.regnum, qemu);
    }
  }

  async #readAnnex(annex: string): Promise<string> {
    let text = '';
    for (;;) {
      const reply = await this.#up().request(`qXfer:features:read:${annex}:${text.length.toString(16)},ffb`);
      if (reply[0] !== 0x6d && reply[0] !== 0x6c) throw new Error(`QEMU cannot read ${annex}`); // 'm' / 'l'
      text += Buffer.from(unescapeBinary(reply.subarray(1))).toString('latin1');
      if (reply[0] === 0x6c || reply.length === 1) return text;
    }
  }

  #up(): RspConnection {
    if (!this.#upstream || this.#upstream.closed) throw new Error('upstream closed');
    return this.#upstream;
  }

  // --- downstream wire -----------------------------------------------------

  #write(bytes: Uint8Array | string): void {
    if (!this.closed && this.#socket.writable) this.#socket.write(bytes);
  }

  #send(payload: string | Uint8Array): void {
    this.#lastReply = frame(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload);
    this.#write(this.#lastReply);
  }

  #output(text: string): void {
    this.#send(`O${hexEncode(Buffer.from(text, 'utf8'))}`);
  }

  #onData(chunk: Buffer): void {
    let events;
    try {
      events = this.#parser.push(chunk);
    } catch {
      return this.close();
    }
    for (const event of events) {
      if (event.kind === 'nack' && !this.#noAck && this.#lastReply) this.#write(this.#lastReply);
      else if (event.kind === 'interrupt') this.#onInterrupt();
      else if (event.kind === 'packet') {
        if (!event.checksumOk) {
          // Ack mode: ask again. No-ack mode: J-Link logs an error and drops the packet.
          if (!this.#noAck) this.#write('-');
          continue;
        }
        if (!this.#noAck) this.#write('+');
        const raw = event.payload;
        const text = Buffer.from(raw).toString('latin1');
        this.#log.push(text);
        const resume = text[0] === 'c' || text[0] === 's';
        if (resume) this.#queuedResumes++;
        this.#chain = this.#chain.then(async () => {
          if (resume) this.#queuedResumes--;
          if (this.closed) return;
          try {
            const reply = await this.#handle(text, raw);
            if (reply !== null) this.#send(reply);
          } catch {
            if (!this.#upstream || this.#upstream.closed) this.close();
            else this.#send('E01');
          }
        });
      }
    }
  }

  #onInterrupt(): void {
    const run = this.#run;
    if (run) {
      if (run.free) run.notify = true;
      this.#upstream?.interrupt();
    } else if (this.#queuedResumes > 0) {
      this.#pendingInterrupt = true;
    }
  }

  // --- requests ------------------------------------------------------------

  /** Answers one client request; `null` = no reply. */
  async #handle(text: string, raw: Uint8Array): Promise<string | Uint8Array | null> {
    if (text.startsWith('qSupported')) return JLINK_QSUPPORTED;
    if (text === 'QStartNoAckMode') {
      this.#send('OK');
      this.#noAck = true;
      return null;
    }
    if (text === '?') {
      // QEMU's `?` removes every breakpoint: forward it once per upstream connection only.
      if (!this.#questionForwarded && !this.#run) {
        this.#questionForwarded = true;
        await this.#up().requestText('?');
      }
      return 'S05';
    }
    if (text.startsWith('qXfer:features:read:')) return this.#xferFeatures(text);
    if (text === 'qAttached') return '1';
    if (text === 'qC') return 'QC0000dead';
    if (text === 'qfThreadInfo') return 'm0000dead';
    if (text === 'qsThreadInfo') return 'l';
    if (text.startsWith('qSymbol')) return 'OK';
    if (text[0] === 'H' || text[0] === 'T') return 'OK';
    if (text.startsWith('qRcmd,')) return this.#monitor(Buffer.from(hexDecode(text.slice(6))).toString('utf8'));
    if (text === 'D' || text.startsWith('D;')) return ''; // J-Link does not detach: the target stays as it is
    if (text === 'k') return null;
    if (text.startsWith('vCont')) return '';
    if (text[0] === 'p') return 'E01'; // older J-Link: read registers with `g`

    if (text === 'c' && this.#run?.free) {
      // `monitor go` before: the client now waits for the stop of that run.
      const run = this.#run;
      run.free = false;
      return jlinkStop(await run.stopped);
    }
    const op = text[0];
    const memoryOrRegs = op === 'g' || op === 'G' || op === 'm' || op === 'M' || op === 'X' || op === 'P' || op === 'c' || op === 's' || op === 'Z' || op === 'z';
    if (!memoryOrRegs) return '';
    if (this.#run) return 'E01'; // running after `monitor go`: nothing goes upstream until it is halted

    switch (op) {
      case 'g':
        return (await this.#readRegs(G_REGNUMS)) ?? 'E01';
      case 'G':
        return this.#writeCoreRegs(text.slice(1));
      case 'P':
        return this.#writeReg(text);
      case 'm': {
        const [addr, len] = text.slice(1).split(',');
        return this.#readMemory(parseHex(addr), Math.min(parseHex(len), JLINK_MAX_READ));
      }
      case 'M': {
        const [head, data = ''] = text.slice(1).split(':');
        const [addr, len] = (head ?? '').split(',');
        const bytes = hexDecode(data);
        if (bytes.length !== parseHex(len)) return 'E01';
        return this.#writeMemory(parseHex(addr), bytes);
      }
      case 'X': {
        const colon = raw.indexOf(0x3a);
        if (colon < 0) return 'E01';
        const [addr, len] = text.slice(1, colon).split(',');
        const bytes = unescapeBinary(raw.subarray(colon + 1));
        if (bytes.length !== parseHex(len)) return 'E01';
        return bytes.length === 0 ? 'OK' : this.#writeMemory(parseHex(addr), bytes);
      }
      case 'Z':
      case 'z':
        return /^[zZ][0-4],/.test(text) ? this.#up().requestText(text) : '';
      default: // 'c' / 's', with or without an address
        return this.#resume(text);
    }
  }

  #xferFeatures(text: string): string | Uint8Array {
    const m = /^qXfer:features:read:([^:]+):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(text);
    if (!m) return 'E00';
    if (m[1] !== 'target.xml') return 'E00';
    const off = parseInt(m[2]!, 16);
    const len = parseInt(m[3]!, 16);
    const chunk = JLINK_TARGET_XML.slice(off, off + len);
    const last = off + len >= JLINK_TARGET_XML.length;
    return Buffer.concat([Buffer.from(last ? 'l' : 'm'), escapeBinary(Buffer.from(chunk, 'latin1'))]);
  }

  /** Hex of the given J-Link registers, or undefined if one is missing. */
  async #readRegs(regnums: readonly number[]): Promise<string | undefined> {
    if (regnums === G_REGNUMS) {
      // QEMU's own `g` (once target.xml was read) is exactly r0–r15, xpsr.
      const g = await this.#up().requestText('g');
      if (g.length === G_REGNUMS.length * 8) return g;
    }
    let out = '';
    for (const regnum of regnums) {
      const qemu = this.#regMap.get(regnum);
      if (qemu === undefined) return undefined;
      const value = await this.#up().requestText(`p${qemu.toString(16)}`);
      if (!/^[0-9a-fA-F]{8}$/.test(value)) return undefined;
      out += value;
    }
    return out;
  }

  async #writeCoreRegs(hex: string): Promise<string> {
    if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length !== G_REGNUMS.length * 8) return 'E01';
    if ((await this.#up().requestText(`G${hex}`)) === 'OK') return 'OK';
    for (let i = 0; i < G_REGNUMS.length; i++) {
      const qemu = this.#regMap.get(G_REGNUMS[i]!);
      if (qemu === undefined) return 'E01';
      if ((await this.#up().requestText(`P${qemu.toString(16)}=${hex.slice(8 * i, 8 * i + 8)}`)) !== 'OK') return 'E01';
    }
    return 'OK';
  }

  async #writeReg(text: string): Promise<string> {
    if (!this.#allowP) return 'E01';
    const m = /^P([0-9a-fA-F]+)=([0-9a-fA-F]{8})$/.exec(text);
    const qemu = m ? this.#regMap.get(parseInt(m[1]!, 16)) : undefined;
    if (!m || qemu === undefined) return 'E01';
    return this.#up().requestText(`P${qemu.toString(16)}=${m[2]}`);
  }

  async #readMemory(addr: number, len: number): Promise<string> {
    let out = '';
    for (let done = 0; done < len; ) {
      const n = Math.min(QEMU_MAX_READ, len - done);
      const reply = await this.#up().requestText(`m${(addr + done).toString(16)},${n.toString(16)}`);
      if (!/^([0-9a-fA-F]{2})+$/.test(reply)) return done === 0 ? reply || 'E01' : out;
      out += reply;
      done += reply.length / 2;
      if (reply.length / 2 < n) break;
    }
    return out;
  }

  async #writeMemory(addr: number, data: Uint8Array): Promise<string> {
    for (let done = 0; done < data.length; done += QEMU_MAX_WRITE) {
      const part = data.subarray(done, done + QEMU_MAX_WRITE);
      const reply = await this.#up().requestText(`M${(addr + done).toString(16)},${part.length.toString(16)}:${hexEncode(part)}`);
      if (reply !== 'OK') return reply || 'E01';
    }
    return 'OK';
  }

  /** Runs the target upstream (`c`/`s` from the client) and waits for it to stop. */
  async #resume(packet: string): Promise<string> {
    const run = this.#startRun(packet, false);
    if (this.#pendingInterrupt) {
      this.#pendingInterrupt = false;
      // After the packet has surely been written: QEMU ignores a ^C while halted.
      setImmediate(() => this.#upstream?.interrupt());
    }
    return jlinkStop(await run.stopped);
  }

  #startRun(packet: string, free: boolean): Run {
    const run: Run = { stopped: this.#up().requestText(packet, { timeoutMs: Infinity }), free, notify: false };
    this.#run = run;
    run.stopped.then(
      (reply) => {
        if (this.#run === run) this.#run = undefined;
        if (run.notify) this.#send(jlinkStop(reply));
      },
      () => undefined,
    );
    return run;
  }

  /** Stops a `monitor go` run, if any. */
  async #halt(): Promise<void> {
    const run = this.#run;
    if (!run) return;
    this.#upstream?.interrupt();
    await run.stopped;
  }

  // --- monitor commands ----------------------------------------------------

  async #monitor(command: string): Promise<string> {
    const words = command.trim().split(/\s+/);
    const rest = words.slice(1).join(' ');
    switch ((words[0] ?? '').toLowerCase()) {
      case 'halt':
        await this.#halt();
        return 'OK';
      case 'go':
        if (!this.#run) this.#startRun('c', true);
        return 'OK';
      case 'reset': {
        await this.#halt();
        this.#output('Resetting target\n');
        const reply = await this.#up().requestText(`qRcmd,${hexEncode(Buffer.from('system_reset'))}`);
        return reply === 'OK' ? 'OK' : 'E01';
      }
      case 'sleep':
        await new Promise((resolve) => setTimeout(resolve, Number(words[1] ?? 0) || 0));
        return 'OK';
      case 'speed':
        this.#output(`Target interface speed set to ${words[1] ?? 'auto'} kHz\n`);
        return 'OK';
      case 'memu32': {
        if (this.#run) return 'E01';
        const [addrText, valueText] = rest.split('=').map((s) => s.trim());
        const addr = parseHex(addrText);
        if (valueText !== undefined) {
          const value = parseHex(valueText);
          this.#output(`Writing ${hex8(value)} to address ${hex8(addr)}\n`);
          return this.#writeMemory(addr, hexDecode(u32le(value)));
        }
        const data = await this.#readMemory(addr, 4);
        if (data.length !== 8) return 'E01';
        this.#output(`Reading from address ${hex8(addr)} (Data = ${hex8(fromLe(data))})\n`);
        return 'OK';
      }
      case 'reg': {
        if (this.#run) return 'E01';
        const reg = JLINK_REGISTERS.find((r) => r.name === (words[1] ?? '').toUpperCase());
        const value = reg && (await this.#readRegs([reg.regnum]));
        if (!reg || value === undefined) {
          this.#output(`ERROR: Cannot read register ${words[1] ?? ''}\n`);
          return 'OK';
        }
        this.#output(`Reading register (${reg.name} = ${hex8(fromLe(value))})\n`);
        return 'OK';
      }
      case 'regs': {
        if (this.#run) return 'E01';
        const g = await this.#readRegs(G_REGNUMS);
        if (g === undefined) return 'E01';
        const names = G_REGNUMS.map((n) => JLINK_REGISTERS.find((r) => r.regnum === n)!.name);
        this.#output(names.map((name, i) => `${name} = ${hex8(fromLe(g.slice(8 * i, 8 * i + 8)))}`).join(', ') + '\n');
        return 'OK';
      }
      default:
        return '';
    }
  }
}

/**
 * Starts a J-Link-dialect GDB server on a free loopback port in front of QEMU's
 * gdbstub at `upstream`.
 *
 * @example
 * ```ts
 * const qemu = await startQemu({ machine: 'mps3-an547' });
 * const jlink = await startJlinkProxy(qemu.connectOptions);
 * // connect a client to jlink.host:jlink.port …
 * await jlink.close();
 * ```
 */
export async function startJlinkProxy(upstream: JlinkProxyUpstream, options: JlinkProxyOptions = {}): Promise<JlinkProxy> {
  const requests = options.log ?? [];
  const sessionOptions = { allowP: options.allowP ?? true, log: requests };
  let session: Session | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (session && !session.closed) {
      socket.destroy(); // J-Link serves one GDB client at a time
      return;
    }
    session = new Session(socket, upstream, sessionOptions);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('The proxy has no TCP address');
  return {
    host: '127.0.0.1',
    port: address.port,
    requests,
    close: async () => {
      session?.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
