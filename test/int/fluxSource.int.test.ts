/**
 * The Flux source (scribe/flux) against a fake broker on a real unix socket speaking the real
 * framing: replay of the captured journal bytes, the real 35-job and 1000-job journals, stable
 * (job_id, seq) across disconnects, broker restarts and source restarts from a checkpoint,
 * actions with the exact payloads flux-core expects, errors, and the ssh:// transport.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectFlux } from '../../scribe/flux/connector.js';
import { FluxError } from '../../scribe/flux/errors.js';
import { decodeResponse, encodeRequest, parseResponse } from '../../scribe/flux/protocol/rpc.js';
import { createFluxSource, type FluxSourceOptions, type FluxSourceProgress } from '../../scribe/flux/source.js';
import { JournalSequencer, parseJournalLine, SEQ_SLOT } from '../../scribe/flux/journal.js';
import { timeSlot } from '../../scribe/flux/identity.js';
import { mapUserResolver } from '../../scribe/flux/users.js';
import type { SourceEvent } from '../../scribe/source.js';
import { FakeFluxBroker, type FakeFluxBrokerOptions } from '../support/fakeFluxBroker.js';
import { HELD, MEMO_JOURNAL, MEMO_RESTART_AFTER, RUNS } from '../support/fluxMemoJournal.js';
import { toEnvelope } from '../../scribe/envelope.js';
import { evolveJob, type JobRow } from '../../projector/tables/jobs.js';
import { fluxFixture } from '../support/fixtures.js';

const lines = (text: string) => text.split('\n').filter((l) => l.trim());
const gz = (name: string) => lines(gunzipSync(readFileSync(fluxFixture.path(name))).toString('utf8'));
const LIVE35 = lines(fluxFixture('journal.jsonl'));
const BACKLOG35 = lines(fluxFixture('journal-backlog.jsonl'));
const REAL1000 = gz('journal-1000-real.jsonl.gz');
const MOCK1000 = gz('journal-1000-mock.jsonl.gz');
const JOURNAL_ONLY = new Set(['annotations', 'invalidate']);
const FLOATING = new Set([...JOURNAL_ONLY, 'memo']);

let dir: string;
let sockN = 0;
const brokers: FakeFluxBroker[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'jobscribe-flux-'));
});
afterEach(async () => {
  for (const b of brokers.splice(0)) await b.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function broker(opts: Omit<FakeFluxBrokerOptions, 'path'>): Promise<FakeFluxBroker> {
  const b = await FakeFluxBroker.start({ path: join(dir, `b${sockN++}.sock`), ...opts });
  brokers.push(b);
  return b;
}

const key = (e: Pick<SourceEvent, 'job_id' | 'seq'>) => `${e.job_id}:${e.seq}`;
const ident = (e: SourceEvent) => `${e.job_id}:${e.seq}:${e.name}:${e.ts}`;

/**
 * What a journal should produce: (job_id, seq, name, ts) per event, by the documented rule
 * (scribe/flux/identity.ts): anchors a * SEQ_SLOT; annotations / invalidate / memo in the gap
 * after the anchor before them, at 2·timeSlot(ts − anchor ts) + 2 (journal-only) or + 1 (memo).
 * `stored` = what the job's eventlog (and a backlog) holds: everything but journal-only events
 * and the lines marked "noCommit".
 */
function expected(journal: string[]): { all: string[]; stored: string[]; jobs: Set<string> } {
  const anchors = new Map<string, { a: number; ts: number }>();
  const all: string[] = [];
  const stored: string[] = [];
  const jobs = new Set<string>();
  for (const l of journal) {
    const id = /^\{"id":(-?\d+)/.exec(l)![1]!;
    if (id === '-1') continue;
    jobs.add(id);
    const noCommit = l.includes('"noCommit":true');
    for (const ev of (JSON.parse(l) as { events: { name: string; timestamp: number }[] }).events) {
      const prev = anchors.get(id);
      let seq: number;
      if (FLOATING.has(ev.name)) {
        const off = 2 * timeSlot(prev ? ev.timestamp - prev.ts : 0) + (ev.name === 'memo' ? 1 : 2);
        seq = Math.max(0, (prev?.a ?? 0) - 1) * SEQ_SLOT + off;
      } else {
        const a = prev?.a ?? 0;
        seq = a * SEQ_SLOT;
        anchors.set(id, { a: a + 1, ts: ev.timestamp });
      }
      const text = `${id}:${seq}:${ev.name}:${ev.timestamp}`;
      if (!JOURNAL_ONLY.has(ev.name) && !noCommit) stored.push(text);
      all.push(text);
    }
  }
  return { all, stored, jobs };
}

interface Collected {
  events: SourceEvent[];
  checkpoints: string[];
  progress: FluxSourceProgress[];
  logs: string[];
}

/** Runs a source until `until` holds (checked after each emit), then aborts it. */
async function collect(
  b: FakeFluxBroker,
  until: (c: Collected) => boolean,
  opts: { checkpoint?: string; source?: Partial<FluxSourceOptions>; timeoutMs?: number; uri?: string } = {},
): Promise<Collected> {
  const c: Collected = { events: [], checkpoints: [], progress: [], logs: [] };
  const ac = new AbortController();
  const source = createFluxSource({
    uri: opts.uri ?? `local://${b.path}`,
    users: mapUserResolver({ 0: 'root' }),
    reconnect: { initialMs: 10, maxMs: 100 },
    progressIntervalMs: 50,
    onProgress: (p) => c.progress.push(p),
    logger: (l) => c.logs.push(l),
    ...opts.source,
  });
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 20_000);
  try {
    await source.run({
      ...(opts.checkpoint !== undefined ? { checkpoint: opts.checkpoint } : {}),
      signal: ac.signal,
      emit: async (events, checkpoint) => {
        c.events.push(...events);
        c.checkpoints.push(checkpoint);
        if (until(c)) ac.abort();
      },
    });
  } finally {
    clearTimeout(timer);
    source.close();
  }
  return c;
}

const live = (c: Collected) => c.progress.some((p) => p.phase === 'live');

/** True once every one of `want` (idents) is among the events collected (plus `also`). */
function covers(want: string[], also: SourceEvent[] = []): (c: Collected) => boolean {
  const need = new Set(want);
  const found = new Set<string>();
  let at = 0;
  for (const e of also) if (need.has(ident(e))) found.add(ident(e));
  return (c) => {
    for (; at < c.events.length; at++) {
      const id = ident(c.events[at]!);
      if (need.has(id)) found.add(id);
    }
    return found.size === need.size;
  };
}

function expectNoDuplicates(events: SourceEvent[]): void {
  const seen = new Set<string>();
  for (const e of events) {
    expect(seen.has(key(e)), `duplicate ${key(e)} ${e.name}`).toBe(false);
    seen.add(key(e));
  }
}

function expectSeqIncreasingPerJob(events: SourceEvent[]): void {
  const last = new Map<string, number>();
  for (const e of events) {
    const prev = last.get(e.job_id);
    if (prev !== undefined) expect(e.seq, `${e.job_id} ${e.name}`).toBeGreaterThan(prev);
    last.set(e.job_id, e.seq);
  }
}

describe('flux source > replay of the captured journal bytes', () => {
  it('every event of the 2,038-response capture comes out once, with exact 64-bit ids', async () => {
    const bytes = gunzipSync(readFileSync(fluxFixture.path('wire/journal-full.bin.gz')));
    const b = await broker({ replay: bytes });
    const c = await collect(b, live);
    expect(live(c)).toBe(true);
    // what the capture holds, counted independently of the protocol code
    const text = bytes.toString('latin1');
    const submits = (text.match(/\{"timestamp":[0-9.]+,"name":"submit"/g) ?? []).length;
    const names = (text.match(/\{"timestamp":[0-9.]+,"name":"/g) ?? []).length;
    expect(c.events.filter((e) => e.name === 'submit')).toHaveLength(submits);
    expect(c.events).toHaveLength(names);
    expect(new Set(c.events.map((e) => e.job_id)).size).toBe(2037);
    expectNoDuplicates(c.events);
    expectSeqIncreasingPerJob(c.events);
    for (const e of c.events) expect(e.job_id).toMatch(/^[1-9]\d*$/);
    const p = c.progress.find((x) => x.phase === 'live')!;
    expect(p).toMatchObject({ backlogJobs: 2037, backlogEvents: names, backlogSkipped: 0 });
    expect(c.logs.some((l) => /backlog done: 2037 jobs/.test(l))).toBe(true);
    // the request it answered was exactly the captured one
    expect(b.requests[0]!.bytes.equals(readFileSync(fluxFixture.path('wire/journal-full.bin.request')))).toBe(true);
    // a finished job's events all name their user; submit carries jobspec, alloc carries R
    const submit = c.events.find((e) => e.name === 'submit')!;
    expect(submit.user).toBe('root');
    expect((submit.raw as { jobspec?: unknown }).jobspec).toBeDefined();
    expect((c.events.find((e) => e.name === 'alloc')!.raw as { R?: unknown }).R).toBeDefined();
  });
});

describe('flux source > real journals', () => {
  for (const [name, journal] of [
    ['1000-real', REAL1000],
    ['1000-mock', MOCK1000],
  ] as const) {
    it(`${name}: every event once, live, with stable (job_id, seq)`, async () => {
      const exp = expected(journal);
      const b = await broker({ journal });
      const c = await collect(b, (x) => x.events.length >= exp.all.length);
      expect(new Set(c.events.map((e) => e.job_id)).size).toBe(1000);
      expectNoDuplicates(c.events);
      expectSeqIncreasingPerJob(c.events);
      expect(c.events.map(ident)).toEqual(exp.all);
      expect(c.events.filter((e) => e.name === 'clean')).toHaveLength(1000);
      // journal.ts's JournalSequencer numbers the same journal identically
      const seq = new JournalSequencer((uid) => (uid === 0 ? 'root' : undefined));
      expect(c.events).toEqual(journal.map(parseJournalLine).flatMap((e) => seq.push(e)));
    });
  }

  it('35 jobs live: journal-only events interleave; the invalidated submission comes out too', async () => {
    const exp = expected(LIVE35);
    const b = await broker({ journal: LIVE35 });
    const c = await collect(b, (x) => x.events.length >= exp.all.length);
    expect(c.events.map(ident)).toEqual(exp.all);
    const ann = c.events.filter((e) => e.name === 'annotations');
    expect(ann).toHaveLength(32);
    for (const a of ann) expect(a.seq % SEQ_SLOT).toBeGreaterThan(0);
    const inval = c.events.filter((e) => e.job_id === '752860790784');
    expect(inval.map((e) => [e.name, e.seq])).toEqual([
      ['submit', 0],
      ['dependency-add', SEQ_SLOT],
      ['invalidate', SEQ_SLOT + 2 * timeSlot(inval[2]!.ts - inval[1]!.ts) + 2],
    ]);
  });

  it('the 35-job backlog gives the same (job_id, seq, name, ts) as the live journal for stored events', async () => {
    const fromBacklog = await collect(await broker({ backlog: BACKLOG35 }), live);
    const fromLive = await collect(await broker({ journal: LIVE35 }), (x) => x.events.length >= expected(LIVE35).all.length);
    const backlogJobs = new Set(fromBacklog.events.map((e) => e.job_id));
    expect(backlogJobs.size).toBe(35);
    const stored = fromLive.events.filter((e) => !JOURNAL_ONLY.has(e.name) && backlogJobs.has(e.job_id));
    expect(new Set(fromBacklog.events.map(ident))).toEqual(new Set(stored.map(ident)));
    expect(fromBacklog.events).toHaveLength(stored.length);
    // jobspec with submit and R with alloc, as live
    for (const e of fromBacklog.events) {
      const raw = e.raw as { id: string; jobspec?: unknown; R?: unknown };
      expect(raw.id).toBe(e.job_id);
      expect(raw.jobspec !== undefined).toBe(e.name === 'submit');
      if (raw.R !== undefined) expect(e.name).toBe('alloc');
    }
    expect(fromBacklog.events.filter((e) => (e.raw as { R?: unknown }).R).length).toBe(32);
  });
});

describe('flux source > disconnects, broker restarts, source restarts', () => {
  it('disconnect mid-backlog and mid-live: every event exactly once', async () => {
    const exp = expected(REAL1000);
    // 6,000 entries happened before the source connects: the backlog holds ~600 jobs
    const b = await broker({ journal: REAL1000, happened: 6000 });
    b.dropAfter(150, 400, 900, 2500);
    const done = covers(exp.stored);
    const c = await collect(b, (x) => done(x) && b.happened === b.total);
    expect(b.connections).toBeGreaterThanOrEqual(5);
    expectNoDuplicates(c.events);
    expectSeqIncreasingPerJob(c.events);
    const stored = new Set(exp.stored);
    const got = new Set(c.events.map(ident));
    // every stored event arrives (journal-only annotations that happened while disconnected are gone, by Flux's design)
    for (const s of stored) expect(got.has(s), s).toBe(true);
    for (const g of got) expect(exp.all.includes(g) || stored.has(g), g).toBe(true);
  });

  it('broker restart (socket gone for a while): reconnects with back-off, nothing lost', async () => {
    const exp = expected(MOCK1000);
    const b = await broker({ journal: MOCK1000, happened: 2000 });
    let restarted = false;
    const done = covers(exp.stored);
    const c = await collect(b, (x) => {
      if (!restarted && x.events.length > 3000) {
        restarted = true;
        void b.stop().then(() => setTimeout(() => void b.start(), 300));
      }
      return done(x) && b.happened === b.total;
    });
    expect(restarted).toBe(true);
    expect(c.logs.some((l) => /retrying in|reconnecting/.test(l))).toBe(true);
    expectNoDuplicates(c.events);
    const got = new Set(c.events.map(ident));
    for (const s of exp.stored) expect(got.has(s), s).toBe(true);
  });

  it('restart from the last checkpoint: nothing lost, no duplicates; from an older one: only identical duplicates', async () => {
    const exp = expected(REAL1000);
    const b = await broker({ journal: REAL1000, happened: 3000, autoAdvance: false });
    // first run: the backlog plus 2,000 live entries, then stop
    const first = await collect(b, (x) => {
      if (live(x) && b.happened === 3000) b.advance(2000);
      return b.happened === 5000 && x.events.length >= expected(REAL1000.slice(0, 5001)).all.length;
    });
    expectNoDuplicates(first.events);
    // events happen while the scribe is down
    b.advance(3000);
    const cp = first.checkpoints.at(-1)!;
    expect(JSON.parse(cp)).toMatchObject({ v: 1, jobs: expect.any(Array), done: expect.any(String) });
    const done = covers(exp.stored, first.events);
    const second = await collect(
      b,
      (x) => {
        if (live(x) && b.happened < b.total) b.advance();
        return done(x) && b.happened === b.total;
      },
      { checkpoint: cp },
    );
    // the second run's backlog skipped what the first published
    const p = second.progress.find((x) => x.phase === 'live')!;
    expect(p.backlogSkipped).toBeGreaterThan(0);
    const both = [...first.events, ...second.events];
    expectNoDuplicates(both);
    const got = new Set(both.map(ident));
    for (const s of exp.stored) expect(got.has(s), s).toBe(true);

    // a crash after publishing but before saving: restart from an older checkpoint
    const older = first.checkpoints[Math.floor(first.checkpoints.length / 2)]!;
    const third = await collect(b, live, { checkpoint: older });
    const byKey = new Map(both.map((e) => [key(e), ident(e)]));
    for (const e of third.events) expect(byKey.get(key(e)), key(e)).toBe(ident(e)); // duplicates are identical
    // and with no checkpoint at all: the whole backlog again, identical identities
    const fourth = await collect(b, live);
    expect(fourth.events.length).toBe(exp.stored.length);
    for (const e of fourth.events) expect(byKey.get(key(e)), key(e)).toBe(ident(e));
  });

  it('finished jobs are remembered only while the job-manager still reports them', async () => {
    const b = await broker({ journal: LIVE35 });
    const n = expected(LIVE35).all.length;
    const first = await collect(b, (x) => x.events.length >= n);
    const cp = JSON.parse(first.checkpoints.at(-1)!) as { jobs: unknown[]; done: string };
    expect(cp.jobs).toEqual([]); // every job finished
    expect(cp.done.split(',')).toHaveLength(36); // incl. the invalidated submission
    const second = await collect(b, live, { checkpoint: first.checkpoints.at(-1)! });
    expect(second.events).toEqual([]);
    const pruned = JSON.parse(second.checkpoints.at(-1)!) as { done: string };
    expect(pruned.done.split(',')).toHaveLength(35); // the invalidated job is not in the backlog
  });
});

describe('flux source > journal-only events (EVENT_NO_COMMIT) and event identity', () => {
  const scribeId = { id: 'test', version: '0' };
  /** The jobs rows a projector folds from these events, arrival order. */
  const fold = (events: SourceEvent[]): Map<string, JobRow> => {
    const rows = new Map<string, JobRow>();
    for (const ev of events) {
      const row = evolveJob(rows.get(ev.job_id), toEnvelope({ cluster: 'c', scheduler: 'flux', scribe: scribeId }, ev, 1795400100));
      if (row) rows.set(ev.job_id, row);
    }
    return rows;
  };
  const bothClean = (x: Collected) => x.events.filter((e) => e.name === 'clean').length === 2;

  it('a volatile memo, then a scribe restart: the next stored event (alloc, urgency release) is not skipped', async () => {
    const b = await broker({ journal: MEMO_JOURNAL, autoAdvance: false });
    const exp = expected(MEMO_JOURNAL);
    const before = expected(MEMO_JOURNAL.slice(0, MEMO_RESTART_AFTER + 1)).all.length;
    const first = await collect(b, (x) => {
      if (live(x) && b.happened === 0) b.advance(MEMO_RESTART_AFTER);
      return x.events.length >= before;
    });
    expect(first.events.filter((e) => e.name === 'memo')).toHaveLength(2); // both volatile memos, live
    b.advance(); // the rest happens while the scribe is down
    const second = await collect(b, bothClean, { checkpoint: first.checkpoints.at(-1)! });
    const both = [...first.events, ...second.events];
    expectNoDuplicates(both);
    // every committed event arrives, with the identity the documented rule gives it
    const got = new Set(both.map(ident));
    for (const s of exp.stored) expect(got.has(s), s).toBe(true);
    const names = (id: string) => both.filter((e) => e.job_id === id).map((e) => e.name);
    expect(names(RUNS)).toContain('alloc');
    expect(names(HELD)).toContain('urgency');
    const rows = fold(both);
    expect(rows.get(RUNS)).toMatchObject({ sched_state: 'INACTIVE', result: 'COMPLETED', nodes: ['fluxnode1'], t_start: 1795400001.1, t_end: 1795400002.1 });
    expect(rows.get(HELD)).toMatchObject({ sched_state: 'INACTIVE', result: 'COMPLETED', urgency: 16, nodes: ['fluxnode0'], t_start: 1795400001.5 });
  });

  it('a job read live and read again from the backlog after a lost checkpoint: same identities, same jobs row', async () => {
    const b = await broker({ journal: MEMO_JOURNAL });
    const exp = expected(MEMO_JOURNAL);
    const fromLive = await collect(b, bothClean);
    const fromBacklog = await collect(b, live); // no checkpoint: the whole backlog again
    // as a projector keyed on (job, seq) sees it: nothing replaced by another event, nothing doubled
    const byKey = new Map(fromLive.events.map((e) => [key(e), e.name]));
    for (const e of fromBacklog.events) expect(byKey.get(key(e)), `${key(e)} ${e.name}`).toBe(e.name);
    const merged = new Map([...fromLive.events, ...fromBacklog.events].map((e) => [key(e), e.name]));
    expect(merged).toEqual(byKey);
    expect([...merged.values()].filter((n) => n === 'clean')).toHaveLength(2);
    // the jobs rows folded from either reading (and from both, live first) are the same
    const a = fold(fromLive.events);
    const c = fold(fromBacklog.events);
    const both = fold([...fromLive.events, ...fromBacklog.events]);
    for (const id of [HELD, RUNS]) {
      expect(c.get(id), id).toEqual(a.get(id));
      expect(both.get(id), id).toEqual(a.get(id));
    }
    // and both are the documented rule's identities
    expect(fromLive.events.map(ident)).toEqual(exp.all);
    expect(new Set(fromBacklog.events.map(ident))).toEqual(new Set(exp.stored));
  });
});

describe('flux source > actions', () => {
  const HELD = '{"id":5358877671424,"events":[{"timestamp":1795327000.5,"name":"submit","context":{"userid":0,"urgency":0,"flags":0,"version":1}}]}';
  const request = (name: string) => readFileSync(fluxFixture.path(`wire/${name}`));

  async function act(b: FakeFluxBroker, req: Parameters<NonNullable<ReturnType<typeof createFluxSource>['act']>>[0], opts: Partial<FluxSourceOptions> = {}) {
    const s = createFluxSource({ uri: `local://${b.path}`, logger: () => {}, ...opts });
    try {
      return await s.act(req);
    } finally {
      s.close();
    }
  }

  it('cancel / urgency send exactly the captured request bytes and read the answers', async () => {
    const b = await broker({ backlog: [HELD] });
    expect(await act(b, { action: 'cancel', job_id: '5358877671424', args: { note: 'probe' } })).toEqual({ ok: true, job_id: '5358877671424' });
    expect(b.requests.at(-1)!.bytes.equals(request('raise-ok.bin.request'))).toBe(true);

    const u = await act(b, { action: 'urgency', job_id: '5358877671424', args: { urgency: 16 } });
    expect(u).toEqual({ ok: true, job_id: '5358877671424', detail: { urgency: 16, old_urgency: 0 } });
    expect(b.requests.at(-1)!.bytes.equals(request('urgency-ok.bin.request'))).toBe(true);

    const nf = await act(b, { action: 'cancel', job_id: '1', args: { note: 'x' } });
    expect(nf).toMatchObject({ ok: false, code: 'no_such_job' });
    expect((nf as { message: string }).message).toMatch(/^no such job 1\b/);
    expect(b.requests.at(-1)!.bytes.equals(request('raise-enoent.bin.request'))).toBe(true);
  });

  it('hold, release, signal, expedite: payloads as flux-core expects', async () => {
    const b = await broker({ backlog: [HELD] });
    const id = '5358877671424';
    expect(await act(b, { action: 'hold', job_id: id })).toMatchObject({ ok: true, detail: { urgency: 0 } });
    expect(await act(b, { action: 'release', job_id: id })).toMatchObject({ ok: true, detail: { urgency: 16, old_urgency: 0 } });
    expect(await act(b, { action: 'urgency', job_id: id, args: { urgency: 31 } })).toMatchObject({ ok: true, detail: { old_urgency: 16 } });
    expect(await act(b, { action: 'signal', job_id: id, args: { signum: 10 } })).toMatchObject({ ok: true });
    expect(await act(b, { action: 'signal', job_id: '99', args: { signum: 10 } })).toMatchObject({ ok: false, code: 'no_such_job' });
    const payloads = b.requests.map((r) => `${r.topic} ${r.payload!.toString('utf8')}`);
    expect(payloads).toEqual([
      'job-manager.urgency {"id":5358877671424,"urgency":0}\0',
      'job-manager.urgency {"id":5358877671424,"urgency":16}\0',
      'job-manager.urgency {"id":5358877671424,"urgency":31}\0',
      'job-manager.kill {"id":5358877671424,"signum":10}\0',
      'job-manager.kill {"id":99,"signum":10}\0',
    ]);
    // invalid arguments never reach the broker
    expect(await act(b, { action: 'urgency', job_id: id, args: { urgency: 32 } })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await act(b, { action: 'cancel' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await act(b, { action: 'cancel', job_id: 'nope' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(b.requests).toHaveLength(5);
  });

  it('ids above 2^53 and f58 ids are sent exactly', async () => {
    const b = await broker({});
    await act(b, { action: 'cancel', job_id: '18446744073709551615' });
    await act(b, { action: 'cancel', job_id: 'ƒ2' }); // f58 "2" = 1
    expect(b.requests.map((r) => r.payload!.toString('utf8'))).toEqual([
      '{"id":18446744073709551615,"type":"cancel","severity":0}\0',
      '{"id":1,"type":"cancel","severity":0}\0',
    ]);
  });

  it('submit signs the jobspec with mechanism "none" and returns the new id; a wrong signer is not permitted', async () => {
    const b = await broker({});
    const jobspec = {
      version: 1,
      resources: [{ type: 'slot', count: 1, with: [{ type: 'core', count: 1 }], label: 'task' }],
      tasks: [{ command: ['true'], slot: 'task', count: { per_slot: 1 } }],
      attributes: { system: { duration: 0, cwd: '/tmp' } },
    };
    const owner = userInfo().username; // the scribe connects as the instance owner (this process)
    const r = await act(b, { action: 'submit', args: { jobspec, urgency: 16 }, user: owner });
    expect(r).toEqual({ ok: true, job_id: '4000000000000', detail: { job_id: '4000000000000' } });
    const sent = JSON.parse(b.requests[0]!.payload!.toString('utf8').replace(/\0$/, '')) as { J: string; urgency: number; flags: number };
    expect(sent.urgency).toBe(16);
    expect(sent.flags).toBe(0);
    const [h, p, mech] = sent.J.split('.');
    expect(mech).toBe('none');
    expect(Buffer.from(h!, 'base64').toString('latin1')).toBe(`version\0i1\0userid\0i${process.getuid!()}\0mechanism\0snone\0`);
    expect(JSON.parse(Buffer.from(p!, 'base64').toString('utf8'))).toEqual(jobspec);

    // signed by a uid the broker does not see on the connection: job-ingest refuses (EPERM)
    const bad = await act(b, { action: 'submit', args: { jobspec }, user: 'signer' }, { submitUserid: 4242, users: mapUserResolver({ 4242: 'signer' }) });
    expect(bad).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(b.requests).toHaveLength(2);
    expect(await act(b, { action: 'submit', args: {}, user: owner })).toMatchObject({ ok: false, code: 'invalid' });
    // for anyone but the instance owner, or for no one, the scribe refuses before any RPC
    const guest = await act(b, { action: 'submit', args: { jobspec }, user: 'guest' });
    expect(guest).toMatchObject({ ok: false, code: 'not_permitted', message: expect.stringContaining('submit as guest: refused: this scribe connects to Flux as the instance owner, and flux-core') });
    expect(await act(b, { action: 'submit', args: { jobspec } })).toMatchObject({ ok: false, code: 'not_permitted', message: expect.stringContaining('no scheduler user') });
    expect(b.requests).toHaveLength(2);
  });

  it('ENOSYS: a clear "service missing" error, for actions and for the journal', async () => {
    const b = await broker({ fail: { 'job-manager.raise': 38, 'job-manager.events-journal': 38 } });
    const r = await act(b, { action: 'cancel', job_id: '5' });
    expect(r).toMatchObject({ ok: false, code: 'unsupported' });
    expect((r as { message: string }).message).toMatch(/service missing: job-manager\.raise is not loaded/);
    const ac = new AbortController();
    const s = createFluxSource({ uri: `local://${b.path}`, logger: () => {}, reconnect: { initialMs: 5, retries: 1 } });
    await expect(s.run({ signal: ac.signal, emit: async () => {} })).rejects.toThrow(/service missing \(ENOSYS\)/);
  });

  it('a request to a service that does not exist: the enosys capture, byte for byte', async () => {
    const b = await broker({});
    const conn = await connectFlux({ uri: `local://${b.path}` });
    const msg = await conn.request((tag) => encodeRequest({ topic: 'nosuch.service', payload: {}, matchtag: tag }));
    conn.close();
    expect(b.requests[0]!.bytes.equals(request('enosys.bin.request'))).toBe(true);
    const d = decodeResponse(msg);
    expect(d).toMatchObject({ errnum: 38, error: 'No service matching nosuch.service is registered' });
    expect(() => parseResponse(d)).toThrow(FluxError);
  });

  it('EPERM on the journal (not the instance owner) ends run() at once', async () => {
    const b = await broker({ fail: { 'job-manager.events-journal': 1 } });
    const s = createFluxSource({ uri: `local://${b.path}`, logger: () => {}, reconnect: { initialMs: 5 } });
    await expect(s.run({ signal: new AbortController().signal, emit: async () => {} })).rejects.toThrow(/not permitted \(EPERM\)/);
    expect(b.connections).toBe(1);
  });

  it('no broker at the socket: actions fail (not "no such job"), run() retries with back-off', async () => {
    const path = join(dir, 'nobody.sock');
    const s = createFluxSource({ uri: `local://${path}`, logger: () => {} });
    const r = await s.act({ action: 'cancel', job_id: '5' });
    expect(r).toMatchObject({ ok: false, code: 'failed' });
    expect((r as { message: string }).message).toContain(path);
    const logs: string[] = [];
    const s2 = createFluxSource({ uri: `local://${path}`, logger: (l) => logs.push(l), reconnect: { initialMs: 5, retries: 2 } });
    await expect(s2.run({ signal: new AbortController().signal, emit: async () => {} })).rejects.toMatchObject({
      name: 'FluxError',
      retriable: true,
    });
    expect(logs.filter((l) => /retrying in/.test(l))).toHaveLength(2);
  });

  it('a refused connection (auth byte ≠ 0) is reported with its errno', async () => {
    const b = await broker({ authByte: 1 });
    await expect(connectFlux({ uri: `local://${b.path}` })).rejects.toThrow(/refused the connection: not permitted \(EPERM\)/);
  });
});

describe('flux source > ssh:// transport', () => {
  it('runs `<ssh> host flux relay <path>` and speaks the same bytes over its stdin/stdout', async () => {
    // a stand-in for ssh: connects its stdin/stdout to the unix socket named by its last argument
    const relay = join(dir, 'fake-ssh.mjs');
    writeFileSync(
      relay,
      `import { createConnection } from 'node:net';
       import { writeFileSync } from 'node:fs';
       const args = process.argv.slice(2);
       writeFileSync(${JSON.stringify(join(dir, 'ssh-args.json'))}, JSON.stringify(args));
       const s = createConnection(args.at(-1));
       process.stdin.pipe(s); s.pipe(process.stdout);
       s.on('close', () => process.exit(0)); s.on('error', () => process.exit(255));`,
    );
    const b = await broker({ journal: LIVE35 });
    const n = expected(LIVE35).all.length;
    const ssh = { command: process.execPath, args: [relay] };
    const c = await collect(b, (x) => x.events.length >= n, { uri: `ssh://alice@login1${b.path}`, source: { ssh } });
    expect(c.events.map(ident)).toEqual(expected(LIVE35).all);
    expect(JSON.parse(readFileSync(join(dir, 'ssh-args.json'), 'utf8'))).toEqual(['alice@login1', 'flux', 'relay', b.path]);
    // actions too; the signing uid comes from the broker's security.owner
    const s = createFluxSource({ uri: `ssh://login1${b.path}`, ssh, logger: () => {} });
    const r = await s.act({ action: 'submit', args: { jobspec: '{"version":1}' }, user: userInfo().username });
    s.close();
    expect(r).toMatchObject({ ok: true });
    expect(b.requests.map((x) => x.topic)).toContain('attr.get');
  });
});
