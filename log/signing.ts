/**
 * Record signatures: HMAC-SHA256 with key ids, so no one without a cluster's key can put a
 * command on its commands topic or an event on its events topic ("no faux events").
 *
 *   canonical form  JSON with object keys sorted (recursively, by UTF-16 code units as
 *                   Array.prototype.sort does), no whitespace, the top-level `signature` removed,
 *                   undefined members dropped (as JSON.stringify drops them)
 *   signature       { key_id, hmac: base64url(HMAC-SHA256(secret, canonical form)) }
 *   keyring         per cluster (or "*"): the active key id that signs, and every key id that
 *                   verifies (rotation by key id); loaded from the `signingKeys` JSON file
 *
 * Pure apart from `loadKeyring` (reads the file). Who requires signatures is the caller's
 * decision (`checkSignature` takes the policy).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SigningKeysFileSchema, type SigningKeysFile } from '../schemas/commands/index.js';
import { formatIssues, type RecordSignature } from '../schemas/envelope/index.js';
import { ConfigError } from '../schemas/errors.js';

export interface Keyring {
  /** The key that signs for a cluster (its own entry, else "*"), or undefined. */
  activeKey(cluster: string): { keyId: string; secret: Buffer } | undefined;
  /** The secret of a key id valid for a cluster (its own entry, else "*"). */
  secret(cluster: string, keyId: string): Buffer | undefined;
}

export type VerifyResult = { ok: true; keyId: string } | { ok: false; reason: string };

/** Canonical JSON of a value (see the header); throws on what JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: a ${typeof value} has no JSON form`);
  }
}

/** The bytes a record's signature covers: its canonical JSON without `signature`. */
function signedText(record: Record<string, unknown>): string {
  const { signature: _omit, ...rest } = record;
  return canonicalJson(rest);
}

function hmacDigest(secret: Buffer, text: string): Buffer {
  return createHmac('sha256', secret).update(text, 'utf8').digest();
}

function hmac(secret: Buffer, text: string): string {
  return hmacDigest(secret, text).toString('base64url');
}

/** A keyring from the parsed keys file. */
export function createKeyring(file: SigningKeysFile): Keyring {
  const sets = new Map<string, { active: string; keys: Map<string, Buffer> }>();
  for (const [cluster, set] of Object.entries(file)) {
    sets.set(cluster, { active: set.active, keys: new Map(Object.entries(set.keys).map(([id, b64]) => [id, Buffer.from(b64, 'base64')])) });
  }
  const setFor = (cluster: string) => sets.get(cluster) ?? sets.get('*');
  return {
    activeKey(cluster) {
      const set = setFor(cluster);
      const secret = set?.keys.get(set.active);
      return set && secret ? { keyId: set.active, secret } : undefined;
    },
    secret(cluster, keyId) {
      return sets.get(cluster)?.keys.get(keyId) ?? (sets.has(cluster) ? undefined : sets.get('*')?.keys.get(keyId));
    },
  };
}

/** Reads and validates the keys file (config `signingKeys`); a bad file is a ConfigError naming it. */
export function loadKeyring(path: string): Keyring {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`signingKeys: cannot read ${path}: ${(err as Error).message}`);
  }
  const parsed = SigningKeysFileSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(`signingKeys: ${path} is not a valid keys file: ${formatIssues(parsed.error, Infinity)}`);
  }
  return createKeyring(parsed.data);
}

/**
 * Returns the record with `signature` set by the cluster's active key. Throws when the keyring
 * has no key for the cluster (a configuration mistake, found at start-up by `requireKey`).
 */
export function signRecord<T extends object>(record: T, keyring: Keyring, cluster: string): T & { signature: RecordSignature } {
  const key = keyring.activeKey(cluster);
  if (!key) throw new ConfigError(`signingKeys: no key for cluster "${cluster}" (and no "*" entry)`);
  const { signature: _old, ...rest } = record as Record<string, unknown>;
  const signature: RecordSignature = { key_id: key.keyId, hmac: hmac(key.secret, canonicalJson(rest)) };
  return { ...(rest as T), signature };
}

/** Signs when a keyring is given, else returns the record as it is. */
export function maybeSign<T extends object>(record: T, keyring: Keyring | undefined, cluster: string): T {
  return keyring ? signRecord(record, keyring, cluster) : record;
}

/** Throws a ConfigError at start-up when a signing component has no key for its cluster. */
export function requireKey(keyring: Keyring, cluster: string): void {
  if (!keyring.activeKey(cluster)) throw new ConfigError(`signingKeys: no key for cluster "${cluster}" (and no "*" entry)`);
}

/**
 * Verifies a record (the JSON object as received) against the cluster's keys: signed, by a key
 * id the cluster knows, over exactly this content, and for this cluster.
 */
export function verifyRecord(record: Record<string, unknown>, keyring: Keyring, cluster: string): VerifyResult {
  const sig = record.signature;
  if (sig === undefined) return { ok: false, reason: 'unsigned record' };
  if (typeof sig !== 'object' || sig === null || typeof (sig as RecordSignature).key_id !== 'string' || typeof (sig as RecordSignature).hmac !== 'string') {
    return { ok: false, reason: 'malformed signature (expected { key_id, hmac })' };
  }
  const { key_id: keyId, hmac: given } = sig as RecordSignature;
  if (typeof record.cluster === 'string' && record.cluster !== cluster) {
    return { ok: false, reason: `record for cluster "${record.cluster}" checked as cluster "${cluster}"` };
  }
  const secret = keyring.secret(cluster, keyId);
  if (!secret) return { ok: false, reason: `unknown signing key id "${keyId}" for cluster "${cluster}"` };
  let text: string;
  try {
    text = signedText(record);
  } catch (err) {
    return { ok: false, reason: `cannot canonicalize: ${(err as Error).message}` };
  }
  const want = hmacDigest(secret, text);
  const got = Buffer.from(given, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    return { ok: false, reason: `bad signature by key "${keyId}" (forged or altered record)` };
  }
  return { ok: true, keyId };
}

/** What a receiver demands: with `require`, unsigned records are refused; signed ones are always checked when a keyring is given. */
export interface SignaturePolicy {
  keyring?: Keyring;
  require: boolean;
}

/**
 * Applies a policy: a signed record is verified when there is a keyring (forged → refused
 * whether or not signatures are required); an unsigned one passes only when not required.
 */
export function checkSignature(record: Record<string, unknown>, policy: SignaturePolicy, cluster: string): VerifyResult | { ok: true; keyId: undefined } {
  if (record.signature === undefined) {
    return policy.require ? { ok: false, reason: 'unsigned record (signatures are required)' } : { ok: true, keyId: undefined };
  }
  if (!policy.keyring) {
    return policy.require ? { ok: false, reason: 'signatures are required but no signing keys are configured' } : { ok: true, keyId: undefined };
  }
  return verifyRecord(record, policy.keyring, cluster);
}
