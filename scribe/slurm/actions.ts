/**
 * Actions on Slurm jobs through its CLIs, each answered with a typed ActionResult. Slurm's stderr
 * is read once here and turned into a code (no_such_job, not_permitted, invalid, failed) and a
 * one-line message naming the job.
 *
 *   cancel      scancel --verbose <id>                 (scancel exits 0 even when it failed: the
 *                                                       verbose "error:" lines are what tell)
 *   signal      scancel --verbose --full --signal=<SIG> <id>   (--full: the batch shell too)
 *   hold        scontrol hold <id>      (args.by 'user': scontrol uhold)
 *   release     scontrol release <id>
 *   urgency     scontrol update JobId=<id> Priority=<n> / Nice=<n>
 *               (args.priority, or args.urgency as its alias; args.nice)
 *   time_limit  scontrol update JobId=<id> TimeLimit=<minutes | D-HH:MM:SS | UNLIMITED>
 *   submit      sbatch --parsable [options] (args.script on stdin, or --wrap=args.command)
 *
 * Which user runs the command (`slurmRunAs`, pure): the request's user, never the scribe on
 * someone's behalf for a submit, since a job belongs to whoever ran sbatch:
 *
 *   request names no user        submit refused; other actions with the scribe's own authority
 *                                (an admin acting without on_behalf_of)
 *   user is the scribe's user    the CLI as it is
 *   the scribe is root           runuser -u USER -- CLI
 *   else (e.g. SlurmUser)        submit refused; other actions with the scribe's authority, after
 *                                the command loop's owner check (scribe/commandLoop.ts)
 *
 * A submit, and every command run as another user, gets a bare environment (PATH, SLURM_CONF,
 * locale): sbatch exports its environment into the job, and the scribe's (SLURM_JWT, passwords)
 * must reach no user's job; a SLURM_JWT would also make the CLI authenticate as the token's user.
 *
 * Not here: who may do what (authorization is the caller's).
 */
import { userInfo } from 'node:os';
import { z } from 'zod';
import type { ActionName, ActionRequest, ActionResult, OwnerResult } from '../source.js';
import { parseSqueueJson } from '../../schemas/slurm/squeue.js';
import type { CommandRunner } from './cliRunner.js';

/** The Slurm source's actions: the common ones plus a time-limit update. */
export type SlurmActionName = ActionName | 'time_limit';
export interface SlurmActionRequest extends Omit<ActionRequest, 'action'> {
  action: SlurmActionName;
}

export interface SlurmActionOptions {
  run: CommandRunner;
  timeoutMs: number;
  submitTimeoutMs: number;
  /** Who the scribe process is (default: this process): decides how a command runs as the request's user. */
  scribeUser?: ScribeUser;
  /** Working directory given to sbatch (--chdir) when the submit names none. */
  submitDir?: string;
}

/** The scribe process's own user. */
export interface ScribeUser {
  uid: number;
  name: string;
}

/** This process's user. */
export function processUser(): ScribeUser {
  const u = userInfo();
  return { uid: u.uid, name: u.username };
}

/** For a scribe running as root: runs the command as `user` with runuser(1). */
export function runuserAs(user: string, argv: string[]): string[] {
  return ['runuser', '-u', user, '--', ...argv];
}

export type RunAsPlan = { ok: true; argv: string[]; bareEnv: boolean } | { ok: false; code: 'not_permitted' | 'invalid'; message: string };

/** A user name runuser and Slurm can take (POSIX portable characters, not an option). */
export const SCHEDULER_USER_RE = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}\$?$/;

/** How `argv` (the command of `req`) runs for the request's user on a scribe that is `scribe`. Pure. */
export function slurmRunAs(scribe: ScribeUser, req: Pick<SlurmActionRequest, 'action' | 'user'>, argv: string[]): RunAsPlan {
  const submit = req.action === 'submit';
  const user = req.user;
  if (user === undefined) {
    if (submit) {
      return { ok: false, code: 'not_permitted', message: 'submit: no scheduler user to submit as; the scribe submits only as the requesting user, never as itself' };
    }
    return { ok: true, argv, bareEnv: false };
  }
  if (!SCHEDULER_USER_RE.test(user)) return { ok: false, code: 'invalid', message: `${req.action}: ${JSON.stringify(user)} is not a user name` };
  if (user === scribe.name) return { ok: true, argv, bareEnv: submit };
  if (scribe.uid === 0) return { ok: true, argv: runuserAs(user, argv), bareEnv: true };
  if (submit) {
    return {
      ok: false,
      code: 'not_permitted',
      message:
        `submit as ${user}: refused: this scribe does not run as root, so it cannot run sbatch as ${user} ` +
        '(run the Slurm scribe as root, which submits through runuser, or through slurmrestd with a token of SlurmUser or root)',
    };
  }
  return { ok: true, argv, bareEnv: false };
}

const SignalSchema = z.union([
  z.number().int().min(1).max(64),
  z
    .string()
    .regex(/^(SIG)?[A-Z][A-Z0-9+-]*$|^[0-9]{1,2}$/, 'a signal name (USR1, SIGTERM) or number')
    .transform((s) => s.replace(/^SIG/, '')),
]);

const ArgsSchemas = {
  cancel: z.object({ note: z.string().optional() }).loose(),
  signal: z
    .object({ signum: SignalSchema.optional(), signal: SignalSchema.optional() })
    .loose()
    .refine((a) => a.signum !== undefined || a.signal !== undefined, 'needs args.signum (or args.signal)'),
  hold: z.object({ by: z.enum(['user', 'admin']).optional() }).loose(),
  release: z.object({}).loose(),
  urgency: z
    .object({
      priority: z.number().int().min(0).max(4_294_967_293).optional(),
      urgency: z.number().int().min(0).max(4_294_967_293).optional(),
      nice: z.number().int().min(-2_147_483_645).max(2_147_483_645).optional(),
    })
    .loose()
    .refine((a) => a.priority !== undefined || a.urgency !== undefined || a.nice !== undefined, 'needs args.priority (or args.urgency) and/or args.nice'),
  time_limit: z
    .object({
      time_limit_s: z.number().positive().optional(),
      time_limit: z
        .string()
        .regex(/^(UNLIMITED|INFINITE|[0-9]+(-[0-9]{1,2})?(:[0-9]{1,2}){0,2})$/i, 'minutes, D-HH:MM:SS or UNLIMITED')
        .optional(),
    })
    .loose()
    .refine((a) => (a.time_limit_s === undefined) !== (a.time_limit === undefined), 'needs exactly one of args.time_limit_s, args.time_limit'),
  submit: z
    .object({
      script: z.string().min(1).optional(),
      command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
      name: z.string().min(1).max(200).optional(),
      partition: z.string().min(1).optional(),
      account: z.string().min(1).optional(),
      qos: z.string().min(1).optional(),
      time_limit_s: z.number().positive().optional(),
      ntasks: z.number().int().positive().optional(),
      nodes: z.number().int().positive().optional(),
      cpus_per_task: z.number().int().positive().optional(),
      dependency: z.string().min(1).optional(),
      array: z.string().regex(/^[0-9,%:-]+$/, 'an array spec such as 1-10%2').optional(),
      hold: z.boolean().optional(),
      nice: z.number().int().optional(),
      workdir: z.string().min(1).optional(),
      output: z.string().min(1).optional(),
      error: z.string().min(1).optional(),
      /** More sbatch options, passed as they are ("--mem=1G"). */
      extra_args: z.array(z.string().regex(/^--?[A-Za-z]/, 'sbatch options start with -')).optional(),
    })
    .loose()
    .refine((a) => (a.script === undefined) !== (a.command === undefined), 'needs exactly one of args.script, args.command'),
} as const;

/** Slurm's stderr → an ActionResult code. Order matters: the first match wins. */
const ERROR_CODES: ReadonlyArray<[RegExp, Exclude<ActionResult, { ok: true }>['code']]> = [
  [/Invalid job id specified|Unable to find job|Invalid job id|does not exist/i, 'no_such_job'],
  [/Access\/permission denied|Invalid user id|Permission denied|not authorized|User not found|Only (root|SlurmUser|the job owner)/i, 'not_permitted'],
  [
    /already (completing or completed|finished)|in held state|transitional state|can not be altered|Unknown job signal|invalid|not available|does not look like a batch script|must start with #!|unrecognized option|requires an argument|Requested .* (not|unavailable)|Job is pending|is not running|Duplicate|must be set|Failure during parsing/i,
    'invalid',
  ],
];

/** The most telling line of Slurm's stderr, without program prefixes. */
export function slurmMessage(stderr: string, stdout = ''): string {
  const lines = `${stderr}\n${stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/plugin loaded|common_init|^scancel: (Terminating|Signal) /.test(l));
  const line = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
  return line
    .replace(/^(scancel|scontrol|sbatch|squeue|sacct|slurm_[a-z_]+)(: | )?error:\s*/i, '')
    .replace(/^Kill job error on job id \S+:\s*/i, '')
    .replace(/^(scancel|scontrol|sbatch):\s*/, '')
    .trim();
}

export function classifySlurmError(stderr: string, stdout = ''): Exclude<ActionResult, { ok: true }>['code'] {
  const text = `${stderr}\n${stdout}`;
  for (const [re, code] of ERROR_CODES) if (re.test(text)) return code;
  return 'failed';
}

/** Builds the argv (and stdin) of an action, or says why the request is invalid. */
export function slurmActionCommand(
  req: SlurmActionRequest,
  submitDir?: string,
): { ok: true; argv: string[]; input?: string } | { ok: false; code: 'invalid' | 'unsupported'; message: string } {
  const name = req.action;
  if (!Object.hasOwn(ArgsSchemas, name)) return { ok: false, code: 'unsupported', message: `slurm has no action "${name}"` };
  const parsed = ArgsSchemas[name].safeParse(req.args ?? {});
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.length ? `args.${i.path.join('.')}` : 'args'}: ${i.message}`).join('; ');
    return { ok: false, code: 'invalid', message: `${name}: ${why}` };
  }
  const a = parsed.data as Record<string, unknown>;
  if (name === 'submit') return submitCommand(a, submitDir);
  const id = req.job_id;
  if (id === undefined || !/^[1-9][0-9]{0,19}$/.test(id)) return { ok: false, code: 'invalid', message: `${name} needs a decimal job_id` };
  switch (name) {
    case 'cancel':
      return { ok: true, argv: ['scancel', '--verbose', id] };
    case 'signal': {
      const sig = (a.signum ?? a.signal) as number | string;
      return { ok: true, argv: ['scancel', '--verbose', '--full', `--signal=${sig}`, id] };
    }
    case 'hold':
      return { ok: true, argv: ['scontrol', a.by === 'user' ? 'uhold' : 'hold', id] };
    case 'release':
      return { ok: true, argv: ['scontrol', 'release', id] };
    case 'urgency': {
      const argv = ['scontrol', 'update', `JobId=${id}`];
      const priority = (a.priority ?? a.urgency) as number | undefined;
      if (priority !== undefined) argv.push(`Priority=${priority}`);
      if (a.nice !== undefined) argv.push(`Nice=${a.nice as number}`);
      return { ok: true, argv };
    }
    case 'time_limit': {
      const limit = a.time_limit_s !== undefined ? String(Math.ceil((a.time_limit_s as number) / 60)) : String(a.time_limit).toUpperCase();
      return { ok: true, argv: ['scontrol', 'update', `JobId=${id}`, `TimeLimit=${limit}`] };
    }
  }
}

function submitCommand(a: z.infer<typeof ArgsSchemas.submit>, submitDir?: string): { ok: true; argv: string[]; input?: string } {
  const argv = ['sbatch', '--parsable'];
  const opt = (flag: string, v: string | number | undefined) => {
    if (v !== undefined) argv.push(`--${flag}=${v}`);
  };
  opt('job-name', a.name);
  opt('partition', a.partition);
  opt('account', a.account);
  opt('qos', a.qos);
  opt('time', a.time_limit_s !== undefined ? Math.ceil(a.time_limit_s / 60) : undefined);
  opt('ntasks', a.ntasks);
  opt('nodes', a.nodes);
  opt('cpus-per-task', a.cpus_per_task);
  opt('dependency', a.dependency);
  opt('array', a.array);
  opt('nice', a.nice);
  opt('chdir', a.workdir ?? submitDir);
  opt('output', a.output);
  opt('error', a.error);
  if (a.hold) argv.push('--hold');
  argv.push(...(a.extra_args ?? []));
  if (a.command !== undefined) {
    argv.push(`--wrap=${Array.isArray(a.command) ? a.command.map(shellQuote).join(' ') : a.command}`);
    return { ok: true, argv };
  }
  return { ok: true, argv, input: a.script };
}

/** POSIX shell quoting for --wrap (sbatch runs the wrapped command with sh -c). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs an action; never throws for Slurm's own refusals (they come back as `ok: false`). */
export async function executeSlurmAction(req: SlurmActionRequest, opts: SlurmActionOptions): Promise<ActionResult> {
  const cmd = slurmActionCommand(req, opts.submitDir);
  if (!cmd.ok) return cmd;
  const plan = slurmRunAs(opts.scribeUser ?? processUser(), req, cmd.argv);
  if (!plan.ok) return plan;
  const argv = plan.argv;
  const timeoutMs = req.action === 'submit' ? opts.submitTimeoutMs : opts.timeoutMs;
  const what = req.job_id ? `${req.action} job ${req.job_id}` : req.action;
  let r;
  try {
    r = await opts.run(argv, { input: cmd.input, timeoutMs, ...(plan.bareEnv && { bareEnv: true }) });
  } catch (err) {
    return { ok: false, code: 'failed', message: `${what}: ${(err as Error).message}` };
  }
  if (r.timedOut) return { ok: false, code: 'failed', message: `${what}: ${argv[0]} timed out after ${Math.round(timeoutMs / 1000)} s` };
  // scancel exits 0 even when it could not kill or signal: its "error:" lines tell.
  const errorLine = cmd.argv[0] === 'scancel' && /(^|\n)\s*(\S+: )?error:/i.test(r.stderr);
  if (r.code !== 0 || errorLine) {
    const message = slurmMessage(r.stderr, r.stdout) || `exit status ${r.code}`;
    return { ok: false, code: classifySlurmError(r.stderr, r.stdout), message: `${what}: ${message}` };
  }
  if (req.action === 'submit') {
    const m = /^\s*([0-9]+)(;\S+)?\s*$/m.exec(r.stdout);
    if (!m) return { ok: false, code: 'failed', message: `submit: sbatch printed no job id: ${slurmMessage(r.stderr, r.stdout)}` };
    return { ok: true, job_id: m[1]!, detail: { argv: cmd.argv } };
  }
  return { ok: true, job_id: req.job_id, detail: { argv: cmd.argv } };
}

/** Argv that lists one job (the owner check before acting for a user). */
function slurmOwnerArgv(jobId: string): string[] {
  return ['squeue', '--json', `--jobs=${jobId}`];
}

/**
 * The owner of `jobId` in `squeue --json` output (one job's, or the whole list from slurmrestd):
 * the `user_name` of the job itself or, for an array id, of its tasks.
 */
export function slurmOwnerOf(squeueJson: string, jobId: string): OwnerResult {
  return slurmOwnersOf(squeueJson, [jobId]).get(jobId)!;
}

/** The owners of `jobIds` in one `squeue --json` listing, parsed once (a bulk action's owner check). */
export function slurmOwnersOf(squeueJson: string, jobIds: readonly string[]): Map<string, OwnerResult> {
  const out = new Map<string, OwnerResult>();
  let snapshot;
  try {
    snapshot = parseSqueueJson(squeueJson);
  } catch (err) {
    const message = (err as Error).message;
    for (const id of jobIds) {
      out.set(id, /Invalid job id/i.test(message) ? { ok: false, code: 'no_such_job', message: `no such job ${id}` } : { ok: false, code: 'failed', message: `squeue: ${message}` });
    }
    return out;
  }
  // A job by its own id first; an array's tasks also answer for the array id.
  const byId = new Map<string, (typeof snapshot.jobs)[number]>();
  for (const j of snapshot.jobs) byId.set(String(j.job_id), j);
  for (const j of snapshot.jobs) if (j.array_job_id && !byId.has(String(j.array_job_id))) byId.set(String(j.array_job_id), j);
  for (const id of jobIds) {
    const job = byId.get(id);
    if (!job) out.set(id, { ok: false, code: 'no_such_job', message: `job ${id} is not in the queue (finished or unknown)` });
    else if (!job.user_name) out.set(id, { ok: false, code: 'failed', message: `squeue names no user for job ${id}` });
    else out.set(id, { ok: true, user: job.user_name });
  }
  return out;
}

/** Asks squeue who owns a job. */
export async function slurmJobOwner(jobId: string, opts: { run: CommandRunner; timeoutMs: number }): Promise<OwnerResult> {
  if (!/^[1-9][0-9]{0,19}$/.test(jobId)) return { ok: false, code: 'no_such_job', message: `"${jobId}" is not a Slurm job id` };
  let r;
  try {
    r = await opts.run(slurmOwnerArgv(jobId), { timeoutMs: opts.timeoutMs });
  } catch (err) {
    return { ok: false, code: 'failed', message: `squeue: ${(err as Error).message}` };
  }
  if (r.timedOut) return { ok: false, code: 'failed', message: `squeue timed out after ${Math.round(opts.timeoutMs / 1000)} s` };
  if (r.code !== 0) {
    if (/Invalid job id/i.test(`${r.stderr}\n${r.stdout}`)) return { ok: false, code: 'no_such_job', message: `no such job ${jobId}` };
    return { ok: false, code: 'failed', message: `squeue: ${slurmMessage(r.stderr, r.stdout) || `exit status ${r.code}`}` };
  }
  return slurmOwnerOf(r.stdout, jobId);
}
