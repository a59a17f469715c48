/**
 * A mixed simulated center (one Flux cluster, one Slurm cluster) lands in one read model: both
 * clusters' jobs in `jobs` with their scheduler, results and event counts equal to each
 * simulation's ground truth, and Slurm's own state words kept beside the unified state.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { groundTruth } from '../../scribe/sim/index.js';
import { queryRows } from '../support/chdb.js';
import { buildSimReadModel, type SimReadModel } from '../support/simReadModel.js';

const DB = 'sim_mixed_test';
const SIMS = [
  { seed: 21, cluster: 'fluke', nodes: 8, maxJobs: 150 },
  { seed: 22, cluster: 'slurmy', nodes: 8, maxJobs: 150, scheduler: 'slurm' as const },
];
let rm: SimReadModel;
beforeAll(async () => {
  rm = await buildSimReadModel(DB, SIMS);
}, 240_000);
afterAll(async () => {
  await rm?.cleanup();
});

it('holds both schedulers\' jobs with the totals each simulation says', async () => {
  for (const sim of SIMS) {
    const truth = groundTruth(sim);
    const [r] = await queryRows<Record<string, string>>(
      rm.ch,
      `SELECT count() AS jobs, groupUniqArray(scheduler) AS schedulers,
              countIf(state = 'completed') AS completed, countIf(state = 'failed') AS failed,
              countIf(state = 'canceled') AS canceled, countIf(state = 'timeout') AS timeout,
              (SELECT count() FROM ${DB}.job_events FINAL WHERE cluster = {c:String}) AS events,
              (SELECT count() FROM ${DB}.dead_letters) AS dead
       FROM ${DB}.jobs FINAL WHERE cluster = {c:String}`,
      { c: sim.cluster },
    );
    expect(r!.schedulers).toEqual([sim.scheduler ?? 'flux']);
    expect(Number(r!.jobs)).toBe(truth.jobs);
    expect(Number(r!.events)).toBe(truth.events);
    expect(rm.events.get(sim.cluster)!.length).toBe(truth.events);
    expect(Number(r!.dead)).toBe(0);
    const t = truth.results;
    expect([r!.completed, r!.failed, r!.canceled, r!.timeout].map(Number)).toEqual([t.COMPLETED, t.FAILED, t.CANCELED, t.TIMEOUT]);
  }
});

it('keeps Slurm state words, numeric job ids and partitions for the Slurm cluster', async () => {
  const rows = await queryRows<{ sched_state: string; n: string }>(
    rm.ch,
    `SELECT sched_state, count() AS n FROM ${DB}.jobs FINAL WHERE cluster = 'slurmy' GROUP BY sched_state ORDER BY sched_state`,
  );
  const truth = groundTruth(SIMS[1]) as ReturnType<typeof groundTruth> & { slurmStates: Record<string, number> };
  expect(Object.fromEntries(rows.map((r) => [r.sched_state, Number(r.n)]))).toEqual(truth.slurmStates);
  const [ids] = await queryRows<{ lo: string; hi: string; n: string; queues: string[] }>(
    rm.ch,
    `SELECT toString(min(job_id)) AS lo, toString(max(job_id)) AS hi, toString(count()) AS n, groupUniqArray(queue) AS queues
     FROM ${DB}.jobs FINAL WHERE cluster = 'slurmy'`,
  );
  // sequential Slurm ids from the first one (gaps only where a submission was refused)
  expect(ids!.lo).toBe('1001');
  expect(Number(ids!.hi) - Number(ids!.lo) + 1).toBeGreaterThanOrEqual(Number(ids!.n));
  expect(Number(ids!.hi)).toBeLessThan(1001 + SIMS[1]!.maxJobs);
  expect(new Set(ids!.queues)).toEqual(new Set(Object.keys(truth.byQueue).filter((q) => truth.byQueue[q]!.jobs > 0)));
});
