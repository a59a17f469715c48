/**
 * How jobs end on a REAL Slurm 22.05 (deploy/slurm/start-slurm.sh), through the Slurm source and
 * the fold: one exit rule for every scheduler (projector/tables/exit.ts). A batch script killed
 * by SIGSEGV has no exit code but signal 11 (it was exit_code 139 before); one whose program
 * segfaulted and that exits 139 itself has exit code 139 (sacct prints that 11:0: it subtracts 128
 * from an exit status of 128 or more; squeue's raw status keeps it); exit 3 is 3; a job canceled while
 * running was killed by SIGTERM; one canceled while held never ran and has neither. The expected
 * values come from sacct (the job's and its .batch step's ExitCode), not from the fold.
 *
 * Out of memory cannot be provoked here (the CI cluster has no cgroups and no OverMemoryKill);
 * its sacct shape (OUT_OF_MEMORY, 0:125) is covered by test/unit/slurmDiff.unit.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlurmSource } from '../../scribe/slurm/source.js';
import { runQuery, spawnRunner } from '../../scribe/slurm/cliRunner.js';
import { sacctLookupArgv } from '../../scribe/slurm/poller.js';
import { parseSacctParsable } from '../../schemas/slurm/squeue.js';
import { unifiedSlurmResult } from '../../schemas/slurm/events.js';
import { collector, expectationFromSacct, foldSlurm, releaseSlurm, requireSlurm, rowExpectation } from '../support/slurm.js';

let env: Record<string, string> | undefined;
beforeAll(async () => {
  env = await requireSlurm();
}, 180_000);
afterAll(releaseSlurm, 60_000);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

describe('exit codes and signals on a real Slurm', () => {
  it('a segfault is signal 11 (SIGSEGV) with no exit code; exit statuses stay exit statuses; as sacct says', async ({ skip }) => {
    if (!env) skip();
    const dir = mkdtempSync(join(tmpdir(), 'jobscribe-slurm-exit-'));
    dirs.push(dir);
    const out = collector();
    const ac = new AbortController();
    const source = createSlurmSource({ run: spawnRunner({ env }), pollIntervalMs: 1000, sacctIntervalS: 5, endGraceS: 30, log: () => {} });
    const done = source.run({ signal: ac.signal, emit: out.emit });
    try {
      const submit = async (args: Record<string, unknown>) => {
        const r = await source.act({ action: 'submit', args: { workdir: dir, ...args }, user: 'root' });
        expect(r, JSON.stringify(args)).toMatchObject({ ok: true });
        return (r as { job_id: string }).job_id;
      };
      const W = {
        segv: await submit({ name: 'segv', command: 'kill -SEGV $$' }),
        childSegv: await submit({ name: 'child-segv', command: 'sh -c "kill -SEGV \\$\\$"; exit $?' }),
        exit3: await submit({ name: 'exit3', command: 'exit 3' }),
        cancelRunning: await submit({ name: 'cancel-running', command: 'sleep 300' }),
        cancelHeld: await submit({ name: 'cancel-held', command: 'true', hold: true }),
      };
      const rows = () => foldSlurm(out.events);
      await waitFor('cancel-running to run', () => rows().get(W.cancelRunning)?.state === 'running');
      expect(await source.act({ action: 'cancel', job_id: W.cancelRunning })).toMatchObject({ ok: true });
      await waitFor('cancel-held to be seen held', () => rows().get(W.cancelHeld)?.held === true);
      expect(await source.act({ action: 'cancel', job_id: W.cancelHeld })).toMatchObject({ ok: true });
      await waitFor('every job to end', () => Object.values(W).every((id) => rows().get(id)?.result), 150_000);
      ac.abort();
      await done;

      const ids = Object.values(W);
      const sacct = parseSacctParsable(await runQuery(spawnRunner({ env }), sacctLookupArgv(ids), { env: { TZ: 'UTC' }, timeoutMs: 30_000 }));
      const folded = rows();
      for (const id of ids) {
        const a = sacct.get(id);
        expect(a, `sacct has job ${id}`).toBeDefined();
        // as sacct prints it: an exit status of 128 or more less 128 (rowExpectation)
        expect(rowExpectation(folded.get(id)!), `job ${id} (${a!.job.JobName})`).toEqual(expectationFromSacct(a!.job, unifiedSlurmResult, a!.batch));
      }
      // spelled out, and what sacct itself printed
      const pick = (id: string) => {
        const r = folded.get(id)!;
        return { state: r.state, exit_code: r.exit_code, signal: r.signal, signal_name: r.signal_name, oom: r.oom };
      };
      expect(sacct.get(W.segv)!.job.ExitCode).toBe('0:11');
      expect(pick(W.segv)).toEqual({ state: 'failed', exit_code: null, signal: 11, signal_name: 'SIGSEGV', oom: false });
      expect(sacct.get(W.childSegv)!.job.ExitCode).toBe('11:0');
      expect(folded.get(W.childSegv)!.waitstatus).toBe(139 << 8);
      expect(pick(W.childSegv)).toEqual({ state: 'failed', exit_code: 139, signal: null, signal_name: '', oom: false });
      expect(pick(W.exit3)).toEqual({ state: 'failed', exit_code: 3, signal: null, signal_name: '', oom: false });
      expect(sacct.get(W.cancelRunning)!.batch?.ExitCode).toBe('0:15');
      expect(pick(W.cancelRunning)).toEqual({ state: 'canceled', exit_code: null, signal: 15, signal_name: 'SIGTERM', oom: false });
      expect(pick(W.cancelHeld)).toEqual({ state: 'canceled', exit_code: null, signal: null, signal_name: '', oom: false });
      // Slurm has no urgency (0 would read as Flux's held); its nice is 0 by default
      for (const id of ids) expect([folded.get(id)!.urgency, folded.get(id)!.nice], `job ${id}`).toEqual([null, 0]);
    } finally {
      ac.abort();
      await done;
    }
  }, 300_000);
});
