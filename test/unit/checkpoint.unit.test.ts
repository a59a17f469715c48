/**
 * scribe/checkpoint.ts: only a missing checkpoint file means "start from the beginning". An
 * empty, torn or garbage one is an error that names the file and says what to do (it used to be
 * a bare JSON parse error, and an empty file silently re-read the whole source). Saves are
 * atomic: temp file, fsync, rename.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../support/tempDirs.js';
import { CheckpointError, fileCheckpointStore } from '../../scribe/checkpoint.js';
import { Simulator } from '../../scribe/sim/index.js';
import { decodeCheckpoint } from '../../scribe/slurm/checkpoint.js';

const tempDir = tempDirs('jobscribe-checkpoint-');
function checkpointPath(): string {
  const d = tempDir();
  return join(d, 'scribe', 'alpha.checkpoint.json');
}

/** A real checkpoint: the simulator's state after its first batch. */
function simCheckpoint(): string {
  const sim = new Simulator({ seed: 3, cluster: 'alpha', nodes: 2, maxJobs: 20 });
  sim.nextBatch(50);
  return sim.checkpoint();
}

describe('fileCheckpointStore', () => {
  it('loads nothing when the file is missing, and what was saved otherwise (atomically: no temp file left)', () => {
    const path = checkpointPath();
    const store = fileCheckpointStore(path);
    expect(store.load()).toBeUndefined();
    const cp = simCheckpoint();
    store.save(cp);
    expect(store.load()).toBe(cp);
    expect(readFileSync(path, 'utf8')).toBe(cp);
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it.each([
    ['empty', () => '', /\(the file is empty\)/],
    ['blank', () => '\n  \n', /\(the file is empty\)/],
    ['truncated', () => simCheckpoint().slice(0, 200), /\(not JSON: /],
    ['garbage', () => '\u0000\u0000\u0000\u0000', /\(not JSON: /],
  ])('refuses a %s file, naming it and the way out', (_what, text, reason) => {
    const path = checkpointPath();
    const store = fileCheckpointStore(path);
    store.save('{}');
    writeFileSync(path, text());
    let err: unknown;
    try {
      store.load();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    const message = (err as Error).message;
    expect(message).toContain(`checkpoint ${path} is unreadable`);
    expect(message).toMatch(reason);
    expect(message).toContain('restore it, or delete it to re-read the source from the start');
  });
});

describe('source checkpoints of the wrong shape', () => {
  it('are CheckpointErrors that the scribe can name the file of', () => {
    expect(() => decodeCheckpoint('{"v":7}')).toThrow(CheckpointError);
    expect(() => Simulator.restore('{"kind":"other"}')).toThrow(CheckpointError);
    const e = new CheckpointError('not a flux source checkpoint (v=2)').at('/d/scribe/tioga.checkpoint.json');
    expect(e.message).toMatch(/^checkpoint \/d\/scribe\/tioga\.checkpoint\.json is unreadable \(not a flux source checkpoint \(v=2\)\): restore it, or delete it/);
  });
});
