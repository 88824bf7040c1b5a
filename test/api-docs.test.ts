/**
 * The public surface is documented: typedoc over both entry points (`rspflash` and
 * `rspflash/advanced`) with `validation.notDocumented` finds no exported member without TSDoc,
 * no `{@link}` to a symbol missing from the docs, and no type referenced but not exported.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * Warnings that depend on the checkout, not on the code: a clone without an `origin` remote
 * cannot have source links.
 */
const ENVIRONMENT_WARNINGS = [/The provided git remote "origin" was not valid/, /^Found \d+ errors and \d+ warnings$/];

/** Links to symbols outside the docs, types shown but not exported, stale `@param`s, links to folders. */
const LINK_WARNINGS = /links to|is referenced by|which was not used|relative path|Failed to resolve/;

let warnings: string[] = [];
let output = '';
let status: number | null = null;

beforeAll(() => {
  // --emit none: validation only, no HTML (about 7 s instead of 20).
  const r = spawnSync(
    process.execPath,
    ['node_modules/typedoc/bin/typedoc', '--emit', 'none', '--logLevel', 'Warn', '--validation.notDocumented', '--disableSources'],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } },
  );
  status = r.status;
  // eslint-disable-next-line no-control-regex
  output = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  warnings = output
    .split('\n')
    .filter((line) => line.startsWith('[warning] '))
    .map((line) => line.slice('[warning] '.length))
    .filter((text) => !ENVIRONMENT_WARNINGS.some((re) => re.test(text)));
}, 150_000);

/** The warnings matching `re`, one per line, for a failure message that lists them. */
function listed(re: RegExp): string {
  return warnings.filter((w) => re.test(w)).join('\n');
}

describe('the API reference (typedoc, validation.notDocumented)', () => {
  it('builds without errors', () => {
    expect(status, output).toBe(0);
  });

  it('documents every exported member of the main entry point', () => {
    expect(listed(/^rspflash\.\S+ .*does not have any documentation/), 'undocumented members of rspflash').toBe('');
  });

  it('documents every exported member of rspflash/advanced', () => {
    expect(listed(/^rspflash\/advanced.*does not have any documentation/), 'undocumented members of rspflash/advanced').toBe('');
  });

  it('links only to symbols that are in the docs, and exports every type it shows', () => {
    expect(listed(LINK_WARNINGS), 'broken links and unexported types').toBe('');
  });

  it('has no other warnings', () => {
    expect(warnings.filter((w) => !LINK_WARNINGS.test(w) && !/does not have any documentation/.test(w)).join('\n')).toBe('');
  });
});

describe('the guides in the API reference', () => {
  it('lists every docs/*.md in typedoc.json projectDocuments', () => {
    const config = JSON.parse(readFileSync('typedoc.json', 'utf8')) as { projectDocuments: string[] };
    const guides = readdirSync('docs')
      .filter((name) => name.endsWith('.md'))
      .map((name) => `docs/${name}`);
    expect(guides.filter((guide) => !config.projectDocuments.includes(guide)), 'guides missing from typedoc.json').toEqual([]);
  });
});
