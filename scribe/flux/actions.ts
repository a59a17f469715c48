/**
 * Scheduler actions on Flux, through the source's connection: request → RPC → ActionResult.
 *   cancel   job-manager.raise   {id, type:"cancel", severity:0[, note]}
 *   signal   job-manager.kill    {id, signum}
 *   hold     job-manager.urgency {id, urgency:0}
 *   release  job-manager.urgency {id, urgency:16}
 *   urgency  job-manager.urgency {id, urgency}          (0 hold … 16 default … 31 expedite)
 *   submit   job-ingest.submit   {J, urgency, flags}    (J signed with mech "none": owner only)
 *
 * Who submits: job-ingest makes the connection's user the job's owner and takes a job only
 * signed by that same user ("signer != requestor" otherwise), with mech "none" for the instance
 * owner alone; a guest's job needs the guest's own flux-security signature (munge / curve), which
 * the IMP checks again before it runs anything as the guest. The scribe connects as the instance
 * owner and cannot sign as anyone else, so it submits only for a request whose user IS the
 * instance owner (`fluxSubmitAs`); anyone else is refused, with that reason, before any RPC.
 * Errors become codes: ENOENT → no_such_job ("no such job <id>"), EPERM/EACCES → not_permitted,
 * EINVAL/EPROTO/ERANGE → invalid, ENOSYS → unsupported ("service missing"), anything else
 * (the connection included) → failed. Who may ask for what is decided before this (authorize);
 * Flux checks again against the connection's credentials (the instance owner).
 */
import { parseJobId } from '../../schemas/ids.js';
import type { ActionRequest, ActionResult, OwnerResult } from '../source.js';
import * as jobInfoLookup from './protocol/job-info-lookup/index.js';
import type { FluxConnection } from './connector.js';
import { FluxError } from './errors.js';
import type { FluxMessage } from './protocol/message.js';
import * as kill from './protocol/kill/index.js';
import * as raise from './protocol/raise/index.js';
import * as submit from './protocol/submit/index.js';
import * as urgency from './protocol/urgency/index.js';
import { FLUX_URGENCY } from '../../schemas/flux/events.js';

export interface ActionDeps {
  connection(): Promise<FluxConnection>;
  /** Uid that signs submitted jobspecs (must be the uid the broker sees on the connection). */
  submitUserid(): Promise<number>;
  /** uid → user name: a submit runs only for the user who owns the instance (submitUserid). */
  users(uid: number): string | undefined;
  timeoutMs?: number;
}

type Rpc = { topic: string; encode(tag: number): Uint8Array; parse(msg: FluxMessage): Record<string, unknown> | undefined };
type Plan = { rpc: Rpc; jobId?: string } | { error: ActionResult };

const invalid = (message: string): { error: ActionResult } => ({ error: { ok: false, code: 'invalid', message } });

function intArg(args: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = args?.[key];
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

/** Pure: what to send for a request (or why it cannot be sent). */
export function planAction(req: ActionRequest, submitUserid?: number): Plan {
  const args = req.args ?? {};
  if (req.action === 'submit') return planSubmit(args, submitUserid);
  if (!req.job_id) return invalid(`${req.action} needs a job id`);
  const jobId = parseJobId(req.job_id);
  if (!jobId) return invalid(`"${req.job_id}" is not a job id (decimal, ƒ58 or 0x hex)`);
  const id = BigInt(jobId);
  const ack = () => undefined;
  const setUrgency = (u: number): Plan => ({
    jobId,
    rpc: {
      topic: urgency.TOPIC,
      encode: (tag) => urgency.encode({ id, urgency: u }, tag),
      parse: (m) => {
        const r = urgency.parse(urgency.decode(m));
        return r.old_urgency === undefined ? { urgency: u } : { urgency: u, old_urgency: r.old_urgency };
      },
    },
  });
  switch (req.action) {
    case 'cancel': {
      const note = args.note ?? args.message;
      if (note !== undefined && typeof note !== 'string') return invalid('cancel: note must be a string');
      const r: raise.RaiseRequest = { id, type: 'cancel', severity: 0 };
      if (note !== undefined) r.note = note;
      return { jobId, rpc: { topic: raise.TOPIC, encode: (tag) => raise.encode(r, tag), parse: (m) => (raise.parse(raise.decode(m)), ack()) } };
    }
    case 'signal': {
      const signum = intArg(args, 'signum') ?? (args.signum === undefined ? 15 : undefined);
      if (signum === undefined || signum < 1 || signum > 64) return invalid('signal: signum must be an integer 1..64');
      return {
        jobId,
        rpc: { topic: kill.TOPIC, encode: (tag) => kill.encode({ id, signum }, tag), parse: (m) => (kill.parse(kill.decode(m)), { signum }) },
      };
    }
    case 'hold':
      return setUrgency(FLUX_URGENCY.HOLD);
    case 'release':
      return setUrgency(FLUX_URGENCY.DEFAULT);
    case 'urgency': {
      const u = intArg(args, 'urgency');
      if (u === undefined || u < 0 || u > 31) return invalid('urgency must be an integer 0..31 (0 hold, 16 default, 31 expedite)');
      return setUrgency(u);
    }
    default:
      return { error: { ok: false, code: 'unsupported', message: `flux: unknown action "${String(req.action)}"` } };
  }
}

function planSubmit(args: Record<string, unknown>, userid: number | undefined): Plan {
  const jobspec = args.jobspec;
  if (typeof jobspec === 'string') {
    try {
      JSON.parse(jobspec);
    } catch {
      return invalid('submit: jobspec must be JSON (RFC 14 jobspec v1)');
    }
  } else if (!jobspec || typeof jobspec !== 'object' || Array.isArray(jobspec)) {
    return invalid('submit: args.jobspec (an RFC 14 jobspec v1 object or its JSON text) is required');
  }
  const u = args.urgency === undefined ? FLUX_URGENCY.DEFAULT : intArg(args, 'urgency');
  if (u === undefined || u < 0 || u > 31) return invalid('submit: urgency must be an integer 0..31');
  let flags = 0;
  const f = args.flags;
  if (typeof f === 'number' && Number.isInteger(f)) flags = f;
  else if (Array.isArray(f)) {
    for (const name of f) {
      const bit = submit.SubmitFlag[name as submit.SubmitFlagName];
      if (bit === undefined) return invalid(`submit: unknown flag "${String(name)}" (debug, waitable, novalidate)`);
      flags |= bit;
    }
  } else if (f !== undefined) return invalid('submit: flags must be a number or a list of names');
  if (userid === undefined) return { error: { ok: false, code: 'failed', message: 'submit: the signing uid is unknown' } };
  const req: submit.SubmitRequest = { jobspec: jobspec as string | Record<string, unknown>, urgency: u, flags, userid };
  return {
    rpc: {
      topic: submit.TOPIC,
      encode: (tag) => submit.encode(req, tag),
      parse: (m) => ({ job_id: submit.parse(submit.decode(m)) }),
    },
  };
}

/** FluxError (or any failure) → a typed ActionResult. */
export function actionError(err: unknown, action: string, jobId?: string): ActionResult {
  if (err instanceof FluxError) {
    const broker = err.brokerMessage ? ` (flux: ${err.brokerMessage})` : '';
    switch (err.errname) {
      case 'ENOENT':
        return { ok: false, code: 'no_such_job', message: jobId ? `no such job ${jobId}${broker}` : `no such job${broker}` };
      case 'EPERM':
      case 'EACCES':
        return { ok: false, code: 'not_permitted', message: `${action}: not permitted${jobId ? ` on job ${jobId}` : ''}${broker}` };
      case 'EINVAL':
      case 'EPROTO':
      case 'ERANGE':
        return { ok: false, code: 'invalid', message: `${action}: rejected as invalid${broker || ` (${err.message})`}` };
      case 'ENOSYS':
        return {
          ok: false,
          code: 'unsupported',
          message: `${action}: service missing: ${err.topic ?? 'the service'} is not loaded on this Flux instance${broker}`,
        };
      default:
        return { ok: false, code: 'failed', message: `${action} failed: ${err.message}` };
    }
  }
  return { ok: false, code: 'failed', message: `${action} failed: ${(err as Error)?.message ?? String(err)}` };
}

/**
 * May the scribe, connected as the instance owner `ownerUid` (named `ownerName`), submit for
 * `user`? Only when `user` is the owner: undefined when it may, else the refusal. Pure.
 */
export function fluxSubmitAs(user: string | undefined, ownerUid: number, ownerName: string | undefined): Exclude<ActionResult, { ok: true }> | undefined {
  if (user === undefined) {
    return { ok: false, code: 'not_permitted', message: 'submit: no scheduler user to submit as; the scribe submits only as the requesting user, never as itself' };
  }
  if (ownerName !== undefined && user === ownerName) return undefined;
  // The owner is not named: the requester learns no other account's name from a refusal.
  const unnamed = ownerName === undefined ? ` (uid ${ownerUid} has no user name on this host)` : '';
  return {
    ok: false,
    code: 'not_permitted',
    message:
      `submit as ${user}: refused: this scribe connects to Flux as the instance owner${unnamed}, and flux-core owns a job by the ` +
      `connection's user and takes a guest's job only signed by that guest (flux-security, munge or curve), which the scribe ` +
      `cannot do for ${user}; only the instance owner may submit through jobscribe here (others: flux submit as themselves)`,
  };
}

export async function executeFluxAction(req: ActionRequest, deps: ActionDeps): Promise<ActionResult> {
  let userid: number | undefined;
  if (req.action === 'submit') {
    try {
      userid = await deps.submitUserid();
    } catch (err) {
      return actionError(err, 'submit');
    }
    const refused = fluxSubmitAs(req.user, userid, deps.users(userid));
    if (refused) return refused;
  }
  const plan = planAction(req, userid);
  if ('error' in plan) return plan.error;
  try {
    const conn = await deps.connection();
    const msg = await conn.request((tag) => plan.rpc.encode(tag), { timeoutMs: deps.timeoutMs ?? 30_000 });
    const detail = plan.rpc.parse(msg);
    const result: ActionResult = { ok: true };
    const jobId = plan.jobId ?? (detail?.job_id as string | undefined);
    if (jobId) result.job_id = jobId;
    if (detail) result.detail = detail;
    return result;
  } catch (err) {
    return actionError(err, req.action, plan.jobId);
  }
}

/**
 * The job's owner, as Flux records it: the userid of the job's `submit` event (job-info.lookup
 * of its eventlog), named by `users`. ENOENT → no_such_job.
 */
export async function fluxJobOwner(jobId: string, deps: Pick<ActionDeps, 'connection' | 'timeoutMs'> & { users: (uid: number) => string | undefined }): Promise<OwnerResult> {
  const id = parseJobId(jobId);
  if (!id) return { ok: false, code: 'no_such_job', message: `"${jobId}" is not a job id (decimal, ƒ58 or 0x hex)` };
  try {
    const conn = await deps.connection();
    const msg = await conn.request((tag) => jobInfoLookup.encode({ id: BigInt(id) }, tag), { timeoutMs: deps.timeoutMs ?? 30_000 });
    const { userid } = jobInfoLookup.parse(jobInfoLookup.decode(msg));
    if (userid === undefined) return { ok: false, code: 'failed', message: `job ${id}: its eventlog has no submit event with a userid` };
    const user = deps.users(userid);
    if (user === undefined) return { ok: false, code: 'failed', message: `job ${id}: owner uid ${userid} has no user name on this host` };
    return { ok: true, user };
  } catch (err) {
    if (err instanceof FluxError && err.errname === 'ENOENT') return { ok: false, code: 'no_such_job', message: `no such job ${id}` };
    return { ok: false, code: 'failed', message: `owner of job ${id}: ${(err as Error).message}` };
  }
}
