/**
 * How the MCP service sends commands: a `CommandSender` puts a command or approval record on its
 * cluster's commands topic (`<prefix>.<cluster>.commands`), signed with the cluster's active key
 * when a keyring is configured (log/signing.ts). And the bulk actions' confirmation token: an
 * HMAC over who asked, the action and exact filters, the resolved job id set and an expiry, so a
 * token only confirms the very action and set the dry run showed.
 *
 * Not here: deciding whether a command may be sent (mcp/tools/actions/), executing it (the
 * cluster's scribe), folding it into `actions` (the projector).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { commandsTopic, type EventLog } from '../log/eventLog.js';
import { canonicalJson, maybeSign, type Keyring } from '../log/signing.js';
import { commandRecordMessage, type Approval, type Command, type Refusal, type Requester } from '../schemas/commands/index.js';
import type { Identity } from './identity.js';

/** Sends a command or approval record to its cluster's commands topic. */
export interface CommandSender {
  send(record: Command | Approval | Refusal): Promise<void>;
}

export interface LogCommandSenderOptions {
  log: EventLog;
  topicPrefix: string;
  /** Signs every record with the cluster's active key; unsigned without one. */
  keyring?: Keyring;
}

export function createLogCommandSender(opts: LogCommandSenderOptions): CommandSender {
  return {
    async send(record) {
      const signed = maybeSign(record, opts.keyring, record.cluster);
      await opts.log.publish(commandsTopic(opts.topicPrefix, record.cluster), [commandRecordMessage(signed)]);
    },
  };
}

/** The requester block of a command or approval. */
export function requesterOf(identity: Identity): Requester {
  return { subject: identity.subject, ...(identity.user !== undefined && { user: identity.user }), roles: [...identity.roles] };
}

// ---- bulk confirmation tokens ---------------------------------------------------------------

/**
 * The keys tokens are made with, by id. Per process by default (a token confirms a dry run of the
 * same service process); from the signing keys when they are configured, so every MCP instance
 * sharing the keys file accepts the others' tokens (several instances behind one address).
 */
export interface TokenKeys {
  /** The key new tokens for `cluster` are made with. */
  current(cluster: string): { id: string; secret: Buffer };
  /** A key by id, when it may still confirm tokens for `cluster`. */
  byId(cluster: string, id: string): Buffer | undefined;
}

/** Keys known to one process only. */
export function processTokenKeys(secret: Buffer = randomBytes(32)): TokenKeys {
  return { current: () => ({ id: 'p', secret }), byId: (_cluster, id) => (id === 'p' ? secret : undefined) };
}

/** Token keys derived from the signing keyring (its active key per cluster; rotation by key id), else `fallback`'s. */
export function keyringTokenKeys(keyring: Keyring, fallback: TokenKeys = processTokenKeys()): TokenKeys {
  // Domain-separated: a token key is never a record-signing key itself.
  const derive = (secret: Buffer) => createHmac('sha256', secret).update('jobscribe bulk confirmation token v1', 'utf8').digest();
  return {
    current(cluster) {
      const k = keyring.activeKey(cluster);
      return k ? { id: `k${Buffer.from(k.keyId, 'utf8').toString('base64url')}`, secret: derive(k.secret) } : fallback.current(cluster);
    },
    byId(cluster, id) {
      if (!id.startsWith('k')) return fallback.byId(cluster, id);
      const secret = keyring.secret(cluster, Buffer.from(id.slice(1), 'base64url').toString('utf8'));
      return secret && derive(secret);
    },
  };
}

const PROCESS_TOKEN_KEYS = processTokenKeys();

export interface BulkPlan {
  subject: string;
  /** The filters, normalized (absent = null, states sorted); `cluster` picks the key. */
  filter: Record<string, unknown>;
  /** The resolved job ids (any order). */
  jobIds: readonly string[];
}

function planMac(secret: Buffer, plan: BulkPlan, expiresAt: number): string {
  const text = canonicalJson({ s: plan.subject, f: plan.filter, j: [...plan.jobIds].sort(), e: expiresAt });
  return createHmac('sha256', secret).update(text, 'utf8').digest('base64url');
}

const clusterOf = (plan: BulkPlan) => (typeof plan.filter.cluster === 'string' ? plan.filter.cluster : '');

/** `<expiry seconds>.<key id>.<hmac>`: valid for this plan until `expiresAt` (seconds since the epoch). */
export function confirmationToken(plan: BulkPlan, expiresAt: number, keys: TokenKeys = PROCESS_TOKEN_KEYS): string {
  const { id, secret } = keys.current(clusterOf(plan));
  return `${expiresAt}.${id}.${planMac(secret, plan, expiresAt)}`;
}

export type TokenCheck = { ok: true } | { ok: false; reason: 'malformed' | 'expired' | 'mismatch' };

/** Does `token` confirm exactly `plan` (same asker, filters and job set), and is it unexpired at `nowS`? */
export function checkConfirmationToken(token: string, plan: BulkPlan, nowS: number, keys: TokenKeys = PROCESS_TOKEN_KEYS): TokenCheck {
  const m = /^(\d{1,12})\.([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const expiresAt = Number(m[1]);
  const secret = keys.byId(clusterOf(plan), m[2]!);
  if (!secret) return { ok: false, reason: 'mismatch' };
  const want = Buffer.from(planMac(secret, plan, expiresAt), 'base64url');
  const got = Buffer.from(m[3]!, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'mismatch' };
  if (nowS > expiresAt) return { ok: false, reason: 'expired' };
  return { ok: true };
}
