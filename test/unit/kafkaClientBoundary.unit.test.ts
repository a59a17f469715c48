/**
 * The Kafka client stays one module: log/kafka.ts is the only source file that imports kafkajs
 * (or a candidate client), so a switch of client (README "Kafka client") touches one file. The
 * client bench (test/bench/kafkaClients.ts) is the one other place: it measures the clients.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeKafka } from '../../log/kafka.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE_DIRS = ['schemas', 'log', 'scribe', 'projector', 'mcp', 'deploy', 'test'];
const CLIENT_PACKAGES = ['kafkajs', '@platformatic/kafka', '@confluentinc/kafka-javascript', 'node-rdkafka'];
const ALLOWED = ['log/kafka.ts', 'test/bench/kafkaClients.ts'];
/** This file: its examples below are import statements as data. */
const SELF = fileURLToPath(import.meta.url);

/** Pure: the Kafka client packages a source text imports (static, dynamic, require, export-from). */
export function kafkaClientImports(source: string): string[] {
  const found = new Set<string>();
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;
  for (const m of source.matchAll(re)) {
    const spec = m[2]!;
    const pkg = CLIENT_PACKAGES.find((p) => spec === p || spec.startsWith(`${p}/`));
    if (pkg) found.add(pkg);
  }
  return [...found];
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'fixtures' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('kafkaClientImports', () => {
  it.each([
    [`import { Kafka } from 'kafkajs';`, ['kafkajs']],
    [`import type { Admin } from "kafkajs";`, ['kafkajs']],
    [`const k = await import('kafkajs');`, ['kafkajs']],
    [`const k = require( 'kafkajs/package.json' );`, ['kafkajs']],
    [`export { Kafka } from 'kafkajs';`, ['kafkajs']],
    [`import 'kafkajs';`, ['kafkajs']],
    [`import { Producer } from '@platformatic/kafka';`, ['@platformatic/kafka']],
    [`const { KafkaJS } = require('@confluentinc/kafka-javascript');`, ['@confluentinc/kafka-javascript']],
    [`import { createKafkaLog } from '../log/kafka.js'; // through kafkajs`, []],
    [`import x from 'kafkajs-snappy';`, []],
  ])('%s → %j', (source, expected) => {
    expect(kafkaClientImports(source)).toEqual(expected);
  });
});

describe('the Kafka client boundary', () => {
  it('only log/kafka.ts (and the client bench) import a Kafka client', () => {
    const importers = SOURCE_DIRS.flatMap((d) => sourceFiles(join(ROOT, d)))
      .filter((f) => f !== SELF)
      .filter((f) => kafkaClientImports(readFileSync(f, 'utf8')).length > 0)
      .map((f) => relative(ROOT, f).split('\\').join('/'))
      .sort();
    expect(importers).toEqual(ALLOWED);
  });
});

describe('probeKafka (what test prerequisites use instead of kafkajs)', () => {
  it('names the broker that does not answer, quickly', async () => {
    const t0 = Date.now();
    const problem = await probeKafka(['127.0.0.1:1'], 1500);
    expect(problem).toMatch(/^broker 127\.0\.0\.1:1 does not answer: .*ECONNREFUSED/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
