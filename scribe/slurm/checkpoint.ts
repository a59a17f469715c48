/**
 * The Slurm source's checkpoint: the tracker state (diff.ts) plus, while a batch is being
 * published, that batch itself (`pending`, the write-ahead copy). JSON, versioned:
 *
 *   { "v": 1,
 *     "polled_at": 1795327790,           last poll (s)
 *     "sacct_until": 1795327790,         end of the last sacct discovery window (s)
 *     "jobs":  { "<id>": JobTrack },     jobs not yet ended: next seq `n`, phase, held, last seen
 *                                        eligible/start times, priority, nice, limit, ...
 *     "ended": { "<id>": {n, end, rc} }, ended jobs still visible to squeue or the sacct window
 *     "pending": [SourceEvent...] }      only in the write-ahead checkpoint (see source.ts)
 */
import { z } from 'zod';
import type { SourceEvent } from '../source.js';
import { formatIssues } from '../../schemas/envelope/index.js';
import { CheckpointError } from '../checkpoint.js';
import type { TrackerState } from './diff.js';

const SLURM_CHECKPOINT_VERSION = 1;

const n0 = z.number().finite().min(0);
const JobTrackSchema = z.object({
  n: z.number().int().min(0),
  sub: n0,
  phase: z.enum(['pending', 'running', 'suspended']),
  held: z.enum(['', 'user', 'admin']),
  elig: n0,
  start: n0,
  prio: z.number().nullable(),
  nice: z.number().nullable(),
  tl: z.number().nullable(),
  part: z.string(),
  name: z.string(),
  user: z.string(),
  never: z.boolean(),
  rc: z.number().int().min(0),
  susp: n0,
  term: n0.optional(),
  gone: n0.optional(),
});

const SourceEventSchema = z.object({
  job_id: z.string(),
  seq: z.number().int().min(0),
  name: z.string(),
  ts: n0,
  ts_source: z.enum(['scheduler', 'poll']).optional(),
  context: z.record(z.string(), z.unknown()),
  user: z.string().optional(),
  raw: z.unknown(),
});

const CheckpointSchema = z.object({
  v: z.literal(SLURM_CHECKPOINT_VERSION),
  polled_at: n0.nullable(),
  sacct_until: n0.nullable(),
  jobs: z.record(z.string(), JobTrackSchema),
  ended: z.record(z.string(), z.object({ n: z.number().int().min(0), end: n0, rc: z.number().int().min(0) })),
  pending: z.array(SourceEventSchema).optional(),
});

export interface SlurmCheckpoint {
  state: TrackerState;
  /** Events of a batch that may or may not have been published: re-emitted first on resume. */
  pending: SourceEvent[];
}

export function encodeCheckpoint(state: TrackerState, pending: SourceEvent[] = []): string {
  const body: z.input<typeof CheckpointSchema> = { v: SLURM_CHECKPOINT_VERSION, ...state };
  if (pending.length > 0) body.pending = pending;
  return JSON.stringify(body);
}

export function decodeCheckpoint(text: string): SlurmCheckpoint {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`not JSON: ${(err as Error).message}`);
  }
  const parsed = CheckpointSchema.safeParse(data);
  if (!parsed.success) {
    throw new CheckpointError(`not a valid Slurm source checkpoint: ${formatIssues(parsed.error, 3)}`);
  }
  const { v: _v, pending = [], ...state } = parsed.data;
  return { state: state, pending: pending };
}
