/**
 * job_timeline shows each event's context without what earlier events already said
 * (freshContexts). On a simulated Slurm job (whose events repeat the job's description) nothing
 * is lost: replaying the fresh contexts in order gives, at every event, the same latest value of
 * every key as the full contexts do; and the answer is much smaller.
 */
import { describe, expect, it } from 'vitest';
import { freshContexts } from '../../mcp/tools/jobTimeline.js';
import { simulateSlurm } from '../../scribe/sim/index.js';

describe('freshContexts', () => {
  it('drops a key whose value was already shown, keeps changes and new keys', () => {
    expect(freshContexts([{ a: 1, b: { x: 1 } }, { a: 1, b: { x: 2 } }, { a: 1, c: 3 }, { a: 2 }, {}])).toEqual([{ a: 1, b: { x: 1 } }, { b: { x: 2 } }, { c: 3 }, { a: 2 }, {}]);
  });

  it('loses nothing of a simulated Slurm job and shrinks its timeline', () => {
    const events = [...simulateSlurm({ seed: 3, cluster: 's', nodes: 4, maxJobs: 30 })];
    const byJob = new Map<string, Record<string, unknown>[]>();
    for (const e of events) byJob.set(e.job_id, [...(byJob.get(e.job_id) ?? []), e.context]);
    let before = 0;
    let after = 0;
    for (const contexts of byJob.values()) {
      const fresh = freshContexts(contexts);
      const latest = new Map<string, string>();
      const latestFresh = new Map<string, string>();
      contexts.forEach((c, i) => {
        for (const [k, v] of Object.entries(c)) latest.set(k, JSON.stringify(v));
        for (const [k, v] of Object.entries(fresh[i]!)) latestFresh.set(k, JSON.stringify(v));
        expect(latestFresh).toEqual(latest);
      });
      before += JSON.stringify(contexts).length;
      after += JSON.stringify(fresh).length;
    }
    process.stdout.write(`  simulated Slurm timelines' contexts: ${before} → ${after} characters\n`);
    expect(after).toBeLessThan(before * 0.8);
  });
});
