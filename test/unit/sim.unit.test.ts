/**
 * The simulated Flux cluster (scribe/sim): determinism, checkpoint/restore, fidelity of the
 * event shapes and per-job order to the flux-core 0.88 journal, ground truth, resource
 * accounting, actions, and the paced SchedulerSource.
 */
import { describe, expect, it } from 'vitest';
import { FluxRawSchema, parseFluxEvent } from '../../schemas/flux/events.js';
import { JobIdSchema } from '../../schemas/ids.js';
import type { SourceEvent } from '../../scribe/source.js';
import {
  SIM_USERS,
  SimOptionsSchema,
  Simulator,
  buildCluster,
  createSimSource,
  decodeFluid,
  groundTruth,
  idsetEncode,
  instanceStartOf,
  parseSimOptions,
  simulate,
  type SimOptionsInput,
  type SimStats,
} from '../../scribe/sim/index.js';

const BASE: SimOptionsInput = { maxJobs: 500 };

function collect(opts: SimOptionsInput): SourceEvent[] {
  return [...simulate(opts)];
}

function byJob(events: SourceEvent[]): Map<string, SourceEvent[]> {
  const m = new Map<string, SourceEvent[]>();
  for (const e of events) {
    let l = m.get(e.job_id);
    if (!l) m.set(e.job_id, (l = []));
    l.push(e);
  }
  return m;
}

const key = (e: SourceEvent) => `${e.job_id}:${e.seq}`;

/** Idset "0-2,5" → [0,1,2,5]. */
function ids(s: string): number[] {
  if (!s) return [];
  return s.split(',').flatMap((p) => {
    const [a, b] = p.split('-').map(Number) as [number, number | undefined];
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

/**
 * Per-job legal order, as the real journal shows it (fixtures/flux/journal.jsonl). Returns an
 * error string or undefined.
 */
function checkOrder(evs: SourceEvent[]): string | undefined {
  const names = evs.map((e) => e.name);
  let st = 'start';
  let fatal = false;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    const e = evs[i]!;
    const bad = () => `event ${i} "${n}" not allowed in state ${st}: ${names.join(' ')}`;
    switch (st) {
      case 'start':
        if (n !== 'submit') return bad();
        st = 'new';
        break;
      case 'new': // submitted, not validated
        if (n === 'dependency-add') st = 'dep-added';
        else if (n === 'validate') st = 'validated';
        else return bad();
        break;
      case 'dep-added':
        if (n === 'dependency-remove') st = 'new-nodeps';
        else if (n === 'validate') st = 'depwait';
        else if (n === 'invalidate') st = 'end';
        else return bad();
        break;
      case 'new-nodeps':
        if (n === 'validate') st = 'validated';
        else return bad();
        break;
      case 'depwait': // DEPEND with an outstanding dependency
        if (n === 'dependency-remove') st = 'validated';
        else if (n === 'urgency') st = 'depwait';
        else if (n === 'exception' && e.context.severity === 0) st = 'exc-pending';
        else return bad();
        break;
      case 'validated':
        if (n === 'depend') st = 'depended';
        else if (n === 'urgency') st = 'validated';
        else if (n === 'exception' && e.context.severity === 0) st = 'exc-pending';
        else return bad();
        break;
      case 'depended':
        if (n !== 'priority') return bad();
        st = 'sched';
        break;
      case 'sched':
        if (n === 'urgency') st = 'sched';
        else if (n === 'priority' && names[i - 1] === 'urgency') st = 'sched';
        else if (n === 'alloc') st = 'alloc';
        else if (n === 'annotations' && names[i + 1] === 'alloc') st = 'sched';
        else if (n === 'exception' && e.context.severity === 0) st = 'exc-pending';
        else return bad();
        break;
      case 'exc-pending':
        if (n !== 'clean') return bad();
        st = 'end';
        break;
      case 'alloc':
        if (n !== 'start') return bad();
        st = 'run';
        break;
      case 'run':
        if (n === 'exception' && !fatal) fatal = true;
        else if (n === 'finish') st = 'finished';
        else return bad();
        break;
      case 'finished':
        if (n !== 'release') return bad();
        st = 'released';
        break;
      case 'released':
        if (n !== 'free') return bad();
        st = 'freed';
        break;
      case 'freed':
        if (n !== 'clean') return bad();
        st = 'end';
        break;
      case 'end':
        return bad();
    }
  }
  return undefined;
}

type Result = 'COMPLETED' | 'FAILED' | 'CANCELED' | 'TIMEOUT';

/** flux-core job-list's result for an inactive job's events. */
function resultOf(evs: SourceEvent[]): Result | undefined {
  if (evs.at(-1)?.name !== 'clean') return undefined;
  const exc = evs.find((e) => e.name === 'exception' && e.context.severity === 0);
  if (exc) return exc.context.type === 'cancel' ? 'CANCELED' : exc.context.type === 'timeout' ? 'TIMEOUT' : 'FAILED';
  const fin = evs.find((e) => e.name === 'finish');
  return fin?.context.status === 0 ? 'COMPLETED' : 'FAILED';
}

interface Recount {
  jobs: number;
  events: number;
  invalidated: number;
  results: Record<Result, number>;
  byUser: Record<string, Record<Result, number>>;
  byQueue: Record<string, Record<Result, number>>;
}

function recount(events: SourceEvent[]): Recount {
  const zero = (): Record<Result, number> => ({ COMPLETED: 0, FAILED: 0, CANCELED: 0, TIMEOUT: 0 });
  const out: Recount = { jobs: 0, events: events.length, invalidated: 0, results: zero(), byUser: {}, byQueue: {} };
  for (const evs of byJob(events).values()) {
    if (evs.some((e) => e.name === 'invalidate')) {
      out.invalidated++;
      continue;
    }
    out.jobs++;
    const r = resultOf(evs);
    if (!r) continue;
    const user = evs[0]!.user!;
    const js = (evs[0]!.raw as { jobspec: { attributes: { system: { queue: string } } } }).jobspec;
    const queue = js.attributes.system.queue;
    out.results[r]++;
    (out.byUser[user] ??= zero())[r]++;
    (out.byQueue[queue] ??= zero())[r]++;
  }
  return out;
}

function strip(t: SimStats['byUser']): Record<string, Record<Result, number>> {
  const o: Record<string, Record<Result, number>> = {};
  for (const [k, v] of Object.entries(t)) {
    if (v.jobs === 0) continue;
    o[k] = { COMPLETED: v.COMPLETED, FAILED: v.FAILED, CANCELED: v.CANCELED, TIMEOUT: v.TIMEOUT };
  }
  return o;
}

describe('sim: determinism', () => {
  it('the same options give the identical stream; another seed a different one', () => {
    const a = collect({ ...BASE, maxJobs: 300 });
    const b = collect({ ...BASE, maxJobs: 300 });
    expect(a.length).toBeGreaterThan(2500);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const c = collect({ ...BASE, maxJobs: 300, seed: 2 });
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
  });

  it('restoring a checkpoint mid-run yields exactly the remainder', () => {
    const full = collect(BASE);
    for (const cut of [1, 777, 2501, full.length - 3]) {
      const sim = new Simulator(BASE);
      const head: SourceEvent[] = [];
      while (head.length < cut) head.push(...sim.nextBatch(Math.min(97, cut - head.length)));
      const cp = sim.checkpoint();
      const restored = Simulator.restore(cp);
      expect(restored.checkpoint()).toBe(cp);
      const tail: SourceEvent[] = [];
      while (!restored.finished) tail.push(...restored.nextBatch(500));
      expect(JSON.stringify([...head, ...tail])).toBe(JSON.stringify(full));
      expect(restored.stats()).toEqual(groundTruth(BASE));
    }
  });

  it('checkpoints are compact: only active jobs', () => {
    const sim = new Simulator({ maxJobs: 3000 });
    let n = 0;
    while (n < 15000) n += sim.nextBatch(1000).length;
    const cp = JSON.parse(sim.checkpoint()) as { jobs: unknown[] };
    expect(cp.jobs.length).toBe(sim.activeJobs);
    expect(cp.jobs.length).toBeLessThan(400);
    expect(sim.checkpoint().length).toBeLessThan(200 * 1024);
  });

  it('the options schema has sensible defaults and rejects bad values', () => {
    const o = parseSimOptions({});
    expect(o).toMatchObject({ nodes: 16, cluster: 'fluke', speed: 60, seed: 1 });
    expect(buildCluster(o).queues.map((q) => q.name)).toEqual(['batch', 'debug', 'gpu']);
    expect(SimOptionsSchema.safeParse({ failureRate: 2 }).success).toBe(false);
    expect(SimOptionsSchema.safeParse({ cluster: 'Bad Name' }).success).toBe(false);
    expect(SimOptionsSchema.safeParse({ epoch: 100, instanceStart: 200 }).success).toBe(false);
    expect(SimOptionsSchema.safeParse({ nodes: 4, gpuNodes: 2, debugNodes: 2 }).success).toBe(false);
    expect(SimOptionsSchema.safeParse({ instanceStart: 0 }).success).toBe(false);
  });
});

describe('sim: fidelity to the flux-core 0.88 journal', () => {
  const events = collect(BASE);
  const jobs = byJob(events);

  it('every event parses as a known Flux event, raw is the journal entry', () => {
    let lastTs = 0;
    for (const e of events) {
      const p = parseFluxEvent(e.name, e.context);
      expect(p.ok, `${e.name} ${JSON.stringify(e.context)}`).toBe(true);
      if (p.ok) expect(p.event.known).toBe(true);
      expect(JobIdSchema.safeParse(e.job_id).success).toBe(true);
      expect(e.ts).toBeGreaterThanOrEqual(lastTs);
      lastTs = e.ts;
      expect(e.ts_source).toBe('scheduler');
      const raw = FluxRawSchema.parse(e.raw);
      expect(raw.id).toBe(e.job_id);
      expect(raw.event.name).toBe(e.name);
      expect(raw.event.timestamp).toBe(e.ts);
      expect(raw.event.context ?? {}).toEqual(e.context);
      if (Object.keys(e.context).length === 0) expect('context' in raw.event).toBe(false);
      expect(raw.jobspec !== undefined).toBe(e.name === 'submit');
      expect(raw.R !== undefined).toBe(e.name === 'alloc');
    }
  });

  it('per-job order is legal, seq is contiguous, every job ends', () => {
    for (const [id, evs] of jobs) {
      expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i));
      expect(checkOrder(evs), id).toBeUndefined();
      expect(['clean', 'invalidate']).toContain(evs.at(-1)!.name);
    }
  });

  it('contexts have the real shapes and values', () => {
    const uids = new Map(SIM_USERS.map((u) => [u.uid, u.name]));
    for (const evs of jobs.values()) {
      const submit = evs[0]!;
      expect(Object.keys(submit.context)).toEqual(['userid', 'urgency', 'flags', 'version']);
      expect(submit.context).toMatchObject({ flags: 0, version: 1 });
      expect(uids.get(submit.context.userid as number)).toBe(submit.user);
      for (const e of evs) expect(e.user).toBe(submit.user);
      let urgency = submit.context.urgency as number;
      for (const e of evs) {
        if (e.name === 'urgency') urgency = e.context.urgency as number;
        if (e.name === 'priority') {
          const want = urgency === 31 ? 4294967295 : urgency;
          expect(e.context).toEqual({ priority: want });
        }
        if (e.name === 'release') expect(e.context).toEqual({ ranks: 'all', final: true });
        if (e.name === 'dependency-add' || e.name === 'dependency-remove') {
          expect(e.context.description).toMatch(/^after-(success|finish)=\d+$/);
        }
        if (e.name === 'exception') {
          expect(Object.keys(e.context).sort()).toEqual(['note', 'severity', 'type', 'userid']);
          const { type, note } = e.context as { type: string; note: string };
          if (type === 'timeout') expect(note).toBe('resource allocation expired');
          if (type === 'dependency') expect(note).toMatch(/^dependency after-success=\d+ can never be satisfied$/);
          if (type === 'alloc') expect(note).toMatch(/^unsatisfiable request: need \d+ exclusive node\(s\), only \d+ eligible$/);
          if (type === 'exec') expect(note).toMatch(/^task 0 \(host fluke\d+\): start failed: .+: No such file or directory$/);
          expect(['cancel', 'timeout', 'exec', 'alloc', 'dependency']).toContain(type);
        }
        if (e.name === 'finish') {
          const status = e.context.status as number;
          const exc = evs.find((x) => x.name === 'exception')?.context.type;
          if (exc === 'timeout') expect(status).toBe(36352);
          if (exc === 'cancel') expect(status).toBe(36608);
          if (exc === 'exec') expect(status).toBe(32512);
          expect(status === 0 || (status & 0xff) === 0 || (status > 0 && status < 128)).toBe(true);
        }
      }
      const js = (submit.raw as { jobspec: Record<string, any> }).jobspec;
      expect(js.version).toBe(1);
      expect(js.tasks).toEqual([{ command: expect.any(Array), slot: 'task', count: { per_slot: 1 } }]);
      const sys = js.attributes.system;
      expect(sys).toMatchObject({ duration: expect.any(Number), cwd: expect.stringMatching(/^\//), queue: expect.any(String) });
      expect(sys.constraints).toEqual({ properties: [sys.queue] });
      const dep = evs.find((e) => e.name === 'dependency-add');
      if (dep) {
        const [desc, parent] = (dep.context.description as string).split('=') as [string, string];
        expect(sys.dependencies).toEqual([{ scheme: desc === 'after-success' ? 'afterok' : 'afterany', value: parent }]);
      }
      const alloc = evs.find((e) => e.name === 'alloc');
      if (alloc) {
        const R = (alloc.raw as { R: { version: number; execution: Record<string, any> } }).R;
        expect(R.version).toBe(1);
        expect(Object.keys(R.execution)).toEqual(['R_lite', 'starttime', 'expiration', 'nslots', 'nodelist']);
        expect(R.execution.starttime).toBeLessThan(alloc.ts);
        expect(R.execution.expiration).toBeCloseTo(R.execution.starttime + sys.duration, 5);
        expect(alloc.context).toEqual({ annotations: { sched: { resource_summary: expect.stringMatching(/^rank/) } } });
      }
    }
  });

  it('optionally emits the journal-only annotations event before each alloc', () => {
    const evs = collect({ maxJobs: 100, annotations: true });
    const jobsA = byJob(evs);
    let n = 0;
    for (const [id, list] of jobsA) {
      expect(checkOrder(list), id).toBeUndefined();
      list.forEach((e, i) => {
        if (e.name !== 'alloc') return;
        n++;
        const prev = list[i - 1]!;
        expect(prev.name).toBe('annotations');
        expect(prev.context).toEqual(e.context);
        const p = parseFluxEvent(prev.name, prev.context);
        expect(p.ok && p.event.known).toBe(true);
      });
    }
    expect(n).toBeGreaterThan(50);
  });

  it('job ids are FLUIDs: 64-bit, increasing, timestamped, beyond 2^53 by default', () => {
    const o = parseSimOptions(BASE);
    const start = instanceStartOf(o);
    let prev = -1n;
    for (const [id, evs] of jobs) {
      const v = BigInt(id);
      expect(v).toBeGreaterThan(prev);
      expect(v).toBeGreaterThan(2n ** 53n);
      prev = v;
      const d = decodeFluid(id);
      expect(d.generator).toBe(0);
      const lag = evs[0]!.ts - (start + d.ms / 1000);
      expect(lag).toBeGreaterThan(0);
      expect(lag).toBeLessThan(0.05);
    }
    expect([...jobs.keys()].some((id) => decodeFluid(id).seq > 0)).toBe(true);
  });

  it('a young instance crosses 2^53 during the run (ids stay exact strings)', () => {
    const epoch = 1795305600;
    const evs = collect({ maxJobs: 200, epoch, instanceStart: epoch - 536_500 });
    const idsSeen = [...new Set(evs.map((e) => e.job_id))];
    expect(idsSeen.some((id) => BigInt(id) < 2n ** 53n)).toBe(true);
    expect(idsSeen.some((id) => BigInt(id) > 2n ** 53n)).toBe(true);
    for (const id of idsSeen) expect(BigInt(id).toString()).toBe(id);
  });
});

describe('sim: ground truth', () => {
  const events = collect(BASE);
  const truth = groundTruth(BASE);

  it('matches a recount over the emitted events', () => {
    const rc = recount(events);
    expect(truth.events).toBe(rc.events);
    expect(truth.jobs).toBe(rc.jobs);
    expect(truth.invalidated).toBe(rc.invalidated);
    expect(truth.submitted).toBe(500);
    expect(truth.active).toEqual({ pending: 0, running: 0 });
    const { COMPLETED, FAILED, CANCELED, TIMEOUT } = truth.results;
    expect({ COMPLETED, FAILED, CANCELED, TIMEOUT }).toEqual(rc.results);
    expect(strip(truth.byUser)).toEqual(rc.byUser);
    expect(strip(truth.byQueue)).toEqual(rc.byQueue);
    const gen = simulate(BASE);
    let r = gen.next();
    while (!r.done) r = gen.next();
    expect(r.value).toEqual(truth);
  });

  it('the default workload contains every scenario', () => {
    const jobs = [...byJob(events).values()];
    const has = (pred: (evs: SourceEvent[]) => boolean) => jobs.filter(pred).length;
    const exc = (evs: SourceEvent[], type: string) => evs.some((e) => e.name === 'exception' && e.context.type === type);
    const status = (evs: SourceEvent[]) => evs.find((e) => e.name === 'finish')?.context.status as number | undefined;
    const count = {
      exitNonzero: has((evs) => !evs.some((e) => e.name === 'exception') && ((status(evs) ?? 0) & 0xff00) !== 0 && (status(evs) ?? 0) < 128 << 8),
      signaled: has((evs) => !evs.some((e) => e.name === 'exception') && ((status(evs) ?? 0) >= 128 << 8 || ((status(evs) ?? 0) > 0 && (status(evs) ?? 0) < 128))),
      execError: has((evs) => exc(evs, 'exec')),
      timeout: has((evs) => exc(evs, 'timeout')),
      cancelPending: has((evs) => exc(evs, 'cancel') && !evs.some((e) => e.name === 'alloc')),
      cancelHeld: has((evs) => exc(evs, 'cancel') && evs[0]!.context.urgency === 0 && !evs.some((e) => e.name === 'urgency')),
      cancelRunning: has((evs) => exc(evs, 'cancel') && evs.some((e) => e.name === 'start')),
      holdRelease: has((evs) => evs[0]!.context.urgency === 0 && evs.some((e) => e.name === 'urgency' && e.context.urgency === 16) && evs.some((e) => e.name === 'start')),
      expedite: has((evs) => evs.some((e) => e.name === 'priority' && e.context.priority === 4294967295)),
      depSatisfied: has((evs) => evs.some((e) => e.name === 'dependency-add') && evs.some((e) => e.name === 'start')),
      depFailed: has((evs) => exc(evs, 'dependency')),
      unsatisfiable: has((evs) => exc(evs, 'alloc')),
      invalidated: has((evs) => evs.some((e) => e.name === 'invalidate')),
      multinode: has((evs) => evs.some((e) => e.name === 'alloc' && ((e.raw as any).R.execution.nodelist[0] as string).includes('['))),
      gpu: has((evs) => evs.some((e) => e.name === 'alloc' && (e.raw as any).R.execution.R_lite.some((g: any) => g.children.gpu))),
      waited: has((evs) => {
        const p = evs.find((e) => e.name === 'priority' && (e.context.priority as number) > 0);
        const a = evs.find((e) => e.name === 'alloc');
        return !!p && !!a && a.ts - p.ts > 60;
      }),
    };
    for (const [k, v] of Object.entries(count)) expect(v, k).toBeGreaterThan(0);
    for (const s of ['exit_nonzero', 'signaled', 'exec_error', 'timeout', 'canceled_pending', 'canceled_running', 'held', 'released', 'expedited', 'dependency_satisfied', 'dependency_failed', 'unsatisfiable'] as const) {
      expect(truth.scenarios[s], s).toBeGreaterThan(0);
    }
    expect(truth.scenarios.timeout).toBe(count.timeout);
    expect(truth.scenarios.exec_error).toBe(count.execError);
    expect(truth.scenarios.unsatisfiable).toBe(count.unsatisfiable);
    expect(truth.scenarios.dependency_failed).toBe(count.depFailed);
    expect(truth.scenarios.canceled_running).toBe(count.cancelRunning);
  });

  it('an untilTime run reports the jobs still active', () => {
    const o = parseSimOptions({});
    const t = groundTruth({ untilTime: o.epoch + 3600 });
    expect(t.time).toBeLessThanOrEqual(o.epoch + 3600);
    expect(t.jobs).toBeGreaterThan(60);
    expect(t.results.active).toBe(t.active.pending + t.active.running);
    expect(t.results.jobs).toBe(t.jobs);
    const st = t.states;
    expect(st.NEW + st.DEPEND + st.SCHED).toBe(t.active.pending);
    expect(st.RUN + st.CLEANUP).toBe(t.active.running);
    // The same states, read off the events.
    const last = new Map<string, SourceEvent[]>();
    for (const e of collect({ untilTime: o.epoch + 3600 })) (last.get(e.job_id) ?? last.set(e.job_id, []).get(e.job_id)!).push(e);
    const seen = { NEW: 0, DEPEND: 0, SCHED: 0, RUN: 0, CLEANUP: 0 };
    for (const evs of last.values()) {
      const names = evs.map((e) => e.name);
      if (names.includes('clean') || names.includes('invalidate')) continue;
      if (names.includes('finish') || evs.some((e) => e.name === 'exception' && e.context.severity === 0)) seen.CLEANUP++;
      else if (names.includes('alloc')) seen.RUN++;
      else if (names.includes('priority')) seen.SCHED++;
      else if (names.includes('validate')) seen.DEPEND++;
      else seen.NEW++;
    }
    expect(seen).toEqual(st);
    const evs = collect({ untilTime: o.epoch + 3600 });
    expect(evs.length).toBe(t.events);
    expect(evs.at(-1)!.ts).toBeLessThanOrEqual(o.epoch + 3600);
  });
});

/** Asserts that no core or GPU is ever held by two jobs, and that each R matches its request. */
function checkResources(opts: SimOptionsInput, events: Iterable<SourceEvent>): number {
  const o = parseSimOptions(opts);
  const cluster = buildCluster(o);
  const used = new Map<string, string>(); // "rank/core3" -> job
  const held = new Map<string, string[]>();
  const specs = new Map<string, any>();
  let maxBusy = 0;
  for (const e of events) {
    if (e.name === 'submit') specs.set(e.job_id, (e.raw as any).jobspec);
    if (e.name === 'alloc') {
      const js = specs.get(e.job_id);
      const queue = cluster.queues.find((q) => q.name === js.attributes.system.queue)!;
      const R = (e.raw as any).R.execution;
      const keys: string[] = [];
      let ncores = 0;
      let ngpus = 0;
      const ranks: number[] = [];
      for (const g of R.R_lite) {
        for (const rank of ids(g.rank)) {
          ranks.push(rank);
          expect(queue.ranks).toContain(rank);
          for (const c of ids(g.children.core)) {
            expect(c).toBeLessThan(o.coresPerNode);
            keys.push(`${rank}/core${c}`);
            ncores++;
          }
          for (const gp of ids(g.children.gpu ?? '')) {
            expect(gp).toBeLessThan(cluster.gpusOf[rank]!);
            keys.push(`${rank}/gpu${gp}`);
            ngpus++;
          }
        }
      }
      for (const k of keys) {
        expect(used.get(k), `${k} double-booked by ${e.job_id}`).toBeUndefined();
        used.set(k, e.job_id);
      }
      held.set(e.job_id, keys);
      maxBusy = Math.max(maxBusy, used.size);
      // What the jobspec asked for.
      const top = js.resources[0];
      const slot = top.type === 'node' ? top.with[0] : top;
      const cps = slot.with.find((w: any) => w.type === 'core').count;
      const gps = slot.with.find((w: any) => w.type === 'gpu')?.count ?? 0;
      const nslots = top.type === 'node' ? top.count * slot.count : slot.count;
      expect(R.nslots).toBe(nslots);
      if (top.type === 'node') expect(ranks.length).toBe(top.count);
      if (top.exclusive) expect(ncores).toBe(top.count * o.coresPerNode);
      else {
        expect(ncores).toBe(nslots * cps);
        expect(ngpus).toBe(nslots * gps);
      }
      const sorted = [...ranks].sort((a, b) => a - b);
      expect(R.nodelist).toEqual([`${o.cluster}${sorted.length > 1 ? `[${idsetEncode(sorted)}]` : sorted[0]}`]);
    }
    if (e.name === 'free') {
      for (const k of held.get(e.job_id)!) used.delete(k);
      held.delete(e.job_id);
    }
  }
  expect(used.size).toBe(0);
  return maxBusy;
}

describe('sim: resources', () => {
  it('are never oversubscribed and match the request and queue', () => {
    const opts: SimOptionsInput = { maxJobs: 1500, seed: 3 };
    const o = parseSimOptions(opts);
    const maxBusy = checkResources(opts, simulate(opts));
    expect(maxBusy).toBeGreaterThan(o.nodes * o.coresPerNode * 0.5);
  });

  it('odd clusters and extreme rates keep every invariant (order, seq, resources, restore)', () => {
    const configs: SimOptionsInput[] = [
      { maxJobs: 400, nodes: 3, gpusPerNode: 2, gpuNodes: 1, seed: 11, failureRate: 0.2, signalRate: 0.1, execErrorRate: 0.1, timeoutRate: 0.1, cancelPendingRate: 0.2, cancelRunningRate: 0.2, holdRate: 0.2, expediteRate: 0.2, dependencyRate: 0.3, unsatisfiableRate: 0.05 },
      { maxJobs: 1200, nodes: 64, coresPerNode: 8, submitRate: 40, seed: 12, cluster: 'big-iron' },
      { maxJobs: 200, nodes: 1, coresPerNode: 1, seed: 13, burstRate: 0.5, dependencyRate: 0.5 },
      { maxJobs: 300, seed: 14, schedDepth: 1, submitRate: 8, holdRate: 0.1 },
    ];
    for (const opts of configs) {
      const events = collect(opts);
      for (const [id, evs] of byJob(events)) {
        expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i));
        expect(checkOrder(evs), `${JSON.stringify(opts)} ${id}`).toBeUndefined();
      }
      checkResources(opts, events);
      const truth = groundTruth(opts);
      const rc = recount(events);
      expect(truth.jobs).toBe(rc.jobs);
      expect(truth.events).toBe(events.length);
      const sim = new Simulator(opts);
      const head = sim.nextBatch(Math.floor(events.length / 2));
      const rest = Simulator.restore(sim.checkpoint());
      const tail: SourceEvent[] = [];
      while (!rest.finished) tail.push(...rest.nextBatch(1000));
      expect(JSON.stringify([...head, ...tail])).toBe(JSON.stringify(events));
    }
  });
});

describe('sim: actions', () => {
  /** A small, busy cluster: always something pending and something running. */
  const BUSY: SimOptionsInput = { nodes: 2, gpusPerNode: 0, submitRate: 6, seed: 5, holdRate: 0, cancelPendingRate: 0, cancelRunningRate: 0, expediteRate: 0 };

  function tracker(sim: Simulator) {
    const state = new Map<string, { user: string; names: string[] }>();
    const feed = (evs: SourceEvent[]) => {
      for (const e of evs) {
        let s = state.get(e.job_id);
        if (!s) state.set(e.job_id, (s = { user: e.user!, names: [] }));
        s.names.push(e.name);
      }
      return evs;
    };
    const find = (pred: (names: string[]) => boolean) => [...state].find(([, s]) => pred(s.names));
    const pending = () => find((n) => n.at(-1) === 'priority' && !n.includes('urgency'))!;
    const running = () => find((n) => n.at(-1) === 'start')!;
    const inactive = () => find((n) => n.at(-1) === 'clean')!;
    feed(sim.advanceTo(sim.time + 3600));
    return { state, feed, pending, running, inactive };
  }

  it('cancel a pending job: exception(cancel) + clean, by its owner', () => {
    const sim = new Simulator(BUSY);
    const t = tracker(sim);
    const [id, s] = t.pending();
    const other = SIM_USERS.find((u) => u.name !== s.user)!.name;
    expect(sim.act({ action: 'cancel', job_id: id, user: other })).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(sim.act({ action: 'cancel', job_id: id, user: s.user })).toMatchObject({ ok: true, job_id: id });
    const evs = t.feed(sim.nextBatch()).filter((e) => e.job_id === id);
    const uid = SIM_USERS.find((u) => u.name === s.user)!.uid;
    expect(evs.map((e) => e.name)).toEqual(['exception', 'clean']);
    expect(evs[0]!.context).toEqual({ type: 'cancel', severity: 0, note: `canceled by ${s.user}`, userid: uid });
    expect(sim.act({ action: 'cancel', job_id: id })).toMatchObject({ ok: false, code: 'invalid', message: expect.stringMatching(/inactive/) });
  });

  it('cancel a running job: exception(cancel), finish 36608, release, free, clean', () => {
    const sim = new Simulator(BUSY);
    const t = tracker(sim);
    const [id] = t.running();
    expect(sim.act({ action: 'cancel', job_id: id, args: { note: 'maintenance' } })).toMatchObject({ ok: true });
    const evs = t.feed(sim.advanceTo(sim.time + 5)).filter((e) => e.job_id === id);
    expect(evs.map((e) => e.name)).toEqual(['exception', 'finish', 'release', 'free', 'clean']);
    expect(evs[0]!.context).toEqual({ type: 'cancel', severity: 0, note: 'maintenance', userid: 982 });
    expect(evs[1]!.context).toEqual({ status: 36608 });
  });

  it('hold, urgency and release a pending job; the checkpoint keeps the change', () => {
    const sim = new Simulator(BUSY);
    const t = tracker(sim);
    const [id, s] = t.pending();
    expect(sim.act({ action: 'hold', job_id: id, user: s.user })).toMatchObject({ ok: true, detail: { old_urgency: 16, urgency: 0 } });
    let evs = sim.nextBatch().filter((e) => e.job_id === id);
    expect(evs.map((e) => [e.name, e.context])).toEqual([
      ['urgency', { userid: SIM_USERS.find((u) => u.name === s.user)!.uid, urgency: 0 }],
      ['priority', { priority: 0 }],
    ]);
    // A held job stays pending; the restored simulator agrees with the original.
    const cp = sim.checkpoint();
    const a = sim.advanceTo(sim.time + 7200);
    const b = Simulator.restore(cp).advanceTo(sim.time);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.some((e) => e.job_id === id)).toBe(false);
    // Guests may not raise urgency above the default; the instance owner may expedite.
    expect(sim.act({ action: 'urgency', job_id: id, user: s.user, args: { urgency: 20 } })).toMatchObject({ ok: false, code: 'not_permitted' });
    expect(sim.act({ action: 'urgency', job_id: id, args: { urgency: 40 } })).toMatchObject({ ok: false, code: 'invalid' });
    expect(sim.act({ action: 'urgency', job_id: id, args: { urgency: 8 } })).toMatchObject({ ok: true, detail: { old_urgency: 0 } });
    evs = sim.nextBatch().filter((e) => e.job_id === id);
    expect(evs.map((e) => [e.name, e.context])).toEqual([
      ['urgency', { userid: 982, urgency: 8 }],
      ['priority', { priority: 8 }],
    ]);
    expect(sim.act({ action: 'release', job_id: id, user: s.user })).toMatchObject({ ok: true });
    evs = sim.nextBatch().filter((e) => e.job_id === id);
    expect(evs.map((e) => e.context)).toEqual([{ userid: expect.any(Number), urgency: 16 }, { priority: 16 }]);
    expect(sim.act({ action: 'urgency', job_id: id, args: { urgency: 31 } })).toMatchObject({ ok: true });
    evs = sim.nextBatch().filter((e) => e.job_id === id);
    expect(evs.map((e) => e.context)).toEqual([{ userid: 982, urgency: 31 }, { priority: 4294967295 }]);
    // Expedited: it is next to run.
    evs = sim.advanceTo(sim.time + 7200).filter((e) => e.job_id === id);
    expect(evs.map((e) => e.name).slice(0, 2)).toEqual(['alloc', 'start']);
  });

  it('refuses what Flux refuses', () => {
    const sim = new Simulator(BUSY);
    const t = tracker(sim);
    const [runId, run] = t.running();
    expect(sim.act({ action: 'hold', job_id: runId, user: run.user })).toMatchObject({ ok: false, code: 'invalid', message: expect.stringMatching(/allocated/) });
    expect(sim.act({ action: 'cancel', job_id: '12345' })).toMatchObject({ ok: false, code: 'no_such_job' });
    expect(sim.act({ action: 'cancel', job_id: 'not-an-id' })).toMatchObject({ ok: false, code: 'no_such_job' });
    expect(sim.act({ action: 'hold', job_id: runId, user: 'nobody' })).toMatchObject({ ok: false, code: 'not_permitted' });
    const [doneId] = t.inactive();
    expect(sim.act({ action: 'release', job_id: doneId })).toMatchObject({ ok: false, code: 'invalid' });
    expect(sim.act({ action: 'cancel' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(sim.act({ action: 'submit' })).toMatchObject({ ok: false, code: 'unsupported' });
  });

  it('signals a running job: finish with 128+signum in the exit code', () => {
    const sim = new Simulator(BUSY);
    const t = tracker(sim);
    const [id, s] = t.running();
    expect(sim.act({ action: 'signal', job_id: id, user: s.user, args: { signum: 15 } })).toMatchObject({ ok: true });
    const evs = sim.advanceTo(sim.time + 5).filter((e) => e.job_id === id);
    expect(evs.map((e) => e.name)).toEqual(['finish', 'release', 'free', 'clean']);
    expect(evs[0]!.context).toEqual({ status: 36608 });
  });
});

describe('sim: SchedulerSource', () => {
  const OPTS: SimOptionsInput = { maxJobs: 150, speed: 1e7, batchSize: 64 };

  it('run() emits the same stream through emit and resolves when maxJobs are done', async () => {
    const src = createSimSource(OPTS);
    expect(src.scheduler).toBe('flux');
    const got: SourceEvent[] = [];
    let calls = 0;
    await src.run({
      signal: new AbortController().signal,
      emit: async (evs, cp) => {
        calls++;
        expect(typeof cp).toBe('string');
        got.push(...evs);
      },
    });
    expect(calls).toBeGreaterThan(10);
    expect(JSON.stringify(got)).toBe(JSON.stringify(collect(OPTS)));
  });

  it('a restart from the last saved checkpoint continues without gaps or duplicates', async () => {
    const all = collect(OPTS).map(key);
    const seen: string[] = [];
    let saved: string | undefined;
    let runs = 0;
    while (runs < 20) {
      runs++;
      const ac = new AbortController();
      let n = 0;
      const src = createSimSource(OPTS);
      await src.run({
        checkpoint: saved,
        signal: ac.signal,
        emit: async (evs, cp) => {
          seen.push(...evs.map(key));
          saved = cp; // the scribe saves it once the log took the batch
          if (++n === 7) ac.abort();
        },
      });
      if (!ac.signal.aborted) break;
    }
    expect(runs).toBeGreaterThan(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(all);
  });

  it('paces at `speed` and stops at untilTime; act works while running', async () => {
    const o = parseSimOptions({});
    const src = createSimSource({ speed: 600, untilTime: o.epoch + 120 });
    const got: SourceEvent[] = [];
    const t0 = performance.now();
    let acted = false;
    await src.run({
      signal: new AbortController().signal,
      emit: async (evs) => {
        got.push(...evs);
        const start = got.find((e) => e.name === 'start' && !got.some((x) => x.job_id === e.job_id && x.name === 'finish'));
        if (!acted && start) {
          acted = true;
          expect(await src.act({ action: 'cancel', job_id: start.job_id })).toMatchObject({ ok: true });
        }
      },
    });
    const wall = (performance.now() - t0) / 1000;
    expect(wall).toBeGreaterThan(0.12);
    expect(wall).toBeLessThan(5);
    expect(got.length).toBeGreaterThan(10);
    expect(got.at(-1)!.ts).toBeLessThanOrEqual(o.epoch + 120);
    expect(acted).toBe(true);
    expect(got.some((e) => e.name === 'exception' && e.context.type === 'cancel' && e.context.userid === 982)).toBe(true);
  });

  it('stops promptly when aborted', async () => {
    const src = createSimSource({ speed: 1 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    await src.run({ signal: ac.signal, emit: async () => {} });
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
