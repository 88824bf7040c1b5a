/**
 * The transfer floor: the least a client can do to put bytes into target RAM
 * over QEMU's gdbstub. A raw socket, hex `M` packets as large as QEMU takes
 * (payload ≤ 4095 characters: its buffer is 4096 bytes with a NUL), `window`
 * packets in flight, no acks sent (QEMU acks ours and never waits for ours),
 * hex encoding and checksums by Node's native code. Nothing of rspflash is used.
 * @module
 */
import net from 'node:net';

/** Largest `M` payload QEMU 7.2 accepts, characters (a longer one is dropped without a reply). */
export const QEMU_MAX_PAYLOAD = 4095;

/** Data bytes per `M` packet at `address` within `QEMU_MAX_PAYLOAD` (header `Maddr,len:`), a multiple of 4. */
export function rawChunk(address: number, maxPayload = QEMU_MAX_PAYLOAD): number {
  const header = `M${address.toString(16)},${(0x800).toString(16)}:`.length;
  return Math.floor((maxPayload - header) / 2) & ~3;
}

/** Result of one {@link rawWrite}. */
export interface RawWriteResult {
  ms: number;
  packets: number;
  bytesSent: number;
  window: number;
  chunk: number;
}

function frame(payload: Buffer): Buffer {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) sum += payload[i]!;
  const out = Buffer.allocUnsafe(payload.length + 4);
  out[0] = 0x24; // '$'
  payload.copy(out, 1);
  out[payload.length + 1] = 0x23; // '#'
  out.write((sum & 0xff).toString(16).padStart(2, '0'), payload.length + 2, 'latin1');
  return out;
}

/** Minimal packet reader: yields payloads, skips acks. */
class Replies {
  #buffer = '';
  #waiting: ((payload: string) => void)[] = [];
  #queue: string[] = [];
  #error: Error | undefined;
  #onError: ((err: Error) => void)[] = [];

  push(chunk: Buffer): void {
    this.#buffer += chunk.toString('latin1');
    for (;;) {
      const start = this.#buffer.indexOf('$');
      if (start < 0) {
        if (this.#buffer.includes('-')) this.fail(new Error('the server answered - (bad checksum)'));
        this.#buffer = '';
        return;
      }
      const end = this.#buffer.indexOf('#', start);
      if (end < 0 || end + 2 >= this.#buffer.length) {
        this.#buffer = this.#buffer.slice(start);
        return;
      }
      const payload = this.#buffer.slice(start + 1, end);
      this.#buffer = this.#buffer.slice(end + 3);
      const waiter = this.#waiting.shift();
      if (waiter) waiter(payload);
      else this.#queue.push(payload);
    }
  }

  next(): Promise<string> {
    if (this.#error) return Promise.reject(this.#error);
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.#waiting.push(resolve);
      this.#onError.push(reject);
    });
  }

  fail(err: Error): void {
    this.#error ??= err;
    for (const reject of this.#onError.splice(0)) reject(err);
    this.#waiting = [];
  }
}

/**
 * Connects to `host:port`, syncs with `qSupported` (skipping anything QEMU
 * sent unasked), writes `data` at `address` with `window` `M` packets in
 * flight, and closes. Time covers the writes only, from the first packet to
 * the last `OK`.
 */
export async function rawWrite(host: string, port: number, address: number, data: Uint8Array, window: number): Promise<RawWriteResult> {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const replies = new Replies();
  socket.on('data', (chunk: Buffer) => replies.push(chunk));
  socket.on('error', (err) => replies.fail(err));
  socket.on('close', () => replies.fail(new Error('the server closed the connection')));
  try {
    socket.write(frame(Buffer.from('qSupported', 'latin1')));
    while (!(await replies.next()).includes('PacketSize')) {
      // an unsolicited stop reply from before our request: skip it
    }
    const chunk = rawChunk(address + data.length);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let sent = 0;
    let packets = 0;
    let bytesSent = 0;
    let inFlight = 0;
    const start = performance.now();
    const sendNext = () => {
      const n = Math.min(chunk, bytes.length - sent);
      const at = address + sent;
      const packet = frame(Buffer.from(`M${at.toString(16)},${n.toString(16)}:${bytes.toString('hex', sent, sent + n)}`, 'latin1'));
      socket.write(packet);
      bytesSent += packet.length;
      sent += n;
      packets++;
      inFlight++;
    };
    while (sent < bytes.length || inFlight > 0) {
      while (sent < bytes.length && inFlight < window) sendNext();
      const reply = await replies.next();
      inFlight--;
      if (reply !== 'OK') throw new Error(`M write answered '${reply}'`);
    }
    return { ms: performance.now() - start, packets, bytesSent, window, chunk };
  } finally {
    socket.destroy();
  }
}
