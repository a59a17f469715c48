/**
 * The Flux fold against flux-core itself: projecting the real journals of a flux-core 0.88
 * instance must reproduce what `flux jobs -a --json` derived for every one of its 35 jobs.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../schemas/envelope/index.js';
import { evolveJob, type JobRow } from '../../projector/tables/jobs.js';
import { fluxFixture } from '../support/fixtures.js';

interface JournalLine {
  id: string;
  events: { timestamp: number; name: string; context?: Record<string, unknown> }[];
  jobspec?: Record<string, unknown>;
  R?: Record<string, unknown>;
}

/** Parses journal lines keeping the 64-bit id exact (as a string). */
function parseJournal(text: string): JournalLine[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const id = /^\{"id":(-?\d+)/.exec(l)![1]!;
      return { ...(JSON.parse(l) as JournalLine), id };
    });
}

function toEnvelopes(lines: JournalLine[]): Envelope[] {
  const seq = new Map<string, number>();
  const out: Envelope[] = [];
  for (const line of lines) {
    if (line.id === '-1') continue;
    for (const ev of line.events) {
      const s = seq.get(line.id) ?? 0;
      seq.set(line.id, s + 1);
      out.push({
        v: 1,
        cluster: 'fluke',
        scheduler: 'flux',
        job_id: line.id,
        seq: s,
        name: ev.name,
        ts: ev.timestamp,
        ts_source: 'scheduler',
        context: ev.context ?? {},
        user: 'root',
        raw: {
          id: line.id,
          event: ev,
          ...(ev.name === 'submit' && line.jobspec ? { jobspec: line.jobspec } : {}),
          ...(ev.name === 'alloc' && line.R ? { R: line.R } : {}),
        },
        scribe: { id: 'test', version: '0' },
        published_at: 0,
      });
    }
  }
  return out;
}

function fold(envelopes: Envelope[]): Map<string, JobRow> {
  const jobs = new Map<string, JobRow>();
  for (const e of envelopes) {
    const next = evolveJob(jobs.get(e.job_id), e);
    if (next) jobs.set(e.job_id, next);
  }
  return jobs;
}

interface FluxJobsEntry {
  id: number;
  state: string;
  result: string;
  returncode: number;
  success: boolean;
  waitstatus?: number;
  urgency: number;
  priority?: number;
  name: string;
  ntasks: number;
  ncores?: number;
  nnodes?: number;
  nodelist?: string;
  dependencies: string[];
  t_submit: number;
  t_sched?: number;
  t_run?: number;
  t_cleanup?: number;
  t_inactive?: number;
  duration: number;
  exception: { occurred: boolean; severity?: number; type?: string; note?: string };
}

const oracle = (JSON.parse(fluxFixture('jobs.json')) as { jobs: FluxJobsEntry[] }).jobs;

function checkAgainstOracle(jobs: Map<string, JobRow>): void {
  expect(oracle).toHaveLength(35);
  for (const want of oracle) {
    const got = jobs.get(String(want.id));
    const label = `job ${want.id}`;
    expect(got, label).toBeDefined();
    const j = got!;
    expect(j.sched_state, label).toBe(want.state);
    expect(j.result, label).toBe(want.result);
    expect(j.exit_code, label).toBe(want.returncode);
    expect(j.success, label).toBe(want.success);
    expect(j.waitstatus, label).toBe(want.waitstatus ?? null);
    expect(j.urgency, label).toBe(want.urgency);
    if (want.priority !== undefined) expect(j.priority, label).toBe(want.priority);
    expect(j.name, label).toBe(want.name);
    expect(j.ntasks, label).toBe(want.ntasks);
    if (want.ncores !== undefined) expect(j.ncores, label).toBe(want.ncores);
    if (want.nnodes !== undefined) expect(j.nnodes, label).toBe(want.nnodes);
    if (want.nodelist !== undefined) expect(j.nodes.length, label).toBe(want.nnodes);
    expect(j.dependencies, label).toEqual(want.dependencies);
    expect(j.time_limit_s ?? 0, label).toBe(want.duration);
    expect(j.t_submit, label).toBeCloseTo(want.t_submit, 6);
    if (want.t_sched !== undefined) expect(j.t_eligible, label).toBeCloseTo(want.t_sched, 6);
    else expect(j.t_eligible, label).toBeNull();
    if (want.t_run !== undefined) expect(j.t_start, label).toBeCloseTo(want.t_run, 6);
    else expect(j.t_start, label).toBeNull();
    expect(j.t_end, label).toBeCloseTo(want.t_cleanup!, 6);
    expect(j.t_inactive, label).toBeCloseTo(want.t_inactive!, 6);
    if (want.t_run !== undefined) expect(j.run_s, label).toBeCloseTo(want.t_cleanup! - want.t_run, 6);
    if (want.exception.occurred) {
      expect(j.exception_type, label).toBe(want.exception.type);
      expect(j.exception_severity, label).toBe(want.exception.severity);
      expect(j.exception_note, label).toBe(want.exception.note);
    } else {
      expect(j.exception_type, label).toBe('');
    }
    expect(j.state, label).toBe(want.result.toLowerCase());
    expect(j.is_deleted, label).toBe(0);
  }
}

describe('Flux fold vs flux-core job-list', () => {
  it('reproduces every job of the backlog journal (full:true)', () => {
    const jobs = fold(toEnvelopes(parseJournal(fluxFixture('journal-backlog.jsonl'))));
    checkAgainstOracle(jobs);
    expect(jobs.size).toBe(35);
  });

  it('reproduces every job of the live journal, and hides the submissions Flux invalidated', () => {
    const jobs = fold(toEnvelopes(parseJournal(fluxFixture('journal.jsonl'))));
    checkAgainstOracle(jobs);
    const extra = [...jobs.values()].filter((j) => !oracle.some((o) => String(o.id) === j.job_id));
    expect(extra.length).toBeGreaterThan(0);
    for (const j of extra) expect(j.is_deleted, `job ${j.job_id}`).toBe(1);
  });

  it('derives 1000 completed jobs from each of the 1000-job journals', () => {
    for (const f of ['journal-1000-real.jsonl.gz', 'journal-1000-mock.jsonl.gz']) {
      const text = gunzipSync(readFileSync(fluxFixture.path(f))).toString('utf8');
      const jobs = [...fold(toEnvelopes(parseJournal(text))).values()].filter((j) => !j.is_deleted);
      expect(jobs, f).toHaveLength(1000);
      expect(jobs.every((j) => j.sched_state === 'INACTIVE' && j.result === 'COMPLETED' && j.exit_code === 0), f).toBe(true);
    }
  });

  it('is idempotent: folding every event twice changes nothing', () => {
    const envelopes = toEnvelopes(parseJournal(fluxFixture('journal.jsonl')));
    const once = fold(envelopes);
    const twice = fold(envelopes.flatMap((e) => [e, e]));
    expect([...twice.entries()]).toEqual([...once.entries()]);
    const again = fold([...envelopes, ...envelopes]);
    expect([...again.entries()]).toEqual([...once.entries()]);
  });
});
