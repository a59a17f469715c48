/**
 * Envelope versions. Readers call `decodeEnvelope`, which validates and upcasts any known
 * version to the current one; writers build the current version directly. Old shapes are
 * upcast at read time, never rewritten in the log.
 */
import { EnvelopeSchema, type Envelope } from './v1/envelope.js';

export * from './v1/envelope.js';

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: string };

/** Parses one log message value (JSON text) into the current envelope, or says why not. */
export function decodeEnvelope(text: string): DecodeResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, reason: 'envelope is not a JSON object' };
  }
  const version = (data as { v?: unknown }).v;
  if (version !== 1) return { ok: false, reason: `unknown envelope version ${JSON.stringify(version)}` };
  const parsed = EnvelopeSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    return { ok: false, reason: `invalid envelope: ${issues}` };
  }
  return { ok: true, envelope: parsed.data };
}
