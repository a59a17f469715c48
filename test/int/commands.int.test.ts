/**
 * Commands end to end on a real log and chDB, with the simulated Flux cluster as the scheduler:
 * a signed command on `<prefix>.<cluster>.commands` → the cluster's scribe (runScribe with its
 * command loop) verifies, authorizes against the scheduler's owner, executes through the
 * simulator → command-result on the events topic → the projector folds `actions`, and the job
 * events the action caused change `jobs`. Refusals: another user's job, expired commands;
 * forged, unsigned and undecodable records are answered with a scribe's `refusal` under an id of
 * its own (never a result under the claimed command id); approvals by the wrong identities; a bulk cancel waits for a second
 * approver; redelivery (also after a scribe restart that rewinds the commands topic) executes
 * nothing twice; forged or unsigned job events are quarantined in dead_letters.
 *
 * The simulator runs on a clock the test moves (`advance`), so the jobs picked as "pending"
 * stay pending until the test says otherwise. Run on the embedded log and on a private Kafka
 * broker (skipped loudly without one; fails under CI).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedLog } from '../../log/embedded.js';
import { createKafkaLog } from '../../log/kafka.js';
import { commandsTopic, eventsTopic, type EventLog } from '../../log/eventLog.js';
import { createKeyring, signRecord, type Keyring } from '../../log/signing.js';
import { Projector } from '../../projector/consume.js';
import { commandRecordMessage, type Approval, type Command, type CommandResult, type Refusal } from '../../schemas/commands/index.js';
import { CommandLedger, commandsGroup, runCommandLoop } from '../../scribe/commandLoop.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { runScribe } from '../../scribe/scribe.js';
import { Simulator } from '../../scribe/sim/index.js';
import type { SchedulerSource } from '../../scribe/source.js';
import { openTestClickHouse, queryRows } from '../support/chdb.js';
import { migrate } from '../../deploy/clickhouse.js';
import { waitUntil } from '../support/cli.js';
import { uniqueName } from '../support/kafka.js';
import { requireTestBroker, type TestBroker } from '../support/privateKafka.js';
import { FakeFluxBroker } from '../support/fakeFluxBroker.js';
import { createFluxSource } from '../../scribe/flux/source.js';
import { mapUserResolver } from '../../scribe/flux/users.js';

const CLUSTER = 'alpha';
const SECRET = Buffer.alloc(32, 7).toString('base64');
const ring = createKeyring({ [CLUSTER]: { active: 'k1', keys: { k1: SECRET } } });
/** Same key id, another secret: what a forger without the key would produce. */
const forgerRing = createKeyring({ [CLUSTER]: { active: 'k1', keys: { k1: randomBytes(32).toString('base64') } } });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The simulator on a clock the test moves; acts and reports owners like createSimSource. */
function steppedSim() {
  const sim = new Simulator({ seed: 5, cluster: CLUSTER, nodes: 2, coresPerNode: 4, gpusPerNode: 0, submitRate: 3, holdRate: 0, expediteRate: 0, cancelPendingRate: 0 });
  let target = sim.time;
  let drainedAt = -1;
  const source: SchedulerSource = {
    scheduler: 'flux',
    act: async (r) => sim.act(r),
    owner: async (id) => sim.owner(id),
    async run({ signal, emit }) {
      while (!signal.aborted) {
        const t = target;
        const batch = sim.nextBatch(500, t);
        if (batch.length > 0) {
          await emit(batch, String(sim.time));
          continue;
        }
        drainedAt = t;
        await sleep(10);
      }
    },
  };
  return {
    sim,
    source,
    advance(seconds: number) {
      target += seconds;
    },
    /** Every event up to the current target has been handed to the scribe. */
    drained: () => drainedAt === target,
  };
}

interface Setup {
  log: EventLog;
  prefix: string;
  close(): Promise<void>;
}

/** One chDB for the file (one engine per process); each suite has its own database. */
let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
beforeAll(async () => {
  ch = await openTestClickHouse('commands_embedded');
});
afterAll(async () => {
  await ch?.cleanup();
});

function commandSuite(name: string, database: string, open: () => Promise<Setup | undefined>): void {
  describe(`commands end to end (${name})`, () => {
    let setup: Setup | undefined;
    let dir: string;
    const projectorGroup = uniqueName('proj');
    let stepped: ReturnType<typeof steppedSim>;
    let stopScribe: () => Promise<void>;
    let stopProjector: () => Promise<void>;
    const results = new Map<string, CommandResult[]>();
    /** The scribe's refusals, by the command id the refused record claimed. */
    const refusals = new Map<string, Refusal[]>();
    /** Records the projector must quarantine (forged / unsigned), counted as the tests inject them. */
    let injectedBad = 0;
    const db = () => database;
    const log = () => setup!.log;
    const prefix = () => setup!.prefix;

    function startScribe(): () => Promise<void> {
      const ac = new AbortController();
      const running = runScribe({
        cluster: CLUSTER,
        source: stepped.source,
        log: log(),
        topicPrefix: prefix(),
        checkpoints: { load: () => undefined, save: () => undefined },
        scribeId: 'alpha@test',
        version: '0',
        signal: ac.signal,
        keyring: ring,
        commands: {
          ledgerPath: join(dir, 'alpha.commands.jsonl'),
          requireSignatures: true,
          onResult: (r) => results.set(r.command_id, [...(results.get(r.command_id) ?? []), r]),
          onRefusal: (r) => void (r.refers_to && refusals.set(r.refers_to, [...(refusals.get(r.refers_to) ?? []), r])),
        },
      });
      return async () => {
        ac.abort();
        await running;
      };
    }

    beforeAll(async () => {
      setup = await open();
      if (!setup) return;
      await migrate(ch.client, database);
      dir = mkdtempSync(join(tmpdir(), 'jobscribe-commands-'));
      stepped = steppedSim();
      stopScribe = startScribe();
      const projector = new Projector({ clickhouse: ch.client, database, log: log(), topicPrefix: prefix(), group: projectorGroup, signing: { keyring: ring, require: true } });
      const ac = new AbortController();
      const projecting = projector.run(ac.signal);
      stopProjector = async () => {
        ac.abort();
        await projecting;
      };
      // An hour of a small, busy cluster: a deep queue of pending jobs.
      stepped.advance(3600);
      await settle();
    }, 240_000);

    afterAll(async () => {
      await stopScribe?.();
      await stopProjector?.();
      await setup?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    beforeEach(({ skip }) => {
      if (!setup) skip();
    });

    /** Waits until the scribe handed over everything up to the clock and the projector wrote it all. */
    async function settle(): Promise<void> {
      await waitUntil(async () => stepped.drained(), { what: 'the simulator to drain', timeoutMs: 60_000, intervalMs: 20 });
      await waitUntil(
        async () => {
          const lag = await log().lag(projectorGroup, [eventsTopic(prefix(), CLUSTER), commandsTopic(prefix(), CLUSTER)]);
          return lag.length > 0 && lag.every((p) => p.lag === 0n && (p.committed !== null || p.highWatermark === 0n));
        },
        { what: 'the projector to catch up', timeoutMs: 60_000, intervalMs: 50 },
      );
    }

    const count = async (sql: string, params: Record<string, unknown> = {}) => Number((await queryRows<{ n: string | number }>(ch, sql, params))[0]!.n);

    interface JobView {
      jid: string;
      user: string;
      state: string;
      held: boolean;
      urgency: number;
      last_seq: number;
    }
    const job = async (id: string): Promise<JobView> =>
      (
        await queryRows<JobView>(
          ch,
          `SELECT toString(job_id) AS jid, user, state, held, urgency, last_seq FROM ${db()}.jobs FINAL WHERE cluster = {c:String} AND job_id = {id:UInt64}`,
          { c: CLUSTER, id },
        )
      )[0]!;

    /** Pending, not held, default urgency: the newest first (the last to start). */
    async function pendingJobs(): Promise<JobView[]> {
      return queryRows<JobView>(
        ch,
        `SELECT toString(job_id) AS jid, user, state, held, urgency, last_seq FROM ${db()}.jobs FINAL
          WHERE cluster = {c:String} AND state = 'pending' AND held = 0 AND urgency = 16 ORDER BY t_submit DESC, job_id DESC`,
        { c: CLUSTER },
      );
    }
    const taken = new Set<string>();
    /** `n` pending jobs of one user nobody used yet, and that user. */
    async function pick(n: number, notUser?: string): Promise<{ user: string; ids: string[] }> {
      const byUser = new Map<string, string[]>();
      for (const j of await pendingJobs()) if (!taken.has(j.jid) && j.user !== notUser) byUser.set(j.user, [...(byUser.get(j.user) ?? []), j.jid]);
      const [user, ids] = [...byUser].sort((a, b) => b[1].length - a[1].length)[0]!;
      expect(ids.length).toBeGreaterThanOrEqual(n);
      const chosen = ids.slice(0, n);
      for (const id of chosen) taken.add(id);
      return { user, ids: chosen };
    }

    const who = (user: string, roles: string[] = ['user'], subject = `${user}@site`) => ({ subject, user, roles });

    function command(c: Partial<Command> & Pick<Command, 'action' | 'job_ids' | 'requested_by'>): Command {
      const now = Date.now() / 1000;
      return {
        v: 1,
        kind: 'command',
        command_id: randomUUID(),
        cluster: CLUSTER,
        args: {},
        issued_at: now,
        expires_at: now + 120,
        approval_required: false,
        ...c,
      };
    }

    /** Publishes a record signed with `keys` (null: unsigned). */
    async function send(record: Command | Approval, keys: Keyring | null = ring): Promise<void> {
      const signed = keys ? signRecord(record, keys, CLUSTER) : record;
      await log().publish(commandsTopic(prefix(), CLUSTER), [commandRecordMessage(signed)]);
    }

    function approval(c: Command, decision: 'approve' | 'reject', by: Approval['by']): Approval {
      return { v: 1, kind: 'approval', command_id: c.command_id, cluster: CLUSTER, decision, by, at: Date.now() / 1000 };
    }

    interface ActionView {
      status: string;
      reason: string;
      results: string;
      approved_by: string;
      rejected_by: string;
      requested_by: string;
      action: string;
      job_ids: string[];
    }
    async function action(id: string, until: (a: ActionView) => boolean): Promise<ActionView> {
      return waitUntil(
        async () => {
          const rows = await queryRows<ActionView>(
            ch,
            `SELECT status, reason, results, approved_by, rejected_by, requested_by, action, job_ids FROM ${db()}.actions FINAL WHERE cluster = {c:String} AND command_id = {id:String}`,
            { c: CLUSTER, id },
          );
          return rows[0] && until(rows[0]) ? rows[0] : undefined;
        },
        { what: `actions row of ${id}`, timeoutMs: 60_000, intervalMs: 50 },
      );
    }
    /** The final row; `withCommand` (default) also waits for the command record itself to be folded. */
    const final = (id: string, withCommand = true) => action(id, (a) => ['accepted', 'rejected', 'failed'].includes(a.status) && (!withCommand || a.requested_by !== ''));

    /** The `actions` row of the scribe's (first) refusal of a record that claimed command id `id`. */
    async function refusalRow(id: string): Promise<ActionView> {
      const r = await waitUntil(async () => refusals.get(id)?.[0], { what: `the refusal of ${id}`, timeoutMs: 60_000, intervalMs: 20 });
      return action(r.command_id, (a) => a.status === 'refused');
    }
    const rowCount = (id: string) => count(`SELECT count() AS n FROM ${db()}.actions FINAL WHERE command_id = {id:String}`, { id });

    /** Waits until the scribe consumed every command published so far. */
    async function scribeCaughtUp(): Promise<void> {
      await waitUntil(
        async () => {
          const lag = await log().lag(commandsGroup(prefix(), CLUSTER), [commandsTopic(prefix(), CLUSTER)]);
          return lag.length > 0 && lag.every((p) => p.lag === 0n);
        },
        { what: 'the scribe to consume its commands', timeoutMs: 60_000, intervalMs: 50 },
      );
    }

    /** Lets job events caused by actions out (and a little simulated time pass), then waits for the read model. */
    async function step(seconds = 1): Promise<void> {
      stepped.advance(seconds);
      await settle();
    }

    it('cancel, hold, release and urgency from the job owner change the simulated jobs; the result lands in actions and jobs', async () => {
      const { user, ids } = await pick(4);
      const [toCancel, toHold, toRelease, toUrgency] = ids as [string, string, string, string];
      const cancel = command({ action: 'cancel', job_ids: [toCancel], args: { note: 'from the test' }, requested_by: who(user) });
      const hold = command({ action: 'hold', job_ids: [toHold], requested_by: who(user) });
      const holdThenRelease = command({ action: 'hold', job_ids: [toRelease], requested_by: who(user) });
      const urgency = command({ action: 'urgency', job_ids: [toUrgency], args: { urgency: 9 }, requested_by: who(user) });
      for (const c of [cancel, hold, holdThenRelease, urgency]) await send(c);
      for (const c of [cancel, hold, holdThenRelease, urgency]) {
        const a = await final(c.command_id);
        expect(a, `${c.action}: ${a.reason}`).toMatchObject({ status: 'accepted', requested_by: `${user}@site`, action: c.action, job_ids: c.job_ids });
        expect(JSON.parse(a.results)).toEqual([expect.objectContaining({ job_id: c.job_ids[0], ok: true })]);
      }
      const release = command({ action: 'release', job_ids: [toRelease], requested_by: who(user) });
      await send(release);
      expect((await final(release.command_id)).status).toBe('accepted');
      await step();

      expect(await job(toCancel)).toMatchObject({ state: 'canceled' });
      expect(await job(toHold)).toMatchObject({ state: 'pending', held: true, urgency: 0 });
      expect(await job(toRelease)).toMatchObject({ state: 'pending', held: false, urgency: 16 });
      expect(await job(toUrgency)).toMatchObject({ state: 'pending', held: false, urgency: 9 });
      // The cancel note reached the scheduler's event.
      const note = await queryRows<{ note: string }>(
        ch,
        `SELECT JSONExtractString(context, 'note') AS note FROM ${db()}.job_events FINAL WHERE cluster = {c:String} AND job_id = {id:UInt64} AND name = 'exception'`,
        { c: CLUSTER, id: toCancel },
      );
      expect(note).toEqual([{ note: 'from the test' }]);
    });

    it("refuses another user's job unless the requester is an admin (ownership re-checked against the scheduler)", async () => {
      const victim = await pick(2);
      const intruder = (await pendingJobs()).find((j) => j.user !== victim.user)!.user;
      const before = await job(victim.ids[0]!);
      const attack = command({ action: 'cancel', job_ids: [victim.ids[0]!], requested_by: who(intruder) });
      // Claiming to act as the owner does not help a non-admin whose mapped user differs... it is
      // the MCP service that sets on_behalf_of; the scribe trusts only the signed record, so a
      // spoofed on_behalf_of needs the key. Here: the plain injection.
      await send(attack);
      const a = await final(attack.command_id);
      expect(a.status).toBe('rejected');
      expect(JSON.parse(a.results)).toEqual([expect.objectContaining({ job_id: victim.ids[0], ok: false, code: 'not_permitted', error: `not owner: the job belongs to ${victim.user}, not ${intruder}` })]);

      const admin = command({ action: 'hold', job_ids: [victim.ids[1]!], requested_by: who('root', ['admin'], 'ops@site') });
      await send(admin);
      expect((await final(admin.command_id)).status).toBe('accepted');
      await step();
      expect(await job(victim.ids[0]!)).toEqual(before);
      expect(await job(victim.ids[1]!)).toMatchObject({ held: true, urgency: 0 });
    });

    it('refuses forged, unsigned and expired commands; nothing happens to the job', async () => {
      const { user, ids } = await pick(3);
      const before = await Promise.all(ids.map(job));
      const forged = command({ action: 'cancel', job_ids: [ids[0]!], requested_by: who(user) });
      const unsigned = command({ action: 'cancel', job_ids: [ids[1]!], requested_by: who(user) });
      const now = Date.now() / 1000;
      const expired = command({ action: 'cancel', job_ids: [ids[2]!], requested_by: who(user), issued_at: now - 120, expires_at: now - 60 });
      await send(forged, forgerRing);
      await send(unsigned, null);
      injectedBad += 2;
      await send(expired);

      // Forged and unsigned commands never reach `actions` themselves (quarantined): only the
      // scribe's refusal does, as a row of its own; nothing is recorded under their command ids.
      expect(await refusalRow(forged.command_id)).toMatchObject({
        status: 'refused',
        action: 'cancel',
        requested_by: '(unverified)',
        reason: `refused by the ${CLUSTER} scribe: command ${forged.command_id} claiming requester "${user}@site": bad signature by key "k1" (forged or altered record)`,
      });
      expect((await refusalRow(unsigned.command_id)).reason).toBe(
        `refused by the ${CLUSTER} scribe: command ${unsigned.command_id} claiming requester "${user}@site": unsigned record (signatures are required)`,
      );
      expect((await final(expired.command_id)).reason).toMatch(/^expired: the command expired at /);
      expect(results.get(forged.command_id)).toBeUndefined();
      expect(results.get(unsigned.command_id)).toBeUndefined();
      expect(await rowCount(forged.command_id)).toBe(0);
      expect(await rowCount(unsigned.command_id)).toBe(0);
      // The projector quarantined the forged and unsigned commands themselves.
      const dead = await queryRows<{ key: string; reason: string }>(ch, `SELECT key, reason FROM ${db()}.dead_letters FINAL WHERE key IN ({a:String}, {b:String}) ORDER BY reason`, {
        a: forged.command_id,
        b: unsigned.command_id,
      });
      expect(dead).toEqual([
        { key: forged.command_id, reason: 'signature: bad signature by key "k1" (forged or altered record)' },
        { key: unsigned.command_id, reason: 'signature: unsigned record (signatures are required)' },
      ]);
      await step();
      expect(await Promise.all(ids.map(job))).toEqual(before);
    });

    it('the same command delivered twice executes once; the stored result is republished', async () => {
      const { user, ids } = await pick(1);
      const c = command({ action: 'urgency', job_ids: ids, args: { urgency: 5 }, requested_by: who(user) });
      await send(c);
      await send(c);
      await scribeCaughtUp();
      expect((await final(c.command_id)).status).toBe('accepted');
      await step();
      const urgencyEvents = await count(
        `SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = {c:String} AND job_id = {id:UInt64} AND name = 'urgency' AND JSONExtractInt(context, 'urgency') = 5`,
        { c: CLUSTER, id: ids[0]! },
      );
      expect(urgencyEvents).toBe(1);
      const published = results.get(c.command_id)!;
      expect(published).toHaveLength(2);
      expect(published[1]).toEqual(published[0]);
    });

    it('a bulk cancel that needs approval does nothing until a second identity with the approver role approves', async () => {
      const { user, ids } = await pick(3);
      const before = await Promise.all(ids.map(job));
      const bulk = command({ action: 'cancel', job_ids: ids, requested_by: who(user, ['user', 'approver']), approval_required: true });
      await send(bulk);
      expect((await action(bulk.command_id, (a) => a.status === 'awaiting_approval')).status).toBe('awaiting_approval');
      // Approvals that do not count: the requester's own (even with the role), another token of the
      // requester's scheduler user (the same person), one without the role, a forged one.
      await send(approval(bulk, 'approve', who(user, ['approver'])));
      await send(approval(bulk, 'approve', who(user, ['approver'], `${user}@desktop`)));
      await send(approval(bulk, 'approve', who('carol', ['user'])));
      await send(approval(bulk, 'approve', who('mallory', ['approver'])), forgerRing);
      injectedBad += 1;
      await scribeCaughtUp();
      await step();
      expect(await Promise.all(ids.map(job))).toEqual(before);
      expect(await action(bulk.command_id, () => true)).toMatchObject({ status: 'awaiting_approval', approved_by: '' });
      // Each is refused in a row of its own, which names why.
      expect((refusals.get(bulk.command_id) ?? []).map((r) => r.reason)).toEqual([
        `approval ${bulk.command_id}: ${user}@site cannot approve their own command`,
        `approval ${bulk.command_id}: ${user}@desktop (scheduler user ${user}, as the requester ${user}@site) cannot approve their own command`,
        `approval ${bulk.command_id}: carol@site does not hold the approver role`,
        `approval ${bulk.command_id} claiming requester "mallory@site": bad signature by key "k1" (forged or altered record)`,
      ]);

      await send(approval(bulk, 'approve', who('bob', ['approver'])));
      const a = await final(bulk.command_id);
      expect(a).toMatchObject({ status: 'accepted', approved_by: 'bob@site' });
      expect(JSON.parse(a.results).map((r: { job_id: string; ok: boolean }) => [r.job_id, r.ok])).toEqual(ids.map((id) => [id, true]));
      await step();
      for (const id of ids) expect((await job(id)).state).toBe('canceled');
    });

    it('a rejected or expired bulk command never runs', async () => {
      const { user, ids } = await pick(4);
      const before = await Promise.all(ids.map(job));
      const rejected = command({ action: 'cancel', job_ids: ids.slice(0, 2), requested_by: who(user), approval_required: true });
      const expiring = command({ action: 'cancel', job_ids: ids.slice(2), requested_by: who(user), approval_required: true, expires_at: Date.now() / 1000 + 5 }); // long enough to be seen awaiting under CI load
      await send(rejected);
      await send(expiring);
      await action(expiring.command_id, (a) => a.status === 'awaiting_approval');
      await send({ ...approval(rejected, 'reject', who('bob', ['approver'])), reason: 'too broad' });
      expect(await final(rejected.command_id)).toMatchObject({ status: 'rejected', rejected_by: 'bob@site', reason: 'rejected by approver bob@site: too broad' });
      expect(results.get(rejected.command_id)!.at(-1)!.decided_by).toMatchObject({ decision: 'reject', subject: 'bob@site' });
      await waitUntil(async () => Date.now() / 1000 > expiring.expires_at + 0.2, { what: 'the command to expire', intervalMs: 50 });
      await send(approval(expiring, 'approve', who('bob', ['approver'])));
      expect((await final(expiring.command_id)).reason).toMatch(/^approval expired/);
      await step();
      expect(await Promise.all(ids.map(job))).toEqual(before);
    });

    it('after a restart that rewinds the commands topic, no command runs again (the ledger is on disk)', async () => {
      await scribeCaughtUp();
      await stopScribe();
      const eventsBefore = await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`);
      // The final result each command got before the restart (its last one; bulk commands said awaiting_approval first).
      const firstResults = new Map([...results].map(([id, rs]) => [id, rs[rs.length - 1]!]));
      results.clear();
      const topic = commandsTopic(prefix(), CLUSTER);
      const partitions = await log().lag(commandsGroup(prefix(), CLUSTER), [topic]);
      await log().setCommitted(
        commandsGroup(prefix(), CLUSTER),
        partitions.map((p) => ({ topic, partition: p.partition, offset: 0n })),
      );
      stopScribe = startScribe();
      await scribeCaughtUp();
      await step();
      expect(await count(`SELECT count() AS n FROM ${db()}.job_events FINAL`)).toBeGreaterThanOrEqual(eventsBefore);
      // Every stored final result came out again exactly as first published (same `at`: not re-decided).
      // Forged and unsigned commands are never stored (a forged copy must not block the genuine id): they are refused afresh.
      let republished = 0;
      for (const [id, first] of firstResults) {
        if (first.reason?.startsWith('unsigned') || first.reason?.startsWith('bad signature')) continue;
        const again = results.get(id) ?? [];
        expect(again.length, id).toBeGreaterThan(0);
        for (const r of again) expect(r).toEqual(first);
        republished++;
      }
      expect(republished).toBeGreaterThan(10);
      // Each job action the scheduler took produced exactly one urgency or cancel event on its job
      // (the simulator makes no urgency changes of its own here): none came twice.
      const acted = [...firstResults.values()].filter((r) => r.status === 'accepted').flatMap((r) => r.results.filter((x) => x.ok).map((x) => x.job_id));
      const actionEvents = await count(
        `SELECT count() AS n FROM ${db()}.job_events FINAL WHERE cluster = {c:String} AND job_id IN (${[...new Set(acted)].join(',')})
            AND (name = 'urgency' OR (name = 'exception' AND JSONExtractString(context, 'type') = 'cancel'))`,
        { c: CLUSTER },
      );
      expect(acted.length).toBeGreaterThan(5);
      expect(actionEvents).toBe(acted.length);
    });

    it('a command whose args nest 30,000 deep is audited as refused (a row of its own) and quarantined; the commands after it run', async () => {
      const { user, ids } = await pick(2);
      const before = await job(ids[0]!);
      const deep = command({ action: 'cancel', job_ids: [ids[0]!], args: { extra: '__DEEP__' }, requested_by: who(user) });
      // JSON.stringify cannot write such a record: the nesting is spliced into the text (signed, so the
      // signature check has to walk it: that walk overflowed the stack before the record was bounded).
      const value = JSON.stringify(signRecord(deep, ring, CLUSTER)).replace('"__DEEP__"', '['.repeat(30_000) + ']'.repeat(30_000));
      await log().publish(commandsTopic(prefix(), CLUSTER), [{ ...commandRecordMessage(deep), value }]);
      injectedBad += 1;
      const after = command({ action: 'hold', job_ids: [ids[1]!], requested_by: who(user) });
      await send(after);

      expect(await refusalRow(deep.command_id)).toMatchObject({
        status: 'refused',
        action: 'record',
        reason: `refused by the ${CLUSTER} scribe: record ${deep.command_id}: invalid: record nested too deep: more than 64 levels of objects / arrays`,
      });
      expect((await final(after.command_id)).status).toBe('accepted');
      expect(await rowCount(deep.command_id)).toBe(0);
      const dead = await queryRows<{ reason: string }>(ch, `SELECT reason FROM ${db()}.dead_letters FINAL WHERE key = {k:String}`, { k: deep.command_id });
      expect(dead).toEqual([{ reason: 'record nested too deep: more than 64 levels of objects / arrays' }]);
      await step();
      expect(await job(ids[0]!)).toEqual(before);
    });

    it('quarantines forged and unsigned job events; every genuine (signed) event is accepted', async () => {
      const { ids } = await pick(1);
      const before = await job(ids[0]!);
      const origin = { cluster: CLUSTER, scheduler: 'flux' as const, scribe: { id: 'alpha@test', version: '0' } };
      const fake = toEnvelope(origin, { job_id: ids[0]!, seq: before.last_seq + 1, name: 'exception', ts: Date.now() / 1000, context: { type: 'cancel', severity: 0, userid: 0, note: 'forged' }, raw: null }, Date.now() / 1000);
      const topic = eventsTopic(prefix(), CLUSTER);
      await log().publish(topic, [toLogMessage(signRecord(fake, forgerRing, CLUSTER)), toLogMessage(fake)]);
      injectedBad += 2;
      await waitUntil(async () => (await count(`SELECT count() AS n FROM ${db()}.dead_letters FINAL WHERE key = {k:String}`, { k: `${CLUSTER}:${ids[0]}` })) === 2, {
        what: 'the forged events in dead_letters',
        intervalMs: 50,
      });
      const reasons = await queryRows<{ reason: string }>(ch, `SELECT reason FROM ${db()}.dead_letters FINAL WHERE key = {k:String} ORDER BY reason`, { k: `${CLUSTER}:${ids[0]}` });
      expect(reasons).toEqual([{ reason: 'signature: bad signature by key "k1" (forged or altered record)' }, { reason: 'signature: unsigned record (signatures are required)' }]);
      await step();
      expect(await job(ids[0]!)).toMatchObject({ state: 'pending', last_seq: before.last_seq });
      // Nothing else was quarantined: the scribe's envelopes and results all carried good signatures.
      expect(await count(`SELECT count() AS n FROM ${db()}.dead_letters FINAL`)).toBe(injectedBad);
    });
  });
}

commandSuite('embedded', 'commands_embedded', async () => {
  const log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
  return { log, prefix: 'jobscribe', close: () => log.close() };
});

let broker: TestBroker | undefined;
commandSuite('kafka', 'commands_kafka', async () => {
  broker = await requireTestBroker('commands');
  if (!broker) return undefined;
  const log = createKafkaLog({ brokers: broker.brokers, clientId: 'jobscribe-commands-test', topicRefreshMs: 500 });
  return {
    log,
    prefix: uniqueName('cmd'),
    close: async () => {
      await log.close();
      await broker?.close();
    },
  };
});

/**
 * A scribe without signing keys (it checks nothing, so a deep record reaches the ledger's
 * JSON.stringify): its command loop on the embedded log. A command whose args nest 30,000 levels
 * deep used to throw RangeError out of the loop on every restart; now it is refused at decode,
 * audited as a refusal with the reason, and the next command runs.
 */
describe('command loop without signing keys: records past the decode bounds', () => {
  const database = 'commands_unsigned';
  const prefix = 'unsignedcmd';
  let dir: string;

  beforeAll(async () => {
    await migrate(ch.client, database);
    dir = mkdtempSync(join(tmpdir(), 'jobscribe-unsigned-commands-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a 30,000-deep command is refused with the reason and the loop goes on to the next command', async () => {
    const log = createEmbeddedLog(ch.client, database, { pollIntervalMs: 20 });
    const acted: string[] = [];
    const source: SchedulerSource = {
      scheduler: 'flux',
      act: async (r) => {
        acted.push(`${r.action} ${r.job_id}`);
        return { ok: true };
      },
      run: async () => undefined,
    };
    const results = new Map<string, CommandResult>();
    const refused = new Map<string, Refusal>();
    const ac = new AbortController();
    let stopped: unknown = 'running';
    const loop = runCommandLoop({
      cluster: CLUSTER,
      source,
      log,
      topicPrefix: prefix,
      ledger: new CommandLedger(join(dir, 'ledger.jsonl')),
      signing: { require: false },
      scribe: { id: 'alpha@test', version: '0' },
      signal: ac.signal,
      onResult: (r) => results.set(r.command_id, r),
      onRefusal: (r) => void (r.refers_to && refused.set(r.refers_to, r)),
    }).then(
      () => (stopped = 'stopped'),
      (err: unknown) => (stopped = err),
    );
    const now = Date.now() / 1000;
    const admin = { subject: 'ops@site', roles: ['admin'] };
    const base = { v: 1, kind: 'command', cluster: CLUSTER, issued_at: now, expires_at: now + 120, approval_required: false, requested_by: admin } as const;
    const deep: Command = { ...base, command_id: randomUUID(), action: 'cancel', job_ids: ['1'], args: { extra: '__DEEP__' } };
    const next: Command = { ...base, command_id: randomUUID(), action: 'hold', job_ids: ['2'], args: {} };
    const value = JSON.stringify(deep).replace('"__DEEP__"', '{"a":'.repeat(30_000) + '1' + '}'.repeat(30_000));
    await log.publish(commandsTopic(prefix, CLUSTER), [{ ...commandRecordMessage(deep), value }, commandRecordMessage(next)]);
    try {
      await waitUntil(async () => (results.has(next.command_id) && refused.has(deep.command_id)) || stopped !== 'running', { what: 'the command after the deep one', timeoutMs: 30_000, intervalMs: 20 });
      expect(stopped).toBe('running');
      expect(results.get(deep.command_id)).toBeUndefined();
      expect(refused.get(deep.command_id)).toMatchObject({ kind: 'refusal', tool: 'scribe', reason: `record ${deep.command_id}: invalid: record nested too deep: more than 64 levels of objects / arrays` });
      expect(results.get(next.command_id)).toMatchObject({ status: 'accepted' });
      expect(acted).toEqual(['hold 2']);
      // committed past both: a restart does not meet the deep record again
      await waitUntil(async () => (await log.lag(commandsGroup(prefix, CLUSTER), [commandsTopic(prefix, CLUSTER)]))[0]?.lag === 0n, { what: 'the commit', intervalMs: 20 });
    } finally {
      ac.abort();
      await loop;
      await log.close();
    }
  });
});

/**
 * The same command path through the Flux source against the fake broker (real framing): the
 * exact RPCs the scribe sends for commands, and fail-closed ownership when the owner lookup
 * (job-info.lookup) is not answered.
 */
describe('commands through the Flux source (fake broker)', () => {
  const JOB = '5358877671424';
  const HELD = `{"id":${JOB},"events":[{"timestamp":1795327000.5,"name":"submit","context":{"userid":1000,"urgency":0,"flags":0,"version":1}}]}`;
  const database = 'commands_flux';
  let dir: string;
  let broker: FakeFluxBroker;
  let log: EventLog;
  const stops: (() => Promise<void>)[] = [];
  const results = new Map<string, CommandResult>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jobscribe-flux-commands-'));
    broker = await FakeFluxBroker.start({ path: join(dir, 'broker.sock'), backlog: [HELD], autoAdvance: false });
    await migrate(ch.client, database);
    log = createEmbeddedLog(ch.client, database, { pollIntervalMs: 20 });
    const ac = new AbortController();
    const scribing = runScribe({
      cluster: CLUSTER,
      source: createFluxSource({ uri: `local://${broker.path}`, logger: () => {}, users: mapUserResolver({ 0: 'root', 1000: 'alice' }) }),
      log,
      topicPrefix: 'fluxcmd',
      checkpoints: { load: () => undefined, save: () => undefined },
      scribeId: 'alpha@flux-test',
      version: '0',
      signal: ac.signal,
      keyring: ring,
      commands: { ledgerPath: join(dir, 'ledger.jsonl'), requireSignatures: true, onResult: (r) => results.set(r.command_id, r) },
    });
    const projector = new Projector({ clickhouse: ch.client, database, log, topicPrefix: 'fluxcmd', signing: { keyring: ring, require: true } });
    const pc = new AbortController();
    const projecting = projector.run(pc.signal);
    stops.push(async () => {
      ac.abort();
      await scribing;
      pc.abort();
      await projecting;
    });
  }, 60_000);

  afterAll(async () => {
    for (const s of stops) await s();
    await log?.close();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const send = async (c: Partial<Command> & Pick<Command, 'action' | 'job_ids' | 'requested_by'>): Promise<Command> => {
    const now = Date.now() / 1000;
    const cmd: Command = { v: 1, kind: 'command', command_id: randomUUID(), cluster: CLUSTER, args: {}, issued_at: now, expires_at: now + 60, approval_required: false, ...c };
    await log.publish(commandsTopic('fluxcmd', CLUSTER), [commandRecordMessage(signRecord(cmd, ring, CLUSTER))]);
    return cmd;
  };
  const actionRow = (id: string) =>
    waitUntil(
      async () =>
        (
          await queryRows<{ status: string; reason: string; results: string; requested_by: string }>(
            ch,
            `SELECT status, reason, results, requested_by FROM ${database}.actions FINAL WHERE command_id = {id:String} AND status IN ('accepted', 'rejected', 'failed') AND requested_by != ''`,
            { id },
          )
        )[0],
      { what: `actions row ${id}`, intervalMs: 50 },
    );
  const payloads = (topic: string) => broker.requestsFor(topic).map((r) => r.payload!.toString('utf8').replace(/\0$/, ''));

  it('admin cancel / hold / urgency / signal send the flux-core payloads; results land in actions', async () => {
    const admin = { subject: 'ops@site', roles: ['admin'] };
    const hold = await send({ action: 'hold', job_ids: [JOB], requested_by: admin });
    expect(await actionRow(hold.command_id)).toMatchObject({ status: 'accepted', requested_by: 'ops@site' });
    const urg = await send({ action: 'urgency', job_ids: [JOB], args: { urgency: 31 }, requested_by: admin });
    const u = await actionRow(urg.command_id);
    expect(JSON.parse(u.results)).toEqual([{ job_id: JOB, ok: true, response: { urgency: 31, old_urgency: 0 } }]);
    const sig = await send({ action: 'signal', job_ids: [JOB], args: { signal: 'USR1' }, requested_by: admin });
    expect((await actionRow(sig.command_id)).status).toBe('accepted');
    const cancel = await send({ action: 'cancel', job_ids: [JOB], args: { note: 'probe' }, requested_by: admin });
    expect((await actionRow(cancel.command_id)).status).toBe('accepted');
    const missing = await send({ action: 'cancel', job_ids: ['99'], requested_by: admin });
    const m = await actionRow(missing.command_id);
    expect(m.status).toBe('failed');
    expect(JSON.parse(m.results)).toEqual([expect.objectContaining({ job_id: '99', ok: false, code: 'no_such_job' })]);

    expect(payloads('job-manager.urgency')).toEqual([`{"id":${JOB},"urgency":0}`, `{"id":${JOB},"urgency":31}`]);
    expect(payloads('job-manager.kill')).toEqual([`{"id":${JOB},"signum":10}`]);
    expect(payloads('job-manager.raise')).toEqual([`{"id":${JOB},"type":"cancel","severity":0,"note":"probe"}`, `{"id":99,"type":"cancel","severity":0}`]);
    // Admins are not owner-checked.
    expect(payloads('job-info.lookup')).toEqual([]);
    // The Flux scribe signed its job envelope: projected, nothing quarantined.
    await waitUntil(async () => (await queryRows(ch, `SELECT 1 FROM ${database}.jobs FINAL WHERE job_id = {id:UInt64}`, { id: JOB })).length === 1, { what: 'the job row', intervalMs: 50 });
    expect(await queryRows(ch, `SELECT reason FROM ${database}.dead_letters`)).toEqual([]);
  });

  it("a user's command asks Flux for the job's owner first, and fails closed when it cannot tell", async () => {
    const before = broker.requestsFor('job-manager.urgency').length;
    const c = await send({ action: 'hold', job_ids: [JOB], requested_by: { subject: 'alice@site', user: 'alice', roles: ['user'] } });
    const a = await actionRow(c.command_id);
    expect(payloads('job-info.lookup')).toEqual([`{"id":${JOB},"keys":["eventlog"],"flags":0}`]);
    // The fake broker has no job-info service (ENOSYS): no owner, so nothing is done.
    expect(a.status).toBe('failed');
    expect(JSON.parse(a.results)).toEqual([expect.objectContaining({ job_id: JOB, ok: false, code: 'failed', error: expect.stringMatching(/^owner check: /) })]);
    expect(broker.requestsFor('job-manager.urgency').length).toBe(before);
  });
});
