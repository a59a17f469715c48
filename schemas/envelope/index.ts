/**
 * Envelope versions. Readers call `decodeEnvelope`, which validates and upcasts any known
 * version to the current one; writers build the current version directly. Old shapes are
 * upcast at read time, never rewritten in the log.
 */
import { EnvelopeSchema, type Envelope } from './v1/envelope.js';
import { jsonBoundsProblem } from '../jsonBounds.js';

export * from './v1/envelope.js';

/** Zod issues as `path: message` joined by "; " (at most `max`), the root path shown as (root). */
export function formatIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }, max: number): string {
  return error.issues
    .slice(0, max)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: string };

/**
 * A log message value as a JSON object (`given` when the caller parsed it already), or why not.
 * The text is bounded first (schemas/jsonBounds.ts): a record too large or nested too deep is
 * refused before any recursive walk of it could overflow the stack. A caller that gives the
 * parsed JSON has bounded the text before parsing it (the projector does, once per record: this
 * scan was a tenth of its decode time when it ran twice).
 */
export function jsonObjectOf(text: string, given: unknown, what: string): { ok: true; json: Record<string, unknown> } | { ok: false; reason: string } {
  let data: unknown = given;
  if (data === undefined) {
    const bounds = jsonBoundsProblem(text);
    if (bounds !== undefined) return { ok: false, reason: `${what} ${bounds}` };
    try {
      data = JSON.parse(text);
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message}` };
    }
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, reason: `${what} is not a JSON object` };
  return { ok: true, json: data as Record<string, unknown> };
}

/**
 * Parses one log message value (JSON text) into the current envelope, or says why not.
 * `given`: the text's JSON.parse result when the caller already has it (the projector, which
 * bounded the text before parsing it and checks signatures on it).
 */
export function decodeEnvelope(text: string, given?: unknown): DecodeResult {
  const obj = jsonObjectOf(text, given, 'envelope');
  if (!obj.ok) return obj;
  const data = obj.json;
  const version = data.v;
  if (version !== 1) return { ok: false, reason: `unknown envelope version ${JSON.stringify(version)}` };
  const parsed = EnvelopeSchema.safeParse(data);
  if (!parsed.success) {
    return { ok: false, reason: `invalid envelope: ${formatIssues(parsed.error, 5)}` };
  }
  return { ok: true, envelope: parsed.data };
}
