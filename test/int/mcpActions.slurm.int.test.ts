/**
 * Agent actions against a REAL Slurm 22.05 (deploy/slurm/start-slurm.sh): the Slurm source's
 * scribe with its command loop → embedded log → Projector → chDB, and the MCP server over an
 * in-memory client. Jobs are submitted through submit_job by a plain user (nobody) and belong
 * to nobody in Slurm, not to the scribe's root (runuser); then they are held, released and
 * canceled through the action tools (single and bulk: cancel_jobs, act_on_jobs hold / release /
 * urgency), and what Slurm did is read back from
 * `jobs` (the scribe's squeue polls) and from squeue / scontrol themselves. A user acting on
 * someone else's job is refused by the MCP service before anything is sent; a submit by an
 * identity with no scheduler user is refused by the MCP service and, sent straight to the
 * commands topic, by the scribe.
 *
 * The scribe runs as this process: root (as CI runs), which submits through runuser.
 * Skipped loudly when no cluster answers (started here when possible, as root, outside CI);
 * fails under CI=true.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/client';
import { createEmbeddedLog } from '../../log/embedded.js';
import type { EventLog } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { runScribe } from '../../scribe/scribe.js';
import { spawnRunner } from '../../scribe/slurm/cliRunner.js';
import { createSlurmSource } from '../../scribe/slurm/source.js';
import { createLogCommandSender, type CommandSender } from '../../mcp/commandSender.js';
import type { Identity } from '../../mcp/identity.js';
import type { McpDeps } from '../../mcp/server.js';
import { CommandSchema, type Approval, type Command } from '../../schemas/commands/index.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { prerequisite } from '../support/prereq.js';
import { releaseSlurm, requireSlurm } from '../support/slurm.js';
import { connectMcp } from '../support/mcpClient.js';

const DB = 'mcp_actions_slurm';
const PREFIX = 'jobscribe';
const CLUSTER = 'slurmact';
const RUN = randomBytes(3).toString('hex');

let env: Record<string, string> | undefined;
let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let log: EventLog;
let scratch: string;
let workdir: string;
const ac = new AbortController();
const running: Promise<unknown>[] = [];
const clients: Client[] = [];
const sends: (Command | Approval)[] = [];
let deps: McpDeps;
let sender: CommandSender;

beforeAll(async () => {
  env = await requireSlurm();
  if (!env) return;
  // The scribe submits as the asking user through runuser, which needs root.
  if (!(await prerequisite('a root scribe (runuser)', async () => (process.getuid?.() === 0 ? undefined : `this process runs as uid ${process.getuid?.()}, not root`)))) {
    env = undefined;
    return;
  }
  ch = await openTestClickHouse(DB);
  scratch = mkdtempSync(join(tmpdir(), 'jobscribe-actions-slurm-'));
  workdir = mkdtempSync(join(tmpdir(), 'jobscribe-actions-jobs-'));
  chmodSync(workdir, 0o1777);
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
  let checkpoint: string | undefined;
  running.push(new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: PREFIX }).run(ac.signal));
  running.push(
    runScribe({
      cluster: CLUSTER,
      source: createSlurmSource({ run: spawnRunner({ env }), pollIntervalMs: 1000, sacctIntervalS: 5, submitDir: workdir, log: () => undefined }),
      log,
      topicPrefix: PREFIX,
      checkpoints: { load: () => checkpoint, save: (c) => void (checkpoint = c) },
      scribeId: 'test',
      version: '0',
      signal: ac.signal,
      commands: { ledgerPath: join(scratch, 'ledger.jsonl'), requireSignatures: false },
    }),
  );
  sender = createLogCommandSender({ log, topicPrefix: PREFIX });
  const spy: CommandSender = { send: async (r) => (r.kind !== 'refusal' && sends.push(r), sender.send(r)) };
  deps = { clickhouse: ch.client, database: ch.database, commands: spy, approvalThreshold: 10, actionTimeoutMs: 30_000, audit: () => undefined };
}, 600_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  ac.abort();
  await Promise.allSettled(running);
  await log?.close();
  await ch?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  if (workdir) rmSync(workdir, { recursive: true, force: true });
  await releaseSlurm();
}, 120_000);

beforeEach(({ skip }) => {
  if (!env) skip();
});

async function clientAs(identity: Identity): Promise<Client> {
  const client = await connectMcp(deps, identity, 'actions-slurm-test');
  clients.push(client);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Record<string, any>> {
  const r = (await client.callTool({ name, arguments: args }));
  if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content)}`);
  return r.structuredContent as Record<string, any>;
}

async function refusal(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const r = (await client.callTool({ name, arguments: args }));
  expect(r.isError).toBe(true);
  return (r.content as { text: string }[]).map((c) => c.text).join('\n');
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Row {
  user: string;
  state: string;
  sched_state: string;
  held: boolean;
}

async function row(id: string): Promise<Row | undefined> {
  const [r] = await queryRows<Row>(ch, `SELECT user, state, sched_state, held FROM ${DB}.jobs FINAL WHERE cluster = {c:String} AND job_id = {id:UInt64}`, {
    c: CLUSTER,
    id,
  });
  return r;
}

/** squeue's own word on a job: state and reason (Held jobs: JobHeldAdmin / JobHeldUser). */
async function squeue(id: string, format = '%T|%r'): Promise<{ state: string; reason: string } | undefined> {
  const r = await spawnRunner({ env: env! })(['squeue', '--noheader', '--states=all', `--jobs=${id}`, `--format=${format}`], { timeoutMs: 10_000 });
  const line = r.stdout.trim().split('\n')[0];
  if (r.code !== 0 || !line) return undefined;
  const [state = '', reason = ''] = line.split('|');
  return { state, reason };
}

/** An admin token without a scheduler user: acts on any job with the scribe's authority, submits nothing. */
const ADMIN: Identity = { subject: 'ops', roles: ['admin'] };
/** A plain identity mapped to a real non-root user: its jobs are nobody's in Slurm. */
const NOBODY: Identity = { subject: 'nobody-user', user: 'nobody', roles: [] };
const STRANGER: Identity = { subject: 'mallory-user', user: 'mallory', roles: [] };

/** `scontrol show job`'s UserId, e.g. "nobody(65534)". */
async function slurmUserId(id: string): Promise<string | undefined> {
  const r = await spawnRunner({ env: env! })(['scontrol', 'show', 'job', id], { timeoutMs: 10_000 });
  return /\bUserId=(\S+)/.exec(r.stdout)?.[1];
}

async function actionRow(id: string): Promise<{ status: string; reason: string; on_behalf_of: string } | undefined> {
  const [r] = await queryRows<{ status: string; reason: string; on_behalf_of: string }>(ch, `SELECT status, reason, on_behalf_of FROM ${DB}.actions FINAL WHERE command_id = {id:String}`, { id });
  return r;
}

describe('actions through the tool path on real Slurm', () => {
  const ids = { later: '', held: '' };

  it('a submit with no scheduler user is refused: by the MCP service (nothing sent), and by the scribe when sent anyway', async () => {
    const admin = await clientAs(ADMIN);
    const before = sends.length;
    const text = await refusal(admin, 'submit_job', { cluster: CLUSTER, submit: { name: `mcp-${RUN}-asroot`, command: 'id', workdir } });
    expect(text).toContain('this identity (ops) is not mapped to a scheduler user, so it cannot submit');
    expect(sends.length).toBe(before);
    // the same submit straight into the commands topic (an admin, no user): the scribe rejects it, sbatch never runs
    const now = Date.now() / 1000;
    const command = CommandSchema.parse({
      v: 1,
      kind: 'command',
      command_id: randomUUID(),
      cluster: CLUSTER,
      action: 'submit',
      job_ids: [],
      args: { submit: { name: `mcp-${RUN}-asroot`, command: 'id', workdir } },
      requested_by: { subject: 'ops', roles: ['admin'] },
      issued_at: now,
      expires_at: now + 300,
      approval_required: false,
    });
    await sender.send(command);
    await waitFor('the scribe to answer', async () => (await actionRow(command.command_id))?.status === 'rejected');
    expect((await actionRow(command.command_id))!.reason).toBe('not owner: ops has no scheduler user to submit as (a job is submitted only as the requesting user)');
    const r = await spawnRunner({ env: env! })(['squeue', '--noheader', '--states=all', `--name=mcp-${RUN}-asroot`, '--format=%i'], { timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe('');
  });

  it('submit_job submits as the asking user (nobody, not the scribe\'s root); hold_job and release_job hold and release; a stranger is refused; cancel_job cancels', async () => {
    const admin = await clientAs(ADMIN);
    const owner = await clientAs(NOBODY);
    const submit = async (name: string, extra: Record<string, unknown>) => {
      const out = (await call(owner, 'submit_job', { cluster: CLUSTER, submit: { name: `mcp-${RUN}-${name}`, command: 'sleep 300', workdir, ...extra } })).command;
      expect(out.status, JSON.stringify(out)).toBe('accepted');
      expect(out.results[0]).toMatchObject({ ok: true, job_id: expect.stringMatching(/^\d+$/) });
      expect((await actionRow(out.command_id))?.on_behalf_of).toBe('nobody');
      return out.results[0].job_id as string;
    };
    ids.later = await submit('later', { extra_args: ['--begin=now+3600'] });
    ids.held = await submit('held', { hold: true });
    for (const id of Object.values(ids)) await waitFor(`job ${id} in jobs`, async () => (await row(id))?.state === 'pending');
    // Slurm's own word: the jobs are nobody's
    for (const id of Object.values(ids)) {
      expect(await slurmUserId(id)).toBe('nobody(65534)');
      expect((await row(id))!.user).toBe('nobody');
    }
    expect((await squeue(ids.held))?.reason).toBe('JobHeldUser');

    // admin: hold a pending job, then release it
    const hold = (await call(admin, 'hold_job', { job_id: ids.later, cluster: CLUSTER })).command;
    expect(hold.status, JSON.stringify(hold)).toBe('accepted');
    expect((await squeue(ids.later))?.reason).toBe('JobHeldAdmin');
    await waitFor('held in jobs', async () => (await row(ids.later))?.held === true);
    const release = (await call(admin, 'release_job', { job_id: ids.later })).command;
    expect(release.status, JSON.stringify(release)).toBe('accepted');
    expect((await squeue(ids.later))?.reason).not.toMatch(/JobHeld/);
    await waitFor('released in jobs', async () => (await row(ids.later))?.held === false);
    // set_urgency is the Slurm priority
    const urgency = (await call(admin, 'set_urgency', { job_id: ids.later, urgency: 1234 })).command;
    expect(urgency.status, JSON.stringify(urgency)).toBe('accepted');
    expect((await squeue(ids.later, '%Q'))?.state).toBe('1234');

    // the owner (a plain identity): release its held job; the scribe re-checks ownership with squeue
    // and runs scontrol as nobody
    const ownRelease = (await call(owner, 'release_job', { job_id: ids.held })).command;
    expect(ownRelease.status, JSON.stringify(ownRelease)).toBe('accepted');
    expect((await squeue(ids.held))?.reason).not.toMatch(/JobHeld/);

    // someone else: refused by the MCP service, nothing sent, the job untouched
    const before = sends.length;
    const stranger = await clientAs(STRANGER);
    expect(await refusal(stranger, 'cancel_job', { job_id: ids.later })).toContain('does not exist or is not yours');
    expect(await refusal(stranger, 'hold_job', { job_id: ids.later })).toContain('does not exist or is not yours');
    expect(sends.length).toBe(before);
    expect((await squeue(ids.later))?.state).toBe('PENDING');

    // the owner cancels
    const cancel = (await call(owner, 'cancel_job', { job_id: ids.later, note: 'not needed' })).command;
    expect(cancel.status, JSON.stringify(cancel)).toBe('accepted');
    await waitFor('canceled in jobs', async () => (await row(ids.later))?.state === 'canceled');
    expect((await squeue(ids.later))?.state ?? 'CANCELLED').toBe('CANCELLED');
  });

  it('cancel_jobs: a dry run, then the confirmed bulk cancel of exactly those jobs, by their owner', async () => {
    const owner = await clientAs(NOBODY);
    const more = (await call(owner, 'submit_job', { cluster: CLUSTER, submit: { name: `mcp-${RUN}-bulk`, command: 'sleep 300', workdir, hold: true } })).command;
    expect(more.status).toBe('accepted');
    const bulkId = more.results[0].job_id as string;
    await waitFor(`job ${bulkId} in jobs`, async () => (await row(bulkId))?.state === 'pending');
    const active = await queryRows<{ id: string }>(
      ch,
      `SELECT toString(job_id) AS id FROM ${DB}.jobs FINAL WHERE cluster = {c:String} AND state IN ('pending', 'running') AND positionCaseInsensitiveUTF8(name, {n:String}) > 0 ORDER BY job_id`,
      { c: CLUSTER, n: `mcp-${RUN}-` },
    );
    expect(active.map((r) => r.id)).toEqual([ids.held, bulkId].sort((a, b) => Number(a) - Number(b)));
    // As the jobs' owner (a plain identity): the scribe re-checks every job's owner, all from one squeue listing.
    const filter = { cluster: CLUSTER, name: `mcp-${RUN}-` };
    const dry = await call(owner, 'cancel_jobs', filter);
    expect(dry).toMatchObject({ dry_run: true, count: active.length, approval_required: false });
    expect(dry.jobs.map((j: { job_id: string }) => j.job_id)).toEqual(active.map((r) => r.id));
    const done = await call(owner, 'cancel_jobs', { ...filter, confirm: dry.confirm_token });
    expect(done.command.status, JSON.stringify(done.command)).toBe('accepted');
    expect(done.command.results.map((r: { job_id: string; ok: boolean }) => [r.job_id, r.ok])).toEqual(active.map((r) => [r.id, true]));
    for (const { id } of active) await waitFor(`job ${id} canceled in jobs`, async () => (await row(id))?.state === 'canceled');
  });

  it('act_on_jobs: the owner holds all their pending jobs in two calls (squeue: JobHeldUser), releases them in two; Slurm urgency is refused for them', async () => {
    const owner = await clientAs(NOBODY);
    const name = `bulk-${RUN}-`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = (await call(owner, 'submit_job', { cluster: CLUSTER, submit: { name: `${name}${i}`, command: 'sleep 300', workdir, extra_args: ['--begin=now+3600'] } })).command;
      expect(out.status, JSON.stringify(out)).toBe('accepted');
      ids.push(out.results[0].job_id as string);
    }
    for (const id of ids) await waitFor(`job ${id} in jobs`, async () => (await row(id))?.state === 'pending');
    const filter = { cluster: CLUSTER, name };
    const before = sends.length;

    // Two calls: the dry run (nothing sent), then the confirmed hold, executed at once (own jobs).
    const dry = await call(owner, 'act_on_jobs', { ...filter, action: 'hold' });
    expect(dry).toMatchObject({ dry_run: true, count: 3, approval_required: false });
    expect(dry.jobs.map((j: { job_id: string; user: string }) => [j.job_id, j.user])).toEqual(ids.map((id) => [id, 'nobody']));
    expect(sends.length).toBe(before);
    // Its token is for hold, not release.
    expect(await refusal(owner, 'act_on_jobs', { ...filter, action: 'release', confirm: dry.confirm_token })).toContain('does not match');
    const held = (await call(owner, 'act_on_jobs', { ...filter, action: 'hold', confirm: dry.confirm_token })).command;
    expect(held.status, JSON.stringify(held)).toBe('accepted');
    expect(held.results.map((r: { job_id: string; ok: boolean }) => [r.job_id, r.ok])).toEqual(ids.map((id) => [id, true]));
    expect(sends.length).toBe(before + 1);
    // Slurm's own word: held by their user (scontrol hold ran as nobody, not as the scribe's root).
    for (const id of ids) expect((await squeue(id))?.reason, id).toBe('JobHeldUser');
    for (const id of ids) await waitFor(`job ${id} held in jobs`, async () => (await row(id))?.held === true);

    // A stranger's bulk hold finds none of them.
    const stranger = await clientAs(STRANGER);
    expect(await call(stranger, 'act_on_jobs', { ...filter, action: 'release' })).toMatchObject({ dry_run: true, count: 0, jobs: [] });

    // Release: two calls.
    const dryRelease = await call(owner, 'act_on_jobs', { ...filter, action: 'release' });
    expect(dryRelease).toMatchObject({ dry_run: true, count: 3, approval_required: false });
    const released = (await call(owner, 'act_on_jobs', { ...filter, action: 'release', confirm: dryRelease.confirm_token })).command;
    expect(released.status, JSON.stringify(released)).toBe('accepted');
    for (const id of ids) expect((await squeue(id))?.reason, id).not.toMatch(/JobHeld/);
    for (const id of ids) await waitFor(`job ${id} released in jobs`, async () => (await row(id))?.held === false);

    // Slurm has no urgency, and its priority is its administrators': refused for the owner, nothing sent.
    const sentBefore = sends.length;
    expect(await refusal(owner, 'act_on_jobs', { ...filter, action: 'urgency', urgency: 5 })).toContain('Slurm has no urgency');
    expect(sends.length).toBe(sentBefore);
    // An admin's bulk urgency is the Slurm priority (as set_urgency's); 3 jobs is not above the threshold of 10.
    const admin = await clientAs(ADMIN);
    const dryPrio = await call(admin, 'act_on_jobs', { ...filter, action: 'urgency', urgency: 4321 });
    expect(dryPrio).toMatchObject({ count: 3, approval_required: false });
    const prio = (await call(admin, 'act_on_jobs', { ...filter, action: 'urgency', urgency: 4321, confirm: dryPrio.confirm_token })).command;
    expect(prio.status, JSON.stringify(prio)).toBe('accepted');
    for (const id of ids) expect((await squeue(id, '%Q'))?.state, id).toBe('4321');

    // Clean up through the alias: cancel_jobs is act_on_jobs with action cancel.
    const dryCancel = await call(owner, 'cancel_jobs', filter);
    const canceled = (await call(owner, 'cancel_jobs', { ...filter, confirm: dryCancel.confirm_token })).command;
    expect(canceled.status, JSON.stringify(canceled)).toBe('accepted');
    for (const id of ids) await waitFor(`job ${id} canceled in jobs`, async () => (await row(id))?.state === 'canceled');
  });
});
