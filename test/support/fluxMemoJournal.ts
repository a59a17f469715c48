/**
 * A small journal (fake broker lines) of two jobs with volatile memos (`flux job memo
 * --volatile`: posted with EVENT_NO_COMMIT, live only, marked "noCommit" for the fake broker),
 * a committed memo and annotations, in the shapes of the real flux-core 0.88 captures:
 *   HELD: submitted held (urgency 0), a volatile memo, then released (urgency 16), a committed
 *         memo, annotations, alloc on fluxnode0, runs and completes;
 *   RUNS: a volatile memo while pending, alloc on fluxnode1, another volatile memo while
 *         running, completes.
 * `restartAfter` lines have happened when the scribe is stopped in the tests: both volatile
 * memos of the pending phase are the last events each job had then, so the next event of each
 * (HELD's urgency release, RUNS's alloc) is the first one after a restart.
 */
export const HELD = '4100000000001';
export const RUNS = '4100000000002';

const T = 1795400000;
const JOBSPEC =
  '{"resources":[{"type":"slot","count":1,"with":[{"type":"core","count":1}],"label":"task"}],"tasks":[{"command":["sleep","1"],"slot":"task","count":{"per_slot":1}}],"attributes":{"system":{"duration":0,"cwd":"/tmp"}},"version":1}';
const R = (node: string, rank: string, t: number) =>
  `{"version":1,"execution":{"R_lite":[{"rank":"${rank}","children":{"core":"0"}}],"starttime":${t},"expiration":0.0,"nslots":1,"nodelist":["${node}"]}}`;

function line(id: string, ts: number, name: string, context?: object, extra = ''): string {
  const ev = JSON.stringify({ timestamp: ts, name, ...(context && { context }) });
  return `{"id":${id},"events":[${ev}]${extra}}`;
}
const volatile = (l: string) => l.replace(/\}$/, ',"noCommit":true}');
const ann = (summary: string) => ({ annotations: { sched: { resource_summary: summary } } });

export const MEMO_JOURNAL: string[] = [
  '{"id":-1,"events":[]}',
  line(HELD, T + 0.1, 'submit', { userid: 0, urgency: 0, flags: 0, version: 1 }, `,"jobspec":${JOBSPEC}`),
  line(RUNS, T + 0.2, 'submit', { userid: 0, urgency: 16, flags: 0, version: 1 }, `,"jobspec":${JOBSPEC}`),
  line(HELD, T + 0.3, 'validate'),
  line(RUNS, T + 0.4, 'validate'),
  line(HELD, T + 0.5, 'depend'),
  line(RUNS, T + 0.6, 'depend'),
  line(HELD, T + 0.7, 'priority', { priority: 0 }),
  line(RUNS, T + 0.8, 'priority', { priority: 16 }),
  line(RUNS, T + 0.85, 'annotations', ann('waiting')),
  volatile(line(HELD, T + 0.9, 'memo', { progress: 'held by the user' })),
  volatile(line(RUNS, T + 1.0, 'memo', { progress: 'queued' })),
  // ← restartAfter
  line(RUNS, T + 1.1, 'alloc', ann('rank1/core0'), `,"R":${R('fluxnode1', '1', T + 1.05)}`),
  line(HELD, T + 1.2, 'urgency', { userid: 0, urgency: 16 }),
  line(HELD, T + 1.3, 'priority', { priority: 16 }),
  line(HELD, T + 1.35, 'memo', { note: 'released' }), // committed
  line(RUNS, T + 1.4, 'start'),
  line(HELD, T + 1.45, 'annotations', ann('rank0/core0')),
  line(HELD, T + 1.5, 'alloc', ann('rank0/core0'), `,"R":${R('fluxnode0', '0', T + 1.48)}`),
  volatile(line(RUNS, T + 1.6, 'memo', { progress: '50%' })),
  line(HELD, T + 1.7, 'start'),
  line(RUNS, T + 2.1, 'finish', { status: 0 }),
  line(RUNS, T + 2.2, 'release', { ranks: 'all', final: true }),
  line(RUNS, T + 2.3, 'free'),
  line(RUNS, T + 2.4, 'clean'),
  line(HELD, T + 2.5, 'finish', { status: 0 }),
  line(HELD, T + 2.6, 'release', { ranks: 'all', final: true }),
  line(HELD, T + 2.7, 'free'),
  line(HELD, T + 2.8, 'clean'),
];

/** Journal entries (sentinel excluded) that have happened when the scribe is stopped. */
export const MEMO_RESTART_AFTER = MEMO_JOURNAL.findIndex((l) => l.includes('"alloc"')) - 1;
