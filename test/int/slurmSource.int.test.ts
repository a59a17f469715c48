/**
 * The Slurm source against a REAL Slurm 22.05 (deploy/slurm/start-slurm.sh): a varied workload
 * submitted through `act` (success, non-zero exit, cancel while pending and while running, a
 * time-limit kill, user hold + release, admin hold + time-limit update + release, afterok
 * dependencies met and never met, an array, srun steps, a signal), polled every second into
 * memory with a restart from the checkpoint in the middle, folded with evolveSlurmJob and
 * compared with what sacct reports. Then the same jobs rebuilt by a fresh source from sacct alone.
 *
 * Skipped loudly when no cluster answers (started here when possible, as root, outside CI);
 * fails under CI=true.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlurmSource } from '../../scribe/slurm/source.js';
import { type SlurmActionRequest } from '../../scribe/slurm/actions.js';
import { runQuery, spawnRunner, type CommandRunner } from '../../scribe/slurm/cliRunner.js';
import { sacctLookupArgv } from '../../scribe/slurm/poller.js';
import { parseSacctParsable, parseSacctTime, type SacctJob } from '../../schemas/slurm/squeue.js';
import { unifiedSlurmResult } from '../../schemas/slurm/events.js';
import type { SourceEvent } from '../../scribe/source.js';
import type { JobRow } from '../../projector/tables/jobs.js';
import { prerequisite, skipLoudly } from '../support/prereq.js';
import { collector, expectationFromSacct, foldSlurm, namesByJob, releaseSlurm, requireSlurm, rowExpectation, seqProblems } from '../support/slurm.js';

let env: Record<string, string> | undefined;
beforeAll(async () => {
  env = await requireSlurm();
}, 180_000);
afterAll(releaseSlurm, 60_000);

const logs: string[] = [];
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A running source collecting into memory. */
function startSource(checkpoint?: string, run?: CommandRunner, extra: Parameters<typeof createSlurmSource>[0] = {}) {
  const out = collector();
  const ac = new AbortController();
  let polls = 0;
  const source = createSlurmSource({
    run: run ?? spawnRunner({ env }),
    pollIntervalMs: 1000,
    sacctIntervalS: 5,
    endGraceS: 30,
    log: (m) => logs.push(m),
    onPoll: () => void polls++,
    ...extra,
  });
  const done = source.run({ checkpoint, signal: ac.signal, emit: out.emit });
  return {
    source,
    out,
    get polls() {
      return polls;
    },
    async stop() {
      ac.abort();
      await done;
    },
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

async function sacctOf(ids: string[]): Promise<Map<string, SacctJob>> {
  return parseSacctParsable(await runQuery(spawnRunner({ env }), sacctLookupArgv(ids), { env: { TZ: 'UTC' }, timeoutMs: 30_000 }));
}

/** `batchKnown`: the source saw the .batch steps (sacct), not only the job lines (a job completion log). */
function compareWithSacct(rows: Map<string, JobRow>, sacct: Map<string, SacctJob>, ids: string[], batchKnown = true): void {
  for (const id of ids) {
    const line = sacct.get(id)?.job;
    expect(line, `sacct has job ${id}`).toBeDefined();
    const row = rows.get(id);
    expect(row, `the fold has job ${id}`).toBeDefined();
    expect(rowExpectation(row!), `job ${id} (${line!.JobName})`).toEqual(expectationFromSacct(line!, unifiedSlurmResult, batchKnown ? sacct.get(id)?.batch : undefined));
  }
}

// shared by the two tests: the workload's job ids, and when it began
const W: Record<string, string> = {};
let arrayTasks: string[] = [];
let t0 = 0;

describe('Slurm source on a real Slurm', () => {
  it('derives every job event of a varied workload; the fold equals sacct; a restart mid-way emits nothing twice', async ({ skip }) => {
    if (!env) skip();
    t0 = Date.now() / 1000;
    const dir = mkdtempSync(join(tmpdir(), 'jobscribe-slurm-'));
    dirs.push(dir);
    const A = startSource();
    const act = (req: SlurmActionRequest) => A.source.act(req);
    const submit = async (args: Record<string, unknown>) => {
      // as root, the scribe's own user (this suite's jobs are root's; another user's submit: mcpActions.slurm)
      const r = await act({ action: 'submit', args: { workdir: dir, ...args }, user: 'root' });
      expect(r, JSON.stringify(args)).toMatchObject({ ok: true });
      return (r as { job_id: string }).job_id;
    };
    // the time-limit job first: Slurm checks limits every 30 s, so it ends 60-90 s after it starts
    W.timeout = await submit({ name: 'timeout', command: 'sleep 300', time_limit_s: 60 });
    W.cancelRunning = await submit({ name: 'cancel-running', command: 'sleep 300' });
    W.ok = await submit({ name: 'ok', command: 'echo ok' });
    W.fail = await submit({ name: 'fail', command: 'echo failing >&2; exit 3' });
    W.heldUser = await submit({ name: 'held-user', command: 'sleep 1', hold: true });
    W.holdRelease = await submit({ name: 'hold-release', command: 'sleep 1', extra_args: ['--begin=now+3600'] });
    W.cancelPending = await submit({ name: 'cancel-pending', command: 'true', hold: true });
    W.depOk = await submit({ name: 'dep-afterok', command: 'echo dep', dependency: `afterok:${W.ok}` });
    W.depNever = await submit({ name: 'dep-never', command: 'true', dependency: `afterok:${W.fail}` });
    W.array = await submit({ name: 'array', command: 'sleep 1; exit $(( SLURM_ARRAY_TASK_ID == 3 ? 5 : 0 ))', array: '1-3' });
    W.steps = await submit({ name: 'steps', script: '#!/bin/sh\nsrun hostname\nsrun sh -c "exit 7"\necho after-steps\n' });
    W.signal = await submit({ name: 'signal', command: 'trap "exit 42" USR1; touch trap-set; sleep 120 & wait' });

    const rows = () => foldSlurm(A.out.events);
    const row = (id: string) => rows().get(id);

    // ---- phase 1: scribe A
    await waitFor('cancel-running to run', () => row(W.cancelRunning!)?.state === 'running');
    expect(await act({ action: 'cancel', job_id: W.cancelRunning })).toMatchObject({ ok: true });
    await waitFor('cancel-pending to be seen held', () => row(W.cancelPending!)?.held === true);
    expect(await act({ action: 'cancel', job_id: W.cancelPending })).toMatchObject({ ok: true });
    await waitFor('hold-release to be seen', () => row(W.holdRelease!) !== undefined);
    expect(await act({ action: 'hold', job_id: W.holdRelease })).toMatchObject({ ok: true });
    await waitFor('hold-release to be seen held', () => row(W.holdRelease!)?.held === true);
    expect(await act({ action: 'urgency', job_id: W.holdRelease, args: { priority: 10 } })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await act({ action: 'time_limit', job_id: W.holdRelease, args: { time_limit_s: 120 } })).toMatchObject({ ok: true });
    await waitFor('the time-limit update', () => row(W.holdRelease!)?.time_limit_s === 120);
    // refusals, with Slurm's own words
    expect(await act({ action: 'cancel', job_id: '99999999' })).toMatchObject({ ok: false, code: 'no_such_job', message: expect.stringMatching(/Invalid job id/) });
    expect(await act({ action: 'hold', job_id: W.heldUser, user: 'nobody' })).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(await act({ action: 'cancel', job_id: W.signal, user: 'nobody' })).toMatchObject({ ok: false, code: 'not_permitted' });
    await waitFor('dep-never to be seen never satisfiable', () => row(W.depNever!)?.exception_type === 'dependency', 90_000);
    const seenByA = A.out.events.length;
    await A.stop();
    const checkpoint = A.out.lastCheckpoint!;

    // ---- while no scribe runs: release both holds, let the cluster move on
    expect(await act({ action: 'release', job_id: W.heldUser })).toMatchObject({ ok: true });
    expect(await act({ action: 'release', job_id: W.holdRelease })).toMatchObject({ ok: true });
    await runQuery(spawnRunner({ env }), ['scontrol', 'update', `JobId=${W.holdRelease}`, 'StartTime=now']);
    await sleep(3000);

    // ---- phase 2: scribe B, from A's checkpoint
    const B = startSource(checkpoint);
    const all = (): SourceEvent[] => [...A.out.events, ...B.out.events];
    const rowsAB = () => foldSlurm(all());
    await waitFor('signal to run', () => rowsAB().get(W.signal!)?.state === 'running', 90_000);
    await waitFor('signal to set its trap', () => existsSync(join(dir, 'trap-set')));
    expect(await B.source.act({ action: 'signal', job_id: W.signal, args: { signal: 'USR1' } })).toMatchObject({ ok: true });
    expect(await B.source.act({ action: 'cancel', job_id: W.depNever })).toMatchObject({ ok: true });
    const tasksOf = () => all().filter((e) => e.name === 'submit' && String(e.context.array_job_id) === W.array).map((e) => e.job_id);
    await waitFor(
      'every job of the workload to end',
      () => {
        const r = rowsAB();
        const ids = [...Object.values(W), ...tasksOf()];
        return tasksOf().length === 3 && ids.every((id) => r.get(id)?.result);
      },
      150_000,
    );
    await B.stop();
    arrayTasks = [...new Set(tasksOf())].sort();
    expect(arrayTasks).toContain(W.array);

    // ---- each (job, seq) once, seqs 0,1,2,... per job across both scribes; B added to A
    const events = all();
    expect(seqProblems(events)).toEqual([]);
    expect(new Set(events.map((e) => `${e.job_id}:${e.seq}`)).size).toBe(events.length);
    expect(seenByA).toBeGreaterThan(0);
    expect(B.out.events.length).toBeGreaterThan(0);
    for (const id of [...Object.values(W), ...arrayTasks]) {
      const ts = events.filter((e) => e.job_id === id).map((e) => e.ts);
      expect(ts, `job ${id}: ts never go backwards`).toEqual([...ts].sort((a, b) => a - b));
    }

    // ---- the events each job went through
    const names = namesByJob(events);
    const inOrder = (id: string, expected: string[]) => {
      const got = names[id] ?? [];
      let i = 0;
      for (const n of got) if (n === expected[i]) i++;
      expect(i, `job ${id}: [${got.join(', ')}] contains [${expected.join(', ')}] in order`).toBe(expected.length);
      expect(got.filter((n) => n === 'end'), `job ${id} ends once`).toHaveLength(1);
    };
    for (const id of [W.ok, W.fail, W.timeout, W.cancelRunning, W.steps, W.signal, W.depOk, ...arrayTasks]) inOrder(id, ['submit', 'start', 'end']);
    inOrder(W.cancelPending, ['submit', 'hold', 'end']);
    inOrder(W.heldUser, ['submit', 'hold', 'release', 'eligible', 'start', 'end']);
    inOrder(W.holdRelease, ['submit', 'hold', 'update', 'release', 'eligible', 'start', 'end']);
    inOrder(W.depNever, ['submit', 'dependency_never_satisfied', 'end']);
    expect(names[W.cancelPending]).not.toContain('start');
    expect(names[W.depNever]).not.toContain('start');
    const ev = (id: string, name: string) => events.find((e) => e.job_id === id && e.name === name)!;
    expect(ev(W.heldUser, 'hold').context).toMatchObject({ by: 'user' });
    expect(ev(W.holdRelease, 'hold').context).toMatchObject({ by: 'admin' });
    expect(ev(W.holdRelease, 'update').context).toMatchObject({ time_limit_s: 120 });
    for (const id of [...Object.values(W), ...arrayTasks]) expect(ev(id, 'end').context.source, `job ${id}: the end comes from sacct`).toBe('sacct');

    // ---- the fold equals sacct: state, result, exit code, submit/eligible/start/end times
    const ids = [...Object.values(W), ...arrayTasks];
    const sacct = await sacctOf(ids);
    const folded = foldSlurm(events);
    compareWithSacct(folded, sacct, ids);
    // and the times the polls read from squeue are sacct's too
    for (const id of ids) {
      const line = sacct.get(id)!.job;
      const start = events.find((e) => e.job_id === id && e.name === 'start');
      if (start) expect(start.ts, `job ${id}: start`).toBe(parseSacctTime(line.Start));
      expect(ev(id, 'submit').ts, `job ${id}: submit`).toBe(parseSacctTime(line.Submit));
    }
    // spelled out
    const r = (id: string) => folded.get(id)!;
    expect(r(W.ok)).toMatchObject({ state: 'completed', exit_code: 0, success: true, queue: 'debug', name: 'ok', user: 'root' });
    expect(r(W.fail)).toMatchObject({ state: 'failed', result: 'FAILED', exit_code: 3, waitstatus: 768 });
    expect(r(W.timeout)).toMatchObject({ state: 'timeout', result: 'TIMEOUT', time_limit_s: 60, exception_type: 'timeout' });
    expect(r(W.cancelRunning)).toMatchObject({ state: 'canceled', result: 'CANCELLED', exception_type: 'cancel' });
    expect(r(W.cancelPending)).toMatchObject({ state: 'canceled', t_start: null, exit_code: null });
    expect(r(W.depNever)).toMatchObject({ state: 'canceled', dependencies: [`afterok:${W.fail}`], t_start: null });
    expect(r(W.depOk)).toMatchObject({ state: 'completed', dependencies: [`afterok:${W.ok}`] });
    expect(r(W.signal)).toMatchObject({ state: 'failed', exit_code: 42 });
    expect(r(W.steps)).toMatchObject({ state: 'completed', exit_code: 0 });
    expect(ev(W.steps, 'end').context).toMatchObject({ derived_exit_code: 7 });
    expect(arrayTasks.map((id) => r(id).exit_code).sort()).toEqual([0, 0, 5]);
    expect(r(W.heldUser)).toMatchObject({ state: 'completed', held: false });
  }, 300_000);

  it('a fresh source rebuilds the same jobs from sacct alone when squeue no longer lists them', async ({ skip }) => {
    if (!env) skip();
    if (!W.ok) skipLoudly(skip, 'a Slurm test that reads the first test\'s jobs', 'the first test submitted none (it failed)');
    const real = spawnRunner({ env });
    // squeue that has forgotten every job (as after MinJobAge), sacct as it is
    const forgetful: CommandRunner = (argv, opts) =>
      argv[0] === 'squeue' ? Promise.resolve({ code: 0, stdout: '{"meta":{},"errors":[],"jobs":[]}', stderr: '', timedOut: false }) : real(argv, opts);
    const C = startSource(undefined, forgetful, { backfillS: Date.now() / 1000 - t0 + 30 });
    await waitFor('the first poll', () => C.polls > 0, 30_000);
    await C.stop();
    const ids = [...Object.values(W), ...arrayTasks];
    const events = C.out.events.filter((e) => ids.includes(e.job_id));
    expect(seqProblems(events)).toEqual([]);
    const names = namesByJob(events);
    for (const id of ids) expect(names[id]?.[0], `job ${id}`).toBe('submit');
    expect(names[W.ok]).toEqual(['submit', 'eligible', 'start', 'end']);
    expect(names[W.cancelPending!]).toEqual(['submit', 'end']);
    compareWithSacct(foldSlurm(events), await sacctOf(ids), ids);
  }, 60_000);

  it('without accounting, the job completion log gives every job the end sacct reports', async ({ skip }) => {
    if (!env) skip();
    if (!W.ok) skipLoudly(skip, 'a Slurm test that reads the first test\'s jobs', 'the first test submitted none (it failed)');
    const jobcompFile = env!.SLURM_CI_JOBCOMP_FILE;
    expect(jobcompFile, 'start-slurm.sh exports SLURM_CI_JOBCOMP_FILE').toBeTruthy();
    const real = spawnRunner({ env });
    // a cluster without slurmdbd: sacct says so; squeue has forgotten every job
    const noAccounting: CommandRunner = (argv, opts) =>
      argv[0] === 'squeue'
        ? Promise.resolve({ code: 0, stdout: '{"meta":{},"errors":[],"jobs":[]}', stderr: '', timedOut: false })
        : argv[0] === 'sacct'
          ? Promise.resolve({ code: 1, stdout: '', stderr: 'sacct: error: Slurm accounting storage is disabled', timedOut: false })
          : real(argv, opts);
    const C = startSource(undefined, noAccounting, { backfillS: Date.now() / 1000 - t0 + 30, jobcompFile });
    await waitFor('the first poll', () => C.polls > 0, 30_000);
    await C.stop();
    const ids = [...new Set([...Object.values(W), ...arrayTasks])]; // the array's own id is one of its tasks
    const events = C.out.events.filter((e) => ids.includes(e.job_id));
    expect(seqProblems(events)).toEqual([]);
    const ends = events.filter((e) => e.name === 'end');
    expect(ends.map((e) => e.job_id).sort()).toEqual([...ids].sort());
    expect(new Set(ends.map((e) => e.context.source))).toEqual(new Set(['jobcomp']));
    compareWithSacct(foldSlurm(events), await sacctOf(ids), ids, false);
  }, 60_000);
});

describe('Slurm source through slurmrestd', () => {
  it('reads the job list and runs actions through the REST API; the fold equals sacct', async ({ skip }) => {
    if (!env) skip();
    const ok = await prerequisite('slurmrestd', async () =>
      env!.SLURMRESTD_URL && env!.SLURMRESTD_TOKEN ? undefined : 'no SLURMRESTD_URL / SLURMRESTD_TOKEN in the cluster environment (SLURM_CI_RESTD=0?)',
    );
    if (!ok) skip();
    const dir = mkdtempSync(join(tmpdir(), 'jobscribe-slurmrest-'));
    chmodSync(dir, 0o1777); // the jobs run as nobody
    dirs.push(dir);
    const rest = { url: env!.SLURMRESTD_URL!, user: env!.SLURMRESTD_USER ?? 'root', token: env!.SLURMRESTD_TOKEN!, submitDir: dir };
    const S = startSource(undefined, undefined, { rest });
    const rows = () => foldSlurm(S.out.events);
    // submitted as nobody with root's token (X-SLURM-USER-NAME: nobody); held, released and signaled by an admin (root)
    const held = await S.source.act({ action: 'submit', args: { name: 'rest-held', script: '#!/bin/sh\nsleep 1\n', hold: true }, user: 'nobody' });
    expect(held).toMatchObject({ ok: true });
    const sig = await S.source.act({ action: 'submit', args: { name: 'rest-signal', script: '#!/bin/sh\ntrap "exit 42" USR1\ntouch rest-trap-set\nsleep 120 & wait\n' }, user: 'nobody' });
    expect(sig).toMatchObject({ ok: true });
    const H = (held as { job_id: string }).job_id;
    const G = (sig as { job_id: string }).job_id;
    await waitFor('the held job to be seen held', () => rows().get(H)?.held === true);
    expect(rows().get(H)?.user).toBe('nobody');
    expect(await S.source.act({ action: 'release', job_id: H })).toEqual({ ok: true, job_id: H });
    await waitFor('the signal job to set its trap', () => rows().get(G)?.state === 'running' && existsSync(join(dir, 'rest-trap-set')), 60_000);
    expect(await S.source.act({ action: 'signal', job_id: G, args: { signal: 'USR1' } })).toEqual({ ok: true, job_id: G });
    expect(await S.source.act({ action: 'hold', job_id: '99999999' })).toMatchObject({ ok: false, code: 'no_such_job' });
    await waitFor('both to end', () => [H, G].every((id) => rows().get(id)?.result), 60_000);
    await S.stop();
    expect(namesByJob(S.out.events)[H]).toEqual(['submit', 'hold', 'release', 'eligible', 'start', 'end']);
    expect(seqProblems(S.out.events)).toEqual([]);
    compareWithSacct(rows(), await sacctOf([H, G]), [H, G]);
    expect(rows().get(G)).toMatchObject({ state: 'failed', exit_code: 42 });
  }, 120_000);
});

describe('the command runner', () => {
  it('kills a command at its timeout and says so; a missing CLI is a non-retriable error', async () => {
    const run = spawnRunner();
    const t = Date.now();
    expect(await run(['sleep', '5'], { timeoutMs: 200 })).toMatchObject({ code: null, timedOut: true });
    expect(Date.now() - t).toBeLessThan(3000);
    expect(await run(['sh', '-c', 'cat; echo err >&2; exit 3'], { input: 'in' })).toEqual({ code: 3, stdout: 'in', stderr: 'err\n', timedOut: false });
    await expect(run(['no-such-slurm-cli'])).rejects.toMatchObject({ code: 'slurm_cli_missing', retriable: false });
  });

  it("a bare environment: a command run for a user gets PATH and SLURM_CONF, none of the scribe's secrets", async () => {
    const run = spawnRunner({ env: { SLURM_CONF: '/etc/slurm/x.conf', SLURM_JWT: 'scribe-token', JOBSCRIBE_KAFKA_PASSWORD: 'scribe-pw' } });
    const names = (out: string) => out.split('\n').filter(Boolean).map((l) => l.split('=')[0]).sort();
    const bare = await run(['env'], { bareEnv: true });
    expect(names(bare.stdout)).toEqual(['PATH', 'SLURM_CONF', ...['LANG', 'LC_ALL', 'LC_CTYPE', 'TZ'].filter((k) => process.env[k] !== undefined)].sort());
    expect(bare.stdout).toContain('SLURM_CONF=/etc/slurm/x.conf');
    expect(bare.stdout).not.toMatch(/scribe-token|scribe-pw/);
    expect((await run(['env'])).stdout).toContain('SLURM_JWT=scribe-token');
  });

  it('a missing runuser is named as such', async () => {
    const run = spawnRunner({ env: { PATH: '/nonexistent' } });
    await expect(run(['runuser', '-u', 'nobody', '--', 'true'])).rejects.toMatchObject({ code: 'slurm_cli_missing', message: expect.stringContaining("util-linux's runuser") });
  });
});

/** Keeps the source's log visible when something failed. */
afterAll(() => {
  if (logs.length) process.stderr.write(`slurm source log:\n${logs.join('\n')}\n`);
});
