/**
 * The `jobs` fold (projector/tables/jobs.ts) against flux-core itself: the real journals of a
 * flux-core 0.88 instance, projected parseJournalLine → JournalSequencer → toEnvelope → evolveJob,
 * must reproduce what `flux jobs -a --json` derived for every job; plus the edge cases.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../schemas/envelope/index.js';
import { evolveJob, type JobRow } from '../../projector/tables/jobs.js';
import { fluxReturnCode } from '../../projector/tables/fluxJob.js';
import { JournalSequencer, SEQ_SLOT, parseJournalLine } from '../../scribe/flux/journal.js';
import { toEnvelope } from '../../scribe/envelope.js';
import { phaseDurations, summarize } from '../../mcp/tools/jobTimeline.js';
import type { JobDetailRow } from '../../mcp/rows.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FLUX_DIR = join(REPO_ROOT, 'test', 'fixtures', 'flux');
const fixtureText = (name: string): string => {
  const data = readFileSync(join(FLUX_DIR, name));
  return (name.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8');
};

const ORIGIN = { cluster: 'fluke', scheduler: 'flux' as const, scribe: { id: 'test', version: '0.0.0' } };

/** A journal's text → envelopes, as the Flux scribe publishes them. */
function envelopes(text: string): Envelope[] {
  const seq = new JournalSequencer((uid) => (uid === 0 ? 'root' : undefined));
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => seq.push(parseJournalLine(line)))
    .map((ev) => toEnvelope(ORIGIN, ev, 1795326800));
}

/** Folds envelopes into rows; every row handed back to the fold is deep-frozen (purity check). */
function fold(events: Envelope[], jobs = new Map<string, JobRow>()): Map<string, JobRow> {
  for (const e of events) {
    const next = evolveJob(jobs.get(e.job_id), e);
    if (next) jobs.set(e.job_id, deepFreeze(next));
  }
  return jobs;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
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
  username: string;
  userid: number;
  ntasks: number;
  ncores?: number;
  nnodes?: number;
  nodelist?: string;
  dependencies: string[];
  duration: number;
  t_submit: number;
  t_sched?: number;
  t_run?: number;
  t_cleanup?: number;
  t_inactive?: number;
  runtime?: number;
  exception: { occurred: boolean; severity?: number; type?: string; note?: string };
}

const ORACLE = (JSON.parse(fixtureText('jobs.json')) as { jobs: FluxJobsEntry[] }).jobs;

/**
 * When each job became eligible, from its stored eventlog (eventlogs.jsonl, not the journal the
 * fold reads): job-list's t_sched for a job submitted with urgency > 0; for one submitted held,
 * the urgency event that released it (these jobs reach SCHED before their release), else never.
 */
const RELEASED_AT = (() => {
  const out = new Map<number, number | null>();
  for (const line of fixtureText('eventlogs.jsonl').split('\n').filter(Boolean)) {
    const { id, event } = JSON.parse(line) as { id: number; event: { timestamp: number; name: string; context?: { urgency?: number } } };
    const u = event.context?.urgency;
    if (event.name === 'submit' && u === 0) out.set(id, null);
    if (event.name === 'urgency' && out.get(id) === null && u !== undefined && u > 0) out.set(id, event.timestamp);
  }
  return out;
})();
const TOLERANCE_DIGITS = 6; // |a - b| < 5e-7 s: the journal's and job-list's doubles agree to that

/** "fluxnode[0-1]" → ["fluxnode0", "fluxnode1"] (the fixture's simple form only). */
function nodelistNames(nodelist: string): string[] {
  const m = /^(.*)\[(\d+)-(\d+)\]$/.exec(nodelist);
  if (!m) return nodelist.split(',');
  const out: string[] = [];
  for (let i = Number(m[2]); i <= Number(m[3]); i++) out.push(`${m[1]}${i}`);
  return out;
}

function expectLikeFluxJobs(jobs: Map<string, JobRow>): void {
  expect(ORACLE).toHaveLength(35);
  // the fixture holds jobs submitted held, released or canceled while held
  expect(new Set([...RELEASED_AT.values()].map((t) => t !== null))).toEqual(new Set([false, true]));
  for (const want of ORACLE) {
    const label = `job ${want.id} (${want.name})`;
    const j = jobs.get(String(want.id));
    expect(j, label).toBeDefined();
    if (!j) continue;
    expect(j.sched_state, label).toBe(want.state);
    expect(j.result, label).toBe(want.result);
    expect(j.state, label).toBe(want.result.toLowerCase());
    expect(j.success, label).toBe(want.success);
    // flux jobs' returncode mixes conventions (-signal, -128 canceled, 1 failed before running);
    // the row keeps one rule (exit.ts), from the wait status flux jobs reports
    expect(fluxReturnCode(j.waitstatus, j.result), label).toBe(want.returncode);
    const ws = want.waitstatus;
    const exitedWith = ws !== undefined && (ws & 0x7f) === 0 ? (ws >> 8) & 0xff : null;
    const killedBy = ws !== undefined && (ws & 0x7f) !== 0 && (ws & 0x7f) !== 0x7f ? ws & 0x7f : null;
    expect([j.exit_code, j.signal], label).toEqual([exitedWith, killedBy]);
    expect(j.waitstatus, label).toBe(want.waitstatus ?? null);
    expect(j.urgency, label).toBe(want.urgency);
    expect(j.priority, label).toBe(want.priority ?? null);
    expect(j.held, label).toBe(false);
    expect(j.user, label).toBe(want.username);
    expect(j.userid, label).toBe(want.userid);
    expect(j.name, label).toBe(want.name);
    expect(j.queue, label).toBe('');
    expect(j.time_limit_s ?? 0, label).toBe(want.duration);
    expect(j.ntasks, label).toBe(want.ntasks);
    expect(j.ncores, label).toBe(want.ncores ?? 0); // absent in flux jobs = not known yet
    expect(j.nnodes, label).toBe(want.nnodes ?? 0);
    expect(j.nodes, label).toEqual(want.nodelist === undefined ? [] : nodelistNames(want.nodelist));
    expect(j.dependencies, label).toEqual(want.dependencies);
    if (want.exception.occurred) {
      expect([j.exception_type, j.exception_severity, j.exception_note], label).toEqual([
        want.exception.type,
        want.exception.severity,
        want.exception.note,
      ]);
    } else {
      expect([j.exception_type, j.exception_severity, j.exception_note], label).toEqual(['', null, '']);
    }
    const times: [number | null, number | undefined][] = [
      [j.t_submit, want.t_submit],
      [j.t_eligible, RELEASED_AT.has(want.id) ? (RELEASED_AT.get(want.id) ?? undefined) : want.t_sched],
      [j.t_start, want.t_run],
      [j.t_end, want.t_cleanup],
      [j.t_inactive, want.t_inactive],
      [j.run_s, want.runtime],
    ];
    for (const [i, [got, expected]] of times.entries()) {
      if (expected === undefined) expect(got, `${label} time #${i}`).toBeNull();
      else expect(got, `${label} time #${i}`).toBeCloseTo(expected, TOLERANCE_DIGITS);
    }
    if (want.t_run !== undefined) expect(j.wait_s, label).toBeCloseTo(want.t_run - want.t_submit, TOLERANCE_DIGITS);
    else expect(j.wait_s, label).toBeNull();
    expect(j.is_deleted, label).toBe(0);
  }
}

describe('the Flux fold reproduces flux jobs -a --json (flux-core 0.88)', () => {
  it('from the full backlog', () => {
    const jobs = fold(envelopes(fixtureText('journal-backlog.jsonl')));
    expect(jobs.size).toBe(35);
    expectLikeFluxJobs(jobs);
  });

  it('from the live journal; the submissions Flux invalidated end deleted', () => {
    const jobs = fold(envelopes(fixtureText('journal.jsonl')));
    expectLikeFluxJobs(jobs);
    const extra = [...jobs.values()].filter((j) => !ORACLE.some((o) => String(o.id) === j.job_id));
    expect(extra.map((j) => j.job_id)).toEqual(['752860790784']);
    for (const j of extra) {
      expect(j.is_deleted).toBe(1);
      expect(j.dependencies).toEqual(['after-success=676541235200']);
    }
  });

  it("job_timeline's eligible wait of a job submitted held is its wait after the release", () => {
    const jobs = fold(envelopes(fixtureText('journal.jsonl')));
    const us = (t: number | null) => (t === null ? null : String(Math.round(t * 1e6)));
    let released = 0;
    for (const want of ORACLE) {
      const at = RELEASED_AT.get(want.id);
      if (!at || want.t_run === undefined) continue;
      const j = jobs.get(String(want.id))!;
      const row = {
        ...j,
        ...{ t_submit_us: us(j.t_submit)!, t_eligible_us: us(j.t_eligible), t_start_us: us(j.t_start) },
        ...{ t_end_us: us(j.t_end), t_inactive_us: us(j.t_inactive), last_event_ts_us: us(j.last_event_ts)! },
      } as unknown as JobDetailRow;
      const d = phaseDurations(row, 0);
      expect(d.eligible_wait_s, want.name).toBeCloseTo(want.t_run - at, 5);
      expect(d.pending_s, want.name).toBeCloseTo(want.t_run - want.t_submit, 5);
      expect(d.eligible_wait_s!, want.name).toBeLessThan(d.pending_s!);
      released++;
    }
    expect(released).toBeGreaterThan(0);
  });

  it('from the 1000-job journals: every job completed with returncode 0', () => {
    for (const name of ['journal-1000-real.jsonl.gz', 'journal-1000-mock.jsonl.gz']) {
      const jobs = [...fold(envelopes(fixtureText(name))).values()];
      expect(jobs, name).toHaveLength(1000);
      const ok = (j: JobRow) =>
        j.sched_state === 'INACTIVE' && j.result === 'COMPLETED' && j.state === 'completed' && j.exit_code === 0 && !j.is_deleted;
      expect(jobs.filter((j) => !ok(j)), name).toEqual([]);
    }
  });
});

describe('idempotence', () => {
  const events = envelopes(fixtureText('journal.jsonl'));
  const once = fold(events);

  it('folding every event twice changes nothing', () => {
    expect(fold(events.flatMap((e) => [e, e]))).toEqual(once);
  });

  it('folding the whole journal again after the jobs ended changes nothing', () => {
    const ended = fold(events);
    const before = new Map(ended);
    fold(events, ended);
    for (const [id, row] of before) expect(ended.get(id), id).toBe(row); // the very same row objects
    expect(ended).toEqual(once);
  });

  it('a backlog replayed after the live journal changes nothing', () => {
    expect(fold(envelopes(fixtureText('journal-backlog.jsonl')), fold(events))).toEqual(once);
  });

  it('keeps job ids above 2^53 exact through parse, sequencer and fold', () => {
    for (const id of ['18446744073709551615', '9007199254740993']) {
      const submit = { timestamp: 10, name: 'submit', context: { userid: 0, urgency: 16, flags: 0 } };
      const text = [
        `{"id":${id},"events":${JSON.stringify([submit])},"jobspec":${JSON.stringify(JOBSPEC)}}`,
        `{"id":${id},"events":[{"timestamp":11,"name":"validate"}]}`,
      ].join('\n');
      const jobs = fold(envelopes(text));
      expect([...jobs.keys()]).toEqual([id]);
      expect(jobs.get(id)!.job_id).toBe(id);
      expect(jobs.get(id)!.sched_state).toBe('DEPEND');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Edge cases, on hand-built envelopes in the journal's shapes.

const JOBSPEC = {
  resources: [{ type: 'slot', count: 1, with: [{ type: 'core', count: 1 }], label: 'task' }],
  tasks: [{ command: ['sleep', '300'], slot: 'task', count: { per_slot: 1 } }],
  attributes: { system: { duration: 0, cwd: '/tmp' } },
  version: 1,
};
const R1 = { version: 1, execution: { R_lite: [{ rank: '0', children: { core: '0' } }], nodelist: ['fluxnode0'] } };

type Obj = Record<string, unknown>;
type Step = [name: string, context?: Obj];
interface JobOpts {
  jobspec?: Obj;
  R?: Obj;
  urgency?: number;
}

/** One job's events at ts 100, 101, …; submit carries the jobspec, alloc carries R. */
function job(steps: Step[], opts: JobOpts = {}): Envelope[] {
  const all: Step[] = [['submit', { userid: 1000, urgency: opts.urgency ?? 16, flags: 0, version: 1 }], ...steps];
  return all.map(([name, context = {}], i) => {
    const raw: Obj = { id: '42', event: { timestamp: 100 + i, name, context } };
    if (name === 'submit') raw.jobspec = opts.jobspec ?? JOBSPEC;
    if (name === 'alloc') raw.R = opts.R ?? R1;
    const ev = { job_id: '42', seq: i * SEQ_SLOT, name, ts: 100 + i, context, raw, user: 'alice' };
    return toEnvelope(ORIGIN, ev, 200);
  });
}

/** The job's row after each of its events. */
function rows(events: Envelope[]): JobRow[] {
  const out: JobRow[] = [];
  let row: JobRow | undefined;
  for (const e of events) {
    row = evolveJob(row, e);
    if (row) out.push(deepFreeze(row));
  }
  return out;
}
const last = (steps: Step[], opts?: JobOpts): JobRow => rows(job(steps, opts)).at(-1)!;

const PENDING: Step[] = [['validate'], ['depend'], ['priority', { priority: 16 }]];
const HELD: Step[] = [['validate'], ['depend'], ['priority', { priority: 0 }]];
const RUNNING: Step[] = [...PENDING, ['alloc'], ['start']];
const END: Step[] = [['release', { ranks: 'all', final: true }], ['free'], ['clean']];
const finish = (status: number): Step => ['finish', { status }];
const exception = (type: string, severity = 0, note = ''): Step => ['exception', { type, severity, note, userid: 0 }];

describe('Flux fold edge cases', () => {
  it('walks the states and times of a successful job', () => {
    const r = rows(job([...RUNNING, finish(0), ...END]));
    expect(r.map((x) => x.sched_state)).toEqual([
      ...['NEW', 'DEPEND', 'PRIORITY', 'SCHED', 'RUN', 'RUN'],
      ...['CLEANUP', 'CLEANUP', 'CLEANUP', 'INACTIVE'],
    ]);
    expect(r.map((x) => x.state)).toEqual([
      ...['pending', 'pending', 'pending', 'pending', 'running'],
      ...['running', 'running', 'running', 'running', 'completed'],
    ]);
    expect(r.at(-1)).toMatchObject({
      ...{ result: 'COMPLETED', success: true, exit_code: 0, waitstatus: 0, user: 'alice', userid: 1000 },
      ...{ t_submit: 100, t_eligible: 103, t_start: 104, t_end: 106, t_inactive: 109, wait_s: 4, run_s: 2 },
      ...{ name: 'sleep', ntasks: 1, ncores: 1, nnodes: 1, nodes: ['fluxnode0'] },
      ...{ last_event: 'clean', last_seq: 9 * SEQ_SLOT, last_event_ts: 109 },
    });
  });

  it('a fatal exception while pending: CLEANUP without running, then FAILED with no exit code (flux jobs: returncode 1)', () => {
    const r = rows(job([...PENDING, exception('alloc', 0, 'unsatisfiable'), ['clean']]));
    expect(r[4]).toMatchObject({ sched_state: 'CLEANUP', state: 'pending', t_start: null, t_end: 104, result: '' });
    expect(r[5]).toMatchObject({
      ...{ sched_state: 'INACTIVE', state: 'failed', result: 'FAILED', success: false, exit_code: null, signal: null, waitstatus: null },
      ...{ exception_type: 'alloc', exception_severity: 0, exception_note: 'unsatisfiable', wait_s: null, run_s: null },
    });
  });

  it('cancel while held: held until canceled, then CANCELED with no exit code (flux jobs: returncode -128)', () => {
    const r = rows(job([...HELD, exception('cancel'), ['clean']], { urgency: 0 }));
    expect(r.map((x) => x.held)).toEqual([true, true, true, true, false, false]);
    expect(r.at(-1)).toMatchObject({ result: 'CANCELED', state: 'canceled', success: false, exit_code: null, signal: null, priority: 0 });
  });

  it('hold and release: urgency 0 holds, urgency 16 releases', () => {
    const release: Step[] = [['urgency', { userid: 0, urgency: 16 }], ['priority', { priority: 16 }], ['alloc']];
    const r = rows(job([...HELD, ...release], { urgency: 0 }));
    expect(r.map((x) => x.held)).toEqual([true, true, true, true, false, false, false]);
    expect(r.at(-1)).toMatchObject({ t_eligible: 104, priority: 16, urgency: 16, sched_state: 'RUN' });
  });

  it('eligible = in SCHED and not held: a hold is not eligible wait', () => {
    // submitted held: eligible at the release (the urgency event), not at SCHED; never if canceled held
    const held = rows(job([...HELD, ['urgency', { userid: 0, urgency: 16 }], ['priority', { priority: 16 }], ['alloc']], { urgency: 0 }));
    expect(held.map((x) => x.t_eligible)).toEqual([null, null, null, null, 104, 104, 104]);
    expect(last([...HELD, exception('cancel'), ['clean']], { urgency: 0 }).t_eligible).toBeNull();
    // released before reaching SCHED: eligible at SCHED
    const early: Step[] = [['validate'], ['urgency', { userid: 0, urgency: 16 }], ['depend'], ['priority', { priority: 16 }]];
    expect(last(early, { urgency: 0 }).t_eligible).toBe(104);
    // held after it was eligible, then released: the first eligible time stays
    const again: Step[] = [...PENDING, ['urgency', { userid: 0, urgency: 0 }], ['urgency', { userid: 0, urgency: 16 }]];
    expect(last(again)).toMatchObject({ t_eligible: 103, held: false });
    // held, restarted, released: eligible at the release
    const restart: Step[] = [...HELD, ['flux-restart'], ['priority', { priority: 0 }], ['urgency', { userid: 0, urgency: 16 }]];
    expect(last(restart, { urgency: 0 })).toMatchObject({ sched_state: 'SCHED', t_eligible: 106 });
  });

  it('timeout: CLEANUP at the exception, finish keeps its status, result TIMEOUT', () => {
    const j = last([...RUNNING, exception('timeout', 0, 'resource allocation expired'), finish(142 << 8), ...END]);
    expect(j).toMatchObject({ result: 'TIMEOUT', state: 'timeout', success: false, waitstatus: 36352, exit_code: 142 });
    expect(j).toMatchObject({ t_end: 106, run_s: 2 });
  });

  it('signals: an exit status of 128+N stays an exit status; a process killed by N has no exit code but signal N', () => {
    expect(last([...RUNNING, finish(137 << 8), ...END])).toMatchObject({ result: 'FAILED', exit_code: 137, signal: null, signal_name: '' });
    expect(last([...RUNNING, finish(9), ...END])).toMatchObject({ result: 'FAILED', exit_code: null, signal: 9, signal_name: 'SIGKILL', waitstatus: 9 });
    // a core dump sets 0x80: still SIGSEGV
    expect(last([...RUNNING, finish(0x80 | 11), ...END])).toMatchObject({ exit_code: null, signal: 11, signal_name: 'SIGSEGV', oom: false });
    // a stopped status (0x7f) says neither
    expect(last([...RUNNING, finish((19 << 8) | 0x7f), ...END])).toMatchObject({ exit_code: null, signal: null });
  });

  it("job_timeline's summary says how the process ended: its exit status, or the signal that killed it", () => {
    const us = (t: number | null) => (t === null ? null : String(Math.round(t * 1e6)));
    const said = (j: JobRow) => {
      const row = {
        ...j,
        job_id_s: j.job_id,
        ...{ t_submit_us: us(j.t_submit)!, t_eligible_us: us(j.t_eligible), t_start_us: us(j.t_start) },
        ...{ t_end_us: us(j.t_end), t_inactive_us: us(j.t_inactive), last_event_ts_us: us(j.last_event_ts)! },
      } as unknown as JobDetailRow;
      return summarize(row, phaseDurations(row, 0), '10');
    };
    expect(said(last([...RUNNING, finish(11), ...END]))).toMatch(/: failed, killed by SIGSEGV; /);
    expect(said(last([...RUNNING, finish(3 << 8), ...END]))).toMatch(/: failed, exit 3; /);
    expect(said(last([...RUNNING, exception('oom', 0, 'oom'), finish(9), ...END]))).toMatch(/: failed, killed by SIGKILL, out of memory \(exception: oom/);
    expect(said(last([...PENDING, exception('cancel'), ['clean']]))).toMatch(/: canceled \(exception: cancel/);
  });

  it('oom: an exception of type oom says so, whatever the status', () => {
    expect(last([...RUNNING, exception('oom', 0, 'Memory cgroup out of memory'), finish(9), ...END])).toMatchObject({ oom: true, signal: 9, result: 'FAILED' });
    expect(last([...RUNNING, finish(0), ...END]).oom).toBe(false);
  });

  it('keeps the most severe exception, the first among equals', () => {
    const a = last([...RUNNING, exception('notice', 1, 'fyi'), exception('cancel', 0, 'stop'), finish(15), ...END]);
    expect(a).toMatchObject({ exception_type: 'cancel', exception_severity: 0, exception_note: 'stop', result: 'CANCELED' });
    expect([a.exit_code, a.signal_name]).toEqual([null, 'SIGTERM']);
    const b = last([...RUNNING, exception('timeout'), exception('cancel'), finish(36352), ...END]);
    expect(b).toMatchObject({ exception_type: 'timeout', result: 'TIMEOUT' });
    const c = last([...RUNNING, exception('notice', 1, 'fyi'), finish(0), ...END]);
    expect(c).toMatchObject({ exception_type: 'notice', exception_severity: 1, result: 'COMPLETED', success: true });
  });

  it('success is decided at finish, as job-list does', () => {
    // A fatal exception after a clean exit (e.g. an epilog failure) leaves the job COMPLETED ...
    const late = last([...RUNNING, finish(0), exception('epilog'), ...END]);
    expect(late).toMatchObject({ result: 'COMPLETED', success: true, exception_type: 'epilog' });
    // ... and a zero status after a fatal exception does not make it successful.
    const early = last([...RUNNING, exception('exec'), finish(0), ...END]);
    expect(early).toMatchObject({ result: 'FAILED', success: false, exit_code: 0 });
  });

  it('flux-restart takes SCHED back to PRIORITY and keeps the first eligible time; only a job in PRIORITY moves to SCHED', () => {
    const r = rows(job([...PENDING, ['flux-restart'], ['priority', { priority: 20 }]]));
    expect(r.slice(3).map((x) => [x.sched_state, x.t_eligible, x.priority])).toEqual([
      ['SCHED', 103, 16],
      ['PRIORITY', 103, 16],
      ['SCHED', 103, 20],
    ]);
    const ran = last([...PENDING, ['flux-restart'], ['priority', { priority: 16 }], ['alloc']]);
    expect(ran).toMatchObject({ sched_state: 'RUN', t_eligible: 103, t_start: 106 });
    const early = last([['validate'], ['priority', { priority: 16 }]]);
    expect(early).toMatchObject({ sched_state: 'DEPEND', priority: 16, t_eligible: null });
  });

  it('a late alloc after a fatal exception does not make the job run', () => {
    const j = last([...PENDING, exception('cancel'), ['alloc'], ['free'], ['clean']]);
    expect(j).toMatchObject({ sched_state: 'INACTIVE', result: 'CANCELED', exit_code: null, signal: null, t_start: null, nodes: [] });
  });

  it('dependencies: added once, removed', () => {
    const add = (d: string): Step => ['dependency-add', { description: d }];
    const remove = (d: string): Step => ['dependency-remove', { description: d }];
    const r = rows(job([add('after:1'), add('afterok:2'), add('after:1'), ['validate'], remove('after:1')]));
    expect(r.map((x) => x.dependencies.join(' '))).toEqual([
      ...['', 'after:1', 'after:1 afterok:2', 'after:1 afterok:2'],
      ...['after:1 afterok:2', 'afterok:2'],
    ]);
  });

  it('jobspec-update changes the time limit, queue and name in any state, live or from a backlog alike', () => {
    const update: Step = [
      'jobspec-update',
      { 'attributes.system.duration': 300, 'attributes.system.queue': 'debug', 'attributes.system.job': { name: 'renamed' } },
    ];
    expect(last([...PENDING, update])).toMatchObject({ time_limit_s: 300, queue: 'debug', name: 'renamed' });
    expect(last([...RUNNING, update])).toMatchObject({ time_limit_s: 300, queue: 'debug', name: 'renamed' });
    // One job, one answer: live (the update event on the old jobspec) and from a backlog (whose
    // jobspec already has it).
    const longer: Step = ['jobspec-update', { 'attributes.system.duration': 600 }];
    const short = { ...JOBSPEC, attributes: { system: { duration: 60 } } };
    expect(last([...RUNNING, longer], { jobspec: short }).time_limit_s).toBe(600);
    const backlogSpec = { ...JOBSPEC, attributes: { system: { duration: 600 } } };
    expect(last([...RUNNING, longer], { jobspec: backlogSpec }).time_limit_s).toBe(600);
    const unlimited: Step = ['jobspec-update', { 'attributes.system.duration': 0 }];
    const jobspec = { ...JOBSPEC, attributes: { system: { duration: 60 } } };
    expect(last([], { jobspec }).time_limit_s).toBe(60);
    expect(last([...PENDING, unlimited], { jobspec }).time_limit_s).toBeNull();
  });

  it('invalidate: the job never existed', () => {
    const j = last([['dependency-add', { description: 'after-success=1' }], ['invalidate']]);
    expect(j).toMatchObject({ is_deleted: 1, held: false, result: '', exit_code: null, t_inactive: 102 });
  });

  it('unknown events only move last_seq / last_event; stale and orphan events are ignored', () => {
    const events = job([...PENDING, ['shiny-new-event', { x: 1 }]]);
    const [before, after] = rows(events).slice(-2) as [JobRow, JobRow];
    const bookkeeping = { last_seq: 0, last_event: '', last_event_ts: 0 };
    expect({ ...after, ...bookkeeping }).toEqual({ ...before, ...bookkeeping });
    expect(after).toMatchObject({ last_event: 'shiny-new-event', last_seq: 4 * SEQ_SLOT, last_event_ts: 104 });
    expect(evolveJob(after, events[2]!)).toBe(after); // seq not above last_seq
    expect(evolveJob(undefined, events[1]!)).toBeUndefined(); // no submit seen
  });

  it('reads counts, name, queue and time limit from the jobspec and R as job-list does', () => {
    const spec = (resources: unknown[], system: Obj = {}, tasks: unknown[] = JOBSPEC.tasks): Obj => ({
      ...JOBSPEC,
      resources,
      tasks,
      attributes: { system: { duration: 0, ...system } },
    });
    const slots = (count: number, cores: number, gpus = 0) => ({
      ...{ type: 'slot', count, label: 'task' },
      with: [{ type: 'core', count: cores }, ...(gpus ? [{ type: 'gpu', count: gpus }] : [])],
    });
    const nodes = (count: number, slot: Obj, exclusive = false) => ({ type: 'node', count, exclusive, with: [slot] });
    const task = (command: string[], count: Obj) => [{ command, slot: 'task', count }];

    // -N2 -n4 -c2 -g1, named, in a queue, with a time limit
    const system = { queue: 'gpu', duration: 3600, job: { name: 'train' } };
    expect(last([], { jobspec: spec([nodes(2, slots(2, 2, 1))], system) })).toMatchObject({
      ...{ ntasks: 4, ncores: 8, ngpus: 4, nnodes: 2 },
      ...{ name: 'train', queue: 'gpu', time_limit_s: 3600 },
    });
    // exclusive nodes: cores unknown until R, which also names the nodes
    const R = {
      version: 1,
      execution: {
        R_lite: [
          { rank: '0-1', children: { core: '0-3', gpu: '0' } },
          { rank: '5', children: { core: '0-1' } },
        ],
        nodelist: ['node[07-08]', 'gpu5'],
      },
    };
    const ex = rows(job([...PENDING, ['alloc']], { R, jobspec: spec([nodes(3, slots(1, 1), true)]) }));
    expect(ex[0]).toMatchObject({ ntasks: 3, ncores: 0, nnodes: 3 });
    expect(ex.at(-1)).toMatchObject({ ncores: 10, ngpus: 2, nnodes: 3, nodes: ['node07', 'node08', 'gpu5'] });
    // tasks.count.total, per-resource, and the command's basename as the name
    const total = spec([slots(4, 1)], {}, task(['/usr/bin/hostname'], { total: 7 }));
    expect(last([], { jobspec: total })).toMatchObject({ ntasks: 7, name: 'hostname' });
    const perNode = spec([nodes(2, slots(1, 4))], { shell: { options: { 'per-resource': { type: 'node', count: 3 } } } });
    expect(last([], { jobspec: perNode }).ntasks).toBe(6);
    const perCore = spec([slots(2, 4)], { shell: { options: { 'per-resource': { type: 'core' } } } });
    expect(last([], { jobspec: perCore })).toMatchObject({ ntasks: 8, ncores: 8 });
    // a command path ending in '/' is its own name
    expect(last([], { jobspec: spec([slots(1, 1)], {}, task(['bin/'], { per_slot: 1 })) }).name).toBe('bin/');
  });

  it('fluxReturnCode follows flux/job/info.py', () => {
    expect(fluxReturnCode(0, 'COMPLETED')).toBe(0);
    expect(fluxReturnCode(3 << 8, 'FAILED')).toBe(3);
    expect(fluxReturnCode(15, 'CANCELED')).toBe(-15);
    expect(fluxReturnCode(null, 'CANCELED')).toBe(-128);
    expect(fluxReturnCode(null, 'FAILED')).toBe(1);
    expect(fluxReturnCode(null, 'TIMEOUT')).toBeNull();
    expect(fluxReturnCode(null, '')).toBeNull();
    expect(fluxReturnCode(0x137f, 'FAILED')).toBeNull(); // stopped: neither exited nor signaled
  });
});
