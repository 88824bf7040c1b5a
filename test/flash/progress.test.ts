import { describe, expect, it } from 'vitest';
import { watchProgress, type FlashEvent } from '../../lib/flash/progress.js';
import { InternalError } from '../../lib/errors.js';

describe('watchProgress', () => {
  it('yields every event in order and ends after the operation resolves', async () => {
    const seen: string[] = [];
    for await (const event of watchProgress(async (emit) => {
      emit({ type: 'phase-start', phase: 'erase', total: 2, unit: 'sectors' });
      await new Promise((r) => setTimeout(r, 5));
      emit({ type: 'progress', phase: 'erase', done: 2, total: 2, elapsedMs: 5 });
      emit({ type: 'phase-end', phase: 'erase', elapsedMs: 5 });
    })) {
      seen.push(event.type);
    }
    expect(seen).toEqual(['phase-start', 'progress', 'phase-end']);
  });

  it('yields the failed event and then throws the operation error', async () => {
    const seen: FlashEvent['type'][] = [];
    const boom = new InternalError('boom');
    const run = async () => {
      for await (const event of watchProgress(async (emit) => {
        emit({ type: 'failed', error: boom });
        throw boom;
      })) {
        seen.push(event.type);
      }
    };
    await expect(run()).rejects.toBe(boom);
    expect(seen).toEqual(['failed']);
  });
});
