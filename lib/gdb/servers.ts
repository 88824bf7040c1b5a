/**
 * What differs between GDB servers, detected from what they say rather than
 * configured. Each difference is a field with the reason it exists.
 * @module
 */

/** The GDB servers rspflash knows by name. */
export type ServerKind = 'jlink' | 'openocd' | 'pyocd' | 'qemu' | 'unknown';

/** Behaviour that must differ per server. */
export interface ServerDialect {
  /** Which server this dialect is for. */
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
   * from its socket, so queued packets are served in order. Applies in no-ack
   * mode only (`RspConnection.pipeline`): QEMU 7.2 has no no-ack mode,
   * so there it is 1 in effect — with acks, a damaged reply in a window could
   * not be asked for again (measured on 7.2: 18.6 MB/s with 4 in flight,
   * 11 MB/s with 1).
   */
  readonly writeWindow: number;
  /**
   * Extra cap on an `m` read, bytes, beyond what PacketSize allows: QEMU 7.2
   * answers `E22` to reads of more than 0x800 bytes.
   */
  readonly maxReadChunk: number;
  /**
   * How the server reports a monitor command it does not know when it still
   * answers `OK`. QEMU passes `qRcmd` to its HMP monitor, which prints
   * `unknown command: 'foo'` and the stub answers `OK`; J-Link answers empty and
   * OpenOCD `E…`, which need no pattern.
   */
  readonly unknownMonitorCommand: RegExp | undefined;
}

const BASE: Omit<ServerDialect, 'kind'> = {
  resume: 'detach',
  resetHaltCommand: undefined,
  resetRunCommand: undefined,
  writeWindow: 1,
  maxReadChunk: Number.MAX_SAFE_INTEGER,
  unknownMonitorCommand: undefined,
};

/** Freezes an object and the objects it holds: shared tables must not be changed by one client for all. */
function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) if (typeof inner === 'object' && inner !== null && !(inner instanceof RegExp)) deepFreeze(inner);
  return Object.freeze(value);
}

/** Dialects by kind (frozen). */
export const DIALECTS: Readonly<Record<ServerKind, ServerDialect>> = deepFreeze({
  jlink: { ...BASE, kind: 'jlink', resume: 'monitor-go', resetHaltCommand: 'reset', resetRunCommand: undefined },
  openocd: { ...BASE, kind: 'openocd', resetHaltCommand: 'reset halt', resetRunCommand: 'reset run' },
  pyocd: { ...BASE, kind: 'pyocd', resetHaltCommand: 'reset halt', resetRunCommand: 'reset' },
  qemu: {
    ...BASE,
    kind: 'qemu',
    resetHaltCommand: 'system_reset',
    writeWindow: 16, // measured (bench): 23 MB/s at 4, 31 at 16, 32 at 64 packets in flight
    maxReadChunk: 0x800,
    unknownMonitorCommand: /^unknown command: '/m,
  },
  unknown: { ...BASE, kind: 'unknown' },
});

/**
 * Guesses the server from its `qSupported` features. Each rule rests on what
 * that server's source sends (the replies are pinned in test/gdb/servers.test.ts):
 *
 * - JLinkGDBServer says `qXfer:memory-map:read-` (explicitly absent) together
 *   with `hwbreak+`, which OpenOCD never sends.
 * - pyOCD alone says `QNonStop+`; older versions are told by a memory map
 *   without `vContSupported+`.
 * - OpenOCD always says `qXfer:threads:read+` and `vContSupported+`; its memory
 *   map is `-` when no flash bank is configured (a RAM-only target, or a chip
 *   whose flash it does not know, as Alif's OSPI).
 * - QEMU says `vContSupported+;multiprocess+` and has neither a memory map nor
 *   thread lists; 7.x also lacks `QStartNoAckMode`.
 *
 * Anything else (Black Magic Probe, probe-rs, ST-LINK gdbserver, …) is
 * `unknown` rather than a wrong guess: a wrong dialect sends the wrong monitor
 * commands.
 */
export function detectServer(features: ReadonlyMap<string, string | boolean>): ServerKind {
  const has = (name: string) => features.get(name) === true;
  if (features.get('qXfer:memory-map:read') === false && has('hwbreak')) return 'jlink';
  if (has('QNonStop') || (has('qXfer:memory-map:read') && !has('vContSupported') && has('qXfer:threads:read'))) return 'pyocd';
  if (has('qXfer:threads:read') && has('vContSupported') && has('QStartNoAckMode')) return 'openocd';
  if (!features.has('qXfer:memory-map:read') && !features.has('qXfer:threads:read') && has('vContSupported')) {
    if (has('multiprocess') || !has('QStartNoAckMode')) return 'qemu';
  }
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
