/**
 * Kafka for integration tests: the broker address, a prerequisite check that may start the
 * repo's single-node broker (deploy/kafka/kafka.sh), and unique topic/group names so tests can
 * share one broker.
 *
 *   JOBSCRIBE_TEST_KAFKA   comma-separated brokers, default 127.0.0.1:19092 (kafka.sh's port)
 *
 * Only when the default address is used do we consider the broker "ours": then a missing broker
 * is started with `bash deploy/kafka/kafka.sh start` (idempotent; ~3 s with cached jars), and
 * tests that stop/start the broker may run.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeKafka } from '../../log/kafka.js';
import { prerequisite } from './prereq.js';

export const DEFAULT_TEST_KAFKA = '127.0.0.1:19092';
const KAFKA_SH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'kafka', 'kafka.sh');

export function kafkaBrokers(): string[] {
  return (process.env.JOBSCRIBE_TEST_KAFKA ?? DEFAULT_TEST_KAFKA)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** True when the tests talk to the broker that deploy/kafka/kafka.sh manages. */
export function ownBroker(): boolean {
  const b = kafkaBrokers();
  return b.length === 1 && b[0] === DEFAULT_TEST_KAFKA;
}

/** Runs `bash deploy/kafka/kafka.sh <action>`; resolves with its exit code and output. */
export function kafkaSh(action: 'start' | 'stop' | 'status', timeoutMs = 180_000): Promise<{ code: number; output: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile('bash', [KAFKA_SH, action], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim(), ms: Date.now() - t0 });
    });
  });
}

/** undefined when the broker answers (admin connect + listTopics), else what went wrong. */
export function kafkaProblem(brokers = kafkaBrokers(), timeoutMs = 5000): Promise<string | undefined> {
  return probeKafka(brokers, timeoutMs);
}

let startAttempted = false;

/**
 * For a beforeAll: true when Kafka answers. If it does not and the broker is ours, tries
 * `kafka.sh start` once per process. Otherwise skips loudly, or throws under CI=true.
 */
export function requireKafka(): Promise<boolean> {
  return prerequisite('Kafka', async () => {
    const problem = await kafkaProblem();
    if (!problem) return undefined;
    if (!ownBroker()) return `${problem} (JOBSCRIBE_TEST_KAFKA is set, so no broker is started here)`;
    if (startAttempted) return problem;
    startAttempted = true;
    process.stderr.write(`\nKafka: ${problem}; starting it with bash deploy/kafka/kafka.sh start ...\n`);
    const started = await kafkaSh('start');
    if (started.code !== 0) return `${problem}; 'bash deploy/kafka/kafka.sh start' failed (exit ${started.code}): ${started.output.split('\n').slice(-15).join('\n')}`;
    return kafkaProblem();
  });
}

/** Makes sure our broker runs again (after a test stopped it). Throws when it cannot be started. */
export async function ensureKafkaRunning(): Promise<void> {
  if (!(await kafkaProblem())) return;
  if (!ownBroker()) throw new Error(`Kafka at ${kafkaBrokers().join(',')} does not answer`);
  const r = await kafkaSh('start');
  if (r.code !== 0) throw new Error(`bash deploy/kafka/kafka.sh start failed: ${r.output}`);
}

const run = randomBytes(3).toString('hex');
let seq = 0;

/**
 * A name no other test (or earlier run on the same broker) uses: lowercase letters, digits and
 * '-' only, so it is a valid topic name, has no '.', and works as the `<prefix>` of
 * `<prefix>.<cluster>.events`.
 */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${run}-${Date.now().toString(36)}-${++seq}`;
}

export function uniqueTopic(cluster = 'test'): string {
  return `${uniqueName('jt')}.${cluster}.events`;
}

export function uniqueGroup(): string {
  return uniqueName('g');
}
