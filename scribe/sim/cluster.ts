/**
 * The simulated cluster: nodes (`<cluster>0..N-1`, broker rank = node index) with cores and
 * GPUs, queues that partition the nodes by property (as `[queues.X] requires = ["X"]` does),
 * the users, and the resource bookkeeping of a sched-simple-like allocator. Also the RFC 22 idset
 * / RFC 29 hostlist encodings, R version 1 and the sched `resource_summary` string exactly as
 * flux-core prints them ("rank[0-1]/core[0-3],gpu0").
 */
import { partitionNodes, type SimOptions } from './options.js';

export interface SimUser {
  name: string;
  uid: number;
  /** Workload profile (see workload.ts). */
  kind: 'md' | 'ml' | 'cfd' | 'chem' | 'dev' | 'analysis' | 'climate';
  /** Relative share of submissions. */
  weight: number;
}

/** A dozen HPC users with their typical work. */
export const SIM_USERS: readonly SimUser[] = [
  { name: 'jchen', uid: 50211, kind: 'md', weight: 12 },
  { name: 'mgarcia', uid: 50344, kind: 'cfd', weight: 6 },
  { name: 'akumar', uid: 50417, kind: 'ml', weight: 10 },
  { name: 'lwang', uid: 50503, kind: 'analysis', weight: 14 },
  { name: 'rsmith', uid: 50622, kind: 'dev', weight: 9 },
  { name: 'ekim', uid: 50718, kind: 'chem', weight: 7 },
  { name: 'dnguyen', uid: 50806, kind: 'ml', weight: 8 },
  { name: 'tbrown', uid: 50931, kind: 'climate', weight: 2 },
  { name: 'spatel', uid: 51042, kind: 'analysis', weight: 10 },
  { name: 'omiller', uid: 51157, kind: 'md', weight: 6 },
  { name: 'hlopez', uid: 51263, kind: 'dev', weight: 7 },
  { name: 'ywu', uid: 51379, kind: 'chem', weight: 6 },
];

export interface SimQueue {
  name: string;
  /** Broker ranks of the queue's nodes (ascending, contiguous). */
  ranks: number[];
  /** Jobspec default duration (s), from `policy.jobspec.defaults.system.duration`. */
  defaultDuration: number;
  /** Policy limit on duration (s). */
  maxDuration: number;
  gpus: boolean;
}

export interface SimCluster {
  name: string;
  nodes: number;
  coresPerNode: number;
  /** GPUs per node, per rank (0 outside the gpu queue). */
  gpusOf: number[];
  queues: SimQueue[];
  /** Queue index of each rank. */
  queueOf: number[];
  users: readonly SimUser[];
  ownerUser: string;
  ownerUid: number;
}

export function buildCluster(o: SimOptions): SimCluster {
  const { batch: batchNodes, debug: debugNodes, gpu: gpuNodes } = partitionNodes(o);
  if (batchNodes < 1) throw new Error(`sim cluster: no nodes left for the batch queue (nodes ${o.nodes}, gpu ${gpuNodes}, debug ${debugNodes})`);
  if (gpuNodes > 0 && o.gpusPerNode === 0) throw new Error('sim cluster: gpuNodes > 0 needs gpusPerNode > 0');
  const queues: SimQueue[] = [];
  const span = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  queues.push({ name: 'batch', ranks: span(0, batchNodes), defaultDuration: 3600, maxDuration: 86400, gpus: false });
  if (debugNodes > 0) queues.push({ name: 'debug', ranks: span(batchNodes, debugNodes), defaultDuration: 900, maxDuration: 3600, gpus: false });
  if (gpuNodes > 0) queues.push({ name: 'gpu', ranks: span(batchNodes + debugNodes, gpuNodes), defaultDuration: 3600, maxDuration: 43200, gpus: true });
  const queueOf = new Array<number>(o.nodes).fill(0);
  const gpusOf = new Array<number>(o.nodes).fill(0);
  queues.forEach((q, qi) => {
    for (const r of q.ranks) {
      queueOf[r] = qi;
      if (q.gpus) gpusOf[r] = o.gpusPerNode;
    }
  });
  return { name: o.cluster, nodes: o.nodes, coresPerNode: o.coresPerNode, gpusOf, queues, queueOf, users: SIM_USERS, ownerUser: o.ownerUser, ownerUid: o.ownerUid };
}

export function queueIndex(c: SimCluster, name: string): number {
  return c.queues.findIndex((q) => q.name === name);
}

// ---------------------------------------------------------------------------------------------
// RFC 22 idsets and RFC 29 hostlists

/** "0-3,5" for ascending ids. */
export function idsetEncode(ids: readonly number[]): string {
  let out = '';
  let i = 0;
  while (i < ids.length) {
    const lo = ids[i]!;
    let hi = lo;
    while (i + 1 < ids.length && ids[i + 1] === hi + 1) hi = ids[++i]!;
    out += (out ? ',' : '') + (hi > lo ? `${lo}-${hi}` : `${lo}`);
    i++;
  }
  return out;
}

/** "0" or "[0-3,5]": the bracketed form of rlist_dumps and hostlists. */
export function idsetBrackets(ids: readonly number[]): string {
  const s = idsetEncode(ids);
  return ids.length > 1 ? `[${s}]` : s;
}

export function hostlistEncode(prefix: string, ranks: readonly number[]): string {
  return prefix + idsetBrackets(ranks);
}

// ---------------------------------------------------------------------------------------------
// Requests, allocations, R

/** A job's resource request, as the jobspec asks for it. */
export interface ResourceRequest {
  /** Node count (0: slots anywhere, no node level in the jobspec). */
  nn: number;
  /** Total slots (= tasks: one task per slot). */
  ns: number;
  /** Cores per slot. */
  cps: number;
  /** GPUs per slot. */
  gps: number;
  /** Whole nodes (`--exclusive`): all their cores and GPUs. */
  ex: boolean;
}

/** One node of an allocation: [rank, core ids, gpu ids]. */
export type AllocEntry = [number, number[], number[]];

export function allocCounts(a: readonly AllocEntry[]): { nnodes: number; ncores: number; ngpus: number } {
  let ncores = 0;
  let ngpus = 0;
  for (const [, c, g] of a) {
    ncores += c.length;
    ngpus += g.length;
  }
  return { nnodes: a.length, ncores, ngpus };
}

interface Group {
  ranks: number[];
  cores: string;
  gpus: string;
  coresB: string;
  gpusB: string;
}

function groups(a: readonly AllocEntry[]): Group[] {
  const byKey = new Map<string, Group>();
  const out: Group[] = [];
  for (const [rank, c, g] of a) {
    const cores = idsetEncode(c);
    const gpus = idsetEncode(g);
    const key = cores + '|' + gpus;
    let grp = byKey.get(key);
    if (!grp) {
      grp = { ranks: [], cores, gpus, coresB: idsetBrackets(c), gpusB: idsetBrackets(g) };
      byKey.set(key, grp);
      out.push(grp);
    }
    grp.ranks.push(rank);
  }
  return out;
}

/** sched-simple's `resource_summary` annotation (rlist_dumps): "rank0/core[0-1] rank1/core0". */
export function resourceSummary(a: readonly AllocEntry[]): string {
  return groups(a)
    .map((g) => `rank${idsetBrackets(g.ranks)}/core${g.coresB}${g.gpus ? `,gpu${g.gpusB}` : ''}`)
    .join(' ');
}

/** R version 1 (RFC 20) of an allocation, as it arrives with the journal's alloc event. */
export function allocR(
  c: SimCluster,
  a: readonly AllocEntry[],
  starttime: number,
  expiration: number,
  nslots: number,
): Record<string, unknown> {
  const R_lite = groups(a).map((g) => ({
    rank: idsetEncode(g.ranks),
    children: g.gpus ? { core: g.cores, gpu: g.gpus } : { core: g.cores },
  }));
  return {
    version: 1,
    execution: {
      R_lite,
      starttime,
      expiration,
      nslots,
      nodelist: [hostlistEncode(c.name, a.map((e) => e[0]))],
    },
  };
}

/** The whole instance's R (what `flux resource R` prints), with queue properties. */
export function clusterR(c: SimCluster): Record<string, unknown> {
  const all: AllocEntry[] = [];
  for (let r = 0; r < c.nodes; r++) {
    all.push([r, range(c.coresPerNode), range(c.gpusOf[r] ?? 0)]);
  }
  const R = allocR(c, all, 0, 0, 0) as { version: number; execution: Record<string, unknown> };
  delete R.execution.nslots;
  R.execution.properties = Object.fromEntries(c.queues.map((q) => [q.name, idsetEncode(q.ranks)]));
  return R;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Why a request can never be satisfied in its queue (sched-simple's note), or undefined.
 * Only "eligible" nodes count: those of the job's queue.
 */
export function unsatisfiableNote(c: SimCluster, q: number, r: ResourceRequest): string | undefined {
  const queue = c.queues[q]!;
  const eligible = queue.ranks.length;
  const gpus = c.gpusOf[queue.ranks[0]!] ?? 0;
  if (r.ex) {
    if (r.nn > eligible) return `unsatisfiable request: need ${r.nn} exclusive node(s), only ${eligible} eligible`;
    return undefined;
  }
  if (r.nn > eligible) return `unsatisfiable request: need ${r.nn} node(s), only ${eligible} eligible`;
  const perNode = r.nn > 0 ? Math.ceil(r.ns / r.nn) : 1;
  if (perNode * r.cps > c.coresPerNode || perNode * r.gps > gpus) return 'unsatisfiable request';
  const fit = Math.min(Math.floor(c.coresPerNode / r.cps), r.gps > 0 ? Math.floor(gpus / r.gps) : Infinity);
  if (r.ns > fit * eligible) return 'unsatisfiable request';
  return undefined;
}

/**
 * Free/used cores and GPUs per node. Allocation follows sched-simple's rlist: slot requests go
 * "worst-fit" (emptiest node first, lowest free ids), node requests spread their slots over the
 * N emptiest nodes that fit, exclusive requests take N idle nodes whole (lowest ranks).
 */
export class Resources {
  private readonly coreUsed: Uint8Array[];
  private readonly gpuUsed: Uint8Array[];
  private readonly freeCores: Int32Array;
  private readonly freeGpus: Int32Array;
  /** Free cores per queue. */
  private readonly queueFree: number[];

  constructor(private readonly c: SimCluster) {
    this.coreUsed = Array.from({ length: c.nodes }, () => new Uint8Array(c.coresPerNode));
    this.gpuUsed = Array.from({ length: c.nodes }, (_, r) => new Uint8Array(c.gpusOf[r] ?? 0));
    this.freeCores = new Int32Array(c.nodes).fill(c.coresPerNode);
    this.freeGpus = Int32Array.from(c.gpusOf);
    this.queueFree = c.queues.map((q) => q.ranks.length * c.coresPerNode);
  }

  freeCoresIn(q: number): number {
    return this.queueFree[q] ?? 0;
  }

  /** Tries to allocate `r` in queue `q`; on success the resources are taken. */
  alloc(q: number, r: ResourceRequest): AllocEntry[] | null {
    const queue = this.c.queues[q]!;
    const cpn = this.c.coresPerNode;
    if (!r.ex && r.ns * r.cps > this.queueFree[q]!) return null;
    let plan: Array<[number, number]>; // [rank, slots] (slots ignored when exclusive)
    if (r.ex) {
      plan = [];
      for (const rank of queue.ranks) {
        if (this.freeCores[rank] === cpn && this.freeGpus[rank] === (this.c.gpusOf[rank] ?? 0)) {
          plan.push([rank, 0]);
          if (plan.length === r.nn) break;
        }
      }
      if (plan.length < r.nn) return null;
    } else if (r.nn > 0) {
      const per = Math.ceil(r.ns / r.nn);
      const fits = queue.ranks.filter((rank) => this.freeCores[rank]! >= per * r.cps && this.freeGpus[rank]! >= per * r.gps);
      if (fits.length < r.nn) return null;
      fits.sort((x, y) => this.freeCores[y]! - this.freeCores[x]! || x - y);
      plan = [];
      let left = r.ns;
      for (let i = 0; i < r.nn; i++) {
        const n = Math.min(per, left - (r.nn - i - 1)); // at least one slot per node
        plan.push([fits[i]!, n]);
        left -= n;
      }
      plan.sort((x, y) => x[0] - y[0]);
    } else {
      const order = queue.ranks.filter((rank) => this.freeCores[rank]! >= r.cps && this.freeGpus[rank]! >= r.gps);
      order.sort((x, y) => this.freeCores[y]! - this.freeCores[x]! || x - y);
      plan = [];
      let left = r.ns;
      for (const rank of order) {
        const byCores = Math.floor(this.freeCores[rank]! / r.cps);
        const byGpus = r.gps > 0 ? Math.floor(this.freeGpus[rank]! / r.gps) : Infinity;
        const n = Math.min(byCores, byGpus, left);
        if (n > 0) {
          plan.push([rank, n]);
          left -= n;
          if (left === 0) break;
        }
      }
      if (left > 0) return null;
      plan.sort((x, y) => x[0] - y[0]);
    }
    const out: AllocEntry[] = [];
    for (const [rank, slots] of plan) {
      const ncores = r.ex ? cpn : slots * r.cps;
      const ngpus = r.ex ? (this.c.gpusOf[rank] ?? 0) : slots * r.gps;
      out.push([rank, takeIds(this.coreUsed[rank]!, ncores), takeIds(this.gpuUsed[rank]!, ngpus)]);
      this.freeCores[rank]! -= ncores;
      this.freeGpus[rank]! -= ngpus;
      this.queueFree[this.c.queueOf[rank]!]! -= ncores;
    }
    return out;
  }

  /** Marks an allocation used (restoring a checkpoint). */
  take(a: readonly AllocEntry[]): void {
    for (const [rank, cores, gpus] of a) {
      for (const i of cores) this.coreUsed[rank]![i] = 1;
      for (const i of gpus) this.gpuUsed[rank]![i] = 1;
      this.freeCores[rank]! -= cores.length;
      this.freeGpus[rank]! -= gpus.length;
      this.queueFree[this.c.queueOf[rank]!]! -= cores.length;
    }
  }

  free(a: readonly AllocEntry[]): void {
    for (const [rank, cores, gpus] of a) {
      for (const i of cores) this.coreUsed[rank]![i] = 0;
      for (const i of gpus) this.gpuUsed[rank]![i] = 0;
      this.freeCores[rank]! += cores.length;
      this.freeGpus[rank]! += gpus.length;
      this.queueFree[this.c.queueOf[rank]!]! += cores.length;
    }
  }
}

function takeIds(used: Uint8Array, n: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < used.length && ids.length < n; i++) {
    if (used[i] === 0) {
      used[i] = 1;
      ids.push(i);
    }
  }
  if (ids.length < n) throw new Error('sim resources: bookkeeping out of sync');
  return ids;
}
