/**
 * A scripted fake GDB server for hostile-server tests: it acknowledges every
 * packet and hands each request to a script, which may answer, stay silent,
 * stream without end (respecting backpressure), or close. No real server does
 * these things; the tests show rspflash's caps and timeouts hold when one does.
 * @module
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketParser, frame } from '../../lib/rsp/packet.js';

/** What a script can do with the client. */
export interface ServerSide {
  /** Sends one packet with this (latin1) payload. */
  reply(payload: string | Uint8Array): void;
  /** Sends raw bytes. */
  raw(bytes: Uint8Array): void;
  /**
   * Calls `next` for chunk after chunk and sends each, as fast as the socket
   * drains, until the connection closes or `next` returns undefined.
   */
  stream(next: () => Uint8Array | undefined): void;
  close(): void;
  /** Bytes sent to the client so far. */
  readonly sent: number;
}

/** Answers one request (latin1 payload); return without replying to stay silent. */
export type Script = (request: string, side: ServerSide) => void;

/** The usual answers to what GdbClient.connect asks, for scripts to fall back on. */
export function basics(request: string, side: ServerSide, features = 'PacketSize=1000'): boolean {
  if (request.startsWith('qSupported')) side.reply(features);
  else if (request === '?') side.reply('S05');
  else if (request === 'g') side.reply('00'.repeat(17 * 4));
  else return false;
  return true;
}

const bytes = (payload: string | Uint8Array) => (typeof payload === 'string' ? new Uint8Array(Buffer.from(payload, 'latin1')) : payload);

/** A running fake server. */
export interface HostileServer {
  connectOptions: { path: string };
  /** Requests received, in order. */
  requests: string[];
  /** Bytes sent to clients. */
  sent(): number;
  close(): Promise<void>;
}

export async function startHostileServer(script: Script): Promise<HostileServer> {
  const dir = mkdtempSync(join(tmpdir(), 'rspflash-hostile-'));
  const path = join(dir, 'server.sock');
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  let total = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const parser = new PacketParser({ maxPacket: 1 << 24 });
    let streaming = false;
    const side: ServerSide = {
      reply: (payload) => side.raw(frame(bytes(payload))),
      raw: (data) => {
        if (socket.destroyed) return;
        total += data.length;
        socket.write(data);
      },
      stream: (next) => {
        if (streaming) return;
        streaming = true;
        const pump = () => {
          while (!socket.destroyed) {
            const chunk = next();
            if (chunk === undefined) return;
            total += chunk.length;
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        pump();
      },
      close: () => socket.destroy(),
      get sent() {
        return total;
      },
    };
    socket.on('data', (chunk: Buffer) => {
      for (const event of parser.push(chunk)) {
        if (event.kind !== 'packet') continue;
        side.raw(Uint8Array.of(0x2b)); // '+'
        const text = Buffer.from(event.payload).toString('latin1');
        requests.push(text.slice(0, 64));
        script(text, side);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    connectOptions: { path },
    requests,
    sent: () => total,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
