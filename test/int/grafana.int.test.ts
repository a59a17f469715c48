/**
 * deploy/grafana/jobscribe.json: every Prometheus expression names only metrics jobscribe
 * exports (scribe, projector, MCP service), and every ClickHouse query runs on the real read-model
 * schema (chDB) once Grafana's macros are expanded, so a renamed metric or column breaks this test
 * rather than a center's dashboard.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROCESS_METRICS, RUNTIME_METRICS } from '../../deploy/health.js';
import { McpMetrics } from '../../mcp/metrics.js';
import { openTestClickHouse } from '../support/chdb.js';
import { REPO_ROOT } from '../support/cli.js';

interface Target {
  expr?: string;
  rawSql?: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'jobscribe.json'), 'utf8')) as { __inputs: { name: string }[]; panels: Panel[] };
const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

/** Every metric name the processes can export. */
function exported(): Set<string> {
  const names = new Set<string>(RUNTIME_METRICS);
  for (const [component, metrics] of Object.entries(PROCESS_METRICS)) for (const m of Object.keys(metrics)) names.add(`jobscribe_${component}_${m}`);
  const mcp = new McpMetrics();
  mcp.httpRequest('mcp', 200);
  mcp.toolCall('get_job', 'ok', 0.01);
  mcp.authFailure('invalid_token');
  mcp.rateLimitedRequest();
  for (const line of mcp.render().split('\n')) {
    const m = /^([a-z_]+)[{ ]/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

let ch: Awaited<ReturnType<typeof openTestClickHouse>>;
beforeAll(async () => {
  ch = await openTestClickHouse('jobscribe_dash');
});
afterAll(async () => ch?.cleanup());

describe('Grafana dashboard', () => {
  it('uses only the two data sources it declares as inputs', () => {
    expect(dashboard.__inputs.map((i) => i.name).sort()).toEqual(['DS_CLICKHOUSE', 'DS_PROMETHEUS']);
    for (const t of targets) expect(['${DS_PROMETHEUS}', '${DS_CLICKHOUSE}'], t.panel).toContain(t.datasource.uid);
    expect(targets.filter((t) => t.expr).length).toBeGreaterThanOrEqual(15);
    expect(targets.filter((t) => t.rawSql).length).toBeGreaterThanOrEqual(6);
  });

  it('every Prometheus expression names metrics jobscribe exports', () => {
    const names = exported();
    const used = new Set<string>();
    for (const t of targets.filter((x) => x.expr)) {
      for (const [name] of t.expr!.matchAll(/\b(?:jobscribe|process|nodejs)_[a-z_]+\b/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        expect(names.has(name) || names.has(base), `${t.panel}: ${name} is not exported`).toBe(true);
        used.add(base);
      }
    }
    // the figures the dashboard exists for
    for (const m of ['jobscribe_projector_lag', 'jobscribe_scribe_events_published_total', 'jobscribe_projector_dead_letters_total', 'jobscribe_mcp_tool_duration_seconds']) expect(used).toContain(m);
  });

  it('every ClickHouse query runs on the read-model schema with the macros expanded', async () => {
    for (const t of targets.filter((x) => x.rawSql)) {
      const sql = t
        .rawSql!.replaceAll('${database}', ch.database)
        .replace(/\$__timeFilter\((\w+)\)/g, '$1 >= now() - INTERVAL 1 DAY AND $1 <= now()')
        .replace(/\$__timeInterval\((\w+)\)/g, 'toStartOfInterval($1, INTERVAL 60 second)');
      expect(sql, t.panel).not.toContain('$');
      await expect(ch.client.query({ query: sql, format: 'JSONEachRow' }).then((r) => r.json()), t.panel).resolves.toBeInstanceOf(Array);
    }
  });
});
