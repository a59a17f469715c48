/**
 * Slurm's job completion log (`JobCompType=jobcomp/filetxt`, the file at `JobCompLoc`): one line
 * per finished job, written by slurmctld, also on clusters without slurmdbd (where sacct has
 * nothing). A line is space-separated `Key=Value` pairs:
 *
 *   JobId=4 UserId=root(0) GroupId=root(0) Name=fail JobState=FAILED Partition=debug
 *   TimeLimit=UNLIMITED StartTime=2026-11-22T06:08:21 EndTime=2026-11-22T06:08:21 NodeList=vm
 *   NodeCnt=1 ProcCnt=1 ... SubmitTime=... EligibleTime=... [ArrayJobId=9 ArrayTaskId=1]
 *   DerivedExitCode=0:0 ExitCode=3:0
 *
 * (test/fixtures/slurm/jobcomp-filetxt.txt, real Slurm 22.05). Times are slurmctld's local time;
 * TimeLimit is minutes or UNLIMITED; NodeList is "(null)" for a job that never ran; jobs
 * cancelled while pending are included. Each line maps onto the sacct record shape
 * (`SacctJob`, origin 'jobcomp') so the Slurm diff reads ends the same way from either.
 */
import type { SacctJob, SacctLine } from './squeue.js';

/** Keys a line may hold; a value runs until the next ` Key=` (a job name may contain spaces). */
const KEYS = [
  'JobId', 'UserId', 'GroupId', 'Name', 'JobState', 'Partition', 'TimeLimit', 'StartTime', 'EndTime', 'NodeList',
  'NodeCnt', 'ProcCnt', 'WorkDir', 'ReservationName', 'Tres', 'Account', 'QOS', 'WcKey', 'Cluster', 'SubmitTime',
  'EligibleTime', 'ArrayJobId', 'ArrayTaskId', 'HetJobId', 'HetJobOffset', 'DerivedExitCode', 'ExitCode',
] as const;
const SPLIT = new RegExp(`(?:^| )(${KEYS.join('|')})=`, 'g');

/** One line's `Key=Value` pairs, or undefined when it is not a jobcomp line. */
export function parseJobcompLine(line: string): Record<string, string> | undefined {
  const fields: Record<string, string> = {};
  const marks = [...line.matchAll(SPLIT)];
  if (marks.length === 0 || marks[0]!.index !== 0) return undefined;
  marks.forEach((m, i) => {
    const from = m.index + m[0].length;
    const to = i + 1 < marks.length ? marks[i + 1]!.index : line.length;
    fields[m[1]!] = line.slice(from, to).trimEnd();
  });
  return /^[0-9]+$/.test(fields.JobId ?? '') ? fields : undefined;
}

/** A local time "2026-11-22T06:08:21" as sacct prints it under TZ=UTC; '' stays as Slurm's "Unknown". */
function utcText(local: string | undefined, localToUtc: (s: string) => number | null): string {
  if (!local || /^(unknown|none|0)$/i.test(local)) return 'Unknown';
  const t = localToUtc(local);
  return t === null ? 'Unknown' : new Date(t * 1000).toISOString().slice(0, 19);
}

/** slurmctld's local time (this process's time zone: the file is read on the controller's host) → epoch seconds. */
export function localTime(s: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(s.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, se).getTime() / 1000;
}

/** TimeLimit minutes → sacct's "D-HH:MM:SS"; UNLIMITED and the like pass through. */
function sacctLimit(minutes: string | undefined): string {
  if (!minutes || !/^[0-9]+$/.test(minutes)) return minutes ?? '';
  const m = Number(minutes);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${Math.floor(m / 1440)}-${pad(Math.floor((m % 1440) / 60))}:${pad(m % 60)}:00`;
}

/** A jobcomp line as the sacct record the diff reads (allocation line only: jobcomp has no steps). */
export function jobcompToSacct(f: Record<string, string>, localToUtc: (s: string) => number | null = localTime): SacctJob {
  const user = /^([^(]*)\((\d+)\)$/.exec(f.UserId ?? '');
  const array = f.ArrayJobId && f.ArrayTaskId ? `${f.ArrayJobId}_${f.ArrayTaskId}` : undefined;
  const job: SacctLine = {
    JobIDRaw: f.JobId!,
    JobID: array ?? f.JobId!,
    State: f.JobState ?? '',
    ExitCode: f.ExitCode ?? '',
    DerivedExitCode: f.DerivedExitCode ?? '',
    Reason: '',
    Submit: utcText(f.SubmitTime, localToUtc),
    Eligible: utcText(f.EligibleTime, localToUtc),
    Start: f.NodeList === '(null)' ? 'None' : utcText(f.StartTime, localToUtc),
    End: utcText(f.EndTime, localToUtc),
    Timelimit: sacctLimit(f.TimeLimit),
    NodeList: !f.NodeList || f.NodeList === '(null)' ? 'None assigned' : f.NodeList,
    NNodes: f.NodeCnt ?? '',
    NCPUS: f.ProcCnt ?? '',
    AllocTRES: f.Tres ?? '',
    Partition: f.Partition ?? '',
    Account: f.Account ?? '',
    QOS: f.QOS ?? '',
    User: user ? user[1]! : (f.UserId ?? ''),
    UID: user ? user[2]! : '',
    Priority: '',
    JobName: f.Name ?? '',
  };
  return { id: f.JobId!, job, steps: [], origin: 'jobcomp' };
}

/** Every job of a jobcomp text (the last line per job id wins: a requeued job ends again). */
export function parseJobcompText(text: string, localToUtc: (s: string) => number | null = localTime): Map<string, SacctJob> {
  const out = new Map<string, SacctJob>();
  for (const line of text.split('\n')) {
    const f = parseJobcompLine(line.trim());
    if (f) out.set(f.JobId!, jobcompToSacct(f, localToUtc));
  }
  return out;
}
