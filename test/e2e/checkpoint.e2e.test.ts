/**
 * `jobscribe up` over a data directory whose scribe checkpoint is empty, torn or not a
 * checkpoint: it exits non-zero with a message that names the file and the way out, instead of a
 * bare JSON parse error (or, for an empty file, silently re-reading the source from the start).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Simulator } from '../../scribe/sim/index.js';
import { runCli } from '../support/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A real checkpoint of the default simulated cluster, after one batch. */
function simCheckpoint(): string {
  const sim = new Simulator({ seed: 7, cluster: 'sim', nodes: 4, maxJobs: 40 });
  sim.nextBatch(100);
  return sim.checkpoint();
}

describe('jobscribe up with an unusable scribe checkpoint', () => {
  it.each([
    ['empty', '', 'the file is empty'],
    ['truncated', simCheckpoint().slice(0, 300), 'not JSON: '],
    ['not a checkpoint', '{"v":1}', 'not a simulator checkpoint'],
  ])('exits 1 naming the file when it is %s, and leaves the file alone', async (_what, text, reason) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'jobscribe-e2e-checkpoint-'));
    dirs.push(dataDir);
    const file = join(dataDir, 'scribe', 'sim.checkpoint.json');
    mkdirSync(join(dataDir, 'scribe'), { recursive: true });
    writeFileSync(file, text);
    const r = await runCli(['up', '--data-dir', dataDir, '--http-port', '0', '--log-level', 'warn', '--cluster', 'sim'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`checkpoint ${file} is unreadable (${reason}`);
    expect(r.stderr).toContain('restore it, or delete it to re-read the source from the start');
    expect(readFileSync(file, 'utf8')).toBe(text);
  });
});
