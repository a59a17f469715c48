/**
 * Agent actions end to end through the Flux source against the fake broker (real framing), in
 * one process: the fake broker serving the real 35-job journal (flux-core 0.88) stopped at the
 * point where three jobs are pending → createFluxSource → runScribe with its command loop →
 * embedded log → Projector → chDB, and the MCP server over an in-memory SDK client per identity.
 *
 * Proves, for cancel_job / hold_job / release_job / set_urgency (and a bulk hold and release
 * through act_on_jobs) issued through an MCP client:
 * the exact RPCs flux-core receives (topic + JSON payload, in order; for a plain user the owner
 * check `job-info.lookup` first, for an admin none), the tool answer (accepted, per-job result
 * with the scheduler's response), the `actions` row, and `jobs` changed by the journal events the
 * job-manager posts (urgency/priority, exception/clean). Refusals: a plain user on another
 * user's Flux job is refused by the MCP service (nothing sent), and the same command injected
 * straight into the commands topic is refused by the scribe after job-info.lookup (not owner),
 * with no job-manager RPC sent; a job Flux does not know fails the owner check (ENOENT).
 *
 * The fixture instance ran every job as uid 0; the resolver names uid 0 "alice", and one job's
 * `submit` userid is rewritten to 1001 ("bob") so that the journal holds two owners.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import { createEmbeddedLog } from '../../log/embedded.js';
import { commandsTopic, type EventLog } from '../../log/eventLog.js';
import { createKeyring, signRecord } from '../../log/signing.js';
import { createLogCommandSender, type CommandSender } from '../../mcp/commandSender.js';
import type { Identity } from '../../mcp/identity.js';
import type { McpDeps } from '../../mcp/server.js';
import type { AuditEntry } from '../../mcp/tools/actions/index.js';
import { Projector } from '../../projector/consume.js';
import { commandRecordMessage, type Approval, type Command } from '../../schemas/commands/index.js';
import { connectFlux } from '../../scribe/flux/connector.js';
import { decodeResponse, encodeRequest } from '../../scribe/flux/protocol/rpc.js';
import { createFluxSource } from '../../scribe/flux/source.js';
import { mapUserResolver } from '../../scribe/flux/users.js';
import { runScribe } from '../../scribe/scribe.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { FakeFluxBroker } from '../support/fakeFluxBroker.js';
import { fluxFixture } from '../support/fixtures.js';
import { connectMcp } from '../support/mcpClient.js';

const CLUSTER = 'fluxact';
const PREFIX = 'jobscribe';
const DB = 'mcp_actions_flux';
const BOB_UID = 1001;
const users = mapUserResolver({ 0: 'alice', [BOB_UID]: 'bob' });

// ---- the journal: the real one, stopped where three jobs wait in the queue -------------------------

const manifest = new Map(
  fluxFixture('jobs-manifest.tsv')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t') as [string, string])
    .map(([label, id]) => [label, id.trim()]),
);
const A = manifest.get('waits-for-resources')!; // alice's: acted on by alice herself
const B = manifest.get('mock-exec')!; // alice's: acted on by an admin
const C = manifest.get('flux-run-hostname')!; // rewritten to bob's

interface JournalEvent {
  name: string;
  context?: Record<string, unknown>;
}
const idOfLine = (l: string) => /^\{"id":(-?\d+)/.exec(l)![1]!;
const eventsOfLine = (l: string) => (JSON.parse(l) as { events: JournalEvent[] }).events;

const JOURNAL = fluxFixture('journal.jsonl')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('{"id":-1'))
  .map((l) => (idOfLine(l) === C && eventsOfLine(l)[0]?.name === 'submit' ? l.replace('"userid":0,', `"userid":${BOB_UID},`) : l));
/** Right after the last of the three jobs got its priority (= is pending). */
const HAPPENED = Math.max(...[A, B, C].map((id) => JOURNAL.findIndex((l) => idOfLine(l) === id && eventsOfLine(l).some((e) => e.name === 'priority')))) + 1;

/** What happened to a job in the journal so far. */
const namesSoFar = (id: string) => JOURNAL.slice(0, HAPPENED).filter((l) => idOfLine(l) === id).flatMap((l) => eventsOfLine(l).map((e) => e.name));

// ---- the process ------------------------------------------------------------------------------------

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let dir: string;
let broker: FakeFluxBroker;
let log: EventLog;
let deps: McpDeps;
const ac = new AbortController();
const running: Promise<unknown>[] = [];
const clients: Client[] = [];
const sends: (Command | Approval)[] = [];
const audits: AuditEntry[] = [];
const keyring = createKeyring({ '*': { active: 'k1', keys: { k1: randomBytes(32).toString('base64') } } });

beforeAll(async () => {
  // The journal prefix is what the test says it is: three pending jobs, nothing allocated.
  for (const id of [A, B, C]) {
    expect(namesSoFar(id), id).toContain('priority');
    expect(namesSoFar(id).filter((n) => ['alloc', 'exception', 'clean', 'invalidate'].includes(n)), id).toEqual([]);
  }
  expect(JOURNAL.filter((l) => l.includes(`"userid":${BOB_UID}`))).toHaveLength(1);

  ch = await openTestClickHouse(DB);
  dir = mkdtempSync(join(tmpdir(), 'jobscribe-flux-actions-'));
  broker = await FakeFluxBroker.start({ path: join(dir, 'local'), journal: JOURNAL, happened: HAPPENED, autoAdvance: false, jobInfo: true, actionEvents: true });
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
  let checkpoint: string | undefined;
  running.push(
    runScribe({
      cluster: CLUSTER,
      source: createFluxSource({ uri: `local://${broker.path}`, cluster: CLUSTER, logger: () => {}, users }),
      log,
      topicPrefix: PREFIX,
      checkpoints: { load: () => checkpoint, save: (c) => void (checkpoint = c) },
      scribeId: 'fluxact@test',
      version: '0',
      signal: ac.signal,
      keyring,
      commands: { ledgerPath: join(dir, 'ledger.jsonl'), requireSignatures: true },
    }),
  );
  running.push(new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: PREFIX, signing: { keyring, require: true } }).run(ac.signal));
  const sender = createLogCommandSender({ log, topicPrefix: PREFIX, keyring });
  const spy: CommandSender = { send: async (r) => (r.kind !== 'refusal' && sends.push(r), sender.send(r)) };
  deps = { clickhouse: ch.client, database: ch.database, commands: spy, approvalThreshold: 2, actionTimeoutMs: 20_000, audit: (e) => audits.push(e) };
  await waitFor('the three pending jobs in jobs', async () => {
    const rows = await Promise.all([A, B, C].map(jobOrUndefined));
    return rows.every((r) => r?.state === 'pending');
  });
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  ac.abort();
  await Promise.allSettled(running);
  await log?.close();
  await broker?.stop();
  await ch?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

// ---- helpers ----------------------------------------------------------------------------------------

async function clientAs(identity: Identity): Promise<Client> {
  const client = await connectMcp(deps, identity, 'flux-actions-test');
  clients.push(client);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args }));
}

interface Outcome {
  command_id: string;
  status: string;
  cluster: string;
  job_ids: string[];
  requested_by: string;
  results: { job_id: string; ok: boolean; code?: string; error?: string; response?: Record<string, unknown> }[];
  reason?: string;
}

async function act(client: Client, name: string, args: Record<string, unknown>): Promise<Outcome> {
  const r = await call(client, name, args);
  if (r.isError) throw new Error(`${name}: tool error: ${JSON.stringify(r.content)}`);
  return (r.structuredContent as { command: Outcome }).command;
}

function errorText(r: CallToolResult): string {
  expect(r.isError).toBe(true);
  return (r.content as { text: string }[]).map((c) => c.text).join('\n');
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface JobRow {
  user: string;
  state: string;
  urgency: number;
  priority: string | null;
  held: boolean;
  exception_type: string;
  exception_note: string;
}

async function jobOrUndefined(id: string): Promise<JobRow | undefined> {
  const [r] = await queryRows<JobRow>(
    ch,
    `SELECT user, state, urgency, toString(priority) AS priority, held, exception_type, exception_note
       FROM ${DB}.jobs FINAL WHERE cluster = {c:String} AND job_id = {id:UInt64}`,
    { c: CLUSTER, id },
  );
  return r;
}
async function job(id: string): Promise<JobRow> {
  const r = await jobOrUndefined(id);
  if (!r) throw new Error(`no job ${id}`);
  return r;
}
/** Waits until the job's row matches `want`, then returns it. */
async function jobBecomes(id: string, want: Partial<JobRow>): Promise<JobRow> {
  await waitFor(`job ${id} to show ${JSON.stringify(want)}`, async () => {
    const r = await jobOrUndefined(id);
    return r !== undefined && Object.entries(want).every(([k, v]) => r[k as keyof JobRow] === v);
  });
  return job(id);
}

interface ActionRow {
  action: string;
  job_ids: string[];
  requested_by: string;
  requested_user: string;
  on_behalf_of: string;
  status: string;
  reason: string;
  results: string;
}
/** The final `actions` row of a command, once its command record is folded in too. */
async function actionRow(commandId: string): Promise<ActionRow> {
  const read = async () =>
    (
      await queryRows<ActionRow>(
        ch,
        `SELECT action, job_ids, requested_by, requested_user, on_behalf_of, status, reason, results FROM ${DB}.actions FINAL WHERE command_id = {id:String}`,
        { id: commandId },
      )
    )[0];
  await waitFor(`the actions row of ${commandId}`, async () => {
    const r = await read();
    return r !== undefined && r.requested_by !== '' && ['accepted', 'rejected', 'failed'].includes(r.status);
  });
  return (await read())!;
}

/** Requests the fake broker received for one job (job-manager / job-info RPCs), as `topic payload`. */
function rpcsFor(id: string, from = 0): string[] {
  return broker.requests
    .slice(from)
    .filter((r) => r.topic.startsWith('job-manager.') || r.topic.startsWith('job-info.'))
    .filter((r) => r.topic !== 'job-manager.events-journal' && r.topic !== 'job-manager.events-journal-cancel')
    .map((r) => `${r.topic} ${r.payload?.toString('utf8') ?? ''}`)
    .filter((t) => new RegExp(`"id":${id}[,}]`).test(t));
}
const lookupOf = (id: string) => `job-info.lookup {"id":${id},"keys":["eventlog"],"flags":0}\0`;
const urgencyOf = (id: string, u: number) => `job-manager.urgency {"id":${id},"urgency":${u}}\0`;

const ALICE: Identity = { subject: 'sub-alice', user: 'alice', roles: [] };
const BOB: Identity = { subject: 'sub-bob', user: 'bob', roles: [] };
const ADMIN: Identity = { subject: 'ops', roles: ['admin'] };

// ---- the tests --------------------------------------------------------------------------------------

/** A command from alice (not an admin) for one job, signed with the cluster key, published straight to the commands topic. */
async function injectAsAlice(action: Command['action'], jobId: string): Promise<Command> {
  const now = Date.now() / 1000;
  const c: Command = {
    v: 1,
    kind: 'command',
    command_id: randomUUID(),
    cluster: CLUSTER,
    action,
    job_ids: [jobId],
    args: {},
    requested_by: { subject: 'sub-alice', user: 'alice', roles: [] },
    on_behalf_of: 'alice',
    issued_at: now,
    expires_at: now + 60,
    approval_required: false,
  };
  await log.publish(commandsTopic(PREFIX, CLUSTER), [commandRecordMessage(signRecord(c, keyring, CLUSTER))]);
  return c;
}

describe('agent actions through the Flux source (fake broker)', () => {
  it('job-info.lookup answers like flux-core: the stored eventlog as one JSON event per line; ENOENT for an unknown job', async () => {
    const conn = await connectFlux({ uri: `local://${broker.path}` });
    try {
      const ask = async (payload: Record<string, unknown>) => decodeResponse(await conn.request((tag) => encodeRequest({ topic: 'job-info.lookup', payload, matchtag: tag })));
      const ok = await ask({ id: BigInt(C), keys: ['eventlog'], flags: 0 });
      expect(ok.errnum).toBe(0);
      const text = Buffer.from(ok.payload!).toString('utf8');
      expect(text.endsWith('\0')).toBe(true);
      const body = JSON.parse(text.slice(0, -1)) as { id: number; eventlog: string };
      expect(Object.keys(body)).toEqual(['id', 'eventlog']);
      expect(text.startsWith(`{"id":${C},"eventlog":"`)).toBe(true);
      // The job's events from the journal so far, minus the journal-only ones; every line ends in \n.
      const stored = JOURNAL.slice(0, HAPPENED)
        .filter((l) => idOfLine(l) === C)
        .flatMap(eventsOfLine)
        .filter((e) => e.name !== 'annotations' && e.name !== 'invalidate');
      expect(body.eventlog.endsWith('\n')).toBe(true);
      expect(body.eventlog.split('\n').slice(0, -1).map((l) => JSON.parse(l))).toEqual(stored);
      expect(stored[0]).toMatchObject({ name: 'submit', context: { userid: BOB_UID } });

      expect(await ask({ id: 99n, keys: ['eventlog'], flags: 0 })).toMatchObject({ errnum: 2, error: 'invalid job id' });
      expect(await ask({ id: BigInt(C), keys: ['nosuchkey'], flags: 0 })).toMatchObject({ errnum: 2, error: 'nosuchkey: key not found' });
    } finally {
      conn.close();
    }
  });

  it('the journal owners reached jobs through the uid → user resolver', async () => {
    expect((await job(A)).user).toBe('alice');
    expect((await job(B)).user).toBe('alice');
    expect((await job(C)).user).toBe('bob');
  });

  it('act_on_jobs: the owner holds all her pending jobs in two calls (one command, an owner check and an urgency RPC per job), then releases them; bob\'s job is not among them', async () => {
    const alice = await clientAs(ALICE);
    const from = broker.requests.length;
    const bulk = async (action: 'hold' | 'release') => {
      const dry = await call(alice, 'act_on_jobs', { cluster: CLUSTER, action });
      expect(dry.isError, JSON.stringify(dry.content)).toBeFalsy();
      const d = dry.structuredContent as { count: number; jobs: { job_id: string }[]; confirm_token: string; approval_required: boolean };
      expect(d).toMatchObject({ count: 2, approval_required: false });
      expect(d.jobs.map((j) => j.job_id).sort()).toEqual([A, B].sort());
      return act(alice, 'act_on_jobs', { cluster: CLUSTER, action, confirm: d.confirm_token });
    };
    const held = await bulk('hold');
    expect(held.status).toBe('accepted');
    expect([...held.results].sort((x, y) => x.job_id.localeCompare(y.job_id))).toEqual(
      [A, B].sort().map((id) => ({ job_id: id, ok: true, response: { urgency: 0, old_urgency: 16 } })),
    );
    for (const id of [A, B]) await jobBecomes(id, { held: true, urgency: 0 });
    expect(await job(C)).toMatchObject({ held: false });
    const released = await bulk('release');
    expect(released.status).toBe('accepted');
    for (const id of [A, B]) await jobBecomes(id, { held: false, urgency: 16 });
    for (const id of [A, B]) expect(rpcsFor(id, from)).toEqual([lookupOf(id), urgencyOf(id, 0), lookupOf(id), urgencyOf(id, 16)]);
    expect(rpcsFor(C, from)).toEqual([]);
    const sent = sends.filter((s): s is Command => s.kind === 'command' && (s.command_id === held.command_id || s.command_id === released.command_id));
    expect(sent.map((s) => [s.action, s.on_behalf_of, [...s.job_ids].sort()])).toEqual([
      ['hold', 'alice', [A, B].sort()],
      ['release', 'alice', [A, B].sort()],
    ]);
  });

  it('the owner holds, sets urgency, releases and cancels her job: job-info.lookup before every RPC, answers, actions and jobs agree', async () => {
    const alice = await clientAs(ALICE);
    const from = broker.requests.length;
    const before = await job(A);
    expect(before).toMatchObject({ held: false, urgency: 16 });

    const hold = await act(alice, 'hold_job', { job_id: A });
    expect(hold).toMatchObject({ status: 'accepted', cluster: CLUSTER, job_ids: [A], requested_by: 'sub-alice' });
    expect(hold.results).toEqual([{ job_id: A, ok: true, response: { urgency: 0, old_urgency: 16 } }]);
    expect(await jobBecomes(A, { held: true })).toMatchObject({ state: 'pending', urgency: 0, priority: '0' });

    const urg = await act(alice, 'set_urgency', { job_id: A, urgency: 10 });
    expect(urg.status).toBe('accepted');
    expect(urg.results).toEqual([{ job_id: A, ok: true, response: { urgency: 10, old_urgency: 0 } }]);
    expect(await jobBecomes(A, { urgency: 10 })).toMatchObject({ state: 'pending', held: false, priority: '10' });

    const rel = await act(alice, 'release_job', { job_id: A });
    expect(rel.status).toBe('accepted');
    expect(rel.results).toEqual([{ job_id: A, ok: true, response: { urgency: 16, old_urgency: 10 } }]);
    expect(await jobBecomes(A, { urgency: 16 })).toMatchObject({ state: 'pending', held: false, priority: '16' });

    const cancel = await act(alice, 'cancel_job', { job_id: A, note: 'not needed' });
    expect(cancel.status).toBe('accepted');
    expect(cancel.results).toEqual([{ job_id: A, ok: true }]);
    expect(await jobBecomes(A, { state: 'canceled' })).toMatchObject({ exception_type: 'cancel', exception_note: 'not needed' });

    // Exactly what flux-core received, in order: the owner check, then the action.
    expect(rpcsFor(A, from)).toEqual([
      lookupOf(A),
      urgencyOf(A, 0),
      lookupOf(A),
      urgencyOf(A, 10),
      lookupOf(A),
      urgencyOf(A, 16),
      lookupOf(A),
      `job-manager.raise {"id":${A},"type":"cancel","severity":0,"note":"not needed"}\0`,
    ]);

    for (const [c, action] of [
      [hold, 'hold'],
      [urg, 'urgency'],
      [rel, 'release'],
      [cancel, 'cancel'],
    ] as const) {
      const row = await actionRow(c.command_id);
      expect(row, action).toMatchObject({ action, status: 'accepted', job_ids: [A], requested_by: 'sub-alice', requested_user: 'alice', on_behalf_of: 'alice' });
      expect(JSON.parse(row.results), action).toEqual(c.results);
    }
    // What the MCP service sent (signed by its sender: the scribe requires signatures, so accepted = verified).
    const sent = sends.filter((s): s is Command => s.kind === 'command' && s.job_ids.length === 1 && s.job_ids[0] === A);
    expect(sent.map((s) => [s.action, s.on_behalf_of, s.args])).toEqual([
      ['hold', 'alice', {}],
      ['urgency', 'alice', { urgency: 10 }],
      ['release', 'alice', {}],
      ['cancel', 'alice', { note: 'not needed' }],
    ]);

    // A finished job is refused by the MCP service: nothing more reaches Flux.
    const n = broker.requests.length;
    expect(errorText(await call(alice, 'hold_job', { job_id: A }))).toContain('has already ended (canceled)');
    expect(rpcsFor(A, n)).toEqual([]);
  });

  it('an admin acts on any job without an owner lookup; expedite shows as the maximum priority', async () => {
    const admin = await clientAs(ADMIN);
    const from = broker.requests.length;

    const hold = await act(admin, 'hold_job', { job_id: B, cluster: CLUSTER });
    expect(hold.results).toEqual([{ job_id: B, ok: true, response: { urgency: 0, old_urgency: 16 } }]);
    expect(await jobBecomes(B, { held: true })).toMatchObject({ urgency: 0 });

    const urg = await act(admin, 'set_urgency', { job_id: B, urgency: 31 });
    expect(urg.results).toEqual([{ job_id: B, ok: true, response: { urgency: 31, old_urgency: 0 } }]);
    expect(await jobBecomes(B, { urgency: 31 })).toMatchObject({ held: false, priority: '4294967295', state: 'pending' });

    const rel = await act(admin, 'release_job', { job_id: B });
    expect(rel.results).toEqual([{ job_id: B, ok: true, response: { urgency: 16, old_urgency: 31 } }]);
    expect(await jobBecomes(B, { urgency: 16 })).toMatchObject({ priority: '16' });

    const cancel = await act(admin, 'cancel_job', { job_id: B });
    expect(cancel.results).toEqual([{ job_id: B, ok: true }]);
    expect(await jobBecomes(B, { state: 'canceled' })).toMatchObject({ exception_type: 'cancel', exception_note: '' });

    expect(rpcsFor(B, from)).toEqual([
      urgencyOf(B, 0),
      urgencyOf(B, 31),
      urgencyOf(B, 16),
      `job-manager.raise {"id":${B},"type":"cancel","severity":0}\0`,
    ]);
    for (const c of [hold, urg, rel, cancel]) {
      expect(c.status).toBe('accepted');
      const row = await actionRow(c.command_id);
      expect(row).toMatchObject({ status: 'accepted', requested_by: 'ops', requested_user: '', on_behalf_of: '', job_ids: [B] });
      expect(JSON.parse(row.results)).toEqual(c.results);
    }
  });

  it("a plain user on another user's Flux job: refused by the MCP service, and by the scribe after job-info.lookup when injected", async () => {
    const alice = await clientAs(ALICE);
    const from = broker.requests.length;
    const sendsBefore = sends.length;
    const auditsBefore = audits.length;
    const before = await job(C);

    // The MCP service refuses from the read model: nothing is sent, nothing reaches Flux.
    expect(errorText(await call(alice, 'cancel_job', { job_id: C }))).toContain('does not exist or is not yours');
    expect(sends.length).toBe(sendsBefore);
    expect(audits.slice(auditsBefore)).toEqual([expect.objectContaining({ tool: 'cancel_job', decision: 'refused', subject: 'sub-alice', reason: 'not owner: the job belongs to bob, not alice' })]);

    // The same command, signed with the cluster key, straight into the commands topic.
    const injected = await injectAsAlice('cancel', C);
    const row = await actionRow(injected.command_id);
    expect(row).toMatchObject({ status: 'rejected', requested_by: 'sub-alice', on_behalf_of: 'alice' });
    expect(JSON.parse(row.results)).toEqual([{ job_id: C, ok: false, code: 'not_permitted', error: 'not owner: the job belongs to bob, not alice' }]);
    // Flux was asked who owns the job, and nothing else.
    expect(rpcsFor(C, from)).toEqual([lookupOf(C)]);
    expect(await job(C)).toEqual(before);

    // Its owner (uid 1001) may: the lookup names bob, then the hold goes through.
    const n = broker.requests.length;
    const hold = await act(await clientAs(BOB), 'hold_job', { job_id: C });
    expect(hold.results).toEqual([{ job_id: C, ok: true, response: { urgency: 0, old_urgency: 16 } }]);
    expect(rpcsFor(C, n)).toEqual([lookupOf(C), urgencyOf(C, 0)]);
    expect(await jobBecomes(C, { held: true })).toMatchObject({ user: 'bob', state: 'pending' });
    expect(await actionRow(hold.command_id)).toMatchObject({ status: 'accepted', requested_user: 'bob', on_behalf_of: 'bob' });
  });

  it('submit_job: job-ingest takes the signed jobspec; the answer and the actions row name the new job; a refusal reads as the broker said', async () => {
    // alice is the instance owner here (the scribe's connection is uid 0, which the resolver names alice)
    const owner = await clientAs(ALICE);
    const jobspec = {
      version: 1,
      resources: [{ type: 'slot', count: 1, with: [{ type: 'core', count: 1 }], label: 'task' }],
      tasks: [{ command: ['true'], slot: 'task', count: { per_slot: 1 } }],
      attributes: { system: { duration: 60, cwd: '/tmp' } },
    };
    const from = broker.requests.length;
    const ok = await act(owner, 'submit_job', { cluster: CLUSTER, submit: { jobspec } });
    const ingested = broker.requests.slice(from).filter((r) => r.topic === 'job-ingest.submit');
    expect(ingested).toHaveLength(1);
    expect(ok.status).toBe('accepted');
    const id = ok.results?.[0]?.job_id;
    expect(id).toMatch(/^[1-9]\d*$/);
    expect(ok.results).toEqual([{ job_id: id, ok: true, response: { job_id: id } }]);
    expect(ok.job_ids).toEqual([id]);
    expect(ok.reason).toBeUndefined();
    expect(await actionRow(ok.command_id)).toMatchObject({ action: 'submit', status: 'accepted', job_ids: [id], on_behalf_of: 'alice' });

    // job-ingest refuses flags it does not know (EPROTO): the reason is the error, no job id before it
    const bad = await act(owner, 'submit_job', { cluster: CLUSTER, submit: { jobspec, flags: 1 } });
    expect(bad).toMatchObject({ status: 'failed', job_ids: [] });
    expect(bad.reason).toBe('submit: rejected as invalid (flux: invalid job flags)');
    expect(bad.results).toEqual([{ job_id: '', ok: false, code: 'invalid', error: bad.reason }]);
    expect(await actionRow(bad.command_id)).toMatchObject({ status: 'failed', job_ids: [], reason: bad.reason });
  });

  it('submit_job by anyone but the instance owner is refused by the scribe with the reason (flux-security), before any RPC; with no scheduler user, by the MCP service', async () => {
    const jobspec = { version: 1, resources: [], tasks: [], attributes: { system: { duration: 60 } } };
    const from = broker.requests.length;
    const guest = await act(await clientAs(BOB), 'submit_job', { cluster: CLUSTER, submit: { jobspec } });
    expect(guest).toMatchObject({ status: 'rejected', job_ids: [] });
    expect(guest.reason).toMatch(/^submit as bob: refused: this scribe connects to Flux as the instance owner, and flux-core owns a job by the connection's user and takes a guest's job only signed by that guest \(flux-security, munge or curve\)/);
    expect(guest.results).toEqual([{ job_id: '', ok: false, code: 'not_permitted', error: guest.reason }]);
    expect(JSON.stringify(guest)).not.toContain('alice'); // the owner's name is not told to bob
    expect(await actionRow(guest.command_id)).toMatchObject({ action: 'submit', status: 'rejected', on_behalf_of: 'bob', reason: guest.reason });
    // an admin with no scheduler user: refused before anything is sent
    const sent = sends.length;
    const text = errorText(await call(await clientAs(ADMIN), 'submit_job', { cluster: CLUSTER, submit: { jobspec } }));
    expect(text).toContain('this identity (ops) is not mapped to a scheduler user, so it cannot submit');
    expect(sends.length).toBe(sent);
    expect(broker.requests.slice(from).filter((r) => r.topic === 'job-ingest.submit' || r.topic === 'attr.get')).toEqual([]);
  });

  it('a job Flux does not know fails the owner check (job-info.lookup ENOENT); nothing is done', async () => {
    const from = broker.requests.length;
    const unknown = '99';
    const c = await injectAsAlice('hold', unknown);
    const row = await actionRow(c.command_id);
    expect(row.status).toBe('failed');
    expect(JSON.parse(row.results)).toEqual([{ job_id: unknown, ok: false, code: 'no_such_job', error: `owner check: no such job ${unknown}` }]);
    expect(rpcsFor(unknown, from)).toEqual([lookupOf(unknown)]);
  });
});
