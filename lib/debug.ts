/**
 * The one debug-log channel of rspflash. Enabled per namespace through the
 * environment: `RSPFLASH_DEBUG=rsp,flash` (or `*` for everything). Lines go to
 * stderr, prefixed by the namespace and the milliseconds since the previous line.
 * @module
 */

/** A logger for one namespace; `enabled` lets hot paths skip building the message. */
export interface DebugLog {
  (message: string): void;
  readonly enabled: boolean;
  readonly namespace: string;
}

function enabledNamespaces(): Set<string> {
  const spec = (typeof process !== 'undefined' && process.env.RSPFLASH_DEBUG) || '';
  return new Set(spec.split(/[\s,]+/).filter(Boolean));
}

/**
 * Returns the logger for `namespace` (e.g. `rsp`, `gdb`, `algo`, `flash`).
 *
 * @example
 * ```ts
 * const log = createDebug('flash');
 * if (log.enabled) log(`erasing ${sectors.length} sectors`);
 * ```
 */
export function createDebug(namespace: string): DebugLog {
  const names = enabledNamespaces();
  const enabled = names.has('*') || names.has(namespace);
  let last = 0;
  const log = ((message: string) => {
    if (!enabled) return;
    const now = performance.now();
    const delta = last === 0 ? 0 : now - last;
    last = now;
    process.stderr.write(`rspflash:${namespace} +${delta.toFixed(1)}ms ${message}\n`);
  }) as DebugLog;
  Object.defineProperty(log, 'enabled', { value: enabled });
  Object.defineProperty(log, 'namespace', { value: namespace });
  return log;
}
