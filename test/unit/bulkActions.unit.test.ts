/**
 * The bulk action tools' pure parts (mcp/tools/actions/bulkActions.ts): the request the token
 * binds (bulkFilter: the action and urgency with the filters, a plain user's own user forced
 * in), which approval threshold applies (bulkApproval: own jobs vs others'), and the command
 * records that may now name many jobs. The flows run end to end in test/int/mcpActions*.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkConfirmationToken, confirmationToken, processTokenKeys } from '../../mcp/commandSender.js';
import { bulkApproval, bulkFilter } from '../../mcp/tools/actions/bulkActions.js';
import { DEFAULT_APPROVAL_THRESHOLD, DEFAULT_OWN_APPROVAL_THRESHOLD } from '../../mcp/tools/actions/index.js';
import { CommandSchema } from '../../schemas/commands/index.js';
import { loadConfig } from '../../deploy/config.js';
import type { Identity } from '../../mcp/identity.js';

const ALICE: Identity = { subject: 'alice-laptop', user: 'alice', roles: [] };
const ADMIN: Identity = { subject: 'ops', user: 'root', roles: ['admin'] };
const DEFAULTS = { approvalThreshold: DEFAULT_APPROVAL_THRESHOLD, ownApprovalThreshold: DEFAULT_OWN_APPROVAL_THRESHOLD };

describe('bulkApproval: own jobs have their own, higher threshold', () => {
  it('defaults: 10 for others\' jobs, 200 for one\'s own (the settings\' defaults too)', () => {
    expect(DEFAULTS).toEqual({ approvalThreshold: 10, ownApprovalThreshold: 200 });
    const config = loadConfig({ flags: {}, env: {} });
    expect([config.mcpApprovalThreshold, config.mcpOwnApprovalThreshold]).toEqual([10, 200]);
  });

  it('mcpOwnApprovalThreshold comes from a flag or the environment; a bad value names the setting', () => {
    expect(loadConfig({ flags: {}, env: { JOBSCRIBE_MCP_OWN_APPROVAL_THRESHOLD: '50' } }).mcpOwnApprovalThreshold).toBe(50);
    expect(loadConfig({ flags: { mcpOwnApprovalThreshold: '0' }, env: {} }).mcpOwnApprovalThreshold).toBe(0);
    expect(() => loadConfig({ flags: { mcpOwnApprovalThreshold: '-1' }, env: {} })).toThrow(/mcpOwnApprovalThreshold/);
    expect(() => loadConfig({ flags: { mcpOwnApprovalThreshold: '2.5' }, env: {} })).toThrow(/mcpOwnApprovalThreshold.*whole number/s);
  });

  it('a plain user acting on 44 of their own jobs needs no approver; an admin on 44 of others\' jobs does', () => {
    const own44 = Array.from({ length: 44 }, () => 'alice');
    expect(bulkApproval(ALICE, own44, DEFAULTS)).toEqual({ required: false, own: true, threshold: 200 });
    expect(bulkApproval(ADMIN, own44, DEFAULTS)).toEqual({ required: true, own: false, threshold: 10 });
    // one foreign job among them and the general threshold applies
    expect(bulkApproval(ALICE, [...own44.slice(1), 'bob'], DEFAULTS)).toMatchObject({ required: true, own: false });
    // an admin on their own scheduler user's jobs is "own"
    expect(bulkApproval(ADMIN, Array.from({ length: 44 }, () => 'root'), DEFAULTS)).toMatchObject({ required: false, own: true });
    // an identity with no scheduler user owns nothing
    expect(bulkApproval({ user: undefined }, own44, DEFAULTS)).toMatchObject({ required: true, own: false });
  });

  it('above the own threshold an approver is needed after all', () => {
    expect(bulkApproval(ALICE, Array.from({ length: 200 }, () => 'alice'), DEFAULTS).required).toBe(false);
    expect(bulkApproval(ALICE, Array.from({ length: 201 }, () => 'alice'), DEFAULTS).required).toBe(true);
  });
});

describe('bulkFilter: what the confirmation token binds', () => {
  it('forces a plain user\'s own user in, and refuses another user\'s', () => {
    expect(bulkFilter({ cluster: 'slurmy', action: 'hold' }, ALICE)).toEqual({
      cluster: 'slurmy',
      action: 'hold',
      urgency: null,
      user: 'alice',
      queue: null,
      states: ['pending'],
      name: null,
    });
    expect(() => bulkFilter({ cluster: 'slurmy', action: 'hold', user: 'bob' }, ALICE)).toThrow("user 'bob': you may hold only your own jobs (user alice)");
    expect(bulkFilter({ cluster: 'slurmy', action: 'hold', user: 'bob' }, ADMIN).user).toBe('bob');
  });

  it('cancel takes pending and running jobs; hold, release and urgency pending ones only', () => {
    expect(bulkFilter({ cluster: 'c', action: 'cancel' }, ALICE).states).toEqual(['pending', 'running']);
    expect(bulkFilter({ cluster: 'c', action: 'release', state: 'pending' }, ALICE).states).toEqual(['pending']);
    expect(() => bulkFilter({ cluster: 'c', action: 'hold', state: 'running' }, ALICE)).toThrow('only pending jobs can be held');
    expect(() => bulkFilter({ cluster: 'c', action: 'urgency', urgency: 4, state: ['pending', 'running'] }, ALICE)).toThrow('only pending jobs can be changed');
  });

  it('urgency goes with action urgency only; note with cancel only', () => {
    expect(bulkFilter({ cluster: 'c', action: 'urgency', urgency: 4 }, ALICE).urgency).toBe(4);
    expect(() => bulkFilter({ cluster: 'c', action: 'urgency' }, ALICE)).toThrow('action urgency needs urgency');
    expect(() => bulkFilter({ cluster: 'c', action: 'hold', urgency: 4 }, ALICE)).toThrow('urgency is only for action urgency, not hold');
    expect(() => bulkFilter({ cluster: 'c', action: 'hold', note: 'x' }, ALICE)).toThrow('note is only for action cancel');
  });

  it('a token for one action (or urgency) does not confirm another over the same jobs', () => {
    const keys = processTokenKeys(randomBytes(32));
    const plan = (input: Parameters<typeof bulkFilter>[0]) => ({ subject: ALICE.subject, filter: bulkFilter(input, ALICE), jobIds: ['1', '2'] });
    const hold = plan({ cluster: 'c', action: 'hold' });
    const token = confirmationToken(hold, 2_000_000_000, keys);
    expect(checkConfirmationToken(token, hold, 1_900_000_000, keys)).toEqual({ ok: true });
    for (const other of [
      plan({ cluster: 'c', action: 'release' }),
      plan({ cluster: 'c', action: 'cancel', state: 'pending' }),
      plan({ cluster: 'c', action: 'urgency', urgency: 0 }),
    ]) {
      expect(checkConfirmationToken(token, other, 1_900_000_000, keys), other.filter.action).toEqual({ ok: false, reason: 'mismatch' });
    }
    const u5 = plan({ cluster: 'c', action: 'urgency', urgency: 5 });
    expect(checkConfirmationToken(confirmationToken(u5, 2_000_000_000, keys), plan({ cluster: 'c', action: 'urgency', urgency: 6 }), 1_900_000_000, keys)).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });
});

describe('command records: many jobs for the bulk actions', () => {
  const command = (action: string, job_ids: string[]) => ({
    v: 1,
    kind: 'command',
    command_id: randomUUID(),
    cluster: 'slurmy',
    action,
    job_ids,
    args: action === 'urgency' ? { urgency: 3 } : {},
    requested_by: { subject: 'alice-laptop', user: 'alice', roles: [] },
    issued_at: 1_900_000_000,
    expires_at: 1_900_000_300,
    approval_required: false,
  });

  it('cancel, hold, release and urgency may name several jobs; signal may not', () => {
    for (const action of ['cancel', 'hold', 'release', 'urgency']) expect(CommandSchema.safeParse(command(action, ['1', '2', '3'])).success, action).toBe(true);
    const signal = CommandSchema.safeParse(command('signal', ['1', '2']));
    expect(signal.success).toBe(false);
    expect(signal.error?.issues[0]?.message).toBe('only cancel, hold, release, urgency may name several jobs');
  });
});
