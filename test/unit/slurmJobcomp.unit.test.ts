/**
 * The job completion log as a stand-in for sacct (schemas/slurm/jobcomp.ts, scribe/slurm/jobcomp.ts),
 * on the real capture of the same workload as the squeue and sacct fixtures
 * (test/fixtures/slurm/jobcomp-filetxt.txt, written by slurmctld with TZ=UTC):
 * - each line maps onto sacct's record of the job, field by field;
 * - a source whose sacct says accounting is disabled, given the log, ends every job with the
 *   state, exit code and times sacct reports (the fold), with source "jobcomp";
 * - the tail reads appended lines only, waits for a line's newline, and starts over after rotation.
 */
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJobcompLine, parseJobcompText } from '../../schemas/slurm/jobcomp.js';
import { parseSacctParsable, parseSacctTime } from '../../schemas/slurm/squeue.js';
import { unifiedSlurmResult } from '../../schemas/slurm/events.js';
import { JobcompTail } from '../../scribe/slurm/jobcomp.js';
import { createSlurmSource } from '../../scribe/slurm/source.js';
import { slurmFixture } from '../support/fixtures.js';
import { FixtureSlurm, collector, expectationFromSacct, foldSlurm, rowExpectation } from '../support/slurm.js';

const JOBCOMP = slurmFixture('jobcomp-filetxt.txt');
const SACCT = parseSacctParsable(slurmFixture('sacct-workload-parsable.txt'));
const utc = (s: string) => parseSacctTime(s); // the capture's slurmctld ran in UTC
const T3 = 1795327790;

const dir = mkdtempSync(join(tmpdir(), 'jobscribe-jobcomp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('jobcomp lines', () => {
  it('every line of the capture is one job; a name with spaces and odd lines are handled', () => {
    const jobs = parseJobcompText(JOBCOMP, utc);
    expect([...jobs.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14']);
    expect(parseJobcompLine('JobId=5 UserId=ann(1001) Name=my job x=1 JobState=COMPLETED')).toMatchObject({ Name: 'my job x=1', JobState: 'COMPLETED' });
    expect(parseJobcompLine('not a jobcomp line')).toBeUndefined();
    expect(parseJobcompLine('')).toBeUndefined();
  });

  it("maps onto sacct's record of the same job: state, exit codes, times, nodes, user, array ids", () => {
    const jobs = parseJobcompText(JOBCOMP, utc);
    const fields = ['JobID', 'JobIDRaw', 'JobName', 'ExitCode', 'DerivedExitCode', 'Submit', 'Start', 'End', 'Partition', 'User'] as const;
    for (const [id, sacct] of SACCT) {
      const mine = jobs.get(id)!.job;
      for (const f of fields) {
        // sacct's Start of a job cancelled before it ran is its End; jobcomp has no nodes there
        if (f === 'Start' && sacct.job.NodeList === 'None assigned') continue;
        expect(mine[f], `job ${id} ${f}`).toBe(sacct.job[f]);
      }
      expect(mine.State!.split(' ')[0], `job ${id} State`).toBe(sacct.job.State!.split(' ')[0]);
      expect(mine.NodeList, `job ${id} NodeList`).toBe(sacct.job.NodeList);
    }
    expect(jobs.get('1')!.job.Timelimit).toBe('0-00:01:00');
    expect(jobs.get('4')!.job).toMatchObject({ ExitCode: '3:0', UID: '0', NNodes: '1', NCPUS: '1' });
  });
});

describe('a source without accounting, reading the job completion log', () => {
  it('ends every job as sacct reports it; the events say jobcomp', async () => {
    process.env.TZ = 'UTC'; // the log holds slurmctld's local time; the capture's was UTC
    const slurm = new FixtureSlurm(slurmFixture('sacct-workload-parsable.txt'));
    slurm.sacctError = 'sacct: error: Slurm accounting storage is disabled';
    const ac = new AbortController();
    const out = collector();
    const logs: string[] = [];
    const snaps = [slurmFixture('squeue-mixed.json'), slurmFixture('squeue-finished.json'), '{"meta":{},"errors":[],"jobs":[]}'];
    const source = createSlurmSource({
      run: async (argv, opts) => {
        if (argv[0] === 'squeue') {
          const s = snaps.shift();
          if (!s) ac.abort();
          slurm.squeue = s ?? '{"meta":{},"errors":[],"jobs":[]}';
        }
        return slurm.run(argv, opts);
      },
      now: () => T3,
      pollIntervalMs: 1,
      jobcompFile: slurmFixture.path('jobcomp-filetxt.txt'),
      log: (m) => logs.push(m),
    });
    await source.run({ signal: ac.signal, emit: out.emit });
    expect(logs.join('\n')).toMatch(/accounting is disabled/);
    const ends = out.events.filter((e) => e.name === 'end');
    expect(ends).toHaveLength(14);
    expect(new Set(ends.map((e) => e.context.source))).toEqual(new Set(['jobcomp']));
    expect(ends.find((e) => e.job_id === '4')!.raw).toMatchObject({ jobcomp: { ExitCode: '3:0' } });
    const rows = foldSlurm(out.events);
    for (const [id, sacct] of SACCT) {
      expect(rowExpectation(rows.get(id)!), `job ${id}`).toEqual(expectationFromSacct(sacct.job, unifiedSlurmResult, sacct.batch));
    }
  });
});

describe('following the file', () => {
  const line = (id: number, end: string) =>
    `JobId=${id} UserId=ann(1001) GroupId=ann(1001) Name=j${id} JobState=COMPLETED Partition=debug TimeLimit=5 StartTime=2026-11-22T06:00:00 EndTime=${end} NodeList=vm NodeCnt=1 ProcCnt=1 SubmitTime=2026-11-22T05:59:00 EligibleTime=2026-11-22T05:59:00 DerivedExitCode=0:0 ExitCode=0:0 \n`;
  const NOW = Date.UTC(2026, 10, 22, 7) / 1000;

  it('reads appended lines, waits for the newline of a line being written, starts over after rotation', () => {
    const path = join(dir, 'jobcomp.txt');
    const tail = new JobcompTail(path, { localToUtc: utc });
    tail.refresh(NOW); // no file yet: nothing, no error
    expect(tail.lookup(['1']).size).toBe(0);
    writeFileSync(path, line(1, '2026-11-22T06:01:00'));
    const half = line(2, '2026-11-22T06:02:00');
    appendFileSync(path, half.slice(0, 40));
    tail.refresh(NOW);
    expect([...tail.lookup(['1', '2']).keys()]).toEqual(['1']);
    appendFileSync(path, half.slice(40));
    tail.refresh(NOW);
    expect([...tail.lookup(['1', '2']).keys()]).toEqual(['1', '2']);
    expect([...tail.endedBetween(utc('2026-11-22T06:01:30')!, NOW).keys()]).toEqual(['2']);
    // logrotate: the file is moved away and a new one started
    renameSync(path, `${path}.1`);
    writeFileSync(path, line(3, '2026-11-22T06:03:00'));
    tail.refresh(NOW);
    expect([...tail.lookup(['1', '2', '3']).keys()]).toEqual(['1', '2', '3']);
  });

  it('a long existing log is read from its last part only, starting at a whole line', () => {
    const path = join(dir, 'long.txt');
    const first = line(1, '2026-11-22T06:01:00');
    writeFileSync(path, first + line(2, '2026-11-22T06:02:00') + line(3, '2026-11-22T06:03:00'));
    // the window starts inside line 2: line 1 is never read, line 2's tail is skipped
    const tail = new JobcompTail(path, { localToUtc: utc, maxInitialBytes: 2 * first.length - 10 });
    tail.refresh(NOW);
    expect([...tail.lookup(['1', '2', '3']).keys()]).toEqual(['3']);
    appendFileSync(path, line(4, '2026-11-22T06:04:00'));
    tail.refresh(NOW);
    expect([...tail.lookup(['1', '2', '3', '4']).keys()]).toEqual(['3', '4']);
  });

  it('forgets jobs that ended before the keep window', () => {
    const path = join(dir, 'old.txt');
    writeFileSync(path, line(1, '2026-11-01T00:00:00') + line(2, '2026-11-22T06:02:00'));
    const tail = new JobcompTail(path, { localToUtc: utc, keepS: 24 * 3600 });
    tail.refresh(NOW);
    expect([...tail.lookup(['1', '2']).keys()]).toEqual(['2']);
  });
});
