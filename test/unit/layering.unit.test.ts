/**
 * The project's layering, held by a test: each top-level component imports only from the
 * components below it (schemas ← log ← scribe, projector ← mcp ← deploy; scribe and projector
 * never import each other), no file imports itself back through others (type-only imports
 * included), and every test file belongs to one tier (unit, int, e2e) so that no misnamed file
 * is silently left out of `npm test`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

const RANK: Record<string, number> = { schemas: 0, log: 1, scribe: 2, projector: 2, mcp: 3, deploy: 4 };

function sources(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.ts$/.test(e.name))
    .map((e) => relative(REPO_ROOT, join(e.parentPath, e.name)));
}

/** Relative imports (`import … from './x.js'`, `export … from`, `import('./x.js')`) of a file, as repo paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), s)));
}

describe('layering', () => {
  const files = Object.keys(RANK).flatMap(sources);

  it('finds the components', () => {
    for (const c of Object.keys(RANK)) expect(files.some((f) => f.startsWith(`${c}/`)), c).toBe(true);
  });

  it('each component imports only from components below it', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = file.split('/')[0]!;
      for (const target of importsOf(file)) {
        const to = target.split('/')[0]!;
        if (to === from) continue;
        if (!(to in RANK)) wrong.push(`${file} imports ${target} (outside the components)`);
        else if (RANK[to]! >= RANK[from]!) wrong.push(`${file} imports ${target} (${to} is not below ${from})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('no import cycles between files, type-only ones included', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).map((t) => t.replace(/\.js$/, '.ts')).filter((t) => files.includes(t))]));
    // Tarjan's strongly connected components: any with more than one file is a cycle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    let next = 0;
    const visit = (v: string): void => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        for (let w = stack.pop()!; ; w = stack.pop()!) {
          onStack.delete(w);
          scc.push(w);
          if (w === v) break;
        }
        if (scc.length > 1) cycles.push(scc.sort());
      }
    };
    for (const f of graph.keys()) if (!index.has(f)) visit(f);
    expect(graph.size).toBeGreaterThan(100);
    expect(cycles).toEqual([]);
  });

  it('every test file is in one tier: *.unit, *.int or *.e2e', () => {
    const tests = readdirSync(join(REPO_ROOT, 'test'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts'));
    expect(tests.length).toBeGreaterThan(40);
    expect(tests.filter((f) => !/\.(unit|int|e2e)\.test\.ts$/.test(f))).toEqual([]);
  });
});
