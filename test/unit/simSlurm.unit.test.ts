/**
 * The simulator's Slurm flavour (scribe/sim/slurm.ts): its events pass the schemas the real Slurm
 * source's events pass, fold (projector/tables/jobs.ts) into jobs equal to the simulated
 * accounting record of every job, agree with the Flux flavour of the same seed job by job, are
 * the same for the same seed, and continue from a checkpoint without a gap or a duplicate.
 */
import { describe, expect, it } from 'vitest';
import { EnvelopeSchema } from '../../schemas/envelope/index.js';
import { parseSlurmEvent, SlurmRawSchema, unifiedSlurmResult } from '../../schemas/slurm/events.js';
import { parseSacctExitCode, parseSacctTime, SqueueJobSchema } from '../../schemas/slurm/squeue.js';
import { evolveJob, type JobRow } from '../../projector/tables/jobs.js';
import { expandHostlist } from '../../projector/tables/hostlist.js';
import { toEnvelope } from '../../scribe/envelope.js';
import { SACCT_FIELDS } from '../../scribe/slurm/poller.js';
import { createSimSource, groundTruth, simulate, SlurmSimulator, squeueJobOf, type SlurmSimJob } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { slurmFixture } from '../support/fixtures.js';

const OPTS = { seed: 11, maxJobs: 300, nodes: 8 } as const;
const SLURM = { ...OPTS, scheduler: 'slurm' as const };

function runAll(opts: object, onFinal?: (j: SlurmSimJob) => void): { events: SourceEvent[]; sim: SlurmSimulator } {
  const sim = new SlurmSimulator(opts);
  if (onFinal) sim.onFinal = (j) => onFinal(structuredClone(j));
  const events: SourceEvent[] = [];
  while (!sim.finished) for (const e of sim.nextBatch(512)) events.push(e);
  return { events, sim };
}

function fold(events: SourceEvent[], scheduler: 'flux' | 'slurm'): Map<string, JobRow> {
  const rows = new Map<string, JobRow>();
  for (const e of events) {
    const env = toEnvelope({ cluster: 'c', scheduler, scribe: { id: 't', version: '0' } }, e, e.ts);
    const next = evolveJob(rows.get(e.job_id), env);
    if (next) rows.set(e.job_id, next);
  }
  return rows;
}

const finals: SlurmSimJob[] = [];
const { events, sim } = runAll(SLURM, (j) => finals.push(j));
const rows = fold(events, 'slurm');

describe('the Slurm flavour', () => {
  it('emits a varied workload', () => {
    const names = new Set(events.map((e) => e.name));
    for (const n of ['submit', 'eligible', 'start', 'end', 'hold', 'release', 'dependency_never_satisfied']) expect(names, n).toContain(n);
    const states = new Set(finals.map((j) => j.state));
    for (const s of ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY']) expect(states, s).toContain(s);
    expect(finals.some((j) => j.aj !== 0), 'array jobs').toBe(true);
    expect(finals.some((j) => j.dep !== '' || j.acctReason === 'Dependency'), 'dependencies').toBe(true);
  });

  it('folds every job into the state, result, exit code and times accounting holds', () => {
    expect(finals.length).toBeGreaterThan(250);
    expect(rows.size).toBe(finals.length);
    for (const j of finals) {
      const row = rows.get(String(j.id));
      expect(row, `job ${j.id}`).toBeDefined();
      const ran = j.start > 0;
      // the batch script's ExitCode (a job killed while running: 0:0, its batch step 0:15)
      const exit = parseSacctExitCode(j.batchExit || j.exit)!;
      const oomMarker = exit.signal === 125;
      expect(
        {
          state: row!.state,
          result: row!.result,
          sched_state: row!.sched_state,
          exit_code: row!.exit_code,
          signal: row!.signal,
          oom: row!.oom,
          t_submit: row!.t_submit,
          t_eligible: row!.t_eligible,
          t_start: row!.t_start,
          t_end: row!.t_end,
          queue: row!.queue,
          user: row!.user,
          nodes: row!.nodes,
        },
        `job ${j.id}`,
      ).toEqual({
        state: unifiedSlurmResult(j.state),
        result: j.state,
        sched_state: j.state,
        exit_code: ran && exit.signal === 0 ? exit.exit_code : null,
        signal: ran && exit.signal !== 0 && !oomMarker ? exit.signal : null,
        oom: j.state === 'OUT_OF_MEMORY',
        t_submit: j.sub,
        t_eligible: j.elig || null,
        t_start: ran ? j.start : null,
        t_end: j.end,
        queue: j.part,
        user: j.user,
        nodes: ran ? expandHostlist(j.nodes) : [],
      });
    }
  });

  it('has totals equal to groundTruth', () => {
    const truth = groundTruth(SLURM);
    const tally = { COMPLETED: 0, FAILED: 0, CANCELED: 0, TIMEOUT: 0 };
    for (const r of rows.values()) tally[r.state === 'canceled' ? 'CANCELED' : (r.state.toUpperCase() as 'COMPLETED' | 'FAILED' | 'TIMEOUT')]++;
    expect(truth.jobs).toBe(rows.size);
    expect(truth.events).toBe(events.length);
    expect({ ...truth.results }).toEqual({ jobs: rows.size, ...tally, active: 0 });
    expect(sim.stats()).toEqual(truth);
  });

  it('agrees job by job with the Flux flavour of the same seed', () => {
    const fluxRows = fold([...simulate(OPTS)], 'flux');
    expect(fluxRows.size).toBe(finals.length);
    let compared = 0;
    for (const j of finals) {
      const f = fluxRows.get(j.flux)!;
      const s = rows.get(String(j.id))!;
      expect(f, `flux job of ${j.id}`).toBeDefined();
      expect(s.user).toBe(f.user);
      expect(s.queue).toBe(f.queue);
      expect(s.t_submit).toBe(Math.floor(f.t_submit));
      // kill_invalid_depend and the administrator cancel what Flux fails with an exception
      const doomed = j.acctReason === 'DependencyNeverSatisfied' || j.acctReason === 'PartitionNodeLimit';
      expect(s.state, `job ${j.id} (flux ${j.flux})`).toBe(doomed ? 'canceled' : f.state);
      if (doomed) expect(f.state).toBe('failed');
      // exit codes and signals as Flux saw them, but for OOM kills (sacct: 0:125, no signal), one rule for both
      if (j.state === 'FAILED') expect([s.exit_code, s.signal, s.signal_name], `job ${j.id}`).toEqual([f.exit_code, f.signal, f.signal_name]);
      if (j.state === 'OUT_OF_MEMORY') {
        expect([s.exit_code, s.signal, s.oom], `job ${j.id}`).toEqual([null, null, true]);
        // the workload's OOM deaths: SIGKILL, or a shell that exited 137 after one
        expect([[null, 9], [137, null]]).toContainEqual([f.exit_code, f.signal]);
      }
      if (f.signal !== null) expect(f.exit_code).toBeNull();
      if (s.t_start !== null) expect(s.t_start).toBeLessThanOrEqual(Math.floor(f.t_start!) + 1);
      compared++;
    }
    expect(compared).toBe(finals.length);
  });
});

describe('event shapes', () => {
  const realKeys = new Set(Object.keys((JSON.parse(slurmFixture('squeue-mixed.json')) as { jobs: object[] }).jobs[0]!));

  it('pass the schemas the Slurm source passes', () => {
    for (const e of events) {
      const p = parseSlurmEvent(e.name, e.context);
      expect(p.ok && p.known, `${e.name} ${JSON.stringify(e.context)}`).toBe(true);
      expect(SlurmRawSchema.safeParse(e.raw).success).toBe(true);
      expect(EnvelopeSchema.safeParse(toEnvelope({ cluster: 'slurmy', scheduler: 'slurm', scribe: { id: 't', version: '0' } }, e, e.ts)).success).toBe(true);
      const expected = ['submit', 'eligible', 'start', 'end'].includes(e.name) ? 'scheduler' : 'poll';
      expect(e.ts_source, e.name).toBe(expected);
    }
  });

  it('keep raw squeue records as Slurm 22.05 prints them and sacct lines with the poller columns', () => {
    let squeues = 0;
    let saccts = 0;
    const parsed = new Set<object>();
    for (const e of events) {
      const raw = e.raw as { squeue?: Record<string, unknown>; sacct?: Array<Record<string, string>> };
      if (raw.squeue && !parsed.has(raw.squeue)) {
        parsed.add(raw.squeue);
        squeues++;
        for (const k of Object.keys(raw.squeue)) expect(realKeys, k).toContain(k);
        expect(SqueueJobSchema.parse(raw.squeue)).toMatchObject(squeueJobOf(raw.squeue));
        expect(String(raw.squeue.job_id)).toBe(e.job_id);
      }
      for (const line of raw.sacct ?? []) {
        saccts++;
        expect(Object.keys(line).sort()).toEqual([...SACCT_FIELDS].sort());
        expect(parseSacctTime(line.Submit)).not.toBeNull();
        expect(parseSacctExitCode(line.ExitCode)).toBeDefined();
      }
    }
    expect(squeues).toBeGreaterThan(0);
    expect(saccts).toBeGreaterThan(0);
  });

  it('number jobs like Slurm: sequential ids, arrays named by their first task, nodes of the cluster', () => {
    const submits = events.filter((e) => e.name === 'submit');
    const ids = submits.map((e) => Number(e.job_id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    const arrays = new Map<number, number[]>();
    for (const e of submits) {
      const a = e.context.array_job_id as number | null;
      if (a === null) continue;
      (arrays.get(a) ?? arrays.set(a, []).get(a)!).push(e.context.array_task_id as number);
      if (e.context.array_task_id === 0) expect(Number(e.job_id)).toBe(a);
    }
    expect(arrays.size).toBeGreaterThan(0);
    for (const tasks of arrays.values()) expect(tasks).toEqual(tasks.map((_, i) => i));
    const nodeNames = new Set(Array.from({ length: OPTS.nodes }, (_, i) => `fluke${i}`));
    for (const e of events.filter((x) => x.name === 'start')) for (const n of expandHostlist(e.context.nodes as string)) expect(nodeNames).toContain(n);
    // per job: seq 0, 1, 2, ... in order, submit first, end last
    const seqs = new Map<string, number>();
    for (const e of events) {
      expect(e.seq, `${e.job_id} ${e.name}`).toBe(seqs.get(e.job_id) ?? 0);
      seqs.set(e.job_id, e.seq + 1);
      if (e.seq === 0) expect(e.name).toBe('submit');
    }
  });
});

describe('determinism and checkpoints', () => {
  it('gives the same events for the same seed, others for another', () => {
    expect(runAll(SLURM).events).toEqual(events);
    expect(runAll({ ...SLURM, seed: 12 }).events).not.toEqual(events);
  });

  it('continues from a checkpoint without a gap or a duplicate', () => {
    const a = new SlurmSimulator(SLURM);
    const out: SourceEvent[] = [];
    let restores = 0;
    let cur = a;
    while (!cur.finished) {
      for (const e of cur.nextBatch(97)) out.push(e);
      if (out.length > restores * 400 + 400) {
        cur = SlurmSimulator.restore(cur.checkpoint());
        restores++;
      }
    }
    expect(restores).toBeGreaterThan(2);
    expect(out).toEqual(events);
    const keys = new Set(out.map((e) => `${e.job_id}:${e.seq}`));
    expect(keys.size).toBe(out.length);
  });

  it('resumes the live source from the checkpoint the scribe saved', async () => {
    const opts = { ...SLURM, maxJobs: 60, speed: 1e7 };
    const full = runAll(opts).events;
    const got: SourceEvent[] = [];
    let saved: string | undefined;
    for (let run = 0; run < 20 && got.length < full.length; run++) {
      const ac = new AbortController();
      const source = createSimSource(opts);
      expect(source.scheduler).toBe('slurm');
      let batches = 0;
      await source.run({
        ...(saved !== undefined && { checkpoint: saved }),
        signal: ac.signal,
        emit: async (batch, cp) => {
          got.push(...batch);
          saved = cp;
          if (++batches === 2) ac.abort(); // the scribe stops after two batches
        },
      });
    }
    expect(got).toEqual(full);
  });
});

describe('actions', () => {
  function midway(): { s: SlurmSimulator; seen: SourceEvent[] } {
    const s = new SlurmSimulator({ ...SLURM, maxJobs: 2000, submitRate: 6 });
    const seen = s.advanceTo(SLURM_EPOCH + 3600);
    return { s, seen };
  }
  const SLURM_EPOCH = new SlurmSimulator(SLURM).options.epoch;
  const listed = (s: SlurmSimulator, state: string) =>
    [...Array(5000).keys()].map((i) => 1001 + i).filter((id) => (s as unknown as { byId: Map<number, SlurmSimJob> }).byId.get(id)?.state === state && s.owner(String(id)).ok);

  it('cancels, holds, releases, re-prioritizes and signals, answering like the Slurm source', () => {
    const { s } = midway();
    const pending = listed(s, 'PENDING');
    const running = listed(s, 'RUNNING');
    expect(pending.length).toBeGreaterThan(2);
    expect(running.length).toBeGreaterThan(1);
    const [p1, p2, p3] = pending.map(String) as [string, string, string];
    const [r1, r2] = running.map(String) as [string, string];
    expect(s.act({ action: 'cancel', job_id: p1 })).toEqual({ ok: true, job_id: p1, detail: { argv: ['scancel', '--verbose', p1] } });
    expect(s.act({ action: 'hold', job_id: p2 })).toEqual({ ok: true, job_id: p2, detail: { argv: ['scontrol', 'hold', p2] } });
    expect(s.act({ action: 'urgency', job_id: p3, args: { priority: 5000 } })).toMatchObject({ ok: true, job_id: p3 });
    expect(s.act({ action: 'cancel', job_id: r1 })).toMatchObject({ ok: true, job_id: r1 });
    expect(s.act({ action: 'signal', job_id: r2, args: { signal: 'KILL' } })).toEqual({
      ok: true,
      job_id: r2,
      detail: { argv: ['scancel', '--verbose', '--full', '--signal=KILL', r2] },
    });
    const after = s.advanceTo(s.time + 120);
    const of = (id: string, name: string) => after.filter((e) => e.job_id === id && e.name === name);
    expect(of(p1, 'end')[0]?.context).toMatchObject({ state: 'CANCELLED', start_time: null });
    expect(of(p2, 'hold')[0]?.context).toMatchObject({ by: 'admin', reason: 'JobHeldAdmin' });
    expect(of(p3, 'priority')[0]?.context).toMatchObject({ priority: 5000 });
    expect(of(r1, 'end')[0]?.context).toMatchObject({ state: 'CANCELLED', wait_status: 15 });
    expect(of(r2, 'end')[0]?.context).toMatchObject({ state: 'FAILED', exit_code: 0, signal: 9 });
    expect(s.act({ action: 'release', job_id: p2 })).toMatchObject({ ok: true });
    const later = s.advanceTo(s.time + 60);
    expect(later.filter((e) => e.job_id === p2 && e.name === 'release')).toHaveLength(1);
    // a finished job: Slurm's answers while squeue lists it, and after MinJobAge
    expect(s.act({ action: 'cancel', job_id: p1 })).toMatchObject({ ok: false, code: 'invalid' });
    s.advanceTo(s.time + 400);
    expect(s.act({ action: 'cancel', job_id: p1 })).toMatchObject({ ok: false, code: 'no_such_job' });
  });

  it('refuses unknown jobs, other users and bad arguments with the Slurm source codes', () => {
    const { s } = midway();
    const p = String(listed(s, 'PENDING')[0]!);
    const owner = (s.owner(p) as { ok: true; user: string }).user;
    const other = s.cluster.users.find((u) => u.name !== owner)!.name;
    expect(s.act({ action: 'cancel', job_id: '999999' })).toMatchObject({ ok: false, code: 'no_such_job' });
    const r = s.act({ action: 'cancel', job_id: p, user: other });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(s.act({ action: 'urgency', job_id: p, user: owner, args: { priority: 9 } })).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(s.act({ action: 'signal', job_id: p })).toMatchObject({ ok: false, code: 'invalid' });
    expect(s.act({ action: 'cancel', job_id: 'abc' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(s.act({ action: 'cancel', job_id: p, user: owner })).toMatchObject({ ok: true, job_id: p });
  });
});
