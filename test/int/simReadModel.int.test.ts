import { afterAll, beforeAll, expect, it } from 'vitest';
import { groundTruth } from '../../scribe/sim/index.js';
import { queryRows } from '../support/chdb.js';
import { buildSimReadModel, type SimReadModel } from '../support/simReadModel.js';

let rm: SimReadModel;
const SIMS = [{ seed: 5, cluster: 'alpha', nodes: 8, maxJobs: 150 }, { seed: 6, cluster: 'beta', nodes: 4, maxJobs: 80 }];
beforeAll(async () => { rm = await buildSimReadModel('srm_test', SIMS); });
afterAll(async () => { await rm?.cleanup(); });

it('holds every simulated job and event of every cluster', async () => {
  for (const sim of SIMS) {
    const truth = groundTruth(sim);
    const [r] = await queryRows<{ jobs: string; events: string }>(rm.ch,
      `SELECT (SELECT count() FROM srm_test.jobs FINAL WHERE cluster = {c:String}) AS jobs,
              (SELECT count() FROM srm_test.job_events FINAL WHERE cluster = {c:String}) AS events`, { c: sim.cluster });
    expect(Number(r!.jobs)).toBe(truth.jobs);
    expect(Number(r!.events)).toBe(truth.events);
    expect(rm.events.get(sim.cluster)!.length).toBe(truth.events);
  }
});
