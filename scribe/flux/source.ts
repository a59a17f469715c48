/**
 * createFluxSource: the Flux job-manager journal as a SchedulerSource ('flux'), plus actions.
 *
 * run(): connects (local:// or ssh://, default FLUX_URI), streams `job-manager.events-journal`
 * with {"full":true} — the backlog (one response per job still in the job-manager, all its
 * stored events + jobspec + R), the sentinel {"id":-1}, then live events one per response —
 * and emits SourceEvents in batches with the tracker's checkpoint (see tracker.ts for the
 * stable seq scheme and the checkpoint format). When the connection drops or the broker
 * restarts it reconnects with exponential back-off (log/retry.ts) and requests the backlog
 * again; the tracker skips what was already published. EPERM (not the instance owner) and
 * other non-retriable errors end run() with a FluxError.
 *
 * act(): cancel / signal / hold / release / urgency / submit over the same connection (see
 * actions.ts), opening one on demand when run() is not active.
 *
 * Not here: bytes (protocol/), the socket (connector.ts), parsing a journal response (journal.ts),
 * seq and checkpoint (tracker.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { retry } from '../../log/retry.js';
import type { ActionRequest, ActionResult, SchedulerSource, SourceEvent, SourceRunOptions } from '../source.js';
import { executeFluxAction, fluxJobOwner } from './actions.js';
import { connectFlux, type FluxConnectOptions, type FluxConnection } from './connector.js';
import { parseJournalLine, SENTINEL_ID, type JournalEntry } from './journal.js';
import { FluxError } from './errors.js';
import * as attrGet from './protocol/attr-get/index.js';
import * as journal from './protocol/events-journal/index.js';
import { JournalTracker, type TrackerStats } from './tracker.js';
import { passwdUserResolver, type UserResolver } from './users.js';
import { parseFluxUri } from './uri.js';

export interface FluxSourceOptions {
  /** local:///run/flux/local or ssh://[user@]host/<socket path>; default FLUX_URI. */
  uri?: string;
  /** Cluster name, for log lines. */
  cluster?: string;
  /** ssh transport settings (command, extra args, remote flux path). */
  ssh?: FluxConnectOptions['ssh'];
  /** uid → user name (default: /etc/passwd, read once). */
  users?: UserResolver;
  /** Most events per emit (default 2000). */
  batchSize?: number;
  /** Reconnect back-off (default 200 ms doubling to 30 s, forever). */
  reconnect?: { initialMs?: number; maxMs?: number; retries?: number };
  connectTimeoutMs?: number;
  /** Per-action response timeout (default 30 s). */
  actionTimeoutMs?: number;
  /** uid that signs submitted jobspecs; default: this process's uid (local://) or the broker's security.owner (ssh://). */
  submitUserid?: number;
  /** Finished jobs remembered in the checkpoint so a restart skips them in the backlog (default 20,000). */
  maxFinishedJobs?: number;
  /** Pause reading from the broker when this many responses wait to be emitted (default 20000). */
  highWaterMark?: number;
  /** Progress (backlog, events/s), at most every `progressIntervalMs` (default 5000) and at phase changes. */
  onProgress?(p: FluxSourceProgress): void;
  progressIntervalMs?: number;
  /** One-line messages (connects, backlog done, rates, reconnects); default stderr. */
  logger?(line: string): void;
}

export interface FluxSourceProgress extends TrackerStats {
  uri: string;
  phase: 'connecting' | 'backlog' | 'live';
  /** Successful connections so far. */
  connects: number;
  /** Events emitted since run() started. */
  emitted: number;
  /** Emitted events per second over the last interval. */
  eventsPerSec: number;
  activeJobs: number;
  finishedJobs: number;
  /** Journal responses that could not be parsed (skipped). */
  malformed: number;
}

export interface FluxSource extends SchedulerSource {
  readonly scheduler: 'flux';
  readonly uri: string;
  act(request: ActionRequest): Promise<ActionResult>;
  /** Closes the connection kept for actions (run() closes its own when it ends). */
  close(): void;
}

/** Holds one connection for both the journal stream and actions; reconnects on demand. */
class ConnectionHolder {
  private conn: FluxConnection | undefined;
  private pending: Promise<FluxConnection> | undefined;
  constructor(private readonly opts: FluxConnectOptions) {}

  get(signal?: AbortSignal): Promise<FluxConnection> {
    if (this.conn && !this.conn.isClosed) return Promise.resolve(this.conn);
    this.pending ??= connectFlux(signal ? { ...this.opts, signal } : this.opts)
      .then((c) => (this.conn = c))
      .finally(() => (this.pending = undefined));
    return this.pending;
  }

  close(): void {
    this.conn?.close();
    this.conn = undefined;
  }
}

export function createFluxSource(options: FluxSourceOptions = {}): FluxSource {
  const target = parseFluxUri(options.uri ?? process.env.FLUX_URI);
  const uri = target.uri;
  const log = options.logger ?? ((line: string) => process.stderr.write(`jobscribe: ${line}\n`));
  const where = options.cluster ? `flux ${options.cluster} (${uri})` : `flux ${uri}`;
  const connectOpts: FluxConnectOptions = { uri };
  if (options.ssh) connectOpts.ssh = options.ssh;
  if (options.connectTimeoutMs) connectOpts.connectTimeoutMs = options.connectTimeoutMs;
  const holder = new ConnectionHolder(connectOpts);
  const users = options.users ?? passwdUserResolver();
  const batchSize = options.batchSize ?? 2000;
  const hwm = options.highWaterMark ?? 20_000;
  const initialMs = options.reconnect?.initialMs ?? 200;
  const progressEvery = options.progressIntervalMs ?? 5000;
  let ownerUid: number | undefined = options.submitUserid;

  async function submitUserid(): Promise<number> {
    if (ownerUid !== undefined) return ownerUid;
    if (target.kind === 'local' && process.getuid) return (ownerUid = process.getuid());
    const conn = await holder.get();
    const msg = await conn.request((tag) => attrGet.encode({ name: 'security.owner' }, tag), { timeoutMs: 30_000 });
    const v = attrGet.parse(attrGet.decode(msg));
    if (v === undefined || !/^\d+$/.test(v)) throw new FluxError('attr.get security.owner: no uid', { errnum: 2 });
    return (ownerUid = Number(v));
  }

  async function run({ checkpoint, signal, emit }: SourceRunOptions): Promise<void> {
    const tracker = JournalTracker.restore(checkpoint, {
      users,
      ...(options.maxFinishedJobs !== undefined ? { maxFinished: options.maxFinishedJobs } : {}),
    });
    const st = { connects: 0, emitted: 0, malformed: 0, lastAt: performance.now(), lastEmitted: 0, phase: 'connecting' as FluxSourceProgress['phase'] };
    const progress = (force: boolean) => {
      const now = performance.now();
      if (!force && now - st.lastAt < progressEvery) return;
      const secs = Math.max(1e-3, (now - st.lastAt) / 1000);
      const p: FluxSourceProgress = {
        ...tracker.stats,
        uri,
        phase: st.phase,
        connects: st.connects,
        emitted: st.emitted,
        eventsPerSec: (st.emitted - st.lastEmitted) / secs,
        activeJobs: tracker.size.active,
        finishedJobs: tracker.size.done,
        malformed: st.malformed,
      };
      st.lastAt = now;
      st.lastEmitted = st.emitted;
      options.onProgress?.(p);
      return p;
    };

    /** One connection's stream. Throws if it failed before delivering anything; returns otherwise. */
    async function session(): Promise<void> {
      st.phase = 'connecting';
      const conn = await holder.get(signal);
      st.connects++;
      tracker.beginBacklog();
      st.phase = 'backlog';
      progress(true);
      const t0 = performance.now();
      const queue: journal.JournalResponse[] = [];
      let head = 0;
      let paused = false;
      let wake: (() => void) | undefined;
      let lost: unknown;
      let finished = false;
      const poke = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const stream = conn.stream(
        (tag) => journal.encode({ full: true }, tag),
        (msg) => {
          queue.push(journal.decode(msg));
          if (!paused && queue.length - head > hwm) {
            paused = true;
            conn.pause();
          }
          poke();
        },
      );
      stream.done.then(
        () => ((finished = true), poke()),
        (err: unknown) => ((lost = err), (finished = true), poke()),
      );
      signal.addEventListener('abort', poke);
      let progressed = false;
      try {
        for (;;) {
          if (signal.aborted) {
            try {
              conn.send(journal.encodeCancel(stream.matchtag));
            } catch {
              /* already gone */
            }
            return;
          }
          if (head === queue.length) {
            if (finished) break;
            await new Promise<void>((r) => (wake = r));
            continue;
          }
          const batch: SourceEvent[] = [];
          let cut = false;
          let failure: { err: unknown } | undefined;
          while (head < queue.length && batch.length < batchSize && !cut) {
            let r: ReturnType<typeof journal.parse>;
            try {
              r = journal.parse(queue[head]!); // throws the FluxError of an error response
            } catch (err) {
              failure = { err }; // publish what came before it first
              break;
            }
            queue[head++] = undefined as never;
            if (r.kind === 'end') {
              finished = true;
              break;
            }
            let entry: JournalEntry;
            try {
              entry = parseJournalLine(r.text);
            } catch (err) {
              st.malformed++;
              log(`${where}: skipping a malformed journal response: ${(err as Error).message}`);
              continue;
            }
            progressed = true;
            if (entry.id === SENTINEL_ID) {
              const wasBacklog = tracker.stats.inBacklog;
              tracker.apply(entry);
              if (wasBacklog) {
                st.phase = 'live';
                const s = tracker.stats;
                log(
                  `${where}: backlog done: ${s.backlogJobs} jobs, ${s.backlogEvents} events (${s.backlogSkipped} already published) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
                );
                progress(true);
              }
              cut = true;
              continue;
            }
            for (const ev of tracker.apply(entry)) batch.push(ev);
          }
          if (head === queue.length) {
            queue.length = 0;
            head = 0;
          } else if (head > 4096) {
            queue.splice(0, head);
            head = 0;
          }
          if (batch.length > 0 || cut) {
            await emit(batch, tracker.checkpoint());
            st.emitted += batch.length;
          }
          if (failure) throw failure.err;
          if (paused && queue.length - head < hwm / 2) {
            paused = false;
            conn.resume();
          }
          const p = progress(false);
          if (p && st.phase === 'live') log(`${where}: ${Math.round(p.eventsPerSec)} events/s, ${p.activeJobs} active jobs`);
        }
      } catch (err) {
        holder.close();
        if (progressed && err instanceof FluxError && err.retriable) {
          log(`${where}: journal stream failed: ${err.message}; reconnecting`);
          return;
        }
        throw err;
      } finally {
        signal.removeEventListener('abort', poke);
      }
      // The stream ended without our cancel: connection lost, or the broker ended it.
      holder.close();
      const why = lost instanceof Error ? lost : FluxError.connection(`${where}: the journal stream ended`);
      if (progressed) {
        log(`${where}: ${why.message}; reconnecting`);
        return;
      }
      throw why;
    }

    try {
      while (!signal.aborted) {
        await retry(session, {
          signal,
          initialMs,
          maxMs: options.reconnect?.maxMs ?? 30_000,
          ...(options.reconnect?.retries !== undefined ? { retries: options.reconnect.retries } : {}),
          what: `${where} journal`,
          onRetry: (err, attempt, delay) =>
            log(`${where}: ${(err as Error).message} (attempt ${attempt}); retrying in ${Math.round(delay)} ms`),
        });
        if (!signal.aborted) await sleep(initialMs, undefined, { signal }).catch(() => {});
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      holder.close();
    }
  }

  return {
    scheduler: 'flux',
    uri,
    run,
    act: (request) =>
      executeFluxAction(request, {
        connection: () => holder.get(),
        submitUserid,
        users,
        timeoutMs: options.actionTimeoutMs ?? 30_000,
      }),
    owner: (jobId) => fluxJobOwner(jobId, { connection: () => holder.get(), users, timeoutMs: options.actionTimeoutMs ?? 30_000 }),
    close: () => holder.close(),
  };
}
