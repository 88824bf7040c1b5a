/**
 * Every test file gets a cache folder of its own (and plain, uncoloured CLI output): the recovery journal
 * (lib/flash/journal.ts) lives in the user's cache folder by default, and test
 * files running side by side against different QEMU instances must not find
 * each other's journals (nor leave any in the real one). Child processes (the
 * CLI tests) inherit it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.XDG_CACHE_HOME = mkdtempSync(join(tmpdir(), 'rspflash-cache-'));

// picocolors colours output when CI is set (CI logs show colour): the CLI tests read plain text.
process.env.NO_COLOR = '1';
