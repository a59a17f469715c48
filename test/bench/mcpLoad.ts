/**
 * The MCP load part of `npm run bench` (BENCH_ONLY=mcpload runs it alone): the real HTTP server
 * (mcp/http.ts) on 127.0.0.1:0 over a simulated read model with the simulator still running
 * (a trickle of live events through the embedded log and the projector while the load runs),
 * driven by BENCH_LOAD_CLIENTS (default 50) concurrent official-SDK clients over Streamable HTTP
 * for a fixed BENCH_LOAD_CALLS (default 5,000) calls of get_job / search_jobs / queue_summary,
 * then stops. Prints calls/s and p50/p95/p99 per tool and overall; then the isolation figure:
 * identity B's get_job latency while identity A runs heavy run_sql queries, against B alone.
 *
 * Loopback only, a fixed count of calls, a temp data directory removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { openClickHouse } from '../../deploy/clickhouse.js';
import { createEmbeddedLog } from '../../log/embedded.js';
import { eventsTopic } from '../../log/eventLog.js';
import { Projector } from '../../projector/consume.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';
import type { SourceEvent } from '../../scribe/source.js';
import { startHttpServer } from '../../mcp/http.js';
import type { McpDeps } from '../../mcp/server.js';
import { jobTags, ReadCache, ReadModelPosition } from '../../mcp/readCache.js';
import type { LoadPlan, LoadResult } from './mcpLoadClients.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const fmt = (ms: number[]) => `p50 ${pct(ms, 50).toFixed(1)} ms, p95 ${pct(ms, 95).toFixed(1)} ms, p99 ${pct(ms, 99).toFixed(1)} ms`;

const CLUSTER = 'fluke';
const DB = 'benchload';

async function connect(url: string, token?: string): Promise<Client> {
  const client = new Client({ name: 'bench-load', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : undefined),
  );
  return client;
}

export async function benchMcpLoad(): Promise<void> {
  const nClients = Number(process.env.BENCH_LOAD_CLIENTS ?? 50);
  const nCalls = Number(process.env.BENCH_LOAD_CALLS ?? 5000);
  const jobs = Number(process.env.BENCH_LOAD_JOBS ?? 20_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-bench-load-'));
  const ch = await openClickHouse({ dataDir, database: DB });
  const log = createEmbeddedLog(ch.client, DB, { maxBatchRecords: 5000 });
  const ac = new AbortController();
  const stoppers: (() => Promise<void>)[] = [];
  try {
    // The read model: a simulated cluster, 90% of its events projected before the load; the
    // rest published in real time during it (the simulator keeps running).
    const t0 = performance.now();
    const events: SourceEvent[] = [...simulate({ seed: 7, cluster: CLUSTER, nodes: 64, submitRate: 20, maxJobs: jobs })];
    const origin = { cluster: CLUSTER, scheduler: 'flux' as const, scribe: { id: 'bench', version: '0' } };
    const topic = eventsTopic('jobscribe', CLUSTER);
    const publish = (batch: SourceEvent[]) => log.publish(topic, batch.map((e) => toLogMessage(toEnvelope(origin, e, e.ts + 0.05))));
    const upfront = Math.floor(events.length * 0.9);
    for (let i = 0; i < upfront; i += 5000) await publish(events.slice(i, Math.min(upfront, i + 5000)));
    const projector = new Projector({ clickhouse: ch.client, database: DB, log, topicPrefix: 'jobscribe' });
    await projector.run(ac.signal, { from: 'earliest' }, true);
    console.log(`mcp load read model       ${jobs.toLocaleString()} jobs, ${upfront.toLocaleString()} events projected in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    const position = new ReadModelPosition();
    projector.on('batch', (b) => position.advance(jobTags(b.jobRows)));
    const readCache = process.env.BENCH_LOAD_CACHE === '0' ? undefined : new ReadCache(position);
    const projecting = projector.run(ac.signal);
    stoppers.push(() => projecting);
    let next = upfront;
    const live = process.env.BENCH_LOAD_LIVE !== '0';
    const trickle = setInterval(() => {
      if (!live) return;
      // ~80 events/s in 4 publishes a second: a busier cluster than `up`'s default simulator
      if (next >= events.length) return;
      const batch = events.slice(next, next + 20);
      next += batch.length;
      publish(batch).catch(() => undefined);
    }, 250);
    stoppers.push(async () => clearInterval(trickle));

    const ALICE = 'alice-bench-token-0123456789';
    const BOB = 'bob-bench-token-0123456789ab';
    const sample = await ch.client
      .query({ query: `SELECT toString(job_id) AS job_id, user FROM ${DB}.jobs FINAL ORDER BY cityHash64(job_id) LIMIT 500`, format: 'JSONEachRow' })
      .then((r) => r.json<{ job_id: string; user: string }>());
    const users = [...new Set(sample.map((s) => s.user))];
    const [userA, userB] = users;
    if (!userA || !userB) throw new Error('the bench read model has fewer than two users');
    const deps: McpDeps = {
      clickhouse: ch.connectPool('mcp', Number(process.env.BENCH_LOAD_MCP_CONNECTIONS ?? 2)),
      lookupClickhouse: ch.connect('mcp-lookups'),
      sqlClickhouse: { users: ch.connect('sql-users'), admins: ch.connect('sql-admins') },
      database: DB,
      ...(readCache && { readCache }),
    };
    const open = await startHttpServer(deps, { port: 0 });
    stoppers.push(() => open.close());
    const sha = (t: string) => createHash('sha256').update(t).digest();
    const authed = await startHttpServer(deps, {
      port: 0,
      auth: { tokens: [{ name: 'a', sha256: sha(ALICE), user: userA, roles: [] }, { name: 'b', sha256: sha(BOB), user: userB, roles: [] }] },
    });
    stoppers.push(() => authed.close());

    // 1. N concurrent clients (in a child process: mcpLoadClients.ts), a fixed count of calls, on
    //    the unauthenticated loopback endpoint (`up`'s default). CPU is this process's: server,
    //    engine, projector and simulator.
    const child = fork(fileURLToPath(new URL('./mcpLoadClients.js', import.meta.url)), { stdio: 'inherit' });
    let cpu0 = process.cpuUsage();
    const done = new Promise<LoadResult>((resolve, reject) => {
      child.on('message', (m: LoadResult | { warm: true }) => {
        if ('warm' in m) cpu0 = process.cpuUsage(); // measured from the end of the warm-up
        else resolve(m);
      });
      child.once('exit', (code) => reject(new Error(`the load clients exited with ${code}`)));
    });
    // What the simulator, the projector and the engine's merges take with no MCP traffic.
    const idle0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 5000));
    const idle = process.cpuUsage(idle0);
    const idleShare = (idle.user + idle.system) / 1000 / 5000;
    const hot = sample.slice(0, Number(process.env.BENCH_LOAD_HOT_JOBS ?? 500));
    const plan: LoadPlan = { url: open.url, clients: nClients, calls: nCalls, warmup: Number(process.env.BENCH_LOAD_WARMUP ?? 1000), jobIds: hot.map((s) => s.job_id), users };
    child.send(plan);
    const result = await done;
    const cpu = process.cpuUsage(cpu0);
    const all = Object.values(result.latencies).flat();
    const cpuMsPerCall = (cpu.user + cpu.system) / 1000 / all.length;
    console.log(
      `mcp load ${nClients} clients, ${all.length} calls over HTTP: ${Math.round(all.length / result.wallS).toLocaleString()} calls/s, ${fmt(all)}; ` +
        `server CPU ${cpuMsPerCall.toFixed(2)} ms/call${result.errors ? `, ${result.errors} tool errors (${result.firstError})` : ''}`,
    );
    for (const [n, ms] of Object.entries(result.latencies)) console.log(`mcp load   ${n.padEnd(16)} ${fmt(ms)}`);
    const st = readCache?.stats;
    console.log(
      `mcp load   (without MCP traffic the simulator, projector and engine take ${(idleShare * 100).toFixed(0)}% of a core; ` +
        `projector batches: ${position.version}, live events: ${next - upfront}` +
        (st ? `; read cache: ${st.hits} hits, ${st.shared} shared, ${st.misses} queries)` : '; read cache off)'),
    );
    // 2. Isolation: B's get_job alone, then while A keeps heavy run_sql queries running.
    // Each call asks for a job not asked before, so every one is a query (no read-cache hit).
    const bJobs = await ch.client
      .query({ query: `SELECT toString(job_id) AS job_id FROM ${DB}.jobs FINAL WHERE user = {u:String} ORDER BY job_id LIMIT 200`, query_params: { u: userB }, format: 'JSONEachRow' })
      .then((r) => r.json<{ job_id: string }>());
    if (bJobs.length < 200) throw new Error(`user ${userB} has only ${bJobs.length} jobs; the isolation figure needs 200`);
    let nextB = 0;
    const b = await connect(authed.url, BOB);
    const a = await connect(authed.url, ALICE);
    const bCalls = async (n: number) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = performance.now();
        const r = await b.callTool({ name: 'get_job', arguments: { job_id: bJobs[nextB++]!.job_id } });
        ms.push(performance.now() - s);
        if (r.isError) throw new Error(`get_job as B: ${JSON.stringify(r.content).slice(0, 200)}`);
      }
      return ms;
    };
    const alone = await bCalls(100);
    const heavySql = `SELECT count() AS n, sum(cityHash64(x.name, y.name)) AS h FROM job_events AS x, job_events AS y WHERE x.job_id != y.job_id`;
    let heavyRuns = 0;
    let heavyMs = 0;
    let heavyOn = true;
    const heavy = (async () => {
      while (heavyOn) {
        const s = performance.now();
        await a.callTool({ name: 'run_sql', arguments: { sql: heavySql } });
        heavyMs += performance.now() - s;
        heavyRuns++;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const during = await bCalls(100);
    heavyOn = false;
    await heavy;
    const delay = pct(during, 99) - pct(alone, 50);
    console.log(`mcp isolation B get_job alone          ${fmt(alone)}`);
    console.log(
      `mcp isolation B get_job during A's run_sql ${fmt(during)}, max ${Math.max(...during).toFixed(1)} ms (A: ${heavyRuns} heavy run_sql, ${(heavyMs / Math.max(1, heavyRuns)).toFixed(0)} ms each); delay p99 − p50 alone ${delay.toFixed(1)} ms`,
    );
    await a.close();
    await b.close();
  } finally {
    ac.abort();
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    await log.close();
    await ch.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
