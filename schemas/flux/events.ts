/**
 * Flux job events: the RFC 21 job eventlog vocabulary (flux-core 0.88) plus the journal-only
 * events `annotations` and `invalidate`. Each known event has a zod schema for its context;
 * `parseFluxEvent` returns a typed event, or `{ known: false }` for a name outside the
 * vocabulary, which callers pass through untouched (newer flux-core versions add events).
 *
 * Also the shape of `raw` in a Flux envelope: the journal entry (one event, plus `jobspec` with
 * submit and `R` with alloc), with the job id kept as a decimal string.
 */
import { z } from 'zod';

const Empty = z.object({}).loose();
const uint = z.number().int().min(0);

export const FluxEventContexts = {
  submit: z.object({ userid: uint, urgency: z.number().int().min(0).max(31), flags: uint, version: uint.optional() }).loose(),
  validate: Empty,
  invalidate: Empty,
  'jobspec-update': z.record(z.string(), z.unknown()),
  'resource-update': z.record(z.string(), z.unknown()),
  'set-flags': z.object({ flags: z.array(z.string()) }).loose(),
  'dependency-add': z.object({ description: z.string() }).loose(),
  'dependency-remove': z.object({ description: z.string() }).loose(),
  depend: Empty,
  priority: z.object({ priority: uint }).loose(),
  'flux-restart': Empty,
  urgency: z.object({ userid: uint, urgency: z.number().int().min(0).max(31) }).loose(),
  alloc: z.object({ annotations: z.record(z.string(), z.unknown()).optional() }).loose(),
  'prolog-start': z.object({ description: z.string() }).loose(),
  'prolog-finish': z.object({ description: z.string(), status: z.number().int() }).loose(),
  'epilog-start': z.object({ description: z.string() }).loose(),
  'epilog-finish': z.object({ description: z.string(), status: z.number().int() }).loose(),
  start: Empty,
  release: z.object({ ranks: z.string(), final: z.boolean() }).loose(),
  finish: z.object({ status: z.number().int() }).loose(),
  free: Empty,
  clean: Empty,
  debug: Empty,
  exception: z
    .object({ type: z.string(), severity: z.number().int().min(0).max(7), note: z.string().default(''), userid: uint.optional() })
    .loose(),
  memo: z.record(z.string(), z.unknown()),
  annotations: z.object({ annotations: z.record(z.string(), z.unknown()).nullable() }).loose(),
} as const;

export type FluxEventName = keyof typeof FluxEventContexts;
export const FLUX_EVENT_NAMES = Object.keys(FluxEventContexts) as FluxEventName[];

/** Events that the journal carries but the job's stored eventlog never holds. */
export const FLUX_JOURNAL_ONLY_EVENTS: ReadonlySet<string> = new Set(['annotations', 'invalidate']);

/**
 * Events the job-manager may post with EVENT_NO_COMMIT (journal only, never in the KVS eventlog
 * nor in a later backlog), which the event itself does not tell apart from a committed one:
 * `annotations` (annotate.c, alloc.c) and `invalidate` (submit.c) always; `memo` only when
 * requested with `volatile` (`flux job memo --volatile`, annotate.c). flux-core
 * src/modules/job-manager/event.c: event_job_process_entry skips the commit for that flag.
 */
export const FLUX_MAYBE_UNCOMMITTED_EVENTS: ReadonlySet<string> = new Set([...FLUX_JOURNAL_ONLY_EVENTS, 'memo']);

export type FluxEvent =
  | { [N in FluxEventName]: { known: true; name: N; context: z.infer<(typeof FluxEventContexts)[N]> } }[FluxEventName]
  | { known: false; name: string; context: Record<string, unknown> };

export type FluxEventParse = { ok: true; event: FluxEvent } | { ok: false; reason: string };

export function isFluxEventName(name: string): name is FluxEventName {
  return Object.hasOwn(FluxEventContexts, name);
}

/** Validates a known event's context; unknown names pass through as `{ known: false }`. */
export function parseFluxEvent(name: string, context: Record<string, unknown> | undefined): FluxEventParse {
  const ctx = context ?? {};
  if (!isFluxEventName(name)) return { ok: true, event: { known: false, name, context: ctx } };
  const parsed = FluxEventContexts[name].safeParse(ctx);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'context'}: ${i.message}`).join('; ');
    return { ok: false, reason: `flux event "${name}" has a bad context: ${why}` };
  }
  return { ok: true, event: { known: true, name, context: parsed.data } as FluxEvent };
}

/** One event as the job-manager journal (and `flux job eventlog`) spells it. */
export const FluxJournalEventSchema = z.object({
  timestamp: z.number().finite(),
  name: z.string().min(1),
  context: z.record(z.string(), z.unknown()).optional(),
});
export type FluxJournalEvent = z.infer<typeof FluxJournalEventSchema>;

/** `raw` of a Flux envelope. */
export const FluxRawSchema = z.object({
  id: z.string(),
  event: FluxJournalEventSchema,
  jobspec: z.record(z.string(), z.unknown()).optional(),
  R: z.record(z.string(), z.unknown()).optional(),
});
export type FluxRaw = z.infer<typeof FluxRawSchema>;

/** Flux urgency values with a meaning of their own. */
export const FLUX_URGENCY = { HOLD: 0, DEFAULT: 16, EXPEDITE: 31 } as const;
