/**
 * A fault-injecting relay between rspflash and a GDB server (QEMU's gdbstub in
 * the tests): what a flaky cable, a restarted server or a confused probe does
 * to the byte stream, on cue or at random with a seed.
 *
 * Both directions are parsed with lib/rsp/packet.ts's {@link PacketParser} and
 * re-framed event by event, so a fault can be aimed at one packet:
 *
 * | action    | toClient (a reply)                               | toServer (a request)                         |
 * | --------- | ------------------------------------------------ | -------------------------------------------- |
 * | `drop`    | both sockets are destroyed before the packet (or  | same (`after`: a `c` reaches QEMU, whose     |
 * |           | just after it, with `after`)                      | core then runs on with nobody connected)     |
 * | `corrupt` | one payload byte flipped, checksum kept → `-`     | same: the server answers `-`                 |
 * | `delay`   | the packet and all after it wait `ms`             | same                                         |
 * | `stall`   | the packet and everything after it never arrive   | same                                         |
 * | `error`   | the reply is replaced by `E01`                    | not forwarded; the proxy answers `+$E01#a6`  |
 * | `console` | `count` `O` packets are sent before the reply     | (ignored)                                    |
 * | `garbage` | bytes that are no packet are sent before it       | (ignored: bytes would stop a running QEMU)   |
 * | `rewrite` | the payload is replaced, with a correct checksum  | same                                         |
 * | `inject`  | (ignored)                                         | forwarded, then the proxy sends `payload` to |
 * |           |                                                   | the server itself (e.g. `qRcmd,…` for a      |
 * |           |                                                   | reset while the core runs) and swallows its  |
 * |           |                                                   | ack and reply                                |
 *
 * QEMU facts the relay respects (see /work/shared/FACTS.md): any byte sent to
 * QEMU while the core runs stops it, so the client's acknowledgements of
 * packets the proxy made up itself (`O`, `E01`) are swallowed instead of
 * forwarded, and nothing is ever injected toward the server. QEMU stays in ack
 * mode, so a corrupted reply is answered `-` by rspflash and re-sent by QEMU.
 *
 * One client at a time; each client gets its own upstream connection.
 * @module
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketParser, frame, hexEncode, type WireEvent } from '../../lib/rsp/packet.js';

/** Which way a packet travels: from rspflash to the server, or back. */
export type Direction = 'toServer' | 'toClient';

/** What to do to the packet a rule fires on. See the module table. */
export type FaultAction =
  | { kind: 'drop'; after?: boolean }
  | { kind: 'corrupt' }
  | { kind: 'delay'; ms: number }
  | { kind: 'stall' }
  | { kind: 'error'; reply?: string }
  | { kind: 'console'; count?: number; text?: string }
  | { kind: 'garbage'; length?: number }
  | { kind: 'rewrite'; payload: (text: string) => string }
  | { kind: 'inject'; payload: string; afterMs?: number };

/** Kinds of {@link FaultAction}. */
export type FaultKind = FaultAction['kind'];

/**
 * When a fault fires. Without `match` and `afterBytes` every packet in the
 * direction matches; `nth` picks the nth match (1-based); `afterBytes` fires
 * once the direction has carried that many bytes (for `drop`, the stream is
 * cut exactly there, mid-packet if need be).
 */
export interface FaultRule {
  direction: Direction;
  /** Tested against the packet's payload as latin1 text (still escaped). */
  match?: RegExp;
  /**
   * toClient only: the reply must answer a request matching this (replies
   * are paired with requests in order, as the protocol sends them). `nth`
   * then counts such requests: `nth: 5` is the reply to the 5th.
   */
  replyTo?: RegExp;
  /** Fire at the nth matching packet, 1-based. Default 1. */
  nth?: number;
  /** Fire when this many bytes have gone through in `direction` (counted over the re-framed stream). */
  afterBytes?: number;
  /** How many times the rule may fire (default 1; `Infinity` for always). */
  times?: number;
  action: FaultAction;
}

/** Faults at random: each packet in `directions` gets one of `kinds` with probability `rate`. */
export interface RandomFaults {
  seed: number;
  rate: number;
  kinds: readonly Exclude<FaultKind, 'rewrite'>[];
  directions?: readonly Direction[];
  /** Packets (both directions) let through untouched first, e.g. to get past the connect. */
  after?: number;
  /** Largest delay of a random `delay`, ms (default 50). */
  maxDelayMs?: number;
}

/** One fault that fired. */
export interface FiredFault {
  kind: FaultKind;
  direction: Direction;
  /** The packet it hit (payload start), or `@N bytes` for byte-count triggers. */
  packet: string;
  /** ms since the proxy started. */
  at: number;
}

/** Per-direction counters. */
export interface DirectionStats {
  packets: number;
  bytes: number;
  /** `-` sent in this direction: the sender asks for a packet again (bad checksum). */
  nacks: number;
}

/** What went through the proxy since {@link FaultProxy.reset}. */
export interface ProxyStats {
  connections: number;
  toServer: DirectionStats & {
    /** `M`/`X` memory writes that reached the server. */
    memoryWrites: number;
    /** Resumes (`c`, `s`, `vCont;c|s`) that reached the server. */
    resumes: number;
    /** Every request payload that reached the server (first 48 characters). */
    requests: string[];
  };
  toClient: DirectionStats;
  fired: FiredFault[];
}

/** Where the upstream server listens. */
export type Upstream = { path: string } | { host: string; port: number };

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
const fromLatin1 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

/** mulberry32: a small seeded PRNG, so a random fault run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STOP_REPLY = /^[STWX][0-9a-fA-F]{2}/;
const RESUME = /^(c|s|C[0-9a-fA-F]{2}|S[0-9a-fA-F]{2}|vCont;[cCsS])/;
const MEMORY_WRITE = /^[MX][0-9a-fA-F]+,/;
/** Bytes the client's parser treats specially outside a packet; garbage avoids them. */
const SIGNIFICANT = new Set([0x24, 0x25, 0x2b, 0x2d, 0x03, 0x23]);

interface RuleState {
  rule: FaultRule;
  seen: number;
  fired: number;
}

/** One byte stream leaving the proxy, with delays kept in order. */
class Outlet {
  readonly #socket: net.Socket;
  readonly #queue: (Uint8Array | number)[] = [];
  #timer: NodeJS.Timeout | undefined;
  stalled = false;
  bytes = 0;
  /** Fired when `bytes` passes `cutAt`: used by `afterBytes` drops. */
  cutAt = Infinity;
  onCut: (() => void) | undefined;

  constructor(socket: net.Socket) {
    this.#socket = socket;
  }

  write(bytes: Uint8Array): void {
    if (this.stalled) return;
    this.#queue.push(bytes);
    this.#pump();
  }

  delay(ms: number): void {
    if (this.stalled) return;
    this.#queue.push(ms);
    this.#pump();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }

  #pump(): void {
    while (this.#timer === undefined && this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      if (typeof item === 'number') {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, item);
        return;
      }
      if (this.#socket.destroyed) return;
      if (this.bytes + item.length >= this.cutAt) {
        const keep = Math.max(0, this.cutAt - this.bytes);
        this.#socket.write(item.subarray(0, keep));
        this.bytes += keep;
        this.#queue.length = 0;
        this.onCut?.();
        return;
      }
      this.bytes += item.length;
      this.#socket.write(item);
    }
  }
}

/** One client and its upstream connection. */
class Link {
  readonly #proxy: FaultProxy;
  readonly #client: net.Socket;
  readonly #upstream: net.Socket;
  readonly #parsers = { toServer: new PacketParser({ maxPacket: 1 << 24 }), toClient: new PacketParser({ maxPacket: 1 << 24 }) };
  readonly #out: { toServer: Outlet; toClient: Outlet };
  /** For each packet sent to the client, who made it: its ack is swallowed when it was the proxy. */
  readonly #ackOwners: ('server' | 'proxy')[] = [];
  /** Requests that reached the server and await their reply, oldest first. */
  readonly #awaiting: string[] = [];
  /** The request the last reply answered (QEMU answers it again after a '-'). */
  #lastAnswered = '';
  /** After an `inject`: the server's ack and reply to the proxy's own packet are still to come (and dropped). */
  #injected = { ack: false, reply: false };
  #running = false;
  closed = false;

  constructor(proxy: FaultProxy, client: net.Socket, upstream: Upstream) {
    this.#proxy = proxy;
    this.#client = client;
    this.#upstream = 'path' in upstream ? net.connect({ path: upstream.path }) : net.connect({ host: upstream.host, port: upstream.port });
    client.setNoDelay(true);
    this.#upstream.setNoDelay?.(true);
    this.#out = { toServer: new Outlet(this.#upstream), toClient: new Outlet(this.#client) };
    // Client bytes wait until the upstream is connected (net.Socket buffers writes made before 'connect').
    client.on('data', (chunk: Buffer) => this.#onData('toServer', chunk));
    this.#upstream.on('data', (chunk: Buffer) => this.#onData('toClient', chunk));
    for (const s of [client, this.#upstream]) {
      s.on('error', () => this.close());
      s.on('close', () => this.close());
      s.on('end', () => this.close());
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#out.toServer.close();
    this.#out.toClient.close();
    this.#client.destroy();
    this.#upstream.destroy();
    this.#proxy.linkClosed(this);
  }

  /** Bytes this link has sent on in `direction`. */
  bytes(direction: Direction): number {
    return this.#out[direction].bytes;
  }

  /** Arms an `afterBytes` drop on the outlet of `direction`: the stream is cut after exactly `at` bytes. */
  armCut(direction: Direction, at: number, fired: () => void): void {
    const outlet = this.#out[direction];
    outlet.cutAt = at;
    outlet.onCut = () => {
      fired();
      this.close();
    };
  }

  #onData(dir: Direction, chunk: Uint8Array): void {
    if (this.closed) return;
    let events: WireEvent[];
    try {
      events = this.#parsers[dir].push(chunk);
    } catch {
      // A payload beyond 16 MiB: nothing a test sends; give up on the link.
      this.close();
      return;
    }
    for (const event of events) {
      if (this.closed) return;
      this.#onEvent(dir, event);
    }
  }

  #onEvent(dir: Direction, event: WireEvent): void {
    const out = this.#out[dir];
    switch (event.kind) {
      case 'ack':
      case 'nack': {
        const byte = event.kind === 'ack' ? 0x2b : 0x2d;
        if (event.kind === 'nack') this.#proxy.stats[dir].nacks++;
        if (dir === 'toClient' && event.kind === 'ack' && this.#injected.ack) {
          this.#injected.ack = false; // the server's '+' for the injected packet
          return;
        }
        if (dir === 'toServer') {
          const owner = this.#ackOwners.shift();
          if (owner === 'proxy') return; // the ack of a packet QEMU never sent
          if (event.kind === 'nack') this.#awaiting.unshift(this.#lastAnswered); // its reply comes again
          // After a '-' QEMU re-sends its last reply, which passes here as a new packet with its own ack.
        }
        out.write(Uint8Array.of(byte));
        return;
      }
      case 'interrupt':
        out.write(Uint8Array.of(0x03));
        return;
      case 'garbage':
        out.write(event.bytes);
        return;
      case 'notification': {
        const framed = frame(event.payload);
        framed[0] = 0x25;
        if (dir === 'toClient') this.#ackOwners.push('server');
        out.write(framed);
        return;
      }
      case 'packet':
        this.#onPacket(dir, event.payload, event.checksumOk);
        return;
    }
  }

  #onPacket(dir: Direction, payload: Uint8Array, checksumOk: boolean): void {
    const text = latin1(payload);
    if (dir === 'toClient' && this.#injected.reply && checksumOk && !STOP_REPLY.test(text)) {
      // The reply to the injected packet (and any console output before it) never reaches the client.
      if (!/^O[0-9a-fA-F]+$/.test(text)) this.#injected.reply = false;
      return;
    }
    let answering: string | undefined;
    if (dir === 'toClient' && !/^O[0-9a-fA-F]+$/.test(text) && this.#awaiting.length > 0) {
      answering = this.#awaiting.shift()!;
      this.#lastAnswered = answering;
    }
    const action = this.#proxy.decide(this, dir, text, this.#out[dir].bytes, answering);
    const out = this.#out[dir];
    const forward = (bytes: Uint8Array) => {
      if (dir === 'toClient') this.#ackOwners.push('server');
      out.write(bytes);
    };
    const framed = frame(payload);
    if (!checksumOk) framed[framed.length - 1] = framed[framed.length - 1] === 0x30 ? 0x31 : 0x30; // keep it bad
    if (action === undefined) {
      this.#account(dir, text);
      forward(framed);
      return;
    }
    switch (action.kind) {
      case 'drop':
        if (action.after) {
          this.#account(dir, text);
          forward(framed);
          // Let the bytes leave before the sockets go (destroy would discard unflushed writes).
          setImmediate(() => this.close());
          return;
        }
        this.close();
        return;
      case 'stall':
        out.stalled = true;
        return;
      case 'delay':
        out.delay(action.ms);
        this.#account(dir, text);
        forward(framed);
        return;
      case 'corrupt': {
        // Flip one payload byte; the checksum stays that of the original, so the receiver must catch it.
        const bad = new Uint8Array(framed);
        const candidates: number[] = [];
        for (let i = 1; i <= payload.length; i++) if (!SIGNIFICANT.has(bad[i]! ^ 0x01)) candidates.push(i);
        if (candidates.length === 0) bad[bad.length - 1] = bad[bad.length - 1] === 0x30 ? 0x31 : 0x30;
        else {
          const at = candidates[Math.floor(this.#proxy.random() * candidates.length)]!;
          bad[at] = bad[at]! ^ 0x01;
        }
        // Only a request the server accepts counts; a corrupted one is re-sent by the client and counted then.
        if (dir === 'toClient') this.#account(dir, text);
        forward(bad);
        return;
      }
      case 'error': {
        const reply = frame(fromLatin1(action.reply ?? 'E01'));
        if (dir === 'toServer') {
          // Never reaches the server: the proxy acknowledges and answers in its place.
          this.#ackOwners.push('proxy');
          this.#out.toClient.write(Uint8Array.of(0x2b));
          this.#out.toClient.write(reply);
        } else {
          this.#account(dir, text);
          forward(reply);
        }
        return;
      }
      case 'console': {
        if (dir === 'toClient') {
          const count = action.count ?? 3;
          for (let i = 0; i < count; i++) {
            this.#ackOwners.push('proxy');
            out.write(frame(fromLatin1('O' + hexEncode(new TextEncoder().encode(action.text ?? `fault-proxy console line ${i}\n`)))));
          }
        }
        this.#account(dir, text);
        forward(framed);
        return;
      }
      case 'garbage': {
        if (dir === 'toClient') {
          const n = action.length ?? 16;
          const junk = new Uint8Array(n);
          for (let i = 0; i < n; i++) {
            let b: number;
            do b = Math.floor(this.#proxy.random() * 256);
            while (SIGNIFICANT.has(b));
            junk[i] = b;
          }
          out.write(junk);
        }
        this.#account(dir, text);
        forward(framed);
        return;
      }
      case 'inject': {
        this.#account(dir, text);
        forward(framed);
        if (dir !== 'toServer') return;
        // Shortly after the request, so it lands while the core runs (when the request was a 'c'):
        // in the same read as the 'c', QEMU would stop the core before it ran at all.
        // QEMU takes the first byte it gets while the core runs as "stop" and drops it: a '+' goes
        // first (an ack of nothing if the core had stopped already), then the packet.
        this.#injected = { ack: true, reply: true };
        this.#out.toServer.delay(action.afterMs ?? 1);
        this.#out.toServer.write(Uint8Array.of(0x2b));
        this.#out.toServer.write(frame(fromLatin1(action.payload)));
        this.#proxy.stats.toServer.requests.push(`(proxy) ${action.payload.slice(0, 40)}`);
        return;
      }
      case 'rewrite': {
        const replaced = action.payload(text);
        this.#account(dir, replaced);
        forward(frame(fromLatin1(replaced)));
        return;
      }
    }
  }

  /** Counts a packet that reaches its receiver, and tracks whether the core runs. */
  #account(dir: Direction, text: string): void {
    const stats = this.#proxy.stats;
    if (dir === 'toServer') {
      stats.toServer.packets++;
      stats.toServer.requests.push(text.slice(0, 48));
      this.#awaiting.push(text.slice(0, 48));
      if (MEMORY_WRITE.test(text)) stats.toServer.memoryWrites++;
      if (RESUME.test(text)) {
        stats.toServer.resumes++;
        this.#running = true;
      }
    } else {
      stats.toClient.packets++;
      if (this.#running && STOP_REPLY.test(text)) this.#running = false;
    }
    stats[dir].bytes += text.length + 4;
  }

  get running(): boolean {
    return this.#running;
  }
}

/** Options of {@link FaultProxy.start}. */
export interface FaultProxyOptions {
  rules?: FaultRule[];
  random?: RandomFaults;
}

/**
 * The relay. Listens on a Unix socket in a fresh temp directory.
 *
 * @example
 * ```ts
 * const proxy = await FaultProxy.start(qemu.connectOptions);
 * proxy.reset({ rules: [{ direction: 'toClient', match: /^OK$/, action: { kind: 'corrupt' } }] });
 * const gdb = await GdbClient.connect(proxy.connectOptions);
 * ```
 */
export class FaultProxy {
  readonly #server: net.Server;
  readonly #dir: string;
  readonly #upstream: Upstream;
  readonly #links = new Set<Link>();
  readonly #start = performance.now();
  #rules: RuleState[] = [];
  #randomFaults: RandomFaults | undefined;
  #rng: () => number = seededRandom(1);
  #packetsSeen = 0;
  stats: ProxyStats = FaultProxy.#emptyStats();
  /** Where clients connect (give it to GdbClient.connect). */
  readonly connectOptions: { path: string };

  private constructor(server: net.Server, dir: string, path: string, upstream: Upstream) {
    this.#server = server;
    this.#dir = dir;
    this.#upstream = upstream;
    this.connectOptions = { path };
  }

  static #emptyStats(): ProxyStats {
    return {
      connections: 0,
      toServer: { packets: 0, bytes: 0, nacks: 0, memoryWrites: 0, resumes: 0, requests: [] },
      toClient: { packets: 0, bytes: 0, nacks: 0 },
      fired: [],
    };
  }

  /** Starts a proxy in front of `upstream`. */
  static async start(upstream: Upstream, options: FaultProxyOptions = {}): Promise<FaultProxy> {
    const dir = mkdtempSync(join(tmpdir(), 'rspflash-fault-'));
    const path = join(dir, 'proxy.sock');
    const server = net.createServer();
    const proxy = new FaultProxy(server, dir, path, upstream);
    proxy.reset(options);
    server.on('connection', (socket) => {
      // One client at a time, like QEMU: a second one is turned away.
      if (proxy.#links.size > 0) {
        socket.destroy();
        return;
      }
      proxy.stats.connections++;
      const link = new Link(proxy, socket, upstream);
      proxy.#links.add(link);
      for (const state of proxy.#rules) {
        const { rule } = state;
        if (rule.afterBytes !== undefined && rule.action.kind === 'drop' && state.fired < (rule.times ?? 1)) {
          link.armCut(rule.direction, rule.afterBytes, () => {
            state.fired++;
            proxy.#record('drop', rule.direction, `@${rule.afterBytes} bytes`);
          });
        }
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return proxy;
  }

  /** New rules (or random faults), fresh counters and statistics. Applies to the next packet. */
  reset(options: FaultProxyOptions = {}): void {
    this.#rules = (options.rules ?? []).map((rule) => ({ rule, seen: 0, fired: 0 }));
    this.#randomFaults = options.random;
    this.#rng = seededRandom(options.random?.seed ?? 1);
    this.#packetsSeen = 0;
    this.stats = FaultProxy.#emptyStats();
  }

  /** The proxy's PRNG (seeded by the random faults' seed). */
  random(): number {
    return this.#rng();
  }

  /** Bytes the current client's link has passed on in `direction` (0 without a client). */
  bytes(direction: Direction): number {
    let n = 0;
    for (const link of this.#links) n += link.bytes(direction);
    return n;
  }

  /** Clients connected right now. */
  get connections(): number {
    return this.#links.size;
  }

  /** Destroys every client connection (a cable pulled from outside the packet flow). */
  dropAll(): void {
    for (const link of [...this.#links]) link.close();
  }

  /** Resolves once no client is connected (QEMU then serves the next one). */
  async idle(timeoutMs = 2000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.#links.size > 0) {
      if (performance.now() > deadline) throw new Error(`fault proxy: a client is still connected after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** @internal called by a link. */
  linkClosed(link: Link): void {
    this.#links.delete(link);
  }

  /** @internal which fault, if any, hits this packet. */
  decide(link: Link, dir: Direction, text: string, bytesSoFar: number, answering: string | undefined): FaultAction | undefined {
    this.#packetsSeen++;
    for (const state of this.#rules) {
      const { rule } = state;
      if (rule.direction !== dir || state.fired >= (rule.times ?? 1)) continue;
      if (rule.afterBytes !== undefined) {
        // Byte-count drops are cut by the outlet; other actions fire at the first packet past the mark.
        if (rule.action.kind === 'drop' || bytesSoFar < rule.afterBytes) continue;
      } else {
        if (rule.match && !rule.match.test(text)) continue;
        if (rule.replyTo && (answering === undefined || !rule.replyTo.test(answering))) continue;
      }
      state.seen++;
      if (rule.afterBytes === undefined && state.seen < (rule.nth ?? 1)) continue;
      state.fired++;
      this.#record(rule.action.kind, dir, answering === undefined ? text : `${text} (reply to ${answering.slice(0, 24)})`);
      return rule.action;
    }
    const random = this.#randomFaults;
    if (random && this.#packetsSeen > (random.after ?? 0) && (random.directions ?? ['toClient']).includes(dir)) {
      // Never disturb a running core's stop reply path toward the server: bytes would stop it.
      if (dir === 'toServer' && link.running) return undefined;
      if (this.#rng() < random.rate) {
        const kind = random.kinds[Math.floor(this.#rng() * random.kinds.length)]!;
        const action = this.#randomAction(kind, random);
        this.#record(kind, dir, text);
        return action;
      }
    }
    return undefined;
  }

  #randomAction(kind: Exclude<FaultKind, 'rewrite'>, random: RandomFaults): FaultAction {
    switch (kind) {
      case 'delay':
        return { kind, ms: 1 + Math.floor(this.#rng() * (random.maxDelayMs ?? 50)) };
      case 'console':
        return { kind, count: 1 + Math.floor(this.#rng() * 4) };
      case 'garbage':
        return { kind, length: 1 + Math.floor(this.#rng() * 64) };
      default:
        return { kind } as FaultAction;
    }
  }

  #record(kind: FaultKind, direction: Direction, text: string): void {
    this.stats.fired.push({ kind, direction, packet: text.slice(0, 40), at: Math.round(performance.now() - this.#start) });
  }

  /** Stops listening, drops every client, removes the socket directory. */
  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
