/**
 * One debugger's connection to the proxy (the downstream side): framing,
 * acknowledgements and no-ack mode of its own, the interrupt byte, and its
 * requests handed on one at a time. Knows nothing of what the requests mean.
 *
 * Rules (GDB manual, "Packet Acknowledgment", "Interrupts"): until the client
 * switches to no-ack mode each good packet is answered `+`, a damaged one `-`
 * (the client sends it again), and a `-` from the client makes us send our
 * last packet again. A raw 0x03 between packets asks to stop a running core.
 * @module
 */
import type { Socket } from 'node:net';
import { PacketParser, frame, latin1Bytes } from '../rsp/packet.js';
import { ProtocolError } from '../errors.js';

/** What a client link reports to the proxy. */
export interface ClientLinkHandler {
  /** A request (latin1 payload, escaped as sent); resolves with the reply payload, or `undefined` for none. */
  request(link: ClientLink, payload: string): Promise<string | undefined>;
  /** The client sent the interrupt byte. */
  interrupt(link: ClientLink): void;
  /** The link closed (by the client, by us, or on an error). */
  closed(link: ClientLink, error: Error | undefined): void;
  /** Something worth a line in the log (garbage, damaged packets). */
  log(link: ClientLink, line: string, level: 'info' | 'debug'): void;
}

const ACK = Uint8Array.of(0x2b);
const NACK = Uint8Array.of(0x2d);

/** A downstream client. */
export class ClientLink {
  /** 1, 2, 3… in connection order, for logs. */
  readonly id: number;
  /** `host:port` or `unix` of the peer. */
  readonly peer: string;
  readonly #socket: Socket;
  readonly #parser: PacketParser;
  readonly #handler: ClientLinkHandler;
  #noAck = false;
  #lastPacket: Uint8Array | undefined;
  #closed = false;
  /** Requests received and not yet handed on: they are served in order, one at a time. */
  readonly #queue: string[] = [];
  #busy = false;

  constructor(id: number, socket: Socket, handler: ClientLinkHandler, maxPacket: number) {
    this.id = id;
    this.#socket = socket;
    this.#handler = handler;
    this.#parser = new PacketParser({ maxPacket });
    this.peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#close(err));
    socket.on('close', () => this.#close(undefined));
  }

  /** Whether the client switched acknowledgements off. */
  get noAck(): boolean {
    return this.#noAck;
  }

  /** Whether the link is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Switches acknowledgements off: after the `OK` to `QStartNoAckMode` went out. */
  setNoAck(): void {
    this.#noAck = true;
  }

  /** Sends one packet (a reply, or `O` output while the client waits). */
  send(payload: string): void {
    if (this.#closed) return;
    const packet = frame(latin1Bytes(payload));
    this.#lastPacket = packet;
    this.#socket.write(packet);
  }

  /** Closes the connection. */
  close(): void {
    this.#socket.destroy();
    this.#close(undefined);
  }

  #close(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#socket.destroy();
    this.#handler.closed(this, error);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let events;
    try {
      events = this.#parser.push(chunk);
    } catch (err) {
      this.#handler.log(this, `dropped: ${err instanceof Error ? err.message : String(err)}`, 'info');
      this.#close(err instanceof Error ? err : new ProtocolError(String(err)));
      return;
    }
    for (const event of events) {
      switch (event.kind) {
        case 'packet': {
          const text = Buffer.from(event.payload).toString('latin1');
          if (!event.checksumOk) {
            this.#handler.log(this, `damaged packet (bad checksum)${this.#noAck ? ' dropped' : ', asked again'}: ${text.slice(0, 40)}`, 'info');
            if (!this.#noAck) this.#socket.write(NACK);
            break;
          }
          if (!this.#noAck) this.#socket.write(ACK);
          this.#queue.push(text);
          break;
        }
        case 'nack':
          if (this.#lastPacket && !this.#noAck) this.#socket.write(this.#lastPacket);
          break;
        case 'interrupt':
          this.#handler.interrupt(this);
          break;
        case 'garbage':
          this.#handler.log(this, `ignored ${event.bytes.length} bytes outside any packet`, 'info');
          break;
        case 'notification':
          this.#handler.log(this, 'ignored a notification (%…) from a client', 'info');
          break;
        case 'ack':
          break;
      }
    }
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const payload = this.#queue.shift()!;
        const reply = await this.#handler.request(this, payload);
        if (reply !== undefined) this.send(reply);
        if (payload === 'QStartNoAckMode' && reply === 'OK') this.setNoAck();
      }
    } finally {
      this.#busy = false;
    }
  }
}
