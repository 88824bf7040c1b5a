/**
 * What differs between GDB servers, detected from what they say rather than
 * configured. Each difference is a field with the reason it exists.
 * @module
 */

/** The GDB servers rspflash knows by name. */
export type ServerKind = 'jlink' | 'openocd' | 'pyocd' | 'qemu' | 'unknown';

/** Behaviour that must differ per server. */
export interface ServerDialect {
  readonly kind: ServerKind;
  /**
   * How to leave the target running when we disconnect. J-Link answers `D`
   * (detach) with an empty reply and keeps the core halted, so it needs
   * `monitor go`; the others resume on `D`.
   */
  readonly resume: 'detach' | 'monitor-go';
  /** Monitor command that resets the core and keeps it halted, if the server has one. */
  readonly resetHaltCommand: string | undefined;
  /** Monitor command that resets the core and lets it run, if the server has one. */
  readonly resetRunCommand: string | undefined;
  /**
   * How many memory-write packets may be in flight at once. 1 (no pipelining)
   * unless measured safe on that server: QEMU reads packets one after another
   * from its socket, so queued packets are served in order.
   */
  readonly writeWindow: number;
  /**
   * Extra cap on an `m` read, bytes, beyond what PacketSize allows: QEMU 7.2
   * answers `E22` to reads of more than 0x800 bytes.
   */
  readonly maxReadChunk: number;
}

const BASE: Omit<ServerDialect, 'kind'> = {
  resume: 'detach',
  resetHaltCommand: undefined,
  resetRunCommand: undefined,
  writeWindow: 1,
  maxReadChunk: Number.MAX_SAFE_INTEGER,
};

/** Dialects by kind. */
export const DIALECTS: Readonly<Record<ServerKind, ServerDialect>> = {
  jlink: { ...BASE, kind: 'jlink', resume: 'monitor-go', resetHaltCommand: 'reset', resetRunCommand: undefined },
  openocd: { ...BASE, kind: 'openocd', resetHaltCommand: 'reset halt', resetRunCommand: 'reset run' },
  pyocd: { ...BASE, kind: 'pyocd', resetHaltCommand: 'reset halt', resetRunCommand: 'reset' },
  qemu: { ...BASE, kind: 'qemu', resetHaltCommand: 'system_reset', writeWindow: 4, maxReadChunk: 0x800 },
  unknown: { ...BASE, kind: 'unknown' },
};

/**
 * Guesses the server from its `qSupported` features.
 *
 * - JLinkGDBServer says `qXfer:memory-map:read-` (an explicit minus no other server sends) with `hwbreak+`.
 * - QEMU advertises `vContSupported+` but neither `QStartNoAckMode` (7.x) nor a memory map.
 * - OpenOCD and pyOCD both advertise a memory map and no-ack mode; pyOCD (unlike OpenOCD) does not say `vContSupported+`.
 */
export function detectServer(features: ReadonlyMap<string, string | boolean>): ServerKind {
  const has = (name: string) => features.get(name) === true;
  if (features.get('qXfer:memory-map:read') === false && has('hwbreak')) return 'jlink';
  if (has('qXfer:memory-map:read')) return has('vContSupported') ? 'openocd' : 'pyocd';
  if (has('vContSupported') && !has('QStartNoAckMode')) return 'qemu';
  return 'unknown';
}

/**
 * Parses a `qSupported` reply (`PacketSize=4000;qXfer:features:read+;hwbreak-`)
 * into a map: `name → true | false` for `+`/`-`, `name → value` for `=`.
 */
export function parseSupported(reply: string): Map<string, string | boolean> {
  const out = new Map<string, string | boolean>();
  for (const item of reply.split(';')) {
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq >= 0) out.set(item.slice(0, eq), item.slice(eq + 1));
    else if (item.endsWith('+')) out.set(item.slice(0, -1), true);
    else if (item.endsWith('-')) out.set(item.slice(0, -1), false);
    else if (item.endsWith('?')) out.set(item.slice(0, -1), false);
    else out.set(item, true);
  }
  return out;
}
