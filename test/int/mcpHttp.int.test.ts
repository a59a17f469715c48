/**
 * The MCP service over Streamable HTTP against real embedded ClickHouse (chDB): SDK clients of
 * both protocol eras over a real socket, /healthz, /metrics, 404s, DNS-rebinding guards, loopback-only binds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startHttpServer, type RunningHttpServer } from '../../mcp/http.js';
import { McpMetrics } from '../../mcp/metrics.js';
import { readModelStatements } from '../../schemas/clickhouse/ddl.js';
import { toF58 } from '../../schemas/ids.js';

const DB = 'mcp_http_test';
const BIG = '9007199254740993';

let dataDir: string;
let ch: ClickHouseClient;
let http: RunningHttpServer;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-mcp-http-'));
  ch = createClient({ connection: createChdbConnection({ path: dataDir }) } as Parameters<typeof createClient>[0]);
  await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${DB}` });
  for (const statement of readModelStatements(DB, '')) await ch.command({ query: statement });
  await ch.insert({
    table: `${DB}.jobs`,
    format: 'JSONEachRow',
    values: [
      {
        cluster: 'tioga', scheduler: 'flux', job_id: BIG, user: 'alice', userid: 1001, queue: 'pbatch', name: 'lammps',
        ntasks: 4, ncores: 4, ngpus: 0, nnodes: 1, nodes: ['tioga7'], state: 'running', sched_state: 'RUN', result: '',
        success: null, exit_code: null, waitstatus: null, exception_type: '', exception_severity: null, exception_note: '',
        urgency: 16, priority: 16, held: false, dependencies: [], time_limit_s: 600,
        t_submit: '2024-06-01 10:00:00.000001', t_eligible: '2024-06-01 10:00:00.5', t_start: '2024-06-01 10:00:02',
        t_end: null, t_inactive: null, wait_s: 1.999999, run_s: null, last_seq: 5, last_event: 'start',
        last_event_ts: '2024-06-01 10:00:02', is_deleted: 0,
      },
    ],
  });
  http = await startHttpServer({ clickhouse: ch, database: DB }, { port: 0 });
});

afterAll(async () => {
  await http?.close();
  await ch?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A raw request with headers fetch would not let us set (Host). */
function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

describe('startHttpServer', () => {
  it('listens on a real port when asked for port 0', () => {
    expect(http.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(new URL(http.url).port).not.toBe('0');
  });

  for (const mode of ['legacy', 'auto'] as const) {
    it(`serves an SDK client (${mode} negotiation): the job tools with output schemas, and get_job`, async () => {
      const client = new Client({ name: 'http-test', version: '0' }, { versionNegotiation: { mode } });
      await client.connect(new StreamableHTTPClientTransport(new URL(http.url)));
      try {
        expect(client.getProtocolEra()).toBe(mode === 'auto' ? 'modern' : 'legacy');
        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['get_job', 'job_timeline', 'queue_summary', 'search_jobs']));
        for (const t of tools) expect(t.outputSchema).toMatchObject({ type: 'object' });
        const r = await client.callTool({ name: 'get_job', arguments: { job_id: toF58(BIG) } });
        expect(r.isError).toBeFalsy();
        expect(r.structuredContent).toMatchObject({
          job: { cluster: 'tioga', job_id: BIG, job_id_f58: toF58(BIG), state: 'running', t_submit: '2024-06-01T10:00:00.000001Z' },
        });
        const missing = await client.callTool({ name: 'get_job', arguments: { job_id: '7' } });
        expect(missing).toMatchObject({ isError: true, content: [{ type: 'text', text: 'no job 7 on any cluster; try search_jobs' }] });
      } finally {
        await client.close();
      }
    });
  }

  it('answers /healthz and 404s other paths', async () => {
    const base = new URL(http.url);
    const health = await fetch(new URL('/healthz', base));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const other = await fetch(new URL('/other', base));
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: 'not found; the MCP endpoint is /mcp' });
  });

  it('rejects a foreign Origin and a foreign Host (DNS rebinding), and accepts local ones', async () => {
    const foreignOrigin = await rawRequest(http.url, { method: 'POST', headers: { ...mcpHeaders, origin: 'https://evil.example' }, body: initialize });
    expect(foreignOrigin.status).toBe(403);
    const port = new URL(http.url).port;
    const foreignHost = await rawRequest(http.url, { method: 'POST', headers: { ...mcpHeaders, host: `evil.example:${port}` }, body: initialize });
    expect(foreignHost.status).toBe(403);
    const local = await rawRequest(http.url, {
      method: 'POST',
      headers: { ...mcpHeaders, origin: `http://localhost:${port}`, host: `localhost:${port}` },
      body: initialize,
    });
    expect(local.status).toBe(200);
    expect(local.body).toContain('"serverInfo"');
  });

  it('refuses tricky Host and Origin values with a 403 JSON-RPC error (never a 500) on /mcp and /metrics', async () => {
    const port = new URL(http.url).port;
    const hosts = [`evil.example:${port}@localhost`, `evil.example:80@localhost:${port}`, `localhost.:${port}`, `local%68ost:${port}`, `LOCALHOST:${port}x`];
    for (const path of ['/mcp', '/metrics']) {
      const url = new URL(path, http.url).href;
      const method = path === '/mcp' ? 'POST' : 'GET';
      for (const host of hosts) {
        const r = await rawRequest(url, { method, headers: { ...mcpHeaders, host }, body: method === 'POST' ? initialize : undefined });
        expect(r.status, `${path} Host ${host}`).toBe(403);
        expect(JSON.parse(r.body)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000 } });
        expect(r.body).not.toContain('evil');
      }
      const badOrigin = await rawRequest(url, { method, headers: { ...mcpHeaders, origin: `http://evil.example:80@localhost:${port}` }, body: method === 'POST' ? initialize : undefined });
      expect(badOrigin.status, `${path} Origin with user info`).toBe(403);
      const upper = await rawRequest(url, { method, headers: { ...mcpHeaders, host: `LOCALHOST:${port}` }, body: method === 'POST' ? initialize : undefined });
      expect(upper.status, `${path} uppercase Host`).toBe(200);
    }
  });

  it('refuses a request with two Host headers', async () => {
    const { port } = new URL(http.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end(`POST /mcp HTTP/1.1\r\nHost: localhost:${port}\r\nHost: evil.example\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${Buffer.byteLength(initialize)}\r\nconnection: close\r\n\r\n${initialize}`);
      });
      let out = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (out += d));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });
    // Node's parser may refuse it itself (400); either way it is not served.
    expect(raw).toMatch(/^HTTP\/1\.1 (400|403) /);
    expect(raw).not.toContain('serverInfo');
  });

  it('refuses non-loopback binds without authentication (test/int/mcpAuth.int.test.ts serves them with it)', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.org']) {
      await expect(startHttpServer({ clickhouse: ch, database: DB }, { host, port: 0 })).rejects.toThrow(
        /non-loopback binds need authentication/,
      );
    }
  });

  it('counts requests and tool calls by outcome, with latency histograms, at /metrics', async () => {
    const metrics = new McpMetrics();
    const ok = await startHttpServer({ clickhouse: ch, database: DB }, { port: 0, metrics });
    const broken = await startHttpServer({ clickhouse: ch, database: 'no_such_db', logError: () => {} }, { port: 0, metrics });
    try {
      const calls = async (url: string, body: (c: Client) => Promise<unknown>) => {
        const client = new Client({ name: 'metrics-test', version: '0' });
        await client.connect(new StreamableHTTPClientTransport(new URL(url)));
        try {
          await body(client);
        } finally {
          await client.close();
        }
      };
      const outcomes: [string, string][] = [];
      await calls(ok.url, async (c) => {
        for (const args of [{ job_id: BIG }, { job_id: toF58(BIG) }, { job_id: '7' }, { cluster: 'nosuch', job_id: '1' }]) {
          const r = await c.callTool({ name: 'get_job', arguments: args });
          outcomes.push(['get_job', r.isError ? 'tool_error' : 'ok']);
        }
        const r = await c.callTool({ name: 'search_jobs', arguments: { user: 'alice' } });
        outcomes.push(['search_jobs', r.isError ? 'tool_error' : 'ok']);
      });
      await calls(broken.url, async (c) => {
        const r = await c.callTool({ name: 'search_jobs', arguments: {} });
        expect(r.isError).toBe(true);
        outcomes.push(['search_jobs', 'store_error']);
      });
      expect(outcomes.filter(([, o]) => o === 'ok')).toHaveLength(3);

      const res = await fetch(new URL('/metrics', ok.url));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await res.text();
      const value = (series: string) => {
        const line = text.split('\n').find((l) => l.startsWith(`${series} `));
        return line === undefined ? 0 : Number(line.slice(series.length + 1));
      };
      for (const tool of ['get_job', 'search_jobs']) {
        const mine = outcomes.filter(([t]) => t === tool);
        for (const outcome of ['ok', 'tool_error', 'store_error']) {
          expect(value(`jobscribe_mcp_tool_calls_total{tool="${tool}",outcome="${outcome}"}`), `${tool} ${outcome}`).toBe(
            mine.filter(([, o]) => o === outcome).length,
          );
        }
        expect(value(`jobscribe_mcp_tool_duration_seconds_count{tool="${tool}"}`)).toBe(mine.length);
        expect(value(`jobscribe_mcp_tool_duration_seconds_bucket{tool="${tool}",le="+Inf"}`)).toBe(mine.length);
        const buckets = text.split('\n').filter((l) => l.startsWith(`jobscribe_mcp_tool_duration_seconds_bucket{tool="${tool}",`)).map((l) => Number(l.split(' ')[1]));
        expect(buckets).toEqual(buckets.slice().sort((a, b) => a - b)); // cumulative
        expect(value(`jobscribe_mcp_tool_duration_seconds_sum{tool="${tool}"}`)).toBeGreaterThan(0);
      }
      expect(text).toContain('# TYPE jobscribe_mcp_tool_duration_seconds histogram');
      expect(value('jobscribe_mcp_http_requests_total{route="mcp",status="200"}')).toBeGreaterThanOrEqual(outcomes.length);
      expect(value('jobscribe_mcp_auth_failures_total{reason="missing_token"}')).toBe(0);
      expect(value('jobscribe_mcp_rate_limited_total')).toBe(0);
    } finally {
      await ok.close();
      await broken.close();
    }
  });

  it('closes cleanly', async () => {
    const other = await startHttpServer({ clickhouse: ch, database: DB }, { host: 'localhost', port: 0, path: '/x' });
    expect(other.url).toMatch(/^http:\/\/localhost:\d+\/x$/);
    expect((await fetch(new URL('/healthz', other.url))).status).toBe(200);
    await other.close();
    await expect(fetch(new URL('/healthz', other.url))).rejects.toThrow();
  });
});
