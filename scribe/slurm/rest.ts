/**
 * slurmrestd (openapi v0.0.38, Slurm 22.05) as an alternative to the CLIs for the job snapshot
 * and the actions; sacct stays a CLI (the REST /slurmdb/ job records carry the same wrong exit
 * codes as `sacct --json`). Authentication: JWT in X-SLURM-USER-TOKEN plus X-SLURM-USER-NAME
 * (the token alone gets 401).
 *
 *   snapshot     GET    /slurm/v0.0.38/jobs            (the same document as `squeue --json`)
 *   cancel       DELETE /slurm/v0.0.38/job/{id}
 *   signal       DELETE /slurm/v0.0.38/job/{id}?signal=USR1
 *   hold/release POST   /slurm/v0.0.38/job/{id}        {"hold": true|false}
 *   urgency      POST   /slurm/v0.0.38/job/{id}        {"priority": n} / {"nice": n}
 *   time_limit   POST   /slurm/v0.0.38/job/{id}        {"time_limit": minutes}
 *   submit       POST   /slurm/v0.0.38/job/submit      {"job": {...}, "script": "..."}
 *
 * Who acts: X-SLURM-USER-NAME is the request's user (else the configured one). slurmctld takes a
 * user name other than the token's only from a token of SlurmUser or root (else it drops the
 * request: "Zero Bytes were transmitted or received"), so that token lets the scribe act, and
 * submit, as each requesting user. A submit names its user or is refused.
 *
 * slurmrestd answers many failures with HTTP 200 and a non-empty `errors` array, and some
 * successes with an error (a submit with hold: "Job is in held state, pending scheduler
 * release"); `errors` is read on every answer. Like scancel, DELETE of a finished job says nothing.
 */
import type { ActionResult } from '../source.js';
import { SCHEDULER_USER_RE, classifySlurmError, type SlurmActionRequest } from './actions.js';
import { SlurmError } from './cliRunner.js';

export interface SlurmRestOptions {
  /** e.g. http://127.0.0.1:6820 */
  url: string;
  user: string;
  token: string;
  /** Default v0.0.38 (Slurm 22.05; v0.0.36 and v0.0.37 are served too). */
  apiVersion?: string;
  timeoutMs?: number;
  /** Working directory and environment of submitted jobs (slurmrestd requires an environment). */
  submitDir?: string;
  submitEnv?: Record<string, string>;
  fetch?: typeof fetch;
}

interface RestAnswer {
  status: number;
  /** The response text as received ("" when empty). */
  text: string;
  body: Record<string, unknown>;
  errors: Array<{ error?: string; description?: string }>;
}

export interface SlurmRest {
  /** The job list, as `squeue --json` prints it. */
  jobsJson(signal?: AbortSignal): Promise<string>;
  act(request: SlurmActionRequest): Promise<ActionResult>;
}

export function createSlurmRest(opts: SlurmRestOptions): SlurmRest {
  const base = `${opts.url.replace(/\/+$/, '')}/slurm/${opts.apiVersion ?? 'v0.0.38'}`;
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  async function call(method: string, path: string, body?: unknown, signal?: AbortSignal, user = opts.user): Promise<RestAnswer> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const res = await doFetch(`${base}${path}`, {
      method,
      headers: {
        'X-SLURM-USER-NAME': user,
        'X-SLURM-USER-TOKEN': opts.token,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await res.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      parsed = { errors: [{ error: text.slice(0, 200) || `HTTP ${res.status}` }] };
    }
    const errors = Array.isArray(parsed.errors) ? (parsed.errors as RestAnswer['errors']) : [];
    return { status: res.status, text, body: parsed, errors };
  }

  const errorText = (a: RestAnswer) => a.errors.map((e) => e.error || e.description || '').filter(Boolean).join('; ') || `HTTP ${a.status}`;

  return {
    async jobsJson(signal) {
      let a: RestAnswer;
      try {
        a = await call('GET', '/jobs', undefined, signal);
      } catch (err) {
        throw new SlurmError(`slurmrestd ${base}/jobs: ${(err as Error).message}`, { code: 'slurm_rest', cause: err });
      }
      if (a.status === 401 || a.status === 403) throw new SlurmError(`slurmrestd refused the token (HTTP ${a.status})`, { code: 'slurm_rest_auth', retriable: false });
      if (a.status !== 200 || a.errors.length > 0) throw new SlurmError(`slurmrestd ${base}/jobs: ${errorText(a)}`, { code: 'slurm_rest' });
      return a.text || '{}'; // the poller parses it (an empty body reads as {})
    },

    async act(req) {
      const id = req.job_id;
      const what = id ? `${req.action} job ${id}` : req.action;
      if (req.action === 'submit' && req.user === undefined) {
        return { ok: false, code: 'not_permitted', message: 'submit: no scheduler user to submit as; the scribe submits only as the requesting user, never as itself' };
      }
      if (req.user !== undefined && !SCHEDULER_USER_RE.test(req.user)) return { ok: false, code: 'invalid', message: `${req.action}: ${JSON.stringify(req.user)} is not a user name` };
      const request = restRequest(req, opts);
      if (!request.ok) return request;
      const user = req.user ?? opts.user;
      // Acting as another user needs a SlurmUser / root token; slurmctld's refusal does not say so.
      const asOther = user !== opts.user ? ` (acting as ${user} needs a slurmrestd token of SlurmUser or root)` : '';
      let a: RestAnswer;
      try {
        a = await call(request.method, request.path, request.body, undefined, user);
      } catch (err) {
        return { ok: false, code: 'failed', message: `${what}: slurmrestd: ${(err as Error).message}${asOther}` };
      }
      if (a.status === 401 || a.status === 403) return { ok: false, code: 'not_permitted', message: `${what}: slurmrestd refused the token (HTTP ${a.status})${asOther}` };
      if (req.action === 'submit' && typeof a.body.job_id === 'number') {
        return { ok: true, job_id: String(a.body.job_id), detail: a.errors.length ? { warnings: a.errors.map((e) => e.error) } : {} };
      }
      if (a.status >= 300 || a.errors.length > 0) {
        const text = errorText(a);
        const dropped = /Zero Bytes were transmitted/i.test(text);
        return { ok: false, code: dropped && asOther ? 'not_permitted' : classifySlurmError(text), message: `${what}: ${text}${dropped ? asOther : ''}` };
      }
      return { ok: true, job_id: id };
    },
  };
}

type RestRequest = { ok: true; method: string; path: string; body?: unknown } | { ok: false; code: 'invalid' | 'unsupported'; message: string };

function restRequest(req: SlurmActionRequest, opts: SlurmRestOptions): RestRequest {
  const a = (req.args ?? {});
  const int = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);
  if (req.action === 'submit') {
    const script = typeof a.script === 'string' ? a.script : undefined;
    if (!script) return { ok: false, code: 'invalid', message: 'submit through slurmrestd needs args.script' };
    const job: Record<string, unknown> = {
      current_working_directory: typeof a.workdir === 'string' ? a.workdir : opts.submitDir ?? '/tmp',
      environment: opts.submitEnv ?? { PATH: '/usr/local/bin:/usr/bin:/bin' },
    };
    if (typeof a.name === 'string') job.name = a.name;
    if (typeof a.partition === 'string') job.partition = a.partition;
    if (typeof a.time_limit_s === 'number') job.time_limit = Math.ceil(a.time_limit_s / 60);
    if (typeof a.dependency === 'string') job.dependency = a.dependency;
    if (typeof a.array === 'string') job.array = a.array;
    if (a.hold === true) job.hold = true;
    if (int(a.ntasks)) job.tasks = a.ntasks;
    if (int(a.nodes)) job.nodes = String(a.nodes);
    return { ok: true, method: 'POST', path: '/job/submit', body: { job, script } };
  }
  const id = req.job_id;
  if (!id || !/^[1-9][0-9]{0,19}$/.test(id)) return { ok: false, code: 'invalid', message: `${req.action} needs a decimal job_id` };
  switch (req.action) {
    case 'cancel':
      return { ok: true, method: 'DELETE', path: `/job/${id}` };
    case 'signal': {
      const sig = a.signum ?? a.signal;
      if (!(typeof sig === 'number' || (typeof sig === 'string' && /^(SIG)?[A-Z0-9]+$/.test(sig)))) return { ok: false, code: 'invalid', message: 'signal: needs args.signum (or args.signal)' };
      return { ok: true, method: 'DELETE', path: `/job/${id}?signal=${encodeURIComponent(String(sig).replace(/^SIG/, ''))}` };
    }
    case 'hold':
    case 'release':
      return { ok: true, method: 'POST', path: `/job/${id}`, body: { hold: req.action === 'hold' } };
    case 'urgency': {
      const body: Record<string, number> = {};
      const p = int(a.priority) ?? int(a.urgency);
      if (p !== undefined) body.priority = p;
      if (int(a.nice) !== undefined) body.nice = a.nice as number;
      if (Object.keys(body).length === 0) return { ok: false, code: 'invalid', message: 'urgency: needs args.priority (or args.urgency) and/or args.nice' };
      return { ok: true, method: 'POST', path: `/job/${id}`, body };
    }
    case 'time_limit': {
      if (typeof a.time_limit_s !== 'number' || !(a.time_limit_s > 0)) return { ok: false, code: 'invalid', message: 'time_limit through slurmrestd needs args.time_limit_s' };
      return { ok: true, method: 'POST', path: `/job/${id}`, body: { time_limit: Math.ceil(a.time_limit_s / 60) } };
    }
    default:
      return { ok: false, code: 'unsupported', message: `slurm has no action "${(req as { action: string }).action}"` };
  }
}
