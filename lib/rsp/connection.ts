/**
 * One RSP byte stream ↔ request/reply.
 *
 * Owns acknowledgements (`+`/`-`, no-ack mode), retransmission, console output
 * (`O` packets) that arrive while a request waits, the interrupt byte, request
 * serialization (p-queue, concurrency 1) and optional pipelining of several
 * requests in flight. Knows nothing of registers or memory.
 *
 * A request that times out closes the connection: a reply arriving later would
 * be taken as the answer to the next request, so a timed-out link is poisoned
 * and must not be reused.
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import PQueue from 'p-queue';
import { AbortedError, ConnectionClosedError, ProtocolError, RspTimeoutError } from '../errors.js';
import { createDebug, type DebugLog } from '../debug.js';
import { DEFAULT_MAX_PACKET, PacketParser, PacketWriter, decodeRunLength, frame, latin1Bytes, type WireEvent } from './packet.js';

/** Default time a server has to answer an ordinary request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** How many times a packet is re-sent after the server answers `-`. */
export const MAX_RETRANSMITS = 3;
/** Cap on console output collected for one request (a hostile server may never stop talking). */
export const MAX_OUTPUT_PER_REQUEST = 1 << 20;
/**
 * After cancellation ({@link RspConnectionOptions.signal}), the time the
 * server has to answer each request, ms: a live server answers in
 * milliseconds, so a cancelled run still restores the target, while one that
 * never answers ends the run in a second, not after the whole timeout.
 */
export const ABORT_GRACE_MS = 1000;

const ACK = Uint8Array.of(0x2b); // '+'
const NACK = Uint8Array.of(0x2d); // '-'
const INTERRUPT = Uint8Array.of(0x03);

/** Options of an {@link RspConnection}. */
export interface RspConnectionOptions {
  /** Largest reply payload accepted, bytes, both as received and after run-length decoding. Default {@link DEFAULT_MAX_PACKET}. */
  maxPacket?: number;
  /** Default per-request timeout, ms. Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number;
  /**
   * Cancellation: once it aborts, every pending and later request with a
   * finite timeout gets at most {@link ABORT_GRACE_MS} to be answered, and
   * one that is not fails with `AbortedError` and closes the link (a late
   * reply would desynchronize it).
   */
  signal?: AbortSignal;
}

/** Options of one request. */
export interface RequestOptions {
  /** Time the server has to answer, ms; `Infinity` waits for ever (a `c` whose caller interrupts). */
  timeoutMs?: number;
  /** Console output (`O` packets) that arrives before the reply. */
  onOutput?: (text: string) => void;
  /** Short description for errors and logs, e.g. `m 0x20000000,0x400`. Defaults to the packet's start. */
  label?: string;
  /**
   * Whether a packet can be this request's reply. One for which it returns
   * false is dropped as unsolicited and the request waits on: QEMU greets a
   * client that connects while the VM runs with a stop reply (`T02…`) nobody
   * asked for, which must not be taken as the answer to `qSupported`.
   */
  isReply?: (payload: Uint8Array) => boolean;
}

/** Counters for benchmarks and tests. */
export interface ConnectionStats {
  /** Request packets sent (retransmits not counted). */
  packetsSent: number;
  /** Reply packets received (console output included). */
  packetsReceived: number;
  /** Bytes written to the link, framing and acks included. */
  bytesSent: number;
  /** Bytes read from the link, framing and acks included. */
  bytesReceived: number;
  /**
   * Exchanges, not packets: one per request, and one per `window` packets of a
   * pipelined batch of memory writes (what its cost in latency comes to).
   */
  roundTrips: number;
  /** Requests sent again: after a `-` (bad checksum on the way out) or a reply with a bad checksum. */
  retransmits: number;
}

interface Waiter {
  frame: Uint8Array;
  label: string;
  acked: boolean;
  retransmits: number;
  timer: NodeJS.Timeout | undefined;
  /** When the timeout fires (performance.now() ms); Infinity for none. */
  deadline: number;
  outputBytes: number;
  onOutput: ((text: string) => void) | undefined;
  isReply: ((payload: Uint8Array) => boolean) | undefined;
  /** May be sent again when its reply is damaged (a pipelined memory write). */
  retryable: boolean;
  resolve: (payload: Uint8Array) => void;
  reject: (err: Error) => void;
}

/** How one packet is sent (see {@link RequestOptions}). */
interface SendOptions {
  timeoutMs: number;
  label: string | undefined;
  onOutput: ((text: string) => void) | undefined;
  isReply: ((payload: Uint8Array) => boolean) | undefined;
  retryable: boolean;
}

/**
 * What a request carries: text (latin1, not escaped), payload bytes (already
 * escaped), or a {@link PacketWriter} filled with payload, which the
 * connection frames in its own buffer (no copy).
 */
export type RequestPayload = string | Uint8Array | PacketWriter;

/** Options of {@link RspConnection.pipeline}. */
export interface PipelineOptions {
  /** Time the server has to answer each packet, ms. */
  timeoutMs?: number;
  /** Short description for errors and logs. */
  label?: string;
  /** A reply for which this is true stops sending (those in flight are still drained). */
  isError?: (reply: Uint8Array) => boolean;
}

/** A request ready to send: the packet as it goes on the wire, and its payload (for logs). */
interface Framed {
  packet: Uint8Array;
  payload: Uint8Array;
}

/**
 * Frames a request. Throws (a {@link ProtocolError} for text that is not one
 * byte per character) before anything is sent or counted.
 */
function toFrame(payload: RequestPayload): Framed {
  if (payload instanceof PacketWriter) return { packet: payload.finish(), payload: payload.payload };
  // latin1Bytes refuses a character above U+00FF instead of sending a different packet.
  const bytes = typeof payload === 'string' ? latin1Bytes(payload) : payload;
  return { packet: frame(bytes), payload: bytes };
}

/** Bytes → string, one char per byte (TextDecoder's 'latin1' is really windows-1252 and remaps 0x80–0x9F). */
const latin1 = { decode: (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1') : '') };

/** Shows a payload for the debug log: printable ASCII as is, the rest as \xNN, long ones cut. */
function showPayload(payload: Uint8Array, max = 300): string {
  let out = '';
  const n = Math.min(payload.length, max);
  for (let i = 0; i < n; i++) {
    const b = payload[i]!;
    out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return payload.length > max ? `${out}… (${payload.length} bytes)` : out;
}

function isConsoleOutput(payload: Uint8Array): boolean {
  // 'O' followed by an even, non-zero number of hex digits. "OK" is not output.
  if (payload.length < 3 || payload[0] !== 0x4f || (payload.length - 1) % 2 !== 0) return false;
  for (let i = 1; i < payload.length; i++) {
    const c = payload[i]!;
    const hex = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
    if (!hex) return false;
  }
  return true;
}

function decodeHexText(payload: Uint8Array, from: number): string {
  const bytes = Buffer.from(latin1.decode(payload.subarray(from)), 'hex');
  return bytes.toString('utf8');
}

/**
 * A GDB Remote Serial Protocol connection over any byte stream.
 *
 * Events: `output` (text, console output from `O` packets), `close` (the error
 * that closed it, or undefined on a clean close).
 *
 * @example
 * ```ts
 * const socket = net.connect({ host: 'localhost', port: 2331 });
 * const conn = new RspConnection(socket);
 * const reply = await conn.request('qSupported:swbreak+');
 * ```
 */
export class RspConnection extends EventEmitter {
  readonly #stream: Duplex;
  readonly #parser: PacketParser;
  readonly #queue = new PQueue({ concurrency: 1 });
  readonly #log: DebugLog = createDebug('rsp');
  readonly #timeoutMs: number;
  readonly #maxPacket: number;
  /** Requests sent and not yet answered, oldest first. */
  readonly #waiters: Waiter[] = [];
  #noAck = false;
  /** Acks owed for packets of the chunk being processed (see #flushAcks). */
  #pendingAcks = 0;
  #closedBy: Error | undefined;
  #closed = false;
  /** Replies that arrived with nobody waiting (after an interrupt, say). */
  #unsolicited = 0;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#abortPending();

  /** Counters since the connection opened. */
  readonly stats: ConnectionStats = {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    roundTrips: 0,
    retransmits: 0,
  };

  constructor(stream: Duplex, options: RspConnectionOptions = {}) {
    super();
    this.#stream = stream;
    this.#maxPacket = options.maxPacket ?? DEFAULT_MAX_PACKET;
    this.#parser = new PacketParser({ maxPacket: this.#maxPacket });
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#signal = options.signal;
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', (err: Error) =>
      this.#fail(new ConnectionClosedError(`Connection to the GDB server failed: ${err.message}`, { cause: err })),
    );
    stream.on('close', () => this.#fail(new ConnectionClosedError('The GDB server closed the connection')));
    stream.on('end', () => this.#fail(new ConnectionClosedError('The GDB server closed the connection')));
  }

  /** Whether the link is in no-ack mode (after `QStartNoAckMode`). */
  get noAck(): boolean {
    return this.#noAck;
  }

  /** Whether the connection is closed (by us or by the server). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The error that closed the connection, if it was not a clean close. */
  get closeReason(): Error | undefined {
    return this.#closedBy;
  }

  /**
   * Switches acknowledgements off. Call after the server answered `OK` to
   * `QStartNoAckMode`; a last `+` from the server may still arrive and is ignored.
   */
  setNoAck(): void {
    this.#noAck = true;
  }

  /**
   * Sends one request and resolves with the reply payload (run-length decoded,
   * still escaped if binary). An empty payload means "not supported".
   * Requests are serialized: each waits for the previous one's reply.
   */
  request(payload: RequestPayload, options: RequestOptions = {}): Promise<Uint8Array> {
    return this.#queue.add(() => this.#exchange(payload, options));
  }

  /** {@link request} with the reply as a latin1 string. */
  async requestText(payload: RequestPayload, options: RequestOptions = {}): Promise<string> {
    return latin1.decode(await this.request(payload, options));
  }

  /**
   * Sends many requests with up to `window` of them in flight at once and
   * resolves with their replies in order. For servers known to serve queued
   * requests in order, and only for requests that may be sent twice (memory
   * writes); never for `c`/`s`. `window` 1 is plain request/reply. Stops at the
   * first reply for which `isError` is true and returns the replies so far
   * (requests already in flight are still drained).
   *
   * Damage is repaired by sending a request again, which is why only
   * idempotent requests may be pipelined. Servers ack and answer packets in
   * the order they read them, so in ack mode a `-` is for the oldest unacked
   * packet; a damaged reply is taken with `+` (a `-` would make QEMU repeat its
   * *last* reply, another request's by then). In no-ack mode a reply with a
   * bad checksum (framing intact) sends its request again. Either way the
   * request goes out behind those in flight, and its reply, which now comes
   * after theirs, is still matched to it.
   */
  pipeline(payloads: Iterable<RequestPayload>, window: number, options: PipelineOptions = {}): Promise<Uint8Array[]> {
    return this.#queue.add(() => this.#pipeline(payloads, Math.max(1, window), options));
  }

  /**
   * Sends the interrupt byte (0x03) now, outside the request queue: it is how a
   * running target is stopped while a `c` request waits for its stop reply.
   */
  interrupt(): void {
    if (this.#closed) return;
    this.#log('-> ^C (interrupt)');
    this.#write(INTERRUPT);
  }

  /** Closes the stream; pending requests fail with {@link ConnectionClosedError}. */
  close(): void {
    this.#fail(undefined);
  }

  /** Resolves when every queued request has finished. */
  idle(): Promise<void> {
    return this.#queue.onIdle();
  }

  // -------------------------------------------------------------------------

  #exchange(payload: RequestPayload, options: RequestOptions): Promise<Uint8Array> {
    const framed = toFrame(payload);
    if (!this.#closed) this.stats.roundTrips++;
    return this.#send(framed, {
      timeoutMs: options.timeoutMs ?? this.#timeoutMs,
      label: options.label,
      onOutput: options.onOutput,
      isReply: options.isReply,
      retryable: false,
    });
  }

  async #pipeline(payloads: Iterable<RequestPayload>, window: number, options: PipelineOptions): Promise<Uint8Array[]> {
    const replies: Uint8Array[] = [];
    const inFlight: Promise<Uint8Array>[] = [];
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let failed = false;
    let count = 0;
    const iterator = payloads[Symbol.iterator]();
    let exhausted = false;
    while (!exhausted || inFlight.length > 0) {
      while (!failed && !exhausted && inFlight.length < window) {
        const next = iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const framed = toFrame(next.value);
        // A window of packets costs one round trip: N packets take about N / window of them.
        if (count % window === 0) this.stats.roundTrips++;
        count++;
        const sent = this.#send(framed, { timeoutMs, label: options.label, onOutput: undefined, isReply: undefined, retryable: true });
        // Rejections are observed when this promise is awaited below; keep node from calling them unhandled meanwhile.
        sent.catch(() => undefined);
        inFlight.push(sent);
      }
      if (failed) exhausted = true;
      const first = inFlight.shift();
      if (!first) break;
      const reply = await first;
      replies.push(reply);
      if (options.isError?.(reply)) failed = true;
    }
    return replies;
  }

  #send({ packet, payload: bytes }: Framed, how: SendOptions): Promise<Uint8Array> {
    const { timeoutMs, label, onOutput, isReply, retryable } = how;
    if (this.#closed) {
      return Promise.reject(this.#closedBy ?? new ConnectionClosedError('The connection to the GDB server is closed'));
    }
    const name = label ?? showPayload(bytes, 40);
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiter: Waiter = {
        frame: packet,
        label: name,
        acked: this.#noAck,
        retransmits: 0,
        timer: undefined,
        deadline: Infinity,
        outputBytes: 0,
        onOutput,
        isReply,
        retryable,
        resolve,
        reject,
      };
      if (Number.isFinite(timeoutMs)) this.#arm(waiter, this.#signal?.aborted ? Math.min(timeoutMs, ABORT_GRACE_MS) : timeoutMs);
      this.#waiters.push(waiter);
      this.stats.packetsSent++;
      if (this.#log.enabled) this.#log(`-> ${showPayload(bytes)}`);
      this.#write(packet);
    });
  }

  /** Sends a retryable request again, moving it behind those in flight (their replies come first). */
  #resendLater(waiter: Waiter, why: string): void {
    if (waiter.retransmits >= MAX_RETRANSMITS) {
      const error = new ProtocolError(`'${waiter.label}' failed ${MAX_RETRANSMITS + 1} times (${why})`);
      // The waiter may already be off the list (a damaged reply shifts it): settle it here, or it hangs.
      this.#settle(waiter);
      waiter.reject(error);
      this.#fail(error);
      return;
    }
    const at = this.#waiters.indexOf(waiter);
    if (at >= 0) this.#waiters.splice(at, 1);
    waiter.retransmits++;
    waiter.acked = this.#noAck;
    this.stats.retransmits++;
    this.#log(`-> (sent again after ${why}) ${waiter.label}`);
    this.#waiters.push(waiter);
    this.#write(waiter.frame);
  }

  #write(bytes: Uint8Array): void {
    this.stats.bytesSent += bytes.length;
    this.#stream.write(bytes);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.stats.bytesReceived += chunk.length;
    let events: WireEvent[];
    try {
      events = this.#parser.push(chunk);
    } catch (err) {
      this.#fail(err instanceof Error ? err : new ProtocolError(String(err)));
      return;
    }
    for (const event of events) {
      if (this.#closed) return;
      this.#onEvent(event);
    }
    this.#flushAcks();
  }

  /** Acks for the packets of one chunk go out in one write: a pipelined window's replies often arrive together. */
  #ack(): void {
    this.#pendingAcks++;
  }

  #flushAcks(): void {
    if (this.#pendingAcks === 0 || this.#closed) return;
    this.#write(this.#pendingAcks === 1 ? ACK : new Uint8Array(this.#pendingAcks).fill(0x2b));
    this.#pendingAcks = 0;
  }

  #onEvent(event: WireEvent): void {
    switch (event.kind) {
      case 'ack': {
        const waiter = this.#waiters.find((w) => !w.acked);
        if (waiter) waiter.acked = true;
        return;
      }
      case 'nack': {
        const unacked = this.#waiters.filter((w) => !w.acked);
        const waiter = unacked[0];
        if (!waiter) return; // a stray '-' (e.g. for our '+'): nothing to resend
        if (unacked.length > 1) {
          // Several in flight: the server acks in the order it reads, so the '-' is for the oldest unacked
          // packet, and it has gone on to serve the later ones. Idempotent requests (pipelined memory writes
          // to distinct addresses) are simply sent again; their reply now comes after the later ones'.
          if (!unacked.every((w) => w.retryable)) {
            this.#fail(new ProtocolError(`The GDB server rejected a packet ('-') while ${unacked.length} were in flight`));
            return;
          }
          this.#resendLater(waiter, "'-'");
          return;
        }
        if (waiter.retransmits >= MAX_RETRANSMITS) {
          this.#fail(new ProtocolError(`The GDB server rejected '${waiter.label}' ${MAX_RETRANSMITS + 1} times (bad checksum?)`));
          return;
        }
        waiter.retransmits++;
        this.stats.retransmits++;
        this.#log(`-> (retransmit ${waiter.retransmits}) ${waiter.label}`);
        this.#write(waiter.frame);
        return;
      }
      case 'packet':
        this.#onPacket(event.payload, event.checksumOk);
        return;
      case 'notification':
        // Non-stop notifications: rspflash runs all-stop; log and ignore.
        this.#log(`<- %${showPayload(event.payload)} (notification ignored)`);
        if (!this.#noAck) this.#ack();
        return;
      case 'garbage':
        this.#log(`<- garbage ${showPayload(event.bytes, 64)}`);
        return;
      case 'interrupt':
        return;
    }
  }

  #onPacket(raw: Uint8Array, checksumOk: boolean): void {
    this.stats.packetsReceived++;
    if (!checksumOk) {
      const head = this.#waiters[0];
      if (!this.#noAck && head?.retryable) {
        // Ack mode, pipelined request: a '-' would make the server repeat its *last* reply, which may
        // belong to a later packet, or be gone: our '+' for an earlier reply, read after the server sent
        // this one, clears it (QEMU). Even with one packet left in flight. Take the damaged packet ('+')
        // and send the idempotent request again.
        this.#ack();
        this.#waiters.shift();
        this.#resendLater(head, 'a damaged reply');
        return;
      }
      if (!this.#noAck) {
        this.#log(`<- bad checksum, asking for a resend: ${showPayload(raw, 64)}`);
        this.#flushAcks(); // in order: the acks for earlier packets, then this '-'
        this.#write(NACK);
        return;
      }
      // In no-ack mode there is no way to ask again. Damaged console output is dropped: the
      // real reply is still to come, and failing the request on it would leave that reply to
      // be taken as the answer to the next request.
      if (isConsoleOutput(raw)) {
        this.#log(`<- console output with a bad checksum dropped: ${showPayload(raw, 64)}`);
        return;
      }
      // Anything else was the reply. A request that may go twice goes again, behind those in
      // flight (the server answers in order, so its new reply comes last); any other request
      // fails. The link stays either way: framing is intact.
      const waiter = this.#waiters.shift();
      if (waiter?.retryable && waiter.retransmits < MAX_RETRANSMITS) {
        waiter.retransmits++;
        this.stats.retransmits++;
        this.#log(`<- bad checksum in the reply to '${waiter.label}': sending it again`);
        this.#waiters.push(waiter);
        this.#write(waiter.frame);
        return;
      }
      if (waiter) {
        this.#settle(waiter);
        waiter.reject(new ProtocolError(`Reply to '${waiter.label}' had a bad checksum (no-ack mode: cannot ask for a resend)`));
      }
      return;
    }
    if (!this.#noAck) this.#ack();
    let payload: Uint8Array;
    try {
      // A run-length pair stands for up to 226 bytes: cap the expansion like the packet itself.
      payload = decodeRunLength(raw, this.#maxPacket);
    } catch (err) {
      this.#fail(err instanceof Error ? err : new ProtocolError(String(err)));
      return;
    }
    if (this.#log.enabled) this.#log(`<- ${showPayload(payload)}`);
    const waiter = this.#waiters[0];
    if (isConsoleOutput(payload)) {
      const text = decodeHexText(payload, 1);
      // A listener's exception must not escape into the socket's data handler (an uncaught exception).
      try {
        this.emit('output', text);
      } catch (err) {
        this.#log(`an 'output' listener threw: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (waiter?.onOutput && waiter.outputBytes < MAX_OUTPUT_PER_REQUEST) {
        waiter.outputBytes += text.length;
        waiter.onOutput(text);
      }
      return;
    }
    if (!waiter || (waiter.isReply && !waiter.isReply(payload))) {
      this.#unsolicited++;
      this.#log(`<- unsolicited reply dropped (${this.#unsolicited} so far)`);
      return;
    }
    this.#waiters.shift();
    waiter.acked = true; // a reply implies the request arrived, even if its '+' was lost
    this.#settle(waiter);
    waiter.resolve(payload);
  }

  /** (Re)starts a waiter's timeout: `ms` from now. After cancellation it fails as cancelled, else as timed out. */
  #arm(waiter: Waiter, ms: number): void {
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.deadline = performance.now() + ms;
    waiter.timer = setTimeout(() => {
      const late = 'the connection was closed because a late reply would be mistaken for the next one';
      this.#fail(
        this.#signal?.aborted
          ? new AbortedError(`Cancelled, and the GDB server did not answer '${waiter.label}' within ${ms} ms after that; ${late}`, { cause: this.#signal.reason })
          : new RspTimeoutError(`The GDB server did not answer '${waiter.label}' within ${ms} ms; ${late}`, waiter.label, ms),
      );
    }, ms);
  }

  /** Cancellation: each pending request with a timeout now has at most {@link ABORT_GRACE_MS} left. */
  #abortPending(): void {
    if (this.#closed) return;
    this.#log(`cancelled: pending requests get ${ABORT_GRACE_MS} ms to be answered`);
    const now = performance.now();
    for (const waiter of this.#waiters) {
      if (Number.isFinite(waiter.deadline) && waiter.deadline - now > ABORT_GRACE_MS) this.#arm(waiter, ABORT_GRACE_MS);
    }
  }

  #settle(waiter: Waiter): void {
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.timer = undefined;
  }

  #fail(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedBy = error;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (error) this.#log(`closed: ${error.message}`);
    const reason = error ?? new ConnectionClosedError('The connection to the GDB server was closed');
    for (const waiter of this.#waiters.splice(0)) {
      this.#settle(waiter);
      waiter.reject(reason);
    }
    // Queued requests are not dropped: each runs and fails at once on the closed link.
    this.#stream.destroy();
    this.emit('close', error);
  }
}
