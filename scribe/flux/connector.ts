/**
 * The only file of scribe/flux that touches a socket or a child process. Opens a connection to
 * a Flux broker (local:// unix socket, or ssh:// through `ssh host flux relay <path>`), reads the
 * one auth byte, then multiplexes RPCs by matchtag: single-response requests, streaming requests
 * (every response until an error response — ENODATA being the normal end) and NORESPONSE sends.
 * Bytes are encoded/decoded by protocol/ (pure); this file only moves them.
 *
 * Not here: reconnecting (the source does it, with log/retry.ts), topic payloads (protocol/*).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { FluxError } from './errors.js';
import { describeErrnum } from './protocol/errnums.js';
import { MsgType, isFinalResponse, type FluxMessage } from './protocol/message.js';
import { MessageReader } from './protocol/reader.js';
import { parseFluxUri, type FluxUri } from './uri.js';

export interface FluxConnectOptions {
  /** local:///path or ssh://[user@]host/path; default FLUX_URI. */
  uri?: string;
  /** ssh transport: the command (default $FLUX_SSH or "ssh"), extra arguments before the host, and flux's path on the remote. */
  ssh?: { command?: string; args?: string[]; flux?: string };
  /** Give up connecting (incl. the auth byte) after this long (default 10 s). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface FluxStream {
  readonly matchtag: number;
  /** Resolves after the final (error) response; rejects if the connection is lost first. */
  readonly done: Promise<void>;
}

export interface FluxConnection {
  readonly uri: string;
  readonly isClosed: boolean;
  /** Resolves when the connection is gone: undefined after close(), else the error. */
  readonly closed: Promise<FluxError | undefined>;
  /** One request, one response (which may carry an errnum: decode/parse is the caller's). */
  request(build: (matchtag: number) => Uint8Array, opts?: { timeoutMs?: number }): Promise<FluxMessage>;
  /** A streaming request: `onResponse` sees every response, the final one included. */
  stream(build: (matchtag: number) => Uint8Array, onResponse: (msg: FluxMessage) => void): FluxStream;
  /** A request that gets no response (NORESPONSE), e.g. a stream cancel. */
  send(bytes: Uint8Array): void;
  /** Flow control for long streams: stop / restart reading from the broker. */
  pause(): void;
  resume(): void;
  close(): void;
}

interface Pending {
  onResponse(msg: FluxMessage): void;
  onFinal(): void;
  onLost(err: FluxError): void;
}

const MATCHTAG_MAX = 0xffffffff;

/** Connects and waits for the broker's auth byte. */
export async function connectFlux(opts: FluxConnectOptions = {}): Promise<FluxConnection> {
  const target = parseFluxUri(opts.uri ?? process.env.FLUX_URI);
  const t = openTransport(target, opts);
  return new Promise<FluxConnection>((resolve, reject) => {
    const conn = new Connection(target, t);
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    const timer = setTimeout(() => {
      conn.fail(FluxError.connection(`flux ${target.uri}: no answer from the broker within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = () => conn.fail(FluxError.connection(`flux ${target.uri}: connect aborted`, undefined, false));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    conn.onAuth = (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(conn);
    };
  });
}

interface Transport {
  input: Readable;
  output: Writable;
  destroy(): void;
  /** Extra words for error messages (ssh's stderr). */
  diagnostics(): string;
  onExit?(cb: (why: string) => void): void;
}

function openTransport(target: FluxUri, opts: FluxConnectOptions): Transport {
  if (target.kind === 'local') {
    const sock: Socket = createConnection({ path: target.path });
    return { input: sock, output: sock, destroy: () => sock.destroy(), diagnostics: () => '' };
  }
  const ssh = opts.ssh ?? {};
  const args = [...(ssh.args ?? [])];
  if (target.port) args.push('-p', String(target.port));
  args.push(target.user ? `${target.user}@${target.host}` : target.host, ssh.flux ?? 'flux', 'relay', target.path);
  const command = ssh.command ?? process.env.FLUX_SSH ?? 'ssh';
  const child: ChildProcessWithoutNullStreams = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-2000);
  });
  const t: Transport = {
    input: child.stdout,
    output: child.stdin,
    destroy: () => {
      child.stdin.destroy();
      child.stdout.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    diagnostics: () => stderr.trim(),
    onExit(cb) {
      child.on('error', (err) => cb(`cannot run ${command}: ${err.message}`));
      child.on('exit', (code, sig) => cb(`ssh exited (${sig ?? `code ${code}`})`));
    },
  };
  child.stdin.on('error', () => {});
  return t;
}

class Connection implements FluxConnection {
  readonly uri: string;
  isClosed = false;
  readonly closed: Promise<FluxError | undefined>;
  onAuth?: (err?: FluxError) => void;
  private authed = false;
  private resolveClosed!: (e: FluxError | undefined) => void;
  private readonly reader = new MessageReader({ expectAuthByte: true });
  private readonly pending = new Map<number, Pending>();
  private nextTag = 1;

  constructor(
    private readonly target: FluxUri,
    private readonly t: Transport,
  ) {
    this.uri = target.uri;
    this.closed = new Promise((r) => (this.resolveClosed = r));
    t.input.on('data', (chunk: Buffer) => this.onData(chunk));
    t.input.on('error', (err: Error) => this.fail(FluxError.connection(`flux ${this.uri}: ${err.message}${this.diag()}`, err)));
    t.input.on('end', () => this.fail(FluxError.connection(`flux ${this.uri}: the broker closed the connection${this.diag()}`)));
    t.input.on('close', () => this.fail(FluxError.connection(`flux ${this.uri}: connection closed${this.diag()}`)));
    (t.output as Duplex).on?.('error', (err: Error) => this.fail(FluxError.connection(`flux ${this.uri}: ${err.message}`, err)));
    t.onExit?.((why) => setImmediate(() => this.fail(FluxError.connection(`flux ${this.uri}: ${why}${this.diag()}`))));
  }

  private diag(): string {
    const d = this.t.diagnostics();
    return d ? ` (${d})` : '';
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    let msgs: FluxMessage[];
    try {
      msgs = this.reader.push(chunk);
    } catch (err) {
      this.fail(FluxError.connection(`flux ${this.uri}: malformed data from the broker: ${(err as Error).message}`, err));
      return;
    }
    if (!this.authed && this.reader.auth !== undefined) {
      if (this.reader.auth !== 0) {
        const info = describeErrnum(this.reader.auth);
        const err = new FluxError(`flux ${this.uri}: the broker refused the connection: ${info.meaning} (${info.name})`, {
          errnum: this.reader.auth,
        });
        this.fail(err);
        return;
      }
      this.authed = true;
      this.onAuth?.();
      this.onAuth = undefined;
    }
    for (const msg of msgs) {
      if (msg.type !== MsgType.RESPONSE) continue; // events / requests from the broker: not subscribed
      const p = this.pending.get(msg.aux2);
      if (!p) continue; // e.g. a late response after a stream's end
      if (isFinalResponse(msg)) this.pending.delete(msg.aux2);
      p.onResponse(msg);
      if (isFinalResponse(msg)) p.onFinal();
      if (this.isClosed) return;
    }
  }

  fail(err: FluxError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.t.destroy();
    if (this.onAuth) {
      this.onAuth(err);
      this.onAuth = undefined;
    }
    const lost = [...this.pending.values()];
    this.pending.clear();
    for (const p of lost) p.onLost(err);
    this.resolveClosed(err);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.t.destroy();
    const lost = [...this.pending.values()];
    this.pending.clear();
    const err = FluxError.connection(`flux ${this.uri}: connection closed by the client`, undefined, false);
    for (const p of lost) p.onLost(err);
    this.resolveClosed(undefined);
  }

  private allocTag(): number {
    for (let i = 0; i < 1_000_000; i++) {
      const tag = this.nextTag;
      this.nextTag = tag >= MATCHTAG_MAX ? 1 : tag + 1;
      if (!this.pending.has(tag)) return tag;
    }
    throw FluxError.connection(`flux ${this.uri}: out of matchtags`);
  }

  private write(bytes: Uint8Array): void {
    if (this.isClosed) throw FluxError.connection(`flux ${this.uri}: not connected`);
    this.t.output.write(bytes);
  }

  request(build: (matchtag: number) => Uint8Array, opts: { timeoutMs?: number } = {}): Promise<FluxMessage> {
    return new Promise<FluxMessage>((resolve, reject) => {
      if (this.isClosed) return reject(FluxError.connection(`flux ${this.uri}: not connected`));
      const tag = this.allocTag();
      let got: FluxMessage | undefined;
      let timer: NodeJS.Timeout | undefined;
      const clear = () => timer && clearTimeout(timer);
      this.pending.set(tag, {
        onResponse: (m) => (got = m),
        onFinal: () => {
          clear();
          resolve(got!);
        },
        onLost: (e) => {
          clear();
          reject(e);
        },
      });
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          this.pending.delete(tag);
          reject(new FluxError(`flux ${this.uri}: no response within ${opts.timeoutMs} ms`, { errnum: 110, retriable: true }));
        }, opts.timeoutMs);
      }
      try {
        this.write(build(tag));
      } catch (err) {
        this.pending.delete(tag);
        clear();
        reject(err);
      }
    });
  }

  stream(build: (matchtag: number) => Uint8Array, onResponse: (msg: FluxMessage) => void): FluxStream {
    const tag = this.allocTag();
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => {}); // the caller awaits it; never an unhandled rejection
    this.pending.set(tag, { onResponse, onFinal: () => settle.resolve(), onLost: (e) => settle.reject(e) });
    try {
      this.write(build(tag));
    } catch (err) {
      this.pending.delete(tag);
      settle.reject(err);
    }
    return { matchtag: tag, done };
  }

  send(bytes: Uint8Array): void {
    this.write(bytes);
  }

  pause(): void {
    this.t.input.pause();
  }

  resume(): void {
    this.t.input.resume();
  }
}
