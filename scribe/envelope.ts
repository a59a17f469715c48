/**
 * Pure: one source event → one v1 envelope, and the log message that carries it.
 */
import { ENVELOPE_CONTENT_TYPE, ENVELOPE_VERSION, envelopeKey, type Envelope } from '../schemas/envelope/index.js';
import type { Scheduler } from '../schemas/ids.js';
import type { LogMessage } from '../log/eventLog.js';
import type { SourceEvent } from './source.js';

export interface EnvelopeOrigin {
  cluster: string;
  scheduler: Scheduler;
  scribe: { id: string; version: string };
}

export function toEnvelope(origin: EnvelopeOrigin, ev: SourceEvent, publishedAt: number): Envelope {
  const e: Envelope = {
    v: ENVELOPE_VERSION,
    cluster: origin.cluster,
    scheduler: origin.scheduler,
    job_id: ev.job_id,
    seq: ev.seq,
    name: ev.name,
    ts: ev.ts,
    ts_source: ev.ts_source ?? 'scheduler',
    context: ev.context,
    raw: ev.raw,
    scribe: origin.scribe,
    published_at: publishedAt,
  };
  if (ev.user !== undefined) e.user = ev.user;
  return e;
}

export function toLogMessage(e: Envelope): LogMessage {
  return {
    key: envelopeKey(e),
    value: JSON.stringify(e),
    headers: { 'content-type': ENVELOPE_CONTENT_TYPE, 'schema-version': String(e.v) },
  };
}
