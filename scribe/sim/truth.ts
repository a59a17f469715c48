/**
 * The ground truth of a finished simulation in either flavour: the Flux simulator's totals, or
 * (scheduler 'slurm') what accounting shows of the same workload through simulated Slurm.
 */
import { parseSimOptions, type SimOptionsInput } from './options.js';
import { groundTruth as fluxGroundTruth, type SimStats } from './simulator.js';
import { slurmGroundTruth, type SlurmSimStats } from './slurm.js';

export function groundTruth(options?: SimOptionsInput): SimStats | SlurmSimStats {
  return parseSimOptions(options).scheduler === 'slurm' ? slurmGroundTruth(options) : fluxGroundTruth(options);
}
