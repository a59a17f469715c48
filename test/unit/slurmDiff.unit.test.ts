/**
 * The Slurm poller's diff, on real Slurm 22.05.8 captures (test/fixtures/slurm): three squeue
 * snapshots of one workload (mixed → dependency-never-satisfied → finished) and sacct's text
 * records of the same jobs. Given snapshots → then events per job; re-polls and restarts emit
 * nothing twice; and the fold of the events gives what sacct reports.
 */
import { describe, expect, it } from 'vitest';
import { applyPoll, emptyTrackerState, jobsNeedingAccounting, DEFAULT_DIFF_OPTIONS, type DiffOptions, type TrackerState } from '../../scribe/slurm/diff.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../scribe/slurm/checkpoint.js';
import { createSlurmSource } from '../../scribe/slurm/source.js';
import { sacctLookupArgv, sacctWindowArgv } from '../../scribe/slurm/poller.js';
import type { SourceEvent } from '../../scribe/source.js';
import { parseSacctParsable, parseSqueueJson, slurmNumber, type SacctJob } from '../../schemas/slurm/squeue.js';
import { parseSlurmEvent, unifiedSlurmResult } from '../../schemas/slurm/events.js';
import { EnvelopeSchema } from '../../schemas/envelope/index.js';
import { toEnvelope } from '../../scribe/envelope.js';
import { slurmFixture } from '../support/fixtures.js';
import {
  FixtureSlurm,
  collector,
  expectationFromSacct,
  foldSlurm,
  namesByJob,
  rowExpectation,
  seqProblems,
} from '../support/slurm.js';

const MIXED = slurmFixture('squeue-mixed.json');
const DEP_NEVER = slurmFixture('squeue-dependency-never-satisfied.json');
const FINISHED = slurmFixture('squeue-finished.json');
const SACCT = slurmFixture('sacct-workload-parsable.txt');
const EMPTY = '{"meta":{},"errors":[],"jobs":[]}';

// when each snapshot was taken (job 12 was submitted at ...700, job 6 ended at ...711 and job 8
// was cancelled at ...712, the time-limit job ended at ...788)
const T1 = 1795327701;
const T2 = 1795327711.5;
const T3 = 1795327790;

const sacctAll = parseSacctParsable(SACCT);

/** One poll the way poller.ts does it, with sacct answered from the fixture. */
function poll(state: TrackerState, squeueText: string, now: number, opts: Partial<DiffOptions> & { discoverFrom?: number; accounting?: 'on' | 'off' | 'failed' } = {}) {
  const squeue = parseSqueueJson(squeueText);
  const accounting = opts.accounting ?? 'on';
  const lookups = new Map<string, SacctJob>();
  if (accounting === 'on') for (const id of jobsNeedingAccounting(state, squeue)) if (sacctAll.has(id)) lookups.set(id, sacctAll.get(id)!);
  let discovery;
  if (opts.discoverFrom !== undefined) {
    const jobs = new Map([...sacctAll].filter(([, j]) => {
      const end = Date.parse(`${j.job.End}Z`) / 1000;
      return end >= opts.discoverFrom! && end <= now;
    }));
    discovery = { until: now, jobs };
  }
  return applyPoll(state, { now, squeue, accounting, lookups, discovery }, { ...DEFAULT_DIFF_OPTIONS, ...opts });
}

function timeline(snapshots: Array<[string, number]>, opts: Parameters<typeof poll>[3] = {}) {
  let state = emptyTrackerState();
  const batches: SourceEvent[][] = [];
  for (const [text, now] of snapshots) {
    const r = poll(state, text, now, opts);
    batches.push(r.events);
    state = r.state;
  }
  return { state, batches, events: batches.flat() };
}

function sacctExpectations() {
  const out = new Map<string, ReturnType<typeof expectationFromSacct>>();
  for (const [id, j] of sacctAll) out.set(id, expectationFromSacct(j.job, unifiedSlurmResult, j.batch));
  return out;
}

describe('captured outputs', () => {
  it('squeue --json: every record of the three snapshots parses', () => {
    expect(parseSqueueJson(MIXED).jobs.map((j) => j.job_id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const fin = parseSqueueJson(FINISHED).jobs;
    expect(fin.map((j) => [j.job_id, j.job_state, j.exit_code])).toContainEqual([4, 'FAILED', 768]);
    expect(fin.find((j) => j.job_id === 9)).toMatchObject({ array_job_id: 9, array_task_id: 3, job_state: 'FAILED' });
    // a job cancelled while pending: start_time = end_time, no nodes
    expect(fin.find((j) => j.job_id === 11)).toMatchObject({ job_state: 'CANCELLED', nodes: '', eligible_time: 0 });
    expect(() => parseSqueueJson(slurmFixture('rest-error-get-unknown-job.json'))).toThrow(/Invalid job id specified/);
  });

  it('sacct --parsable2: jobs by JobIDRaw with their steps; array tasks keep their own ids', () => {
    expect([...sacctAll.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14']);
    expect(sacctAll.get('13')!.job.JobID).toBe('9_1');
    expect(sacctAll.get('10')!.steps.map((s) => s.JobIDRaw)).toEqual(['10.batch', '10.0', '10.1']);
    expect(sacctAll.get('1')!.batch!.ExitCode).toBe('0:15');
    expect(sacctAll.get('4')!.job.ExitCode).toBe('3:0'); // the text is right; sacct --json says 0 (22.05.8 bug)
  });

  it('sacct invocations: lookups by id, discovery by end-time window over final states, in UTC', () => {
    expect(sacctLookupArgv(['3', '4'])).toContain('--jobs=3,4');
    const w = sacctWindowArgv(T1, T3);
    expect(w).toContain('--state=CA,CD,F,NF,OOM,TO,PR,BF,DL');
    expect(w).toContain('--starttime=2026-11-22T06:08:21');
    expect(w).toContain('--endtime=2026-11-22T06:09:50');
  });
});

describe('diffing the captured workload', () => {
  const run = timeline([
    [MIXED, T1],
    [DEP_NEVER, T2],
    [FINISHED, T3],
  ]);

  it('derives the expected events per job', () => {
    expect(namesByJob(run.events)).toEqual({
      '1': ['submit', 'eligible', 'start', 'end'],
      '2': ['submit', 'eligible', 'start', 'end'],
      '3': ['submit', 'eligible', 'start', 'end'],
      '4': ['submit', 'eligible', 'start', 'end'],
      '5': ['submit', 'hold', 'release', 'eligible', 'start', 'end'],
      '6': ['submit', 'eligible', 'hold', 'release', 'eligible', 'start', 'end'],
      '7': ['submit', 'eligible', 'start', 'end'],
      '8': ['submit', 'dependency_never_satisfied', 'end'],
      '9': ['submit', 'eligible', 'start', 'end'],
      '10': ['submit', 'eligible', 'start', 'end'],
      '11': ['submit', 'eligible', 'end'],
      '12': ['submit', 'eligible', 'start', 'end'],
      '13': ['submit', 'eligible', 'start', 'end'],
      '14': ['submit', 'eligible', 'start', 'end'],
    });
    expect(seqProblems(run.events)).toEqual([]);
    // what each poll saw: the first has no ends; the time-limit job ends only in the last
    expect(run.batches[0]!.filter((e) => e.name === 'end')).toEqual([]);
    expect(run.batches[2]!.map((e) => `${e.job_id}:${e.name}`)).toEqual(['1:end', '8:end']);
    expect(run.state.jobs).toEqual({});
  });

  it("uses Slurm's own times, and the poll time only where Slurm keeps none", () => {
    const ev = (job: string, name: string, nth = 0) => run.events.filter((e) => e.job_id === job && e.name === name)[nth]!;
    expect(ev('1', 'submit')).toMatchObject({ ts: 1795327698, ts_source: 'scheduler', user: 'root' });
    expect(ev('1', 'start')).toMatchObject({ ts: 1795327699, ts_source: 'scheduler' });
    expect(ev('1', 'end')).toMatchObject({ ts: 1795327788, ts_source: 'scheduler' });
    expect(ev('5', 'hold')).toMatchObject({ ts: T1, ts_source: 'poll', context: { by: 'user', reason: 'JobHeldUser' } });
    expect(ev('6', 'hold').context).toMatchObject({ by: 'admin' });
    // the release was seen at T2, but it happened no later than the eligible_time Slurm set on release
    expect(ev('5', 'release')).toMatchObject({ ts: 1795327701, ts_source: 'poll' });
    expect(ev('6', 'eligible', 1)).toMatchObject({ ts: 1795327701, ts_source: 'scheduler' });
    expect(ev('8', 'dependency_never_satisfied')).toMatchObject({ ts: Math.floor(T2), ts_source: 'poll', context: { dependency: 'afterok:4(failed)' } });
    for (const job of Object.keys(namesByJob(run.events))) {
      const ts = run.events.filter((e) => e.job_id === job).map((e) => e.ts);
      expect(ts, `job ${job} ts never go backwards`).toEqual([...ts].sort((a, b) => a - b));
    }
  });

  it('ends carry the state, exit code and signal from the TEXT sacct record, and squeue\'s wait status', () => {
    const end = (job: string) => run.events.find((e) => e.job_id === job && e.name === 'end')!.context;
    expect(end('4')).toMatchObject({ state: 'FAILED', exit_code: 3, signal: 0, wait_status: 768, source: 'sacct', reason: 'None' });
    expect(end('9')).toMatchObject({ state: 'FAILED', exit_code: 5, wait_status: 1280 });
    expect(end('1')).toMatchObject({ state: 'TIMEOUT', exit_code: 0, wait_status: 15, time_limit_s: 60, start_time: 1795327699, end_time: 1795327788 });
    expect(end('2')).toMatchObject({ state: 'CANCELLED', exit_code: 0, wait_status: 15 });
    expect(end('10')).toMatchObject({ state: 'COMPLETED', derived_exit_code: 7 });
    expect(end('11')).toMatchObject({ state: 'CANCELLED', start_time: null, eligible_time: null, wait_status: null });
    expect(end('8')).toMatchObject({ state: 'CANCELLED', reason: 'DependencyNeverSatisfied', start_time: null });
  });

  it('every event validates as a v1 envelope and against its Slurm context schema; raw keeps the record', () => {
    for (const ev of run.events) {
      const env = toEnvelope({ cluster: 'ci', scheduler: 'slurm', scribe: { id: 't', version: '0' } }, ev, 1);
      expect(EnvelopeSchema.safeParse(env).success).toBe(true);
      const p = parseSlurmEvent(ev.name, ev.context);
      expect(p.ok && p.known, `${ev.job_id} ${ev.name}`).toBe(true);
    }
    const submit = run.events.find((e) => e.job_id === '9' && e.name === 'submit')!;
    expect(submit.context).toMatchObject({ array_job_id: 9, array_tasks: '1-3' });
    expect((submit.raw as { squeue: { job_id: number } }).squeue.job_id).toBe(9);
    const end4 = run.events.find((e) => e.job_id === '4' && e.name === 'end')!.raw as { sacct: Array<Record<string, string>> };
    expect(end4.sacct.map((l) => l.JobIDRaw)).toEqual(['4', '4.batch']);
  });

  it('re-polling the same snapshot emits nothing', () => {
    let state = emptyTrackerState();
    for (const [text, now] of [
      [MIXED, T1],
      [DEP_NEVER, T2],
      [FINISHED, T3],
    ] as const) {
      state = poll(state, text, now).state;
      for (const later of [now + 1, now + 5]) {
        const again = poll(state, text, later);
        expect(again.events).toEqual([]);
        state = again.state;
      }
    }
  });

  it('the fold of the events gives the states, exit codes and times sacct reports', () => {
    const rows = foldSlurm(run.events);
    const expected = sacctExpectations();
    expect([...rows.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [id, want] of expected) expect(rowExpectation(rows.get(id)!), `job ${id}`).toEqual(want);
  });

  it('the fold: the rest of the row', () => {
    const rows = foldSlurm(run.events);
    expect(rows.get('1')).toMatchObject({ state: 'timeout', sched_state: 'TIMEOUT', result: 'TIMEOUT', success: false, exit_code: null, signal: 15, signal_name: 'SIGTERM', oom: false, waitstatus: 15, queue: 'debug', name: 'timeout', user: 'root', userid: 0, nodes: ['vm'], nnodes: 1, ncores: 1, ntasks: 1, time_limit_s: 60, wait_s: 1, run_s: 89, exception_type: 'timeout', exception_note: '' });
    expect(rows.get('4')).toMatchObject({ state: 'failed', result: 'FAILED', exit_code: 3, waitstatus: 768, success: false });
    expect(rows.get('3')).toMatchObject({ state: 'completed', success: true, exit_code: 0, run_s: 0, wait_s: 2 });
    expect(rows.get('7')).toMatchObject({ dependencies: ['afterok:3'], state: 'completed' });
    expect(rows.get('11')).toMatchObject({ state: 'canceled', exit_code: null, t_start: null, t_eligible: null, nodes: [], wait_s: null, run_s: null, exception_type: 'cancel' });
    expect(rows.get('8')).toMatchObject({ state: 'canceled', exception_note: 'DependencyNeverSatisfied', dependencies: ['afterok:4'] });
    expect(rows.get('5')).toMatchObject({ held: false, state: 'completed', t_eligible: 1795327701 });
  });

  it('mid-workload rows: held, pending with a never-satisfiable dependency, running', () => {
    const rows = foldSlurm(run.batches[0]!);
    expect(rows.get('5')).toMatchObject({ state: 'pending', sched_state: 'PENDING', held: true, priority: 0 });
    expect(rows.get('1')).toMatchObject({ state: 'running', sched_state: 'RUNNING', t_start: 1795327699, t_end: null });
    const rows2 = foldSlurm([...run.batches[0]!, ...run.batches[1]!]);
    expect(rows2.get('8')).toMatchObject({ state: 'pending', exception_type: 'dependency', exception_severity: 1 });
  });
});

describe('what a poll missed, and what left squeue', () => {
  it('a skipped snapshot: the finished one alone still gives every job its history', () => {
    const run = timeline([
      [MIXED, T1],
      [FINISHED, T3],
    ]);
    expect(namesByJob(run.events)['8']).toEqual(['submit', 'end']);
    expect(namesByJob(run.events)['13']).toEqual(['submit', 'eligible', 'start', 'end']);
    expect(seqProblems(run.events)).toEqual([]);
    const rows = foldSlurm(run.events);
    for (const [id, want] of sacctExpectations()) expect(rowExpectation(rows.get(id)!), `job ${id}`).toEqual(want);
  });

  it('jobs that left squeue before the first poll come from the sacct discovery window alone', () => {
    const run = timeline([[EMPTY, T3 + 400]], { discoverFrom: T1 - 10 });
    expect(Object.keys(namesByJob(run.events))).toHaveLength(14);
    expect(namesByJob(run.events)['11']).toEqual(['submit', 'end']); // never eligible, never ran
    expect(namesByJob(run.events)['4']).toEqual(['submit', 'eligible', 'start', 'end']);
    expect(run.events.find((e) => e.job_id === '13' && e.name === 'submit')!.context).toMatchObject({ array_job_id: 9, array_task_id: 1, source: 'sacct' });
    const rows = foldSlurm(run.events);
    for (const [id, want] of sacctExpectations()) expect(rowExpectation(rows.get(id)!), `job ${id}`).toEqual(want);
    // the next window overlaps this one by overlapS: nothing again
    expect(poll(run.state, EMPTY, T3 + 460, { discoverFrom: run.state.sacct_until! - DEFAULT_DIFF_OPTIONS.overlapS }).events).toEqual([]);
    // and a window still reaching back to them finds them remembered
    const near = timeline([[EMPTY, 1795327790]], { discoverFrom: T1 - 10 });
    expect(poll(near.state, EMPTY, 1795327850, { discoverFrom: near.state.sacct_until! - DEFAULT_DIFF_OPTIONS.overlapS }).events).toEqual([]);
  });

  it('a job cancelled before it ran, whose accounting Start is its End, did not start', () => {
    // as sacct printed it for a job held at submit and cancelled (slurmdbd first heard of it then)
    const quirky = SACCT.replace(/^(11\|11\|cancel-pending\|[^\n]*?\|Unknown\|)None\|(2026-11-22T06:08:21)\|/m, '$1$2|$2|');
    expect(quirky).not.toBe(SACCT);
    const jobs = parseSacctParsable(quirky);
    const r = applyPoll(emptyTrackerState(), { now: T3, squeue: parseSqueueJson(EMPTY), accounting: 'on', lookups: new Map(), discovery: { until: T3, jobs } });
    expect(namesByJob(r.events)['11']).toEqual(['submit', 'end']);
    expect(foldSlurm(r.events).get('11')).toMatchObject({ state: 'canceled', t_start: null, exit_code: null, wait_s: null });
  });

  it('tracked jobs that left squeue end from their sacct record', () => {
    let state = poll(emptyTrackerState(), MIXED, T1).state;
    const r = poll(state, EMPTY, T3 + 400);
    expect(Object.keys(namesByJob(r.events)).sort()).toEqual(['1', '10', '11', '12', '2', '3', '4', '5', '6', '7', '8', '9'].sort());
    state = r.state;
    const rows = foldSlurm([...poll(emptyTrackerState(), MIXED, T1).events, ...r.events]);
    const want = sacctExpectations();
    for (const id of ['1', '2', '4', '5', '8', '11']) expect(rowExpectation(rows.get(id)!), `job ${id}`).toEqual(want.get(id));
    // job 9 was the array's pending record; it became task 3
    expect(rows.get('9')).toMatchObject({ result: 'FAILED', exit_code: 5 });
    expect(state.jobs).toEqual({});
  });

  it('an end waits for sacct while it lags (sacct failing), then uses squeue after endGraceS', () => {
    let state = poll(emptyTrackerState(), MIXED, T1).state;
    let r = poll(state, DEP_NEVER, T2, { accounting: 'failed' });
    expect(r.events.filter((e) => e.name === 'end')).toEqual([]);
    state = r.state;
    r = poll(state, DEP_NEVER, T2 + 61, { accounting: 'failed' });
    const ends = r.events.filter((e) => e.name === 'end');
    expect(ends.map((e) => e.job_id).sort()).toEqual(['10', '11', '12', '13', '14', '2', '3', '4', '5', '6', '7', '9'].sort());
    expect(ends.find((e) => e.job_id === '4')!.context).toMatchObject({ source: 'squeue', exit_code: 3, signal: 0 });
    // squeue's word for the cancelled running job is its batch shell's SIGTERM
    expect(ends.find((e) => e.job_id === '2')!.context).toMatchObject({ state: 'CANCELLED', exit_code: 0, signal: 15, wait_status: 15 });
  });

  it("a final sacct record still missing its Eligible (slurmdbd lagging) is waited for", () => {
    const state = poll(emptyTrackerState(), MIXED, T1).state;
    const partial = parseSacctParsable(SACCT.replace(/^(4\|4\|fail\|FAILED\|3:0\|0:0\|None\|[^|]*\|)[^|]*\|/m, '$1Unknown|'));
    expect(partial.get('4')!.job.Eligible).toBe('Unknown');
    const input = (now: number, jobs: Map<string, SacctJob>) => ({ now, squeue: parseSqueueJson(DEP_NEVER), accounting: 'on' as const, lookups: jobs });
    const r1 = applyPoll(state, input(T2, partial));
    expect(namesByJob(r1.events)['4']).toEqual(['start']);
    const r2 = applyPoll(r1.state, input(T2 + 1, sacctAll));
    expect(namesByJob(r2.events)['4']).toEqual(['end']);
    expect(r2.events.find((e) => e.job_id === '4')!.context).toMatchObject({ eligible_time: 1795327699 });
    // still incomplete after endGraceS: taken as it is
    const r3 = applyPoll(r1.state, input(T2 + 61, partial));
    expect(r3.events.find((e) => e.job_id === '4')!.context).toMatchObject({ eligible_time: null, source: 'sacct' });
  });

  it("the worst step's exit comes from squeue when slurmdbd has not recorded it yet", () => {
    const state = poll(emptyTrackerState(), MIXED, T1).state;
    const lagging = parseSacctParsable(SACCT.replace(/^(10\|10\|steps\|COMPLETED\|0:0\|)7:0\|/m, '$10:0|'));
    expect(lagging.get('10')!.job.DerivedExitCode).toBe('0:0');
    const r = applyPoll(state, { now: T2, squeue: parseSqueueJson(DEP_NEVER), accounting: 'on', lookups: lagging });
    expect(r.events.find((e) => e.job_id === '10' && e.name === 'end')!.context).toMatchObject({ derived_exit_code: 7, source: 'sacct' });
  });

  it('without accounting: ends come straight from squeue; a job gone from squeue ends UNKNOWN after vanishGraceS', () => {
    const run = timeline(
      [
        [MIXED, T1],
        [DEP_NEVER, T2],
        [FINISHED, T3],
      ],
      { accounting: 'off' },
    );
    const rows = foldSlurm(run.events);
    expect(rows.get('4')).toMatchObject({ state: 'failed', exit_code: 3 });
    // canceled while running: the batch script was killed by SIGTERM (squeue's raw exit_code 15)
    expect(rows.get('2')).toMatchObject({ state: 'canceled', exit_code: null, signal: 15, signal_name: 'SIGTERM' });
    expect(rows.get('11')).toMatchObject({ state: 'canceled', exit_code: null, t_start: null });
    let state = poll(emptyTrackerState(), MIXED, T1, { accounting: 'off' }).state;
    state = poll(state, EMPTY, T1 + 10, { accounting: 'off' }).state;
    const gone = poll(state, EMPTY, T1 + 71, { accounting: 'off' });
    expect(gone.events.map((e) => e.name)).toEqual(Array(12).fill('end'));
    expect(foldSlurm([...poll(emptyTrackerState(), MIXED, T1, { accounting: 'off' }).events, ...gone.events]).get('3')).toMatchObject({
      state: 'failed',
      result: 'UNKNOWN',
      exception_type: 'lost',
    });
  });
});

/** The mixed snapshot with some records changed. */
function edited(edit: (jobs: Array<Record<string, unknown>>) => void, base = MIXED): string {
  const data = JSON.parse(base) as { jobs: Array<Record<string, unknown>> };
  edit(data.jobs);
  return JSON.stringify(data);
}
const job = (jobs: Array<Record<string, unknown>>, id: number) => jobs.find((j) => j.job_id === id)!;

describe('transitions the captured workload does not show', () => {
  const base = poll(emptyTrackerState(), MIXED, T1).state;

  it('priority / nice changes of a pending job; time limit, partition and name updates', () => {
    const text = edited((jobs) => {
      Object.assign(job(jobs, 4), { priority: 100, nice: 5 });
      Object.assign(job(jobs, 10), { time_limit: 30, name: 'renamed' });
    });
    const r = poll(base, text, T1 + 2);
    expect(r.events.map((e) => [e.job_id, e.name, e.seq, e.context])).toEqual([
      ['4', 'priority', 2, { priority: 100, nice: 5 }],
      ['10', 'update', 2, { time_limit_s: 1800, name: 'renamed' }],
    ]);
    const rows = foldSlurm([...poll(emptyTrackerState(), MIXED, T1).events, ...r.events]);
    // Slurm has no urgency (Flux's 0 means held): null, and the nice value as it is
    expect(rows.get('4')).toMatchObject({ priority: 100, urgency: null, nice: 5 });
    expect(rows.get('10')).toMatchObject({ time_limit_s: 1800, name: 'renamed' });
    expect(poll(r.state, text, T1 + 3).events).toEqual([]);
    expect(poll(r.state, text, T1 + 3, { priorityEvents: false }).events).toEqual([]);
  });

  it('a time limit Slurm fills in at start is no update', () => {
    const text = edited((jobs) => Object.assign(job(jobs, 3), { job_state: 'RUNNING', nodes: 'vm', start_time: T1 + 1, time_limit: 525600 }));
    expect(poll(base, text, T1 + 2).events.map((e) => e.name)).toEqual(['start']);
  });

  it('suspend and resume carry suspend_time', () => {
    const s = edited((jobs) => Object.assign(job(jobs, 1), { job_state: 'SUSPENDED', suspend_time: T1 + 3 }));
    const r1 = poll(base, s, T1 + 4);
    expect(r1.events.map((e) => [e.name, e.ts, e.ts_source])).toEqual([['suspend', T1 + 3, 'scheduler']]);
    const r2 = poll(r1.state, edited((jobs) => Object.assign(job(jobs, 1), { suspend_time: T1 + 8 })), T1 + 9);
    expect(r2.events.map((e) => [e.name, e.ts])).toEqual([['resume', T1 + 8]]);
    expect(foldSlurm([...poll(emptyTrackerState(), MIXED, T1).events, ...r1.events]).get('1')).toMatchObject({ sched_state: 'SUSPENDED', state: 'running' });
  });

  it('a requeue starts a new run: requeue, eligible, start again, with seqs continuing', () => {
    const pending = edited((jobs) => Object.assign(job(jobs, 2), { job_state: 'PENDING', state_reason: 'BeginTime', restart_cnt: 1, submit_time: T1 + 2, eligible_time: T1 + 5, start_time: T1 + 5, nodes: '' }));
    const r1 = poll(base, pending, T1 + 3);
    expect(r1.events.map((e) => [e.name, e.seq, e.ts])).toEqual([['requeue', 3, T1 + 2]]);
    const running = edited((jobs) => Object.assign(job(jobs, 2), { restart_cnt: 1, submit_time: T1 + 2, eligible_time: T1 + 5, start_time: T1 + 6 }));
    const r2 = poll(r1.state, running, T1 + 7);
    expect(r2.events.map((e) => [e.name, e.seq, e.ts])).toEqual([
      ['eligible', 4, T1 + 5],
      ['start', 5, T1 + 6],
    ]);
    const row = foldSlurm([...poll(emptyTrackerState(), MIXED, T1).events, ...r1.events, ...r2.events]).get('2');
    expect(row).toMatchObject({ state: 'running', t_start: T1 + 6, last_seq: 5 });
  });

  it('a finished job still in squeue is left alone; ended jobs are forgotten once no window can show them', () => {
    const fin = timeline([
      [MIXED, T1],
      [FINISHED, T3],
    ]);
    expect(Object.keys(fin.state.ended)).toHaveLength(14);
    expect(poll(fin.state, FINISHED, T3 + 10).events).toEqual([]);
    const later = poll(fin.state, EMPTY, T3 + 1000);
    expect(later.events).toEqual([]);
    expect(later.state.ended).toEqual({});
  });
});

describe('the fold: final states the workload does not show', () => {
  const at = (name: string, seq: number, ts: number, context: Record<string, unknown>): SourceEvent => ({ job_id: '77', seq, name, ts, ts_source: 'scheduler', context, raw: {} });
  const submit = at('submit', 0, 100, { name: 'n', user: 'alice', uid: 1000, partition: 'gpu', nice: 10, ngpus: 2, dependency: 'afterany:5(unfulfilled)?afterok:6', time_limit_s: null });
  const start = at('start', 1, 110, { nodes: 'node[01-03]', nnodes: 3, ncpus: 12, ntasks: 3, ngpus: 2, partition: 'gpu', time_limit_s: 3600 });
  const end = (state: string, extra: Record<string, unknown> = {}) =>
    at('end', 2, 150, { state, reason: 'None', exit_code: 0, signal: 9, wait_status: 9, submit_time: 100, eligible_time: 101, start_time: 110, end_time: 150, nodes: 'node[01-03]', ...extra });

  it('NODE_FAIL, OUT_OF_MEMORY, PREEMPTED fail; DEADLINE is a timeout; a signal is a signal, not an exit code', () => {
    for (const [state, unified, type] of [
      ['NODE_FAIL', 'failed', 'node_fail'],
      ['OUT_OF_MEMORY', 'failed', 'oom'],
      ['PREEMPTED', 'failed', 'preempt'],
      ['DEADLINE', 'timeout', 'timeout'],
      ['BOOT_FAIL', 'failed', 'node_fail'],
    ] as const) {
      expect(foldSlurm([submit, start, end(state)]).get('77'), state).toMatchObject({
        ...{ state: unified, result: state, sched_state: state, exit_code: null, signal: 9, signal_name: 'SIGKILL' },
        ...{ oom: state === 'OUT_OF_MEMORY', exception_type: type, exception_severity: 0 },
      });
    }
  });

  it("exit codes: one rule (sacct ExitCode exit:signal, the batch script's raw status first); OOM is no signal", () => {
    const fold = (extra: Record<string, unknown>, state = 'FAILED') => foldSlurm([submit, start, end(state, extra)]).get('77')!;
    const pick = (r: ReturnType<typeof fold>) => [r.exit_code, r.signal, r.signal_name, r.oom];
    // sacct 0:11 (squeue 11): a segfault, not 139
    expect(pick(fold({ exit_code: 0, signal: 11, wait_status: 11 }))).toEqual([null, 11, 'SIGSEGV', false]);
    // a core dump (0x80) changes nothing
    expect(pick(fold({ exit_code: 0, signal: 11, wait_status: 0x80 | 11 }))).toEqual([null, 11, 'SIGSEGV', false]);
    // a script whose program segfaulted exits 139 itself: an exit status
    expect(pick(fold({ exit_code: 139, signal: 0, wait_status: 139 << 8 }))).toEqual([139, null, '', false]);
    // no raw status (a record from accounting alone): the job's ExitCode pair
    expect(pick(fold({ exit_code: 3, signal: 0, wait_status: null }))).toEqual([3, null, '', false]);
    expect(pick(fold({ exit_code: 0, signal: 6, wait_status: null }))).toEqual([null, 6, 'SIGABRT', false]);
    // a job Slurm ended itself, known by its job line alone (a completion log): 0:0 records nothing, it is no exit 0
    expect(pick(fold({ exit_code: 0, signal: 0, wait_status: null }, 'TIMEOUT'))).toEqual([null, null, '', false]);
    expect(pick(fold({ exit_code: 0, signal: 0, wait_status: null }, 'CANCELLED'))).toEqual([null, null, '', false]);
    expect(pick(fold({ exit_code: 0, signal: 0, wait_status: null }, 'COMPLETED'))).toEqual([0, null, '', false]);
    // OUT_OF_MEMORY, sacct 0:125 = SIG_OOM (253) as a status: out of memory, neither an exit nor a signal
    expect(pick(fold({ exit_code: 0, signal: 125, wait_status: 253 }, 'OUT_OF_MEMORY'))).toEqual([null, null, '', true]);
    expect(pick(fold({ exit_code: 0, signal: 125, wait_status: null }, 'OUT_OF_MEMORY'))).toEqual([null, null, '', true]);
    // the marker says out of memory even under another state word
    expect(fold({ exit_code: 0, signal: 125, wait_status: 253 }).oom).toBe(true);
    // a job that never started has none, whatever accounting prints
    expect(pick(foldSlurm([submit, end('CANCELLED', { exit_code: 0, signal: 0, wait_status: null, start_time: null })]).get('77')!)).toEqual([null, null, '', false]);
    // a requeue clears them
    const requeue = at('requeue', 3, 160, { restart_count: 1, state: 'PENDING', reason: 'None' });
    expect(pick(foldSlurm([submit, start, end('OUT_OF_MEMORY', { signal: 125, wait_status: 253 }), requeue]).get('77')!)).toEqual([null, null, '', false]);
  });

  it('submit and start fill the row; later events below last_seq change nothing', () => {
    const row = foldSlurm([submit, start]).get('77')!;
    expect(row).toMatchObject({
      user: 'alice',
      userid: 1000,
      queue: 'gpu',
      urgency: null,
      nice: 10,
      ngpus: 2,
      nodes: ['node01', 'node02', 'node03'],
      nnodes: 3,
      ncores: 12,
      ntasks: 3,
      time_limit_s: 3600,
      dependencies: ['afterany:5', 'afterok:6'],
      state: 'running',
      wait_s: 10,
    });
    expect(foldSlurm([submit, start, { ...end('COMPLETED'), seq: 1 }]).get('77')).toEqual(row);
    expect(foldSlurm([start])).toEqual(new Map());
  });

  it('reads 23.02-style numbers ({set, infinite, number}) as well as 22.05 plain ones', () => {
    expect(slurmNumber({ set: true, infinite: false, number: 5 })).toBe(5);
    expect(slurmNumber({ set: false, infinite: false, number: 0 })).toBeNull();
    expect(slurmNumber({ set: true, infinite: true, number: 0 })).toBeNull();
    expect(slurmNumber(7)).toBe(7);
    const rec = JSON.parse(MIXED) as { jobs: Array<Record<string, unknown>> };
    Object.assign(rec.jobs[0]!, { job_state: ['RUNNING'], submit_time: { set: true, infinite: false, number: 1795327698 }, time_limit: { set: true, infinite: true, number: 0 } });
    expect(parseSqueueJson(JSON.stringify(rec)).jobs[0]).toMatchObject({ job_state: 'RUNNING', submit_time: 1795327698, time_limit: null });
  });
});

describe('the source: checkpoints, restarts, write-ahead', () => {
  /** Runs the source over the snapshots, one poll each, stopping when they are used up. */
  async function runSource(slurm: FixtureSlurm, snapshots: Array<[string, number]>, checkpoint?: string) {
    const out = collector();
    const ac = new AbortController();
    let i = 0;
    const source = createSlurmSource({
      run: async (argv, opts) => {
        if (argv[0] === 'squeue') {
          const next = snapshots[i++];
          if (!next) {
            ac.abort();
            return { code: 1, stdout: '', stderr: 'stopped', timedOut: false };
          }
          slurm.squeue = next[0];
        }
        return slurm.run(argv, opts);
      },
      // read before the poll's squeue: the time of the snapshot about to be served
      now: () => snapshots[Math.min(i, snapshots.length - 1)]![1],
      pollIntervalMs: 1,
      sacctIntervalS: 60,
      log: () => undefined,
    });
    await source.run({ checkpoint, signal: ac.signal, emit: out.emit });
    return out;
  }

  it('a restart from the checkpoint continues where it stopped: no event twice, none lost, same seqs', async () => {
    const slurm = new FixtureSlurm(SACCT);
    const whole = await runSource(slurm, [
      [MIXED, T1],
      [DEP_NEVER, T2],
      [FINISHED, T3],
    ]);
    const first = await runSource(new FixtureSlurm(SACCT), [
      [MIXED, T1],
      [MIXED, T1 + 1],
    ]);
    const second = await runSource(
      new FixtureSlurm(SACCT),
      [
        [MIXED, T1 + 0.5], // the same snapshot after the restart: nothing
        [DEP_NEVER, T2],
        [DEP_NEVER, T2 + 1],
        [FINISHED, T3],
      ],
      first.lastCheckpoint,
    );
    expect(second.calls[0]?.events ?? []).toEqual([]);
    const combined = [...first.events, ...second.events];
    expect(seqProblems(combined)).toEqual([]);
    const key = (e: SourceEvent) => `${e.job_id}:${e.seq}:${e.name}:${e.ts}`;
    expect(combined.map(key)).toEqual(whole.events.map(key));
    expect(decodeCheckpoint(second.lastCheckpoint!).state.jobs).toEqual({});
  });

  it('a crash between publishing a batch and saving its checkpoint replays that batch exactly', async () => {
    const first = await runSource(new FixtureSlurm(SACCT), [[MIXED, T1]]);
    // the calls: the write-ahead checkpoint (no events, batch pending), then the batch itself
    expect(first.calls.map((c) => c.events.length)).toEqual([0, 25]);
    const writeAhead = first.calls[0]!.checkpoint;
    expect(decodeCheckpoint(writeAhead).pending).toHaveLength(25);
    // restart from the write-ahead checkpoint, as if the batch's own checkpoint was never saved,
    // and the cluster has moved on in the meantime
    const replay = await runSource(new FixtureSlurm(SACCT), [[DEP_NEVER, T2]], writeAhead);
    expect(replay.calls[0]!.events).toEqual(first.calls[1]!.events);
    expect(decodeCheckpoint(replay.calls[0]!.checkpoint).pending).toEqual([]);
    const all = [...first.calls[1]!.events, ...replay.events.slice(25)];
    expect(seqProblems(all)).toEqual([]);
  });

  it('an idle poll writes no checkpoint; a poll with events writes the write-ahead one first', async () => {
    const out = await runSource(new FixtureSlurm(SACCT), [
      [MIXED, T1],
      [MIXED, T1 + 1],
      [MIXED, T1 + 2],
    ]);
    expect(out.calls).toHaveLength(2);
  });

  it('squeue failing is retried at the next poll; a bad checkpoint is refused', async () => {
    const slurm = new FixtureSlurm(SACCT);
    const out = collector();
    const ac = new AbortController();
    let calls = 0;
    const errors: string[] = [];
    const source = createSlurmSource({
      run: async (argv, opts) => {
        if (argv[0] === 'squeue' && ++calls === 1) return { code: 1, stdout: '', stderr: 'squeue: error: Unable to contact slurm controller (connect failure)', timedOut: false };
        if (argv[0] === 'squeue' && calls > 2) ac.abort();
        slurm.squeue = MIXED;
        return slurm.run(argv, opts);
      },
      now: () => T1,
      pollIntervalMs: 1,
      log: (m) => errors.push(m),
    });
    await source.run({ signal: ac.signal, emit: out.emit });
    expect(errors.join('\n')).toMatch(/Unable to contact slurm controller/);
    expect(out.events.length).toBe(25);
    await expect(source.run({ checkpoint: '{"v":9}', signal: ac.signal, emit: out.emit })).rejects.toThrow(/checkpoint is unreadable \(not a valid Slurm source checkpoint: /);
  });

  it('sacct disabled ("accounting storage is disabled") switches to squeue-only ends', async () => {
    const slurm = new FixtureSlurm(SACCT);
    slurm.sacctError = 'sacct: error: Slurm accounting storage is disabled';
    const logs: string[] = [];
    const ac = new AbortController();
    const out = collector();
    const snaps = [MIXED, FINISHED];
    const source = createSlurmSource({
      run: async (argv, opts) => {
        if (argv[0] === 'squeue') {
          const s = snaps.shift();
          if (!s) ac.abort();
          slurm.squeue = s ?? FINISHED;
        }
        return slurm.run(argv, opts);
      },
      now: () => T3,
      pollIntervalMs: 1,
      log: (m) => logs.push(m),
    });
    await source.run({ signal: ac.signal, emit: out.emit });
    expect(logs.join('\n')).toMatch(/accounting is disabled/);
    const ends = out.events.filter((e) => e.name === 'end');
    expect(ends).toHaveLength(14); // every job of FINISHED, straight from squeue
    expect(new Set(ends.map((e) => e.context.source))).toEqual(new Set(['squeue']));
  });

  it('checkpoint round trip', () => {
    const { state } = poll(emptyTrackerState(), MIXED, T1);
    expect(decodeCheckpoint(encodeCheckpoint(state)).state).toEqual(state);
    expect(JSON.parse(encodeCheckpoint(state))).toMatchObject({ v: 1, polled_at: T1, jobs: { '5': { n: 2, held: 'user' } } });
  });
});
