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
      expect(p.phases).toHaveProperty('write'); // FlashPhase: erasing and programming run as 'write' steps
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

  it('models the seed job: five scenarios on the Alif board layout, counted by the simulator and the link relay', () => {
    const seed = result.seed!;
    expect(seed, 'the smoke run has a seed section').toBeDefined();
    expect(seed.board).toEqual({ ram: { start: 0, size: 0x40000 }, memoryMapped: false });
    const by = Object.fromEntries(seed.scenarios.map((s) => [s.scenario, s]));
    expect(Object.keys(by)).toEqual(['fresh', 'unchanged', 'one-sector', 'ten-percent', 'verify-only']);
    for (const s of seed.scenarios) {
      // The simulator's counters and the flasher's report describe the same run.
      expect(s.device.eraseSector + s.device.eraseChip * s.image.sectors, `${s.scenario}: erases`).toBe(s.report.chipErase ? s.image.sectors + s.device.eraseSector : s.report.sectorsErased);
      expect(s.device.programBytes, `${s.scenario}: programmed bytes`).toBe(s.report.bytesProgrammed);
      expect(s.link.targetRequests).toBeGreaterThan(0);
      for (const m of Object.values(s.models)) expect(m.rspflash.totalMs).toBeCloseTo(m.rspflash.deviceMs + m.rspflash.linkMs, 6);
    }
    expect(by['fresh']!.device.programPage).toBeGreaterThan(0);
    expect(by['unchanged']!.device).toMatchObject({ eraseSector: 0, eraseChip: 0, programPage: 0 });
    expect(by['one-sector']!.sectorsChanged).toBe(1);
    expect(by['one-sector']!.device).toMatchObject({ eraseSector: 1, eraseChip: 0 });
    expect(by['ten-percent']!.sectorsChanged).toBe(Math.floor(by['ten-percent']!.image.sectors / 10));
    expect(by['verify-only']!.device).toMatchObject({ eraseSector: 0, programPage: 0 });
    expect(by['verify-only']!.device.verifyBytes).toBeGreaterThan(0);
    expect(seed.corpus.whole.erasedPages).toBeGreaterThan(0);
    expect(seed.random.erasedPages).toBe(0);
  });

  it('reports peak RSS and judges every goal of issue 5', () => {
    expect(result.rss.peakBytes).toBeGreaterThan(result.rss.baselineBytes - 1);
    expect(result.goals.length).toBeGreaterThanOrEqual(7);
    for (const g of result.goals) expect(typeof g.met).toBe('boolean');
  });
});
