/**
 * The MCP side of actions, pure parts: the bulk-cancel confirmation token (bound to the asker,
 * the filters, the job id set and an expiry) and the authorization decision (own jobs unless
 * admin). The flows around them run end to end in test/int/mcpActions*.int.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkConfirmationToken, confirmationToken, keyringTokenKeys, processTokenKeys, type BulkPlan } from '../../mcp/commandSender.js';
import { createKeyring } from '../../log/signing.js';
import { authorizeJobAction, onBehalfOf, submitUser } from '../../mcp/tools/actions/common.js';

const secret = processTokenKeys(randomBytes(32));
const plan: BulkPlan = {
  subject: 'alice',
  filter: { cluster: 'tioga', user: 'alice', queue: null, states: ['pending', 'running'], name: null },
  jobIds: ['3', '1', '2'],
};
const NOW = 1_800_000_000;

describe('confirmation token', () => {
  const token = confirmationToken(plan, NOW + 300, secret);

  it('confirms the same plan (job order does not matter) until it expires', () => {
    expect(checkConfirmationToken(token, { ...plan, jobIds: ['1', '2', '3'] }, NOW, secret)).toEqual({ ok: true });
    expect(checkConfirmationToken(token, plan, NOW + 300, secret)).toEqual({ ok: true });
    expect(checkConfirmationToken(token, plan, NOW + 301, secret)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a changed set, other filters, another asker, another secret, a moved expiry', () => {
    const mismatch = { ok: false, reason: 'mismatch' };
    expect(checkConfirmationToken(token, { ...plan, jobIds: ['1', '2'] }, NOW, secret)).toEqual(mismatch);
    expect(checkConfirmationToken(token, { ...plan, jobIds: ['1', '2', '3', '4'] }, NOW, secret)).toEqual(mismatch);
    expect(checkConfirmationToken(token, { ...plan, filter: { ...plan.filter, queue: 'debug' } }, NOW, secret)).toEqual(mismatch);
    expect(checkConfirmationToken(token, { ...plan, subject: 'bob' }, NOW, secret)).toEqual(mismatch);
    expect(checkConfirmationToken(token, plan, NOW, processTokenKeys(randomBytes(32)))).toEqual(mismatch);
    const [, id, mac] = token.split('.');
    expect(checkConfirmationToken(`${NOW + 9999}.${id}.${mac}`, plan, NOW, secret)).toEqual(mismatch);
  });

  it('refuses what is not a token', () => {
    for (const t of ['', 'abc', `${NOW}.p.short`, `x.p.${'a'.repeat(43)}`, `${NOW}.${'a'.repeat(43)}`, `${NOW}.p q.${'a'.repeat(43)}`]) {
      expect(checkConfirmationToken(t, plan, NOW, secret)).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});

describe('confirmation tokens from the signing keys (several MCP instances)', () => {
  const key = (n: number) => Buffer.alloc(32, n).toString('base64');
  const keys = (active: string) => keyringTokenKeys(createKeyring({ '*': { active, keys: { 'k1/2026': key(1), k2: key(2) } } }));

  it('a token one instance made confirms on another with the same keys file, also after rotation; not with other keys', () => {
    const a = keys('k1/2026');
    const token = confirmationToken(plan, NOW + 300, a);
    expect(checkConfirmationToken(token, plan, NOW, keys('k1/2026'))).toEqual({ ok: true });
    // rotated: k2 signs now, k1/2026 still verifies
    expect(checkConfirmationToken(token, plan, NOW, keys('k2'))).toEqual({ ok: true });
    expect(confirmationToken(plan, NOW + 300, keys('k2'))).not.toBe(token);
    const other = keyringTokenKeys(createKeyring({ '*': { active: 'k1/2026', keys: { 'k1/2026': key(9) } } }));
    expect(checkConfirmationToken(token, plan, NOW, other)).toEqual({ ok: false, reason: 'mismatch' });
    // a per-process token is not accepted by another process
    expect(checkConfirmationToken(confirmationToken(plan, NOW + 300, processTokenKeys()), plan, NOW, a)).toEqual({ ok: false, reason: 'mismatch' });
  });
});

describe('authorizeJobAction', () => {
  it('lets an admin act on any job (with the scribe\'s authority) and a user on their own only', () => {
    expect(authorizeJobAction({ subject: 'ops', roles: ['admin'] }, 'alice')).toEqual({ ok: true });
    expect(onBehalfOf({ subject: 'ops', user: 'root', roles: ['admin'] })).toBeUndefined();
    expect(authorizeJobAction({ subject: 's', user: 'alice', roles: [] }, 'alice')).toEqual({ ok: true });
    expect(onBehalfOf({ subject: 's', user: 'alice', roles: [] })).toBe('alice');
    expect(authorizeJobAction({ subject: 's', user: 'alice', roles: ['approver'] }, 'bob')).toEqual({ ok: false, reason: expect.stringContaining('not owner') });
    expect(authorizeJobAction({ subject: 's', roles: [] }, 'bob')).toEqual({ ok: false, reason: expect.stringContaining('no scheduler user') });
  });
});

describe('submitUser', () => {
  it('submits as the caller\'s own scheduler user, an admin\'s too; an identity without one cannot submit', () => {
    expect(submitUser({ subject: 's', user: 'alice', roles: [] })).toBe('alice');
    expect(submitUser({ subject: 'ops', user: 'opsuser', roles: ['admin'] })).toBe('opsuser');
    expect(() => submitUser({ subject: 'ops', roles: ['admin'] })).toThrow(/this identity \(ops\) is not mapped to a scheduler user, so it cannot submit/);
    expect(() => submitUser({ subject: 'local', roles: ['admin'] })).toThrow(/never as the scribe's/);
  });
});
