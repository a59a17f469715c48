/**
 * `--metrics-port` of `jobscribe scribe` and `jobscribe project`, as separate processes of the
 * built CLI on the real Kafka broker: /healthz answers ok, /metrics (Prometheus text) counts what
 * each did — events published, events projected, per-partition lag reaching 0, dead letters,
 * retries — and a scribe whose broker is gone counts its publish retries. When the health turns
 * to 503 is ProcessMetrics' rule, tested with a clock below.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessMetrics } from '../../deploy/health.js';
import { assertBuilt, startCli, stopCli, waitUntil, type Running } from '../support/cli.js';
import { kafkaBrokers, requireKafka, uniqueName } from '../support/kafka.js';

const dirs: string[] = [];
const running: Running[] = [];
const tempDir = (tag: string) => {
  const d = mkdtempSync(join(tmpdir(), `jobscribe-health-${tag}-`));
  dirs.push(d);
  return d;
};

/** A metric's value from Prometheus text: the sum over every series whose labels contain `labelPart`. */
function metric(text: string, name: string, labelPart = ''): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labelPart)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

async function start(args: string[]): Promise<{ proc: Running; base: string }> {
  const proc = startCli([...args, '--metrics-port', '0', '--log-level', 'warn']);
  running.push(proc);
  const base = (await proc.waitFor(/health and metrics: (http:\/\/127\.0\.0\.1:\d+)\/healthz/, 60_000))[1]!;
  return { proc, base };
}

const text = async (url: string, init?: RequestInit) => {
  const r = await fetch(url, init);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
};

let ready = false;
beforeAll(async () => {
  assertBuilt();
  ready = await requireKafka();
}, 240_000);

afterAll(async () => {
  for (const r of running) await stopCli(r);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('scribe and projector health and metrics', () => {
  it('count what they publish and project, with lag per partition reaching 0', async (ctx) => {
    if (!ready) return ctx.skip();
    const prefix = uniqueName('health');
    const kafka = ['--kafka', kafkaBrokers().join(','), '--topic-prefix', prefix, '--kafka-partitions', '2'];
    const scribe = await start(['scribe', '--source', 'sim', '--cluster', 'hc1', '--sim-speed', '600', '--sim-nodes', '4', '--seed', '5', '--data-dir', tempDir('scribe'), ...kafka]);
    const projector = await start(['project', '--data-dir', tempDir('project'), ...kafka]);

    const health = await text(`${scribe.base}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', component: 'scribe' });
    expect(JSON.parse((await text(`${projector.base}/healthz`)).body)).toMatchObject({ status: 'ok', component: 'projector' });

    const published = await waitUntil(
      async () => {
        const m = await text(`${scribe.base}/metrics`);
        const n = metric(m.body, 'jobscribe_scribe_events_published_total', 'cluster="hc1"');
        return n !== undefined && n >= 50 && m;
      },
      { timeoutMs: 60_000, what: 'the scribe to publish 50 events' },
    );
    expect(published.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(metric(published.body, 'jobscribe_scribe_batches_total', 'cluster="hc1"')).toBeGreaterThan(0);
    expect(metric(published.body, 'jobscribe_scribe_last_publish_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metric(published.body, 'jobscribe_scribe_healthy')).toBe(1);
    expect(metric(published.body, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);

    // The projector catches up: every published event projected, lag 0 on both partitions.
    const topic = `${prefix}.hc1.events`;
    const projected = await waitUntil(
      async () => {
        await new Promise((r) => setTimeout(r, 500));
        const p = (await text(`${projector.base}/metrics`)).body;
        const events = metric(p, 'jobscribe_projector_events_total', `topic="${topic}"`) ?? 0;
        const lag = metric(p, 'jobscribe_projector_lag', `topic="${topic}"`);
        return events >= 50 && lag === 0 && p;
      },
      { timeoutMs: 90_000, what: 'the projector to project 50 events and reach lag 0' },
    );
    expect(projected.match(new RegExp(`^jobscribe_projector_lag\\{topic="${topic.replaceAll('.', '\\.')}",partition="\\d"\\} 0$`, 'gm'))).toHaveLength(2);
    expect(metric(projected, 'jobscribe_projector_dead_letters_total', `topic="${topic}"`)).toBe(0);
    expect(metric(projected, 'jobscribe_projector_events_per_second')).toBeGreaterThan(0);
    expect(metric(projected, 'jobscribe_projector_retries_total')).toBeUndefined();

    expect((await text(`${scribe.base}/nope`)).status).toBe(404);
    expect((await text(`${scribe.base}/metrics`, { method: 'POST' })).status).toBe(405);
  }, 180_000);

  it('a scribe whose broker is unreachable keeps running and counts its publish retries', async (ctx) => {
    if (!ready) return ctx.skip();
    // A port nothing listens on: every publish fails and is retried with back-off.
    const scribe = await start(['scribe', '--source', 'sim', '--cluster', 'hc2', '--sim-speed', '600', '--kafka', '127.0.0.1:9', '--topic-prefix', uniqueName('health'), '--data-dir', tempDir('lost')]);
    const retries = await waitUntil(
      async () => {
        const n = metric((await text(`${scribe.base}/metrics`)).body, 'jobscribe_scribe_retries_total', 'step="publish"');
        return n !== undefined && n >= 1 && n;
      },
      { timeoutMs: 90_000, what: 'a counted publish retry' },
    );
    expect(retries).toBeGreaterThanOrEqual(1);
    expect(scribe.proc.child.exitCode).toBeNull();
    expect(metric((await text(`${scribe.base}/metrics`)).body, 'jobscribe_scribe_events_published_total')).toBeUndefined();
  }, 120_000);
});

describe('ProcessMetrics health rule', () => {
  it('turns 503-worthy after a step keeps failing past the threshold, and ok again on progress', () => {
    let now = 1_000_000;
    const m = new ProcessMetrics('projector', 60, () => now);
    expect(m.health()).toMatchObject({ ok: true, body: { status: 'ok' } });
    m.retrying('write', new Error('ClickHouse: connection refused'));
    now += 30_000;
    m.retrying('write', new Error('ClickHouse: connection refused'));
    expect(m.health().ok).toBe(true);
    now += 31_000;
    expect(m.health()).toMatchObject({ ok: false, body: { status: 'failing', failing_for_s: 61, last_error: 'ClickHouse: connection refused' } });
    expect(m.render()).toContain('jobscribe_projector_healthy 0');
    expect(m.render()).toContain('jobscribe_projector_retries_total{step="write"} 2');
    m.progressed(10);
    expect(m.health()).toMatchObject({ ok: true, body: { status: 'ok' } });
    expect(m.render()).toContain('jobscribe_projector_healthy 1');
  });
});
