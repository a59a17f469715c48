/**
 * The agent-actions suite, run on one event log (the embedded log: mcpActions.int.test.ts; Kafka:
 * mcpActions.kafka.int.test.ts). In one process: the simulated Flux cluster's scribe (with its
 * command loop) → the log → Projector → chDB, and the MCP server over an in-memory SDK client
 * per identity. Signing is on as `--signing-keys FILE --require-signatures` sets it: every component
 * reads one keys file; commands and approvals are signed by the MCP service and verified by the
 * scribe, the backlog's envelopes are signed as the scribe signs them, and the projector
 * quarantines anything unsigned. A second command loop (cluster `simother`, no jobs) stands for
 * another cluster's scribe, to replay a command onto.
 *
 * The simulator is pre-advanced (its events published as a scribe would) and then run "paused"
 * (0.01 simulated seconds per second), so nothing but the actions changes the pending jobs while
 * the tests run. Every expectation is read back from `jobs`, `actions`, the commands topic (a
 * consumer reads it back) and what the MCP service handed its command sender.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import { commandsTopic, eventsTopic, type EventLog, type LogRecord } from '../../log/eventLog.js';
import { loadKeyring, maybeSign, type Keyring } from '../../log/signing.js';
import { Projector } from '../../projector/consume.js';
import { runScribe } from '../../scribe/scribe.js';
import { CommandLedger, runCommandLoop } from '../../scribe/commandLoop.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { createSimSource, Simulator, type SimOptionsInput } from '../../scribe/sim/index.js';
import { createLogCommandSender, type CommandSender } from '../../mcp/commandSender.js';
import type { Identity } from '../../mcp/identity.js';
import type { McpDeps } from '../../mcp/server.js';
import type { AuditEntry } from '../../mcp/tools/actions/index.js';
import { commandRecordMessage, type Approval, type Command, type Refusal } from '../../schemas/commands/index.js';
import { openTestClickHouse, queryRows } from './chdb.js';
import { connectMcp } from './mcpClient.js';

export interface ActionsSuiteOptions {
  database: string;
  /** Topic prefix (unique per run on a shared broker). */
  prefix: string;
  /** The log to run on, or undefined to skip the suite (the caller already said why). */
  openLog(ch: Awaited<ReturnType<typeof openTestClickHouse>>): Promise<{ log: EventLog; group: string; close(): Promise<void> } | undefined>;
}

export function mcpActionsSuite(opts: ActionsSuiteOptions): void {
  const DB = opts.database;
  const PREFIX = opts.prefix;
  const CLUSTER = 'simact';
  /** Another cluster with a scribe's command loop and no jobs: where a command is replayed to. */
  const OTHER = 'simother';
  const SIM: SimOptionsInput = {
    cluster: CLUSTER,
    seed: 21,
    nodes: 2,
    submitRate: 60,
    maxJobs: 120,
    speed: 0.01,
    cancelPendingRate: 0,
    cancelRunningRate: 0,
    holdRate: 0,
    expediteRate: 0,
    dependencyRate: 0,
    unsatisfiableRate: 0,
    burstRate: 0,
  };

  let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
  let log: EventLog;
  let opened: { log: EventLog; group: string; close(): Promise<void> } | undefined;
  /** Every record on the commands topic, as a consumer reads them back. */
  const seen: LogRecord[] = [];
  /** Every record the MCP service handed its command sender. */
  const sends: (Command | Approval)[] = [];
  let scratch: string;
  const ac = new AbortController();
  let running: Promise<unknown>[] = [];
  let deps: McpDeps;
  const audits: AuditEntry[] = [];
  const clients: Client[] = [];
  let keyring: Keyring;

  beforeAll(async () => {
    ch = await openTestClickHouse(DB);
    scratch = mkdtempSync(join(tmpdir(), 'jobscribe-actions-'));
    // One keys file for every component ("*": both clusters), as --signing-keys FILE gives it.
    const keysFile = join(scratch, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ '*': { active: 'k1', keys: { k1: randomBytes(32).toString('base64') } } }), { mode: 0o600 });
    keyring = loadKeyring(keysFile);
    opened = await opts.openLog(ch);
    if (!opened) return;
    log = opened.log;
    running.push(
      log.consume({
        group: `${opened.group}-peek`,
        topics: [commandsTopic(PREFIX, CLUSTER)],
        start: { from: 'earliest' },
        signal: ac.signal,
        eachBatch: async (b) => void seen.push(...b.records),
      }),
    );

    // The cluster so far: 120 jobs submitted in 15 simulated minutes, 2 nodes busy, most pending.
    const sim = new Simulator(SIM);
    const backlog = sim.advanceTo(sim.time + 900);
    const origin = { cluster: CLUSTER, scheduler: 'flux' as const, scribe: { id: 'test', version: '0' } };
    const topic = eventsTopic(PREFIX, CLUSTER);
    for (let i = 0; i < backlog.length; i += 2000) {
      await log.publish(topic, backlog.slice(i, i + 2000).map((e) => toLogMessage(maybeSign(toEnvelope(origin, e, Date.now() / 1000), keyring, CLUSTER))));
    }
    let checkpoint: string | undefined = sim.checkpoint();

    const projector = new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: PREFIX, group: opened.group, signing: { keyring, require: true } });
    running.push(projector.run(ac.signal));
    running.push(
      runScribe({
        cluster: CLUSTER,
        source: createSimSource(SIM),
        log,
        topicPrefix: PREFIX,
        checkpoints: { load: () => checkpoint, save: (c) => void (checkpoint = c) },
        scribeId: 'test',
        version: '0',
        signal: ac.signal,
        keyring,
        commands: { ledgerPath: join(scratch, 'ledger.jsonl'), requireSignatures: true },
      }),
    );
    running.push(
      runCommandLoop({
        cluster: OTHER,
        source: { scheduler: 'flux', run: async () => undefined },
        log,
        topicPrefix: PREFIX,
        ledger: new CommandLedger(join(scratch, 'other.ledger.jsonl')),
        signing: { keyring, require: true },
        scribe: { id: 'other', version: '0' },
        signal: ac.signal,
      }),
    );
    deps = {
      clickhouse: ch.client,
      database: ch.database,
      commands: spy(createLogCommandSender({ log, topicPrefix: PREFIX, keyring })),
      approvalThreshold: 2,
      // The bulk-cancel tests below are about approvals: own jobs need one above 2 too (the
      // bulk hold tests use the default own threshold).
      ownApprovalThreshold: 2,
      actionTimeoutMs: 20_000,
      audit: (e) => audits.push(e),
    };
    await waitFor('the backlog projected', async () => (await jobCount()) === new Set(backlog.map((e) => e.job_id)).size);
  }, 240_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    ac.abort();
    await Promise.allSettled(running);
    running = [];
    await opened?.close();
    await ch?.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  beforeEach(({ skip }) => {
    if (!opened) skip();
  });

  // ---- helpers ------------------------------------------------------------------------------------

  async function clientAs(identity: Identity, over: Partial<McpDeps> = {}): Promise<Client> {
    const client = await connectMcp({ ...deps, ...over }, identity, 'actions-test');
    clients.push(client);
    return client;
  }

  async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    return (await client.callTool({ name, arguments: args }));
  }

  function structured<T = Record<string, any>>(r: CallToolResult): T {
    if (r.isError) throw new Error(`tool error: ${JSON.stringify(r.content)}`);
    return r.structuredContent as T;
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

  async function jobCount(): Promise<number> {
    const [r] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM ${DB}.jobs FINAL WHERE cluster = {c:String}`, { c: CLUSTER });
    return Number(r?.n ?? 0);
  }

  interface JobRowT {
    job_id_s: string;
    user: string;
    state: string;
    urgency: number;
    held: boolean;
    exception_type: string;
    exception_note: string;
  }

  async function job(id: string): Promise<JobRowT> {
    const [r] = await queryRows<JobRowT>(
      ch,
      `SELECT toString(job_id) AS job_id_s, user, state, urgency, held, exception_type, exception_note
         FROM ${DB}.jobs FINAL WHERE cluster = {c:String} AND job_id = {id:UInt64}`,
      { c: CLUSTER, id },
    );
    if (!r) throw new Error(`no job ${id}`);
    return r;
  }

  async function pendingJobs(): Promise<JobRowT[]> {
    return queryRows<JobRowT>(
      ch,
      `SELECT toString(job_id) AS job_id_s, user, state, urgency, held, exception_type, exception_note
         FROM ${DB}.jobs FINAL WHERE cluster = {c:String} AND state = 'pending' ORDER BY job_id`,
      { c: CLUSTER },
    );
  }

  interface ActionRowT {
    command_id: string;
    action: string;
    job_ids: string[];
    requested_by: string;
    requested_user: string;
    approval_required: boolean;
    approved_by: string;
    status: string;
    reason: string;
    results: string;
  }

  async function actionRow(commandId: string): Promise<ActionRowT | undefined> {
    const [r] = await queryRows<ActionRowT>(
      ch,
      `SELECT command_id, action, job_ids, requested_by, requested_user, approval_required, approved_by, status, reason, results
         FROM ${DB}.actions FINAL WHERE command_id = {id:String}`,
      { id: commandId },
    );
    return r;
  }

  function spy(sender: CommandSender): CommandSender {
    return { send: async (r) => (r.kind !== 'refusal' && sends.push(r), sender.send(r)) };
  }

  /** The record of `kind` for a command, once the consumer has read it back from the commands topic. */
  async function recordOnTopic(commandId: string, kind: 'command' | 'approval'): Promise<Record<string, any>> {
    const find = () => seen.map((r) => JSON.parse(r.value) as Record<string, any>).find((r) => r.command_id === commandId && r.kind === kind);
    await waitFor(`the ${kind} of ${commandId} on the commands topic`, async () => find() !== undefined);
    return find()!;
  }

  const ADMIN: Identity = { subject: 'ops', roles: ['admin'] };
  const APPROVER: Identity = { subject: 'carol', user: 'carol', roles: ['approver'] };
  const userIdentity = (user: string, roles: string[] = []): Identity => ({ subject: `sub-${user}`, user, roles });

  /** Pending jobs grouped by owner, the owner with most first. */
  async function pendingByUser(exclude: Set<string> = new Set()): Promise<[string, JobRowT[]][]> {
    const byUser = new Map<string, JobRowT[]>();
    for (const j of await pendingJobs()) if (!exclude.has(j.job_id_s)) byUser.set(j.user, [...(byUser.get(j.user) ?? []), j]);
    return [...byUser].sort((a, b) => b[1].length - a[1].length);
  }

  const touched = new Set<string>();

  // ---- the tests ------------------------------------------------------------------------------------

  describe('tools/list', () => {
    it('lists the action tools with fitting annotations, input and output schemas, each within the token budget', async () => {
      // approve_command is listed only to approvers
      expect((await (await clientAs(ADMIN)).listTools()).tools.map((t) => t.name)).not.toContain('approve_command');
      const { tools } = await (await clientAs({ ...ADMIN, roles: ['admin', 'approver'] })).listTools();
      const expected: Record<string, { destructiveHint?: boolean; idempotentHint?: boolean; readOnlyHint: boolean }> = {
        cancel_job: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
        hold_job: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
        release_job: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
        set_urgency: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
        signal_job: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
        submit_job: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
        cancel_jobs: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
        act_on_jobs: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
        approve_command: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
        reject_command: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
        command_status: { readOnlyHint: true },
        list_actions: { readOnlyHint: true },
      };
      for (const [name, annotations] of Object.entries(expected)) {
        const t = tools.find((x) => x.name === name);
        expect(t, name).toBeDefined();
        expect(t!.annotations, name).toMatchObject({ ...annotations, openWorldHint: false });
        expect(t!.outputSchema?.type, name).toBe('object');
        expect(t!.inputSchema.additionalProperties, name).toBe(false);
        // Token estimate (JSON length / 4): the read tools keep 450 (mcpAnalytics.int.test.ts); an
        // action's outcome schema is larger, so 500 here (the bulk cancel's dry run adds its job list: 800).
        expect(JSON.stringify(t).length / 4, name).toBeLessThanOrEqual(name === 'cancel_jobs' || name === 'act_on_jobs' ? 800 : 500);
        if (process.env.JOBSCRIBE_SHOW_TOOL_SIZES) process.stderr.write(`${name}: ~${Math.round(JSON.stringify(t).length / 4)} tokens\n`);
      }
    });
  });

  describe('single-job actions through the MCP client change the simulated jobs', () => {
    it('an owner cancels their pending job: the answer, jobs and actions agree', async () => {
      const [[user, jobs]] = (await pendingByUser()) as [[string, JobRowT[]]];
      const target = jobs.at(-1)!;
      touched.add(target.job_id_s);
      const client = await clientAs(userIdentity(user));
      const before = sends.length;

      const out = structured<{ command: any }>(await call(client, 'cancel_job', { job_id: target.job_id_s, note: 'not needed' })).command;
      expect(out.status).toBe('accepted');
      expect(out.cluster).toBe(CLUSTER);
      expect(out.job_ids).toEqual([target.job_id_s]);
      expect(out.results).toEqual([expect.objectContaining({ job_id: target.job_id_s, ok: true })]);
      expect(out.requested_by).toBe(`sub-${user}`);

      expect(sends.length).toBe(before + 1);
      const sent = (await recordOnTopic(out.command_id, 'command')) as Command;
      expect(sent).toMatchObject({ kind: 'command', command_id: out.command_id, action: 'cancel', job_ids: [target.job_id_s], on_behalf_of: user, approval_required: false });
      expect(sent.signature?.key_id).toBe('k1');

      await waitFor('the cancel in jobs', async () => (await job(target.job_id_s)).state === 'canceled');
      const row = await job(target.job_id_s);
      expect(row.exception_type).toBe('cancel');
      expect(row.exception_note).toBe('not needed');
      // The result (events topic) and the command (commands topic) are folded in either order.
      await waitFor('the command folded into actions', async () => (await actionRow(out.command_id))?.requested_by !== '');
      const action = await actionRow(out.command_id);
      expect(action).toMatchObject({ action: 'cancel', status: 'accepted', requested_by: `sub-${user}`, requested_user: user, job_ids: [target.job_id_s] });

      // command_status reports the same row later.
      const status = structured<{ command: any }>(await call(client, 'command_status', { command_id: out.command_id })).command;
      expect(status).toMatchObject({ command_id: out.command_id, status: 'accepted' });
    });

    it('hold, set_urgency and release (admin) move urgency and held as the scheduler reports', async () => {
      const [[, jobs]] = (await pendingByUser(touched)) as [[string, JobRowT[]]];
      const target = jobs.at(-1)!;
      touched.add(target.job_id_s);
      const admin = await clientAs(ADMIN);

      const held = structured<{ command: any }>(await call(admin, 'hold_job', { job_id: target.job_id_s, cluster: CLUSTER })).command;
      expect(held.status).toBe('accepted');
      expect(held.results[0].response).toMatchObject({ urgency: 0, old_urgency: target.urgency });
      await waitFor('held in jobs', async () => (await job(target.job_id_s)).held === true);
      expect((await job(target.job_id_s)).urgency).toBe(0);

      const urg = structured<{ command: any }>(await call(admin, 'set_urgency', { job_id: target.job_id_s, urgency: 25 })).command;
      expect(urg.status).toBe('accepted');
      expect(urg.results[0].response).toMatchObject({ urgency: 25, old_urgency: 0 });
      await waitFor('urgency 25 in jobs', async () => (await job(target.job_id_s)).urgency === 25);
      expect((await job(target.job_id_s)).held).toBe(false);

      const rel = structured<{ command: any }>(await call(admin, 'release_job', { job_id: target.job_id_s })).command;
      expect(rel.status).toBe('accepted');
      await waitFor('urgency 16 in jobs', async () => (await job(target.job_id_s)).urgency === 16);
      expect((await job(target.job_id_s)).state).toBe('pending');

      for (const c of [held, urg, rel]) expect((await actionRow(c.command_id))?.status).toBe('accepted');
    });

    it('a plain user is refused (by the MCP service) on another user\'s job, and on urgency above 16 by the scheduler', async () => {
      const groups = await pendingByUser(touched);
      const [owner, ownerJobs] = groups[0]!;
      const [other] = groups.find(([u]) => u !== owner)!;
      const target = ownerJobs.at(-1)!;
      const before = sends.length;
      const auditsBefore = audits.length;

      const intruder = await clientAs(userIdentity(other));
      const text = errorText(await call(intruder, 'cancel_job', { job_id: target.job_id_s }));
      expect(text).toContain('does not exist or is not yours');
      // The same words as for a job that does not exist.
      const missing = errorText(await call(intruder, 'cancel_job', { job_id: '999999999999' }));
      expect(missing.replace(/999999999999/g, target.job_id_s)).toBe(text);
      expect(sends.length).toBe(before);
      expect((await job(target.job_id_s)).state).toBe('pending');
      const refusal = audits.slice(auditsBefore).find((a) => a.tool === 'cancel_job' && a.job_ids?.[0] === target.job_id_s);
      expect(refusal).toMatchObject({ decision: 'refused', subject: `sub-${other}`, reason: expect.stringContaining('not owner') });
      // The refusal is also a signed `refusal` record on the job's cluster's commands topic (no
      // scribe acts on it), and a row of `actions` that admins see and the intruder does not.
      const refusedOnTopic = () =>
        seen.map((r) => JSON.parse(r.value) as Record<string, any>).filter((r) => r.kind === 'refusal' && r.requested_by.subject === `sub-${other}`);
      await waitFor('the refusal record on the commands topic', async () => refusedOnTopic().length > 0);
      const record = refusedOnTopic().find((r) => r.job_ids[0] === target.job_id_s)!;
      expect(record).toMatchObject({ cluster: CLUSTER, tool: 'cancel_job', action: 'cancel', signature: { key_id: 'k1' } });
      expect(refusedOnTopic().filter((r) => r.job_ids[0] === '999999999999')).toEqual([]); // no cluster to record it on
      const admin = await clientAs(ADMIN);
      let listed: any;
      await waitFor('the refusal in list_actions', async () => {
        const { actions } = structured<{ actions: any[] }>(await call(admin, 'list_actions', { status: 'refused' }));
        listed = actions.find((x) => x.command_id === record.command_id);
        return listed !== undefined;
      });
      expect(listed).toMatchObject({
        status: 'refused',
        action: 'cancel',
        requested_by: `sub-${other}`,
        job_ids: [target.job_id_s],
        reason: `refused by the MCP service (cancel_job): not owner: the job belongs to ${owner}, not ${other}`,
      });
      const own = structured<{ actions: any[] }>(await call(intruder, 'list_actions', {})).actions;
      expect(own.map((x) => x.command_id)).not.toContain(record.command_id);
      expect(errorText(await call(intruder, 'command_status', { command_id: record.command_id }))).toContain('that you may see is recorded yet');
      // A Flux urgency above 31 is refused before anything is sent.
      expect(errorText(await call(await clientAs(ADMIN), 'set_urgency', { job_id: target.job_id_s, urgency: 40 }))).toContain('0..31');
      expect(sends.length).toBe(before);

      // An owner may not expedite: the scheduler refuses, and the answer says so.
      touched.add(target.job_id_s);
      const self = await clientAs(userIdentity(owner));
      const out = structured<{ command: any }>(await call(self, 'set_urgency', { job_id: target.job_id_s, urgency: 31 })).command;
      expect(out.status).toBe('rejected');
      expect(out.results[0]).toMatchObject({ ok: false, code: 'not_permitted' });
      expect((await job(target.job_id_s)).urgency).toBe(target.urgency);
    });
  });

  describe('bulk cancel: dry run, confirmation token, approval by a second identity', () => {
    it('runs only with an unchanged set, waits for an approver, and never for the requester\'s own approval', async () => {
      const [[user]] = (await pendingByUser(touched)) as [[string, JobRowT[]]];
      const jobs = (await pendingJobs()).filter((j) => j.user === user);
      expect(jobs.length).toBeGreaterThan(2); // above the approval threshold of 2
      const requester = await clientAs(userIdentity(user, ['approver']));
      const filter = { cluster: CLUSTER, user, state: 'pending' };
      const before = sends.length;

      const dry = structured(await call(requester, 'cancel_jobs', filter));
      expect(dry).toMatchObject({ dry_run: true, count: jobs.length, approval_required: true });
      expect((dry.jobs as { job_id: string }[]).map((j) => j.job_id).sort()).toEqual(jobs.map((j) => j.job_id_s).sort());
      expect(sends.length).toBe(before);

      // The token confirms exactly this filter and set: another filter, or someone else, is refused.
      const narrower = errorText(await call(requester, 'cancel_jobs', { ...filter, name: 'x', confirm: dry.confirm_token }));
      expect(narrower).toContain('does not match');
      const admin = await clientAs(ADMIN);
      expect(errorText(await call(admin, 'cancel_jobs', { ...filter, confirm: dry.confirm_token }))).toContain('does not match');
      expect(errorText(await call(requester, 'cancel_jobs', { ...filter, confirm: 'garbage' }))).toContain('not a confirm_token');
      expect(sends.length).toBe(before);

      const sent = structured(await call(requester, 'cancel_jobs', { ...filter, confirm: dry.confirm_token }));
      expect(sent).toMatchObject({ dry_run: false, count: jobs.length, approval_required: true });
      const command = sent.command;
      expect(command.status).toBe('awaiting_approval');
      expect([...command.job_ids].sort()).toEqual(jobs.map((j) => j.job_id_s).sort());

      // Nothing happens without an approval: the scribe parks the command.
      await waitFor('awaiting_approval in actions', async () => (await actionRow(command.command_id))?.status === 'awaiting_approval');
      for (const j of jobs) expect((await job(j.job_id_s)).state).toBe('pending');

      // The requester cannot approve their own command, even holding the approver role; a plain
      // user cannot approve at all: approve_command is not even listed to them.
      expect(errorText(await call(requester, 'approve_command', { command_id: command.command_id }))).toContain('a different person with the approver role');
      const plain = await clientAs(userIdentity('someone'));
      const plainTools = (await plain.listTools()).tools.map((t) => t.name);
      expect(plainTools).not.toContain('approve_command');
      expect(plainTools).toContain('reject_command'); // how a requester withdraws
      const unlisted = await call(plain, 'approve_command', { command_id: command.command_id }).then(
        (r) => JSON.stringify(r),
        (err: unknown) => String(err),
      );
      expect(unlisted).toMatch(/approve_command/);
      expect(unlisted).not.toContain(command.command_id.slice(0, 8) + 'x'); // sanity: a refusal, no command details
      expect(sends.filter((r) => r.kind === 'approval')).toEqual([]);

      const approver = await clientAs(APPROVER);
      const done = structured<{ command: any }>(await call(approver, 'approve_command', { command_id: command.command_id, reason: 'ok' })).command;
      expect(done.status).toBe('accepted');
      expect(done.approved_by).toBe('carol');
      expect(done.results.map((r: { job_id: string }) => r.job_id).sort()).toEqual(jobs.map((j) => j.job_id_s).sort());
      expect(done.results.every((r: { ok: boolean }) => r.ok)).toBe(true);
      const approval = (await recordOnTopic(command.command_id, 'approval')) as Approval;
      expect(approval).toMatchObject({ kind: 'approval', decision: 'approve', command_id: command.command_id, by: { subject: 'carol' } });
      expect(approval.signature?.key_id).toBe('k1');

      await waitFor('every job canceled', async () => (await Promise.all(jobs.map((j) => job(j.job_id_s)))).every((j) => j.state === 'canceled'));
      expect(await actionRow(command.command_id)).toMatchObject({ status: 'accepted', approved_by: 'carol', approval_required: true });

      // A second approve of a finished command is refused by the MCP service.
      expect(errorText(await call(approver, 'approve_command', { command_id: command.command_id }))).toContain('already accepted');

      // list_actions: an approver sees it; the plain user sees none of it.
      const listed = structured(await call(approver, 'list_actions', { cluster: CLUSTER }));
      expect(listed.actions.map((a: { command_id: string }) => a.command_id)).toContain(command.command_id);
      expect(structured(await call(plain, 'list_actions', {})).actions).toEqual([]);
      for (const j of jobs) touched.add(j.job_id_s);
    });

    it('reject_command ends a bulk command with nothing done', async () => {
      const [[user]] = (await pendingByUser(touched)) as [[string, JobRowT[]]];
      const jobs = (await pendingJobs()).filter((j) => j.user === user);
      expect(jobs.length).toBeGreaterThan(2);
      const requester = await clientAs(userIdentity(user));
      const filter = { cluster: CLUSTER, user };
      const dry = structured(await call(requester, 'cancel_jobs', filter));
      const sent = structured(await call(requester, 'cancel_jobs', { ...filter, confirm: dry.confirm_token }));
      expect(sent.command.status).toBe('awaiting_approval');
      await waitFor('awaiting_approval in actions', async () => (await actionRow(sent.command.command_id))?.status === 'awaiting_approval');
      const approver = await clientAs(APPROVER);
      const out = structured<{ command: any }>(await call(approver, 'reject_command', { command_id: sent.command.command_id, reason: 'too broad' })).command;
      expect(out.status).toBe('rejected');
      expect(out.reason).toContain('too broad');
      for (const j of jobs) expect((await job(j.job_id_s)).state).toBe('pending');
    });
  });

  describe('a second token of the requester, and forged or misplaced copies of a command', () => {
    /** A bulk cancel of `user`'s pending jobs, sent and parked by the scribe until approved. */
    async function awaitingBulk(user: string): Promise<{ command: any; jobs: JobRowT[]; requester: Client }> {
      const jobs = (await pendingJobs()).filter((j) => j.user === user);
      expect(jobs.length).toBeGreaterThan(2);
      const requester = await clientAs(userIdentity(user));
      const filter = { cluster: CLUSTER, user };
      const dry = structured(await call(requester, 'cancel_jobs', filter));
      const sent = structured(await call(requester, 'cancel_jobs', { ...filter, confirm: dry.confirm_token }));
      expect(sent.command.status).toBe('awaiting_approval');
      await waitFor('awaiting_approval in actions, its command folded', async () => {
        const row = await actionRow(sent.command.command_id);
        return row?.status === 'awaiting_approval' && row.requested_by !== '';
      });
      return { command: sent.command, jobs, requester };
    }

    /** The `actions` rows of scribes' refusals of records that claimed `commandId`, once `n` are there. */
    async function refusalsOf(commandId: string, n: number): Promise<(ActionRowT & { cluster: string })[]> {
      const rows = () =>
        queryRows<ActionRowT & { cluster: string }>(
          ch,
          `SELECT cluster, command_id, action, job_ids, requested_by, requested_user, approval_required, approved_by, status, reason, results
             FROM ${DB}.actions FINAL WHERE status = 'refused' AND match(reason, '^refused by the [a-z0-9-]+ scribe: ') AND position(reason, {id:String}) > 0 ORDER BY cluster, reason`,
          { id: commandId },
        );
      await waitFor(`${n} refusals of records claiming ${commandId}`, async () => (await rows()).length >= n);
      return rows();
    }

    it("a second token of the requester's scheduler user may not approve, neither through approve_command nor by writing the approval to the log", async () => {
      const [[user]] = (await pendingByUser(touched)) as [[string, JobRowT[]]];
      const { command, jobs } = await awaitingBulk(user);
      for (const j of jobs) touched.add(j.job_id_s);
      const id = command.command_id as string;

      // Another token of the same user, with the approver role: the same person.
      const second: Identity = { subject: `${user}-desktop`, user, roles: ['approver'] };
      const text = errorText(await call(await clientAs(second), 'approve_command', { command_id: id }));
      expect(text).toBe(`you (scheduler user ${user}, as sub-${user}) requested command ${id}; a different person with the approver role must approve it`);
      expect(sends.filter((r) => r.kind === 'approval' && r.command_id === id)).toEqual([]);

      // The MCP check bypassed: the same approval, signed with the keys, written straight to the log.
      const bypass: Approval = { v: 1, kind: 'approval', command_id: id, cluster: CLUSTER, decision: 'approve', by: { subject: second.subject, user, roles: ['approver'] }, at: Date.now() / 1000 };
      await log.publish(commandsTopic(PREFIX, CLUSTER), [commandRecordMessage(maybeSign(bypass, keyring, CLUSTER))]);
      const [refused] = await refusalsOf(id, 1);
      expect(refused).toMatchObject({
        cluster: CLUSTER,
        action: 'approve',
        requested_by: second.subject,
        requested_user: user,
        reason: `refused by the ${CLUSTER} scribe: approval ${id}: ${second.subject} (scheduler user ${user}, as the requester sub-${user}) cannot approve their own command`,
      });
      expect(refused!.command_id).not.toBe(id);
      // Neither the scribe nor the projector counted it.
      expect(await actionRow(id)).toMatchObject({ status: 'awaiting_approval', approved_by: '' });
      for (const j of jobs) expect((await job(j.job_id_s)).state).toBe('pending');

      // Another person approves: it runs.
      const done = structured<{ command: any }>(await call(await clientAs(APPROVER), 'approve_command', { command_id: id })).command;
      expect(done).toMatchObject({ status: 'accepted', approved_by: APPROVER.subject });
      await waitFor('every job canceled', async () => (await Promise.all(jobs.map((j) => job(j.job_id_s)))).every((j) => j.state === 'canceled'));
    });

    it('an unsigned copy of an awaiting command, and the genuine one replayed onto another cluster, change nothing: approve_command still cancels the jobs', async () => {
      const [[user]] = (await pendingByUser(touched)) as [[string, JobRowT[]]];
      const { command, jobs, requester } = await awaitingBulk(user);
      for (const j of jobs) touched.add(j.job_id_s);
      const id = command.command_id as string;
      const genuine = await recordOnTopic(id, 'command');
      expect(genuine.signature).toBeDefined();

      // A writer without keys: the command again, unsigned, on its own commands topic ...
      const { signature: _dropped, ...unsigned } = genuine;
      await log.publish(commandsTopic(PREFIX, CLUSTER), [commandRecordMessage(unsigned as Command)]);
      // ... and the genuine signed record, copied onto another cluster's commands topic.
      await log.publish(commandsTopic(PREFIX, OTHER), [commandRecordMessage(genuine as Command)]);

      const refusals = await refusalsOf(id, 2);
      expect(refusals.map((r) => [r.cluster, r.reason])).toEqual([
        [CLUSTER, `refused by the ${CLUSTER} scribe: command ${id} claiming requester "sub-${user}": unsigned record (signatures are required)`],
        // signatures name the cluster they were made for: a copy elsewhere does not verify
        [OTHER, `refused by the ${OTHER} scribe: command ${id} claiming requester "sub-${user}": record for cluster "${CLUSTER}" checked as cluster "${OTHER}"`],
      ]);
      expect(refusals.map((r) => r.command_id)).not.toContain(id);
      expect(refusals[0]).toMatchObject({ requested_by: '(unverified)', action: 'cancel' });
      expect(refusals[1]).toMatchObject({ requested_by: '(unverified)', action: 'cancel' });
      for (const r of refusals) expect(r.job_ids.length).toBeLessThanOrEqual(20);
      // The projector quarantined both copies; the genuine command's row is unchanged.
      const deadLetters = () => queryRows<{ topic: string; reason: string }>(ch, `SELECT log_topic AS topic, reason FROM ${DB}.dead_letters FINAL WHERE key = {k:String} ORDER BY topic`, { k: id });
      await waitFor('both copies in dead_letters', async () => (await deadLetters()).length >= 2);
      const dead = await deadLetters();
      expect(dead).toEqual([
        { topic: commandsTopic(PREFIX, CLUSTER), reason: 'signature: unsigned record (signatures are required)' },
        { topic: commandsTopic(PREFIX, OTHER), reason: `signature: record for cluster "${CLUSTER}" checked as cluster "${OTHER}"` },
      ]);
      expect(await actionRow(id)).toMatchObject({ status: 'awaiting_approval', requested_by: `sub-${user}` });
      expect(structured<{ command: any }>(await call(requester, 'command_status', { command_id: id })).command.status).toBe('awaiting_approval');
      // The refusals are for admins and approvers; the requester's own list shows only the command.
      const own = structured<{ actions: any[] }>(await call(requester, 'list_actions', {})).actions.map((a) => a.command_id);
      expect(own).toContain(id);
      for (const r of refusals) expect(own).not.toContain(r.command_id);

      const done = structured<{ command: any }>(await call(await clientAs(APPROVER), 'approve_command', { command_id: id, reason: 'ok' })).command;
      expect(done).toMatchObject({ status: 'accepted', cluster: CLUSTER, approved_by: APPROVER.subject });
      expect(done.results.every((r: { ok: boolean }) => r.ok)).toBe(true);
      await waitFor('every job canceled', async () => (await Promise.all(jobs.map((j) => job(j.job_id_s)))).every((j) => j.state === 'canceled'));
      expect(await actionRow(id)).toMatchObject({ status: 'accepted', approved_by: APPROVER.subject });
    });
  });

  describe('without a scribe answer or an event log', () => {
    it('answers pending with the command id after the wait, and says when it cannot send at all', async () => {
      const [[user, jobs]] = (await pendingByUser(touched)) as [[string, JobRowT[]]];
      const captured: (Command | Approval | Refusal)[] = [];
      const blackhole: CommandSender = { send: async (r) => void captured.push(r) };
      const client = await clientAs(userIdentity(user), { commands: blackhole, actionTimeoutMs: 100 });
      const out = structured<{ command: any }>(await call(client, 'hold_job', { job_id: jobs[0]!.job_id_s })).command;
      expect(out.status).toBe('pending');
      expect(out.command_id).toBe((captured[0] as Command).command_id);
      expect(out.next_step).toContain('command_status');

      const noLog = await clientAs(userIdentity(user), { commands: undefined });
      expect(errorText(await call(noLog, 'hold_job', { job_id: jobs[0]!.job_id_s }))).toContain('no event log to send commands to');
    });
  });

  describe('bulk hold / release / urgency (act_on_jobs): two calls each, own jobs under their own threshold', () => {
    /** The plain user with the most pending jobs not held nor used by an earlier test, and those jobs. */
    async function ownerWithMostPending(): Promise<[string, JobRowT[]]> {
      const [first] = (await pendingByUser(touched)).map(([u, js]) => [u, js.filter((j) => !j.held)] as [string, JobRowT[]]);
      const [user, jobs] = first!;
      expect(jobs.length).toBeGreaterThan(2); // above the approval threshold of 2
      return [user, jobs];
    }
    /** Own jobs at the default own threshold (200), others' at the suite's 2. */
    const defaultOwn = (): Partial<McpDeps> => ({ ownApprovalThreshold: 200 });
    /**
     * The jobs a bulk hold (or urgency) changed: every job of `ids` has a result, and a job not
     * changed is one the scheduler started meanwhile (the simulator keeps scheduling: while a
     * command waits for its approver, a held job may let another one start). Returns their ids.
     */
    function actedOrStarted(results: { job_id: string; ok: boolean; error?: string }[], ids: string[]): string[] {
      expect(results.map((r) => r.job_id).sort()).toEqual([...ids].sort());
      for (const r of results.filter((x) => !x.ok)) expect(r.error, r.job_id).toBe('urgency cannot be changed once resources are allocated');
      const held = results.filter((r) => r.ok).map((r) => r.job_id);
      expect(held.length).toBeGreaterThan(ids.length / 2);
      return held.sort();
    }

    it('a plain user holds all their pending jobs in two calls (no approver at the default own threshold), then releases them in two; a token never confirms another action or set', async () => {
      const [user, jobs] = await ownerWithMostPending();
      for (const j of jobs) touched.add(j.job_id_s);
      const ids = jobs.map((j) => j.job_id_s).sort();
      const others = new Set((await pendingJobs()).filter((j) => j.user !== user).map((j) => j.job_id_s));
      const client = await clientAs(userIdentity(user), defaultOwn());
      const before = sends.length;

      // Call 1: the dry run lists exactly the user's pending jobs, no one else's.
      const dry = structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'hold' }));
      expect(dry).toMatchObject({ dry_run: true, count: jobs.length, approval_required: false });
      const listed = (dry.jobs as { job_id: string; user: string }[]);
      expect(listed.map((j) => j.job_id).sort()).toEqual(ids);
      expect(listed.every((j) => j.user === user)).toBe(true);
      expect(listed.filter((j) => others.has(j.job_id))).toEqual([]);
      expect(dry.next_step).toContain(`to hold these ${jobs.length} jobs call act_on_jobs again`);
      expect(sends.length).toBe(before);

      // The token confirms this action on this set only.
      const mismatch = 'does not match: the action or filters differ from the dry run';
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'release', confirm: dry.confirm_token }))).toContain(mismatch);
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'cancel', state: 'pending', confirm: dry.confirm_token }))).toContain(mismatch);
      expect(errorText(await call(client, 'cancel_jobs', { cluster: CLUSTER, state: 'pending', confirm: dry.confirm_token }))).toContain(mismatch);
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'urgency', urgency: 0, confirm: dry.confirm_token }))).toContain(mismatch);
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'hold', name: 'x', confirm: dry.confirm_token }))).toContain(mismatch);
      // Another user asking for this user's jobs is refused, and is told none of their ids.
      const intruder = await clientAs(userIdentity(`${user}x`), defaultOwn());
      const refused = errorText(await call(intruder, 'act_on_jobs', { cluster: CLUSTER, action: 'hold', user }));
      expect(refused).toContain(`you may hold only your own jobs (user ${user}x)`);
      for (const id of ids) expect(refused).not.toMatch(new RegExp(`\\b${id}\\b`));
      // The refusal's record (for admins and approvers) names the action and no job of the user's.
      const refusalOnTopic = () =>
        seen.map((r) => JSON.parse(r.value) as Record<string, any>).find((r) => r.kind === 'refusal' && r.tool === 'act_on_jobs' && r.requested_by.subject === `sub-${user}x`);
      await waitFor('the refusal record on the commands topic', async () => refusalOnTopic() !== undefined);
      expect(refusalOnTopic()).toMatchObject({ action: 'hold', cluster: CLUSTER, job_ids: [] });
      expect(audits.find((e) => e.tool === 'act_on_jobs' && e.subject === `sub-${user}x`)).toMatchObject({ decision: 'refused', action: 'hold' });
      const empty = structured(await call(intruder, 'act_on_jobs', { cluster: CLUSTER, action: 'hold' }));
      expect(empty).toMatchObject({ dry_run: true, count: 0, jobs: [] });
      expect(sends.length).toBe(before);

      // Call 2: one command for every job, executed at once (no approver: own jobs, below 200).
      const held = structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'hold', confirm: dry.confirm_token }));
      expect(held).toMatchObject({ dry_run: false, count: jobs.length, approval_required: false });
      expect(held.command.status, JSON.stringify(held.command)).toBe('accepted');
      const heldIds = actedOrStarted(held.command.results, ids);
      expect(sends.length).toBe(before + 1);
      const sent = (await recordOnTopic(held.command.command_id, 'command')) as Command;
      expect(sent).toMatchObject({ action: 'hold', on_behalf_of: user, approval_required: false });
      expect([...sent.job_ids].sort()).toEqual(ids);
      expect(audits.find((e) => e.command_id === held.command.command_id)).toMatchObject({ decision: 'sent', tool: 'act_on_jobs', action: 'hold', subject: `sub-${user}` });
      await waitFor('every job held in jobs', async () => (await Promise.all(heldIds.map(job))).every((j) => j.held && j.urgency === 0 && j.state === 'pending'));

      // Release: the dry run now shows the held jobs; two calls again.
      const dryRelease = structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'release' }));
      expect(dryRelease).toMatchObject({ dry_run: true, count: heldIds.length, approval_required: false });
      expect((dryRelease.jobs as { job_id: string }[]).map((j) => j.job_id).sort()).toEqual(heldIds);
      // A hold dry run finds nothing left to hold.
      expect(structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'hold' }))).toMatchObject({ count: 0 });
      const released = structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'release', confirm: dryRelease.confirm_token }));
      expect(released.command.status, JSON.stringify(released.command)).toBe('accepted');
      expect(released.command.results.every((r: { ok: boolean }) => r.ok)).toBe(true);
      await waitFor('every job released in jobs', async () => (await Promise.all(heldIds.map(job))).every((j) => !j.held && j.urgency === 16 && j.state === 'pending'));
      expect(await actionRow(released.command.command_id)).toMatchObject({ action: 'release', status: 'accepted', approval_required: false });
    });

    it("an admin bulk-holding the same number of another user's jobs needs an approver", async () => {
      const [user, jobs] = await ownerWithMostPending();
      for (const j of jobs) touched.add(j.job_id_s);
      const admin = await clientAs(ADMIN, defaultOwn());
      const filter = { cluster: CLUSTER, action: 'hold', user };
      const dry = structured(await call(admin, 'act_on_jobs', filter));
      expect(dry).toMatchObject({ dry_run: true, count: jobs.length, approval_required: true });
      expect(dry.next_step).toContain('(more than 2 jobs: the command will then wait for an approver)');
      // The user themself, same jobs, same settings: none needed.
      expect(structured(await call(await clientAs(userIdentity(user), defaultOwn()), 'act_on_jobs', filter))).toMatchObject({ count: jobs.length, approval_required: false });
      const sent = structured(await call(admin, 'act_on_jobs', { ...filter, confirm: dry.confirm_token }));
      expect(sent.command.status).toBe('awaiting_approval');
      await waitFor('awaiting_approval in actions, its command folded', async () => {
        const row = await actionRow(sent.command.command_id);
        return row?.status === 'awaiting_approval' && row.requested_by !== '';
      });
      for (const j of jobs) expect((await job(j.job_id_s)).held).toBe(false);
      const done = structured<{ command: any }>(await call(await clientAs(APPROVER), 'approve_command', { command_id: sent.command.command_id })).command;
      expect(done).toMatchObject({ status: 'accepted', approved_by: APPROVER.subject });
      const held = actedOrStarted(done.results, jobs.map((j) => j.job_id_s));
      await waitFor('every job held in jobs', async () => (await Promise.all(held.map(job))).every((j) => j.held));
    });

    it('bulk urgency: a plain user lowers their jobs\' urgency in two calls; above 16 (Flux users\' limit) is refused before anything is sent', async () => {
      const [user, jobs] = await ownerWithMostPending();
      for (const j of jobs) touched.add(j.job_id_s);
      const client = await clientAs(userIdentity(user), defaultOwn());
      const before = sends.length;
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'urgency', urgency: 20 }))).toContain('only up to 16 for its owner');
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'urgency' }))).toContain('action urgency needs urgency');
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'hold', urgency: 3 }))).toContain('urgency is only for action urgency');
      expect(sends.length).toBe(before);
      const dry = structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'urgency', urgency: 8 }));
      expect(dry).toMatchObject({ dry_run: true, count: jobs.length, approval_required: false });
      // The token is for urgency 8, not 9.
      expect(errorText(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'urgency', urgency: 9, confirm: dry.confirm_token }))).toContain('does not match');
      const out = structured(await call(client, 'act_on_jobs', { cluster: CLUSTER, action: 'urgency', urgency: 8, confirm: dry.confirm_token }));
      expect(out.command.status, JSON.stringify(out.command)).toBe('accepted');
      const changed = actedOrStarted(out.command.results, jobs.map((j) => j.job_id_s));
      await waitFor('urgency 8 in jobs', async () => (await Promise.all(changed.map(job))).every((j) => j.urgency === 8));
    });
  });
}
