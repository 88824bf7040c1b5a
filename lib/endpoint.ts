/**
 * GDB server addresses as users write them.
 * @module
 */
import { DEFAULT_GDB_PORT, type GdbEndpoint } from './gdb/client.js';
import { UsageError } from './errors.js';

/**
 * Parses `host:port`, `:port`, `port`, `host` or `unix:/path` into an endpoint.
 * Defaults: host `localhost`, port 2331 (JLinkGDBServer's).
 */
export function parseEndpoint(text: string): GdbEndpoint {
  if (text.startsWith('unix:')) return { path: text.slice(5) };
  // gdb's own syntax: `target remote tcp:host:port`.
  if (text.startsWith('tcp:')) text = text.slice(4);
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`'${text}' is not host:port`);
  const host = m[1] ?? (m[2] || 'localhost');
  if (/^\d+$/.test(host) && m[3] === undefined) {
    const port = Number(host);
    if (!(port > 0 && port < 65536)) throw new UsageError(`Port ${host} is out of range`);
    return { host: 'localhost', port };
  }
  const port = m[3] === undefined ? DEFAULT_GDB_PORT : Number(m[3]);
  if (!(port > 0 && port < 65536)) throw new UsageError(`Port ${m[3]} is out of range`);
  return { host, port };
}

