/**
 * A model of the probe link of the seed job (a J-Link between the host and the
 * Alif DevKit): a loopback TCP relay placed in front of the J-Link test double
 * that reads the RSP traffic, classifies every request, and counts what a real
 * JLinkGDBServer would have to carry over USB to the probe. Link time is then
 * *computed* from the counts and a {@link LinkProfile}, so a 32 MiB run costs
 * the bench seconds, not the half minute a 1 MB/s probe would take.
 *
 * The model (bench/README.md, "Seed job model"):
 * - JLinkGDBServer handles one packet at a time; every request that touches the
 *   target (memory, registers, run, halt, monitor) costs at least one USB round
 *   trip to the probe, whether or not the client pipelined it on the host side.
 *   Requests the server answers alone (`qSupported`, `qXfer:features`, `?`,
 *   `H`, no-ack mode …) cost nothing.
 * - Payload crosses USB as binary: the data of an `X`/`M` write, the bytes an
 *   `m` read asks for, 4 bytes per register value; RSP framing, hex and escapes
 *   stay on the host.
 * - link time = target requests × round trip + bytes down ÷ bandwidth down +
 *   bytes up ÷ bandwidth up. The target's own run time is not link time (the
 *   device model in seed-model.ts accounts for it).
 *
 * With `impose` the relay also really holds the traffic (one-way delay and a
 * serialising token bucket in each direction), to check the computed figure
 * against a measured one on a small image.
 * @module
 */
import type net from 'node:net';
import { startRelay } from './relay.js';

/** A probe link: bandwidth each way and the time of one USB round trip. */
export interface LinkProfile {
  readonly name: string;
  readonly description: string;
  /** Host → target payload, bytes per second. */
  readonly downBytesPerSecond: number;
  /** Target → host payload, bytes per second. */
  readonly upBytesPerSecond: number;
  /** One probe round trip (command out, status back), ms. */
  readonly roundTripMs: number;
  /** Where the numbers come from. */
  readonly source: string;
}

/**
 * The two probes of issue 12. Bandwidths are SEGGER's own "download to RAM"
 * figures (FACTS.md, "Probe links": BASE ≈ 1 MB/s, ULTRA+/PRO ≈ 3–4 MB/s),
 * used for reads too. A USB round trip is 0.125–1 ms: Hi-Speed USB schedules
 * bulk transfers in 125 µs micro-frames, so one command and its status take at
 * least one micro-frame; a Full-Speed path or a slower probe CPU takes up to a
 * 1 ms frame. BASE gets the middle of the range (0.5 ms), ULTRA+ (faster CPU,
 * Hi-Speed) the best case, one micro-frame (0.125 ms).
 */
export const LINK_PROFILES = {
  'jlink-base': {
    name: 'jlink-base',
    description: 'J-Link BASE: 1 MB/s, 0.5 ms round trip',
    downBytesPerSecond: 1.0e6,
    upBytesPerSecond: 1.0e6,
    roundTripMs: 0.5,
    source: 'SEGGER J-Link model comparison (download speed to RAM ≈ 1 MB/s); USB round trip 0.125–1 ms, middle of the range',
  },
  'jlink-ultra': {
    name: 'jlink-ultra',
    description: 'J-Link ULTRA+: 3.5 MB/s, 0.125 ms round trip',
    downBytesPerSecond: 3.5e6,
    upBytesPerSecond: 3.5e6,
    roundTripMs: 0.125,
    source: 'SEGGER J-Link model comparison (ULTRA+/PRO ≈ 3–4 MB/s to RAM); one Hi-Speed USB micro-frame (125 µs) per round trip',
  },
} as const satisfies Record<string, LinkProfile>;

/** Name of a built-in profile. */
export type LinkProfileName = keyof typeof LINK_PROFILES;

/** What crossed the relay, as a J-Link would carry it. */
export interface LinkCounts {
  /** RSP request packets client → server. */
  requests: number;
  /** Requests (and interrupt bytes) that reach the target: each at least one probe round trip. */
  targetRequests: number;
  /** Requests sent while no earlier request was unanswered: the client had stopped to wait. */
  waits: number;
  /** Target runs (`c`/`s`). */
  runs: number;
  /** Payload host → target, bytes (memory write data, register values). */
  bytesDown: number;
  /** Payload target → host, bytes (memory read lengths, register values). */
  bytesUp: number;
  /** RSP bytes on the host socket, each way (framing, hex and escapes included). */
  wireBytesToServer: number;
  wireBytesToClient: number;
}

/** Zeroed counts. */
export function emptyCounts(): LinkCounts {
  return { requests: 0, targetRequests: 0, waits: 0, runs: 0, bytesDown: 0, bytesUp: 0, wireBytesToServer: 0, wireBytesToClient: 0 };
}

/** Link time of `counts` over `profile`, ms. */
export function linkTimeMs(counts: LinkCounts, profile: LinkProfile): { latencyMs: number; transferMs: number; totalMs: number } {
  const latencyMs = counts.targetRequests * profile.roundTripMs;
  const transferMs = (counts.bytesDown / profile.downBytesPerSecond + counts.bytesUp / profile.upBytesPerSecond) * 1000;
  return { latencyMs, transferMs, totalMs: latencyMs + transferMs };
}

/** Registers in J-Link's `g`/`G` packet (r0–r15, xpsr). */
const G_REGISTERS = 17;

/** How one request is carried to the target: whether it needs the probe, and its payload each way. */
export interface RequestCost {
  target: boolean;
  down: number;
  up: number;
  run: boolean;
}

const NO_TARGET: RequestCost = { target: false, down: 0, up: 0, run: false };
const ascii = (bytes: Uint8Array, end: number) => Buffer.from(bytes.subarray(0, Math.min(end, bytes.length))).toString('latin1');

/**
 * Classifies one request from its first bytes (`head`, up to the `:` of a
 * write) and, for binary `X`, the number of data bytes after unescaping.
 * Pure: tested without a relay.
 */
export function requestCost(head: Uint8Array, xDataBytes = 0): RequestCost {
  const text = ascii(head, 64);
  const op = text[0];
  const lengthField = () => parseInt(/^[mMX][0-9a-fA-F]+,([0-9a-fA-F]+)/.exec(text)?.[1] ?? '0', 16);
  switch (op) {
    case 'X':
      return { target: true, down: xDataBytes, up: 0, run: false };
    case 'M':
      return { target: true, down: lengthField(), up: 0, run: false };
    case 'm':
      return { target: true, down: 0, up: lengthField(), run: false };
    case 'g':
      return { target: true, down: 0, up: 4 * G_REGISTERS, run: false };
    case 'G':
      return { target: true, down: 4 * G_REGISTERS, up: 0, run: false };
    case 'p':
      return { target: true, down: 0, up: 4, run: false };
    case 'P':
      return { target: true, down: 4, up: 0, run: false };
    case 'c':
    case 's':
      return { target: true, down: 0, up: 0, run: true };
    case 'Z':
    case 'z':
      return { target: true, down: 0, up: 0, run: false };
    case 'q':
      return text.startsWith('qRcmd,') || text.startsWith('qCRC:') ? { target: true, down: 0, up: 0, run: false } : NO_TARGET;
    case 'v':
      return text.startsWith('vFlash') || text.startsWith('vCont;') ? { target: true, down: 0, up: 0, run: text.startsWith('vCont;') } : NO_TARGET;
    default:
      return NO_TARGET; // Q…, ?, H, T, D, k: answered by the server alone
  }
}

/** Bytes kept of a packet's start for classification (an `X`/`M` header fits easily). */
const HEAD_BYTES = 48;

/**
 * Incremental scanner of one direction of RSP traffic: reports each packet's
 * first bytes and, for binary data after a `:`, the unescaped length. Never
 * keeps a whole packet (a 16 KiB `X` is counted, not copied).
 */
class PacketScanner {
  #inPacket = false;
  #skipChecksum = 0;
  #head = new Uint8Array(HEAD_BYTES);
  #headLength = 0;
  #colonSeen = false;
  #dataBytes = 0;
  #escapes = 0;

  constructor(
    private readonly onPacket: (head: Uint8Array, dataBytes: number) => void,
    private readonly onInterrupt: () => void = () => undefined,
  ) {}

  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; ) {
      if (this.#skipChecksum > 0) {
        this.#skipChecksum--;
        i++;
        continue;
      }
      if (!this.#inPacket) {
        const b = chunk[i++]!;
        if (b === 0x24) {
          this.#inPacket = true;
          this.#headLength = 0;
          this.#colonSeen = false;
          this.#dataBytes = 0;
          this.#escapes = 0;
        } else if (b === 0x03) this.onInterrupt();
        continue; // '+', '-' and noise
      }
      // Inside a packet: '#' ends it ('#' and '$' are always escaped inside data).
      const hash = chunk.indexOf(0x23, i);
      const end = hash < 0 ? chunk.length : hash;
      for (let j = i; j < end; j++) {
        const b = chunk[j]!;
        if (this.#headLength < HEAD_BYTES) this.#head[this.#headLength++] = b;
        if (this.#colonSeen) {
          this.#dataBytes++;
          if (b === 0x7d) this.#escapes++;
        } else if (b === 0x3a) this.#colonSeen = true;
      }
      i = end;
      if (hash >= 0) {
        this.#inPacket = false;
        this.#skipChecksum = 2;
        i = hash + 1;
        this.onPacket(this.#head.subarray(0, this.#headLength), this.#dataBytes - this.#escapes);
      }
    }
  }
}

/** Counts one client's traffic both ways; pure apart from the counts object. */
export class LinkCounter {
  readonly counts: LinkCounts;
  #outstanding = 0;
  readonly #toServer: PacketScanner;
  readonly #toClient: PacketScanner;

  constructor(counts: LinkCounts = emptyCounts()) {
    this.counts = counts;
    this.#toServer = new PacketScanner(
      (head, dataBytes) => {
        const cost = requestCost(head, dataBytes);
        const c = this.counts;
        c.requests++;
        if (this.#outstanding === 0) c.waits++;
        this.#outstanding++;
        if (cost.target) c.targetRequests++;
        if (cost.run) c.runs++;
        c.bytesDown += cost.down;
        c.bytesUp += cost.up;
      },
      () => this.counts.targetRequests++, // ^C: a halt request to the probe
    );
    this.#toClient = new PacketScanner((head) => {
      // `O<hex>` console output is not a reply (`OK` is).
      const consoleOutput = head[0] === 0x4f && head.length > 1 && head[1] !== 0x4b;
      if (!consoleOutput && this.#outstanding > 0) this.#outstanding--;
    });
  }

  /** Bytes the client sent. */
  fromClient(chunk: Uint8Array): void {
    this.counts.wireBytesToServer += chunk.length;
    this.#toServer.push(chunk);
  }

  /** Bytes the server sent. */
  fromServer(chunk: Uint8Array): void {
    this.counts.wireBytesToClient += chunk.length;
    this.#toClient.push(chunk);
  }
}

/** Options of {@link startLinkModel}. */
export interface LinkModelOptions {
  /** Really hold the traffic as `profile` would (slow: for small checks only). Default false: count at full speed. */
  impose?: boolean;
  /** The profile imposed with `impose`. */
  profile?: LinkProfile;
}

/** A running relay. */
export interface LinkModel {
  readonly port: number;
  readonly endpoint: string;
  /** Counts since the last reset, over every client. */
  readonly counts: LinkCounts;
  resetCounts(): void;
  close(): Promise<void>;
}

/**
 * A writer that delivers chunks in order, each no earlier than `oneWayMs`
 * after it arrived and no faster than `bytesPerSecond` (a token bucket with no
 * burst: the wire serialises).
 */
function shapedWriter(target: net.Socket, oneWayMs: number, bytesPerSecond: number): (chunk: Buffer) => void {
  let wireFreeAt = 0;
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) target.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - now));
  };
  return (chunk) => {
    const now = performance.now();
    wireFreeAt = Math.max(wireFreeAt, now) + (chunk.length / bytesPerSecond) * 1000;
    queue.push({ due: wireFreeAt + oneWayMs, chunk });
    timer ??= setTimeout(flush, Math.max(0, wireFreeAt + oneWayMs - now));
  };
}

/**
 * Starts the relay on a free loopback port in front of `upstreamHost:upstreamPort`
 * (the J-Link test double). Every client gets its own upstream connection.
 *
 * @example
 * ```ts
 * const link = await startLinkModel('127.0.0.1', jlink.port);
 * const gdb = await connect(link.endpoint);
 * // … program …
 * const { totalMs } = linkTimeMs(link.counts, LINK_PROFILES['jlink-base']);
 * ```
 */
export async function startLinkModel(upstreamHost: string, upstreamPort: number, options: LinkModelOptions = {}): Promise<LinkModel> {
  const counts = emptyCounts();
  const profile = options.profile ?? LINK_PROFILES['jlink-base'];
  const relay = await startRelay(upstreamHost, upstreamPort, {
    connection: (client, upstream) => {
      const counter = new LinkCounter(counts);
      // Bytes that arrive before the upstream connects are buffered by the socket.
      const toServer = options.impose ? shapedWriter(upstream, profile.roundTripMs / 2, profile.downBytesPerSecond) : (c: Buffer) => upstream.write(c);
      const toClient = options.impose ? shapedWriter(client, profile.roundTripMs / 2, profile.upBytesPerSecond) : (c: Buffer) => client.write(c);
      return {
        fromClient: (chunk) => {
          counter.fromClient(chunk);
          toServer(chunk);
        },
        fromServer: (chunk) => {
          counter.fromServer(chunk);
          toClient(chunk);
        },
      };
    },
    lingerMs: () => (options.impose ? profile.roundTripMs + 5 : 0),
  });
  return {
    port: relay.port,
    endpoint: relay.endpoint,
    counts,
    resetCounts: () => Object.assign(counts, emptyCounts()),
    close: relay.close,
  };
}
