/**
 * The default demo of `jobscribe up`: which settings turn it on (derived defaults), a simulated
 * source on the wall clock (back-fills up to now as fast as it is taken, never emits an event from
 * the future, then follows the clock), and the back-fill progress line.
 */
import { describe, expect, it } from 'vitest';
import { DEMO_CENTER, loadConfig } from '../../deploy/config.js';
import { backfillLine } from '../../deploy/backfill.js';
import { centerWorkload, simOptions } from '../../deploy/runtime.js';
import { exampleQuestions } from '../../deploy/up.js';
import { createSimSource, diurnalFactor } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';

describe('the demo center is the default of up', () => {
  it('follows the wall clock with two clusters when nothing names a speed, a start, a cluster or a scheduler', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ simClock: 'wall', simClusters: DEMO_CENTER, simBackfillDays: 7 });
    expect(DEMO_CENTER).toBe('fluke:flux,slurmy:slurm');
  });

  it('keeps the classic paced single cluster when a speed or an epoch is given, and one cluster when one is named', () => {
    const clock = (c: ReturnType<typeof loadConfig>) => ({ simClock: c.simClock, simClusters: c.simClusters });
    expect(clock(loadConfig({ env: {}, flags: { simSpeed: '600' } }))).toEqual({ simClock: 'paced', simClusters: undefined });
    expect(clock(loadConfig({ env: { JOBSCRIBE_SIM_EPOCH: '1795305600' } }))).toEqual({ simClock: 'paced', simClusters: undefined });
    const tioga = loadConfig({ env: {}, flags: { cluster: 'tioga' } });
    expect([clock(tioga), tioga.cluster]).toEqual([{ simClock: 'wall', simClusters: undefined }, 'tioga']);
    expect(clock(loadConfig({ env: {}, flags: { simScheduler: 'slurm' } }))).toEqual({ simClock: 'wall', simClusters: undefined });
    expect(loadConfig({ env: {}, flags: { simClusters: 'a:flux' } }).simClusters).toBe('a:flux');
    expect(clock(loadConfig({ env: {}, flags: { simClock: 'paced' } }))).toEqual({ simClock: 'paced', simClusters: undefined });
    expect(loadConfig({ env: {}, flags: { source: 'flux', fluxUri: 'local:///run/flux/local' } }).simClusters).toBeUndefined();
    expect(() => loadConfig({ env: {}, flags: { simBackfillDays: '-1' } })).toThrow(/simBackfillDays/);
  });

  it('starts a wall-clock cluster simBackfillDays before now with a center workload scaled to its nodes', () => {
    const before = Math.floor(Date.now() / 1000);
    const o = simOptions(loadConfig({ env: {}, flags: { simBackfillDays: '2', simNodes: '32', cluster: 'c' } }));
    expect(o.clock).toBe('wall');
    expect(o.epoch).toBeGreaterThanOrEqual(before - 2 * 86400);
    expect(o.epoch).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) - 2 * 86400);
    expect(o).toMatchObject(centerWorkload(32));
    expect(centerWorkload(32)).toEqual({ diurnal: true, submitRate: 5.2, gpuNodes: 6, debugNodes: 2, schedDepth: 16, pollInterval: 30 });
    const paced = simOptions(loadConfig({ env: {}, flags: { simSpeed: '60' } }));
    expect(paced).toMatchObject({ clock: 'paced', speed: 60 });
    expect(paced).not.toHaveProperty('diurnal');
  });

  it('submissions follow the working day: busy at 14:00, quiet at 02:00 and on weekends', () => {
    const monday = Date.UTC(2026, 10, 23) / 1000; // 2026-11-23 was a Monday
    expect(diurnalFactor(monday + 14 * 3600)).toBeCloseTo(1.6);
    expect(diurnalFactor(monday + 2 * 3600)).toBeCloseTo(0.4);
    expect(diurnalFactor(monday + 5 * 86400 + 14 * 3600)).toBeCloseTo(0.96); // Saturday
    let mean = 0;
    for (let h = 0; h < 24 * 7; h++) mean += diurnalFactor(monday + h * 3600 + 1800) / (24 * 7);
    expect(mean).toBeGreaterThan(0.85);
    expect(mean).toBeLessThan(0.9);
  });
});

describe('a simulated source on the wall clock', () => {
  it('back-fills everything up to now at once, never emits the future, then follows the clock', async () => {
    const epoch = 1_795_305_600;
    let now = (epoch + 6 * 3600) * 1000; // six hours of history to back-fill
    const source = createSimSource({ seed: 4, cluster: 'w', nodes: 8, epoch, clock: 'wall', submitRate: 3 }, { now: () => now });
    const ac = new AbortController();
    const seen: SourceEvent[] = [];
    const emits: number[] = [];
    const running = source.run({
      signal: ac.signal,
      emit: async (events) => {
        for (const e of events) expect(e.ts).toBeLessThanOrEqual(now / 1000);
        seen.push(...events);
        emits.push(events.length);
      },
    });
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(() => source.simulator.time >= now / 1000 - 1);
    const backfilled = seen.length;
    expect(backfilled).toBeGreaterThan(1000);
    expect(Math.max(...emits)).toBeGreaterThan(256); // big batches while far behind
    expect(Math.max(...seen.map((e) => e.ts))).toBeLessThanOrEqual(epoch + 6 * 3600);
    await new Promise((r) => setTimeout(r, 150));
    expect(seen.length).toBe(backfilled); // the clock stood still: nothing more
    now += 1800 * 1000; // half an hour passes
    await until(() => source.simulator.time >= now / 1000 - 1);
    expect(seen.length).toBeGreaterThan(backfilled);
    expect(Math.max(...seen.map((e) => e.ts))).toBeLessThanOrEqual(now / 1000);
    ac.abort();
    await running;
  });
});

describe('what up prints', () => {
  it('a progress line per cluster between the start of its history and now', () => {
    const from = Date.UTC(2026, 10, 27) / 1000;
    const now = from + 7 * 86400;
    const line = backfillLine([{ cluster: 'fluke', time: from + 3.5 * 86400, from }, { cluster: 'slurmy', time: now, from }], now, 123456, 200000);
    expect(line).toBe('back-filling history up to now: fluke 2026-11-30 12:00 (50%), slurmy 2026-12-04 00:00 (100%); 123,456 of 200,000 events projected');
  });

  it('three questions naming the served clusters', () => {
    const q = exampleQuestions(['fluke', 'slurmy']);
    expect(q.filter((l) => l.startsWith('    - '))).toHaveLength(3);
    expect(q.join('\n')).toMatch(/slurmy in the last 24 hours[\s\S]*fluke's queues/);
  });
});
