/**
 * The approval and refusal rules, pure: samePerson (schemas/commands),
 * the scribe's approvalDecision and scribeRefusal / refusalId (scribe/commandLoop.ts), and how the
 * projector's fold (projector/tables/actions.ts) treats a second token of the requester and the
 * scribe's refusal of a forged or misplaced copy of a genuine command.
 */
import { describe, expect, it } from 'vitest';
import { evolveAction, projectActions, actionKey, type ActionRow } from '../../projector/tables/actions.js';
import { RefusalSchema, samePerson, type Approval, type Command, type CommandRecord, type CommandResult } from '../../schemas/commands/index.js';
import { approvalDecision, refusalId, scribeRefusal } from '../../scribe/commandLoop.js';
import { decisionRefusal } from '../../mcp/tools/actions/approvals.js';
import type { StoredAction as McpActionRow } from '../../mcp/tools/actions/common.js';

const ID = '7d3a3c2e-5b1f-4c55-9a53-2d6f1b0c9e11';
const SCRIBE = { id: 'alpha@host', version: '0.1.0' };
const alice = { subject: 'alice-laptop', user: 'alice', roles: ['user'] };
const cmd: Command = {
  v: 1,
  kind: 'command',
  command_id: ID,
  cluster: 'alpha',
  action: 'cancel',
  job_ids: ['11', '12', '13'],
  args: {},
  requested_by: alice,
  issued_at: 1_800_000_000,
  expires_at: 1_800_000_600,
  approval_required: true,
};
const approval = (by: Approval['by'], decision: Approval['decision'] = 'approve'): Approval => ({
  v: 1,
  kind: 'approval',
  command_id: ID,
  cluster: 'alpha',
  decision,
  by,
  at: 1_800_000_100,
});
const awaiting: CommandResult = { v: 1, kind: 'command-result', command_id: ID, cluster: 'alpha', status: 'awaiting_approval', results: [], at: 1_800_000_001, scribe: SCRIBE };
const fold = (records: CommandRecord[], prior?: ActionRow): ActionRow => {
  let row = prior;
  for (const r of records) row = evolveAction(row, r);
  return row!;
};

describe('samePerson', () => {
  it('the same scheduler user under another token or OAuth subject is the same person', () => {
    expect(samePerson(alice, { subject: 'alice-desktop', user: 'alice' })).toBe(true);
    expect(samePerson(alice, { subject: '0f3c9e1a-oauth-sub', user: 'alice' })).toBe(true);
  });
  it('the same subject is the same person, with or without a scheduler user', () => {
    expect(samePerson({ subject: 'ops' }, { subject: 'ops' })).toBe(true);
    expect(samePerson(alice, { subject: 'alice-laptop' })).toBe(true);
  });
  it('different subjects are different persons unless both name the same user', () => {
    expect(samePerson(alice, { subject: 'carol', user: 'carol' })).toBe(false);
    expect(samePerson({ subject: 'ops' }, { subject: 'ops2' })).toBe(false);
    expect(samePerson(alice, { subject: 'ops' })).toBe(false);
    expect(samePerson({ subject: 'a', user: '' }, { subject: 'b', user: '' })).toBe(false);
  });
});

describe("the scribe's approvalDecision", () => {
  it("refuses an approve by a second token of the requester's scheduler user, even with the approver role", () => {
    const d = approvalDecision(cmd, approval({ subject: 'alice-desktop', user: 'alice', roles: ['approver'] }), 1_800_000_100);
    expect(d).toEqual({ kind: 'ignore', reason: 'alice-desktop (scheduler user alice, as the requester alice-laptop) cannot approve their own command' });
  });
  it('executes on an approve by another person with the role; a second token of the requester may withdraw', () => {
    expect(approvalDecision(cmd, approval({ subject: 'carol', user: 'carol', roles: ['approver'] }), 1_800_000_100)).toEqual({ kind: 'execute' });
    expect(approvalDecision(cmd, approval({ subject: 'alice-desktop', user: 'alice', roles: [] }, 'reject'), 1_800_000_100)).toMatchObject({ kind: 'reject' });
  });
});

describe("the MCP service's decisionRefusal", () => {
  const row: McpActionRow = {
    cluster: 'alpha',
    command_id: ID,
    action: 'cancel',
    job_ids: ['11'],
    requested_by: 'alice-laptop',
    requested_user: 'alice',
    approval_required: true,
    approved_by: '',
    rejected_by: '',
    status: 'awaiting_approval',
    reason: '',
    results: '[]',
    issued_ms: '1800000000000',
    expires_ms: '1800000600000',
    result_ms: null,
  };
  const as = (subject: string, user?: string) => ({ identity: { subject, ...(user !== undefined && { user }), roles: ['approver'] } });
  it("refuses an approve by a second token of the requester's user, and by the requester's own token", () => {
    expect(decisionRefusal(as('alice-desktop', 'alice'), 'approve', row, 1_800_000_100_000)).toBe(
      `you (scheduler user alice, as alice-laptop) requested command ${ID}; a different person with the approver role must approve it`,
    );
    expect(decisionRefusal(as('alice-laptop', 'alice'), 'approve', row, 1_800_000_100_000)).toContain('you (alice-laptop) requested');
  });
  it('lets another person approve, and says when only a result of the command is recorded yet', () => {
    expect(decisionRefusal(as('carol', 'carol'), 'approve', row, 1_800_000_100_000)).toBeUndefined();
    expect(decisionRefusal(as('carol', 'carol'), 'approve', { ...row, requested_by: '', requested_user: '', approval_required: false }, 1_800_000_100_000)).toBe(
      `command ${ID} is not fully recorded yet; try again in a few seconds`,
    );
  });
});

describe('the projector fold: approvals by the same person', () => {
  it("an approve by a second token of the requester's user is not recorded; another person's is", () => {
    const same = fold([cmd, awaiting, approval({ subject: 'alice-desktop', user: 'alice', roles: ['approver'] })]);
    expect(same).toMatchObject({ approved_by: '', approved_at: null, status: 'awaiting_approval' });
    expect(fold([cmd, awaiting, approval({ subject: 'carol', user: 'carol', roles: ['approver'] })])).toMatchObject({ approved_by: 'carol' });
  });
});

describe("the scribe's refusal of a record it will not act on", () => {
  const unsignedCopy = JSON.stringify(cmd);
  const refusal = scribeRefusal({ value: unsignedCopy, key: ID, record: cmd, verified: false, reason: 'unsigned record (signatures are required)' }, 'alpha', SCRIBE, 1_800_000_050);

  it('has an id of its own, derived from the claimed id and the record digest, and refers to the claimed command', () => {
    expect(RefusalSchema.parse(refusal)).toEqual(refusal);
    expect(refusal.command_id).not.toBe(ID);
    expect(refusal.command_id).toBe(refusalId(ID, refusal.digest!));
    expect(refusal).toMatchObject({ kind: 'refusal', cluster: 'alpha', refers_to: ID, tool: 'scribe', action: 'cancel', job_ids: ['11', '12', '13'], scribe: SCRIBE });
    // the same record again: the same refusal; another copy: another one
    expect(scribeRefusal({ value: unsignedCopy, key: ID, record: cmd, verified: false, reason: 'x' }, 'alpha', SCRIBE, 1).command_id).toBe(refusal.command_id);
    expect(scribeRefusal({ value: unsignedCopy + ' ', key: ID, record: cmd, verified: false, reason: 'x' }, 'alpha', SCRIBE, 1).command_id).not.toBe(refusal.command_id);
  });

  it('names an unverified requester only as a quoted claim, and bounds what the sender chose', () => {
    expect(refusal.requested_by).toEqual({ subject: '(unverified)', roles: [] });
    expect(refusal.reason).toBe(`command ${ID} claiming requester "alice-laptop": unsigned record (signatures are required)`);
    const big: Command = { ...cmd, job_ids: Array.from({ length: 5000 }, (_, i) => String(i + 1)), requested_by: { subject: 'm'.repeat(256), roles: ['admin'] } };
    const r = scribeRefusal({ value: JSON.stringify(big), key: ID, record: big, verified: false, reason: 'e'.repeat(5000) }, 'alpha', SCRIBE, 1);
    expect(r.job_ids).toHaveLength(20);
    expect(r.reason.length).toBe(1024);
    expect(JSON.stringify(r).length).toBeLessThan(2000);
    expect(RefusalSchema.safeParse(r).success).toBe(true);
  });

  it('an undecodable record: its key as the claimed id when it is one, nothing else of it', () => {
    const r = scribeRefusal({ value: '{"kind":"command","junk":"<script>"}', key: ID, json: { kind: 'command', junk: '<script>' }, verified: false, reason: 'invalid: bad' }, 'alpha', SCRIBE, 1);
    expect(r).toMatchObject({ refers_to: ID, action: 'command', job_ids: [], requested_by: { subject: '(unverified)' }, reason: `command ${ID}: invalid: bad` });
    expect(JSON.stringify(r)).not.toContain('<script>');
    const noId = scribeRefusal({ value: 'not json', key: 'whatever', verified: false, reason: 'invalid: not JSON' }, 'alpha', SCRIBE, 1);
    expect(noId.refers_to).toBeUndefined();
    expect(RefusalSchema.safeParse(noId).success).toBe(true);
  });

  it('a verified record (a misplaced genuine command) keeps its requester', () => {
    const r = scribeRefusal({ value: JSON.stringify(cmd), key: ID, record: cmd, verified: true, reason: 'misplaced: …' }, 'beta', SCRIBE, 1);
    expect(r).toMatchObject({ cluster: 'beta', requested_by: alice, refers_to: ID });
  });

  it('genuine command then the refusal of a forged copy: the genuine row is unchanged, the refusal is a row of its own', () => {
    const rows = projectActions([cmd, awaiting, refusal], new Map());
    const genuine = rows.get(actionKey('alpha', ID))!;
    expect(genuine).toEqual({ ...fold([cmd, awaiting]), version: 2 });
    expect(rows.get(actionKey('alpha', refusal.command_id))).toMatchObject({
      status: 'refused',
      requested_by: '(unverified)',
      action: 'cancel',
      reason: `refused by the alpha scribe: command ${ID} claiming requester "alice-laptop": unsigned record (signatures are required)`,
    });
  });

  it('the refusal first, then the genuine command and its approval: the command runs and its row says so', () => {
    const rows = projectActions([refusal, cmd, awaiting, approval({ subject: 'carol', user: 'carol', roles: ['approver'] })], new Map());
    expect(rows.get(actionKey('alpha', ID))).toMatchObject({ status: 'awaiting_approval', approved_by: 'carol', requested_by: 'alice-laptop' });
    expect(rows.get(actionKey('alpha', refusal.command_id))?.status).toBe('refused');
  });

  it('a misplaced copy (alpha\'s command refused by the beta scribe) is a beta refusal row; the alpha row is untouched', () => {
    const misplaced = scribeRefusal({ value: JSON.stringify(cmd), key: ID, record: cmd, verified: true, reason: 'misplaced: a command for cluster "alpha" reached the scribe of "beta"' }, 'beta', SCRIBE, 2);
    const before = fold([cmd, awaiting]);
    const rows = projectActions([misplaced], new Map([[actionKey('alpha', ID), before]]));
    expect([...rows.keys()]).toEqual([actionKey('beta', misplaced.command_id)]);
    expect(rows.get(actionKey('beta', misplaced.command_id))).toMatchObject({ cluster: 'beta', status: 'refused' });
  });

  it('a refusal under the id of a row that holds a command changes nothing in it', () => {
    const before = fold([cmd, awaiting]);
    const colliding = { ...refusal, command_id: ID };
    expect({ ...evolveAction(before, colliding), version: before.version }).toEqual(before);
  });
});
