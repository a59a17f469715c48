/** The MCP read cache (mcp/readCache.ts): freshness per read-model position and tag, sharing, bounds. */
import { describe, expect, it } from 'vitest';
import { jobTag, jobTags, ReadCache, ReadModelPosition, userTag } from '../../mcp/readCache.js';

function counter<T>(rows: T[]) {
  const calls = { n: 0 };
  const load = async () => {
    calls.n++;
    return rows.map((r) => ({ ...r }));
  };
  return { calls, load };
}

describe('ReadCache', () => {
  it('serves a query again until the projector writes, then runs it again', async () => {
    const pos = new ReadModelPosition();
    const cache = new ReadCache(pos);
    const { calls, load } = counter([{ n: 1 }]);
    const key = ReadCache.key('SELECT count() FROM jobs', {});
    expect(await cache.rows(key, undefined, load)).toEqual([{ n: 1 }]);
    expect(await cache.rows(key, undefined, load)).toEqual([{ n: 1 }]);
    expect(calls.n).toBe(1);
    pos.advance(jobTags([{ job_id: '7', user: 'bob' }]));
    await cache.rows(key, undefined, load);
    expect(calls.n).toBe(2);
  });

  it('keeps a tagged entry while batches touch other jobs and users, drops it when one touches its tag', async () => {
    const pos = new ReadModelPosition();
    const cache = new ReadCache(pos);
    const job = counter([{ id: '42' }]);
    const mine = counter([{ id: '42' }]);
    const kJob = ReadCache.key('job', { job_id: '42' });
    const kMine = ReadCache.key('search', { scope_user: 'alice' });
    await cache.rows(kJob, jobTag('42'), job.load);
    await cache.rows(kMine, userTag('alice'), mine.load);
    pos.advance(jobTags([{ job_id: '9', user: 'bob' }]));
    pos.advance(jobTags([{ job_id: '10', user: 'carol' }]));
    await cache.rows(kJob, jobTag('42'), job.load);
    await cache.rows(kMine, userTag('alice'), mine.load);
    expect([job.calls.n, mine.calls.n]).toEqual([1, 1]);
    pos.advance(jobTags([{ job_id: '42', user: 'alice' }]));
    await cache.rows(kJob, jobTag('42'), job.load);
    await cache.rows(kMine, userTag('alice'), mine.load);
    expect([job.calls.n, mine.calls.n]).toEqual([2, 2]);
  });

  it('does not trust an answer whose query ran while a batch touching it landed', async () => {
    const pos = new ReadModelPosition();
    const cache = new ReadCache(pos);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let n = 0;
    const load = async () => {
      n++;
      if (n === 1) await gate; // the batch lands while the first query runs
      return [{ state: n === 1 ? 'old' : 'new' }];
    };
    const key = ReadCache.key('job', { job_id: '5' });
    const first = cache.rows(key, jobTag('5'), load);
    pos.advance(jobTags([{ job_id: '5', user: 'bob' }]));
    release();
    expect(await first).toEqual([{ state: 'old' }]);
    expect(await cache.rows(key, jobTag('5'), load)).toEqual([{ state: 'new' }]);
  });

  it('forgets what it cannot tell: a tagged entry older than the remembered batches is stale', async () => {
    const pos = new ReadModelPosition(2);
    const cache = new ReadCache(pos);
    const { calls, load } = counter([{ id: '1' }]);
    const key = ReadCache.key('job', { job_id: '1' });
    await cache.rows(key, jobTag('1'), load);
    for (let i = 0; i < 3; i++) pos.advance([jobTag('99')]);
    await cache.rows(key, jobTag('1'), load);
    expect(calls.n).toBe(2);
  });

  it('shares one query among identical calls in flight and keeps different parameters apart', async () => {
    const pos = new ReadModelPosition();
    const cache = new ReadCache(pos);
    let n = 0;
    const load = (user: string) => async () => {
      n++;
      await new Promise((r) => setTimeout(r, 10));
      return [{ user }];
    };
    const kA = ReadCache.key('search', { scope_user: 'alice' });
    const kB = ReadCache.key('search', { scope_user: 'bob' });
    const answers = await Promise.all([cache.rows(kA, undefined, load('alice')), cache.rows(kA, undefined, load('alice')), cache.rows(kB, undefined, load('bob'))]);
    expect(n).toBe(2);
    expect(answers.map((a) => a[0])).toEqual([{ user: 'alice' }, { user: 'alice' }, { user: 'bob' }]);
    expect(cache.stats).toMatchObject({ shared: 1, misses: 2 });
  });

  it('orders parameters in the key, and freezes the rows it hands out', async () => {
    expect(ReadCache.key('q', { a: 1, b: 2 })).toBe(ReadCache.key('q', { b: 2, a: 1 }));
    expect(ReadCache.key('q', { a: 1 })).not.toBe(ReadCache.key('q', { a: '1' }));
    const cache = new ReadCache(new ReadModelPosition());
    const rows = await cache.rows(ReadCache.key('q', {}), undefined, async () => [{ x: 1 }]);
    expect(Object.isFrozen(rows) && Object.isFrozen(rows[0])).toBe(true);
  });

  it('expires entries by age and stays within its entry and row bounds', async () => {
    let t = 0;
    const pos = new ReadModelPosition();
    const cache = new ReadCache(pos, { ttlMs: 100, taggedTtlMs: 1000, maxEntries: 2, maxRows: 3, clock: () => t });
    const { calls, load } = counter([{ a: 1 }]);
    await cache.rows('k1', undefined, load);
    t = 101;
    await cache.rows('k1', undefined, load);
    expect(calls.n).toBe(2);
    await cache.rows('k2', undefined, load);
    await cache.rows('k3', undefined, load); // k1 (least recently used) goes
    expect(cache.stats.entries).toBe(2);
    await cache.rows('k1', undefined, load);
    expect(calls.n).toBe(5);
    const big = counter([{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
    await cache.rows('big', undefined, big.load);
    await cache.rows('big', undefined, big.load);
    expect(big.calls.n).toBe(2); // more rows than the whole cache holds: never kept
  });

  it('does not cache a failed query', async () => {
    const cache = new ReadCache(new ReadModelPosition());
    let n = 0;
    const load = async () => {
      if (++n === 1) throw new Error('store down');
      return [{ ok: true }];
    };
    await expect(cache.rows('k', undefined, load)).rejects.toThrow('store down');
    expect(await cache.rows('k', undefined, load)).toEqual([{ ok: true }]);
  });

  it('lets a list answer miss batches younger than its lag, never older ones', async () => {
    let t = 0;
    const pos = new ReadModelPosition(512, () => t);
    const cache = new ReadCache(pos, { clock: () => t });
    const { calls, load } = counter([{ pending: 3 }]);
    await cache.rows('queue', undefined, load, 1000);
    t = 100;
    pos.advance(jobTags([{ job_id: '1', user: 'bob' }]));
    t = 900; // the batch is 800 ms old: tolerated
    await cache.rows('queue', undefined, load, 1000);
    expect(calls.n).toBe(1);
    t = 1101; // now older than the lag: the answer must include it
    await cache.rows('queue', undefined, load, 1000);
    expect(calls.n).toBe(2);
    t = 1200;
    pos.advance(jobTags([{ job_id: '2', user: 'bob' }]));
    await cache.rows('queue', undefined, load); // no lag: the new batch counts at once
    expect(calls.n).toBe(3);
  });

  it('past the refresh age serves the answer in hand and queries again in the background; past the lag it waits', async () => {
    let t = 0;
    const pos = new ReadModelPosition(512, () => t);
    const cache = new ReadCache(pos, { clock: () => t });
    let n = 0;
    let release: (() => void) | undefined;
    const load = async () => {
      const mine = ++n;
      if (mine === 2) await new Promise<void>((r) => (release = r));
      return [{ answer: mine }];
    };
    expect(await cache.rows('queue', undefined, load, 2000, 1000)).toEqual([{ answer: 1 }]);
    pos.advance([jobTag('1')]);
    t = 1500; // the batch is 1.5 s old: past the refresh age, within the lag
    expect(await cache.rows('queue', undefined, load, 2000, 1000)).toEqual([{ answer: 1 }]);
    expect(n).toBe(2); // the refresh runs
    expect(await cache.rows('queue', undefined, load, 2000, 1000)).toEqual([{ answer: 1 }]);
    expect(n).toBe(2); // joined, not started again
    release!();
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.rows('queue', undefined, load, 2000, 1000)).toEqual([{ answer: 2 }]);
    pos.advance([jobTag('2')]);
    t = 4000; // 2.5 s: past the lag, the caller waits for the new answer
    expect(await cache.rows('queue', undefined, load, 2000, 1000)).toEqual([{ answer: 3 }]);
  });

  it('a failing background refresh leaves the answer in hand and raises nothing', async () => {
    let t = 0;
    const pos = new ReadModelPosition(512, () => t);
    const cache = new ReadCache(pos, { clock: () => t });
    let n = 0;
    const load = async () => {
      if (++n === 2) throw new Error('store down');
      return [{ answer: n }];
    };
    await cache.rows('q', undefined, load, 2000, 1000);
    pos.advance([jobTag('1')]);
    t = 1500;
    expect(await cache.rows('q', undefined, load, 2000, 1000)).toEqual([{ answer: 1 }]);
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.rows('q', undefined, load, 2000, 1000)).toEqual([{ answer: 1 }]);
    expect(n).toBe(3); // tried again
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.rows('q', undefined, load, 2000, 1000)).toEqual([{ answer: 3 }]);
  });
});
