/**
 * Where the benchmark finds the repository's fixtures, from its source
 * (bench/*.ts under vitest) or from its build (dist/bench/bench/*.js).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The repository root: the first ancestor of this file with a package.json. */
export const REPO_ROOT = (() => {
  for (let dir = HERE; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(HERE, '..');
  }
})();

/** Built test fixtures: boot image and the NOR-simulator algorithm. */
export const FIXTURE_DIR = join(REPO_ROOT, 'test', 'fixtures', 'build');

/** The compiled child that runs one program case (figure 9 needs its own process). */
// tsconfig.bench.json compiles bench/ and the lib it imports into dist/bench/ (its own copy, so
// compiling the bench never rewrites dist/lib under a test that is running it).
export const PROGRAM_CHILD = join(REPO_ROOT, 'dist', 'bench', 'bench', 'program-child.js');
