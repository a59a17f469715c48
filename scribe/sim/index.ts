/**
 * Simulated Flux cluster: deterministic, seeded, checkpointable; emits flux-core 0.88 journal
 * events, or with scheduler 'slurm' the Slurm source's events (slurm.ts). `createSimSource` for a
 * live (paced) SchedulerSource, `Simulator` / `simulate` (`SlurmSimulator` / `simulateSlurm`) for
 * the fast synchronous stream, `groundTruth` for the totals a read model must show.
 */
export { SimOptionsSchema, DEFAULT_SIM_EPOCH, parseSimOptions, instanceStartOf, partitionNodes } from './options.js';
export type { SimOptions, SimOptionsInput } from './options.js';
export {
  Simulator,
  diurnalFactor,
  simulate,
  RESULTS,
  SCENARIOS,
  FLUX_PRIORITY_MAX,
} from './simulator.js';
export type { SimStats, ResultTally, Scenario, SimResult, FluxJobState } from './simulator.js';
export { groundTruth } from './truth.js';
export { SlurmSimulator, simulateSlurm, slurmGroundTruth, squeueJobOf, MIN_JOB_AGE_S, FIRST_SLURM_JOB_ID } from './slurm.js';
export type { SlurmSimJob, SlurmSimStats } from './slurm.js';
export { createSimSource } from './source.js';
export type { SimSource } from './source.js';
export {
  SIM_USERS,
  buildCluster,
  clusterR,
  allocR,
  allocCounts,
  resourceSummary,
  idsetEncode,
  hostlistEncode,
} from './cluster.js';
export type { SimCluster, SimQueue, SimUser, AllocEntry, ResourceRequest } from './cluster.js';
export { makeFluid, decodeFluid, nextFluid } from './fluid.js';
export { Rng } from './random.js';
