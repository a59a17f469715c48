/**
 * The Flux job-manager journal (`job-manager.events-journal`) → SourceEvents. Pure, no I/O.
 *
 * `parseJournalLine` reads one response's JSON text, keeping the 64-bit job id exact: the id is
 * read as a decimal string straight from the text (JSON.parse would round it above 2^53).
 * `JournalSequencer` numbers each job's events with a `seq` that does not depend on how the
 * events arrived, by the rule of identity.ts (stored "anchor" events i * SEQ_SLOT; annotations,
 * invalidate and memos — which may be journal-only — in the gap after the anchor before them, at
 * an offset given by their own timestamp). A `full` backlog holds exactly the committed events,
 * so a job's events get the same seqs whether they arrived live or in a backlog after a restart.
 */
import { z } from 'zod';
import { JobIdSchema } from '../../schemas/ids.js';
import { FluxJournalEventSchema, type FluxJournalEvent, type FluxRaw } from '../../schemas/flux/events.js';
import { JobscribeError } from '../../schemas/errors.js';
import type { SourceEvent } from '../source.js';
import { newNumbering, numberEvent, SEQ_SLOT, type JobNumbering } from './identity.js';

export { SEQ_SLOT };

/** The id of the sentinel response that ends the backlog. */
export const SENTINEL_ID = '-1';

/** One journal response. */
export interface JournalEntry {
  /** Decimal job id, exact to 64 bits; "-1" for the sentinel. */
  id: string;
  events: FluxJournalEvent[];
  /** With submit (live) or with the job's whole backlog entry. */
  jobspec?: Record<string, unknown>;
  /** With alloc (live) or with the job's whole backlog entry. */
  R?: Record<string, unknown>;
}

const EntryBodySchema = z.object({
  events: z.array(FluxJournalEventSchema),
  jobspec: z.record(z.string(), z.unknown()).optional(),
  R: z.record(z.string(), z.unknown()).optional(),
});

/** Parses one journal response; throws a JobscribeError (code 'flux-journal') when malformed. */
export function parseJournalLine(text: string): JournalEntry {
  const id = topLevelMember(text, 'id');
  if (id === undefined || !/^-?\d+$/.test(id)) throw journalError('has no integer "id"', text);
  if (id !== SENTINEL_ID && !JobIdSchema.safeParse(id).success) throw journalError(`has a bad job id ${id}`, text);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw journalError(`is not JSON (${(err as Error).message})`, text);
  }
  const body = EntryBodySchema.safeParse(data);
  if (!body.success) throw journalError(`is malformed: ${body.error.issues[0]?.message ?? 'bad shape'}`, text);
  const entry: JournalEntry = { id, events: body.data.events };
  if (body.data.jobspec) entry.jobspec = body.data.jobspec;
  if (body.data.R) entry.R = body.data.R;
  return entry;
}

function journalError(what: string, text: string): JobscribeError {
  return new JobscribeError(`flux journal response ${what}: ${text.slice(0, 120)}`, { code: 'flux-journal' });
}

/**
 * The raw text of a member of the top-level JSON object (a number's digits as written), found by
 * scanning: strings are skipped whole and nested objects/arrays are not looked into.
 */
function topLevelMember(text: string, key: string): string | undefined {
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        const colon = /^\s*:\s*/.exec(text.slice(end + 1));
        if (name === key && colon) return /^[^\s,}\]]+/.exec(text.slice(end + 1 + colon[0].length))?.[0];
      }
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** Index of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length;
}

interface JobCursor {
  numbering: JobNumbering;
  user: string | undefined;
}

/**
 * Turns journal entries (live ones, or a `full` backlog's) into SourceEvents with stable seqs.
 * State: one cursor per job from its submit to its clean/invalidate. A job must be seen from its
 * submit (a backlog entry always starts there); events of a job first met mid-history mean the
 * journal lost data, and are dropped. A submit for a known job (a backlog replayed after a
 * reconnect) starts its numbering over, which yields the same seqs again.
 */
export class JournalSequencer {
  private readonly jobs = new Map<string, JobCursor>();

  /** `userName` resolves the submitter's uid (Flux events carry no user name). */
  constructor(private readonly userName: (userid: number) => string | undefined = () => undefined) {}

  /** Jobs between submit and clean. */
  get activeJobs(): number {
    return this.jobs.size;
  }

  /** The events of one journal response, in order (none for the sentinel). */
  push(entry: JournalEntry): SourceEvent[] {
    const out: SourceEvent[] = [];
    for (const event of entry.events) {
      const ev = this.next(entry, event);
      if (ev) out.push(ev);
    }
    return out;
  }

  private next(entry: JournalEntry, event: FluxJournalEvent): SourceEvent | undefined {
    if (event.name === 'submit') {
      const uid = event.context?.userid;
      this.jobs.set(entry.id, { numbering: newNumbering(), user: typeof uid === 'number' ? this.userName(uid) : undefined });
    }
    const job = this.jobs.get(entry.id);
    if (!job) return undefined;
    const { seq, state } = numberEvent(job.numbering, event.name, event.timestamp);
    job.numbering = state;
    if (event.name === 'clean' || event.name === 'invalidate') this.jobs.delete(entry.id);

    const raw: FluxRaw = { id: entry.id, event };
    if (event.name === 'submit' && entry.jobspec) raw.jobspec = entry.jobspec;
    if (event.name === 'alloc' && entry.R) raw.R = entry.R;
    const ev: SourceEvent = {
      job_id: entry.id,
      seq,
      name: event.name,
      ts: event.timestamp,
      ts_source: 'scheduler',
      context: event.context ?? {},
      raw,
    };
    if (job.user !== undefined) ev.user = job.user;
    return ev;
  }
}
