/**
 * The slurmrestd client on its real answers (test/fixtures/slurm/rest-*.json, and answers
 * captured from the slurmrestd of deploy/slurm/start-slurm.sh): requests, errors read from the
 * `errors` array whatever the HTTP status, and the source reading its job list through it.
 */
import { describe, expect, it } from 'vitest';
import { createSlurmRest } from '../../scribe/slurm/rest.js';
import { createSlurmSource } from '../../scribe/slurm/source.js';
import { parseSqueueJson } from '../../schemas/slurm/squeue.js';
import { slurmFixture } from '../support/fixtures.js';
import { FixtureSlurm, collector, namesByJob } from '../support/slurm.js';

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

/** A fetch answering `METHOD path` with [status, body]. */
function fakeFetch(answers: Record<string, [number, string]>) {
  const calls: Call[] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : input.toString();
    const method = init?.method ?? 'GET';
    calls.push({ method, url, headers: init?.headers as Record<string, string>, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined });
    const key = `${method} ${url.replace(/^http:\/\/restd\/slurm\/v0\.0\.38/, '')}`;
    const [status, body] = answers[key] ?? [404, 'Not Found'];
    return new Response(body, { status });
  }) as typeof fetch;
  return { f, calls };
}

const opts = (f: typeof fetch) => ({ url: 'http://restd/', user: 'root', token: 'tok', fetch: f });
const HELD_SUBMIT = '{"meta":{},"errors":[{"error_code":2042,"error":"Job is in held state, pending scheduler release"}],"job_id":70,"step_id":"BATCH","job_submit_user_msg":""}';

describe('slurmrestd client', () => {
  it('GET /jobs is the squeue --json document; both auth headers are sent', async () => {
    const { f, calls } = fakeFetch({ 'GET /jobs': [200, slurmFixture('rest-get-jobs.json')] });
    const text = await createSlurmRest(opts(f)).jobsJson();
    expect(parseSqueueJson(text).jobs).toEqual(parseSqueueJson(slurmFixture('squeue-mixed.json')).jobs);
    expect(calls[0]).toMatchObject({ method: 'GET', url: 'http://restd/slurm/v0.0.38/jobs', headers: { 'X-SLURM-USER-NAME': 'root', 'X-SLURM-USER-TOKEN': 'tok' } });
  });

  it('a refused token is not retried; an error body is', async () => {
    const { f } = fakeFetch({ 'GET /jobs': [401, 'Authentication failure'] });
    await expect(createSlurmRest(opts(f)).jobsJson()).rejects.toMatchObject({ code: 'slurm_rest_auth', retriable: false });
    const g = fakeFetch({ 'GET /jobs': [500, slurmFixture('rest-error-get-unknown-job.json')] });
    await expect(createSlurmRest(opts(g.f)).jobsJson()).rejects.toMatchObject({ code: 'slurm_rest', retriable: true });
  });

  it('actions: requests, and Slurm errors as ActionResults', async () => {
    const { f, calls } = fakeFetch({
      'POST /job/11': [200, slurmFixture('rest-post-job-update-hold.json')],
      'DELETE /job/11': [200, slurmFixture('rest-delete-job.json')],
      'DELETE /job/999999': [500, slurmFixture('rest-error-delete-unknown-job.json')],
      'DELETE /job/11?signal=USR1': [200, slurmFixture('rest-delete-job.json')],
      'POST /job/submit': [200, slurmFixture('rest-post-job-submit.json')],
    });
    const rest = createSlurmRest(opts(f));
    expect(await rest.act({ action: 'hold', job_id: '11' })).toEqual({ ok: true, job_id: '11' });
    expect(await rest.act({ action: 'release', job_id: '11' })).toEqual({ ok: true, job_id: '11' });
    expect(await rest.act({ action: 'urgency', job_id: '11', args: { priority: 5, nice: 1 } })).toMatchObject({ ok: true });
    expect(await rest.act({ action: 'time_limit', job_id: '11', args: { time_limit_s: 61 } })).toMatchObject({ ok: true });
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.body)).toEqual([{ hold: true }, { hold: false }, { priority: 5, nice: 1 }, { time_limit: 2 }]);
    expect(await rest.act({ action: 'cancel', job_id: '11' })).toEqual({ ok: true, job_id: '11' });
    expect(await rest.act({ action: 'signal', job_id: '11', args: { signal: 'SIGUSR1' } })).toEqual({ ok: true, job_id: '11' });
    expect(await rest.act({ action: 'cancel', job_id: '999999' })).toEqual({ ok: false, code: 'no_such_job', message: 'cancel job 999999: Invalid job id specified' });
    expect(await rest.act({ action: 'submit', args: { script: '#!/bin/sh\ntrue\n', name: 'r', time_limit_s: 300 }, user: 'root' })).toMatchObject({ ok: true, job_id: '12' });
    expect(calls.at(-1)!.body).toMatchObject({ job: { name: 'r', time_limit: 5, environment: { PATH: expect.any(String) } }, script: '#!/bin/sh\ntrue\n' });
    expect(await rest.act({ action: 'submit', args: { command: 'true' }, user: 'root' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await rest.act({ action: 'cancel', job_id: 'x' })).toMatchObject({ ok: false, code: 'invalid' });
  });

  it('a submit that answers a job id AND an error (hold) succeeded; a bad submit is invalid', async () => {
    const held = fakeFetch({ 'POST /job/submit': [200, HELD_SUBMIT] });
    expect(await createSlurmRest(opts(held.f)).act({ action: 'submit', args: { script: '#!/bin/sh\n', hold: true }, user: 'root' })).toEqual({
      ok: true,
      job_id: '70',
      detail: { warnings: ['Job is in held state, pending scheduler release'] },
    });
    const bad = fakeFetch({ 'POST /job/submit': [400, slurmFixture('rest-error-submit-bad.json')] });
    expect(await createSlurmRest(opts(bad.f)).act({ action: 'submit', args: { script: '#!/bin/sh\n' }, user: 'root' })).toEqual({
      ok: false,
      code: 'invalid',
      message: 'submit: environment must be set; Failure during parsing',
    });
  });

  it('acts as the requesting user (X-SLURM-USER-NAME); a submit without one is refused unsent', async () => {
    const { f, calls } = fakeFetch({ 'POST /job/submit': [200, slurmFixture('rest-post-job-submit.json')], 'DELETE /job/11': [200, slurmFixture('rest-delete-job.json')] });
    const rest = createSlurmRest(opts(f));
    expect(await rest.act({ action: 'submit', args: { script: '#!/bin/sh\nid\n' }, user: 'alice' })).toMatchObject({ ok: true, job_id: '12' });
    expect(await rest.act({ action: 'cancel', job_id: '11', user: 'alice' })).toMatchObject({ ok: true });
    expect(await rest.act({ action: 'cancel', job_id: '11' })).toMatchObject({ ok: true }); // an admin: the token's own user
    expect(calls.map((c) => [c.method, c.headers['X-SLURM-USER-NAME']])).toEqual([['POST', 'alice'], ['DELETE', 'alice'], ['DELETE', 'root']]);
    expect(await rest.act({ action: 'submit', args: { script: '#!/bin/sh\nid\n' } })).toEqual({
      ok: false,
      code: 'not_permitted',
      message: 'submit: no scheduler user to submit as; the scribe submits only as the requesting user, never as itself',
    });
    expect(await rest.act({ action: 'cancel', job_id: '11', user: '-x' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(calls).toHaveLength(3);
  });

  it("a token that may not act as another user: slurmctld drops the request, and the answer says what the token needs", async () => {
    // captured: a token of nobody sent with X-SLURM-USER-NAME: root to the slurmrestd of start-slurm.sh
    const dropped = '{"meta":{},"errors":[{"error_code":5005,"error":"Zero Bytes were transmitted or received"}]}';
    const { f } = fakeFetch({ 'POST /job/submit': [200, dropped] });
    const rest = createSlurmRest({ ...opts(f), user: 'nobody' });
    expect(await rest.act({ action: 'submit', args: { script: '#!/bin/sh\nid\n' }, user: 'alice' })).toEqual({
      ok: false,
      code: 'not_permitted',
      message: "submit: Zero Bytes were transmitted or received (acting as alice needs a slurmrestd token of SlurmUser or root)",
    });
  });

  it('the source reads its job list through slurmrestd when given `rest`', async () => {
    const { f } = fakeFetch({ 'GET /jobs': [200, slurmFixture('rest-get-jobs.json')] });
    const slurm = new FixtureSlurm(slurmFixture('sacct-workload-parsable.txt'));
    const out = collector();
    const ac = new AbortController();
    const source = createSlurmSource({
      rest: opts(f),
      run: async (argv, o) => {
        if (argv[0] === 'squeue') throw new Error('squeue must not run');
        return slurm.run(argv, o);
      },
      now: () => 1795327701,
      pollIntervalMs: 1,
      onPoll: () => ac.abort(),
      log: () => undefined,
    });
    await source.run({ signal: ac.signal, emit: out.emit });
    expect(namesByJob(out.events)['5']).toEqual(['submit', 'hold']);
    expect(Object.keys(namesByJob(out.events))).toHaveLength(12);
  });

  it("a bulk action's owner check is one listing (squeue --json --all, or one GET /jobs), parsed once", async () => {
    // The captured queue, with two jobs given other owners.
    const doc = JSON.parse(slurmFixture('squeue-mixed.json')) as { jobs: Array<Record<string, unknown>> };
    for (const j of doc.jobs) if (j.job_id === 3) j.user_name = 'alice';
    for (const j of doc.jobs) if (j.job_id === 4) j.user_name = 'bob';
    const ids = ['3', '4', '9', '1', '99999'];
    const expected = new Map([
      ['3', { ok: true, user: 'alice' }],
      ['4', { ok: true, user: 'bob' }],
      ['9', { ok: true, user: 'root' }],
      ['1', { ok: true, user: 'root' }],
      ['99999', { ok: false, code: 'no_such_job', message: 'job 99999 is not in the queue (finished or unknown)' }],
    ]);

    const slurm = new FixtureSlurm(slurmFixture('sacct-workload-parsable.txt'));
    slurm.squeue = JSON.stringify(doc);
    const cli = createSlurmSource({ run: slurm.run, log: () => undefined });
    expect(await cli.owners!(ids)).toEqual(expected);
    expect(slurm.calls).toEqual([['squeue', '--json', '--all']]);

    const { f, calls } = fakeFetch({ 'GET /jobs': [200, JSON.stringify(doc)] });
    const viaRest = createSlurmSource({ rest: opts(f), run: async () => { throw new Error('no CLI with rest'); }, log: () => undefined });
    expect(await viaRest.owners!(ids)).toEqual(expected);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual(['GET http://restd/slurm/v0.0.38/jobs']);

    // A listing that fails answers every job with the reason.
    const broken = createSlurmSource({ run: async () => ({ code: 1, stdout: '', stderr: 'slurm_load_jobs error: Unable to contact slurm controller', timedOut: false }), log: () => undefined });
    const answers = await broken.owners!(['3', '4']);
    expect([...answers.values()].map((a) => a.ok)).toEqual([false, false]);
    expect(answers.get('3')).toMatchObject({ code: 'failed', message: expect.stringContaining('Unable to contact slurm controller') });
  });
});
