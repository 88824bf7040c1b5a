/**
 * Pack versions: CMSIS packs are versioned with Semantic Versioning 2.0
 * (`1.3.0`, `1.3.0-rc6`), and cpackget orders installed versions by semver
 * precedence (it uses `golang.org/x/mod/semver`). This module does the same,
 * without a dependency.
 * @module
 */

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$/;

interface Parsed {
  readonly core: readonly [number, number, number];
  readonly pre: readonly string[];
}

function parse(version: string): Parsed | undefined {
  const m = SEMVER.exec(version.trim());
  if (!m) return undefined;
  return { core: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].split('.') : [] };
}

/** Whether `version` is a semantic version (`1.2.3`, `1.2.3-rc.1`, an optional leading `v`). */
export function isPackVersion(version: string): boolean {
  return parse(version) !== undefined;
}

function compareIdentifiers(a: string, b: string): number {
  const an = /^\d+$/.test(a);
  const bn = /^\d+$/.test(b);
  if (an && bn) return Number(a) - Number(b);
  if (an !== bn) return an ? -1 : 1; // numeric identifiers sort before alphanumeric ones
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Orders two pack versions by semver precedence: negative if `a` is older,
 * positive if newer, 0 if equal (build metadata is ignored). A pre-release is
 * older than its release (`1.3.0-rc6` < `1.3.0`). Strings that are not
 * semantic versions sort before every valid one, and among themselves as text.
 *
 * @example
 * ```ts
 * ['1.10.0', '1.2.0', '1.3.0-rc6'].sort(comparePackVersions); // ['1.2.0', '1.3.0-rc6', '1.10.0']
 * ```
 */
export function comparePackVersions(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (!pa || !pb) {
    if (pa) return 1;
    if (pb) return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  for (let i = 0; i < 3; i++) {
    const d = pa.core[i]! - pb.core[i]!;
    if (d !== 0) return Math.sign(d);
  }
  if (pa.pre.length === 0 || pb.pre.length === 0) return pb.pre.length - pa.pre.length === 0 ? 0 : pa.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(pa.pre.length, pb.pre.length); i++) {
    const d = compareIdentifiers(pa.pre[i]!, pb.pre[i]!);
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(pa.pre.length - pb.pre.length);
}
