/** The API reference builds: typedoc over lib/index.ts with the guides, no errors. */
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

it('typedoc renders the API reference without errors', () => {
  const r = spawnSync(process.execPath, ['node_modules/typedoc/bin/typedoc', '--emit', 'none'], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  // typedoc prints its "Found N errors and M warnings" line only when there is something to count: a clean run
  // (no warnings either — e.g. in a clone whose git remote is valid) prints nothing at all.
  expect(out).not.toMatch(/\[error\]|Found [1-9]\d* errors?/);
}, 150_000);
