/**
 * The projector's job-state cache across ownership changes, pure: projector A
 * folds the first events of a job, B folds the next ones (alloc, start) and dies, A gets the
 * partition back. A must not fold the rest onto its cached state: the cache refuses it (a gap in
 * the partition's offsets), A folds onto the stored row, and the row equals the uninterrupted
 * fold. Real flux-core journal events, whose seqs are sparse (i * SEQ_SLOT): the gap is found on
 * log positions, a seq test could not tell it from the numbering.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../schemas/envelope/index.js';
import type { Batch, LogRecord } from '../../log/eventLog.js';
import { JobStateCache } from '../../projector/jobCache.js';
import { deriveStates, firstSeqs, jobKey, projectEvents } from '../../projector/project.js';
import type { JobRow } from '../../projector/tables/jobs.js';
import { JournalSequencer, SEQ_SLOT, parseJournalLine } from '../../scribe/flux/journal.js';
import { toEnvelope } from '../../scribe/envelope.js';

const FLUX_DIR = join(fileURLToPath(new URL('../../', import.meta.url)), 'test', 'fixtures', 'flux');
const ORIGIN = { cluster: 'fluke', scheduler: 'flux' as const, scribe: { id: 'test', version: '0.0.0' } };
const TOPIC = 'jobscribe.fluke.events';

/** The events of the first job of the real journal that ran (has an alloc and a start). */
function oneJob(): Envelope[] {
  const text = gunzipSync(readFileSync(join(FLUX_DIR, 'journal-1000-real.jsonl.gz'))).toString('utf8');
  const seq = new JournalSequencer();
  const all = text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => seq.push(parseJournalLine(line)))
    .map((ev) => toEnvelope(ORIGIN, ev, 1795326800));
  const byJob = new Map<string, Envelope[]>();
  for (const e of all) byJob.set(e.job_id, [...(byJob.get(e.job_id) ?? []), e]);
  const ran = [...byJob.values()].find((es) => es.some((e) => e.name === 'alloc') && es.some((e) => e.name === 'start') && es.at(-1)!.name === 'clean');
  if (!ran) throw new Error('no job of the fixture ran');
  return ran;
}

/** The events at consecutive offsets from `first` of one partition, as a batch. */
function batchOf(events: Envelope[], first: number): { batch: Batch; events: { envelope: Envelope; record: LogRecord }[] } {
  const records = events.map((envelope, i) => ({
    envelope,
    record: { topic: TOPIC, partition: 2, offset: BigInt(first + i), key: `${envelope.cluster}:${envelope.job_id}`, value: '', headers: {}, timestamp: 0 },
  }));
  const batch: Batch = {
    topic: TOPIC,
    partition: 2,
    records: records.map((r) => r.record),
    firstOffset: BigInt(first),
    lastOffset: BigInt(first + events.length - 1),
    highWatermark: BigInt(first + events.length),
  };
  return { batch, events: records };
}

/** One projector's step: prior from the cache, else from `stored`; fold; cache the result. */
function step(cache: JobStateCache, events: Envelope[], first: number, stored: ReadonlyMap<string, JobRow>): { jobs: Map<string, JobRow>; cacheHit: boolean } {
  const { batch, events: evs } = batchOf(events, first);
  const run = cache.beginBatch(batch);
  const key = jobKey(events[0]!.cluster, events[0]!.job_id);
  const hit = cache.get(key, batch);
  const prior = new Map<string, JobRow>();
  const fromStore = stored.get(key);
  if (hit) prior.set(key, hit);
  else if (fromStore) prior.set(key, fromStore);
  const { jobs } = projectEvents(evs, prior);
  cache.endBatch(batch, run, jobs);
  return { jobs, cacheHit: hit !== undefined };
}

describe('job-state cache across a partition moving between projectors', () => {
  const job = oneJob();
  const key = jobKey(job[0]!.cluster, job[0]!.job_id);
  const truth = projectEvents(batchOf(job, 0).events, new Map()).jobs.get(key)!;
  // A folds up to before the alloc, B folds the alloc and the start, A the rest.
  const alloc = job.findIndex((e) => e.name === 'alloc');
  const start = job.findIndex((e) => e.name === 'start');

  it('the journal job is one whose seqs are not dense and that ran', () => {
    expect(job.some((e) => e.seq % SEQ_SLOT !== 0 || e.seq > job.length)).toBe(true);
    expect(alloc).toBeGreaterThan(0);
    expect(start).toBeGreaterThan(alloc);
    expect(truth.nodes.length).toBeGreaterThan(0);
    expect(truth.t_start).not.toBeNull();
    expect(truth.t_end).not.toBeNull();
  });

  it('refuses the stale cached state after another member folded the events between', () => {
    const a = new JobStateCache();
    const b = new JobStateCache();
    const store = new Map<string, JobRow>(); // the `jobs` table: last written row per job
    const write = (jobs: Map<string, JobRow>) => jobs.forEach((row, k) => store.set(k, row));

    write(step(a, job.slice(0, alloc), 0, store).jobs);
    const onB = step(b, job.slice(alloc, start + 1), alloc, store);
    expect(onB.cacheHit).toBe(false);
    write(onB.jobs);
    // A gets the partition back at the offset after B's last commit.
    const back = step(a, job.slice(start + 1), start + 1, store);
    expect(back.cacheHit, 'cached state from before the gap is not used').toBe(false);
    expect(back.jobs.get(key)).toEqual(truth);

    // The defect: folding onto A's cached state loses B's alloc and start.
    const stale = projectEvents(batchOf(job.slice(0, alloc), 0).events, new Map()).jobs;
    const wrong = projectEvents(batchOf(job.slice(start + 1), start + 1).events, stale).jobs.get(key)!;
    expect(wrong.nodes).toEqual([]);
    expect(wrong.t_start).toBeNull();
    expect(wrong).not.toEqual(truth);
  });

  it('keeps trusting its cache while it saw every record, re-deliveries included', () => {
    const a = new JobStateCache();
    const none = new Map<string, JobRow>();
    step(a, job.slice(0, alloc), 0, none);
    // A re-delivery of the last records (a commit lost in a rebalance) continues the run.
    expect(step(a, job.slice(alloc - 1, start + 1), alloc - 1, none).cacheHit).toBe(true);
    const rest = step(a, job.slice(start + 1), start + 1, none);
    expect(rest.cacheHit).toBe(true);
    expect(rest.jobs.get(key)).toEqual(truth);
    expect(a.size, 'a finished job leaves the cache').toBe(0);
  });

  it('forgets everything on a group join, and states written while it happened', () => {
    const a = new JobStateCache();
    const none = new Map<string, JobRow>();
    step(a, job.slice(0, alloc), 0, none);
    a.clear();
    expect(step(a, job.slice(alloc, start + 1), alloc, none).cacheHit).toBe(false);

    const c = new JobStateCache();
    const { batch, events } = batchOf(job.slice(0, alloc), 0);
    const run = c.beginBatch(batch);
    const { jobs } = projectEvents(events, new Map());
    c.clear(); // a rebalance while the batch was in flight
    c.endBatch(batch, run, jobs);
    expect(c.size).toBe(0);
  });

  it('re-derives a prior state from stored events below the batch, whatever the stored row says', () => {
    const rest = job.slice(start + 1);
    const below = firstSeqs(batchOf(rest, start + 1).events);
    // All events are stored (the live table has them): only those before the batch count.
    const prior = deriveStates([...job].reverse(), below);
    expect(prior.get(key)!.last_seq).toBe(job[start]!.seq);
    expect(projectEvents(batchOf(rest, start + 1).events, prior).jobs.get(key)).toEqual(truth);
  });
});
