/**
 * projector/tables/actions.ts: given a command's records (in either order between topics) →
 * then its `actions` row. Expected values are written from the records themselves.
 */
import { describe, expect, it } from 'vitest';
import { evolveAction, projectActions, actionKey, type ActionRow } from '../../projector/tables/actions.js';
import type { Approval, Command, CommandRecord, CommandResult, Refusal } from '../../schemas/commands/index.js';
import { summarize } from '../../scribe/commandLoop.js';

const ID = '7d3a3c2e-5b1f-4c55-9a53-2d6f1b0c9e11';
const cmd: Command = {
  v: 1,
  kind: 'command',
  command_id: ID,
  cluster: 'alpha',
  action: 'cancel',
  job_ids: ['11', '12', '13'],
  args: { note: 'cleanup' },
  requested_by: { subject: 'alice@site', user: 'alice', roles: ['user'] },
  issued_at: 1_800_000_000.25,
  expires_at: 1_800_000_600,
  approval_required: true,
};
const approve = (subject: string, roles: string[]): Approval => ({
  v: 1,
  kind: 'approval',
  command_id: ID,
  cluster: 'alpha',
  decision: 'approve',
  by: { subject, roles },
  at: 1_800_000_100,
});
const result = (status: CommandResult['status'], at: number): CommandResult => ({
  v: 1,
  kind: 'command-result',
  command_id: ID,
  cluster: 'alpha',
  status,
  results: status === 'accepted' ? cmd.job_ids.map((job_id) => ({ job_id, ok: true })) : [],
  at,
  scribe: { id: 'alpha@host', version: '0.1.0' },
  ...(status === 'rejected' ? { reason: 'expired: late' } : {}),
});

const fold = (records: CommandRecord[]): ActionRow => {
  let row: ActionRow | undefined;
  for (const r of records) row = evolveAction(row, r);
  return row!;
};
const iso = (s: number) => new Date(s * 1000).toISOString().slice(0, 23).replace('T', ' ');

describe('actions fold', () => {
  it('command → awaiting → approval → accepted: every column from its record', () => {
    const row = fold([cmd, result('awaiting_approval', 1_800_000_001), approve('bob@site', ['approver']), result('accepted', 1_800_000_101)]);
    expect(row).toEqual({
      cluster: 'alpha',
      command_id: ID,
      action: 'cancel',
      job_ids: ['11', '12', '13'],
      args: JSON.stringify({ note: 'cleanup' }),
      requested_by: 'alice@site',
      requested_user: 'alice',
      requested_roles: ['user'],
      on_behalf_of: '',
      issued_at: iso(cmd.issued_at),
      expires_at: iso(cmd.expires_at),
      approval_required: true,
      approved_by: 'bob@site',
      approved_at: iso(1_800_000_100),
      rejected_by: '',
      status: 'accepted',
      reason: '',
      results: JSON.stringify(cmd.job_ids.map((job_id) => ({ job_id, ok: true }))),
      result_at: iso(1_800_000_101),
      scribe_id: 'alpha@host',
      version: 4,
    });
  });

  it('a result folded before its command keeps its status when the command arrives', () => {
    const row = fold([result('accepted', 1_800_000_050), cmd]);
    expect(row.status).toBe('accepted');
    expect(row.action).toBe('cancel');
    expect(row.requested_by).toBe('alice@site');
  });

  it('the first final status sticks; awaiting never overrides a final one', () => {
    const row = fold([cmd, result('accepted', 1_800_000_050), result('rejected', 1_800_009_000), result('awaiting_approval', 1_800_009_001)]);
    expect(row.status).toBe('accepted');
    expect(row.result_at).toBe(iso(1_800_000_050));
  });

  it('approvals by the requester or by someone without the approver role are not recorded', () => {
    expect(fold([cmd, approve('alice@site', ['approver'])]).approved_by).toBe('');
    expect(fold([cmd, approve('carol@site', ['user'])]).approved_by).toBe('');
    const rejectedByRequester = fold([cmd, { ...approve('alice@site', []), decision: 'reject' }]);
    expect(rejectedByRequester.rejected_by).toBe('alice@site');
    expect(rejectedByRequester.status).toBe('requested');
  });

  it('refolding the same records changes nothing but the version', () => {
    const once = fold([cmd, result('accepted', 1_800_000_050)]);
    const twice = evolveAction(evolveAction(once, cmd), result('accepted', 1_800_000_050));
    expect({ ...twice, version: 0 }).toEqual({ ...once, version: 0 });
    expect(twice.version).toBeGreaterThan(once.version);
  });

  it('projectActions returns one row per command, folded on the prior row', () => {
    const prior = new Map([[actionKey('alpha', ID), fold([cmd])]]);
    const other = { ...cmd, command_id: '0f8d1f7e-9a4b-4c3e-8d2a-1b2c3d4e5f60', approval_required: false };
    const out = projectActions([result('accepted', 1_800_000_050), other], prior);
    expect(out.size).toBe(2);
    expect(out.get(actionKey('alpha', ID))).toMatchObject({ status: 'accepted', action: 'cancel', version: 2 });
    expect(out.get(actionKey('alpha', other.command_id))).toMatchObject({ status: 'requested', version: 1 });
  });

  it("a result that says who decided fills approved_by / rejected_by before the approval record is folded (the two travel on different topics)", () => {
    const decided = (status: CommandResult['status'], decision: 'approve' | 'reject', at: number): CommandResult => ({
      ...result(status, at + 1),
      decided_by: { decision, subject: 'bob@site', at },
    });
    const approved = fold([cmd, decided('accepted', 'approve', 1_800_000_100)]);
    expect(approved).toMatchObject({ status: 'accepted', approved_by: 'bob@site', approved_at: iso(1_800_000_100), rejected_by: '' });
    // The approval record arriving afterwards changes nothing but the version.
    expect(evolveAction(approved, approve('bob@site', ['approver']))).toEqual({ ...approved, version: approved.version + 1 });

    const rejected = fold([cmd, decided('rejected', 'reject', 1_800_000_200)]);
    expect(rejected).toMatchObject({ status: 'rejected', rejected_by: 'bob@site', approved_by: '', approved_at: null });
  });

  it('a refusal by the MCP service is a final row of its own: who asked, what, why', () => {
    const refusal: Refusal = {
      v: 1,
      kind: 'refusal',
      command_id: ID,
      cluster: 'alpha',
      action: 'cancel',
      job_ids: ['12'],
      requested_by: { subject: 'eve@site', user: 'eve', roles: ['user'] },
      tool: 'cancel_job',
      reason: 'not owner: the job belongs to alice, not eve',
      at: 1_800_000_300.5,
    };
    const row = fold([refusal]);
    expect(row).toMatchObject({
      action: 'cancel',
      job_ids: ['12'],
      requested_by: 'eve@site',
      requested_user: 'eve',
      requested_roles: ['user'],
      issued_at: iso(1_800_000_300.5),
      status: 'refused',
      reason: 'refused by the MCP service (cancel_job): not owner: the job belongs to alice, not eve',
      result_at: iso(1_800_000_300.5),
      approved_by: '',
      version: 1,
    });
    // Final: a (forged) result for the same id does not turn it into something else.
    expect(evolveAction(row, result('accepted', 1_800_000_400)).status).toBe('refused');
  });

  it("a submit's job_ids are the new job its result names, whichever record is folded first; a failed submit names none", () => {
    const submitCmd: Command = { ...cmd, action: 'submit', job_ids: [], args: { submit: { jobspec: '{}' } }, approval_required: false };
    const accepted: CommandResult = { ...result('accepted', 1_800_000_200), results: [{ job_id: '4000000000000', ok: true, response: { job_id: '4000000000000' } }] };
    expect(fold([submitCmd, accepted]).job_ids).toEqual(['4000000000000']);
    expect(fold([accepted, submitCmd]).job_ids).toEqual(['4000000000000']);
    const failed: CommandResult = { ...result('failed', 1_800_000_200), results: [{ job_id: '', ok: false, code: 'invalid', error: 'submit: rejected as invalid' }] };
    expect(fold([submitCmd, failed]).job_ids).toEqual([]);
    expect(fold([failed, submitCmd]).job_ids).toEqual([]);
    // any other action keeps the jobs its command names, also when its result came first
    const partial: CommandResult = { ...result('accepted', 1_800_000_200), results: [{ job_id: '11', ok: false, code: 'no_such_job' }, { job_id: '12', ok: true }] };
    expect(fold([partial, cmd]).job_ids).toEqual(['11', '12', '13']);
    expect(fold([cmd, partial]).job_ids).toEqual(['11', '12', '13']);
  });
});

describe("the command's status and reason from its jobs' results (scribe/commandLoop.ts summarize)", () => {
  it('a failed submit (no job id) reads as the error alone; a job names its id', () => {
    const error = 'submit: rejected as invalid (flux: invalid job flags)';
    expect(summarize([{ job_id: '', ok: false, code: 'invalid', error }])).toEqual({ status: 'failed', reason: error });
    expect(summarize([{ job_id: '', ok: true, response: { job_id: '5' } }])).toEqual({ status: 'accepted' });
    expect(summarize([{ job_id: '7', ok: false, code: 'no_such_job', error: 'no such job 7' }])).toEqual({ status: 'failed', reason: '7: no such job 7' });
    expect(summarize([{ job_id: '7', ok: false, code: 'no_such_job' }, { job_id: '8', ok: true }])).toEqual({
      status: 'accepted',
      reason: '1 of 2 jobs not acted on (first 7: no_such_job)',
    });
  });
});
