/**
 * How the MCP service sends commands: a `CommandSender` puts a command or approval record on its
 * cluster's commands topic (`<prefix>.<cluster>.commands`), signed with the cluster's active key
 * when a keyring is configured (log/signing.ts). And the bulk-cancel confirmation token: an HMAC
 * over who asked, the exact filters, the resolved job id set and an expiry, so a token only
 * confirms the very set the dry run showed.
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

/** A secret per process: tokens confirm a dry run of this same service process. */
const PROCESS_TOKEN_SECRET = randomBytes(32);

export interface BulkPlan {
  subject: string;
  /** The filters, normalized (absent = null, states sorted). */
  filter: Record<string, unknown>;
  /** The resolved job ids (any order). */
  jobIds: readonly string[];
}

function planMac(secret: Buffer, plan: BulkPlan, expiresAt: number): string {
  const text = canonicalJson({ s: plan.subject, f: plan.filter, j: [...plan.jobIds].sort(), e: expiresAt });
  return createHmac('sha256', secret).update(text, 'utf8').digest('base64url');
}

/** `<expiry seconds>.<hmac>`: valid for this plan until `expiresAt` (seconds since the epoch). */
export function confirmationToken(plan: BulkPlan, expiresAt: number, secret: Buffer = PROCESS_TOKEN_SECRET): string {
  return `${expiresAt}.${planMac(secret, plan, expiresAt)}`;
}

export type TokenCheck = { ok: true } | { ok: false; reason: 'malformed' | 'expired' | 'mismatch' };

/** Does `token` confirm exactly `plan` (same asker, filters and job set), and is it unexpired at `nowS`? */
export function checkConfirmationToken(token: string, plan: BulkPlan, nowS: number, secret: Buffer = PROCESS_TOKEN_SECRET): TokenCheck {
  const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const expiresAt = Number(m[1]);
  const want = Buffer.from(planMac(secret, plan, expiresAt), 'base64url');
  const got = Buffer.from(m[2]!, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'mismatch' };
  if (nowS > expiresAt) return { ok: false, reason: 'expired' };
  return { ok: true };
}
