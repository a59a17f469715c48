/**
 * A bounded cache of the hot read tools' query results (get_job's and job_timeline's job lookup,
 * search_jobs, queue_summary), keyed by the exact query (SQL text and every parameter, so
 * whatever limits what an identity may see — its scope user — is part of the key: one identity's
 * rows are never served for another's query) and by the read model's position.
 *
 * The position (`ReadModelPosition`) moves each time the in-process projector has written a
 * batch (deploy/up.ts wires it to the Projector's `batch` event) and remembers what the last
 * batches touched, as tags: `job:<id>` and `user:<name>` of every job row written. An entry is
 * fresh while:
 *   - no batch landed since the position its query started at, or, for an entry with a tag (a
 *     query that reads only rows carrying it: one job id, or one user's jobs, since a job's user
 *     is set by its submit event and never changes), no batch since then touched that tag;
 *     except that an entry may be asked to tolerate batches younger than `lagMs`: the list
 *     answers (search_jobs, queue_summary) reflect every batch that landed more than 2 s ago
 *     (LIST_LAG_MS), and are queried again in the background once they miss a batch older
 *     than 1 s (LIST_REFRESH_MS), callers meanwhile served the answer in hand. Every batch
 *     changes them (the simulator alone lands several a second) and chDB answers a couple of
 *     hundred queries a second, so without that bound they would be queried again for nearly
 *     every call, and callers would wait in line for the refreshes; point lookups (get_job)
 *     have no lag;
 *   - and it is younger than `ttlMs` (5 s; `taggedTtlMs`, 30 s, with a tag): that bounds
 *     staleness against writers this process does not see (a replay run by another process
 *     against a ClickHouse server; with the embedded engine there can be none).
 * The position is read before the query runs, so an entry never claims to be newer than it is.
 * Identical queries in flight share one ClickHouse query (the embedded engine answers one
 * query at a time, so 50 agents asking queue_summary at once wait for one answer, not fifty).
 *
 * Rows are frozen: callers share them and must build new objects from them (they do).
 * Without a position (the projector in another process) nothing is cached (server.ts).
 */

/** How far behind the projector the list answers (search_jobs, queue_summary) may be, ms. */
export const LIST_LAG_MS = 2000;
/** When a list answer misses a batch older than this, it is queried again (served meanwhile), ms. */
export const LIST_REFRESH_MS = 1000;

export const jobTag = (jobId: string): string => `job:${jobId}`;
export const userTag = (user: string): string => `user:${user}`;

/** The tags of the job rows a batch wrote. */
export function jobTags(rows: Iterable<{ job_id: string; user: string }>): Set<string> {
  const tags = new Set<string>();
  for (const r of rows) {
    tags.add(jobTag(r.job_id));
    tags.add(userTag(r.user));
  }
  return tags;
}

/** Where the read model stands: a counter of projected batches and what the recent ones touched. */
export class ReadModelPosition {
  #version = 0;
  /** The tags touched by the batch that moved the position to `version`, and when it landed; newest last. */
  readonly #recent: { version: number; at: number; tags: ReadonlySet<string> }[] = [];

  constructor(
    private readonly remember = 512,
    /** Milliseconds, for `touchedSince`'s lag. */
    private readonly clock: () => number = () => performance.now(),
  ) {}

  get version(): number {
    return this.#version;
  }

  /** A batch landed (its rows are queryable); `tags` say what it wrote (see `jobTags`). */
  advance(tags: Iterable<string>): void {
    this.#version += 1;
    this.#recent.push({ version: this.#version, at: this.clock(), tags: new Set(tags) });
    if (this.#recent.length > this.remember) this.#recent.splice(0, this.#recent.length - this.remember);
  }

  /**
   * Whether a batch after `version` touched `tag` (any batch: no tag) and landed more than
   * `lagMs` ago (true when that is too long ago to tell).
   */
  touchedSince(version: number, tag: string | undefined, lagMs = 0): boolean {
    if (version === this.#version) return false;
    const oldest = this.#recent[0];
    if (!oldest || oldest.version > version + 1) return true;
    const before = this.clock() - lagMs;
    for (let i = this.#recent.length - 1; i >= 0; i--) {
      const b = this.#recent[i]!;
      if (b.version <= version) break;
      if (b.at <= before && (tag === undefined || b.tags.has(tag))) return true;
    }
    return false;
  }
}

export interface ReadCacheOptions {
  /** Most entries kept (least recently used go first). Default 5,000. */
  maxEntries?: number;
  /** Most rows kept over all entries. Default 200,000. */
  maxRows?: number;
  /** Entries older than this are not served. Default 5,000 ms. */
  ttlMs?: number;
  /** The same for entries with a tag (invalidated by the batches that touch it). Default 30,000 ms. */
  taggedTtlMs?: number;
  /** Milliseconds, for the TTL. Default performance.now. */
  clock?: () => number;
}

interface Entry {
  rows: readonly unknown[];
  version: number;
  tag: string | undefined;
  at: number;
}

export interface ReadCacheStats {
  hits: number;
  misses: number;
  shared: number;
  entries: number;
}

export class ReadCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<readonly unknown[]>>();
  readonly #maxEntries: number;
  readonly #maxRows: number;
  readonly #ttlMs: number;
  readonly #taggedTtlMs: number;
  readonly #clock: () => number;
  #rows = 0;
  readonly stats: ReadCacheStats = { hits: 0, misses: 0, shared: 0, entries: 0 };

  constructor(
    readonly position: ReadModelPosition,
    options: ReadCacheOptions = {},
  ) {
    this.#maxEntries = options.maxEntries ?? 5000;
    this.#maxRows = options.maxRows ?? 200_000;
    this.#ttlMs = options.ttlMs ?? 5000;
    this.#taggedTtlMs = options.taggedTtlMs ?? 30_000;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** The cache key of a query: its text and all its parameters. */
  static key(sql: string, params: Record<string, unknown>): string {
    return JSON.stringify([sql, Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
  }

  #fresh(e: Entry, lagMs: number): boolean {
    if (this.#clock() - e.at > (e.tag === undefined ? this.#ttlMs : this.#taggedTtlMs)) return false;
    return !this.position.touchedSince(e.version, e.tag, lagMs);
  }

  /**
   * The rows of the query `key`, from the cache when fresh, else from `load` (shared with any
   * identical query in flight at the same position). `tag`: every row the query reads carries
   * it (`jobTag`, `userTag`), so batches that did not touch it leave the entry fresh. `lagMs`:
   * the answer may miss batches that landed less than this long ago (see the header).
   * `refreshAfterMs` (at most `lagMs`): past this, an answer still within `lagMs` is served
   * while the query runs again in the background, so callers do not wait for the refresh.
   */
  async rows<T>(key: string, tag: string | undefined, load: () => Promise<T[]>, lagMs = 0, refreshAfterMs = lagMs): Promise<readonly T[]> {
    const hit = this.#entries.get(key);
    if (hit && this.#fresh(hit, refreshAfterMs)) {
      this.stats.hits++;
      this.#touch(key, hit);
      return hit.rows as readonly T[];
    }
    const flight = this.#flight(key, tag, load);
    if (hit && this.#fresh(hit, lagMs)) {
      // still within the lag: answer now, and let the refresh run for the next callers
      this.stats.hits++;
      this.#touch(key, hit);
      flight.catch(() => undefined);
      return hit.rows as readonly T[];
    }
    return flight;
  }

  #touch(key: string, e: Entry): void {
    this.#entries.delete(key); // most recently used last
    this.#entries.set(key, e);
  }

  /** The query `key` at the current position: the one in flight, else a new one. */
  #flight<T>(key: string, tag: string | undefined, load: () => Promise<T[]>): Promise<readonly T[]> {
    const version = this.position.version;
    const flightKey = `${version} ${key}`;
    const flying = this.#inFlight.get(flightKey);
    if (flying) {
      this.stats.shared++;
      return flying as Promise<readonly T[]>;
    }
    this.stats.misses++;
    const at = this.#clock();
    const p = load().then((rows) => {
      const frozen = Object.freeze(rows.map((r) => (r !== null && typeof r === 'object' ? Object.freeze(r) : r)));
      this.#store(key, { rows: frozen, version, tag, at });
      return frozen;
    });
    this.#inFlight.set(flightKey, p);
    const clear = () => this.#inFlight.delete(flightKey);
    p.then(clear, clear);
    return p;
  }

  #store(key: string, e: Entry): void {
    const old = this.#entries.get(key);
    if (old) {
      // a slower query that started earlier must not replace a newer answer
      if (old.version > e.version) return;
      this.#rows -= old.rows.length;
      this.#entries.delete(key);
    }
    if (e.rows.length > this.#maxRows) return;
    this.#entries.set(key, e);
    this.#rows += e.rows.length;
    for (const [k, v] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#rows <= this.#maxRows) break;
      this.#entries.delete(k);
      this.#rows -= v.rows.length;
    }
    this.stats.entries = this.#entries.size;
  }
}
