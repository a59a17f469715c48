/**
 * A Kafka broker for ONE test file. With the default test address (the broker deploy/kafka/kafka.sh
 * manages, see kafka.ts), the file gets a private single-node broker of its own: kafka.sh with its
 * own JOBSCRIBE_KAFKA_HOME (a temp dir; the jars are shared with the default home through a
 * symlink, so no download) and two free ports. Why not the shared broker:
 *   - a file that stops and restarts its broker (an outage test) must not take other files' broker
 *     down with it (vitest runs two files at a time);
 *   - kafkaLog.int.test.ts restarts the shared broker with `kafka.sh start`, which WIPES it: a file
 *     running beside it on the shared broker would lose its topics mid-test.
 * The private broker's restarts keep its data (JOBSCRIBE_KAFKA_KEEP_DATA=1): stop + start is a
 * real broker restart (topics, messages and committed group offsets survive).
 *
 * With JOBSCRIBE_TEST_KAFKA naming some other broker (and not under CI), that broker is used as it
 * is and cannot be restarted (`restartable` false). As with requireKafka(): when no broker can be
 * had the suite is skipped loudly, or FAILS under CI=true.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaBrokers, kafkaProblem, ownBroker, requireKafka } from './kafka.js';
import { REPO_ROOT } from './cli.js';
import { inCI, prerequisite } from './prereq.js';

const KAFKA_SH = join(REPO_ROOT, 'deploy', 'kafka', 'kafka.sh');

export interface TestBroker {
  brokers: string[];
  /** "host:port[,host:port]" for --kafka. */
  bootstrap: string;
  /** True for a private broker: stop() and start() may be used. */
  restartable: boolean;
  /** Stops the broker (SIGTERM, clean shutdown). Private brokers only. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and the same data (a restart, not a fresh broker). */
  start(): Promise<void>;
  /** Stops a private broker and removes its directory; nothing for a shared one. */
  close(): Promise<void>;
}

function sh(action: 'start' | 'stop' | 'fetch', env: NodeJS.ProcessEnv, timeoutMs = 180_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('bash', [KAFKA_SH, action], { env: { ...process.env, ...env }, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim() });
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function shared(): TestBroker {
  const brokers = kafkaBrokers();
  return {
    brokers,
    bootstrap: brokers.join(','),
    restartable: false,
    stop: () => Promise.reject(new Error('the shared test broker is not restarted by this file')),
    start: () => Promise.reject(new Error('the shared test broker is not restarted by this file')),
    close: async () => undefined,
  };
}

/**
 * For a beforeAll: this file's broker, or undefined when the suite is to be skipped (locally,
 * with a loud message). Throws under CI=true when no broker can be started.
 */
export async function requireTestBroker(name: string): Promise<TestBroker | undefined> {
  // Another broker named locally: use it as it is. Under CI always a private one (a restart
  // test must run there, never skip).
  if (!ownBroker() && !inCI()) return (await requireKafka()) ? shared() : undefined;
  let broker: TestBroker | undefined;
  const ok = await prerequisite(`Kafka (private broker for ${name})`, async () => {
    // The jars of the default home (downloaded once by Maven, cached afterwards).
    const fetched = await sh('fetch', {});
    if (fetched.code !== 0) return `'bash deploy/kafka/kafka.sh fetch' failed: ${fetched.output.split('\n').slice(-15).join('\n')}`;
    const libs = join(process.env.JOBSCRIBE_KAFKA_HOME ?? join(REPO_ROOT, '.kafka'), 'libs');
    if (!existsSync(libs)) return `no Kafka jars in ${libs} after kafka.sh fetch`;
    const home = mkdtempSync(join(tmpdir(), `jobscribe-kafka-${name}-`));
    symlinkSync(libs, join(home, 'libs'));
    const [port, controllerPort] = await freePorts(2);
    const env = {
      JOBSCRIBE_KAFKA_HOME: home,
      JOBSCRIBE_KAFKA_PORT: String(port),
      JOBSCRIBE_KAFKA_CONTROLLER_PORT: String(controllerPort),
      JOBSCRIBE_KAFKA_KEEP_DATA: '1',
    };
    const signal = (sig: NodeJS.Signals) => {
      const pid = Number(readFileSync(join(home, 'broker.pid'), 'utf8'));
      if (!(pid > 0)) throw new Error(`no broker pid in ${home}/broker.pid`);
      process.kill(pid, sig);
    };
    // If the test process dies without afterAll, do not leave a JVM behind.
    const onExit = () => {
      try {
        signal('SIGKILL');
      } catch {
        // not running
      }
      rmSync(home, { recursive: true, force: true });
    };
    process.once('exit', onExit);
    const started = await sh('start', env);
    if (started.code !== 0) {
      onExit();
      return `'kafka.sh start' of a private broker (port ${port}) failed: ${started.output.split('\n').slice(-15).join('\n')}`;
    }
    const brokers = [`127.0.0.1:${port}`];
    broker = {
      brokers,
      bootstrap: brokers.join(','),
      restartable: true,
      async stop() {
        const r = await sh('stop', env);
        if (r.code !== 0) throw new Error(`kafka.sh stop failed: ${r.output}`);
      },
      async start() {
        const r = await sh('start', env);
        if (r.code !== 0) throw new Error(`kafka.sh start (keeping data) failed: ${r.output}`);
        if (!/keeping the data dir/.test(r.output)) throw new Error(`kafka.sh start did not keep the data dir:\n${r.output}`);
      },
      async close() {
        await sh('stop', env);
        process.removeListener('exit', onExit);
        rmSync(home, { recursive: true, force: true });
      },
    };
    return kafkaProblem(brokers);
  }).catch(async (err: unknown) => {
    await broker?.close();
    throw err;
  });
  if (!ok) {
    await broker?.close();
    return undefined;
  }
  return broker;
}
