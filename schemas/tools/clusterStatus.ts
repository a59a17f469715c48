/**
 * `cluster_status`: which clusters jobscribe has seen, how fresh each one's data is (scribe and
 * projector lag) and a health verdict per cluster against stated thresholds.
 */
import { z } from 'zod';
import { SchedulerSchema } from '../ids.js';
import { ClusterArgSchema, IsoTimeSchema } from './common.js';

export const HEALTH_VERDICTS = ['ok', 'stale', 'lagging'] as const;
export const HealthSchema = z.enum(HEALTH_VERDICTS);
export type Health = z.infer<typeof HealthSchema>;

/** Default thresholds of the health verdict. */
export const DEFAULT_STALE_AFTER_S = 3600;
export const DEFAULT_MAX_PROJECTOR_LAG_EVENTS = 1000;
export const DEFAULT_MAX_PUBLISH_DELAY_S = 300;

const positiveInt = (what: string) =>
  z
    .number({ error: `must be a whole number of ${what} > 0` })
    .int({ error: `must be a whole number of ${what} > 0` })
    .positive({ error: `must be a whole number of ${what} > 0` });

export const ClusterStatusInputSchema = z.strictObject({
  cluster: ClusterArgSchema.optional(),
  stale_after_s: positiveInt('seconds')
    .default(DEFAULT_STALE_AFTER_S)
    .describe(`stale when nothing was published for longer than this (default ${DEFAULT_STALE_AFTER_S})`),
  max_projector_lag_events: positiveInt('events')
    .default(DEFAULT_MAX_PROJECTOR_LAG_EVENTS)
    .describe(`lagging when more events than this wait unprojected in the log (default ${DEFAULT_MAX_PROJECTOR_LAG_EVENTS})`),
});
export type ClusterStatusInput = z.infer<typeof ClusterStatusInputSchema>;

export const ClusterStatusEntrySchema = z.object({
  cluster: z.string(),
  scheduler: SchedulerSchema.nullable().describe('null when no event of the cluster is projected yet'),
  jobs: z.number().int(),
  pending: z.number().int().describe('pending jobs, held ones included'),
  held: z.number().int(),
  running: z.number().int(),
  last_event_ts: IsoTimeSchema.nullable().describe('newest event time the scheduler reported'),
  last_published_at: IsoTimeSchema.nullable().describe('when the scribe last published an event of this cluster (as projected)'),
  scribe_lag_s: z.number().nullable().describe('seconds from last_published_at to as_of'),
  publish_delay_s: z.number().nullable().describe('published_at - ts of the most recently published event'),
  projector_lag_events: z.number().int().nullable().describe('events in the log not yet projected; null: unknown (no log in this process)'),
  health: HealthSchema,
  reasons: z.array(z.string()).describe('why the verdict is not ok (empty when ok)'),
});
export type ClusterStatusEntry = z.infer<typeof ClusterStatusEntrySchema>;

export const ClusterStatusOutputSchema = z.object({
  as_of: IsoTimeSchema,
  thresholds: z.object({
    stale_after_s: z.number(),
    max_projector_lag_events: z.number(),
    max_publish_delay_s: z.number(),
  }),
  projector_lag_known: z.boolean().describe('false when this process has no event log to measure the projector against'),
  clusters: z.array(ClusterStatusEntrySchema),
  truncated: z.boolean(),
});
export type ClusterStatusOutput = z.infer<typeof ClusterStatusOutputSchema>;
