/**
 * scribe/flux/journal.ts against the real flux-core 0.88 journals: exact 64-bit ids, and seqs
 * that are the same whether a job's events arrived live or in a later `full` backlog.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EnvelopeSchema } from '../../schemas/envelope/index.js';
import { FLUX_JOURNAL_ONLY_EVENTS, FluxRawSchema, parseFluxEvent, type FluxRaw } from '../../schemas/flux/events.js';
import { JobscribeError } from '../../schemas/errors.js';
import { JournalSequencer, SEQ_SLOT, parseJournalLine, type JournalEntry } from '../../scribe/flux/journal.js';
import { timeSlot } from '../../scribe/flux/identity.js';
import { toEnvelope } from '../../scribe/envelope.js';
import type { SourceEvent } from '../../scribe/source.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FLUX_DIR = join(REPO_ROOT, 'test', 'fixtures', 'flux');
const fixtureText = (name: string): string => {
  const data = readFileSync(join(FLUX_DIR, name));
  return (name.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8');
};
const journal = (name: string): JournalEntry[] => fixtureText(name).split('\n').filter(Boolean).map(parseJournalLine);
const sequence = (entries: JournalEntry[], seq = new JournalSequencer()): SourceEvent[] =>
  entries.flatMap((e) => seq.push(e));
const byJob = (events: SourceEvent[]): Map<string, SourceEvent[]> => {
  const out = new Map<string, SourceEvent[]>();
  for (const e of events) out.set(e.job_id, [...(out.get(e.job_id) ?? []), e]);
  return out;
};
const rawOf = (e: SourceEvent) => e.raw as FluxRaw;
const oracleIds = (JSON.parse(fixtureText('jobs.json')) as { jobs: { id: number }[] }).jobs.map((j) => String(j.id));

describe('parseJournalLine', () => {
  it('reads the backlog sentinel', () => {
    expect(parseJournalLine('{"id":-1,"events":[]}')).toEqual({ id: '-1', events: [] });
  });

  it('keeps job ids above 2^53 exact', () => {
    for (const id of ['18446744073709551615', '9007199254740993']) {
      const line = `{"id":${id},"events":[{"timestamp":1795326693.5,"name":"submit","context":{"userid":0,"urgency":16}}]}`;
      expect(parseJournalLine(line).id).toBe(id);
      expect(String((JSON.parse(line) as { id: number }).id)).not.toBe(id); // what a plain JSON.parse does
    }
  });

  it('finds the top-level id wherever it is, never a nested or quoted one', () => {
    const line =
      '{ "events" : [{"timestamp":1,"name":"memo","context":{"id":5,"note":"\\"id\\":7"}}],' +
      ' "jobspec":{"id":6}, "id" : 9007199254740993 }';
    const entry = parseJournalLine(line);
    expect(entry.id).toBe('9007199254740993');
    expect(entry.events[0]!.context).toEqual({ id: 5, note: '"id":7' });
    expect(entry.jobspec).toEqual({ id: 6 });
  });

  it('rejects malformed responses with a flux-journal error', () => {
    const bad = [
      'not json',
      '{"events":[]}',
      '{"id":1.5,"events":[]}',
      '{"id":"12","events":[]}',
      '{"id":18446744073709551616,"events":[]}',
      '{"id":12}',
      '{"id":12,"events":[{"timestamp":1}]}',
      '{"id":12,"events":[{"timestamp":1,"name":"submit"}],"R":[1]}',
      '{"id":12,"events":[]',
    ];
    for (const line of bad) {
      expect(() => parseJournalLine(line), line).toThrow(JobscribeError);
      expect(() => parseJournalLine(line), line).toThrow(/flux journal response/);
    }
  });

  it('parses every response of the real journals', () => {
    const live = journal('journal.jsonl');
    expect(live).toHaveLength(391);
    expect(live[0]).toEqual({ id: '-1', events: [] });
    const backlog = journal('journal-backlog.jsonl');
    expect(backlog.at(-1)).toEqual({ id: '-1', events: [] });
    expect(backlog.slice(0, -1).map((e) => e.id).sort()).toEqual([...oracleIds].sort());
    for (const name of ['journal-1000-real.jsonl.gz', 'journal-1000-mock.jsonl.gz']) {
      const ids = new Set(journal(name).map((e) => e.id));
      expect(ids.size, name).toBe(1001); // 1000 jobs and the sentinel
    }
  });
});

describe('JournalSequencer', () => {
  const live = sequence(journal('journal.jsonl'));

  it('numbers stored events i * SEQ_SLOT and journal-only ones in the gap after them, by their time', () => {
    const events = byJob(live).get('647969636352')!; // ok-echo
    const priorityTs = events.find((e) => e.name === 'priority')!.ts;
    const annotations = events.find((e) => e.name === 'annotations')!;
    expect(events.map((e) => [e.name, e.seq])).toEqual([
      ['submit', 0],
      ['validate', SEQ_SLOT],
      ['depend', 2 * SEQ_SLOT],
      ['priority', 3 * SEQ_SLOT],
      ['annotations', 3 * SEQ_SLOT + 2 * timeSlot(annotations.ts - priorityTs) + 2],
      ['alloc', 4 * SEQ_SLOT],
      ['start', 5 * SEQ_SLOT],
      ['finish', 6 * SEQ_SLOT],
      ['release', 7 * SEQ_SLOT],
      ['free', 8 * SEQ_SLOT],
      ['clean', 9 * SEQ_SLOT],
    ]);
    const invalidated = byJob(live).get('752860790784')!;
    expect(invalidated.map((e) => [e.name, e.seq])).toEqual([
      ['submit', 0],
      ['dependency-add', SEQ_SLOT],
      ['invalidate', SEQ_SLOT + 2 * timeSlot(invalidated[2]!.ts - invalidated[1]!.ts) + 2],
    ]);
  });

  it('numbers a memo in the gap (odd offsets) whether or not it was committed: the anchors do not move', () => {
    const job = (memo: boolean): JournalEntry[] =>
      [
        ['submit', 10, { userid: 0, urgency: 16, flags: 0 }],
        ['validate', 10.1],
        ...(memo ? [['memo', 10.15, { note: 'volatile or not' }] as const] : []),
        ['depend', 10.2],
        ['priority', 10.3, { priority: 16 }],
      ].map(([name, timestamp, context]) => ({ id: '5', events: [{ name, timestamp, ...(context && { context }) }] }) as JournalEntry);
    const withMemo = sequence(job(true));
    const without = sequence(job(false));
    expect(withMemo.filter((e) => e.name !== 'memo').map((e) => [e.name, e.seq])).toEqual(without.map((e) => [e.name, e.seq]));
    const memo = withMemo.find((e) => e.name === 'memo')!;
    expect(memo.seq).toBe(SEQ_SLOT + 2 * timeSlot(10.15 - 10.1) + 1);
    expect(memo.seq % 2).toBe(1);
  });

  it('gives every job strictly increasing seqs and forgets jobs once they end', () => {
    const seq = new JournalSequencer();
    const events = sequence(journal('journal.jsonl'), seq);
    expect(events).toHaveLength(live.length);
    for (const [id, evs] of byJob(events)) {
      for (let i = 1; i < evs.length; i++) expect(evs[i]!.seq, id).toBeGreaterThan(evs[i - 1]!.seq);
    }
    expect(seq.activeJobs).toBe(0);
  });

  it('puts the jobspec only on submit and R only on alloc', () => {
    for (const events of [live, sequence(journal('journal-backlog.jsonl'))]) {
      for (const e of events) {
        const raw = rawOf(e);
        expect(FluxRawSchema.safeParse(raw).success).toBe(true);
        expect(raw.id).toBe(e.job_id);
        expect(raw.event.name).toBe(e.name);
        expect(raw.jobspec !== undefined, `${e.job_id} ${e.name}`).toBe(e.name === 'submit');
        expect(raw.R !== undefined, `${e.job_id} ${e.name}`).toBe(e.name === 'alloc');
      }
    }
  });

  it('gives a job the same seqs live and in a later backlog (a restart republishes identities)', () => {
    const backlog = byJob(sequence(journal('journal-backlog.jsonl')));
    const liveByJob = byJob(live);
    expect([...backlog.keys()].sort()).toEqual([...oracleIds].sort());
    const key = (e: SourceEvent) => [e.seq, e.name, e.ts, e.context];
    for (const [id, events] of backlog) {
      const stored = liveByJob.get(id)!.filter((e) => !FLUX_JOURNAL_ONLY_EVENTS.has(e.name));
      expect(events.map(key), id).toEqual(stored.map(key));
    }
  });

  it('numbers a backlog replayed into the same sequencer exactly as before', () => {
    const seq = new JournalSequencer();
    const first = sequence(journal('journal-backlog.jsonl'), seq);
    const again = sequence(journal('journal-backlog.jsonl'), seq);
    expect(again.map((e) => [e.job_id, e.seq])).toEqual(first.map((e) => [e.job_id, e.seq]));
  });

  it('drops events of a job it never saw submitted (the journal lost data)', () => {
    const seq = new JournalSequencer();
    expect(seq.push(parseJournalLine('{"id":99,"events":[{"timestamp":1,"name":"start"}]}'))).toEqual([]);
    expect(seq.activeJobs).toBe(0);
  });

  it('names the submitter on every event of the job', () => {
    const events = sequence(journal('journal.jsonl'), new JournalSequencer((uid) => (uid === 0 ? 'root' : undefined)));
    expect(events.every((e) => e.user === 'root')).toBe(true);
    expect(live.every((e) => e.user === undefined)).toBe(true);
  });

  it('yields valid envelopes whose contexts match the Flux event schemas', () => {
    const scribe = { id: 'test', version: '0.0.0' };
    for (const ev of live) {
      const env = toEnvelope({ cluster: 'fluke', scheduler: 'flux', scribe }, ev, 1795326800);
      expect(EnvelopeSchema.safeParse(env).success, `${ev.job_id} ${ev.name}`).toBe(true);
      expect(parseFluxEvent(env.name, env.context).ok, `${ev.job_id} ${ev.name}`).toBe(true);
    }
  });
});
