#!/usr/bin/env bash
# Checks the npm package as a user gets it: `npm pack`, then install the
# tarball into an empty folder and use it from there — the CLI through
# `npx rspflash --help`, the library through an ESM import and a type check.
#
# Packs from a scratch copy of the working tree, so the `prepack` build never
# rewrites this checkout's dist/ while other tests use it. Needs the npm
# registry (the tarball's dependencies are installed from it).
#
#   bash scripts/check-package.sh          # prints what it checked; exit 1 on the first failure
#   KEEP=1 bash scripts/check-package.sh   # keep the scratch folders for a look
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/rspflash-package-XXXXXX")"
cleanup() { if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi; }
trap cleanup EXIT

say() { printf 'check-package: %s\n' "$*"; }
fail() { printf 'check-package: FAIL: %s\n' "$*" >&2; exit 1; }

# 1. A copy of the sources (tracked and new, not ignored), sharing node_modules for the build.
mkdir -p "$work/src" "$work/pack" "$work/consumer"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' | tar --null -T - -cf -) | tar -xf - -C "$work/src"
ln -s "$repo/node_modules" "$work/src/node_modules"

# 2. npm pack (runs prepack = build). Lifecycle output goes to stderr; stdout is the JSON.
(cd "$work/src" && npm pack --json --pack-destination "$work/pack" 2>"$work/pack.log" >"$work/pack.json") ||
  { cat "$work/pack.log" >&2; fail "npm pack failed"; }
tarball="$(ls "$work"/pack/*.tgz)"
say "packed $(basename "$tarball") ($(wc -c <"$tarball") bytes)"

# 3. What is in it: the build, the docs that npm always ships, nothing of the test bed.
node - "$work/pack.json" <<'EOF' || fail "tarball contents"
const [{ files, entryCount }] = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
const paths = files.map((f) => f.path);
const problems = [];
for (const required of ['package.json', 'README.md', 'LICENSE', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/bin/rspflash.js']) {
  if (!paths.includes(required)) problems.push(`missing ${required}`);
}
if (!paths.some((p) => p.startsWith('dist/lib/flash/'))) problems.push('missing dist/lib/flash/');
const forbidden = paths.filter((p) => /(^|\/)(test|tests|bench|examples|fixtures|target-src|scripts|node_modules)\//.test(p) || /\.test\.|\.spec\./.test(p) || p.endsWith('.tgz'));
for (const p of forbidden) problems.push(`should not ship ${p}`);
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`check-package: ${entryCount} files: dist/lib, dist/bin, README.md, LICENSE; no tests or fixtures`);
const maps = paths.filter((p) => p.endsWith('.js.map'));
if (maps.length > 0 && !paths.some((p) => /^lib\/.*\.ts$/.test(p))) {
  console.log(`check-package: note: ${maps.length} source maps point at lib/ and bin/ sources the package does not ship`);
}
EOF

# 4. Install into an empty project, as a user would.
cd "$work/consumer"
printf '{ "name": "rspflash-consumer", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
npm install --no-audit --no-fund "$tarball" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "npm install of the tarball failed"; }
say "installed into an empty folder"

# 5. The CLI.
help="$(npx --no-install rspflash --help 2>&1)" || { echo "$help" >&2; fail "npx rspflash --help exited $?"; }
grep -q '^Usage: rspflash' <<<"$help" || { echo "$help" >&2; fail "npx rspflash --help printed no usage"; }
grep -q 'program' <<<"$help" || fail "npx rspflash --help does not list the program command"
version="$(npx --no-install rspflash --version)"
expected="$(node -p "require('$repo/package.json').version")"
[ "$version" = "$expected" ] || fail "rspflash --version printed '$version', package.json says $expected"
say "npx rspflash --help and --version ($version) work"

# 6. The library through the package's exports, as ESM.
node --input-type=module -e "
import { parseEndpoint, Flasher, RspflashError } from 'rspflash';
const endpoint = parseEndpoint('localhost:2331');
if (endpoint.host !== 'localhost' || endpoint.port !== 2331) throw new Error('parseEndpoint gave ' + JSON.stringify(endpoint));
if (typeof Flasher !== 'function' || typeof Flasher.create !== 'function') throw new Error('typeof Flasher is ' + typeof Flasher);
if (typeof RspflashError !== 'function') throw new Error('no RspflashError');
console.log('check-package: import from \'rspflash\' works: parseEndpoint, Flasher, RspflashError');
" || fail "ESM import of 'rspflash'"
if node -e "require('rspflash')" >/dev/null 2>&1; then
  say "note: require('rspflash') also works (Node's require(esm))"
fi

# 7. A TypeScript consumer written from the README alone: withFlasher, the loaders, an exhaustive switch
#    over RspflashErrorCode (a code added without a case fails to compile), the advanced subpath.
#    Strict, NodeNext, through the package's "exports".
cases="$(node -e "
const t = require('fs').readFileSync(process.argv[1], 'utf8');
const m = /export type RspflashErrorCode\s*=([^;]+);/.exec(t);
if (!m) { console.error('no RspflashErrorCode union in lib/errors.ts'); process.exit(1); }
for (const code of m[1].match(/'RSPFLASH_[A-Z_]+'/g)) console.log('    case ' + code + ': return \'see docs/errors.md\';');
" "$repo/lib/errors.ts")" || fail "reading the error codes"
cat >consumer.ts <<'CONSUMER'
import { readFile } from 'node:fs/promises';
import { withFlasher, loadAlgorithm, createImage, RspflashError, type RspflashErrorCode, type FlashReport } from 'rspflash';
import { planRamLayout } from 'rspflash/advanced';

/** Every code gets a word: the compiler checks that the switch is exhaustive. */
export function advice(code: RspflashErrorCode): string {
  switch (code) {
__CASES__
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

export const layoutPlanner: typeof planRamLayout = planRamLayout;
const [gdb, flm] = [process.env.RSPFLASH_GDB, process.env.RSPFLASH_FLM];
if (gdb && flm) {
  const algorithm = loadAlgorithm(await readFile(flm), { source: flm });
  const data = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff);
  const image = createImage([{ address: 0xc0300000, data, source: 'consumer' }]);
  try {
    const report: FlashReport = await withFlasher({ gdb, algorithm, board: 'qemu-an547' }, (flasher) => flasher.program(image));
    console.log(`consumer programmed ${report.bytesProgrammed} bytes, verified by ${report.verify}`);
  } catch (err) {
    if (err instanceof RspflashError) console.error(`${err.code}: ${advice(err.code)}: ${err.message}`);
    throw err;
  }
}
CONSUMER
node -e "
const fs = require('fs');
fs.writeFileSync('consumer.ts', fs.readFileSync('consumer.ts', 'utf8').replace('__CASES__', process.argv[1]));
" "$cases"
ln -s "$repo/node_modules/@types" node_modules/@types 2>/dev/null || true
node "$repo/node_modules/typescript/bin/tsc" --strict --module nodenext --moduleResolution nodenext --target es2022 --types node consumer.ts ||
  fail "TypeScript cannot type-check a consumer of 'rspflash' written from the README"
say "the typings resolve for a NodeNext TypeScript consumer (README snippet, exhaustive switch over RspflashErrorCode, rspflash/advanced)"

# 8. Run it against a GDB server when the caller names one (test/package.test.ts starts QEMU).
if [ -n "${RSPFLASH_GDB:-}" ]; then
  out="$(node consumer.js 2>&1)" || { echo "$out" >&2; fail "the consumer failed against $RSPFLASH_GDB"; }
  say "$out"
fi
say "OK"
