/**
 * log/signing.ts: the canonical form, HMAC-SHA256 signatures with key ids, rotation, and the
 * refusals (unsigned, forged, altered, unknown key id, wrong cluster). Expectations are
 * recomputed with node:crypto directly, not with the module under test.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, checkSignature, createKeyring, loadKeyring, signRecord, verifyRecord } from '../../log/signing.js';
import { ConfigError } from '../../schemas/errors.js';
import { CommandSchema } from '../../schemas/commands/index.js';

const secret = (n = 1) => Buffer.alloc(32, n).toString('base64');
const keys = {
  tioga: { active: 'k2', keys: { k1: secret(1), k2: secret(2) } },
  '*': { active: 'any', keys: { any: secret(9) } },
};

const command = () => ({
  v: 1,
  kind: 'command',
  command_id: '3b241101-e2bb-4255-8caf-4136c566a962',
  cluster: 'tioga',
  action: 'cancel',
  job_ids: ['123'],
  args: { note: 'ü "quoted"' },
  requested_by: { subject: 'alice@example', user: 'alice', roles: ['user'] },
  issued_at: 1_800_000_000,
  expires_at: 1_800_000_060,
  approval_required: false,
});

describe('canonicalJson', () => {
  it('sorts keys recursively, keeps array order, drops undefined members, no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' }, u: undefined })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
    // The same value built in another key order has the same form.
    expect(canonicalJson({ a: { c: 'x', d: [3, { y: 2, z: 1 }] }, b: 1 })).toBe(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }));
    expect(canonicalJson([undefined, null, true, 1.5, 'é'])).toBe('[null,null,true,1.5,"é"]');
  });

  it('refuses what JSON cannot carry', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/no JSON form/);
    expect(() => canonicalJson({ x: 1n })).toThrow(/no JSON form/);
  });
});

describe('signRecord / verifyRecord', () => {
  const ring = createKeyring(keys);

  it('signs with the active key: HMAC-SHA256 over the canonical form without `signature`', () => {
    const c = command();
    const signed = signRecord(c, ring, 'tioga');
    expect(signed.signature.key_id).toBe('k2');
    const { signature: _s, ...body } = signed;
    const want = createHmac('sha256', Buffer.alloc(32, 2)).update(canonicalJson(body)).digest('base64url');
    expect(signed.signature.hmac).toBe(want);
    // The signed record still parses as a command.
    expect(CommandSchema.safeParse(signed).success).toBe(true);
    expect(verifyRecord(JSON.parse(JSON.stringify(signed)), ring, 'tioga')).toEqual({ ok: true, keyId: 'k2' });
  });

  it('verifies whatever key order the JSON arrives in', () => {
    const signed = signRecord(command(), ring, 'tioga') as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(signed).reverse());
    expect(verifyRecord(reordered, ring, 'tioga').ok).toBe(true);
  });

  it('rotation: records signed by the old key id still verify after `active` moved on', () => {
    const before = createKeyring({ tioga: { active: 'k1', keys: { k1: secret(1) } } });
    const old = signRecord(command(), before, 'tioga');
    expect(old.signature.key_id).toBe('k1');
    expect(verifyRecord(old, ring, 'tioga')).toEqual({ ok: true, keyId: 'k1' });
    // ...and stop verifying once the old id is removed.
    const after = createKeyring({ tioga: { active: 'k2', keys: { k2: secret(2) } } });
    expect(verifyRecord(old, after, 'tioga')).toEqual({ ok: false, reason: 'unknown signing key id "k1" for cluster "tioga"' });
  });

  it('refuses altered, forged, unsigned, wrong-kid and wrong-cluster records', () => {
    const signed = signRecord(command(), ring, 'tioga');
    const altered = { ...signed, job_ids: ['124'] };
    expect(verifyRecord(altered, ring, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/bad signature/) });

    // A forger who knows the format but not the secret.
    const body = command();
    const forged = { ...body, signature: { key_id: 'k2', hmac: createHmac('sha256', randomBytes(32)).update(canonicalJson(body)).digest('base64url') } };
    expect(verifyRecord(forged, ring, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/bad signature by key "k2"/) });

    expect(verifyRecord(command(), ring, 'tioga')).toEqual({ ok: false, reason: 'unsigned record' });
    expect(verifyRecord({ ...signed, signature: { key_id: 'nope', hmac: signed.signature.hmac } }, ring, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown signing key id "nope"/) });
    expect(verifyRecord({ ...signed, signature: 'x' }, ring, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/malformed/) });
    // Signed for tioga, presented on another cluster's topic.
    expect(verifyRecord(signed, ring, 'lassen')).toMatchObject({ ok: false, reason: expect.stringMatching(/record for cluster "tioga" checked as cluster "lassen"/) });
  });

  it('a cluster without its own entry uses "*"; a cluster with one never falls back to "*"', () => {
    const other = { ...command(), cluster: 'lassen' };
    const s = signRecord(other, ring, 'lassen');
    expect(s.signature.key_id).toBe('any');
    expect(verifyRecord(s, ring, 'lassen').ok).toBe(true);
    // tioga has its own keys: a "*" signature is not valid for it.
    const star = createKeyring({ '*': keys['*'] });
    const bad = signRecord(command(), star, 'tioga');
    expect(verifyRecord(bad, ring, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown signing key id "any"/) });
  });

  it('throws a ConfigError when asked to sign for a cluster without keys', () => {
    const only = createKeyring({ tioga: keys.tioga });
    expect(() => signRecord({ ...command(), cluster: 'lassen' }, only, 'lassen')).toThrow(ConfigError);
  });
});

describe('checkSignature (receiver policy)', () => {
  const ring = createKeyring(keys);
  it('unsigned passes only when not required; forged never passes when keys are known', () => {
    expect(checkSignature(command(), { require: false }, 'tioga').ok).toBe(true);
    expect(checkSignature(command(), { require: true, keyring: ring }, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/unsigned/) });
    const forged = { ...signRecord(command(), ring, 'tioga'), action: 'hold' };
    expect(checkSignature(forged, { require: false, keyring: ring }, 'tioga').ok).toBe(false);
    expect(checkSignature(signRecord(command(), ring, 'tioga'), { require: true }, 'tioga')).toMatchObject({ ok: false, reason: expect.stringMatching(/no signing keys/) });
  });
});

describe('loadKeyring', () => {
  it('reads the keys file, and names the problem in a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    try {
      const good = join(dir, 'keys.json');
      writeFileSync(good, JSON.stringify(keys));
      expect(loadKeyring(good).activeKey('tioga')?.keyId).toBe('k2');
      const short = join(dir, 'short.json');
      writeFileSync(short, JSON.stringify({ tioga: { active: 'k', keys: { k: Buffer.alloc(8).toString('base64') } } }));
      expect(() => loadKeyring(short)).toThrow(/at least 32 bytes/);
      const dangling = join(dir, 'dangling.json');
      writeFileSync(dangling, JSON.stringify({ tioga: { active: 'k9', keys: { k: secret() } } }));
      expect(() => loadKeyring(dangling)).toThrow(/tioga\.active: active names no key/);
      expect(() => loadKeyring(join(dir, 'missing.json'))).toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
