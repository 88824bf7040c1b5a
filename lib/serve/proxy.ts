/**
 * `rspflash serve`: a GDB proxy that adds flash to any GDB server. Debuggers
 * connect downstream; one upstream {@link GdbClient} is held for the life of
 * the proxy. Every packet is forwarded byte for byte, except the few the
 * proxy answers itself ({@link HANDLED_PACKETS}): the memory map, `vFlash*`
 * (collected and programmed with the normal program job on `vFlashDone`),
 * `qCRC` over flash (computed on the target), `monitor rspflash …`, and the
 * per-client `QStartNoAckMode`.
 *
 * Several clients may be connected. Requests are served one whole exchange at
 * a time; while the core runs, only the client that resumed it is served (the
 * others get an error reply), and it alone receives the stop reply and the
 * `O` output. When a client starts after another one, the registers the first
 * one saw are read, and written back before its next request if they changed.
 * @module
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { GdbClient, type GdbConnectOptions, type GdbEndpoint } from '../gdb/client.js';
import { ConnectError, ConnectionClosedError, OutOfFlashError, RspTimeoutError, UsageError, hex32, toRspflashError, type RspflashError } from '../errors.js';
import { createDebug } from '../debug.js';
import { parseEndpoint } from '../endpoint.js';
import { withFlasher } from '../session.js';
import type { BoardPreset } from '../boards.js';
import type { FlashAlgorithm } from '../algo/algorithm.js';
import type { RamRegion } from '../algo/layout.js';
import type { MemoryRegion } from '../gdb/memory-map.js';
import type { Flasher } from '../flash/flasher.js';
import type { FlashEvent, FlashReport } from '../flash/progress.js';
import { createImage, type Image } from '../image/image.js';
import { loadImage } from '../image/load.js';
import { formatRange, type MemoryRange } from '../range.js';
import { DEFAULT_MAX_PACKET } from '../rsp/packet.js';
import { ClientLink, type ClientLinkHandler } from './client-link.js';
import { buildMemoryMap, memoryMapXml, regionAt } from './memory-map.js';
import { FlashLoad, ownerOf } from './flash-load.js';
import { CRC_MPEG2_CODE, CRC_MPEG2_INIT, CRC_MPEG2_TABLE_OFFSET, crcMpeg2, crcMpeg2TableBytes } from './crc.js';
import {
  MONITOR_HELP,
  editSupported,
  isResume,
  outputPacket,
  parseAddressLength,
  parseFlashWrite,
  parseMonitor,
  parseRspflashCommand,
  parseXferRead,
  xferChunk,
  type MonitorCommand,
} from './packets.js';

/** Packets the proxy answers itself (the rest is forwarded as is). */
export const HANDLED_PACKETS = [
  'qSupported (forwarded, reply edited)',
  'QStartNoAckMode (per client)',
  'qXfer:memory-map:read',
  'vFlashErase',
  'vFlashWrite',
  'vFlashDone',
  'qCRC (flash ranges)',
  'qRcmd "rspflash …" (monitor rspflash)',
  '0x03 (only from the client that resumed the core)',
] as const;

/** Where the proxy listens: `[host:]port`, a port, `{ port, host }` or a Unix socket `{ path }`. */
export type ListenAddress =
  | string
  | number
  | {
      /** TCP port; 0 picks a free one. */
      port: number;
      /** Interface to listen on; default `127.0.0.1` (this machine only). */
      host?: string;
    }
  | {
      /** Path of the Unix socket (or Windows named pipe). */
      path: string;
    };

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The GDB server: `'localhost:2331'`, an endpoint, or a connected {@link GdbClient} (then the proxy cannot forward `0x03`). */
  upstream: string | GdbEndpoint | GdbClient;
  /** Where debuggers connect; port 0 picks a free one (see {@link ProxyHandle.address}). */
  listen: ListenAddress;
  /** The flash algorithms whose flash the proxy serves (their regions must not overlap). */
  algorithms: readonly FlashAlgorithm[];
  /** RAM lent to the algorithms; or give `board`. */
  ram?: MemoryRange | RamRegion;
  /** A board preset giving `ram` and `memoryMapped`. */
  board?: string | BoardPreset;
  /** Whether the flash reads at its address while the algorithm runs (default from the board, else true). */
  memoryMapped?: boolean;
  /** The recovery journal of kept bytes (see `FlasherOptions.journal`); default on. */
  journal?: false | {
    /** Folder of the journal files; default {@link defaultJournalDir}. */
    dir?: string;
  };
  /** Options for connecting upstream. */
  connect?: GdbConnectOptions;
  /** Time the upstream server has to answer a forwarded request (not a resume), ms. Default 30 000. */
  requestTimeoutMs?: number;
  /** Each client, each flash job with its plan and figures, each failure: one line each. */
  onLog?: (line: string) => void;
}

/** A running proxy. */
export interface ProxyHandle {
  /** Where it listens: `host:port` or the socket path. */
  readonly address: string;
  /** The TCP port (undefined for a Unix socket). */
  readonly port: number | undefined;
  /** The memory map served to clients. */
  readonly memoryMap: readonly MemoryRegion[];
  /** Resolves when the proxy stops: `undefined` after {@link close}, the error when the upstream link was lost. */
  readonly done: Promise<RspflashError | undefined>;
  /** Stops listening, closes the clients and the upstream connection (leaving the target halted). */
  close(): Promise<void>;
}

const DEFAULT_FORWARD_TIMEOUT_MS = 30_000;
/** How long a core has to stop after the proxy interrupts it for a new client. */
const ADOPT_TIMEOUT_MS = 3000;
/** Error reply for requests the proxy refuses (gdb shows the text). */
const busy = (why: string) => `E.${why.replace(/[#$}*]/g, '')}`; // those would end or escape the packet

/**
 * Starts the proxy: connects upstream, learns the server's memory map, and
 * listens. Resolves once it accepts clients.
 *
 * @example
 * ```ts
 * const proxy = await serve({ upstream: 'localhost:2331', listen: 3333, algorithms: [algo], board: 'alif-e7-hp', onLog: console.log });
 * // gdb: target extended-remote localhost:3333, load
 * await proxy.close();
 * ```
 */
export async function serve(options: ServeOptions): Promise<ProxyHandle> {
  if (options.algorithms.length === 0) throw new UsageError('serve needs at least one flash algorithm');
  if (options.ram === undefined && options.board === undefined) {
    throw new UsageError('Where may the algorithm run? Give ram: { address, length } (RAM the core can execute from) or a board');
  }
  const { client, stream } = await connectUpstream(options.upstream, options.connect ?? {});
  try {
    const upstreamMap = await client.memoryMap().catch(() => undefined);
    const map = buildMemoryMap(options.algorithms, upstreamMap ?? []);
    const proxy = new Proxy(client, stream, map, upstreamMap ?? [], options);
    await proxy.listen(options.listen);
    return proxy.handle();
  } catch (err) {
    if (!(options.upstream instanceof GdbClient)) await client.close().catch(() => undefined);
    throw err;
  }
}

async function connectUpstream(upstream: ServeOptions['upstream'], options: GdbConnectOptions): Promise<{ client: GdbClient; stream: Duplex | undefined }> {
  if (upstream instanceof GdbClient) return { client: upstream, stream: undefined };
  const endpoint = typeof upstream === 'string' ? parseEndpoint(upstream) : upstream;
  // The proxy opens the stream itself: it must be able to send the interrupt byte, which GdbClient keeps to itself.
  const stream = 'stream' in endpoint ? endpoint.stream : await openStream(endpoint, options.connectTimeoutMs ?? 5000);
  return { client: await GdbClient.connect({ stream }, options), stream };
}

function openStream(endpoint: { host?: string; port?: number } | { path: string }, timeoutMs: number): Promise<net.Socket> {
  const where = 'path' in endpoint ? endpoint.path : `${endpoint.host ?? 'localhost'}:${endpoint.port ?? 2331}`;
  return new Promise((resolve, reject) => {
    const socket = 'path' in endpoint ? net.connect({ path: endpoint.path }) : net.connect({ host: endpoint.host ?? 'localhost', port: endpoint.port ?? 2331 });
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      const host = 'path' in endpoint ? endpoint.path : (endpoint.host ?? 'localhost');
      reject(new ConnectError(`Cannot connect to the GDB server at ${where}: ${err.message}`, host, 'path' in endpoint ? undefined : endpoint.port, { cause: err }));
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

/** Parses a listen address; `localhost` binds 127.0.0.1 (the proxy gives full access to the target: not on every interface by default). */
function listenTarget(listen: ListenAddress): { port: number; host: string } | { path: string } {
  if (typeof listen === 'number') return { port: listen, host: '127.0.0.1' };
  if (typeof listen === 'string') {
    const endpoint = /^\d+$/.test(listen.trim()) ? { host: 'localhost', port: Number(listen) } : parseEndpoint(listen);
    if ('path' in endpoint) return { path: endpoint.path };
    if ('stream' in endpoint) throw new UsageError('listen: a stream is not an address');
    return { port: endpoint.port ?? 3333, host: endpoint.host === 'localhost' || endpoint.host === undefined ? '127.0.0.1' : endpoint.host };
  }
  if ('path' in listen) return listen;
  return { port: listen.port, host: listen.host ?? '127.0.0.1' };
}

class Proxy implements ClientLinkHandler {
  readonly #upstream: GdbClient;
  readonly #stream: Duplex | undefined;
  readonly #map: MemoryRegion[];
  readonly #mapXml: Uint8Array;
  readonly #upstreamFlash: MemoryRegion[];
  readonly #options: ServeOptions;
  readonly #log = createDebug('proxy');
  readonly #server = net.createServer();
  readonly #clients = new Set<ClientLink>();
  readonly #loads = new Map<ClientLink, FlashLoad>();
  /** Clients whose flash load sent something upstream (the server's own flash): their `vFlashDone` goes upstream too. */
  readonly #forwardedFlash = new Set<ClientLink>();
  #nextId = 1;
  #address = '';
  #port: number | undefined;
  /** One exchange at a time, across clients. */
  #lock: Promise<void> = Promise.resolve();
  /** The client whose resume is pending, and when it ends. */
  #running: { client: ClientLink; done: Promise<void> } | undefined;
  /** `D` let the core run with nobody waiting for its stop. */
  #detached = false;
  /** The client served last, and the registers it saw when another client started. */
  #lastClient: ClientLink | undefined;
  #savedView: { client: ClientLink; g: string } | undefined;
  /** Where `O` output from upstream goes: the client of the exchange in progress. */
  #outputTo: ClientLink | undefined;
  #packetSize: number | undefined;
  #stopped = false;
  #resolveDone!: (error: RspflashError | undefined) => void;
  readonly #done = new Promise<RspflashError | undefined>((resolve) => (this.#resolveDone = resolve));

  constructor(upstream: GdbClient, stream: Duplex | undefined, map: MemoryRegion[], upstreamMap: MemoryRegion[], options: ServeOptions) {
    this.#upstream = upstream;
    this.#stream = stream;
    this.#map = map;
    this.#mapXml = Buffer.from(memoryMapXml(map), 'utf8');
    this.#upstreamFlash = upstreamMap.filter((r) => r.type === 'flash');
    this.#options = options;
    upstream.on('output', (text: string) => this.#outputTo?.send(outputPacket(text)));
    upstream.on('close', (err: Error | undefined) => {
      if (this.#stopped) return;
      const error = toRspflashError(err ?? new ConnectionClosedError('The GDB server closed the connection'));
      this.#info(`upstream connection lost: ${error.message}; closing every client`);
      void this.#stop(error);
    });
    this.#server.on('connection', (socket) => this.#accept(socket));
  }

  async listen(listen: ListenAddress): Promise<void> {
    const target = listenTarget(listen);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(target, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    if (typeof address === 'string') this.#address = address;
    else if (address) {
      this.#port = address.port;
      this.#address = `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    }
    const flash = this.#map.filter((r) => r.type === 'flash').map((r) => `${formatRange({ address: r.start, length: r.length })} (blocks of ${r.blockSize})`);
    this.#info(`listening on ${this.#address}; upstream ${this.#upstream.server.kind} server; flash ${flash.join(', ')}`);
  }

  handle(): ProxyHandle {
    return {
      address: this.#address,
      port: this.#port,
      memoryMap: this.#map,
      done: this.#done,
      close: () => this.#stop(undefined),
    };
  }

  // ---- ClientLinkHandler ------------------------------------------------------------------

  async request(link: ClientLink, payload: string): Promise<string | undefined> {
    if (this.#log.enabled) this.#log(`#${link.id} -> ${show(payload)}`);
    let reply: string | undefined;
    try {
      if (this.#stopped) return 'E01';
      const running = this.#running;
      if (running && running.client !== link) {
        if (!running.client.closed) return busy(`the core is running (resumed by client ${running.client.id}); stop it there first`);
        await this.#adopt(running);
      }
      reply = await this.#exclusive(async () => {
        if (this.#detached) await this.#stopDetached();
        await this.#switchView(link);
        this.#outputTo = link;
        try {
          return await this.#dispatch(link, payload);
        } finally {
          this.#outputTo = undefined;
        }
      });
    } catch (err) {
      const error = toRspflashError(err);
      this.#info(`client #${link.id}: '${show(payload, 40)}' failed: ${error.message}`);
      reply = 'E01';
    }
    if (this.#log.enabled && reply !== undefined) this.#log(`#${link.id} <- ${show(reply)}`);
    return reply;
  }

  interrupt(link: ClientLink): void {
    if (this.#running?.client !== link) {
      this.#log(`#${link.id}: interrupt ignored (the core was not resumed by this client)`);
      return;
    }
    this.#sendInterrupt(`client #${link.id}`);
  }

  closed(link: ClientLink, error: Error | undefined): void {
    this.#clients.delete(link);
    const load = this.#loads.get(link);
    this.#loads.delete(link);
    this.#forwardedFlash.delete(link);
    const dropped = load?.discard() ?? 0;
    const why = error ? ` (${error.message})` : '';
    this.#info(
      `client #${link.id} disconnected${why}` +
        (dropped > 0 ? `; its unfinished flash load (${dropped} bytes, no vFlashDone) was discarded: nothing of it was programmed` : ''),
    );
    if (this.#lastClient === link) this.#lastClient = undefined;
    if (this.#savedView?.client === link) this.#savedView = undefined;
  }

  log(link: ClientLink, line: string, level: 'info' | 'debug'): void {
    if (level === 'info') this.#info(`client #${link.id}: ${line}`);
    else this.#log(`#${link.id}: ${line}`);
  }

  // ---- exchanges --------------------------------------------------------------------------

  #accept(socket: net.Socket): void {
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    // A client's packets are forwarded as they are: accept what the upstream accepts, with room to spare.
    const link = new ClientLink(this.#nextId++, socket, this, Math.max(DEFAULT_MAX_PACKET, 4 * (this.#packetSize ?? 0)));
    this.#clients.add(link);
    this.#info(`client #${link.id} connected from ${link.peer}`);
  }

  async #exclusive<T>(body: () => Promise<T>): Promise<T> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await body();
    } finally {
      release();
    }
  }

  async #dispatch(link: ClientLink, payload: string): Promise<string | undefined> {
    if (payload === 'QStartNoAckMode') return 'OK'; // the link switches after sending it
    if (payload.startsWith('qSupported')) {
      const edited = editSupported(await this.#forward(payload), DEFAULT_MAX_PACKET);
      this.#packetSize = edited.packetSize;
      return edited.reply;
    }
    const xfer = parseXferRead(payload);
    if (xfer?.object === 'memory-map') return xfer.annex === '' ? xferChunk(this.#mapXml, xfer.offset, xfer.length) : 'E00';
    if (payload.startsWith('vFlash')) return this.#flash(link, payload);
    if (payload.startsWith('qCRC:')) return this.#crc(payload);
    const command = parseMonitor(payload);
    if (command !== undefined) {
      const parsed = parseRspflashCommand(command);
      if (parsed !== undefined) return this.#monitor(link, parsed);
      return this.#forward(payload);
    }
    if (isResume(payload)) return this.#resume(link, payload);
    const reply = await this.#forward(payload);
    if (payload === 'D' || payload.startsWith('D;')) {
      if (reply === 'OK') this.#detached = true;
    }
    return reply;
  }

  #forward(payload: string, timeoutMs = this.#options.requestTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS): Promise<string> {
    return this.#upstream.rawRequest(payload, timeoutMs);
  }

  async #resume(link: ClientLink, payload: string): Promise<string> {
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    this.#running = { client: link, done };
    try {
      const reply = await this.#forward(payload, Infinity);
      if (link.closed) this.#info(`the core stopped (${show(reply, 20)}) after client #${link.id}, which resumed it, had left`);
      return reply;
    } finally {
      this.#running = undefined;
      finished();
    }
  }

  #sendInterrupt(who: string): boolean {
    if (!this.#stream) {
      this.#info(`${who} asked to interrupt the core, but the proxy was given a connected GdbClient and cannot send the interrupt byte`);
      return false;
    }
    this.#log(`-> ^C (interrupt, for ${who})`);
    this.#stream.write(Uint8Array.of(0x03));
    return true;
  }

  /** The client that resumed the core has left: stop the core (as a server does when a client connects) and carry on. */
  async #adopt(running: { client: ClientLink; done: Promise<void> }): Promise<void> {
    this.#info(`stopping the core that client #${running.client.id} resumed before it left`);
    if (!this.#sendInterrupt('a new request')) throw new UsageError('The core runs for a client that left, and the proxy cannot interrupt it');
    await withTimeout(running.done, ADOPT_TIMEOUT_MS, 'the core did not stop after an interrupt');
  }

  /** After `D` the core runs with nobody waiting: interrupt it and let its stop reply pass before the next request. */
  async #stopDetached(): Promise<void> {
    this.#detached = false;
    const stream = this.#stream;
    if (!stream || !this.#sendInterrupt('a request after detach')) return;
    // Its stop reply arrives with no request waiting; the connection drops it as unsolicited.
    await withTimeout(new Promise<void>((resolve) => stream.once('data', () => resolve())), ADOPT_TIMEOUT_MS, 'the core did not stop after an interrupt').catch(
      (err: unknown) => this.#info(toRspflashError(err).message),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /**
   * Another client's exchange comes after `link`'s: remember the registers it
   * saw. When it comes back, put them back if the other client changed them
   * (and did not restore them itself, as a flash job does).
   */
  async #switchView(link: ClientLink): Promise<void> {
    const last = this.#lastClient;
    this.#lastClient = link;
    if (last !== undefined && last !== link && !last.closed && this.#savedView === undefined) {
      const g = await this.#forward('g');
      if (/^[0-9a-fA-Fx]+$/.test(g)) this.#savedView = { client: last, g };
    }
    const saved = this.#savedView;
    if (saved?.client === link) {
      this.#savedView = undefined;
      const now = await this.#forward('g');
      if (now !== saved.g) {
        const reply = await this.#forward(`G${saved.g}`);
        this.#info(`client #${link.id}: registers changed by another client ${reply === 'OK' ? 'were put back' : `could not be put back (G answered '${reply}')`}`);
      }
    }
  }

  // ---- flash ------------------------------------------------------------------------------

  #loadOf(link: ClientLink): FlashLoad {
    let load = this.#loads.get(link);
    if (!load) {
      load = new FlashLoad(this.#options.algorithms, `gdb load (client #${link.id})`);
      this.#loads.set(link, load);
    }
    return load;
  }

  async #flash(link: ClientLink, payload: string): Promise<string> {
    // Never an O packet here: gdb reads the reply to vFlash* with a plain getpkt and would take it as the answer.
    const load = this.#loadOf(link);
    const erase = parseAddressLength(payload, 'vFlashErase:');
    if (erase) {
      if (load.erase(erase)) return 'OK';
      if (this.#inUpstreamFlash(erase)) return this.#forwardFlash(link, payload);
      this.#info(`client #${link.id}: vFlashErase ${formatRange(erase)} is outside the flash the proxy serves`);
      return 'E.memtype';
    }
    if (payload.startsWith('vFlashWrite:')) {
      const write = parseFlashWrite(payload);
      if (!write) return 'E.malformed vFlashWrite';
      if (load.write(write.address, write.data)) return 'OK';
      if (this.#inUpstreamFlash({ address: write.address, length: write.data.length })) return this.#forwardFlash(link, payload);
      this.#info(`client #${link.id}: vFlashWrite at ${hex32(write.address)} (${write.data.length} bytes) is outside the flash the proxy serves`);
      return 'E.memtype';
    }
    if (payload === 'vFlashDone') {
      const upstream = this.#forwardedFlash.delete(link) ? await this.#forward(payload, Infinity) : 'OK';
      try {
        for (const { algorithm, image, erasedOnly } of load.finish()) {
          if (erasedOnly.length > 0) {
            this.#info(`client #${link.id}: erase requests with no data written (${erasedOnly.map(formatRange).join(', ')}) were not erased: their bytes are kept`);
          }
          await this.#program(`client #${link.id} load`, algorithm, image);
        }
      } catch (err) {
        load.discard();
        const error = toRspflashError(err);
        this.#info(`client #${link.id}: flash load failed: ${error.message}`);
        return 'E01';
      }
      return upstream;
    }
    return '';
  }

  #inUpstreamFlash(range: MemoryRange): boolean {
    return this.#upstreamFlash.some((r) => range.address >= r.start && range.address + range.length <= r.start + r.length);
  }

  async #forwardFlash(link: ClientLink, payload: string): Promise<string> {
    this.#forwardedFlash.add(link);
    return this.#forward(payload, Infinity);
  }

  /** Runs a flash job on the upstream link, borrowing and restoring the core. */
  #job<T>(algorithm: FlashAlgorithm, body: (flasher: Flasher) => Promise<T>): Promise<T> {
    const o = this.#options;
    return withFlasher(
      {
        gdb: this.#upstream,
        algorithm,
        ...(o.ram === undefined ? {} : { ram: o.ram }),
        ...(o.board === undefined ? {} : { board: o.board }),
        ...(o.memoryMapped === undefined ? {} : { memoryMapped: o.memoryMapped }),
        ...(o.journal === undefined ? {} : { journal: o.journal }),
        after: 'halt',
        onInfo: (line) => this.#info(line),
      },
      (flasher) => body(flasher),
    );
  }

  async #program(what: string, algorithm: FlashAlgorithm, image: Image, progress?: (line: string) => void): Promise<FlashReport> {
    const bytes = image.segments.reduce((n, s) => n + s.data.length, 0);
    this.#info(`${what}: programming ${bytes} bytes in ${image.segments.length} range(s) with '${algorithm.name}'`);
    const report = await this.#job(algorithm, (flasher) => flasher.program(image, { onProgress: (e) => this.#progress(e, progress) }));
    this.#info(`${what}: ${describeReport(report)}`);
    if (report.bytesKept > 0) {
      this.#info(`${what}: kept ${report.bytesKept} bytes of partly written sectors (gdb's own load would have left them erased)`);
    }
    return report;
  }

  #progress(event: FlashEvent, progress: ((line: string) => void) | undefined): void {
    switch (event.type) {
      case 'replan':
        for (const note of event.notes) this.#info(`plan: ${note}`);
        break;
      case 'skip':
        this.#info(`${event.sectors} sector(s) already hold the image: left alone`);
        break;
      case 'phase-start':
        progress?.(`${event.phase}: ${event.total} ${event.unit}\n`);
        this.#log(`phase ${event.phase}: ${event.total} ${event.unit}`);
        break;
      case 'phase-end':
        progress?.(`${event.phase} done (${Math.round(event.elapsedMs)} ms)\n`);
        break;
      default:
        break;
    }
  }

  /** `qCRC` of a range inside one algorithm's flash, computed on the target; other ranges go upstream. */
  async #crc(payload: string): Promise<string> {
    const range = parseAddressLength(payload, 'qCRC:');
    if (!range) return 'E01';
    const owner = ownerOf(this.#options.algorithms, range);
    if (owner.kind !== 'algorithm' || range.length === 0) {
      const reply = await this.#forward(payload);
      if (reply !== '') return reply;
      // Once one qCRC was answered gdb takes the packet as supported, and an empty reply becomes a
      // protocol error ("conflicting enabled responses"): answer it from memory read over the link.
      return `C${crcMpeg2(await this.#upstream.readMemory(range.address, range.length)).toString(16).padStart(8, '0')}`;
    }
    const crc = await this.#job(owner.algorithm, (flasher) => targetCrc(flasher, range));
    this.#log(`qCRC ${formatRange(range)} = ${hex32(crc)} (on the target)`);
    return `C${crc.toString(16).padStart(8, '0')}`;
  }

  // ---- monitor rspflash -------------------------------------------------------------------

  async #monitor(link: ClientLink, command: MonitorCommand | { error: string }): Promise<string> {
    const say = (text: string) => link.send(outputPacket(text));
    if ('error' in command) {
      say(`${command.error}\n`);
      return 'E01';
    }
    try {
      switch (command.kind) {
        case 'help':
          say(`${MONITOR_HELP}\n`);
          return 'OK';
        case 'info':
          say(this.#describe());
          return 'OK';
        case 'program':
        case 'verify': {
          const image = loadImage(await readFile(command.file), { source: command.file, ...(command.base === undefined ? {} : { base: command.base }) });
          for (const { algorithm, image: part } of this.#split(image)) {
            if (command.kind === 'program') {
              const report = await this.#program(`client #${link.id} monitor rspflash program`, algorithm, part, say);
              say(`${describeReport(report)}\n`);
            } else {
              await this.#job(algorithm, (flasher) => flasher.verify(part, { onProgress: (e) => this.#progress(e, say) }));
              say(`${command.file}: flash matches (${part.segments.reduce((n, s) => n + s.data.length, 0)} bytes)\n`);
            }
          }
          if (command.kind === 'program') say(STALE_CACHES);
          return 'OK';
        }
        case 'erase': {
          const targets =
            command.range === 'chip'
              ? this.#options.algorithms.map((algorithm) => ({ algorithm, range: 'chip' as const }))
              : [{ algorithm: this.#ownerOrThrow(command.range), range: command.range }];
          for (const t of targets) {
            const report = await this.#job(t.algorithm, (flasher) => flasher.erase(t.range, { onProgress: (e) => this.#progress(e, say) }));
            const what = report.chipErase ? `chip '${t.algorithm.name}'` : report.erased ? formatRange(report.erased) : 'nothing';
            say(`erased ${what} in ${report.durationMs} ms\n`);
            this.#info(`client #${link.id} monitor rspflash erase: erased ${what}`);
          }
          say(STALE_CACHES);
          return 'OK';
        }
      }
    } catch (err) {
      const error = toRspflashError(err);
      this.#info(`client #${link.id} monitor rspflash ${command.kind} failed: ${error.message}`);
      say(`rspflash: ${error.message}\n`);
      return 'E01';
    }
  }

  #ownerOrThrow(range: MemoryRange): FlashAlgorithm {
    const owner = ownerOf(this.#options.algorithms, range);
    if (owner.kind !== 'algorithm') {
      throw new OutOfFlashError(`${formatRange(range)} is not inside the flash of one algorithm the proxy serves`, range.address, range.length);
    }
    return owner.algorithm;
  }

  /** An image split by algorithm; every byte must fall in the flash of one. */
  #split(image: Image): { algorithm: FlashAlgorithm; image: Image }[] {
    const parts = new Map<FlashAlgorithm, Image['segments'][number][]>();
    for (const segment of image.segments) {
      const algorithm = this.#ownerOrThrow({ address: segment.address, length: segment.data.length });
      parts.set(algorithm, [...(parts.get(algorithm) ?? []), segment]);
    }
    return [...parts].map(([algorithm, segments]) => ({ algorithm, image: createImage(segments) }));
  }

  #describe(): string {
    const lines = [`rspflash proxy on ${this.#address}, upstream ${this.#upstream.server.kind} server (PacketSize ${this.#upstream.server.packetSize})`];
    for (const a of this.#options.algorithms) {
      const g = a.geometry;
      lines.push(`  ${a.name}: ${formatRange({ address: g.start, length: g.size })}, ${g.sectors.map((r) => `${r.count} x ${r.size} B`).join(' + ')}`);
    }
    lines.push(`  clients: ${[...this.#clients].map((c) => `#${c.id} (${c.peer})`).join(', ')}`);
    return lines.join('\n') + '\n';
  }

  // ---- lifecycle --------------------------------------------------------------------------

  #info(line: string): void {
    this.#log(line);
    this.#options.onLog?.(line);
  }

  async #stop(error: RspflashError | undefined): Promise<void> {
    if (this.#stopped) return this.#done.then(() => undefined);
    this.#stopped = true;
    for (const client of [...this.#clients]) client.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (!(this.#options.upstream instanceof GdbClient)) {
      // Leave the target halted: a client's resume may still be pending.
      if (this.#running) this.#sendInterrupt('closing');
      await this.#upstream.close().catch(() => undefined);
    }
    this.#resolveDone(error);
  }
}

const STALE_CACHES = "gdb may still show the old contents: 'maintenance flush dcache' (and 'maintenance flush register-cache'), or reset the target\n";

/** The figures of a report in one line. */
function describeReport(r: FlashReport): string {
  return (
    `${r.sectorsTouched} sector(s) touched, ${r.sectorsSkipped} unchanged, ${r.sectorsErased} erased${r.chipErase ? ' (chip erase)' : ''}, ` +
    `${r.bytesProgrammed} bytes programmed, ${r.bytesKept} kept, verify ${r.verify}, ${r.durationMs} ms`
  );
}

/**
 * gdb's CRC of a flash range: on the target where the flash reads at its
 * address (a 28-byte routine and its table in the transfer buffer, one run),
 * else from the algorithm's Read on the host.
 */
async function targetCrc(flasher: Flasher, range: MemoryRange): Promise<number> {
  if (!flasher.target.memoryMapped) return crcMpeg2(await flasher.read(range));
  const buffer = flasher.runner.buffer(0);
  const code = new Uint8Array(CRC_MPEG2_TABLE_OFFSET);
  code.set(CRC_MPEG2_CODE);
  const [crc] = await flasher.runner.batch(
    0,
    [{ fn: 'crc32', entry: buffer.address, args: [CRC_MPEG2_INIT, range.address, range.length, buffer.address + CRC_MPEG2_TABLE_OFFSET], expect: 0, collect: true }],
    { data: [code, crcMpeg2TableBytes()] },
  );
  return crc! >>> 0;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new RspTimeoutError(`${what} within ${ms} ms`, '^C', ms)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** A payload for the log: printable as is, the rest as \xNN, long ones cut. */
function show(payload: string, max = 200): string {
  const cut = payload.length > max ? payload.slice(0, max) : payload;
  // eslint-disable-next-line no-control-regex
  const text = cut.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return payload.length > max ? `${text}… (${payload.length} bytes)` : text;
}
