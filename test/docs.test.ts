/** The API reference builds: typedoc over lib/index.ts with the guides, no errors. */
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

it('typedoc renders the API reference without errors', () => {
  const r = spawnSync(process.execPath, ['node_modules/typedoc/bin/typedoc', '--emit', 'none'], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  expect(out).toMatch(/Found 0 errors/);
}, 150_000);
