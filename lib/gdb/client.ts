/**
 * The GDB server as a debug target: memory, registers by name, breakpoints,
 * run control, monitor commands. Built on {@link RspConnection}; knows nothing
 * of flash.
 * @module
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AbortedError,
  ConnectError,
  ConnectionClosedError,
  ReplyFormatError,
  RspflashError,
  RspTimeoutError,
  ServerError,
  TargetStateError,
  UnsupportedError,
  hex32,
} from '../errors.js';
import { createDebug } from '../debug.js';
import { ABORT_GRACE_MS, RspConnection, type ConnectionStats } from '../rsp/connection.js';
export type { ConnectionStats };
export { ABORT_GRACE_MS };
import { PacketWriter, fitEscaped, hexDecode, hexEncode, unescapeBinary } from '../rsp/packet.js';
import { parseStopReply, type StopReply } from './stop.js';
import { parseTargetXml, type RegisterInfo, type TargetDescription } from './target-xml.js';
import { parseMemoryMap, type MemoryRegion } from './memory-map.js';
import { DIALECTS, detectServer, parseSupported, type ServerDialect, type ServerKind } from './servers.js';

/** Where the GDB server is: TCP host and port, a Unix socket / named pipe path, or an already open stream. */
export type GdbEndpoint =
  | {
      /** Host name or address; default `localhost`. */
      host?: string;
      /** TCP port; default {@link DEFAULT_GDB_PORT}. */
      port?: number;
    }
  | {
      /** Path of a Unix socket or Windows named pipe. */
      path: string;
    }
  | {
      /** An already open byte stream to the server (a socket, a child process's stdio). */
      stream: Duplex;
    };

/** The J-Link GDB server's default port. */
export const DEFAULT_GDB_PORT = 2331;

/** Options of {@link GdbClient.connect}. */
export interface GdbConnectOptions {
  /** Time to open the connection, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Default time the server has to answer a request, ms (default 10 000). */
  timeoutMs?: number;
  /** Treat the server as this kind instead of detecting it. */
  server?: ServerKind;
  /** Use no-ack mode when the server offers it (default true). */
  noAck?: boolean;
  /** Memory-write packets in flight at once; default per server ({@link ServerDialect.writeWindow}). */
  writeWindow?: number;
  /**
   * Cancels connecting; afterwards it bounds every request: once it aborts,
   * the server has `ABORT_GRACE_MS` (1 s) to answer each one (a restore after
   * a cancel still works on a live server), and a request it leaves unanswered
   * fails with `AbortedError` and closes the link, instead of waiting out
   * `timeoutMs`. A running `continue` is not cut short (its caller interrupts).
   */
  signal?: AbortSignal;
}

/**
 * Servers whose answer to `?` removes every breakpoint: QEMU's gdbstub
 * (`handle_target_halt` in gdbstub.c: "Remove all the breakpoints when this
 * query is issued, because gdb is doing an initial connect"), which would
 * wipe the breakpoints a debugger left in QEMU between two clients. QEMU
 * stops the VM whenever a client connects, so the core is halted without
 * asking; `qC` names the thread instead.
 */
const STOP_QUERY_CLEARS_BREAKPOINTS: ReadonlySet<ServerKind> = new Set(['qemu']);

/** What the server said about itself while connecting. */
export interface ServerInfo {
  /** Which server it is (detected, or the `server` option). */
  kind: ServerKind;
  /** How rspflash talks to this kind of server. */
  dialect: ServerDialect;
  /** Largest request payload the server accepts, bytes (`PacketSize`); 400 if it does not say, as GDB assumes. */
  packetSize: number;
  /** `qSupported` features. */
  features: ReadonlyMap<string, string | boolean>;
  /** No-ack mode is on: packets are not acknowledged with `+`. */
  noAck: boolean;
  /** Binary memory writes (`X`) work; false after the probe found only hex `M`. `undefined` until probed. */
  binaryWrite: boolean | undefined;
}

/** Result of {@link GdbClient.continue}. */
export interface ContinueResult {
  /** Why the core stopped. */
  stop: StopReply;
  /** True when the core was stopped by our interrupt after the timeout (or abort), not by itself. */
  interrupted: boolean;
}

/** Bytes → string, one char per byte (TextDecoder's 'latin1' is really windows-1252). */
const TEXT = { decode: (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1') : '') };
/** Room kept below PacketSize: QEMU's buffer holds PacketSize bytes including a NUL, so one byte less is the safe maximum. */
const PACKET_SLACK = 1;
/** Largest header of a memory packet: `X` + 8 hex digits + `,` + 8 hex digits + `:`. */
const MEMORY_HEADER_MAX = 19;
/** Cap on a qXfer document: a hostile server could otherwise stream for ever. */
const MAX_XFER_BYTES = 4 << 20;
/**
 * Cap on the chunks of one qXfer document. The byte cap alone would let a
 * server that sends one byte per chunk cost 4 Mi round trips; real documents
 * take a few dozen chunks even from servers that send short ones.
 */
const MAX_XFER_CHUNKS = 4096;
/** How long a server has to answer `D`. */
const DETACH_TIMEOUT_MS = 2000;
/** How long a target has to stop after an interrupt before the link is given up. */
const INTERRUPT_GRACE_MS = 3000;
/** Fallback register numbers when a server has no target description (GDB's arm layout). */
const FALLBACK_REGISTERS: readonly RegisterInfo[] = [
  ...['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9', 'r10', 'r11', 'r12', 'sp', 'lr', 'pc'].map((name, regnum) => ({
    name,
    regnum,
    bitsize: 32,
    type: 'uint32',
    feature: 'fallback',
  })),
  { name: 'xpsr', regnum: 25, bitsize: 32, type: 'uint32', feature: 'fallback' },
];
/**
 * Names GDB and servers use for the same register. A name finds the first of
 * its group the server describes, whichever member was asked for.
 */
const REGISTER_ALIASES: readonly (readonly string[])[] = [
  ['xpsr', 'cpsr', 'psr'],
  ['sp', 'r13'],
  ['lr', 'r14'],
  ['pc', 'r15'],
];
/** Last resort for `sp` on a server that only describes the banked stack pointers. */
const SP_FALLBACK = 'msp';

interface GSlot {
  reg: RegisterInfo;
  offset: number;
  size: number;
}

function opError(what: string, request: string, reply: string): ServerError {
  return new ServerError(`${what}: the server answered '${reply}'`, request, reply);
}

function isErrorReply(reply: string): boolean {
  return /^E(\s?[0-9a-fA-F]{2}|\..*)$/.test(reply);
}

/**
 * Whether a payload is a stop reply (`S05`, `T02thread:01;`, `W00`, `X09`). QEMU sends
 * one unasked to a client that connects while the VM runs (it stops the VM on connect):
 * it arrives in place of the answer to the first request and must be skipped.
 */
function isStopReply(payload: Uint8Array): boolean {
  const hex = (c: number | undefined) => c !== undefined && /[0-9a-fA-F]/.test(String.fromCharCode(c));
  const first = payload[0];
  return (first === 0x53 || first === 0x54 || first === 0x57 || first === 0x58) && hex(payload[1]) && hex(payload[2]);
}

/**
 * For requests answered in hex (`g`, `p`, `m`): a stop reply is never their answer. One can arrive late
 * when an interrupt crosses the stop it was meant to cause, and a server may answer the stray ^C with a
 * second stop reply; taking it as the register dump would desynchronize the link, so it is dropped.
 */
const HEX_REPLY = (reply: Uint8Array): boolean => !isStopReply(reply);

function leHex(value: number, bytes: number): string {
  let out = '';
  for (let i = 0; i < bytes; i++) out += ((value >>> (8 * i)) & 0xff).toString(16).padStart(2, '0');
  return out;
}

function readLe32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/** How many of a silent or foreign peer's first bytes an error shows. */
const FIRST_BYTES_SHOWN = 48;

/**
 * The error for a peer that did not answer `qSupported` like a GDB server:
 * the same class and code (a timeout stays a timeout), told as what it
 * probably is, with the first bytes it sent.
 */
function notAGdbServer(err: unknown, first: Uint8Array): unknown {
  if (!(err instanceof RspflashError)) return err;
  if (err.code !== 'RSPFLASH_RSP_TIMEOUT' && err.code !== 'RSPFLASH_CONNECTION_CLOSED' && err.code !== 'RSPFLASH_PROTOCOL') return err;
  const sent =
    first.length === 0
      ? 'it sent nothing'
      : `it sent ${JSON.stringify(String.fromCharCode(...first))}${first.length >= FIRST_BYTES_SHOWN ? '…' : ''}`;
  const busy = err.code === 'RSPFLASH_RSP_TIMEOUT' && first.length === 0 ? ', or a GDB server busy with another client' : '';
  return err.within('connect', `The peer did not answer qSupported like a GDB server (${sent}): it is probably not a GDB server${busy}. ${err.message}`);
}

async function openSocket(endpoint: GdbEndpoint, options: GdbConnectOptions): Promise<Duplex> {
  if ('stream' in endpoint) return endpoint.stream;
  const timeoutMs = options.connectTimeoutMs ?? 5000;
  const where = 'path' in endpoint ? endpoint.path : `${endpoint.host ?? 'localhost'}:${endpoint.port ?? DEFAULT_GDB_PORT}`;
  const host = 'path' in endpoint ? endpoint.path : (endpoint.host ?? 'localhost');
  const port = 'path' in endpoint ? undefined : (endpoint.port ?? DEFAULT_GDB_PORT);
  return new Promise<Duplex>((resolve, reject) => {
    const socket = 'path' in endpoint ? net.connect({ path: endpoint.path }) : net.connect({ host, port: port! });
    // Small request/reply packets must not wait for Nagle + delayed ACK (733 s vs 2 s measured on 3,000 calls).
    socket.setNoDelay(true);
    const done = (err?: Error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ECONNREFUSED'
          ? `nothing is listening at ${where}`
          : err.code === 'ENOENT'
            ? `no socket at ${where}`
            : err.message;
      done(new ConnectError(`Cannot connect to the GDB server at ${where}: ${why}`, host, port, { cause: err }));
    };
    const onAbort = () => done(new ConnectError(`Connecting to ${where} was cancelled`, host, port));
    const timer = setTimeout(
      () => done(new ConnectError(`Cannot connect to the GDB server at ${where}: no answer within ${timeoutMs} ms`, host, port)),
      timeoutMs,
    );
    socket.once('error', onError);
    socket.once('connect', () => done());
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A connection to a GDB server, seen as a debug target.
 *
 * Events: `output` (console text from the server, e.g. monitor output),
 * `close` (the error that closed the link, if any).
 *
 * @example
 * ```ts
 * const gdb = await GdbClient.connect({ host: 'localhost', port: 2331 });
 * const { pc } = await gdb.readRegisters(['pc']);
 * const bytes = await gdb.readMemory(0x20000000, 256);
 * await gdb.close();
 * ```
 */
export class GdbClient extends EventEmitter {
  readonly #conn: RspConnection;
  readonly #log = createDebug('gdb');
  /** What the server said about itself while connecting. */
  readonly server: ServerInfo;
  /** Registers the server describes, in register-number order. */
  readonly registers: readonly RegisterInfo[];
  /** The target description, when the server provides one. */
  readonly targetDescription: TargetDescription | undefined;
  /**
   * The stop reply the server gave at connect (`?`); on QEMU, whose `?`
   * removes every breakpoint, `T05` with the thread `qC` names.
   */
  readonly initialStop: StopReply;
  #state: 'halted' | 'running' | 'exited' = 'halted';
  #gLayout: GSlot[] | undefined;
  #gCache: Uint8Array | undefined;
  #gWrite: boolean | undefined;
  #pRead: boolean | undefined;
  #pWrite: boolean | undefined;
  readonly #writeWindow: number;
  readonly #breakpoints = new Map<string, { type: 'sw' | 'hw'; address: number; kind: number }>();
  #memoryMap: MemoryRegion[] | undefined;
  /** Process id from the last stop reply, when the server names threads `pPID.TID`. */
  #lastPid: number | undefined;

  private constructor(
    conn: RspConnection,
    server: ServerInfo,
    description: TargetDescription | undefined,
    initialStop: StopReply,
    writeWindow: number,
  ) {
    super();
    this.#conn = conn;
    this.server = server;
    this.targetDescription = description;
    this.registers = description ? [...description.registers].sort((a, b) => a.regnum - b.regnum) : FALLBACK_REGISTERS;
    this.initialStop = initialStop;
    this.#writeWindow = writeWindow;
    if (initialStop.kind === 'exited' || initialStop.kind === 'killed') this.#state = 'exited';
    this.#noteStop(initialStop);
    conn.on('output', (text: string) => this.emit('output', text));
    conn.on('close', (err: Error | undefined) => this.emit('close', err));
  }

  /**
   * Connects to a GDB server and learns what it is: features (`qSupported`),
   * no-ack mode, the stop state (`?`), the target description with its
   * registers, and the server kind.
   */
  static async connect(endpoint: GdbEndpoint, options: GdbConnectOptions = {}): Promise<GdbClient> {
    const stream = await openSocket(endpoint, options);
    // The first bytes the peer sends, kept until it answers qSupported: when it does not, they tell what it is instead.
    const first: number[] = [];
    const sniff = (chunk: Uint8Array) => first.push(...chunk.subarray(0, Math.max(0, FIRST_BYTES_SHOWN - first.length)));
    stream.on('data', sniff);
    const conn = new RspConnection(stream, { timeoutMs: options.timeoutMs ?? 10_000, ...(options.signal ? { signal: options.signal } : {}) });
    try {
      const supportedReply = await conn
        .requestText('qSupported:swbreak+;hwbreak+', { isReply: (reply) => !isStopReply(reply) })
        .catch((err: unknown) => {
          throw notAGdbServer(err, Uint8Array.from(first));
        })
        .finally(() => stream.off('data', sniff));
      const features = parseSupported(supportedReply);
      const sizeText = features.get('PacketSize');
      const packetSize = typeof sizeText === 'string' && /^[0-9a-fA-F]+$/.test(sizeText) ? parseInt(sizeText, 16) : 400;
      let noAck = false;
      if (options.noAck !== false && features.get('QStartNoAckMode') === true) {
        const reply = await conn.requestText('QStartNoAckMode');
        if (reply === 'OK') {
          conn.setNoAck();
          noAck = true;
        }
      }
      const kind = options.server ?? detectServer(features);
      const stopText = STOP_QUERY_CLEARS_BREAKPOINTS.has(kind) ? await haltedWithoutStopQuery(conn) : await conn.requestText('?');
      const initialStop = parseStopReply(stopText);
      const server: ServerInfo = {
        kind,
        dialect: DIALECTS[kind],
        packetSize: Math.max(packetSize, 64),
        features,
        noAck,
        binaryWrite: undefined,
      };
      let description: TargetDescription | undefined;
      if (features.get('qXfer:features:read') === true) {
        const xfer = (annex: string) => readXfer(conn, server.packetSize, 'features', annex);
        description = await parseTargetXml(await xfer('target.xml'), xfer);
      }
      const client = new GdbClient(conn, server, description, initialStop, options.writeWindow ?? server.dialect.writeWindow);
      client.#log(
        `connected: ${kind} server, PacketSize ${server.packetSize}, no-ack ${noAck}, ${client.registers.length} registers, stop '${stopText}'`,
      );
      return client;
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  /** Counters of the underlying connection (packets, bytes, round trips). */
  get stats(): ConnectionStats {
    return this.#conn.stats;
  }

  /** Whether the link is closed. */
  get closed(): boolean {
    return this.#conn.closed;
  }

  /** Halted, running (a `continue` is pending) or exited. */
  get state(): 'halted' | 'running' | 'exited' {
    return this.#state;
  }

  /** The server's memory map, if it has one (`qXfer:memory-map:read`); J-Link and QEMU do not. */
  async memoryMap(): Promise<MemoryRegion[] | undefined> {
    if (this.#memoryMap) return this.#memoryMap;
    if (this.server.features.get('qXfer:memory-map:read') !== true) return undefined;
    this.#memoryMap = parseMemoryMap(await readXfer(this.#conn, this.server.packetSize, 'memory-map', ''));
    return this.#memoryMap;
  }

  /**
   * Sends a raw packet and returns the reply text; for what the API does not
   * cover. Registers read before are read again afterwards (the packet may
   * have changed them).
   */
  async rawRequest(payload: string, timeoutMs?: number): Promise<string> {
    this.#gCache = undefined; // the packet may change registers (a reset, a P, a step)
    return this.#conn.requestText(payload, timeoutMs === undefined ? {} : { timeoutMs });
  }

  // -------------------------------------------------------------------------
  // Memory

  /** Largest number of bytes one `m` read returns. */
  get readChunk(): number {
    const byPacket = Math.floor((this.server.packetSize - PACKET_SLACK - 1) / 2);
    return Math.min(byPacket, this.server.dialect.maxReadChunk) & ~3;
  }

  /** Reads `length` bytes at `address`, in as many `m` packets as PacketSize requires. */
  async readMemory(address: number, length: number): Promise<Uint8Array> {
    this.#requireHalted('read memory');
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = Math.min(this.readChunk, length - done);
      const at = address + done;
      const request = `m${at.toString(16)},${n.toString(16)}`;
      const reply = await this.#conn.requestText(request, { label: `m ${hex32(at)},${n}`, isReply: HEX_REPLY });
      if (isErrorReply(reply)) {
        throw opError(`Reading ${n} bytes at ${hex32(at)} failed`, request, reply);
      }
      if (reply.length === 0 || reply.length % 2 !== 0) {
        throw new ReplyFormatError(`Reading ${n} bytes at ${hex32(at)}: the server sent ${reply.length === 0 ? 'an empty reply' : 'an odd number of hex digits'}`, reply);
      }
      const bytes = hexDecode(reply);
      if (bytes.length > n) throw new ReplyFormatError(`Reading ${n} bytes at ${hex32(at)}: the server sent ${bytes.length}`, reply.slice(0, 64));
      out.set(bytes, done);
      done += bytes.length; // a server may return fewer bytes than asked: carry on from there
    }
    return out;
  }

  /**
   * Writes `data` at `address`: binary `X` packets where the server has them
   * (probed once with a zero-length `X`), hex `M` otherwise, each filled up to
   * PacketSize, and up to `writeWindow` packets in flight on servers where that
   * is known safe.
   */
  async writeMemory(address: number, data: Uint8Array): Promise<void> {
    this.#requireHalted('write memory');
    if (data.length === 0) return;
    if (this.server.binaryWrite === undefined) await this.#probeBinaryWrite(address);
    const packets = this.#memoryPackets(address, data);
    const replies = await this.#conn.pipeline(packets.payloads(), this.#writeWindow, {
      label: `write ${data.length} bytes at ${hex32(address)}`,
      isError: (reply) => !(reply.length === 2 && reply[0] === 0x4f && reply[1] === 0x4b),
    });
    for (let i = 0; i < replies.length; i++) {
      const text = TEXT.decode(replies[i]);
      if (text !== 'OK') {
        const at = packets.addressOf(i);
        if (text === '') {
          throw new UnsupportedError(`The server does not support memory writes (write at ${hex32(at)})`, `M ${hex32(at)}`);
        }
        throw opError(`Writing memory at ${hex32(at)} failed`, `${this.server.binaryWrite ? 'X' : 'M'} ${hex32(at)}`, text);
      }
    }
  }

  /** Largest number of data bytes one write packet can carry (before escaping, for `X` the worst case). */
  get writeChunk(): number {
    const budget = this.server.packetSize - PACKET_SLACK - MEMORY_HEADER_MAX;
    return this.server.binaryWrite ? budget : Math.floor(budget / 2) & ~3;
  }

  #memoryPackets(address: number, data: Uint8Array): { payloads: () => Generator<PacketWriter>; addressOf: (i: number) => number } {
    const starts: number[] = [];
    const budget = this.server.packetSize - PACKET_SLACK - MEMORY_HEADER_MAX;
    const binary = this.server.binaryWrite === true;
    // Each packet is built in one buffer sized for it, and the connection frames it there:
    // 32 MiB is 16,000 packets, and per-packet copies showed in peak RSS.
    function* payloads(): Generator<PacketWriter> {
      let offset = 0;
      while (offset < data.length) {
        const at = address + offset;
        let n: number;
        let packet: PacketWriter;
        if (binary) {
          n = fitEscaped(data, offset, budget);
          // Whole words per packet unless it is the last: a word split between two packets
          // becomes two partial writes, which a peripheral register or flash may not accept.
          if (offset + n < data.length && n >= 4) n &= ~3;
          const header = `X${at.toString(16)},${n.toString(16)}:`;
          // fitEscaped chose n so that the escaped bytes fit the budget: the writer never grows.
          packet = new PacketWriter(header.length + budget).text(header).binary(data.subarray(offset, offset + n));
        } else {
          n = Math.min(Math.floor(budget / 2) & ~3, data.length - offset);
          const header = `M${at.toString(16)},${n.toString(16)}:`;
          packet = new PacketWriter(header.length + 2 * n).text(header).hex(data.subarray(offset, offset + n));
        }
        starts.push(at);
        offset += n;
        yield packet;
      }
    }
    return { payloads, addressOf: (i) => starts[i] ?? address };
  }

  async #probeBinaryWrite(address: number): Promise<void> {
    // GDB's own probe: a zero-length X. OK = supported; empty = not; an error is ambiguous, so use M.
    const reply = await this.#conn.requestText(`X${address.toString(16)},0:`);
    this.server.binaryWrite = reply === 'OK';
    this.#log(`binary X writes: ${this.server.binaryWrite ? 'yes' : `no (probe answered '${reply}')`}`);
  }

  // -------------------------------------------------------------------------
  // Registers

  /**
   * The register called `name`: case-insensitive (J-Link says `XPSR`), and
   * through aliases either way (`cpsr` finds `xpsr` and `xpsr` finds `cpsr`;
   * `r13` finds `sp`).
   */
  register(name: string): RegisterInfo {
    const wanted = name.toLowerCase();
    const group = REGISTER_ALIASES.find((g) => g.includes(wanted)) ?? [];
    const candidates = [wanted, ...group.filter((n) => n !== wanted), ...(group.includes('sp') ? [SP_FALLBACK] : [])];
    for (const alias of candidates) {
      const found = this.registers.find((r) => r.name.toLowerCase() === alias);
      if (found) return found;
    }
    throw new TargetStateError(`The server does not describe a register called '${name}' (it has ${this.registers.map((r) => r.name).join(', ')})`);
  }

  /** Whether the target has a register of that name. */
  hasRegister(name: string): boolean {
    try {
      this.register(name);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Reads registers by name: those the `g` packet carries from one `g` (or the
   * registers last read, while the core has not run since), the others with
   * one `p` each. A server that refuses `p` (older J-Link answers `E01`) can
   * only give the registers of its `g` packet.
   */
  async readRegisters<N extends string>(names: readonly N[]): Promise<Record<N, number>> {
    this.#requireHalted('read registers');
    const regs = names.map((n) => this.register(n));
    const out = {} as Record<N, number>;
    if (!this.#gLayout) await this.#readG();
    const slots = regs.map((r) => this.#gLayout!.find((s) => s.reg === r));
    const g = slots.some((s) => s !== undefined) ? (this.#gCache ?? (await this.#readG())) : undefined;
    for (let i = 0; i < names.length; i++) {
      const slot = slots[i];
      out[names[i]!] = slot && g ? readLe32(g, slot.offset) : await this.#readP(regs[i]!);
    }
    return out;
  }

  /** Reads every register of the `g` packet (the core registers), by name. */
  async readCoreRegisters(): Promise<Record<string, number>> {
    this.#requireHalted('read registers');
    const g = await this.#readG();
    const out: Record<string, number> = {};
    for (const slot of this.#gLayout!) if (slot.size === 4) out[slot.reg.name.toLowerCase()] = readLe32(g, slot.offset);
    return out;
  }

  /**
   * Writes registers by name. When all are in the `g` packet and the server
   * accepts `G`, one `G` writes them all (the others keep the values last read);
   * otherwise one `P` each. A server that refuses `P` (older J-Link answers
   * `E01`) gets `G` for every register the `g` packet carries.
   */
  async writeRegisters(values: Readonly<Record<string, number>>): Promise<void> {
    this.#requireHalted('write registers');
    const entries = Object.entries(values).map(([name, value]) => ({ reg: this.register(name), value }));
    if (entries.length === 0) return;
    if (this.#gLayout === undefined) await this.#readG();
    const inG = entries.every((e) => this.#inG(e.reg));
    if (inG && this.#gWrite !== false && (entries.length > 1 || this.#pWrite === false)) {
      if (await this.#writeG(entries)) return;
    }
    for (const { reg, value } of entries) await this.#writeP(reg, value);
  }

  /** Whether `reg` is a 32-bit slot of the `g` packet (so `G` can write it). */
  #inG(reg: RegisterInfo): boolean {
    return this.#gLayout?.some((s) => s.reg === reg && s.size === 4) === true;
  }

  /** One `G` over the last-read `g` with `entries` patched in; false when the server refuses `G`. */
  async #writeG(entries: readonly { reg: RegisterInfo; value: number }[]): Promise<boolean> {
    const layout = this.#gLayout!;
    const g = new Uint8Array(this.#gCache ?? (await this.#readG()));
    for (const { reg, value } of entries) {
      const slot = layout.find((s) => s.reg === reg)!;
      new DataView(g.buffer).setUint32(slot.offset, value >>> 0, true);
    }
    const reply = await this.#conn.requestText(`G${hexEncode(g)}`, { label: `G (${entries.map((e) => e.reg.name).join(',')})` });
    if (reply === 'OK') {
      this.#gWrite = true;
      this.#gCache = g;
      return true;
    }
    if (this.#gWrite === true && reply !== '') throw opError('Writing registers failed', 'G', reply);
    this.#gWrite = false;
    this.#log(`G not usable (answered '${reply}'): writing registers one by one with P`);
    return false;
  }

  async #readG(): Promise<Uint8Array> {
    const reply = await this.#conn.requestText('g', { isReply: HEX_REPLY });
    if (isErrorReply(reply) || reply.length === 0) throw opError('Reading registers failed', 'g', reply);
    const g = hexDecode(reply.replace(/x/gi, '0')); // 'xx' = unavailable register
    if (!this.#gLayout) this.#gLayout = this.#layoutOf(g.length);
    this.#gCache = g;
    return g;
  }

  /** Which registers the `g` packet holds: described registers in number order until the reply runs out. */
  #layoutOf(length: number): GSlot[] {
    const slots: GSlot[] = [];
    let offset = 0;
    let lastRegnum = -1;
    for (const reg of this.registers) {
      const size = Math.ceil(reg.bitsize / 8);
      if (offset + size > length) break;
      // Without a description, GDB's legacy arm layout has f0-f7 (12 bytes each) and fps between pc and cpsr.
      if (!this.targetDescription && reg.regnum === 25 && lastRegnum === 15 && length >= 168) offset = 164;
      slots.push({ reg, offset, size });
      offset += size;
      lastRegnum = reg.regnum;
    }
    this.#log(`g packet: ${length} bytes, ${slots.length} registers (${slots.map((s) => s.reg.name).join(',')})`);
    return slots;
  }

  /** Reads one register the `g` packet does not carry. */
  async #readP(reg: RegisterInfo): Promise<number> {
    const request = `p${reg.regnum.toString(16)}`;
    if (this.#pRead === false) {
      throw new UnsupportedError(`The server cannot read register ${reg.name}: it refuses p and its g packet does not carry ${reg.name}`, request);
    }
    const reply = await this.#conn.requestText(request, { isReply: HEX_REPLY });
    if (!isErrorReply(reply) && reply.length >= 2) {
      this.#pRead = true;
      return readLe32(hexDecode(reply.slice(0, 8).padEnd(8, '0').replace(/x/gi, '0')), 0);
    }
    if (this.#pRead === true || (reply !== '' && !isErrorReply(reply))) throw opError(`Reading register ${reg.name} failed`, request, reply);
    // Older J-Link answers every p with E01: from now on only the g packet's registers can be read.
    this.#pRead = false;
    throw new UnsupportedError(
      `The server cannot read register ${reg.name}: p answered '${reply}' and its g packet does not carry ${reg.name}`,
      request,
    );
  }

  async #writeP(reg: RegisterInfo, value: number): Promise<void> {
    const size = Math.ceil(reg.bitsize / 8);
    const request = `P${reg.regnum.toString(16)}=${leHex(value, Math.min(size, 4)).padEnd(size * 2, '0')}`;
    if (this.#pWrite === false) {
      if (this.#inG(reg) && this.#gWrite !== false && (await this.#writeG([{ reg, value }]))) return;
      throw new UnsupportedError(`The server cannot write register ${reg.name}: it refuses P, and G cannot write ${reg.name}`, request);
    }
    const reply = await this.#conn.requestText(request);
    if (reply === 'OK') {
      this.#pWrite = true;
      this.#patchCache(reg, value);
      return;
    }
    const refused = reply === '' || isErrorReply(reply);
    if (this.#pWrite === true || !refused) throw opError(`Writing register ${reg.name} failed`, request, reply);
    // The first P was refused: J-Link versions that answer P with E01 (or not at all) still accept G.
    if (this.#inG(reg) && this.#gWrite !== false && (await this.#writeG([{ reg, value }]))) {
      this.#pWrite = false;
      this.#log(`P not usable (answered '${reply}'): writing registers with G`);
      return;
    }
    if (reply === '') throw new UnsupportedError(`The server cannot write register ${reg.name} (P unsupported)`, request);
    throw opError(`Writing register ${reg.name} failed`, request, reply);
  }

  #patchCache(reg: RegisterInfo, value: number): void {
    const slot = this.#gLayout?.find((s) => s.reg === reg);
    if (slot && this.#gCache) {
      const copy = new Uint8Array(this.#gCache);
      new DataView(copy.buffer).setUint32(slot.offset, value >>> 0, true);
      this.#gCache = copy;
    }
  }

  // -------------------------------------------------------------------------
  // Breakpoints and run control

  /** Inserts a breakpoint: `hw` (`Z1`, FPB comparator) or `sw` (`Z0`). `kind` 2 = 16-bit Thumb instruction. */
  async insertBreakpoint(address: number, type: 'sw' | 'hw' = 'hw', kind = 2): Promise<void> {
    const request = `Z${type === 'hw' ? 1 : 0},${address.toString(16)},${kind}`;
    const reply = await this.#conn.requestText(request);
    if (reply === 'OK') {
      this.#breakpoints.set(`${type}:${address}`, { type, address, kind });
      return;
    }
    if (reply === '') throw new UnsupportedError(`The server does not support ${type === 'hw' ? 'hardware' : 'software'} breakpoints`, request);
    throw opError(`Setting a breakpoint at ${hex32(address)} failed`, request, reply);
  }

  /** Removes a breakpoint set with {@link insertBreakpoint}. */
  async removeBreakpoint(address: number, type: 'sw' | 'hw' = 'hw', kind = 2): Promise<void> {
    const request = `z${type === 'hw' ? 1 : 0},${address.toString(16)},${kind}`;
    const reply = await this.#conn.requestText(request);
    // Still listed after a refusal: it is still set, and close() (or the caller) may try again.
    if (reply !== 'OK' && reply !== '') throw opError(`Removing the breakpoint at ${hex32(address)} failed`, request, reply);
    this.#breakpoints.delete(`${type}:${address}`);
  }

  /** Breakpoints this client inserted and has not removed. */
  get breakpoints(): {
    /** Software (`Z0`) or hardware (`Z1`) breakpoint. */
    type: 'sw' | 'hw';
    /** Where it is set. */
    address: number;
  }[] {
    return [...this.#breakpoints.values()].map(({ type, address }) => ({ type, address }));
  }

  /**
   * Resumes the core and waits for it to stop. After `timeoutMs` (or when
   * `signal` aborts) the core is interrupted and the result says so; if it does
   * not stop even then, the link is closed with an {@link RspTimeoutError}.
   */
  async continue(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ContinueResult> {
    return this.#resume('c', options);
  }

  /** Executes one instruction. */
  async step(options: { timeoutMs?: number } = {}): Promise<StopReply> {
    return (await this.#resume('s', { timeoutMs: options.timeoutMs ?? 5000 })).stop;
  }

  async #resume(packet: 'c' | 's', options: { timeoutMs?: number; signal?: AbortSignal }): Promise<ContinueResult> {
    this.#requireHalted(packet === 'c' ? 'continue' : 'step');
    if (options.signal?.aborted) throw new AbortedError(`Cancelled before '${packet}'; the core is still halted`, { cause: options.signal.reason });
    this.#state = 'running';
    this.#gCache = undefined;
    let interrupted = false;
    let grace: NodeJS.Timeout | undefined;
    const interrupt = () => {
      if (interrupted || this.#state !== 'running') return;
      interrupted = true;
      this.#log(`interrupting the core (${options.signal?.aborted ? 'aborted' : 'timeout'})`);
      this.#conn.interrupt();
      grace = setTimeout(() => {
        this.#conn.close();
      }, INTERRUPT_GRACE_MS);
    };
    const timer = options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs) ? setTimeout(interrupt, options.timeoutMs) : undefined;
    options.signal?.addEventListener('abort', interrupt, { once: true });
    try {
      const reply = await this.#conn.requestText(packet, { timeoutMs: Infinity, label: packet });
      if (isErrorReply(reply)) throw opError(`Resuming the core ('${packet}') failed`, packet, reply);
      const stop = parseStopReply(reply);
      this.#noteStop(stop);
      this.#state = stop.kind === 'exited' || stop.kind === 'killed' ? 'exited' : 'halted';
      return { stop, interrupted };
    } catch (err) {
      if (interrupted && err instanceof ConnectionClosedError) {
        throw new RspTimeoutError(
          `The core did not stop within ${INTERRUPT_GRACE_MS} ms of an interrupt; the connection was closed`,
          '^C',
          INTERRUPT_GRACE_MS,
          { cause: err },
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
      clearTimeout(grace);
      options.signal?.removeEventListener('abort', interrupt);
      if (this.#state === 'running') this.#state = 'halted';
    }
  }

  // -------------------------------------------------------------------------
  // Monitor and teardown

  /**
   * Runs a server command (`monitor CMD` in GDB, `qRcmd`) and returns its text
   * output. Throws {@link UnsupportedError} when the server does not know it:
   * an empty reply (J-Link), or `OK` with the dialect's "unknown command"
   * text (QEMU's HMP monitor). Registers read before are read again afterwards:
   * the command may have reset the core.
   */
  async monitor(command: string, options: { timeoutMs?: number } = {}): Promise<string> {
    let output = '';
    // A monitor command may reset the core or write registers: registers read before are stale.
    this.#gCache = undefined;
    const request = `qRcmd,${hexEncode(Buffer.from(command, 'utf8'))}`;
    const reply = await this.#conn.requestText(request, {
      label: `monitor ${command}`,
      onOutput: (text) => (output += text),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    if (reply === 'OK') {
      if (this.server.dialect.unknownMonitorCommand?.test(output)) {
        throw new UnsupportedError(`The server does not know 'monitor ${command}': ${output.trim()}`, `monitor ${command}`);
      }
      return output;
    }
    if (reply === '') throw new UnsupportedError(`The server does not support 'monitor ${command}'`, `monitor ${command}`);
    if (isErrorReply(reply)) throw opError(`'monitor ${command}' failed`, `monitor ${command}`, reply);
    return output + Buffer.from(hexDecode(reply)).toString('utf8');
  }

  /**
   * Closes the connection. With `resume`, the target runs on (J-Link:
   * `monitor go`; others: detach); otherwise it stays halted. Breakpoints this
   * client inserted are removed first.
   *
   * @throws {@link ServerError} or {@link UnsupportedError} when the server
   * refused to let the target run; the connection is closed all the same.
   */
  async close(options: { resume?: boolean } = {}): Promise<void> {
    if (this.#conn.closed) return;
    try {
      if (this.#state === 'halted') {
        for (const bp of [...this.#breakpoints.values()]) await this.removeBreakpoint(bp.address, bp.type, bp.kind).catch(() => undefined);
        if (options.resume) {
          if (this.server.dialect.resume === 'monitor-go') await this.monitor('go');
          else await this.#detach();
        }
      }
    } finally {
      this.#conn.close();
    }
  }

  /**
   * `D`, which lets the target run on. A server in multiprocess mode wants the
   * process id (`D;1`) and answers a bare `D` with an error: QEMU stays in that
   * mode for every later client once one client (GDB does) asked for
   * `multiprocess+`. Its stop replies then name threads `pPID.TID`.
   */
  async #detach(): Promise<void> {
    const reply = await this.#conn.requestText('D', { timeoutMs: DETACH_TIMEOUT_MS });
    if (reply === 'OK') return;
    if (isErrorReply(reply)) {
      const pid = this.#lastPid ?? 1;
      const retry = await this.#conn.requestText(`D;${pid.toString(16)}`, { timeoutMs: DETACH_TIMEOUT_MS });
      if (retry === 'OK') return;
      throw opError('Detaching to let the target run failed', `D;${pid.toString(16)}`, retry);
    }
    if (reply === '') throw new UnsupportedError('The server does not support detaching (D): the target stays halted', 'D');
    throw opError('Detaching to let the target run failed', 'D', reply);
  }

  /** Remembers the process id of a multiprocess thread id (`p01.01`) in a stop reply. */
  #noteStop(stop: StopReply): void {
    if (stop.kind !== 'signal' || !stop.thread) return;
    const m = /^p([0-9a-fA-F]+)/.exec(stop.thread);
    if (m) this.#lastPid = parseInt(m[1]!, 16);
  }

  #requireHalted(what: string): void {
    if (this.#conn.closed) {
      throw this.#conn.closeReason ?? new ConnectionClosedError(`Cannot ${what}: the connection to the GDB server is closed`);
    }
    if (this.#state === 'running') throw new TargetStateError(`Cannot ${what} while the core is running`);
  }
}

/**
 * The connect-time stop reply without sending `?` (see
 * {@link STOP_QUERY_CLEARS_BREAKPOINTS}): `T05thread:ID;` with the thread
 * `qC` names, `S05` when the server does not answer `qC`.
 */
async function haltedWithoutStopQuery(conn: RspConnection): Promise<string> {
  const reply = await conn.requestText('qC', { isReply: (r) => !isStopReply(r) });
  const thread = /^QC([0-9a-fA-F.p-]+)$/.exec(reply)?.[1];
  return thread === undefined ? 'S05' : `T05thread:${thread};`;
}

/** Reads a whole `qXfer` object, chunk by chunk, unescaping binary data. */
async function readXfer(conn: RspConnection, packetSize: number, object: string, annex: string): Promise<string> {
  const chunk = Math.max(64, packetSize - 16);
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (let chunks = 1; ; chunks++) {
    if (chunks > MAX_XFER_CHUNKS) {
      throw new ReplyFormatError(`qXfer ${object} '${annex}' did not end after ${MAX_XFER_CHUNKS} chunks (${offset} bytes)`, '');
    }
    const request = `qXfer:${object}:read:${annex}:${offset.toString(16)},${chunk.toString(16)}`;
    const reply = await conn.request(request, { label: `qXfer ${object} ${annex} @${offset}` });
    const text = TEXT.decode(reply.subarray(0, 3));
    if (reply.length === 0) throw new UnsupportedError(`The server does not provide qXfer:${object} ${annex}`, request);
    if (text.startsWith('E')) throw opError(`Reading ${object} '${annex}' failed`, request, TEXT.decode(reply));
    const type = reply[0];
    if (type !== 0x6d && type !== 0x6c) throw new ReplyFormatError(`Unexpected reply to qXfer ${object} '${annex}'`, TEXT.decode(reply.subarray(0, 64)));
    const data = unescapeBinary(reply.subarray(1));
    parts.push(data);
    offset += data.length;
    if (offset > MAX_XFER_BYTES) throw new ReplyFormatError(`qXfer ${object} '${annex}' exceeds ${MAX_XFER_BYTES} bytes`, '');
    if (type === 0x6c) break; // 'l': last
    if (data.length === 0) throw new ReplyFormatError(`qXfer ${object} '${annex}' sent an empty 'm' chunk (no progress)`, 'm');
  }
  return Buffer.concat(parts).toString('utf8');
}
