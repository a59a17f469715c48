/**
 * The scribe's command loop: executes the commands addressed to its cluster and publishes what
 * came of them. Consumes `<prefix>.<cluster>.commands` (group `<prefix>-scribe-<cluster>-commands`)
 * and, for each record:
 *
 *   command   ledger says done → republish the stored result (redelivery never executes twice)
 *             → signature (refused when keys are configured or signatures required)
 *             → expired → rejected
 *             → approval_required without a valid approve → awaiting_approval (waits)
 *             → write-ahead "executing" in the ledger → per job: owner re-checked against the
 *               scheduler (the owner must be on_behalf_of / requested_by.user unless admin)
 *               → SchedulerSource.act, as that user (an admin without on_behalf_of: with the
 *               scribe's authority) → ledger "done" with the result. A submit always runs as
 *               on_behalf_of / requested_by.user, admins' too, and is rejected without one.
 *               The source runs it as that user or refuses (Slurm: runuser; Flux: the owner only)
 *             → command-result (signed) on `<prefix>.<cluster>.events`
 *   approval  an `approve` by another person (samePerson: not the requester's subject nor
 *             scheduler user) with the `approver` role executes an awaiting command; a
 *             `reject` (by an approver or the requester) ends it as rejected. Approvals from
 *             anyone else are ignored, and refused (below).
 *   refusal   the MCP service's record of a request it refused: ignored (audit only).
 *
 * A record this scribe refuses (undecodable, unsigned or forged, for another cluster, an
 * approval that does not count) is answered with a signed `refusal` record on the events topic
 * under an id of its own (refusalId: from the claimed command id and the record's digest), never
 * with a result under the claimed command id: a writer without keys must not be able to end,
 * or hide, a genuine command by sending a copy of it. Such records are not in the ledger.
 *
 * Only then does the log commit the batch. Awaiting commands past their expiry are rejected by
 * a sweep. The ledger is an append-only JSON-lines file in the scribe's checkpoint directory,
 * fsynced before each step it records. A command found "executing" after a crash is not run
 * again: it ends as failed ("interrupted").
 *
 * Pure parts (`authorizeJob`, `approvalDecision`, `summarize`, `actionArgs`, `scribeRefusal`) are kept apart from
 * the I/O, which is all in `runCommandLoop` and `CommandLedger`.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import {
  ROLE_ADMIN,
  ROLE_APPROVER,
  SCRIBE_REFUSAL_LIMITS,
  commandRecordMessage,
  decodeCommandRecord,
  samePerson,
  type Approval,
  type Command,
  type CommandResult,
  type CommandStatus,
  type JobActionResult,
  type Refusal,
} from '../schemas/commands/index.js';
import { commandsTopic, eventsTopic, type Batch, type EventLog, type LogRecord } from '../log/eventLog.js';
import { retry } from '../log/retry.js';
import { checkSignature, maybeSign, type SignaturePolicy } from '../log/signing.js';
import type { ActionRequest, ActionResult, OwnerResult, SchedulerSource } from './source.js';
import { writeFileAtomic } from './checkpoint.js';

type DecidedBy = NonNullable<CommandResult['decided_by']>;

/** The consumer group of a cluster's command loop (per prefix, like the projector's). */
export function commandsGroup(topicPrefix: string, cluster: string): string {
  return `${topicPrefix}-scribe-${cluster}-commands`;
}

// ------------------------------------------------------------------------------- the ledger

export interface LedgerEntry {
  command_id: string;
  state: 'awaiting_approval' | 'executing' | 'done';
  /** The command as received (its JSON, signature included). */
  command?: Record<string, unknown>;
  /** The final result as published (signed). */
  result?: CommandResult;
  expires_at?: number;
  /** Seconds since the epoch when this state was recorded. */
  at: number;
}

/** Ledger entries are kept this long past their command's expiry. */
const LEDGER_RETENTION_S = 7 * 24 * 3600;
/** A running ledger drops expired entries at least this often. */
const LEDGER_PRUNE_EVERY_S = 3600;

/**
 * Append-only JSON lines, last line per command id wins. Compacted (rewritten with one line per
 * live entry, `done` entries past their retention dropped) when opened and, while running, once
 * the file holds twice as many lines as live entries (plus slack) or an hour has passed, so a
 * long-running scribe's ledger and memory stay proportional to the commands of the last week.
 */
export class CommandLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  /** Lines in the file now. */
  private lines = 0;
  private compactedAt: number;

  constructor(
    private readonly path: string,
    private readonly clock: () => number = () => Date.now() / 1000,
    /** Lines beyond twice the live entries tolerated before compacting. */
    private readonly slack = 1024,
  ) {
    this.compactedAt = clock();
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path)) return;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      this.lines++;
      try {
        const e = JSON.parse(line) as LedgerEntry;
        if (typeof e.command_id === 'string') this.entries.set(e.command_id, e);
      } catch {
        // A torn last line (crash mid-append): that step was not acknowledged, so it is redone.
      }
    }
    this.compact(true);
  }

  get(id: string): LedgerEntry | undefined {
    return this.entries.get(id);
  }

  awaiting(): LedgerEntry[] {
    return [...this.entries.values()].filter((e) => e.state === 'awaiting_approval');
  }

  /** Lines in the ledger file (for tests and stats). */
  get fileLines(): number {
    return this.lines;
  }

  /** Records a step durably (fsync) before the caller acts on it. */
  put(entry: LedgerEntry): void {
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, JSON.stringify(entry) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.lines++;
    this.entries.set(entry.command_id, entry);
    if (this.lines > 2 * this.entries.size + this.slack || this.clock() - this.compactedAt > LEDGER_PRUNE_EVERY_S) this.compact(false);
  }

  /** Drops `done` entries past retention and rewrites the file, one line per live entry (on open: only when it holds stale lines). */
  private compact(onOpen: boolean): void {
    const now = this.clock();
    this.compactedAt = now;
    for (const [id, e] of this.entries) {
      if (e.state === 'done' && (e.expires_at ?? e.at) + LEDGER_RETENTION_S < now) this.entries.delete(id);
    }
    if (onOpen && this.lines === this.entries.size) return;
    writeFileAtomic(this.path, [...this.entries.values()].map((e) => JSON.stringify(e) + '\n').join(''));
    this.lines = this.entries.size;
  }
}

// ------------------------------------------------------------------------------ pure rules

/** The scheduler user a command acts as: on_behalf_of, else the requester's mapped user. */
function actingUser(c: Pick<Command, 'on_behalf_of' | 'requested_by'>): string | undefined {
  return c.on_behalf_of ?? c.requested_by.user;
}

export function isAdmin(c: Pick<Command, 'requested_by'>): boolean {
  return c.requested_by.roles.includes(ROLE_ADMIN);
}

/** May this command act on a job the scheduler says `owner` owns? */
function authorizeJob(c: Pick<Command, 'on_behalf_of' | 'requested_by'>, owner: string): { ok: true } | { ok: false; reason: string } {
  if (isAdmin(c)) return { ok: true };
  const user = actingUser(c);
  if (user === undefined) return { ok: false, reason: `not owner: ${c.requested_by.subject} has no scheduler user and is not an admin` };
  if (user !== owner) return { ok: false, reason: `not owner: the job belongs to ${owner}, not ${user}` };
  return { ok: true };
}

/** What an approval record means for an awaiting command. Pure. */
export function approvalDecision(c: Pick<Command, 'requested_by' | 'expires_at'>, a: Pick<Approval, 'decision' | 'by' | 'at' | 'reason'>, now: number):
  | { kind: 'execute' }
  | { kind: 'reject'; reason: string }
  | { kind: 'ignore'; reason: string } {
  const approver = a.by.roles.includes(ROLE_APPROVER);
  const requester = samePerson(a.by, c.requested_by);
  if (a.decision === 'approve') {
    if (!approver) return { kind: 'ignore', reason: `${a.by.subject} does not hold the ${ROLE_APPROVER} role` };
    if (requester) {
      const who = a.by.subject === c.requested_by.subject ? a.by.subject : `${a.by.subject} (scheduler user ${a.by.user}, as the requester ${c.requested_by.subject})`;
      return { kind: 'ignore', reason: `${who} cannot approve their own command` };
    }
    if (now > c.expires_at) return { kind: 'reject', reason: `approval expired: approved at ${a.at}, after the command expired at ${c.expires_at}` };
    return { kind: 'execute' };
  }
  if (!approver && !requester) return { kind: 'ignore', reason: `${a.by.subject} may not reject: neither an ${ROLE_APPROVER} nor the requester` };
  return { kind: 'reject', reason: `rejected by approver ${a.by.subject}${a.reason ? `: ${a.reason}` : ''}` };
}

/**
 * The id of a scribe's refusal of a record: a UUID (version 8 layout) from the command id the
 * record claimed (or its message key) and the record's digest, so the same record delivered
 * again maps to the same refusal row, and a copy of a command never to the command's own. Pure.
 */
export function refusalId(claimed: string, digest: string): string {
  const h = createHash('sha256').update(`jobscribe refusal\n${claimed}\n${digest}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 3) | 8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UNVERIFIED = { subject: '(unverified)', roles: [] as string[] };

export interface RefusedRecord {
  /** The message as received. */
  value: string;
  key: string;
  /** Its JSON object, when it parsed. */
  json?: Record<string, unknown> | undefined;
  /** The record, when it decoded. */
  record?: Command | Approval | undefined;
  /** Whether its signature was good (then its requester is who signed it, else only a claim). */
  verified: boolean;
  reason: string;
}

/**
 * The refusal a scribe publishes for a record it will not act on, under its own id (refusalId).
 * It copies little from the record, all bounded (SCRIBE_REFUSAL_LIMITS): the claimed command id,
 * action and first job ids; the requester only when the signature was good (else
 * `(unverified)`, and the claim, quoted, in the reason). Pure.
 */
export function scribeRefusal(r: RefusedRecord, cluster: string, scribe: { id: string; version: string }, at: number): Refusal {
  const digest = createHash('sha256').update(r.value).digest('hex');
  const jsonId = typeof r.json?.command_id === 'string' ? r.json.command_id : undefined;
  const claimedId = r.record?.command_id ?? (jsonId !== undefined && UUID.test(jsonId) ? jsonId : UUID.test(r.key) ? r.key : undefined);
  const rec = r.record;
  const kind = rec?.kind ?? (r.json?.kind === 'approval' ? 'approval' : r.json?.kind === 'command' ? 'command' : 'record');
  const claimedBy = rec ? (rec.kind === 'command' ? rec.requested_by : rec.by) : undefined;
  const what = [
    `${kind}${claimedId ? ` ${claimedId}` : ''}`,
    claimedBy && !r.verified ? ` claiming requester ${JSON.stringify(claimedBy.subject.slice(0, SCRIBE_REFUSAL_LIMITS.subject))}` : '',
  ].join('');
  const out: Refusal = {
    v: 1,
    kind: 'refusal',
    command_id: refusalId(claimedId ?? r.key.slice(0, 256), digest),
    cluster,
    action: rec ? (rec.kind === 'command' ? rec.action : rec.decision) : kind,
    job_ids: rec?.kind === 'command' ? rec.job_ids.slice(0, SCRIBE_REFUSAL_LIMITS.jobIds) : [],
    requested_by: claimedBy && r.verified ? claimedBy : UNVERIFIED,
    tool: 'scribe',
    reason: `${what}: ${r.reason}`.slice(0, SCRIBE_REFUSAL_LIMITS.reason),
    at,
    digest,
    scribe,
  };
  if (claimedId !== undefined) out.refers_to = claimedId;
  return out;
}

/** Signal names (TERM, SIGUSR1) → numbers; numbers stay. */
export function signalNumber(sig: string | number | undefined): number | undefined {
  if (sig === undefined) return 15;
  if (typeof sig === 'number') return sig;
  if (/^[0-9]+$/.test(sig)) return Number(sig);
  const name = (sig.startsWith('SIG') ? sig : `SIG${sig}`) as keyof typeof osConstants.signals;
  return osConstants.signals[name];
}

/** The command's arguments as SchedulerSource.act takes them for `action`. */
function actionArgs(c: Pick<Command, 'action' | 'args'>): Record<string, unknown> | { invalid: string } {
  const a = c.args ?? {};
  switch (c.action) {
    case 'cancel':
      return a.note !== undefined ? { note: a.note } : {};
    case 'urgency':
      if (a.urgency === undefined) return { invalid: 'urgency needs args.urgency' };
      return { urgency: a.urgency };
    case 'signal': {
      const signum = signalNumber(a.signal);
      if (signum === undefined) return { invalid: `unknown signal ${JSON.stringify(a.signal)}` };
      return { signum };
    }
    case 'submit':
      if (!a.submit) return { invalid: 'submit needs args.submit' };
      return a.submit;
    default:
      return {};
  }
}

/** One job's outcome from an ActionResult. */
function jobResult(jobId: string, r: ActionResult): JobActionResult {
  if (r.ok) {
    const out: JobActionResult = { job_id: r.job_id ?? jobId, ok: true };
    if (r.detail) out.response = r.detail;
    return out;
  }
  return { job_id: jobId, ok: false, code: r.code, error: r.message };
}

/**
 * The command's status from its jobs' outcomes: accepted when any job was acted on (results
 * say which were not), rejected when every job was refused for want of permission, else failed.
 * A failed submit has no job id: its reason is the error alone. Pure.
 */
export function summarize(results: JobActionResult[]): { status: CommandStatus; reason?: string } {
  if (results.length === 0) return { status: 'failed', reason: 'no jobs' };
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return { status: 'accepted' };
  const why = failed[0]!.error ?? failed[0]!.code ?? 'failed';
  const first = failed[0]!.job_id ? `${failed[0]!.job_id}: ${why}` : why;
  if (failed.length < results.length) return { status: 'accepted', reason: `${failed.length} of ${results.length} jobs not acted on (first ${first})` };
  if (failed.every((r) => r.code === 'not_permitted')) return { status: 'rejected', reason: failed.length === 1 ? failed[0]!.error! : `not permitted on any of the ${failed.length} jobs (first ${first})` };
  return { status: 'failed', reason: failed.length === 1 ? first : `no job acted on (first ${first})` };
}

// ------------------------------------------------------------------------------- the loop

export interface CommandLoopOptions {
  cluster: string;
  source: SchedulerSource;
  log: EventLog;
  topicPrefix: string;
  ledger: CommandLedger;
  /** Keys sign results and verify commands; with keys (or `require`) unsigned commands are refused. */
  signing: SignaturePolicy;
  scribe: { id: string; version: string };
  signal: AbortSignal;
  /** Seconds since the epoch (tests inject a clock). */
  now?: () => number;
  /** How often awaiting commands are checked for expiry (ms). */
  sweepMs?: number;
  onResult?(result: CommandResult): void;
  /** Each refusal of a record this scribe will not act on, as published. */
  onRefusal?(refusal: Refusal): void;
  onWarning?(message: string): void;
}

export async function runCommandLoop(opts: CommandLoopOptions): Promise<void> {
  const loop = new CommandExecutor(opts);
  const sweep = setInterval(() => void loop.serial(() => loop.sweep()).catch((err) => opts.onWarning?.(`command sweep: ${(err as Error).message}`)), opts.sweepMs ?? 5000);
  sweep.unref();
  try {
    await opts.log.consume({
      group: commandsGroup(opts.topicPrefix, opts.cluster),
      topics: [commandsTopic(opts.topicPrefix, opts.cluster)],
      start: { from: 'committed' },
      signal: opts.signal,
      maxBatchRecords: 100,
      eachBatch: (batch) => loop.serial(() => loop.handleBatch(batch)),
    });
  } finally {
    clearInterval(sweep);
  }
}

export class CommandExecutor {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly policy: SignaturePolicy;

  constructor(private readonly opts: CommandLoopOptions) {
    this.now = opts.now ?? (() => Date.now() / 1000);
    // Commands are refused unsigned whenever this scribe has keys: no one else may act here.
    this.policy = { keyring: opts.signing.keyring, require: opts.signing.require || opts.signing.keyring !== undefined };
  }

  /** Runs `fn` after everything queued before it (batches and sweeps never interleave). */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  async handleBatch(batch: Batch): Promise<void> {
    for (const record of batch.records) {
      if (this.opts.signal.aborted) throw new Error('stopping');
      const decoded = decodeCommandRecord(record.value, ['command', 'approval', 'refusal']);
      if (!decoded.ok) {
        this.opts.onWarning?.(`commands: refused record ${record.key}: ${decoded.reason}`);
        await this.refuse({ value: record.value, key: record.key, json: decoded.json, verified: false, reason: `invalid: ${decoded.reason}` });
        continue;
      }
      const r = decoded.record;
      if (r.kind === 'command') await this.onCommand(r, decoded.json, record);
      else if (r.kind === 'approval') await this.onApproval(r, decoded.json, record);
      // a refusal is the MCP service's audit record of a request it never sent: nothing to do
    }
    await this.sweep();
  }

  /** Awaiting commands whose expiry passed end as rejected. */
  async sweep(): Promise<void> {
    const now = this.now();
    for (const e of this.opts.ledger.awaiting()) {
      if (e.expires_at !== undefined && now > e.expires_at && e.command) {
        const c = decodeCommandRecord(JSON.stringify(e.command), ['command']);
        if (c.ok && c.record.kind === 'command') await this.finish(c.record, 'rejected', `approval expired: no approval before ${new Date(c.record.expires_at * 1000).toISOString()}`, []);
      }
    }
  }

  /**
   * Audits a record this scribe will not act on: a refusal under its own id on the events topic
   * (scribeRefusal). Nothing is recorded in the ledger, and no command's state changes.
   */
  private async refuse(r: RefusedRecord): Promise<void> {
    const refusal = maybeSign(scribeRefusal(r, this.opts.cluster, this.opts.scribe, this.now()), this.opts.signing.keyring, this.opts.cluster);
    const topic = eventsTopic(this.opts.topicPrefix, this.opts.cluster);
    await retry(() => this.opts.log.publish(topic, [commandRecordMessage(refusal)]), { signal: this.opts.signal, what: `publish refusal to ${topic}` });
    this.opts.onRefusal?.(refusal);
  }

  private async onCommand(c: Command, json: Record<string, unknown>, record: LogRecord): Promise<void> {
    const prior = this.opts.ledger.get(c.command_id);
    if (prior?.state === 'done' && prior.result) {
      await this.publish(prior.result); // redelivery: same answer, nothing executed
      return;
    }
    const sig = checkSignature(json, this.policy, this.opts.cluster);
    if (!sig.ok) {
      // Not recorded, and refused under an id of its own: a forged copy must not block (or end)
      // the genuine command with the same id.
      this.opts.onWarning?.(`commands: refused ${c.command_id}: ${sig.reason}`);
      await this.refuse({ value: record.value, key: record.key, json, record: c, verified: false, reason: sig.reason });
      return;
    }
    if (c.cluster !== this.opts.cluster) {
      // Misplaced (a genuine command of another cluster copied here): that cluster's row is not ours to end.
      this.opts.onWarning?.(`commands: refused ${c.command_id}: for cluster "${c.cluster}"`);
      await this.refuse({ value: record.value, key: record.key, json, record: c, verified: true, reason: `misplaced: a command for cluster "${c.cluster}" reached the scribe of "${this.opts.cluster}"` });
      return;
    }
    if (prior?.state === 'executing') {
      await this.finish(c, 'failed', 'interrupted: the scribe stopped while executing this command; it is not run again (check the jobs)', [], json);
      return;
    }
    if (prior?.state === 'awaiting_approval') {
      await this.publish(this.result(c.command_id, 'awaiting_approval', 'waiting for an approve by a second identity with the approver role', []));
      return;
    }
    const now = this.now();
    if (now > c.expires_at) {
      await this.finish(c, 'rejected', `expired: the command expired at ${new Date(c.expires_at * 1000).toISOString()}`, [], json);
      return;
    }
    if (c.approval_required) {
      this.opts.ledger.put({ command_id: c.command_id, state: 'awaiting_approval', command: json, expires_at: c.expires_at, at: now });
      await this.publish(this.result(c.command_id, 'awaiting_approval', 'waiting for an approve by a second identity with the approver role', []));
      return;
    }
    await this.execute(c, json);
  }

  private async onApproval(a: Approval, json: Record<string, unknown>, record: LogRecord): Promise<void> {
    const sig = checkSignature(json, this.policy, this.opts.cluster);
    if (!sig.ok) {
      this.opts.onWarning?.(`commands: ignored approval of ${a.command_id} by ${a.by.subject}: ${sig.reason}`);
      await this.refuse({ value: record.value, key: record.key, json, record: a, verified: false, reason: sig.reason });
      return;
    }
    if (a.cluster !== this.opts.cluster) {
      this.opts.onWarning?.(`commands: ignored approval of ${a.command_id}: for cluster "${a.cluster}"`);
      await this.refuse({ value: record.value, key: record.key, json, record: a, verified: true, reason: `misplaced: an approval for cluster "${a.cluster}" reached the scribe of "${this.opts.cluster}"` });
      return;
    }
    const entry = this.opts.ledger.get(a.command_id);
    if (!entry || entry.state !== 'awaiting_approval' || !entry.command) {
      this.opts.onWarning?.(`commands: ignored ${a.decision} of ${a.command_id} by ${a.by.subject}: no command awaits approval under that id`);
      return;
    }
    const decoded = decodeCommandRecord(JSON.stringify(entry.command), ['command']);
    if (!decoded.ok || decoded.record.kind !== 'command') return;
    const c = decoded.record;
    const d = approvalDecision(c, a, this.now());
    if (d.kind === 'ignore') {
      this.opts.onWarning?.(`commands: ignored ${a.decision} of ${a.command_id}: ${d.reason}`);
      await this.refuse({ value: record.value, key: record.key, json, record: a, verified: true, reason: d.reason });
      return;
    }
    const decidedBy = { decision: a.decision, subject: a.by.subject, at: a.at };
    if (d.kind === 'reject') {
      await this.finish(c, 'rejected', d.reason, [], entry.command, decidedBy);
      return;
    }
    await this.execute(c, entry.command, decidedBy);
  }

  private async execute(c: Command, json: Record<string, unknown>, decidedBy?: DecidedBy): Promise<void> {
    this.opts.ledger.put({ command_id: c.command_id, state: 'executing', command: json, expires_at: c.expires_at, at: this.now() });
    const results: JobActionResult[] = [];
    const act = this.opts.source.act?.bind(this.opts.source);
    const args = actionArgs(c);
    if (!act) {
      await this.finish(c, 'failed', `unsupported: the ${this.opts.source.scheduler} source of this scribe takes no actions`, [], undefined, decidedBy);
      return;
    }
    if ('invalid' in args) {
      await this.finish(c, 'rejected', `invalid: ${args.invalid as string}`, [], undefined, decidedBy);
      return;
    }
    const user = actingUser(c);
    if (c.action === 'submit') {
      // Admins too: a job runs as whoever submitted it, so the scribe never submits as itself.
      if (user === undefined) {
        await this.finish(c, 'rejected', `not owner: ${c.requested_by.subject} has no scheduler user to submit as (a job is submitted only as the requesting user)`, [], undefined, decidedBy);
        return;
      }
      const req: ActionRequest = { action: 'submit', args, user };
      const r = await this.safeAct(act, req);
      results.push(jobResult('', r));
    } else {
      const owners = !isAdmin(c) && c.job_ids.length > 1 ? await this.ownersOf(c.job_ids) : undefined;
      for (const jobId of c.job_ids) results.push(await this.actOnJob(c, jobId, args, user, act, owners?.get(jobId)));
    }
    const { status, reason } = summarize(results);
    await this.finish(c, status, reason, results, undefined, decidedBy);
  }

  private async actOnJob(
    c: Command,
    jobId: string,
    args: Record<string, unknown>,
    user: string | undefined,
    act: (r: ActionRequest) => Promise<ActionResult>,
    known?: OwnerResult,
  ): Promise<JobActionResult> {
    if (!isAdmin(c)) {
      if (!this.opts.source.owner) return { job_id: jobId, ok: false, code: 'not_permitted', error: 'not owner: this source cannot tell who owns a job, so only admins may act' };
      let owner = known;
      try {
        owner ??= await this.opts.source.owner(jobId);
      } catch (err) {
        owner = { ok: false as const, code: 'failed' as const, message: (err as Error).message };
      }
      if (!owner.ok) return { job_id: jobId, ok: false, code: owner.code, error: `owner check: ${owner.message}` };
      const auth = authorizeJob(c, owner.user);
      if (!auth.ok) return { job_id: jobId, ok: false, code: 'not_permitted', error: auth.reason };
    }
    const req: ActionRequest = { action: c.action, job_id: jobId, args };
    // An admin acts as the scribe's own identity unless the command names a user to act as.
    if (!isAdmin(c) || c.on_behalf_of !== undefined) {
      if (user !== undefined) req.user = user;
    }
    return jobResult(jobId, await this.safeAct(act, req));
  }

  /** The owners of a bulk command's jobs in one question, when the source can (else undefined: one owner() each). */
  private async ownersOf(jobIds: readonly string[]): Promise<Map<string, OwnerResult> | undefined> {
    if (!this.opts.source.owners) return undefined;
    try {
      return await this.opts.source.owners(jobIds);
    } catch {
      return undefined; // each job asks on its own, and says why if that fails too
    }
  }

  private async safeAct(act: (r: ActionRequest) => Promise<ActionResult>, req: ActionRequest): Promise<ActionResult> {
    try {
      return await act(req);
    } catch (err) {
      return { ok: false, code: 'failed', message: `${req.action} failed: ${(err as Error).message}` };
    }
  }

  /** Records the final result (before publishing it), then publishes it. */
  private async finish(
    c: Command,
    status: CommandStatus,
    reason: string | undefined,
    results: JobActionResult[],
    json?: Record<string, unknown>,
    decidedBy?: DecidedBy,
  ): Promise<void> {
    const result = this.result(c.command_id, status, reason, results, decidedBy);
    const entry: LedgerEntry = { command_id: c.command_id, state: 'done', result, expires_at: c.expires_at, at: this.now() };
    if (json) entry.command = json;
    this.opts.ledger.put(entry);
    await this.publish(result);
  }

  private result(commandId: string, status: CommandStatus, reason: string | undefined, results: JobActionResult[], decidedBy?: DecidedBy): CommandResult {
    const r: CommandResult = {
      v: 1,
      kind: 'command-result',
      command_id: commandId,
      cluster: this.opts.cluster,
      status,
      results,
      at: this.now(),
      scribe: this.opts.scribe,
    };
    if (reason !== undefined) r.reason = reason;
    if (decidedBy) r.decided_by = decidedBy;
    return maybeSign(r, this.opts.signing.keyring, this.opts.cluster);
  }

  private async publish(result: CommandResult): Promise<void> {
    const topic = eventsTopic(this.opts.topicPrefix, this.opts.cluster);
    await retry(() => this.opts.log.publish(topic, [commandRecordMessage(result)]), { signal: this.opts.signal, what: `publish command result to ${topic}` });
    this.opts.onResult?.(result);
  }
}
