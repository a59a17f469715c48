/**
 * The MCP service over Streamable HTTP on node:http, stateless: the SDK's `createMcpHandler`
 * builds a fresh server from our factory for every request (2026-07-28 clients) and, for 2025-era
 * clients, serves each request with a fresh server over a `sessionIdGenerator: undefined`
 * streamable transport (GET/DELETE session operations answer 405). Each server is built for the
 * request's identity.
 *
 * Owns: the listening socket and its routes — the MCP `path`, `GET /healthz`, `GET /metrics`
 * (Prometheus), `/.well-known/oauth-protected-resource` (OAuth mode) — DNS-rebinding protection
 * (Host and Origin must be loopback names, the bind address, the public URL's host or
 * `allowedHosts`; the strict syntax is hostCheck.ts), the order of checks on the MCP path
 * (Host/Origin → failed-login throttle per address → authentication → body, at most 1 MiB of
 * JSON → rate limit, one token per call of a batch → MCP), the start-up checks and warning
 * (checkHttpOptions, unauthenticatedWarning), and the rule that a non-loopback bind needs
 * authentication. Leaves to others: token verification (auth.ts), buckets and the failed-login
 * throttle (rateLimit.ts), counting and rendering (metrics.ts), what an identity may read
 * (identity.ts, the tools).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, getOAuthProtectedResourceMetadataUrl, type AuthInfo } from '@modelcontextprotocol/server';
import { ConfigError } from '../schemas/errors.js';
import { authConfigured, Authenticator, bearerChallenge, checkOAuthOptions, identityOf, protectedResourceMetadata, type OAuthOptions, type StaticToken } from './auth.js';
import { canonicalAllowlist, checkHost, checkOrigin } from './hostCheck.js';
import { LOCAL_IDENTITY, type Identity } from './identity.js';
import { McpMetrics } from './metrics.js';
import { callsIn, LoginThrottle, RateLimiter, type LoginThrottleOptions, type RateLimitOptions } from './rateLimit.js';
import { createJobscribeServer, queryDeps, type McpDeps } from './server.js';
import { ServerPool } from './serverPool.js';

export interface HttpServerOptions {
  /** Default 127.0.0.1. Anything but a loopback address needs `auth`. */
  host?: string;
  /** 0 picks a free port; the returned url has the real one. */
  port: number;
  /** Default /mcp. */
  path?: string;
  /** Bearer tokens and/or OAuth. Without it every request is LOCAL_IDENTITY (loopback binds only). */
  auth?: {
    tokens?: readonly StaticToken[];
    /** `audience` defaults to the public URL. */
    oauth?: Omit<OAuthOptions, 'audience'> & { audience?: string };
  };
  /** The MCP URL as clients reach it (behind a proxy, or on a wildcard bind); default the bound URL. */
  publicUrl?: string;
  /** More Host/Origin names to accept, e.g. the DNS name of a 0.0.0.0 bind. */
  allowedHosts?: readonly string[];
  /** Per-identity token bucket; unset or perMinute 0: no limit. */
  rateLimit?: RateLimitOptions;
  /** Failed authentications per remote address before a 429 (with auth only). Default 10 a minute, blocked 60 s. */
  loginThrottle?: LoginThrottleOptions;
  /** Where requests and tool calls are counted (served at /metrics). Default: a fresh registry. */
  metrics?: McpMetrics;
}

export interface RunningHttpServer {
  url: string;
  metrics: McpMetrics;
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

function isWildcardHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === '0.0.0.0' || h === '::' || h === '::0';
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** An identity for a request that got through without one attached (cannot happen; reads nothing). */
const NO_IDENTITY: Identity = Object.freeze({ subject: 'unauthenticated', roles: Object.freeze([]) });

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** The largest MCP request body read (413 beyond): far above any tool call, far below memory trouble. */
export const MAX_BODY_BYTES = 1 << 20;

type BodyRead = { ok: true; body: unknown } | { ok: false; status: 400 | 413; code: number; message: string };

/** Reads and parses a JSON request body of at most `max` bytes (the limiter counts its messages). */
async function readJsonBody(req: IncomingMessage, max: number): Promise<BodyRead> {
  const tooLarge: BodyRead = { ok: false, status: 413, code: -32000, message: `request body larger than ${max} bytes` };
  if (Number(req.headers['content-length']) > max) return tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return tooLarge;
    chunks.push(chunk);
  }
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch {
    return { ok: false, status: 400, code: -32700, message: 'Parse error: the request body is not JSON' };
  }
}

/**
 * Throws the ConfigError a server with these options would refuse to start with — without
 * starting anything, so `up` and `mcp --http` can check before they open their stores.
 */
export function checkHttpOptions(options: HttpServerOptions): void {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  const withAuth = authConfigured(options.auth);
  if (!isLoopbackHost(host) && !withAuth) {
    throw new ConfigError(
      `refusing to serve MCP on ${host}: non-loopback binds need authentication; configure mcpTokens (a tokens file) ` +
        'and/or OAuth (mcpOauthIssuer, mcpOauthJwksUrl), or bind 127.0.0.1 (or ::1, localhost)',
    );
  }
  if (options.auth?.oauth && isWildcardHost(host) && !options.publicUrl && !options.auth.oauth.audience) {
    throw new ConfigError(`invalid setting mcpPublicUrl: OAuth on ${host} needs the URL clients use (e.g. https://jobs.example.org/mcp): it is the token audience`);
  }
  if (options.publicUrl !== undefined && !URL.canParse(options.publicUrl)) {
    throw new ConfigError(`invalid setting mcpPublicUrl: "${options.publicUrl}" is not a URL`);
  }
  if (options.auth?.oauth) checkOAuthOptions({ ...options.auth.oauth, audience: options.auth.oauth.audience ?? path });
  for (const name of options.allowedHosts ?? []) {
    if (canonicalAllowlist([name]).size === 0) {
      throw new ConfigError(`invalid setting mcpAllowedHosts: "${name}" is not a host name or IP address (no scheme, port or path)`);
    }
  }
}

/**
 * The start-up warning for a loopback bind without authentication (undefined when authentication
 * is configured): every OS user of the host who can open a socket to it is the local admin.
 */
export function unauthenticatedWarning(options: HttpServerOptions, url: string): string | undefined {
  if (authConfigured(options.auth)) return undefined;
  return (
    `WARNING: MCP at ${url} has no authentication: every user of this host who can connect to it ` +
    '(any OS account, any local process) is admin here: reads every job and all SQL, and can hold or cancel jobs. ' +
    'On a shared host (a login node) configure bearer tokens with --mcp-tokens FILE (or OAuth, --mcp-oauth-issuer).'
  );
}

export async function startHttpServer(deps: McpDeps, options: HttpServerOptions): Promise<RunningHttpServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  const withAuth = authConfigured(options.auth);
  checkHttpOptions(options);
  const limiter = options.rateLimit && options.rateLimit.perMinute > 0 ? new RateLimiter(options.rateLimit) : undefined;
  const throttle = new LoginThrottle(options.loginThrottle);
  const metrics = options.metrics ?? new McpMetrics();
  const servedDeps: McpDeps = { ...deps, metrics };
  queryDeps(servedDeps); // fail fast on bad deps

  const bare = host.replace(/^\[|\]$/g, '');
  const urlHost = isIPv6(bare) ? `[${bare}]` : bare;
  const publicHost = options.publicUrl ? new URL(options.publicUrl).host.replace(/:\d+$/, '') : undefined;
  const allowed = [
    ...new Set(['localhost', '127.0.0.1', '[::1]', ...(isWildcardHost(host) ? [] : [urlHost]), ...(publicHost ? [publicHost] : []), ...(options.allowedHosts ?? [])]),
  ];
  const allowedSet = canonicalAllowlist(allowed);
  // Our own strict check (hostCheck.ts), not the SDK's URL-parsing one: a Host of
  // `evil.example:80@localhost` is refused with a 403 here, before anything parses it as a URL.
  const validHostAndOrigin = (req: IncomingMessage, res: ServerResponse): boolean => {
    const host = checkHost(req.headersDistinct.host, allowedSet);
    const verdict = host.ok ? checkOrigin(req.headersDistinct.origin, allowedSet) : host;
    if (verdict.ok) return true;
    sendJson(res, 403, { jsonrpc: '2.0', id: null, error: { code: -32000, message: verdict.message } });
    return false;
  };
  const logError = (err: Error) => process.stderr.write(`jobscribe mcp (http): ${err.message}\n`);
  // Closed servers are handed out again to the same identity (serverPool.ts): building one per request costs.
  const servers = new ServerPool((identity) => createJobscribeServer(servedDeps, identity));
  const mcp = createMcpHandler((ctx) => servers.take(identityOf(ctx.authInfo) ?? (withAuth ? NO_IDENTITY : LOCAL_IDENTITY)), {
    onerror: logError,
  });
  const serveMcp = toNodeHandler(mcp, { onerror: logError });

  // Set once listening (the port may be 0 until then), before any request is handled.
  let authenticator: Authenticator | undefined;
  let resourceMetadataUrl: string | undefined;
  let resourceMetadata: unknown;

  const serveMetadata = (req: IncomingMessage, res: ServerResponse) => {
    if (resourceMetadata === undefined) return sendJson(res, 404, { error: 'not found: this server does not use OAuth' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
    sendJson(res, 200, resourceMetadata, { 'access-control-allow-origin': '*', 'cache-control': 'max-age=3600' });
  };

  const refuse = (res: ServerResponse, outcome: Exclude<Awaited<ReturnType<Authenticator['authenticate']>>, { ok: true }>) => {
    if (outcome.kind === 'unavailable') {
      return sendJson(res, 503, { error: 'temporarily_unavailable', error_description: outcome.description }, { 'retry-after': '30' });
    }
    metrics.authFailure(outcome.kind);
    const challenge = bearerChallenge({
      ...(outcome.kind !== 'missing_token' && { error: outcome.kind, description: outcome.description }),
      ...(outcome.kind === 'insufficient_scope' && options.auth?.oauth?.requiredScope !== undefined && { scope: options.auth.oauth.requiredScope }),
      ...(resourceMetadataUrl !== undefined && { resourceMetadataUrl }),
    });
    const status = outcome.kind === 'insufficient_scope' ? 403 : 401;
    sendJson(res, status, { error: outcome.kind === 'missing_token' ? 'invalid_request' : outcome.kind, error_description: outcome.description }, { 'www-authenticate': challenge });
  };

  const handleMcp = async (req: IncomingMessage, res: ServerResponse) => {
    if (!validHostAndOrigin(req, res)) return;
    let identity: Identity = LOCAL_IDENTITY;
    let authInfo: AuthInfo | undefined;
    if (authenticator) {
      // An address that keeps failing is refused before its token is looked at: no guessing oracle.
      const address = req.socket.remoteAddress ?? 'unknown';
      const wait = throttle.blocked(address);
      if (wait !== undefined) {
        metrics.loginThrottledRequest();
        return sendJson(
          res,
          429,
          { error: 'too_many_failed_logins', error_description: `too many failed authentications from this address; retry in ${wait} s` },
          { 'retry-after': String(wait) },
        );
      }
      const outcome = await authenticator.authenticate(req.headers.authorization);
      // Only wrong credentials count: a missing token is how clients discover authentication.
      if (!outcome.ok && outcome.kind === 'invalid_token') throttle.fail(address);
      if (!outcome.ok) return refuse(res, outcome);
      ({ identity, authInfo } = outcome);
    }
    // The body is read here, not by the SDK, so that the limiter can count every call of a batch.
    let body: unknown;
    if (req.method === 'POST') {
      const read = await readJsonBody(req, MAX_BODY_BYTES);
      if (!read.ok) {
        const headers: Record<string, string> = read.status === 413 ? { connection: 'close' } : {};
        return sendJson(res, read.status, { jsonrpc: '2.0', id: null, error: { code: read.code, message: read.message } }, headers);
      }
      body = read.body;
    }
    // Limits are per authenticated identity; without authentication (loopback only) the one
    // caller is this machine's user, whom a limit would only get in the way of.
    const calls = callsIn(body);
    const decision = authenticator ? limiter?.take(identity.subject, calls) : undefined;
    if (decision && !decision.ok) {
      metrics.rateLimitedRequest();
      const { perMinute, burst } = options.rateLimit!;
      const what = calls > 1 ? `a batch of ${calls} calls` : 'a call';
      const message = decision.exceedsBurst
        ? `rate limit exceeded for ${identity.subject}: ${what} is more than the burst of ${burst}; send smaller batches`
        : `rate limit exceeded for ${identity.subject}: ${what}; at most ${perMinute} calls a minute (bursts of ${burst}); retry in ${decision.retryAfterS} s`;
      return sendJson(
        res,
        429,
        { jsonrpc: '2.0', id: null, error: { code: -32000, message, data: { retry_after_s: decision.retryAfterS, calls } } },
        { 'retry-after': String(decision.retryAfterS) },
      );
    }
    if (authInfo) (req as IncomingMessage & { auth?: AuthInfo }).auth = authInfo;
    await serveMcp(req, res, body);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route =
      pathname === path ? 'mcp'
      : pathname === '/healthz' ? 'healthz'
      : pathname === '/metrics' ? 'metrics'
      : pathname === WELL_KNOWN || pathname === WELL_KNOWN + path ? 'oauth_metadata'
      : 'other';
    res.on('finish', () => metrics.httpRequest(route, res.statusCode));
    switch (route) {
      case 'healthz':
        if (req.method === 'GET' || req.method === 'HEAD') sendJson(res, 200, { status: 'ok' });
        else sendJson(res, 405, { error: 'method not allowed' });
        return;
      case 'metrics':
        if (!validHostAndOrigin(req, res)) return;
        if (req.method === 'GET' || req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
        } else sendJson(res, 405, { error: 'method not allowed' });
        return;
      case 'oauth_metadata':
        return serveMetadata(req, res);
      case 'other':
        return sendJson(res, 404, { error: `not found; the MCP endpoint is ${path}` });
      case 'mcp':
        handleMcp(req, res).catch((err: unknown) => {
          logError(err instanceof Error ? err : new Error(String(err)));
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.end();
        });
    }
  };

  const server = createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, bare, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${urlHost}:${port}${path}`;
  if (options.auth && withAuth) {
    const resource = options.publicUrl ?? url;
    const oauth = options.auth.oauth && { ...options.auth.oauth, audience: options.auth.oauth.audience ?? resource };
    authenticator = new Authenticator({ ...(options.auth.tokens && { tokens: options.auth.tokens }), ...(oauth && { oauth }) });
    if (oauth) {
      resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(new URL(resource));
      resourceMetadata = protectedResourceMetadata(resource, oauth);
    }
  }
  return {
    url,
    metrics,
    async close() {
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      server.closeAllConnections();
      await mcp.close();
      await closed;
    },
  };
}
