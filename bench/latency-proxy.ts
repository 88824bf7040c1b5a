/**
 * A TCP relay on loopback that delays every chunk by a fixed time in each
 * direction, the way a USB debug probe adds about a millisecond per transfer.
 * Bandwidth is not limited (a chunk is delayed, not slowed). It also counts
 * the RSP packets the client sends (`$` only starts a packet: inside `M` hex
 * and escaped `X` data it never appears).
 *
 * Node timers fire no earlier than asked and usually up to a millisecond
 * later, so the real added round-trip time is measured and reported rather
 * than assumed.
 * @module
 */
import type net from 'node:net';
import { startRelay } from './relay.js';

/** Counters of one relay. */
export interface ProxyStats {
  /** RSP packets client → server. */
  requestPackets: number;
  bytesToServer: number;
  bytesToClient: number;
}

/** A running relay; `port` is where clients connect. */
export interface LatencyProxy {
  readonly port: number;
  readonly endpoint: string;
  readonly stats: ProxyStats;
  /** Changes the delay for chunks that arrive from now on. */
  setDelay(ms: number): void;
  resetStats(): void;
  close(): Promise<void>;
}

/** Delays chunks in order: one timer for the oldest pending chunk. */
function delayedWriter(target: net.Socket, delayOf: () => number): (chunk: Buffer) => void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) target.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - now));
  };
  return (chunk) => {
    const delay = delayOf();
    if (delay <= 0 && queue.length === 0) {
      target.write(chunk);
      return;
    }
    queue.push({ due: performance.now() + delay, chunk });
    timer ??= setTimeout(flush, delay);
  };
}

/** Starts a relay to `upstreamHost:upstreamPort` adding `delayMs` in each direction. One client at a time, like the server. */
export async function startLatencyProxy(upstreamHost: string, upstreamPort: number, delayMs: number): Promise<LatencyProxy> {
  let delay = delayMs;
  const stats: ProxyStats = { requestPackets: 0, bytesToServer: 0, bytesToClient: 0 };
  const relay = await startRelay(upstreamHost, upstreamPort, {
    connection: (client, upstream) => {
      const toServer = delayedWriter(upstream, () => delay);
      const toClient = delayedWriter(client, () => delay);
      return {
        fromClient: (chunk) => {
          stats.bytesToServer += chunk.length;
          for (let i = chunk.indexOf(0x24); i >= 0; i = chunk.indexOf(0x24, i + 1)) stats.requestPackets++;
          toServer(chunk);
        },
        fromServer: (chunk) => {
          stats.bytesToClient += chunk.length;
          toClient(chunk);
        },
      };
    },
    // Close each side once the other has closed and its delayed bytes are out.
    lingerMs: () => delay + 5,
  });
  return {
    port: relay.port,
    endpoint: relay.endpoint,
    stats,
    setDelay: (ms) => (delay = ms),
    resetStats: () => Object.assign(stats, { requestPackets: 0, bytesToServer: 0, bytesToClient: 0 }),
    close: relay.close,
  };
}
