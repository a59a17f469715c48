/**
 * Authenticated MCP over HTTP against real embedded ClickHouse (chDB): bearer tokens from a
 * tokens file and OAuth JWTs checked against a JWKS served on loopback (keys generated here by
 * node:crypto), the 401/403 challenges, RFC 9728 metadata, identity-scoped job details over a real
 * SDK client, a 0.0.0.0 bind, JWKS rotation, per-identity rate limits and the /metrics counters.
 */
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { Client, StreamableHTTPClientTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { loadTokensFile } from '../../mcp/auth.js';
import { startHttpServer, type RunningHttpServer } from '../../mcp/http.js';
import { readModelStatements } from '../../schemas/clickhouse/ddl.js';
import { loadConfig } from '../../deploy/config.js';
import { mcpHttpOptions } from '../../deploy/runtime.js';

const DB = 'mcp_auth_test';
const ISSUER = 'https://idp.example.test/realms/hpc';
const PUBLIC_URL = 'https://jobs.example.test/mcp';
const METADATA_URL = 'https://jobs.example.test/.well-known/oauth-protected-resource/mcp';
const SCOPE = 'jobs:read';

// ---- fixture: jobs of alice and bob --------------------------------------------------------------

interface Job {
  job_id: string;
  user: string;
  state: 'pending' | 'running' | 'completed';
  queue: string;
}
const JOBS: Job[] = [
  { job_id: '101', user: 'alice', state: 'running', queue: 'pbatch' },
  { job_id: '102', user: 'alice', state: 'completed', queue: 'pbatch' },
  { job_id: '202', user: 'bob', state: 'pending', queue: 'pbatch' },
  { job_id: '203', user: 'bob', state: 'pending', queue: 'pdebug' },
  { job_id: '204', user: 'bob', state: 'running', queue: 'pdebug' },
];
const jobRow = (j: Job) => ({
  cluster: 'tioga', scheduler: 'flux', job_id: j.job_id, user: j.user, userid: 1000, queue: j.queue, name: `job-${j.job_id}`,
  ntasks: 1, ncores: 1, ngpus: 0, nnodes: 1, nodes: [], state: j.state, sched_state: j.state === 'pending' ? 'SCHED' : 'RUN',
  result: j.state === 'completed' ? 'COMPLETED' : '', success: j.state === 'completed' ? true : null, exit_code: j.state === 'completed' ? 0 : null,
  waitstatus: null, exception_type: '', exception_severity: null, exception_note: '', urgency: 16, priority: 16, held: false,
  dependencies: [], time_limit_s: 600, t_submit: `2024-06-01 10:00:0${j.job_id.at(-1)}`, t_eligible: null,
  t_start: j.state === 'pending' ? null : '2024-06-01 10:01:00', t_end: j.state === 'completed' ? '2024-06-01 10:02:00' : null,
  t_inactive: null, wait_s: j.state === 'pending' ? null : 55, run_s: j.state === 'completed' ? 60 : null, last_seq: 3,
  last_event: 'start', last_event_ts: '2024-06-01 10:01:00', is_deleted: 0,
});
const eventRow = (j: Job, seq: number, name: string) => ({
  cluster: 'tioga', scheduler: 'flux', job_id: j.job_id, seq, name, ts: `2024-06-01 10:00:0${seq}`, ts_source: 'scheduler',
  context: '{}', raw: '{}', user: j.user, scribe_id: 'test', published_at: `2024-06-01 10:00:0${seq}.000`,
  log_topic: 'jobscribe.tioga.events', log_partition: 0, log_offset: Number(j.job_id) * 10 + seq,
});

// ---- keys, tokens, JWTs ------------------------------------------------------------------------------

type Alg = 'RS256' | 'ES256' | 'EdDSA';
interface SigningKey {
  kid: string;
  alg: Alg;
  privateKey: KeyObject;
  publicKey: KeyObject;
}
function makeKey(kid: string, alg: Alg, rsaBits = 2048): SigningKey {
  const pair =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: rsaBits })
    : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('ed25519');
  return { kid, alg, ...pair };
}
const publicJwk = (k: SigningKey) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' });

const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
function signJwt(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const input = `${b64json({ alg: key.alg, typ: 'at+jwt', kid: key.kid, ...header })}.${b64json(claims)}`;
  const data = Buffer.from(input);
  const sig =
    key.alg === 'RS256' ? sign('sha256', data, key.privateKey)
    : key.alg === 'ES256' ? sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    : sign(null, data, key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

let clockMs = Date.now();
const nowS = () => Math.floor(clockMs / 1000);
const claims = (over: Record<string, unknown> = {}) => ({
  iss: ISSUER, aud: [PUBLIC_URL, 'account'], sub: 'uid-bob', preferred_username: 'bob', scope: `openid ${SCOPE}`,
  iat: nowS(), nbf: nowS() - 5, exp: nowS() + 300, ...over,
});

const rsa = makeKey('rsa-1', 'RS256');
const ec = makeKey('ec-1', 'ES256');
const ed = makeKey('ed-1', 'EdDSA');
const weak = makeKey('rsa-weak', 'RS256', 1024);
const stranger = makeKey('rsa-1', 'RS256'); // same kid as rsa, another key: not the issuer's
const rotated = makeKey('rsa-2', 'RS256');

const ALICE = randomBytes(32).toString('hex');
const ADMIN = randomBytes(32).toString('hex');
const ROBOT = randomBytes(32).toString('hex');

// ---- harness ------------------------------------------------------------------------------------------

let dataDir: string;
let ch: ClickHouseClient;
let jwks: Server;
let jwksUrl: string;
let jwksHits = 0;
let published = [rsa, ec, ed, weak].map(publicJwk);
let secured: RunningHttpServer;
/** The secured server bound on 0.0.0.0, reached through loopback. */
let mcpUrl: string;
const logged: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-mcp-auth-'));
  ch = createClient({ connection: createChdbConnection({ path: join(dataDir, 'ch') }) } as Parameters<typeof createClient>[0]);
  await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${DB}` });
  for (const statement of readModelStatements(DB, '')) await ch.command({ query: statement });
  await ch.insert({ table: `${DB}.jobs`, values: JOBS.map(jobRow), format: 'JSONEachRow' });
  await ch.insert({
    table: `${DB}.job_events`,
    values: JOBS.flatMap((j) => [eventRow(j, 0, 'submit'), eventRow(j, 1, 'validate')]),
    format: 'JSONEachRow',
  });

  jwks = createServer((_req, res) => {
    jwksHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;

  const tokensFile = join(dataDir, 'tokens.json');
  writeFileSync(
    tokensFile,
    JSON.stringify([
      { name: 'alice-laptop', token: ALICE, user: 'alice' },
      { name: 'ops', token_sha256: createHash('sha256').update(ADMIN).digest('hex'), roles: ['admin'] },
      { name: 'robot', token: ROBOT },
    ]),
  );
  secured = await startHttpServer(
    { clickhouse: ch, database: DB, now: () => Date.parse('2024-06-01T12:00:00Z'), logError: (m) => logged.push(m) },
    {
      host: '0.0.0.0',
      port: 0,
      publicUrl: PUBLIC_URL,
      // This file sends dozens of bad tokens from 127.0.0.1 within a minute; the throttle has its own test.
      loginThrottle: { maxFailures: 1000 },
      auth: {
        tokens: loadTokensFile(tokensFile),
        oauth: { issuer: ISSUER, jwksUrl, requiredScope: SCOPE, now: () => clockMs, logError: (m) => logged.push(m) },
      },
    },
  );
  const u = new URL(secured.url);
  mcpUrl = `http://127.0.0.1:${u.port}${u.pathname}`;
});

afterAll(async () => {
  await secured?.close();
  await new Promise((r) => jwks?.close(r));
  await ch?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** One raw MCP POST (initialize) with an optional bearer token. */
async function post(token?: string, url = mcpUrl): Promise<{ status: number; challenge: string | null; body: any; retryAfter: string | null }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...mcpHeaders, ...(token !== undefined && { authorization: `Bearer ${token}` }) },
    body: initialize,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // SSE or plain text: keep the text
  }
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body, retryAfter: res.headers.get('retry-after') };
}

async function withClient<T>(token: string, body: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ name: 'auth-test', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}
const text = (r: CallToolResult) => (r.content[0]?.type === 'text' ? r.content[0].text : '');

async function scrape(url: string): Promise<string> {
  const res = await fetch(new URL('/metrics', url));
  expect(res.status).toBe(200);
  return res.text();
}
/** The value of one series in a scrape (0 when absent). */
function metric(scrape: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of scrape.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(',') : [];
    if (have.length === want.length && want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

// ---- tests ------------------------------------------------------------------------------------------------

describe('binding', () => {
  it('refuses a non-loopback bind without authentication, and serves one with it', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      await expect(startHttpServer({ clickhouse: ch, database: DB }, { host, port: 0 })).rejects.toThrow(/non-loopback binds need authentication/);
    }
    expect(secured.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/mcp$/);
    expect((await post(ALICE)).status).toBe(200);
  });

  it('refuses OAuth on a wildcard bind when no public URL names the audience', async () => {
    await expect(
      startHttpServer({ clickhouse: ch, database: DB }, { host: '0.0.0.0', port: 0, auth: { oauth: { issuer: ISSUER, jwksUrl } } }),
    ).rejects.toThrow(/mcpPublicUrl/);
    await expect(
      startHttpServer({ clickhouse: ch, database: DB }, { port: 0, auth: { oauth: { issuer: ISSUER, jwksUrl: 'http://idp.example.test/jwks' } } }),
    ).rejects.toThrow(/must be https/);
  });
});

describe('challenges', () => {
  it('answers a request without a token 401 with the resource metadata, and no error code', async () => {
    const r = await post();
    expect(r.status).toBe(401);
    expect(r.challenge).toBe(`Bearer realm="jobscribe", resource_metadata="${METADATA_URL}"`);
    const client = new Client({ name: 'no-token', version: '0' });
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)))).rejects.toThrow();
  });

  it('serves RFC 9728 protected-resource metadata at the root and path-suffixed well-known URLs', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await fetch(new URL(path, mcpUrl));
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        resource: PUBLIC_URL,
        authorization_servers: [ISSUER],
        bearer_methods_supported: ['header'],
        resource_name: 'jobscribe',
        scopes_supported: [SCOPE],
      });
    }
  });

  const header = (o: Record<string, unknown>) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = (o: Record<string, unknown>) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const bad: [string, () => string][] = [
    ['an unknown opaque token', () => randomBytes(32).toString('hex')],
    ['a static token one character off', () => (ALICE[0] === 'a' ? 'b' : 'a') + ALICE.slice(1)],
    ['an expired JWT', () => signJwt(rsa, claims({ exp: nowS() - 3600, iat: nowS() - 7200, nbf: nowS() - 7200 }))],
    ['a JWT not valid yet', () => signJwt(rsa, claims({ nbf: nowS() + 3600 }))],
    ['a JWT without exp', () => signJwt(rsa, { ...claims(), exp: undefined })],
    ['a JWT whose nbf is a string (not read as absent)', () => signJwt(rsa, claims({ nbf: String(nowS() + 3600) }))],
    ['a JWT whose iat is a date string', () => signJwt(rsa, claims({ iat: '2099-01-01T00:00:00Z' }))],
    ['a JWT whose nbf is null', () => signJwt(rsa, claims({ nbf: null }))],
    ['a JWT for another audience', () => signJwt(rsa, claims({ aud: 'https://other.example.test/mcp' }))],
    ['a JWT from another issuer', () => signJwt(rsa, claims({ iss: 'https://evil.example.test' }))],
    ['a JWT naming an unknown kid', () => signJwt(stranger, claims(), { kid: 'nope' })],
    ['a JWT signed by another key under a known kid', () => signJwt(stranger, claims())],
    ['a JWT signed with a 1024-bit RSA key', () => signJwt(weak, claims())],
    ['an alg=none JWT', () => `${header({ alg: 'none', typ: 'JWT' })}.${payload(claims())}.`],
    [
      'an HS256 JWT keyed with the public key',
      () => {
        const input = `${header({ alg: 'HS256', kid: rsa.kid })}.${payload(claims())}`;
        const secret = rsa.publicKey.export({ format: 'pem', type: 'spki' });
        return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      },
    ],
    [
      'a JWT whose payload was changed after signing',
      () => {
        const [h, , s] = signJwt(rsa, claims()).split('.');
        return `${h}.${payload(claims({ roles: ['admin'] }))}.${s}`;
      },
    ],
    ['a JWT with an ES256 header over an RSA key', () => signJwt(rsa, claims(), { alg: 'ES256' })],
  ];
  for (const [what, token] of bad) {
    it(`refuses ${what} with 401 invalid_token`, async () => {
      const r = await post(token());
      expect(r.status).toBe(401);
      expect(r.challenge).toMatch(new RegExp(`^Bearer realm="jobscribe", resource_metadata="${METADATA_URL.replaceAll('.', '\\.')}", error="invalid_token", error_description="[^"]+"$`));
      expect(r.body).toMatchObject({ error: 'invalid_token' });
    });
  }

  it('never echoes a foreign kid or alg into the challenge or the body (nor 500s on a CR/LF in them)', async () => {
    const hostile = ['evil\r\nset-cookie: pwned=1', 'evil-kid-\u2028\u00ff\u4e2d', '"quoted\\"'];
    for (const value of hostile) {
      for (const token of [signJwt(stranger, claims(), { kid: value }), signJwt(rsa, claims(), { alg: value })]) {
        const r = await post(token);
        expect(r.status, JSON.stringify(value)).toBe(401);
        expect(r.body).toMatchObject({ error: 'invalid_token' });
        const seen = `${r.challenge} ${JSON.stringify(r.body)}`;
        for (const fragment of ['evil', 'pwned', 'quoted', '\u4e2d', '中']) expect(seen, JSON.stringify(value)).not.toContain(fragment);
      }
    }
  });

  it('refuses a valid JWT without the required scope with 403 insufficient_scope', async () => {
    const r = await post(signJwt(rsa, claims({ scope: 'openid profile' })));
    expect(r.status).toBe(403);
    expect(r.challenge).toContain('error="insufficient_scope"');
    expect(r.challenge).toContain(`scope="${SCOPE}"`);
    expect(r.challenge).toContain(`resource_metadata="${METADATA_URL}"`);
  });

  it('accepts RS256, ES256 and EdDSA JWTs, with the scope as a string or an scp array', async () => {
    for (const key of [rsa, ec, ed]) expect((await post(signJwt(key, claims()))).status).toBe(200);
    expect((await post(signJwt(ec, claims({ scope: undefined, scp: ['openid', SCOPE] })))).status).toBe(200);
    expect((await post(signJwt(rsa, claims({ aud: PUBLIC_URL, exp: nowS() - 30 })))).status).toBe(200); // within the leeway
  });

  it('answers 503 when the signing keys cannot be fetched at all', async () => {
    const down = await startHttpServer(
      { clickhouse: ch, database: DB },
      { port: 0, auth: { oauth: { issuer: ISSUER, jwksUrl: 'http://127.0.0.1:1/jwks', logError: (m) => logged.push(m) } } },
    );
    try {
      const r = await post(signJwt(rsa, claims({ aud: down.url })), down.url);
      expect(r.status).toBe(503);
      expect(logged.some((m) => m.includes('http://127.0.0.1:1/jwks'))).toBe(true);
    } finally {
      await down.close();
    }
  });
});

describe('JWKS rotation', () => {
  it('fetches the keys again for an unknown kid, at most once per interval', async () => {
    clockMs += 31_000; // past the minimum refresh interval
    const before = jwksHits;
    expect((await post(signJwt(rotated, claims()))).status).toBe(401); // unknown: one refetch, still unknown
    expect(jwksHits).toBe(before + 1);
    published = [...published, publicJwk(rotated)];
    expect((await post(signJwt(rotated, claims()))).status).toBe(401); // too soon to fetch again
    expect(jwksHits).toBe(before + 1);
    clockMs += 31_000;
    expect((await post(signJwt(rotated, claims()))).status).toBe(200); // fetched again: the new key verifies
    expect(jwksHits).toBe(before + 2);
    expect((await post(signJwt(rotated, claims()))).status).toBe(200); // cached
    expect(jwksHits).toBe(before + 2);
  });
});

describe('identity-scoped job details', () => {
  const own = (user: string) => JOBS.filter((j) => j.user === user);

  it("a plain user reads only their own jobs' details, and cannot tell another's job from a missing one", async () => {
    await withClient(ALICE, async (c) => {
      const mine = await c.callTool({ name: 'get_job', arguments: { job_id: '101' } });
      expect(mine.structuredContent).toMatchObject({ job: { job_id: '101', user: 'alice' } });

      const others = await c.callTool({ name: 'get_job', arguments: { job_id: '202' } });
      const missing = await c.callTool({ name: 'get_job', arguments: { job_id: '999' } });
      expect(others.isError).toBe(true);
      expect(text(others)).toBe(text(missing).replace('999', '202'));
      expect(text(others)).toBe(
        "no job 202 on any cluster that you may read (it does not exist or is not yours: you see the details of alice's jobs only); try search_jobs",
      );
      const othersOnCluster = await c.callTool({ name: 'get_job', arguments: { cluster: 'tioga', job_id: '202' } });
      const missingOnCluster = await c.callTool({ name: 'get_job', arguments: { cluster: 'tioga', job_id: '999' } });
      expect(text(othersOnCluster)).toBe(text(missingOnCluster).replace('999', '202'));

      const timeline = await c.callTool({ name: 'job_timeline', arguments: { job_id: '202' } });
      expect(timeline.isError).toBe(true);
      expect(text(timeline)).toBe(text(others));
      const myTimeline: any = (await c.callTool({ name: 'job_timeline', arguments: { job_id: '101' } })).structuredContent;
      expect(myTimeline.events.map((e: any) => e.name)).toEqual(['submit', 'validate']);

      const search: any = (await c.callTool({ name: 'search_jobs', arguments: {} })).structuredContent;
      expect(search.jobs.map((j: any) => j.job_id).sort()).toEqual(own('alice').map((j) => j.job_id).sort());
      expect(search.total_matching).toBe(own('alice').length);
      const searchBob = await c.callTool({ name: 'search_jobs', arguments: { user: 'bob' } });
      expect(searchBob.isError).toBe(true);
      expect(text(searchBob)).toContain('you may search only your own jobs (user alice)');
    });
  });

  it('aggregates stay center-wide for a plain user', async () => {
    const expected = (jobs: Job[]) => ({
      pending: jobs.filter((j) => j.state === 'pending').length,
      running: jobs.filter((j) => j.state === 'running').length,
    });
    const asAlice: any = await withClient(ALICE, async (c) => (await c.callTool({ name: 'queue_summary', arguments: { group_by: 'cluster' } })).structuredContent);
    const asAdmin: any = await withClient(ADMIN, async (c) => (await c.callTool({ name: 'queue_summary', arguments: { group_by: 'cluster' } })).structuredContent);
    const unnamed = (c: any) => ({ ...c, oldest_pending: c.oldest_pending && { submitted: c.oldest_pending.submitted, waiting_s: c.oldest_pending.waiting_s } });
    expect(asAlice.clusters).toEqual(asAdmin.clusters.map(unnamed));
    expect(asAlice.clusters).toEqual([expect.objectContaining({ cluster: 'tioga', ...expected(JOBS) })]);
    expect(asAdmin.clusters[0].oldest_pending).toMatchObject({ job_id: '202', user: 'bob' });
  });

  it("queue_summary never names another user's pending job to a plain user, in any grouping", async () => {
    const foreign = JOBS.filter((j) => j.user !== 'alice').map((j) => j.job_id);
    for (const group_by of ['cluster', 'queue', 'user']) {
      const r = await withClient(ALICE, async (c) => c.callTool({ name: 'queue_summary', arguments: { group_by } }));
      const answer = JSON.stringify(r);
      for (const id of foreign) expect(answer, `${group_by}: job ${id}`).not.toMatch(new RegExp(`\\b${id}\\b`));
      const s: any = r.structuredContent;
      for (const g of [...s.groups, ...s.clusters]) {
        if (g.oldest_pending) expect(g.oldest_pending.waiting_s).toBeGreaterThan(0);
        if (g.oldest_pending?.user !== undefined) expect(g.oldest_pending.user).toBe('alice');
      }
    }
  });

  it('an admin token reads every job', async () => {
    await withClient(ADMIN, async (c) => {
      expect((await c.callTool({ name: 'get_job', arguments: { job_id: '202' } })).structuredContent).toMatchObject({ job: { user: 'bob' } });
      const all: any = (await c.callTool({ name: 'search_jobs', arguments: {} })).structuredContent;
      expect(all.total_matching).toBe(JOBS.length);
      const t: any = (await c.callTool({ name: 'job_timeline', arguments: { job_id: '204' } })).structuredContent;
      expect(t.events).toHaveLength(2);
    });
  });

  it('a JWT maps preferred_username to the scheduler user and roles to roles', async () => {
    await withClient(signJwt(ec, claims()), async (c) => {
      const search: any = (await c.callTool({ name: 'search_jobs', arguments: {} })).structuredContent;
      expect(search.jobs.map((j: any) => j.job_id).sort()).toEqual(own('bob').map((j) => j.job_id).sort());
      expect((await c.callTool({ name: 'get_job', arguments: { job_id: '101' } })).isError).toBe(true);
    });
    await withClient(signJwt(ed, claims({ sub: 'uid-carol', preferred_username: 'carol', roles: ['admin'] })), async (c) => {
      expect((await c.callTool({ name: 'get_job', arguments: { job_id: '101' } })).structuredContent).toMatchObject({ job: { user: 'alice' } });
    });
  });

  it('an identity with no scheduler user reads no details but gets aggregates', async () => {
    await withClient(ROBOT, async (c) => {
      const r = await c.callTool({ name: 'get_job', arguments: { job_id: '101' } });
      expect(r.isError).toBe(true);
      expect(text(r)).toContain('(robot) is not mapped to a scheduler user, so it may read no job details');
      expect((await c.callTool({ name: 'search_jobs', arguments: {} })).isError).toBe(true);
      expect((await c.callTool({ name: 'queue_summary', arguments: {} })).isError).toBeFalsy();
    });
  });
});

describe('rate limits and metrics', () => {
  it('limits each identity separately: 429 with Retry-After and a JSON-RPC error, counted in /metrics', async () => {
    let t = 1_000_000;
    const tokensFile = join(dataDir, 'tokens-rl.json');
    writeFileSync(tokensFile, JSON.stringify([{ name: 'alice-laptop', token: ALICE, user: 'alice' }, { name: 'ops', token: ADMIN, roles: ['admin'] }]));
    const limited = await startHttpServer(
      { clickhouse: ch, database: DB },
      { port: 0, auth: { tokens: loadTokensFile(tokensFile) }, rateLimit: { perMinute: 60, burst: 2, now: () => t } },
    );
    try {
      expect((await post(ALICE, limited.url)).status).toBe(200);
      expect((await post(ALICE, limited.url)).status).toBe(200);
      const refused = await post(ALICE, limited.url);
      expect(refused.status).toBe(429);
      expect(refused.retryAfter).toBe('1'); // one request a second
      expect(refused.body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, data: { retry_after_s: 1 } } });
      expect(refused.body.error.message).toContain('rate limit exceeded for alice-laptop');
      expect((await post(ADMIN, limited.url)).status).toBe(200); // another identity has its own bucket
      t += 1000;
      expect((await post(ALICE, limited.url)).status).toBe(200); // refilled
      expect((await post(ALICE, limited.url)).status).toBe(429);
      const m = await scrape(limited.url);
      expect(metric(m, 'jobscribe_mcp_rate_limited_total')).toBe(2);
      expect(metric(m, 'jobscribe_mcp_http_requests_total', { route: 'mcp', status: '429' })).toBe(2);
      expect(metric(m, 'jobscribe_mcp_http_requests_total', { route: 'mcp', status: '200' })).toBe(4);
    } finally {
      await limited.close();
    }
  });

  it('counts every call of a JSON-RPC batch: one token per call, the whole batch refused when short (no partial)', async () => {
    let t = 1_000_000;
    const tokensFile = join(dataDir, 'tokens-batch.json');
    writeFileSync(tokensFile, JSON.stringify([{ name: 'alice-laptop', token: ALICE, user: 'alice' }]));
    const limited = await startHttpServer(
      { clickhouse: ch, database: DB },
      { port: 0, auth: { tokens: loadTokensFile(tokensFile) }, rateLimit: { perMinute: 60, burst: 10, now: () => t } },
    );
    const calls = (n: number) =>
      JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'queue_summary', arguments: {} } })));
    const send = async (body: string) => {
      const res = await fetch(limited.url, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${ALICE}` }, body });
      const text = await res.text();
      return { status: res.status, text, retryAfter: res.headers.get('retry-after') };
    };
    /** The tool results an answer carries (JSON or SSE). */
    const results = (text: string) => (text.match(/"result":\{"content"/g) ?? []).length;
    try {
      const four = await send(calls(4));
      expect(four.status, four.text).toBe(200);
      expect(results(four.text)).toBe(4);
      const seven = await send(calls(7)); // 6 tokens left: refused whole
      expect(seven.status).toBe(429);
      expect(results(seven.text)).toBe(0);
      expect(JSON.parse(seven.text)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, data: { calls: 7, retry_after_s: 1 } } });
      expect(JSON.parse(seven.text).error.message).toContain('a batch of 7 calls');
      const six = await send(calls(6)); // ...and nothing was taken by the refusal
      expect(six.status).toBe(200);
      expect(results(six.text)).toBe(6);
      expect((await send(calls(1))).status).toBe(429);
      t += 60_000; // full again
      const tooBig = await send(calls(11));
      expect(tooBig.status).toBe(429);
      expect(JSON.parse(tooBig.text).error.message).toContain('more than the burst of 10');

      // The issue's replay: 20 batches of 100 calls after a fresh full burst serve at most the burst.
      t += 60_000;
      let served = 0;
      let refused = 0;
      for (let i = 0; i < 20; i++) {
        const r = await send(calls(i === 0 ? 10 : 100));
        served += results(r.text);
        if (r.status === 429) refused++;
      }
      expect(served).toBe(10);
      expect(refused).toBe(19);

      // Bodies: over 1 MiB is a 413, not JSON a -32700 parse error; neither reaches the tools.
      const huge = await send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad: 'x'.repeat(1 << 20) } }));
      expect(huge.status).toBe(413);
      expect(JSON.parse(huge.text)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'request body larger than 1048576 bytes' } });
      const garbage = await send('[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"');
      expect(garbage.status).toBe(400);
      expect(JSON.parse(garbage.text)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
      const m = await scrape(limited.url);
      expect(metric(m, 'jobscribe_mcp_rate_limited_total')).toBe(22);
    } finally {
      await limited.close();
    }
  });

  it('throttles failed logins per remote address: after 10 in a minute that address gets 429 for a minute, counted', async () => {
    let t = 5_000_000;
    const tokensFile = join(dataDir, 'tokens-throttle.json');
    writeFileSync(tokensFile, JSON.stringify([{ name: 'alice-laptop', token: ALICE, user: 'alice' }]));
    const server = await startHttpServer({ clickhouse: ch, database: DB }, { port: 0, auth: { tokens: loadTokensFile(tokensFile) }, loginThrottle: { now: () => t } });
    /** A POST from a chosen loopback source address (Linux routes all of 127/8 to lo). */
    const from = (localAddress: string, token?: string) =>
      new Promise<{ status: number; body: string; retryAfter: string | undefined }>((resolve, reject) => {
        const req = request(
          server.url,
          { method: 'POST', localAddress, headers: { ...mcpHeaders, ...(token !== undefined && { authorization: `Bearer ${token}` }) } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, retryAfter: res.headers['retry-after'] }));
          },
        );
        req.on('error', reject);
        req.end(initialize);
      });
    try {
      for (let i = 0; i < 10; i++) expect((await from('127.0.0.1', `guess-${i}-${'x'.repeat(20)}`)).status).toBe(401);
      const blocked = await from('127.0.0.1', ALICE); // even the right token: no oracle while blocked
      expect(blocked.status).toBe(429);
      expect(blocked.retryAfter).toBe('60');
      expect(JSON.parse(blocked.body)).toEqual({ error: 'too_many_failed_logins', error_description: 'too many failed authentications from this address; retry in 60 s' });
      expect(blocked.body).not.toContain(ALICE);
      expect((await from('127.0.0.2', ALICE)).status).toBe(200); // another address is not affected
      for (let i = 0; i < 15; i++) expect((await from('127.0.0.3')).status).toBe(401); // a missing token is not a failed guess
      expect((await from('127.0.0.3', ALICE)).status).toBe(200);
      t += 30_000;
      expect((await from('127.0.0.1', ALICE)).status).toBe(429);
      t += 30_000;
      expect((await from('127.0.0.1', ALICE)).status).toBe(200);
      const m = await scrape(server.url);
      expect(metric(m, 'jobscribe_mcp_login_throttled_total')).toBe(2);
      expect(metric(m, 'jobscribe_mcp_auth_failures_total', { reason: 'invalid_token' })).toBe(10);
    } finally {
      await server.close();
    }
  });

  it('counts authentication failures by reason', async () => {
    const before = await scrape(mcpUrl);
    await post();
    await post();
    await post('not-a-token-at-all');
    await post(signJwt(rsa, claims({ scope: 'openid' })));
    const after = await scrape(mcpUrl);
    const delta = (reason: string) =>
      metric(after, 'jobscribe_mcp_auth_failures_total', { reason }) - metric(before, 'jobscribe_mcp_auth_failures_total', { reason });
    expect([delta('missing_token'), delta('invalid_token'), delta('insufficient_scope')]).toEqual([2, 1, 1]);
    const status = (s: string) =>
      metric(after, 'jobscribe_mcp_http_requests_total', { route: 'mcp', status: s }) - metric(before, 'jobscribe_mcp_http_requests_total', { route: 'mcp', status: s });
    expect([status('401'), status('403')]).toEqual([3, 1]);
  });
});

describe('configuration', () => {
  it('wires the mcp* settings into the HTTP server options', () => {
    const tokensFile = join(dataDir, 'tokens-config.json');
    writeFileSync(tokensFile, JSON.stringify([{ name: 'alice-laptop', token: ALICE, user: 'alice' }]));
    const config = loadConfig({
      env: { JOBSCRIBE_MCP_RATE_LIMIT: '120', JOBSCRIBE_MCP_ALLOWED_HOSTS: 'jobs.example.test, login1' },
      flags: { httpHost: '0.0.0.0', mcpTokens: tokensFile, mcpOauthIssuer: ISSUER, mcpOauthJwksUrl: jwksUrl, mcpOauthScope: SCOPE, mcpPublicUrl: PUBLIC_URL, mcpJobDetails: 'all' },
    });
    expect(config.mcpJobDetails).toBe('all');
    const o = mcpHttpOptions(config);
    expect(o).toMatchObject({
      host: '0.0.0.0',
      publicUrl: PUBLIC_URL,
      allowedHosts: ['jobs.example.test', 'login1'],
      rateLimit: { perMinute: 120, burst: 100 },
      auth: { oauth: { issuer: ISSUER, jwksUrl, requiredScope: SCOPE, userClaim: 'preferred_username', rolesClaim: 'roles' } },
    });
    expect(o.auth?.tokens?.map((t) => [t.name, t.user, t.sha256.toString('hex')])).toEqual([
      ['alice-laptop', 'alice', createHash('sha256').update(ALICE).digest('hex')],
    ]);
    expect(mcpHttpOptions(loadConfig({ env: {} })).auth).toBeUndefined();
    expect(() => mcpHttpOptions(loadConfig({ env: {}, flags: { mcpOauthIssuer: ISSUER } }))).toThrow(/OAuth needs both/);
    expect(() => loadConfig({ env: {}, flags: { mcpAllowedHosts: 'https://x.example' } })).toThrow(/must be host names/);
  });

  it('refuses a tokens file that is malformed, saying which entry and what to fix', () => {
    const cases: [unknown, RegExp][] = [
      [{ name: 'x' }, /mcpTokens: .*tokens-bad\.json, the file: /],
      [[{ name: 'a', token: 'short' }], /entry 0\.token: token: at least 16 characters/],
      [[{ name: 'a', token: ALICE, token_sha256: 'ab'.repeat(32) }], /entry 0: give exactly one of token and token_sha256/],
      [[{ name: 'a', token: ALICE }, { name: 'a', token: ADMIN }], /name "a" appears twice/],
      [[{ name: 'a', token: ALICE }, { name: 'b', token_sha256: createHash('sha256').update(ALICE).digest('hex') }], /"b" reuses another entry's token/],
      [[{ name: 'a', token: ALICE, role: 'admin' }], /Unrecognized key: "role"/],
      [[], /tokens-bad\.json holds no tokens, which would leave the endpoint without authentication/],
      [[{ name: 'ops', token: 'a'.repeat(16), roles: ['admin'] }], /entry 0\.token \("ops"\): too easy to guess, it has only 1 distinct characters/],
      [[{ name: 'a', token: ALICE }, { name: 'ops', token: 'abcdabcdabcdabcdabcd', roles: ['admin'] }], /entry 1\.token \("ops"\): too easy to guess, it has only 4 distinct/],
      [[{ name: 'ops', token: 'aaaaaaaaabcdefgh', roles: ['admin'] }], /too easy to guess, it carries about 35 bits of entropy \(at least 40\)/],
    ];
    const file = join(dataDir, 'tokens-bad.json');
    for (const [data, message] of cases) {
      writeFileSync(file, JSON.stringify(data));
      expect(() => loadTokensFile(file)).toThrow(message);
    }
    expect(() => loadTokensFile(join(dataDir, 'missing.json'))).toThrow(/missing\.json cannot be read/);
  });
});
