/**
 * The benchmark still runs: `node dist/bench/bench/run.js --smoke --json` against
 * QEMU with tiny sizes, and its JSON holds every figure of issue 5. No
 * assertion on time or speed (CI machines vary); only on what must hold
 * whatever the speed: an unchanged re-run sends no image data, a one-page
 * change erases one sector.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../bench/run.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const RUN = join(ROOT, 'dist', 'bench', 'bench', 'run.js');

function run(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`node ${args.join(' ')} failed: ${err.message}\n${stderr}\n${stdout}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Paths of numeric fields that are not finite non-negative numbers. */
function badNumbers(value: unknown, path = '$'): string[] {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? [] : [`${path} = ${value}`];
  if (Array.isArray(value)) return value.flatMap((v, i) => badNumbers(v, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => badNumbers(v, `${path}.${k}`));
  return [];
}

describe('npm run bench (smoke: tiny sizes)', () => {
  let result: BenchResult;

  beforeAll(async () => {
    // The bench is compiled on its own (tsconfig.bench.json → dist/bench/, apart from dist/lib).
    await run([TSC, '-p', 'tsconfig.bench.json'], 120_000);
    const { stdout } = await run([RUN, '--smoke', '--json'], 180_000);
    result = JSON.parse(stdout) as BenchResult;
  }, 300_000);

  it('reports every figure for every size, with finite non-negative numbers', () => {
    const sizes = result.environment.options.sizes;
    expect(sizes.length).toBeGreaterThan(0);
    expect(result.transferFloor.map((r) => r.bytes)).toEqual(sizes);
    expect(result.computeFloor.map((r) => r.bytes)).toEqual(sizes);
    expect(result.gdbRestore.map((r) => r.bytes)).toEqual(sizes);
    expect(result.writeMemory.map((r) => r.bytes)).toEqual(sizes);
    expect(result.program.map((r) => r.bytes)).toEqual(sizes);
    expect(result.unchanged.filter((r) => r.chipErase === 'auto').map((r) => r.bytes)).toEqual(sizes);
    expect(result.onePage.length).toBeGreaterThan(0);
    expect(result.windowSweep.length).toBe(result.environment.options.windows.length);
    expect(badNumbers(result)).toEqual([]);
  });

  it('measures the floors and the transfers as positive times and rates', () => {
    for (const row of [...result.transferFloor, ...result.writeMemory, ...result.gdbRestore]) {
      expect(row.ms).toBeGreaterThan(0);
      expect(row.mbps).toBeGreaterThan(0);
    }
    for (const c of result.computeFloor) {
      expect(c.totalMs).toBeCloseTo(c.eraseMs + c.programMs + c.verifyMs, 6);
      expect(c.runs).toBeGreaterThan(0);
    }
    for (const w of result.writeMemory) expect(w.packets).toBeGreaterThanOrEqual(Math.ceil(w.bytes / 2048));
  });

  it('programs with phases, and an unchanged re-run sends no image data', () => {
    for (const p of result.program) {
      expect(p.phases).toHaveProperty('program');
      expect(p.bytesSent).toBeGreaterThan(p.bytes); // hex M doubles the data
      expect(p.targetRuns).toBeGreaterThan(0);
    }
    for (const u of result.unchanged) {
      expect(u.sectorsSkipped).toBe(u.bytes / 4096);
      expect(u.bytesSent).toBeLessThan(u.bytes / 10);
    }
  });

  it('reprograms one sector for a one-page change', () => {
    for (const o of result.onePage) {
      expect(o.sectorsErased).toBe(1);
      expect(o.bytesProgrammed).toBe(4096);
    }
  });

  it('measures batched and per-page programming through the latency proxy', () => {
    const l = result.latency;
    expect(l.addedRttMs).toBeGreaterThan(0);
    expect(l.dataPacketsPerMiB).toBeGreaterThan(0);
    expect(l.batched.ms).toBeGreaterThan(0);
    expect(l.batched.roundTripsPerMiB).toBeGreaterThan(0);
    expect(l.unbatched.roundTripsPerMiB).toBeGreaterThan(l.batched.roundTripsPerMiB);
    expect(l.speedup).toBeGreaterThan(0);
  });

  it('reports peak RSS and judges every goal of issue 5', () => {
    expect(result.rss.peakBytes).toBeGreaterThan(result.rss.baselineBytes - 1);
    expect(result.goals.length).toBeGreaterThanOrEqual(7);
    for (const g of result.goals) expect(typeof g.met).toBe('boolean');
  });
});
