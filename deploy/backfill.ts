/**
 * What `up` shows while simulated clusters on the wall clock back-fill their history: one line per
 * tick with each cluster's simulated time and how far it is between the start of its history and
 * now, and the events projected of those published; redrawn in place on a TTY, every few seconds
 * otherwise; one closing line once every cluster has caught up with the wall clock and the
 * projector with the log (from then on every answer includes the whole history).
 *
 * Pure apart from the clock and the stream it is given: `backfillLine` renders, `watchBackfill`
 * polls.
 */

export interface BackfillingCluster {
  cluster: string;
  /** Simulated time now, seconds since 1970. */
  time(): number;
  /** Start of its history (the simulator's epoch, known once a checkpoint is restored), seconds since 1970. */
  from(): number;
}

/** Caught up once simulated time is within this of the wall clock. */
const CAUGHT_UP_S = 60;

const fmt = (t: number) => new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ');

export function backfillLine(clusters: readonly { cluster: string; time: number; from: number }[], nowS: number, projected: number, published: number): string {
  const parts = clusters.map((c) => {
    const frac = nowS > c.from ? Math.min(1, Math.max(0, (c.time - c.from) / (nowS - c.from))) : 1;
    return `${c.cluster} ${fmt(c.time)} (${Math.floor(frac * 100)}%)`;
  });
  return `back-filling history up to now: ${parts.join(', ')}; ${projected.toLocaleString('en-US')} of ${published.toLocaleString('en-US')} events projected`;
}

export function watchBackfill(
  clusters: readonly BackfillingCluster[],
  counts: { projected: () => number; published: () => number },
  out: NodeJS.WriteStream,
  opts: { now?: () => number; onDone?: (seconds: number) => void } = {},
): () => void {
  const now = opts.now ?? Date.now;
  const started = now();
  const behind = () => clusters.some((c) => now() / 1000 - c.time() > CAUGHT_UP_S) || counts.projected() < counts.published();
  if (clusters.length === 0 || !behind()) return () => undefined;
  let lastPlain = 0;
  const timer = setInterval(
    () => {
      const nowS = now() / 1000;
      if (!behind()) {
        clearInterval(timer);
        const s = Math.round((now() - started) / 1000);
        out.write(`${out.isTTY ? '\r\x1b[2K' : ''}back-fill done in ${s} s: ${counts.projected().toLocaleString('en-US')} events projected; following the wall clock now\n`);
        opts.onDone?.(s);
        return;
      }
      const line = backfillLine(
        clusters.map((c) => ({ cluster: c.cluster, time: c.time(), from: c.from() })),
        nowS,
        counts.projected(),
        counts.published(),
      );
      if (out.isTTY) out.write(`\r\x1b[2K${line}`);
      else if (now() - lastPlain >= 5000) {
        lastPlain = now();
        out.write(line + '\n');
      }
    },
    out.isTTY ? 500 : 1000,
  );
  timer.unref();
  return () => clearInterval(timer);
}
