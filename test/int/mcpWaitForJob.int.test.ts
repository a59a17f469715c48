/**
 * wait_for_job on the real pipeline: a simulated job's events are published to the embedded log in
 * steps while the projector runs, and an MCP client waits on the job. The call answers once the
 * job ends, with every state it went through and one progress notification per change; it gives
 * up early when the asked state can no longer come, answers `call_again` at its timeout, and a
 * plain user waiting on another user's job gets the answer a missing job gets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic, type EventLog } from '../../log/eventLog.js';
import type { Identity } from '../../mcp/identity.js';
import { waitOutcome } from '../../mcp/tools/waitForJob.js';
import { Projector } from '../../projector/consume.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { openTestClickHouse } from '../support/chdb.js';
import { connectMcp } from '../support/mcpClient.js';

const PREFIX = 'jobscribe';
const SIM = { seed: 5, cluster: 'alpha', nodes: 4, maxJobs: 6, failureRate: 0, signalRate: 0, execErrorRate: 0, timeoutRate: 0, cancelPendingRate: 0, cancelRunningRate: 0, holdRate: 0, dependencyRate: 0, unsatisfiableRate: 0, burstRate: 0 } as const;
const origin = { cluster: SIM.cluster, scheduler: 'flux' as const, scribe: { id: 'test', version: '0' } };

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
let log: EventLog;
const ac = new AbortController();
let projecting: Promise<void>;
const events = [...simulate(SIM)];
const jobIds = [...new Set(events.map((e) => e.job_id))];

const publish = (evs: SourceEvent[]) => log.publish(eventsTopic(PREFIX, SIM.cluster), evs.map((e) => toLogMessage(toEnvelope(origin, e, e.ts + 0.1))));
/** The events of `job` up to and including the first named `until` (all of them when absent). */
const upTo = (job: string, until?: string) => {
  const mine = events.filter((e) => e.job_id === job);
  const i = until ? mine.findIndex((e) => e.name === until) : mine.length - 1;
  return { head: mine.slice(0, i + 1), rest: mine.slice(i + 1) };
};
const deps = () => ({ clickhouse: ch.client, database: ch.database, pollMs: 100 });

beforeAll(async () => {
  ch = await openTestClickHouse('wait_test');
  log = createEmbeddedLog(ch.client, ch.database, { pollIntervalMs: 20 });
  projecting = new Projector({ clickhouse: ch.client, database: ch.database, log, topicPrefix: PREFIX }).run(ac.signal);
});
afterAll(async () => {
  ac.abort();
  await projecting;
  await ch.cleanup();
});

async function call(client: Client, args: Record<string, unknown>, onprogress?: (p: { progress: number; message?: string }) => void) {
  const r = await client.callTool({ name: 'wait_for_job', arguments: args }, onprogress ? { onprogress, timeout: 130_000 } : { timeout: 130_000 });
  return r;
}

describe('wait_for_job', () => {
  it('answers when the job ends, with each state it went through and a progress notification per change', async () => {
    const job = jobIds[0]!;
    const pending = upTo(job, 'priority');
    await publish(pending.head);
    const client = await connectMcp(deps());
    // the job is in the read model, pending
    await expect.poll(async () => ((await client.callTool({ name: 'get_job', arguments: { job_id: job } })).structuredContent as { job?: { state: string } } | undefined)?.job?.state, { timeout: 10_000 }).toBe('pending');
    const progress: string[] = [];
    const waiting = call(client, { job_id: job, timeout_s: 60 }, (p) => progress.push(p.message ?? ''));
    await new Promise((r) => setTimeout(r, 700));
    const running = upTo(job, 'start');
    await publish(running.head.slice(pending.head.length));
    await expect.poll(() => progress.length, { timeout: 10_000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    await publish(running.rest);
    const r = await waiting;
    expect(r.isError).toBeFalsy();
    const out = r.structuredContent as { reached: boolean; call_again: boolean; states_seen: string[]; job: { state: string }; waited_s: number };
    expect(out).toMatchObject({ reached: true, call_again: false, states_seen: ['pending', 'running', 'completed'], job: { state: 'completed' } });
    expect(out.waited_s).toBeGreaterThan(1);
    expect(out.waited_s).toBeLessThan(30);
    expect(progress).toEqual([`alpha job ${job}: running`, `alpha job ${job}: completed`]);
    await client.close();
  }, 60_000);

  it('gives up at once when the asked state can no longer come, and says call_again at its timeout', async () => {
    const ended = jobIds[0]!; // completed above
    const client = await connectMcp(deps());
    const hopeless = (await call(client, { job_id: ended, until_state: 'running', timeout_s: 30 })).structuredContent as { reached: boolean; call_again: boolean; waited_s: number };
    expect(hopeless).toMatchObject({ reached: false, call_again: false });
    expect(hopeless.waited_s).toBeLessThan(2);

    const job = jobIds[1]!;
    await publish(upTo(job, 'priority').head);
    await expect.poll(async () => !(await client.callTool({ name: 'get_job', arguments: { job_id: job } })).isError, { timeout: 10_000 }).toBe(true);
    const t0 = Date.now();
    const timedOut = (await call(client, { job_id: job, timeout_s: 1.5 })).structuredContent as { reached: boolean; call_again: boolean; states_seen: string[] };
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(timedOut).toMatchObject({ reached: false, call_again: true, states_seen: ['pending'] });
    await client.close();
  }, 60_000);

  it('a plain user waiting on another user’s job gets what a missing job gets, and bad arguments say what to fix', async () => {
    const job = jobIds[0]!;
    const admin = await connectMcp(deps());
    const owner = ((await admin.callTool({ name: 'get_job', arguments: { job_id: job } })).structuredContent as { job: { user: string } }).job.user;
    await admin.close();
    const someoneElse: Identity = { subject: 'mallory', user: 'mallory', roles: [] };
    const client = await connectMcp({ ...deps(), jobDetails: 'own' }, someoneElse);
    const foreign = await call(client, { job_id: job, timeout_s: 2 });
    const missing = await call(client, { job_id: '123456789', timeout_s: 2 });
    expect(foreign.isError).toBe(true);
    const text = (r: typeof foreign) => JSON.stringify(r.content).replaceAll(job, 'ID').replaceAll('123456789', 'ID');
    expect(text(foreign)).toBe(text(missing));
    expect(owner).not.toBe('mallory');
    expect(JSON.stringify(foreign)).not.toContain(owner);
    const tooLong = await call(client, { job_id: job, timeout_s: 600 });
    expect(tooLong.isError).toBe(true);
    expect(JSON.stringify(tooLong.content)).toMatch(/timeout_s/);
    await client.close();
  });

  it('the stop rule', () => {
    expect(waitOutcome('ended', 'pending', 'running')).toEqual({ reached: false, hopeless: false });
    expect(waitOutcome('ended', 'pending', 'failed')).toEqual({ reached: true, hopeless: false });
    expect(waitOutcome('changed', 'pending', 'pending')).toEqual({ reached: false, hopeless: false });
    expect(waitOutcome('changed', 'pending', 'running')).toEqual({ reached: true, hopeless: false });
    expect(waitOutcome('running', 'pending', 'canceled')).toEqual({ reached: false, hopeless: true });
    expect(waitOutcome('pending', 'pending', 'running')).toEqual({ reached: false, hopeless: true });
    expect(waitOutcome('completed', 'running', 'failed')).toEqual({ reached: false, hopeless: true });
  });
});
