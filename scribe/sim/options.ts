/**
 * Options of the simulated Flux cluster (zod). Every option has a default, so `{}` is a valid
 * demo cluster: 16 nodes of 32 cores (4 of them with 4 GPUs), queues batch/debug/gpu, about three
 * submissions per simulated minute — a few jobs per wall-clock second at the default speed 60.
 * Rates are per-job probabilities. Times are seconds since the Unix epoch.
 */
import { z } from 'zod';
import { ClusterIdSchema } from '../../schemas/ids.js';

/** 2026-11-23T00:00:00Z: the default start of simulated time. */
export const DEFAULT_SIM_EPOCH = 1795305600;

const rate = z.number().min(0).max(1);

export const SimOptionsSchema = z
  .object({
    /** PRNG seed: same options, same event stream. */
    seed: z.number().int().default(1),
    /** Cluster name; nodes are named `<cluster>0`, `<cluster>1`, ... */
    cluster: ClusterIdSchema.default('fluke'),
    nodes: z.number().int().min(1).max(4096).default(16),
    coresPerNode: z.number().int().min(1).max(1024).default(32),
    /** GPUs on each node of the gpu queue (0: no gpu queue). */
    gpusPerNode: z.number().int().min(0).max(64).default(4),
    /** Nodes in the gpu queue (default a quarter of the nodes when gpusPerNode > 0 and nodes >= 4). */
    gpuNodes: z.number().int().min(0).optional(),
    /** Nodes in the debug queue (default an eighth of the nodes when nodes >= 8). */
    debugNodes: z.number().int().min(0).optional(),
    /** Start of simulated time (seconds). */
    epoch: z.number().min(0).default(DEFAULT_SIM_EPOCH),
    /**
     * When the Flux instance started (seconds): job ids (FLUIDs) count milliseconds from here.
     * Default `epoch - instanceAgeDays` days. Ids pass 2^53 once the instance is ~6.2 days old.
     */
    instanceStart: z.number().min(0).optional(),
    instanceAgeDays: z.number().min(0).max(10000).default(14),
    /** Simulated seconds per wall-clock second, for `run()` only (not part of the stream). */
    speed: z.number().positive().default(60),
    /**
     * For `run()` only: `paced` runs simulated time at `speed` from `epoch`; `wall` follows the wall
     * clock: everything from `epoch` up to now is emitted as fast as the log takes it (a back-fill),
     * then events come as their time arrives. Simulated time is never ahead of now.
     */
    clock: z.enum(['paced', 'wall']).default('paced'),
    /** Mean submissions per simulated minute (Poisson arrivals; bursts and follow-up jobs add to it). */
    submitRate: z.number().positive().default(2),
    /**
     * Submissions follow the working day (UTC): from 0.4× the mean rate at 02:00 to 1.6× at 14:00,
     * 0.6× of that on Saturdays and Sundays, so queues build up by day and drain by night. Off by
     * default (a constant rate); the demo center of `jobscribe up` turns it on.
     */
    diurnal: z.boolean().default(false),
    /** Stop submitting after this many submissions; the run ends when they are all inactive. */
    maxJobs: z.number().int().positive().optional(),
    /** Stop the simulation at this simulated time (seconds). */
    untilTime: z.number().optional(),
    /** Jobs that exit with a non-zero code. */
    failureRate: rate.default(0.07),
    /** Jobs whose task dies of a signal (OOM kill, segfault, abort). */
    signalRate: rate.default(0.015),
    /** Jobs whose command cannot be started (exception type exec). */
    execErrorRate: rate.default(0.01),
    /** Jobs that run into their time limit (exception type timeout). */
    timeoutRate: rate.default(0.04),
    /** Jobs whose owner cancels them soon after submission (pending if still queued). */
    cancelPendingRate: rate.default(0.03),
    /** Jobs whose owner cancels them while they run. */
    cancelRunningRate: rate.default(0.03),
    /** Jobs submitted held (urgency 0), later released, expedited or canceled. */
    holdRate: rate.default(0.03),
    /** Pending jobs the instance owner expedites (urgency 31). */
    expediteRate: rate.default(0.02),
    /** Jobs followed by a dependent job (afterok, sometimes afterany) from the same user. */
    dependencyRate: rate.default(0.06),
    /** Submissions asking for more exclusive nodes than their queue has (exception type alloc). */
    unsatisfiableRate: rate.default(0.008),
    /** Submissions that are job arrays (`flux submit --cc`): 2-12 copies milliseconds apart. */
    burstRate: rate.default(0.06),
    /** Blocked jobs the scheduler looks past per queue and pass (1 = strict FCFS per queue). */
    schedDepth: z.number().int().min(1).max(1000).default(4),
    /** The instance owner (the "flux" system user): raises timeout/exec/alloc exceptions, expedites. */
    ownerUser: z.string().min(1).default('flux'),
    ownerUid: z.number().int().min(0).default(982),
    /**
     * Also emit the journal-only `annotations` event that precedes each `alloc` in a live
     * journal (sched resource_summary). Off by default: a job's stored eventlog never has it.
     */
    annotations: z.boolean().default(false),
    /** Events per `emit` call in `run()` (a timer's events are never split, so batches may exceed it a little). */
    batchSize: z.number().int().min(1).max(100000).default(256),
    /** Which scheduler the cluster looks like: Flux journal events, or the Slurm source's events (slurm.ts). */
    scheduler: z.enum(['flux', 'slurm']).default('flux'),
    /** Slurm flavour: simulated seconds between two squeue polls. */
    pollInterval: z.number().min(1).max(3600).default(5),
  })
  .refine((o) => o.instanceStart === undefined || o.instanceStart <= o.epoch, {
    message: 'instanceStart must not be after epoch',
    path: ['instanceStart'],
  })
  .refine((o) => o.epoch - instanceStartOf(o) < 30 * 365 * 86400, {
    message: 'the instance would be older than FLUID timestamps allow (30 years here)',
    path: ['instanceStart'],
  })
  .refine((o) => partitionNodes(o).batch >= 1, {
    message: 'gpuNodes + debugNodes leave no node for the batch queue',
    path: ['nodes'],
  });

export type SimOptionsInput = z.input<typeof SimOptionsSchema>;
export type SimOptions = z.output<typeof SimOptionsSchema>;

export function parseSimOptions(input: SimOptionsInput | undefined): SimOptions {
  return SimOptionsSchema.parse(input ?? {});
}

/** The instance start (seconds) the options imply. */
export function instanceStartOf(o: { instanceStart?: number | undefined; epoch: number; instanceAgeDays: number }): number {
  return o.instanceStart ?? o.epoch - o.instanceAgeDays * 86400;
}

/** How many nodes each queue gets (batch first, then debug, then gpu). */
export function partitionNodes(o: {
  nodes: number;
  gpusPerNode: number;
  gpuNodes?: number | undefined;
  debugNodes?: number | undefined;
}): { batch: number; debug: number; gpu: number } {
  const gpu = o.gpuNodes ?? (o.gpusPerNode > 0 && o.nodes >= 4 ? Math.floor(o.nodes / 4) : 0);
  const debug = o.debugNodes ?? (o.nodes >= 8 ? Math.max(1, Math.floor(o.nodes / 8)) : 0);
  return { batch: o.nodes - gpu - debug, debug, gpu };
}
