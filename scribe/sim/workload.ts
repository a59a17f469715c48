/**
 * The simulated workload: what each user submits (queue, size, command, time limit, typical
 * runtime — a job "shape"), what then happens to each job (its "fate": exit code, signal, exec
 * error, timeout, cancel, hold/release, expedite, a dependent follow-up job), and the jobspec
 * `flux submit` would produce for it (RFC 25 v1, as the journal carries it after the job-ingest
 * defaults/constraints frobnicators ran: duration, queue and constraints always present).
 * Pure functions of the PRNG and the cluster.
 */
import type { Rng } from './random.js';
import { unsatisfiableNote, type ResourceRequest, type SimCluster, type SimUser } from './cluster.js';
import type { SimOptions } from './options.js';

/** What a submission asks for; shared by all copies of a job array. Plain JSON (checkpointed). */
export interface JobShape extends ResourceRequest {
  /** User index in cluster.users. */
  u: number;
  /** Queue index in cluster.queues. */
  q: number;
  /** Requested duration in seconds (the queue default when the user gave none). */
  dur: number;
  cmd: string[];
  name?: string;
  cwd: string;
  /** Median natural runtime in seconds, and the lognormal shape of the runtimes. */
  med: number;
  sig: number;
}

export const OUT_OK = 0;
export const OUT_EXIT = 1;
export const OUT_SIGNAL = 2;
export const OUT_EXEC = 3;
export const OUT_TIMEOUT = 4;

export interface JobFate {
  /** Natural runtime (µs) from start to finish (unused for exec errors and timeouts). */
  run: number;
  out: number;
  /** Exit code (OUT_EXIT) or signal number (OUT_SIGNAL). */
  code: number;
  /** The shell itself was killed: the wait status is the bare signal number. */
  rawSignal: boolean;
  held: boolean;
  /** For held jobs: when (µs after submit) and how the hold ends. */
  holdEnd?: { after: number; kind: 'release' | 'expedite' | 'cancel' };
  /** Owner cancels this long (µs) after submit, whatever the state then. */
  cancelAfter?: number;
  /** Owner cancels at this fraction of the runtime once running. */
  cancelRun?: number;
  /** The instance owner expedites the job this long (µs) after submit if it is still pending (stuck). */
  expediteAfter?: number;
  /** A dependent job follows this long (µs) after submit. */
  child?: { after: number; scheme: 'afterok' | 'afterany' };
  cancelNote: string;
  /** Cancel raised by the instance owner (an admin) instead of the job's owner. */
  cancelByAdmin: boolean;
}

interface App {
  cmd: string[];
  name: string;
}

const APPS: Record<SimUser['kind'], App[]> = {
  md: [
    { cmd: ['lmp', '-in', 'in.melt'], name: 'lj-melt' },
    { cmd: ['gmx_mpi', 'mdrun', '-deffnm', 'npt'], name: 'npt-equil' },
    { cmd: ['namd2', 'apoa1.namd'], name: 'apoa1' },
  ],
  ml: [
    { cmd: ['python3', 'train.py', '--config', 'configs/resnet50.yaml'], name: 'resnet50' },
    { cmd: ['torchrun', '--nproc_per_node=4', 'train.py'], name: 'llm-ft' },
    { cmd: ['python3', 'preprocess.py', '--shards', '64'], name: 'preprocess' },
  ],
  cfd: [
    { cmd: ['simpleFoam', '-parallel'], name: 'airfoil' },
    { cmd: ['pimpleFoam', '-parallel'], name: 'cylinder-les' },
    { cmd: ['./nek5000', 'turbChannel'], name: 'turb-channel' },
  ],
  chem: [
    { cmd: ['vasp_std'], name: 'relax' },
    { cmd: ['cp2k.psmp', '-i', 'h2o-64.inp'], name: 'h2o-64' },
    { cmd: ['nwchem', 'dft.nw'], name: 'dft' },
  ],
  dev: [
    { cmd: ['./a.out'], name: 'scratch' },
    { cmd: ['bash', '-c', 'make -j8 && ctest --output-on-failure'], name: 'ci' },
    { cmd: ['./build/tests/unit_tests'], name: 'unit' },
    { cmd: ['hostname'], name: 'probe' },
  ],
  analysis: [
    { cmd: ['python3', 'analyze.py', 'run_0042.h5'], name: 'analyze' },
    { cmd: ['Rscript', 'stats.R'], name: 'stats' },
    { cmd: ['julia', 'postproc.jl'], name: 'postproc' },
    { cmd: ['./extract.sh', 'campaign-07'], name: 'extract' },
  ],
  climate: [
    { cmd: ['./e3sm.exe'], name: 'e3sm-hist' },
    { cmd: ['./cesm.exe'], name: 'cesm-ctrl' },
  ],
};

const CWDS: Record<SimUser['kind'], string[]> = {
  md: ['/p/lustre1/{u}/lj-melt', '/p/lustre1/{u}/membrane'],
  ml: ['/home/{u}/projects/vision', '/home/{u}/projects/llm'],
  cfd: ['/p/lustre1/{u}/airfoil', '/p/lustre1/{u}/channel'],
  chem: ['/p/lustre1/{u}/catalysis', '/home/{u}/calc/water'],
  dev: ['/home/{u}/src/solver/build', '/home/{u}/scratch'],
  analysis: ['/p/lustre1/{u}/campaign-07', '/home/{u}/analysis'],
  climate: ['/p/lustre1/{u}/e3sm/run', '/p/lustre1/{u}/cesm/run'],
};

/** Typical runtimes (median seconds, lognormal sigma) per kind of work. */
const RUNTIME: Record<SimUser['kind'], [number, number]> = {
  md: [130, 1.0],
  ml: [300, 1.0],
  cfd: [170, 0.9],
  chem: [170, 0.9],
  dev: [60, 0.9],
  analysis: [90, 1.0],
  climate: [420, 0.6],
};

/** `flux submit -t` values users pick from (seconds). */
const DURATIONS = [300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400];

/** The submitting shell's resource limits, propagated by `flux submit` (as in the real jobspecs). */
const RLIMIT = { cpu: -1, fsize: -1, data: -1, stack: 8388608, core: 0, nofile: 20000, as: -1, rss: -1, nproc: 8192 };

const CANCEL_NOTES = ['wrong input deck', 'resubmitting with more nodes', 'superseded by newer run', 'bad parameters'];

const SIGNALS = [9, 11, 6, 7, 8];
const SIGNAL_WEIGHTS = [40, 35, 15, 5, 5];
const EXIT_CODES = [1, 2, 3, 4, 42, 127, 255];
const EXIT_WEIGHTS = [60, 15, 8, 5, 4, 5, 3];

function qIndex(c: SimCluster, name: string): number {
  const i = c.queues.findIndex((q) => q.name === name);
  return i < 0 ? 0 : i;
}

function nodesIn(c: SimCluster, q: number): number {
  return c.queues[q]!.ranks.length;
}

function gpusIn(c: SimCluster, q: number): number {
  return c.gpusOf[c.queues[q]!.ranks[0]!] ?? 0;
}

/** Picks the submitting user. */
export function drawUser(rng: Rng, c: SimCluster): number {
  return rng.weighted(c.users.map((u) => u.weight));
}

/** A submission of user `u`: queue, size, command, limit. */
export function drawShape(rng: Rng, c: SimCluster, u: number): JobShape {
  const user = c.users[u]!;
  const C = c.coresPerNode;
  const batch = qIndex(c, 'batch');
  const hasDebug = c.queues.some((q) => q.name === 'debug');
  const hasGpu = c.queues.some((q) => q.name === 'gpu');
  const B = nodesIn(c, batch);
  let q = batch;
  let r: ResourceRequest = { nn: 0, ns: 1, cps: 1, gps: 0, ex: false };
  const x = rng.float();
  const multi = (maxN: number, ex: boolean): ResourceRequest => {
    const nn = Math.max(1, Math.min(maxN, rng.int(2, Math.max(2, maxN))));
    return { nn, ns: nn * (ex ? 1 : C), cps: 1, gps: 0, ex };
  };
  switch (user.kind) {
    case 'md':
      if (x < 0.6) r = { nn: 0, ns: rng.pick([8, 16, C].filter((n) => n <= C)), cps: 1, gps: 0, ex: false };
      else if (x < 0.8 && B >= 2) r = multi(Math.min(4, Math.floor(B / 2)), false);
      else if (hasGpu) {
        q = qIndex(c, 'gpu');
        r = { nn: 0, ns: 1, cps: Math.max(1, Math.floor(C / gpusIn(c, q))), gps: 1, ex: false };
      } else r = { nn: 0, ns: C, cps: 1, gps: 0, ex: false };
      break;
    case 'ml':
      if (x < 0.75 && hasGpu) {
        q = qIndex(c, 'gpu');
        const G = gpusIn(c, q);
        const cps = Math.max(1, Math.floor(C / G));
        if (rng.chance(0.1) && nodesIn(c, q) >= 2) r = { nn: 2, ns: 2 * G, cps, gps: 1, ex: true };
        else r = { nn: 0, ns: rng.pick([1, 1, 2, G]), cps, gps: 1, ex: false };
      } else if (x < 0.9 && hasDebug) {
        q = qIndex(c, 'debug');
        r = { nn: 0, ns: 1, cps: Math.min(4, C), gps: 0, ex: false };
      } else r = { nn: 0, ns: 1, cps: Math.min(8, C), gps: 0, ex: false };
      break;
    case 'cfd':
      if (x < 0.6 && B >= 2) r = multi(Math.min(4, Math.floor(B / 2)), rng.chance(0.5));
      else r = { nn: 0, ns: C, cps: 1, gps: 0, ex: false };
      break;
    case 'chem':
      if (x < 0.6) {
        const nn = B >= 2 ? rng.int(1, 2) : 1;
        r = { nn, ns: nn * C, cps: 1, gps: 0, ex: true };
      } else r = { nn: 0, ns: Math.min(16, C), cps: 1, gps: 0, ex: false };
      break;
    case 'dev':
      if (x < 0.65 && hasDebug) {
        q = qIndex(c, 'debug');
        const D = nodesIn(c, q);
        if (rng.chance(0.25)) {
          const nn = Math.min(D, rng.int(1, 2));
          r = { nn, ns: nn * Math.min(4, C), cps: 1, gps: 0, ex: false };
        } else r = { nn: 0, ns: rng.pick([1, 2, 4, 8].filter((n) => n <= C)), cps: 1, gps: 0, ex: false };
      } else r = { nn: 0, ns: 1, cps: rng.pick([1, 2, 4].filter((n) => n <= C)), gps: 0, ex: false };
      break;
    case 'analysis':
      r = { nn: 0, ns: 1, cps: rng.pick([1, 1, 2, 4].filter((n) => n <= C)), gps: 0, ex: false };
      break;
    case 'climate': {
      const hi = Math.max(1, Math.floor(B / 3));
      const nn = rng.int(Math.max(1, Math.floor(B / 5)), hi);
      r = { nn, ns: nn * C, cps: 1, gps: 0, ex: true };
      break;
    }
  }
  // Odd cluster shapes (few cores, few nodes) must not turn ordinary jobs into unsatisfiable ones.
  if (unsatisfiableNote(c, q, r)) r = { nn: 0, ns: 1, cps: 1, gps: gpusIn(c, q) > 0 ? 1 : 0, ex: false };
  const queue = c.queues[q]!;
  const [med0, sigma] = RUNTIME[user.kind];
  const med = q === qIndex(c, 'debug') && hasDebug ? Math.min(med0, 120) : med0;
  // The limit users ask for: 1.5-4x a pessimistic runtime, from the usual -t values; 30% rely on
  // the queue's default.
  const guess = med * Math.exp(sigma * 1.3) * rng.range(1.5, 4);
  let dur = queue.defaultDuration;
  if (rng.chance(0.7) || dur < guess) dur = DURATIONS.find((d) => d >= guess) ?? queue.maxDuration;
  dur = Math.min(dur, queue.maxDuration);
  const app = rng.pick(APPS[user.kind]);
  const cwd = rng.pick(CWDS[user.kind]).replace('{u}', user.name);
  const shape: JobShape = { u, q, ...r, dur, cmd: app.cmd.slice(), cwd, med, sig: sigma };
  if (rng.chance(0.4)) shape.name = `${app.name}-${rng.int(1, 40)}`;
  return shape;
}

/** An unsatisfiable submission: more exclusive nodes than the batch queue has. */
export function drawUnsatisfiable(rng: Rng, c: SimCluster, u: number): JobShape {
  const q = qIndex(c, 'batch');
  const nn = nodesIn(c, q) + rng.int(1, 8);
  const queue = c.queues[q]!;
  return {
    u,
    q,
    nn,
    ns: nn,
    cps: 1,
    gps: 0,
    ex: true,
    dur: queue.defaultDuration,
    cmd: ['./e3sm.exe'],
    name: `scaling-${nn}n`,
    cwd: `/p/lustre1/${c.users[u]!.name}/scaling`,
    med: 600,
    sig: 0.6,
  };
}

/** What happens to one job of `shape`. Always draws the same count of numbers. */
export function drawFate(rng: Rng, o: SimOptions, shape: JobShape): JobFate {
  const natural = Math.max(1, rng.lognormal(shape.med, shape.sig));
  const limit = shape.dur;
  const pick = rng.float();
  const u1 = rng.float();
  const u2 = rng.float();
  let out = OUT_OK;
  let code = 0;
  let run = natural < 0.95 * limit ? natural : limit * (0.5 + 0.45 * u1);
  let acc = o.failureRate;
  if (pick < acc) {
    out = OUT_EXIT;
    code = EXIT_CODES[rng.weighted(EXIT_WEIGHTS)]!;
    run = Math.max(0.5, run * u2 * u2);
  } else if (pick < (acc += o.signalRate)) {
    out = OUT_SIGNAL;
    code = SIGNALS[rng.weighted(SIGNAL_WEIGHTS)]!;
    run = Math.max(0.5, run * u2);
  } else if (pick < (acc += o.execErrorRate)) {
    out = OUT_EXEC;
    rng.float();
  } else if (pick < acc + o.timeoutRate) {
    out = OUT_TIMEOUT;
    rng.float();
  } else {
    rng.float();
  }
  const rawSignal = out === OUT_SIGNAL && u1 < 0.1;
  const fate: JobFate = {
    run: Math.round(run * 1e6),
    out,
    code,
    rawSignal,
    held: false,
    cancelNote: '',
    cancelByAdmin: false,
  };
  // Intents: each draws a fixed amount so that rates do not shift the rest of the stream.
  const hold = rng.float();
  const holdAfter = 10 + rng.exp(300);
  const holdKind = rng.float();
  if (hold < o.holdRate) {
    fate.held = true;
    fate.holdEnd = {
      after: Math.round(holdAfter * 1e6),
      kind: holdKind < 0.6 ? 'release' : holdKind < 0.85 ? 'expedite' : 'cancel',
    };
  }
  const cp = rng.float();
  const cpAfter = 2 + rng.exp(45);
  if (cp < o.cancelPendingRate) fate.cancelAfter = Math.round(cpAfter * 1e6);
  const cr = rng.float();
  const crAt = rng.range(0.05, 0.9);
  if (cr < o.cancelRunningRate) fate.cancelRun = crAt;
  const ex = rng.float();
  const exAfter = rng.range(30, 600);
  if (ex < o.expediteRate) fate.expediteAfter = Math.round(exAfter * 1e6);
  const dp = rng.float();
  const dpAfter = rng.range(0.5, 20);
  const dpScheme = rng.float();
  if (dp < o.dependencyRate) fate.child = { after: Math.round(dpAfter * 1e6), scheme: dpScheme < 0.85 ? 'afterok' : 'afterany' };
  const note = rng.float();
  const noteIdx = rng.int(0, CANCEL_NOTES.length - 1);
  if (note < 0.3) fate.cancelNote = CANCEL_NOTES[noteIdx]!;
  fate.cancelByAdmin = rng.float() < 0.1;
  return fate;
}

/** Jobspec version 1 of a submission, as the journal carries it with `submit`. */
export function buildJobspec(
  c: SimCluster,
  s: JobShape,
  dep?: { scheme: string; value: string },
): Record<string, unknown> {
  const slotWith: Array<Record<string, unknown>> = [{ type: 'core', count: s.cps }];
  if (s.gps > 0) slotWith.push({ type: 'gpu', count: s.gps });
  const resources =
    s.nn > 0
      ? [
          {
            type: 'node',
            count: s.nn,
            ...(s.ex ? { exclusive: true } : {}),
            with: [{ type: 'slot', count: Math.ceil(s.ns / s.nn), with: slotWith, label: 'task' }],
          },
        ]
      : [{ type: 'slot', count: s.ns, with: slotWith, label: 'task' }];
  const queue = c.queues[s.q]!.name;
  const system: Record<string, unknown> = {
    duration: s.dur,
    cwd: s.cwd,
    queue,
    constraints: { properties: [queue] },
  };
  if (s.name !== undefined) system.job = { name: s.name };
  if (dep) system.dependencies = [{ scheme: dep.scheme, value: dep.value }];
  system.shell = { options: { rlimit: { ...RLIMIT } } };
  return {
    resources,
    tasks: [{ command: s.cmd.slice(), slot: 'task', count: { per_slot: 1 } }],
    attributes: { system },
    version: 1,
  };
}

/** Number of copies of an arriving submission (a `--cc` job array when > 1). */
export function drawBurst(rng: Rng, o: SimOptions, c: SimCluster, u: number): number {
  const kind = c.users[u]!.kind;
  const p = Math.min(1, o.burstRate * (kind === 'analysis' ? 3 : kind === 'dev' ? 1.5 : 0.5));
  const x = rng.float();
  const n = rng.int(2, 12);
  return x < p ? n : 1;
}
