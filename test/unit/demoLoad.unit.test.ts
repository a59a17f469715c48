/**
 * The demo center is a believable one: a week of the default 16-node cluster with the center
 * workload (deploy/runtime.ts centerWorkload), folded by the projector's own pure functions, keeps
 * its cores busy on weekdays, makes jobs wait minutes to hours in the busy queues, drains its
 * backlog instead of growing it without end, and has failures, timeouts, cancels and holds.
 * Figures are computed here from the job rows, independently of the MCP tools.
 */
import { describe, expect, it } from 'vitest';
import { centerWorkload } from '../../deploy/runtime.js';
import { projectEvents } from '../../projector/project.js';
import type { JobRow } from '../../projector/tables/jobs.js';
import { toEnvelope } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';

const EPOCH = Date.UTC(2026, 10, 23) / 1000; // a Monday
const DAYS = 7;
const NODES = 16;
const CORES = NODES * 32;

function week(): JobRow[] {
  const origin = { cluster: 'fluke', scheduler: 'flux' as const, scribe: { id: 't', version: '0' } };
  const jobs = new Map<string, JobRow>();
  let pending: Parameters<typeof projectEvents>[0] = [];
  let offset = 0n;
  const flush = () => {
    for (const [k, v] of projectEvents(pending, jobs).jobs) jobs.set(k, v);
    pending = [];
  };
  for (const ev of simulate({ seed: 1, cluster: 'fluke', nodes: NODES, epoch: EPOCH, untilTime: EPOCH + DAYS * 86400, ...centerWorkload(NODES) })) {
    pending.push({ envelope: toEnvelope(origin, ev, ev.ts + 0.05), record: { topic: 't', partition: 0, offset: offset++, key: '', value: '', timestamp: 0, headers: {} } });
    if (pending.length >= 50_000) flush();
  }
  flush();
  return [...jobs.values()];
}

const seconds = (t: number | null) => t ?? undefined;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the demo center workload', () => {
  const rows = week();

  it('keeps 70-95 % of the cores busy on weekdays once warmed up', () => {
    const utilization = (day: number) => {
      const a0 = EPOCH + day * 86400;
      let coreS = 0;
      for (const r of rows) {
        const s = seconds(r.t_start);
        if (s === undefined) continue;
        const e = seconds(r.t_end) ?? EPOCH + DAYS * 86400;
        coreS += Math.max(0, Math.min(e, a0 + 86400) - Math.max(s, a0)) * r.ncores;
      }
      return coreS / (CORES * 86400);
    };
    const days = [0, 1, 2, 3, 4, 5, 6].map(utilization);
    process.stdout.write(`  demo center core utilization per day (Mon..Sun): ${days.map((u) => u.toFixed(2)).join(' ')}\n`);
    for (const day of [2, 3, 4]) {
      expect(days[day], `day ${day}`).toBeGreaterThan(0.7);
      expect(days[day], `day ${day}`).toBeLessThan(0.95);
    }
  });

  it('makes jobs wait minutes to hours in the busy queues, the debug queue stays quick', () => {
    const waits = (queue: string) => rows.filter((r) => r.queue === queue && r.wait_s !== null).map((r) => r.wait_s!);
    process.stdout.write(`  demo center median wait: batch ${Math.round(median(waits('batch')))} s, gpu ${Math.round(median(waits('gpu')))} s, debug ${Math.round(median(waits('debug')))} s\n`);
    expect(median(waits('batch'))).toBeGreaterThan(5 * 60);
    expect(median(waits('batch'))).toBeLessThan(6 * 3600);
    expect(median(waits('gpu'))).toBeGreaterThan(30 * 60);
    expect(median(waits('debug'))).toBeLessThan(60);
  });

  it('drains instead of growing without end, and has every kind of ending', () => {
    const pending = rows.filter((r) => r.state === 'pending').length;
    expect(pending).toBeLessThan(1500);
    for (const s of ['completed', 'failed', 'canceled', 'timeout']) expect(rows.filter((r) => r.state === s).length, s).toBeGreaterThan(100);
    expect(rows.length).toBeGreaterThan(25_000);
  });
});
