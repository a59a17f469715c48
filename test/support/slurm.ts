/**
 * Helpers for the Slurm suites: a command runner that answers squeue/sacct from captured outputs
 * (the real Slurm 22.05.8 fixtures) with sacct's own filtering, an in-memory emit collector, the
 * fold of collected events, and the environment of the CI cluster (deploy/slurm/start-slurm.sh).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnRunner, type CliResult, type CommandRunner } from '../../scribe/slurm/cliRunner.js';
import type { SourceEvent } from '../../scribe/source.js';
import { toEnvelope } from '../../scribe/envelope.js';
import { evolveSlurmJob } from '../../projector/tables/slurmJob.js';
import type { JobRow } from '../../projector/tables/jobs.js';
import { parseSacctTime } from '../../schemas/slurm/squeue.js';
import { SLURM_FINAL_STATES } from '../../schemas/slurm/events.js';
import { REPO_ROOT } from './cli.js';
import { inCI, prerequisite } from './prereq.js';

/** Answers `squeue --json` with `squeue` (set it between polls) and sacct from `sacctText`. */
export class FixtureSlurm {
  squeue = '{"meta":{},"errors":[],"jobs":[]}';
  calls: string[][] = [];
  /** When set, sacct fails with this stderr (exit 1). */
  sacctError: string | undefined;
  private readonly header: string[];
  private readonly lines: string[][];

  constructor(sacctText: string) {
    const rows = sacctText.split('\n').filter((l) => l.trim() !== '');
    this.header = (rows.shift() ?? '').split('|');
    this.lines = rows.map((r) => r.split('|'));
  }

  readonly run: CommandRunner = async (argv) => {
    this.calls.push([...argv]);
    const ok = (stdout: string): CliResult => ({ code: 0, stdout, stderr: '', timedOut: false });
    if (argv[0] === 'squeue') return ok(this.squeue);
    if (argv[0] === 'sacct') {
      if (this.sacctError !== undefined) return { code: 1, stdout: '', stderr: this.sacctError, timedOut: false };
      return ok(this.sacct(argv));
    }
    return { code: 1, stdout: '', stderr: `${argv[0]}: not in the fixture`, timedOut: false };
  };

  /** sacct's selection: --jobs by JobIDRaw, or --state with a window on End. */
  private sacct(argv: readonly string[]): string {
    const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const col = (name: string) => this.header.indexOf(name);
    const ids = arg('jobs')?.split(',');
    const since = parseSacctTime(arg('starttime'));
    const until = parseSacctTime(arg('endtime'));
    const keep = new Set<string>();
    for (const cells of this.lines) {
      const raw = cells[col('JobIDRaw')] ?? '';
      if (raw.includes('.')) continue;
      const state = (cells[col('State')] ?? '').split(' ')[0] ?? '';
      const end = parseSacctTime(cells[col('End')]);
      if (ids && !ids.includes(raw)) continue;
      if (!ids && (!SLURM_FINAL_STATES.has(state) || end === null || (since !== null && end < since) || (until !== null && end > until))) continue;
      keep.add(raw);
    }
    const out = [this.header.join('|')];
    for (const cells of this.lines) if (keep.has((cells[col('JobIDRaw')] ?? '').split('.')[0]!)) out.push(cells.join('|'));
    return out.join('\n') + '\n';
  }
}

export interface Emitted {
  events: SourceEvent[];
  checkpoint: string;
}

/** An emit that keeps every call (events and checkpoint) in memory. */
export function collector() {
  const calls: Emitted[] = [];
  return {
    calls,
    emit: async (events: SourceEvent[], checkpoint: string) => {
      calls.push({ events: structuredClone(events), checkpoint });
    },
    get events(): SourceEvent[] {
      return calls.flatMap((c) => c.events);
    },
    get lastCheckpoint(): string | undefined {
      return calls.at(-1)?.checkpoint;
    },
  };
}

const ORIGIN = { cluster: 'ci', scheduler: 'slurm' as const, scribe: { id: 'test', version: '0' } };

/** Folds events (in order, per job) into jobs rows, the way the projector does. */
export function foldSlurm(events: readonly SourceEvent[]): Map<string, JobRow> {
  const rows = new Map<string, JobRow>();
  for (const ev of events) {
    const row = evolveSlurmJob(rows.get(ev.job_id), toEnvelope(ORIGIN, ev, 0));
    if (row) rows.set(ev.job_id, row);
  }
  return rows;
}

/** Event names per job, in emission order. */
export function namesByJob(events: readonly SourceEvent[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of events) (out[e.job_id] ??= []).push(e.name);
  return out;
}

/** Checks that each job's seqs are 0, 1, 2, ... in emission order, and each (job, seq) occurs once. */
export function seqProblems(events: readonly SourceEvent[]): string[] {
  const next = new Map<string, number>();
  const problems: string[] = [];
  for (const e of events) {
    const want = next.get(e.job_id) ?? 0;
    if (e.seq !== want) problems.push(`job ${e.job_id}: ${e.name} has seq ${e.seq}, expected ${want}`);
    next.set(e.job_id, Math.max(want, e.seq + 1));
  }
  return problems;
}

/** What sacct says of a job, in the terms of the jobs row. */
export interface SacctExpectation {
  state: string;
  result: string;
  exit_code: number | null;
  signal: number | null;
  oom: boolean;
  t_submit: number | null;
  t_eligible: number | null;
  t_start: number | null;
  t_end: number | null;
}

/**
 * The jobs row a sacct allocation line (by column name) implies; `unified` maps the state word.
 * The process is the batch script: its .batch step's ExitCode "exit:signal" when given, else the
 * job's (a job killed while running shows 0:0, its batch step 0:15). It exited (signal 0): that
 * exit status, no signal; it was killed: no exit code, the signal; 125 is Slurm's OOM marker
 * (SIG_OOM 253 & 0x7f), no signal. Nothing for a job that never ran, nor for one Slurm ended
 * itself known by its job line alone (0:0 records nothing there).
 */
export function expectationFromSacct(line: Record<string, string>, unified: (s: string) => string, batch?: Record<string, string>): SacctExpectation {
  const word = (line.State ?? '').split(' ')[0] ?? '';
  const pair = (s: string | undefined) => /^(\d+):(\d+)$/.exec(s ?? '');
  const m = pair(batch?.ExitCode) ?? pair(line.ExitCode);
  // accounting sometimes records Start = End for a job cancelled before it ran: no nodes tells
  const start = line.NodeList === 'None assigned' ? null : parseSacctTime(line.Start);
  const sig = m ? Number(m[2]) : 0;
  // a job Slurm ended itself (canceled, timed out) shows 0:0 at the job level: no status recorded
  const unrecorded = !batch && m !== null && m[1] === '0' && sig === 0 && word !== 'COMPLETED' && word !== 'FAILED';
  const ran = start !== null && m !== null && !unrecorded;
  return {
    state: unified(word),
    result: word,
    exit_code: ran && sig === 0 ? Number(m[1]) : null,
    signal: ran && sig !== 0 && sig !== 125 ? sig : null,
    oom: word === 'OUT_OF_MEMORY' || pair(line.ExitCode)?.[2] === '125',
    t_submit: parseSacctTime(line.Submit),
    t_eligible: parseSacctTime(line.Eligible),
    t_start: start,
    t_end: parseSacctTime(line.End),
  };
}

/**
 * A row in sacct's terms. sacct prints an exit status of 128 or more less 128 (its print.c:
 * `if (tmp_int >= 128) tmp_int -= 128`; a script that exits 139, or 143 after a SIGTERM, shows
 * 11:0 or 15:0), while the row keeps squeue's raw status whole: compare as sacct prints it.
 */
export function rowExpectation(row: JobRow): SacctExpectation {
  return {
    state: row.state,
    result: row.result,
    exit_code: row.exit_code !== null && row.exit_code >= 128 ? row.exit_code - 128 : row.exit_code,
    signal: row.signal,
    oom: row.oom,
    t_submit: row.t_submit,
    t_eligible: row.t_eligible,
    t_start: row.t_start,
    t_end: row.t_end,
  };
}

/**
 * The CI cluster's environment: from process.env when SLURM_CONF is set, else from the env.sh
 * that start-slurm.sh writes ($SLURM_CI_DIR or /tmp/slurm-ci). Undefined when neither exists.
 */
export function slurmCiEnv(): Record<string, string> | undefined {
  if (process.env.SLURM_CONF) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && /^SLURM/.test(k)) env[k] = v;
    return env;
  }
  const file = join(process.env.SLURM_CI_DIR ?? '/tmp/slurm-ci', 'env.sh');
  if (!existsSync(file)) return undefined;
  const env: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^export ([A-Z_]+)='([^']*)'$/gm)) env[m[1]!] = m[2]!;
  return env.SLURM_CONF ? env : undefined;
}

// ---------------------------------------------------------------- the real cluster

export const SLURM_SCRIPTS = join(REPO_ROOT, 'deploy', 'slurm');

/** Runs a deploy/slurm script; resolves with its exit status and output (stderr last lines). */
export function slurmScript(name: 'start-slurm.sh' | 'stop-slurm.sh', args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(SLURM_SCRIPTS, name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.on('error', (err) => resolve({ code: null, stdout, stderr: String(err) }));
  });
}

/** Why the cluster is not usable (sinfo does not answer), or undefined when it is. */
export async function slurmProblem(env: Record<string, string> | undefined): Promise<string | undefined> {
  if (!env) return 'no SLURM_CONF in the environment and no $SLURM_CI_DIR/env.sh (run: bash deploy/slurm/start-slurm.sh)';
  const r = await spawnRunner({ env })(['sinfo', '--noheader', '--format=%T'], { timeoutMs: 10_000 }).catch((e: Error) => ({
    code: null,
    stdout: '',
    stderr: e.message,
    timedOut: false,
  }));
  if (r.code !== 0) return `sinfo does not answer (${r.timedOut ? 'timed out' : r.stderr.trim().split('\n')[0] || `exit ${r.code}`})`;
  if (!/idle|mixed|alloc/.test(r.stdout)) return `no usable node: sinfo says "${r.stdout.trim()}"`;
  return undefined;
}

let startedHere = false;

/**
 * For a beforeAll: the cluster's environment when sinfo answers. When it does not and this is
 * not CI, starts it once (as root) with deploy/slurm/start-slurm.sh. Otherwise skips loudly, or
 * throws under CI=true.
 */
export async function requireSlurm(): Promise<Record<string, string> | undefined> {
  let env = slurmCiEnv();
  const ok = await prerequisite('Slurm', async () => {
    const problem = await slurmProblem(env);
    if (!problem || inCI()) return problem;
    if (process.getuid?.() !== 0) return `${problem}; start-slurm.sh needs root`;
    process.stderr.write(`\nSlurm: ${problem}; starting it with bash deploy/slurm/start-slurm.sh ...\n`);
    const r = await slurmScript('start-slurm.sh');
    if (r.code !== 0) return `${problem}; start-slurm.sh failed (exit ${r.code}): ${r.stderr.split('\n').slice(-10).join('\n')}`;
    startedHere = true;
    env = slurmCiEnv();
    return slurmProblem(env);
  });
  return ok ? env : undefined;
}

/** For an afterAll: stops the cluster if requireSlurm started it. */
export async function releaseSlurm(): Promise<void> {
  if (startedHere) await slurmScript('stop-slurm.sh');
  startedHere = false;
}
