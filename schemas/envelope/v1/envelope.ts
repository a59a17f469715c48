/**
 * Event envelope, version 1: what a scribe publishes to the event log for every scheduler event.
 *
 * One envelope = one job event. The per-job `seq` is assigned by the scribe and is stable across
 * scribe restarts, so (cluster, job_id, seq) is the event's identity: the projector collapses
 * republished copies on it. The log message key is `cluster:job_id` so one job's events stay in
 * order on one partition. `raw` keeps the scheduler's own record untouched (for Flux: the journal
 * entry with its jobspec / R; for Slurm: the polled record).
 */
import { z } from 'zod';
import { ClusterIdSchema, JobIdSchema, SchedulerSchema } from '../../ids.js';

export const ENVELOPE_VERSION = 1 as const;
export const ENVELOPE_CONTENT_TYPE = 'application/vnd.jobscribe.envelope.v1+json';

/**
 * HMAC-SHA256 over the record's canonical JSON without this field (log/signing.ts), by the key
 * `key_id` of the cluster's keyring. Optional: required only where the receiver requires it.
 */
export const RecordSignatureSchema = z.object({
  key_id: z.string().min(1).max(128),
  /** base64url, no padding. */
  hmac: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an HMAC-SHA256 in base64url (43 characters)'),
});
export type RecordSignature = z.infer<typeof RecordSignatureSchema>;

export const ScribeIdentitySchema = z.object({
  id: z.string().min(1),
  version: z.string().min(1),
});

/** 2299-12-31T23:59:59Z, the last second a ClickHouse DateTime64 holds. */
export const MAX_EPOCH_SECONDS = 10_413_791_999;
/** Seconds since the epoch, within what the read model can store (a later time would stall the projector). */
export const EpochSecondsSchema = z.number().finite().min(0).max(MAX_EPOCH_SECONDS, 'is after 2299-12-31, which ClickHouse cannot store (seconds, not milliseconds?)');

export const EnvelopeSchema = z.object({
  v: z.literal(ENVELOPE_VERSION),
  cluster: ClusterIdSchema,
  scheduler: SchedulerSchema,
  job_id: JobIdSchema,
  /** Position of this event in its job's history, 0-based, strictly increasing. */
  seq: z.number().int().min(0).max(4_294_967_295),
  /** Event name as the scheduler spells it (RFC 21 names for Flux). */
  name: z.string().min(1).max(128),
  /** Seconds since the epoch, from the scheduler's clock when it has one. */
  ts: EpochSecondsSchema,
  /** 'poll' when the scheduler gave no time and `ts` is only when the scribe noticed. */
  ts_source: z.enum(['scheduler', 'poll']).default('scheduler'),
  context: z.record(z.string(), z.unknown()).default({}),
  /** Scheduler user name, when the scribe could resolve it (Flux events carry only a uid). */
  user: z.string().min(1).max(256).optional(),
  raw: z.unknown(),
  scribe: ScribeIdentitySchema,
  /** Seconds since the epoch when the scribe published the event. */
  published_at: EpochSecondsSchema,
  /** The scribe's signature, when it has a signing key (checked by the projector). */
  signature: RecordSignatureSchema.optional(),
});
export type Envelope = z.infer<typeof EnvelopeSchema>;
export type EnvelopeInput = z.input<typeof EnvelopeSchema>;

/** The log message key: all events of one job share it, so they stay ordered. */
export function envelopeKey(e: Pick<Envelope, 'cluster' | 'job_id'>): string {
  return `${e.cluster}:${e.job_id}`;
}

/** The identity of one event, stable across republishing. */
export function eventId(e: Pick<Envelope, 'cluster' | 'job_id' | 'seq'>): string {
  return `${e.cluster}:${e.job_id}:${e.seq}`;
}
