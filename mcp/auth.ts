/**
 * Who is calling the MCP HTTP endpoint: the `Authorization: Bearer` token → an Identity, or the
 * refusal to send (401 / 403 with a `WWW-Authenticate` challenge).
 *
 * Two kinds of tokens, either or both configured:
 * - static tokens from a JSON file (`mcpTokens`): `[{ name, token_sha256 | token, user?, roles? }]`.
 *   Only SHA-256 digests are kept in memory and compared in constant time; `name` is the subject.
 * - OAuth 2.1 access tokens (resource-server mode): JWTs signed by the authorization server,
 *   checked against its JWKS (RS256, ES256 or EdDSA only; never `none` or HMAC), its issuer, our
 *   audience, exp/nbf/iat with a small leeway, and an optional required scope. The JWKS is cached
 *   and fetched again when a token names an unknown key id (at most once per refresh interval).
 *
 * Owns: token parsing and verification, the identity mapping, the challenge header and the RFC 9728
 * protected-resource metadata document. Leaves to others: routing, Host/Origin checks and rate
 * limits (http.ts), what an identity may read (identity.ts, findJob.ts).
 */
import { createHash, createPublicKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AuthInfo, OAuthProtectedResourceMetadata } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { ConfigError } from '../schemas/errors.js';
import type { Identity } from './identity.js';

// ---- static tokens -------------------------------------------------------------------------------

export interface StaticToken {
  name: string;
  sha256: Buffer;
  user?: string;
  roles: string[];
}

const TokenEntrySchema = z
  .object({
    name: z.string().min(1, 'name: required (who this token is: a person, a laptop, a service)'),
    token: z.string().min(16, 'token: at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
    token_sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'token_sha256: 64 hex digits (`printf %s "$TOKEN" | sha256sum`)')
      .optional(),
    user: z.string().min(1).optional(),
    roles: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((e) => (e.token === undefined) !== (e.token_sha256 === undefined), 'give exactly one of token and token_sha256');

/** Fewer distinct characters than this, or less empirical entropy than ENTROPY_FLOOR_BITS: a guessable token. */
const MIN_DISTINCT = 8;
const ENTROPY_FLOOR_BITS = 40;

/** Why a plaintext token is too easy to guess (`aaaaaaaaaaaaaaaa`, `abababab…`), or undefined when it is not. */
export function weakTokenReason(token: string): string | undefined {
  const counts = new Map<string, number>();
  for (const c of token) counts.set(c, (counts.get(c) ?? 0) + 1);
  if (counts.size < MIN_DISTINCT) return `it has only ${counts.size} distinct characters (at least ${MIN_DISTINCT})`;
  const n = [...token].length;
  let bits = 0;
  for (const k of counts.values()) bits -= k * Math.log2(k / n);
  if (bits < ENTROPY_FLOOR_BITS) return `it carries about ${Math.floor(bits)} bits of entropy (at least ${ENTROPY_FLOOR_BITS})`;
  return undefined;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Validates the tokens file's JSON (already parsed); `source` names it in errors. */
export function parseTokens(data: unknown, source: string): StaticToken[] {
  const parsed = z.array(TokenEntrySchema).safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? `entry ${issue.path.join('.')}` : 'the file';
    throw new ConfigError(`invalid setting mcpTokens: ${source}, ${where}: ${issue.message}`);
  }
  if (parsed.data.length === 0) {
    // An empty list would turn authentication off: every loopback caller would be admin.
    throw new ConfigError(
      `invalid setting mcpTokens: ${source} holds no tokens, which would leave the endpoint without authentication; ` +
        'add an entry, or drop mcpTokens (--mcp-tokens) to serve loopback unauthenticated on purpose',
    );
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  return parsed.data.map((e, i) => {
    if (names.has(e.name)) throw new ConfigError(`invalid setting mcpTokens: ${source}: name "${e.name}" appears twice`);
    const weak = e.token !== undefined ? weakTokenReason(e.token) : undefined;
    if (weak) {
      throw new ConfigError(`invalid setting mcpTokens: ${source}, entry ${i}.token ("${e.name}"): too easy to guess, ${weak}; use e.g. \`openssl rand -hex 32\``);
    }
    names.add(e.name);
    const digest = e.token_sha256 !== undefined ? Buffer.from(e.token_sha256, 'hex') : sha256(e.token!);
    if (digests.has(digest.toString('hex'))) throw new ConfigError(`invalid setting mcpTokens: ${source}: "${e.name}" reuses another entry's token`);
    digests.add(digest.toString('hex'));
    return { name: e.name, sha256: digest, roles: e.roles, ...(e.user !== undefined && { user: e.user }) };
  });
}

export function loadTokensFile(path: string): StaticToken[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid setting mcpTokens: ${path} cannot be read: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`invalid setting mcpTokens: ${path} is not JSON: ${(err as Error).message}`);
  }
  return parseTokens(data, path);
}

/** The entry whose digest equals the token's; every entry is compared, in constant time. */
export function matchStaticToken(tokens: readonly StaticToken[], token: string): StaticToken | undefined {
  const digest = sha256(token);
  let hit: StaticToken | undefined;
  for (const t of tokens) if (timingSafeEqual(t.sha256, digest) && hit === undefined) hit = t;
  return hit;
}

// ---- JWT access tokens ---------------------------------------------------------------------------

export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export interface OAuthOptions {
  /** The authorization server's issuer identifier: the token's `iss` must equal it. */
  issuer: string;
  /** Our audience: the token's `aud` must contain it. Default: the MCP URL (http.ts fills it). */
  audience: string;
  /** Where the issuer publishes its signing keys (JWKS); https, or http on a loopback host. */
  jwksUrl: string;
  /** Claim holding the scheduler user name; dotted paths reach nested claims. Default preferred_username. */
  userClaim?: string;
  /** Claim holding the roles (array, or space-separated string); dotted paths allowed. Default roles. */
  rolesClaim?: string;
  /** A scope every token must carry (`scope` or `scp` claim); none when unset. */
  requiredScope?: string;
  /** Clock skew tolerated on exp, nbf and iat, seconds. Default 60. */
  leewayS?: number;
  /** Fetch the JWKS again after this long even without an unknown kid. Default 10 min. */
  jwksMaxAgeMs?: number;
  /** At most one JWKS fetch per this interval (unknown kids do not hammer the issuer). Default 30 s. */
  jwksMinIntervalMs?: number;
  /** Milliseconds since the epoch; default Date.now. */
  now?: () => number;
  /** Where JWKS fetch failures are reported. Default stderr. */
  logError?: (message: string) => void;
}

export function isLoopbackUrl(url: URL): boolean {
  const h = url.hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Checks an OAuth configuration once at start-up, so a typo fails there and not on the first call. */
export function checkOAuthOptions(o: OAuthOptions): void {
  let jwks: URL;
  try {
    jwks = new URL(o.jwksUrl);
  } catch {
    throw new ConfigError(`invalid setting mcpOauthJwksUrl: "${o.jwksUrl}" is not a URL`);
  }
  if (jwks.protocol !== 'https:' && !(jwks.protocol === 'http:' && isLoopbackUrl(jwks))) {
    throw new ConfigError(`invalid setting mcpOauthJwksUrl: ${o.jwksUrl} must be https (plain http only on a loopback host)`);
  }
  if (!o.issuer) throw new ConfigError('invalid setting mcpOauthIssuer: required for OAuth (the authorization server issuer URL)');
  if (!o.audience) throw new ConfigError('invalid setting mcpOauthAudience: required for OAuth');
}

/** A refusal the token itself earned: 401 invalid_token, or 403 insufficient_scope. */
export class TokenRejected extends Error {
  constructor(
    readonly kind: 'invalid_token' | 'insufficient_scope',
    message: string,
  ) {
    super(message);
  }
}

/** The JWKS could not be fetched and no cached keys are left to try: 503, not the caller's fault. */
export class KeysUnavailable extends Error {}

interface CachedKey {
  kid: string | undefined;
  alg: string | undefined;
  key: KeyObject;
}

/** The issuer's signing keys: fetched lazily, refreshed when stale or on an unknown kid, single-flight. */
class JwksCache {
  private keys: CachedKey[] = [];
  private fetchedAt = -Infinity;
  private lastFetchFailed = false;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly maxAgeMs: number,
    private readonly minIntervalMs: number,
    private readonly now: () => number,
    private readonly logError: (m: string) => void,
  ) {}

  async candidates(kid: string | undefined, alg: JwtAlgorithm): Promise<CachedKey[]> {
    const age = this.now() - this.fetchedAt;
    if (age >= this.maxAgeMs) await this.refresh();
    let found = this.match(kid, alg);
    if (found.length === 0 && kid !== undefined && this.now() - this.fetchedAt >= this.minIntervalMs) {
      await this.refresh();
      found = this.match(kid, alg);
    }
    if (this.keys.length === 0 && this.lastFetchFailed) throw new KeysUnavailable(`the authorization server's signing keys (${this.url}) cannot be fetched`);
    return found;
  }

  private match(kid: string | undefined, alg: JwtAlgorithm): CachedKey[] {
    return this.keys.filter((k) => (kid === undefined || k.kid === kid) && (k.alg === undefined || k.alg === alg) && keyFitsAlg(k.key, alg));
  }

  private refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async fetchKeys(): Promise<void> {
    this.fetchedAt = this.now();
    try {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      if (text.length > 1 << 20) throw new Error('larger than 1 MiB');
      const body = JSON.parse(text) as { keys?: unknown };
      if (!Array.isArray(body.keys)) throw new Error('no "keys" array');
      const keys: CachedKey[] = [];
      for (const jwk of body.keys.slice(0, 100) as (JsonWebKey & { kid?: unknown; use?: unknown; alg?: unknown })[]) {
        if (typeof jwk !== 'object' || jwk === null || jwk.use === 'enc' || 'd' in jwk || jwk.kty === 'oct') continue;
        try {
          keys.push({
            kid: typeof jwk.kid === 'string' ? jwk.kid : undefined,
            alg: typeof jwk.alg === 'string' ? jwk.alg : undefined,
            key: createPublicKey({ key: jwk, format: 'jwk' }),
          });
        } catch {
          // A key type this runtime cannot import: skip it, the others may still verify.
        }
      }
      this.keys = keys;
      this.lastFetchFailed = false;
    } catch (err) {
      // Keep the keys we had: they still verify tokens signed before a rotation.
      this.lastFetchFailed = true;
      this.logError(`jobscribe mcp: fetching the OAuth signing keys from ${this.url} failed: ${(err as Error).message}`);
    }
  }
}

function keyFitsAlg(key: KeyObject, alg: JwtAlgorithm): boolean {
  switch (alg) {
    case 'RS256':
      return key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
    case 'ES256':
      return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    case 'EdDSA':
      return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448';
  }
}

function verifySignature(alg: JwtAlgorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  switch (alg) {
    case 'RS256':
      return verify('sha256', data, key, signature);
    case 'ES256':
      return signature.length === 64 && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'EdDSA':
      return verify(null, data, key, signature);
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function decodeJsonPart(part: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TokenRejected('invalid_token', `the token's ${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** `a.b.c` → claims.a.b.c (Keycloak keeps roles under realm_access.roles). */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function stringList(v: unknown): string[] {
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x.length > 0);
  return [];
}

export interface VerifiedToken {
  identity: Identity;
  authInfo: AuthInfo;
}

export class JwtVerifier {
  private readonly jwks: JwksCache;
  private readonly now: () => number;

  constructor(private readonly o: OAuthOptions) {
    checkOAuthOptions(o);
    this.now = o.now ?? Date.now;
    this.jwks = new JwksCache(
      o.jwksUrl,
      o.jwksMaxAgeMs ?? 600_000,
      o.jwksMinIntervalMs ?? 30_000,
      this.now,
      o.logError ?? ((m) => process.stderr.write(`${m}\n`)),
    );
  }

  /** The token's identity, or a TokenRejected saying why not (KeysUnavailable when keys cannot be had). */
  async verify(token: string): Promise<VerifiedToken> {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) throw new TokenRejected('invalid_token', 'the token is not a signed JWT');
    const [h, p, s] = parts as [string, string, string];
    const header = decodeJsonPart(h, 'header');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(JWT_ALGORITHMS as readonly string[]).includes(alg)) {
      // Never repeat the header's values: they are the caller's, and may carry CR/LF or anything.
      throw new TokenRejected('invalid_token', `the token's algorithm is not accepted (${JWT_ALGORITHMS.join(', ')})`);
    }
    if (header.crit !== undefined) throw new TokenRejected('invalid_token', 'the token has critical header extensions this server does not understand');
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const claims = decodeJsonPart(p, 'payload');

    const keys = await this.jwks.candidates(kid, alg as JwtAlgorithm);
    if (keys.length === 0) throw new TokenRejected('invalid_token', kid ? "the token's key id names no signing key of the issuer" : 'the token names no key id');
    const data = Buffer.from(`${h}.${p}`, 'ascii');
    const signature = Buffer.from(s, 'base64url');
    if (!keys.some((k) => verifySignature(alg as JwtAlgorithm, k.key, data, signature))) {
      throw new TokenRejected('invalid_token', 'the token signature is not valid');
    }

    const nowS = this.now() / 1000;
    const leeway = this.o.leewayS ?? 60;
    if (claims.iss !== this.o.issuer) throw new TokenRejected('invalid_token', 'the token was issued by another issuer');
    const aud = stringList(typeof claims.aud === 'string' ? [claims.aud] : claims.aud);
    if (!aud.includes(this.o.audience)) throw new TokenRejected('invalid_token', 'the token is for another audience');
    if (typeof claims.exp !== 'number') throw new TokenRejected('invalid_token', 'the token has no expiry (exp)');
    if (nowS > claims.exp + leeway) throw new TokenRejected('invalid_token', 'the token has expired');
    // Present but not a number ("nbf": "2099-01-01") must not read as absent.
    for (const claim of ['nbf', 'iat'] as const) {
      if (claims[claim] !== undefined && (typeof claims[claim] !== 'number' || !Number.isFinite(claims[claim]))) {
        throw new TokenRejected('invalid_token', `the token's ${claim} is not a number of seconds`);
      }
    }
    if (typeof claims.nbf === 'number' && nowS < claims.nbf - leeway) throw new TokenRejected('invalid_token', 'the token is not valid yet (nbf)');
    if (typeof claims.iat === 'number' && nowS < claims.iat - leeway) throw new TokenRejected('invalid_token', 'the token was issued in the future (iat)');
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new TokenRejected('invalid_token', 'the token has no subject (sub)');

    const scopes = stringList(claims.scope ?? claims.scp);
    if (this.o.requiredScope !== undefined && !scopes.includes(this.o.requiredScope)) {
      throw new TokenRejected('insufficient_scope', `the token lacks the scope ${this.o.requiredScope}`);
    }
    const user = claimAt(claims, this.o.userClaim ?? 'preferred_username');
    const identity: Identity = {
      subject: claims.sub,
      roles: stringList(claimAt(claims, this.o.rolesClaim ?? 'roles')),
      ...(typeof user === 'string' && user !== '' && { user }),
    };
    const clientId = [claims.client_id, claims.azp].find((c): c is string => typeof c === 'string') ?? claims.sub;
    return { identity, authInfo: { token, clientId, scopes, expiresAt: claims.exp, extra: { identity } } };
  }
}

// ---- the authenticator http.ts calls -----------------------------------------------------------

export interface AuthSettings {
  tokens?: readonly StaticToken[];
  oauth?: OAuthOptions;
}

export type AuthOutcome =
  | { ok: true; identity: Identity; authInfo: AuthInfo }
  | { ok: false; kind: 'missing_token' | 'invalid_token' | 'insufficient_scope'; description: string }
  | { ok: false; kind: 'unavailable'; description: string };

export function authConfigured(auth: { tokens?: readonly StaticToken[]; oauth?: unknown } | undefined): boolean {
  return Boolean(auth && ((auth.tokens && auth.tokens.length > 0) || auth.oauth));
}

export class Authenticator {
  private readonly jwt: JwtVerifier | undefined;

  constructor(private readonly settings: AuthSettings) {
    this.jwt = settings.oauth ? new JwtVerifier(settings.oauth) : undefined;
  }

  async authenticate(authorization: string | undefined): Promise<AuthOutcome> {
    if (authorization === undefined || authorization.trim() === '') {
      return { ok: false, kind: 'missing_token', description: 'send Authorization: Bearer <token>' };
    }
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(authorization);
    if (!m) return { ok: false, kind: 'invalid_token', description: 'the Authorization header must be "Bearer <token>"' };
    const token = m[1]!;
    const fixed = this.settings.tokens ? matchStaticToken(this.settings.tokens, token) : undefined;
    if (fixed) {
      const identity: Identity = { subject: fixed.name, roles: fixed.roles, ...(fixed.user !== undefined && { user: fixed.user }) };
      return { ok: true, identity, authInfo: { token, clientId: fixed.name, scopes: [], extra: { identity } } };
    }
    if (!this.jwt) return { ok: false, kind: 'invalid_token', description: 'unknown token' };
    try {
      const v = await this.jwt.verify(token);
      return { ok: true, ...v };
    } catch (err) {
      if (err instanceof TokenRejected) return { ok: false, kind: err.kind, description: err.message };
      if (err instanceof KeysUnavailable) return { ok: false, kind: 'unavailable', description: err.message };
      throw err;
    }
  }
}

/** The identity http.ts attached to the request's AuthInfo (undefined when none was attached). */
export function identityOf(authInfo: AuthInfo | undefined): Identity | undefined {
  const identity = authInfo?.extra?.identity;
  return typeof identity === 'object' && identity !== null ? (identity as Identity) : undefined;
}

/**
 * The `WWW-Authenticate` value of a 401/403 (RFC 6750 §3, RFC 9728 §5.1): `error` only when a token
 * was given, `scope` on insufficient_scope, `resource_metadata` when OAuth metadata is served.
 */
export function bearerChallenge(opts: {
  error?: 'invalid_token' | 'insufficient_scope';
  description?: string;
  scope?: string;
  resourceMetadataUrl?: string;
}): string {
  // Printable ASCII only, no quote or backslash: a header value can never break out or fail to send.
  const q = (v: string) => `"${v.replace(/[^\x20-\x7e]|["\\]/g, '')}"`;
  const params = ['realm="jobscribe"'];
  if (opts.resourceMetadataUrl) params.push(`resource_metadata=${q(opts.resourceMetadataUrl)}`);
  if (opts.error) params.push(`error=${q(opts.error)}`);
  if (opts.error && opts.description) params.push(`error_description=${q(opts.description)}`);
  if (opts.scope) params.push(`scope=${q(opts.scope)}`);
  return `Bearer ${params.join(', ')}`;
}

/** RFC 9728 protected-resource metadata for OAuth mode. */
export function protectedResourceMetadata(resource: string, oauth: OAuthOptions): OAuthProtectedResourceMetadata {
  return {
    resource,
    authorization_servers: [oauth.issuer],
    bearer_methods_supported: ['header'],
    resource_name: 'jobscribe',
    ...(oauth.requiredScope !== undefined && { scopes_supported: [oauth.requiredScope] }),
  };
}
