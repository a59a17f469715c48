/**
 * A fake Flux broker for tests: a unix-socket server speaking the real local-connector framing
 * (auth byte, magic, big-endian length, frames, 20-byte proto) that
 *   (a) replays captured bytes (wire/journal-full.bin.gz) verbatim after the auth byte,
 *   (b) serves a journal from real journal lines: `events-journal {"full":true}` gets the
 *       backlog of what has "happened" so far (per job, its stored events + jobspec + R, as
 *       the job-manager builds it; or given backlog lines verbatim), the sentinel, then live
 *       entries one per response as they happen, all with the client's matchtag,
 *   (c) answers job-manager.raise / urgency / kill like the captured responses (success without
 *       payload; urgency → {"old_urgency":N}; unknown id → errnum 2 "unknown job id"),
 *       job-ingest.submit as flux-core's job-ingest without flux-security (its own unwrap in
 *       fakeSignNone.ts, after src/common/libjob/sign_none.c and src/modules/job-ingest/job.c:
 *       a J the real broker refuses is refused here with the same errnum and message),
 *       attr.get, and unknown topics with ENOSYS,
 *   (d) records every request (topic, payload bytes, whole message bytes),
 *   (e) drops a connection after N journal responses, and restarts on the same path with its
 *       state (what happened so far) intact, like a broker restart,
 *   (f) with `jobInfo`: answers job-info.lookup like flux-core 0.88's job-info module:
 *       {"id":I,"keys":[...],"flags":F} → {"id":I,"eventlog":"<one JSON event per line, each
 *       ending in \n>"} (also "jobspec" / "R" as JSON text, or decoded with flag 1); the eventlog
 *       is the job's stored events so far (journal-only `annotations` / `invalidate` never reach
 *       it). A job with no eventlog (unknown, not yet happened, invalidated, or only submitted
 *       through this fake) → errnum 2 "invalid job id"; a missing key → errnum 2 "<key>: key not
 *       found". Without `jobInfo` the topic gets ENOSYS, as from an instance without job-info.
 *   (g) with `actionEvents`: the job-manager's side effects happen as new journal entries (sent
 *       live and kept for later backlogs): a raise posts `exception` {type, severity, note,
 *       userid} and, with severity 0 on a job holding no resources, `clean` (the job is then
 *       inactive: raise → errnum 2 "unknown job id", urgency → EINVAL "job is inactive"); an
 *       urgency posts `urgency` {userid, urgency} then `priority` {priority} (the default
 *       priority plugin: 0 hold → 0, 31 expedite → 4294967295, else the urgency), and is
 *       refused with EINVAL once resources are allocated. Timestamps are the wall clock.
 *   (h) events the job-manager posts with EVENT_NO_COMMIT (flux-core job-manager event.c:
 *       `annotations`, `invalidate`, and a `memo` sent with `volatile`, annotate.c) go out live
 *       but never reach the stored eventlog, hence neither job-info.lookup nor a later backlog
 *       (as the real 0.88 captures show: 32 live annotations, none in the backlog). A test
 *       marks such a line of `journal` with a top-level `"noCommit":true`, which is removed
 *       from what is sent (the real event does not say it was not committed).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import { decodeMessage, encodeMessage, MsgFlag, MsgType, type FluxMessage } from '../../scribe/flux/protocol/message.js';
import { ingestRequest } from './fakeSignNone.js';

export interface RecordedRequest {
  topic: string;
  /** The payload frame exactly as received (JSON text + NUL), if any. */
  payload?: Buffer;
  /** The whole message exactly as received. */
  bytes: Buffer;
  flags: number;
  matchtag: number;
  connection: number;
}

export interface FakeFluxBrokerOptions {
  path: string;
  /** Live journal lines (a leading sentinel line is ignored): the history that "happens". */
  journal?: string[];
  /** Backlog lines served verbatim (before the sentinel) while nothing of `journal` has happened. */
  backlog?: string[];
  /** Captured bytes (auth byte + responses), written verbatim: the auth byte on connect, the rest after the first request. */
  replay?: Buffer;
  /** Answer to a new connection (default 0 = accepted; non-zero: written, then the connection closes). */
  authByte?: number;
  /** How many `journal` entries have happened before the first client (default 0). */
  happened?: number;
  /** Make journal entries happen on their own while a client streams live (default true). */
  autoAdvance?: boolean;
  /** Entries per tick while auto-advancing (default 200). */
  sliceSize?: number;
  /** Uid the broker sees on connections (checked against a submitted J's signer; default this process's uid). */
  uid?: number;
  /** Topics answered with an error instead: errnum (38 ENOSYS "No service matching …", 1 EPERM, …). */
  fail?: Record<string, number>;
  /** Serve job-info.lookup from the stored events (default false: ENOSYS, no job-info module). */
  jobInfo?: boolean;
  /** Post the journal events raise / urgency cause (default false: answer only). */
  actionEvents?: boolean;
}

interface Entry {
  id: string;
  text: string;
  events: { name: string; context?: Record<string, unknown> }[];
  eventTexts: string[];
  jobspecText?: string;
  RText?: string;
  /** Posted with EVENT_NO_COMMIT: live only. */
  noCommit: boolean;
}

interface Subscriber {
  conn: Conn;
  matchtag: number;
}

interface Conn {
  n: number;
  socket: Socket;
  sent: number;
  dropAfter: number | undefined;
  dead: boolean;
}

const SENTINEL = '{"id":-1,"events":[]}';
const JOURNAL_ONLY = new Set(['annotations', 'invalidate']);
/** job-info.lookup flags: FLUX_JOB_LOOKUP_JSON_DECODE | FLUX_JOB_LOOKUP_CURRENT. */
const LOOKUP_JSON_DECODE = 1;
const LOOKUP_VALID_FLAGS = 1 | 2;
/** The default priority plugin: hold → FLUX_JOB_PRIORITY_MIN, expedite → FLUX_JOB_PRIORITY_MAX. */
const priorityOf = (urgency: number): number => (urgency === 0 ? 0 : urgency === 31 ? 4294967295 : urgency);

const NO_COMMIT_MARK = ',"noCommit":true';

/** A journal line → id (exact), events and the raw text of each part. */
function parseLine(line: string): Entry {
  const noCommit = line.includes(NO_COMMIT_MARK);
  const text = noCommit ? line.replace(NO_COMMIT_MARK, '') : line;
  const id = /^\{"id":(-?\d+)/.exec(text)?.[1];
  if (!id) throw new Error(`fake broker: journal line without a leading id: ${text.slice(0, 80)}`);
  const obj = JSON.parse(text) as { events: Entry['events']; jobspec?: unknown; R?: unknown };
  const e: Entry = { id, text, events: obj.events, eventTexts: obj.events.map((ev) => JSON.stringify(ev)), noCommit };
  if (obj.jobspec !== undefined) e.jobspecText = JSON.stringify(obj.jobspec);
  if (obj.R !== undefined) e.RText = JSON.stringify(obj.R);
  return e;
}

export class FakeFluxBroker {
  readonly path: string;
  readonly requests: RecordedRequest[] = [];
  /** Connections accepted so far. */
  connections = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly history: Entry[];
  private position: number;
  private readonly backlogLines: string[] | undefined;
  private readonly subscribers = new Set<Subscriber>();
  private readonly dropPlan: (number | undefined)[] = [];
  private readonly urgency = new Map<string, number>();
  private readonly known = new Set<string>();
  /** Per job: its stored eventlog lines (what job-info.lookup returns), jobspec and R text. */
  private readonly stored = new Map<string, { events: string[]; jobspec?: string; R?: string }>();
  private readonly allocated = new Set<string>();
  private readonly inactive = new Set<string>();
  private lastTimestamp = 0;
  private advancing = false;
  private nextJobId = 4_000_000_000_000n;

  constructor(private readonly opts: FakeFluxBrokerOptions) {
    this.path = opts.path;
    this.history = (opts.journal ?? []).filter((l) => l.trim() && !l.startsWith('{"id":-1')).map(parseLine);
    this.position = opts.happened ?? 0;
    this.backlogLines = opts.backlog?.filter((l) => l.trim() && !l.startsWith('{"id":-1'));
    for (const l of this.backlogLines ?? []) this.noteHappened(parseLine(l));
    for (let i = 0; i < this.position; i++) this.noteHappened(this.history[i]!);
  }

  static async start(opts: FakeFluxBrokerOptions): Promise<FakeFluxBroker> {
    const b = new FakeFluxBroker(opts);
    await b.start();
    return b;
  }

  /** Journal entries that have happened so far. */
  get happened(): number {
    return this.position;
  }

  get total(): number {
    return this.history.length;
  }

  /** The next connections drop after this many journal responses each (one number per connection). */
  dropAfter(...counts: (number | undefined)[]): void {
    this.dropPlan.push(...counts);
  }

  /** Records requests of this topic only. */
  requestsFor(topic: string): RecordedRequest[] {
    return this.requests.filter((r) => r.topic === topic);
  }

  async start(): Promise<void> {
    if (this.server) return;
    if (existsSync(this.path)) unlinkSync(this.path);
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    this.server = server;
  }

  /** Stops listening and drops every connection (state is kept: `start()` again = broker restart). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.subscribers.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
    if (existsSync(this.path)) unlinkSync(this.path);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Drops every client connection now (the server keeps listening). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Makes the next `n` journal entries happen (sent live to every streaming client). */
  advance(n = Infinity): number {
    let k = 0;
    while (k < n && this.position < this.history.length) {
      const e = this.history[this.position++]!;
      this.noteHappened(e);
      for (const sub of [...this.subscribers]) this.sendJournal(sub, e.text);
      k++;
    }
    return k;
  }

  private noteHappened(e: Entry): void {
    let s = this.stored.get(e.id);
    if (!s) this.stored.set(e.id, (s = { events: [] }));
    e.events.forEach((ev, k) => {
      const ts = (ev as { timestamp?: unknown }).timestamp;
      if (typeof ts === 'number' && ts > this.lastTimestamp) this.lastTimestamp = ts;
      if (!JOURNAL_ONLY.has(ev.name) && !e.noCommit) s.events.push(e.eventTexts[k]!);
      if (ev.name === 'submit') {
        this.known.add(e.id);
        const u = ev.context?.urgency;
        this.urgency.set(e.id, typeof u === 'number' ? u : 16);
      }
      if (ev.name === 'urgency' && typeof ev.context?.urgency === 'number') this.urgency.set(e.id, ev.context.urgency);
      if (ev.name === 'alloc') this.allocated.add(e.id);
      if (ev.name === 'free') this.allocated.delete(e.id);
      if (ev.name === 'clean') this.inactive.add(e.id);
      if (ev.name === 'invalidate') {
        this.known.delete(e.id);
        this.stored.delete(e.id);
      }
    });
    if (e.jobspecText && this.stored.has(e.id)) s.jobspec = e.jobspecText;
    if (e.RText && this.stored.has(e.id)) s.R = e.RText;
  }

  /** The job-manager posts events on a job now: new journal entries (one event each), sent live. */
  private post(id: string, events: { name: string; context?: Record<string, unknown> }[]): void {
    for (const ev of events) {
      // Wall clock, never behind what already happened (the fixtures may be "in the future").
      this.lastTimestamp = Math.max(Date.now() / 1000, this.lastTimestamp + 1e-6);
      const text = `{"id":${id},"events":[${JSON.stringify({ timestamp: this.lastTimestamp, name: ev.name, ...(ev.context && { context: ev.context }) })}]}`;
      const e = parseLine(text);
      this.history.splice(this.position++, 0, e);
      this.noteHappened(e);
      for (const sub of [...this.subscribers]) this.sendJournal(sub, e.text);
    }
  }

  /** The job-info.lookup answer for a request body (payload text or [errnum, message]). */
  private lookup(text: string, body: Record<string, unknown>): string | [number, string] {
    const id = /"id"\s*:\s*(\d+)/.exec(text)?.[1];
    const keys = body.keys;
    const flags = body.flags;
    if (!id || !Array.isArray(keys) || !keys.every((k) => typeof k === 'string') || typeof flags !== 'number') return [71, 'Protocol error'];
    if (flags & ~LOOKUP_VALID_FLAGS) return [71, 'invalid flag'];
    const s = this.stored.get(id);
    if (!s || s.events.length === 0) return [2, 'invalid job id'];
    let out = `{"id":${id}`;
    const done = new Set<string>();
    for (const key of keys) {
      if (done.has(key)) continue;
      done.add(key);
      const value = key === 'eventlog' ? s.events.map((t) => t + '\n').join('') : key === 'jobspec' ? s.jobspec : key === 'R' ? s.R : undefined;
      if (value === undefined) return [2, `${key}: key not found`];
      out += `,${JSON.stringify(key)}:${key !== 'eventlog' && flags & LOOKUP_JSON_DECODE ? value : JSON.stringify(value)}`;
    }
    return out + '}';
  }

  private async autoAdvance(): Promise<void> {
    if (this.advancing || this.opts.autoAdvance === false) return;
    this.advancing = true;
    try {
      while (this.subscribers.size > 0 && this.position < this.history.length) {
        this.advance(this.opts.sliceSize ?? 200);
        await tick();
      }
    } finally {
      this.advancing = false;
    }
  }

  /** The job-manager's backlog of what happened: per job (first-seen order) its stored events, jobspec and R. */
  backlog(): string[] {
    if (this.position === 0 && this.backlogLines) return this.backlogLines;
    const jobs = new Map<string, { events: string[]; jobspec?: string; R?: string; invalid: boolean }>();
    for (let i = 0; i < this.position; i++) {
      const e = this.history[i]!;
      let j = jobs.get(e.id);
      if (!j) jobs.set(e.id, (j = { events: [], invalid: false }));
      e.events.forEach((ev, k) => {
        if (ev.name === 'invalidate') j.invalid = true;
        if (!JOURNAL_ONLY.has(ev.name) && !e.noCommit) j.events.push(e.eventTexts[k]!);
      });
      if (e.jobspecText) j.jobspec = e.jobspecText;
      if (e.RText) j.R = e.RText;
    }
    const out: string[] = [];
    for (const [id, j] of jobs) {
      if (j.invalid) continue;
      let t = `{"id":${id},"events":[${j.events.join(',')}]`;
      if (j.jobspec) t += `,"jobspec":${j.jobspec}`;
      if (j.R) t += `,"R":${j.R}`;
      out.push(t + '}');
    }
    return out;
  }

  private accept(socket: Socket): void {
    const conn: Conn = { n: this.connections++, socket, sent: 0, dropAfter: this.dropPlan.shift(), dead: false };
    this.sockets.add(socket);
    socket.on('close', () => {
      conn.dead = true;
      this.sockets.delete(socket);
      for (const s of this.subscribers) if (s.conn === conn) this.subscribers.delete(s);
    });
    socket.on('error', () => {});
    const auth = this.opts.replay ? this.opts.replay[0]! : (this.opts.authByte ?? 0);
    socket.write(Buffer.from([auth]));
    if (auth !== 0) {
      socket.end();
      return;
    }
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 8) {
        const len = buf.readUInt32BE(4);
        if (buf.length < 8 + len) break;
        const raw = Buffer.from(buf.subarray(0, 8 + len));
        buf = buf.subarray(8 + len);
        this.onRequest(conn, raw);
      }
    });
  }

  private onRequest(conn: Conn, raw: Buffer): void {
    const msg = decodeMessage(raw);
    const rec: RecordedRequest = { topic: msg.topic ?? '', bytes: raw, flags: msg.flags, matchtag: msg.aux2, connection: conn.n };
    if (msg.payload) rec.payload = Buffer.from(msg.payload);
    this.requests.push(rec);
    if (msg.type !== MsgType.REQUEST) return;
    if (this.opts.replay) {
      if (this.requests.filter((r) => r.connection === conn.n).length === 1) conn.socket.write(this.opts.replay.subarray(1));
      return;
    }
    const text = msg.payload ? Buffer.from(msg.payload).toString('utf8').replace(/\0$/, '') : '';
    const body = (): Record<string, unknown> => (text ? (JSON.parse(text) as Record<string, unknown>) : {});
    const idOf = () => /"id"\s*:\s*(\d+)/.exec(text)?.[1] ?? '';
    const reply = (payload?: string, errnum = 0) => {
      if (msg.flags & MsgFlag.NORESPONSE) return;
      this.respond(conn, msg, payload, errnum);
    };
    const forced = this.opts.fail?.[msg.topic ?? ''];
    if (forced !== undefined) {
      const why: Record<number, string> = { 1: 'Operation not permitted', 38: `No service matching ${msg.topic} is registered` };
      return reply(why[forced] ?? `error ${forced}`, forced);
    }
    switch (msg.topic) {
      case 'job-manager.events-journal': {
        const sub: Subscriber = { conn, matchtag: msg.aux2 };
        if (body().full === true) {
          for (const line of this.backlog()) if (!this.sendJournal(sub, line)) return;
        }
        if (!this.sendJournal(sub, SENTINEL)) return;
        this.subscribers.add(sub);
        void this.autoAdvance();
        return;
      }
      case 'job-manager.events-journal-cancel': {
        const tag = body().matchtag;
        for (const s of [...this.subscribers]) {
          if (s.conn === conn && s.matchtag === tag) {
            this.subscribers.delete(s);
            this.respond(conn, { ...msg, aux2: s.matchtag, flags: MsgFlag.STREAMING, topic: 'job-manager.events-journal' }, 'end of stream', 61);
          }
        }
        return;
      }
      case 'job-manager.kill':
        return this.known.has(idOf()) ? reply() : reply('unknown job id', 2);
      case 'job-manager.raise': {
        const id = idOf();
        const events = this.opts.actionEvents === true;
        if (!this.known.has(id) || (events && this.inactive.has(id))) return reply('unknown job id', 2);
        reply();
        if (events) {
          const b = body();
          const severity = Number(b.severity);
          this.post(id, [{ name: 'exception', context: { type: b.type, severity, note: typeof b.note === 'string' ? b.note : '', userid: this.connectionUid() } }]);
          if (severity === 0 && !this.allocated.has(id)) this.post(id, [{ name: 'clean' }]);
        }
        return;
      }
      case 'job-manager.urgency': {
        const id = idOf();
        if (!this.known.has(id)) return reply('unknown job id', 2);
        const events = this.opts.actionEvents === true;
        if (events && this.inactive.has(id)) return reply('job is inactive', 22);
        if (events && this.allocated.has(id)) return reply('urgency cannot be changed once resources are allocated', 22);
        const old = this.urgency.get(id) ?? 16;
        const urgency = Number(body().urgency);
        this.urgency.set(id, urgency);
        reply(`{"old_urgency":${old}}`);
        if (events) {
          this.post(id, [
            { name: 'urgency', context: { userid: this.connectionUid(), urgency } },
            { name: 'priority', context: { priority: priorityOf(urgency) } },
          ]);
        }
        return;
      }
      case 'job-info.lookup': {
        if (!this.opts.jobInfo) return reply(`No service matching ${msg.topic} is registered`, 38);
        const answer = this.lookup(text, body());
        return typeof answer === 'string' ? reply(answer) : reply(answer[1], answer[0]);
      }
      case 'job-ingest.submit': {
        const answer = ingestRequest(body(), this.connectionUid());
        if (!answer.ok) return reply(answer.message, answer.errnum);
        const id = (this.nextJobId++).toString();
        this.known.add(id);
        this.urgency.set(id, answer.urgency);
        return reply(`{"id":${id}}`);
      }
      case 'attr.get':
        return body().name === 'security.owner'
          ? reply(`{"value":"${this.connectionUid()}","flags":1}`)
          : reply('No such file or directory', 2);
      default:
        return reply(`No service matching ${msg.topic} is registered`, 38);
    }
  }

  /** The uid the broker sees on connections (the requester of every RPC here). */
  private connectionUid(): number {
    return this.opts.uid ?? process.getuid?.() ?? 0;
  }

  private respond(conn: Conn, req: FluxMessage, payload: string | undefined, errnum: number): void {
    if (conn.dead) return;
    const m: FluxMessage = {
      type: MsgType.RESPONSE,
      flags: req.flags & MsgFlag.STREAMING,
      userid: 0,
      rolemask: 5,
      aux1: errnum,
      aux2: req.aux2,
      routes: [],
      topic: req.topic ?? '',
    };
    if (payload !== undefined) m.payload = Buffer.from(payload + '\0', 'utf8');
    conn.socket.write(encodeMessage(m));
  }

  /** One journal response; false once the connection is (or just got) dropped. */
  private sendJournal(sub: Subscriber, text: string): boolean {
    const conn = sub.conn;
    if (conn.dead) return false;
    if (conn.dropAfter !== undefined && conn.sent >= conn.dropAfter) {
      conn.dead = true;
      this.subscribers.delete(sub);
      conn.socket.end(() => conn.socket.destroy());
      return false;
    }
    conn.sent++;
    this.respond(conn, { type: MsgType.REQUEST, flags: MsgFlag.STREAMING, userid: 0, rolemask: 0, aux1: 0, aux2: sub.matchtag, topic: 'job-manager.events-journal' }, text, 0);
    return true;
  }
}
