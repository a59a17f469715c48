/**
 * The simulated cluster as a SchedulerSource ('flux'): paces the simulator in real time at
 * `speed` simulated seconds per wall-clock second and hands events to `emit` in small batches,
 * awaiting each (backpressure); the checkpoint passed with a batch is the simulator state right
 * after it, so `run({ checkpoint })` resumes with the next event — no gap, no duplicate.
 * `act` cancels / holds / releases / re-prioritizes / signals jobs at the current simulated time.
 * The only impure part of scribe/sim (timers and the wall clock live here).
 */
import type { ActionRequest, ActionResult, OwnerResult, SchedulerSource, SourceRunOptions } from '../source.js';
import { parseSimOptions, type SimOptions, type SimOptionsInput } from './options.js';
import { Simulator } from './simulator.js';
import { SlurmSimulator } from './slurm.js';
import { CheckpointError } from '../checkpoint.js';

export interface SimSource extends SchedulerSource {
  readonly scheduler: 'flux' | 'slurm';
  /** The simulator currently driven (replaced when `run` restores a checkpoint); SlurmSimulator with scheduler 'slurm'. */
  readonly simulator: Simulator | SlurmSimulator;
  readonly options: SimOptions;
  act(request: ActionRequest): Promise<ActionResult>;
  owner(jobId: string): Promise<OwnerResult>;
}

/** Longest real-time sleep between two looks at the clock (ms). */
const MAX_IDLE_MS = 100;
/** Events per emit while back-filling (the wall clock far ahead of simulated time). */
const BACKFILL_BATCH = 4096;

export interface SimSourceClock {
  /** Wall-clock milliseconds since 1970 (clock 'wall'); default Date.now. */
  now?: () => number;
}

export function createSimSource(input?: SimOptionsInput, clock: SimSourceClock = {}): SimSource {
  const wallNow = clock.now ?? Date.now;
  const options = parseSimOptions(input);
  const slurm = options.scheduler === 'slurm';
  let sim: Simulator | SlurmSimulator = slurm ? new SlurmSimulator(options) : new Simulator(options);
  return {
    scheduler: options.scheduler,
    options,
    get simulator() {
      return sim;
    },
    async act(request) {
      return sim.act(request);
    },
    async owner(jobId) {
      return sim.owner(jobId);
    },
    async run({ checkpoint, signal, emit }: SourceRunOptions) {
      if (checkpoint) {
        const saved = simulatedScheduler(checkpoint);
        if (saved !== options.scheduler) {
          throw new Error(`the saved checkpoint is of a simulated ${saved} cluster, not ${options.scheduler}: keep the scheduler (simScheduler) or use another cluster name or data dir`);
        }
        sim = slurm ? SlurmSimulator.restore(checkpoint) : Simulator.restore(checkpoint);
      }
      const current = sim;
      const speed = options.clock === 'wall' ? 1 : options.speed;
      const wall0 = performance.now();
      const sim0 = current.time;
      while (!signal.aborted && !current.finished) {
        const target = options.clock === 'wall' ? wallNow() / 1000 : sim0 + ((performance.now() - wall0) / 1000) * speed;
        // Far behind the wall clock (a back-fill, or a restart after downtime): big batches.
        const size = options.clock === 'wall' && target - current.time > 60 ? Math.max(options.batchSize, BACKFILL_BATCH) : options.batchSize;
        const batch = current.nextBatch(size, target);
        if (batch.length > 0) {
          await emit(batch, current.checkpoint());
          continue;
        }
        current.setClock(target);
        if (current.finished) break;
        const next = current.nextTime();
        const waitMs = next === undefined ? MAX_IDLE_MS : ((next - current.time) / speed) * 1000;
        await sleep(Math.min(MAX_IDLE_MS, Math.max(1, waitMs)), signal);
      }
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Which simulator wrote a checkpoint (CheckpointError when it is not a simulator's). */
function simulatedScheduler(checkpoint: string): 'flux' | 'slurm' {
  let kind: unknown;
  try {
    kind = (JSON.parse(checkpoint) as { kind?: unknown } | null)?.kind;
  } catch (err) {
    throw new CheckpointError(`not JSON: ${(err as Error).message}`);
  }
  if (kind === 'jobscribe-sim-slurm') return 'slurm';
  if (kind === 'jobscribe-sim') return 'flux';
  throw new CheckpointError(`not a simulator checkpoint (kind ${JSON.stringify(kind) ?? 'missing'})`);
}
