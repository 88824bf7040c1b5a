/**
 * A TCP relay on loopback in front of a GDB server: each client gets its own
 * upstream connection, and what crosses it in either direction goes through
 * the handlers its user gives (to count it, delay it or shape it). The latency
 * proxy (latency-proxy.ts) and the seed job's link model (link-model.ts) are
 * both this relay with their own handlers.
 * @module
 */
import net from 'node:net';

/** What one connection does with the chunks each side sends. */
export interface RelayConnection {
  /** A chunk from the client, to pass on to `upstream`. */
  fromClient(chunk: Buffer): void;
  /** A chunk from the server, to pass on to `client`. */
  fromServer(chunk: Buffer): void;
}

/** How a relay handles its connections. */
export interface RelayHandlers {
  /** Called for each client with its upstream connection (still connecting: the socket buffers what is written before). */
  connection(client: net.Socket, upstream: net.Socket): RelayConnection;
  /** How long both sides stay open after either closes, so that bytes still held back get out. */
  lingerMs(): number;
}

/** A running relay; `port` is where clients connect. */
export interface Relay {
  readonly port: number;
  /** `127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** Closes every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a relay on a free loopback port to `upstreamHost:upstreamPort`. */
export async function startRelay(upstreamHost: string, upstreamPort: number, handlers: RelayHandlers): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host: upstreamHost, port: upstreamPort });
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    const connection = handlers.connection(client, upstream);
    client.on('data', (chunk: Buffer) => connection.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => connection.fromServer(chunk));
    const closeBoth = () => {
      setTimeout(() => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      }, handlers.lingerMs());
    };
    client.on('close', closeBoth).on('error', closeBoth);
    upstream.on('close', closeBoth).on('error', closeBoth);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    endpoint: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
