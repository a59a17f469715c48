/**
 * Incremental decoder for a Flux byte stream: feed it chunks as they arrive (split anywhere),
 * get whole messages back. Optionally consumes the one auth byte the broker sends first.
 * Pure: no I/O; the connector feeds it.
 */
import { checkMagic, decodeBody, FramingError, type FluxMessage } from './message.js';

/** Refuse bodies larger than this (a corrupt length would otherwise buffer forever). */
export const MAX_MESSAGE_BYTES = 1 << 30;

export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private needAuth: boolean;
  /** The broker's auth answer, once read (0 = accepted). */
  auth: number | undefined;

  constructor(opts: { expectAuthByte?: boolean } = {}) {
    this.needAuth = opts.expectAuthByte ?? false;
  }

  /** Bytes received but not yet part of a whole message. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds bytes; returns every message completed by them, in order. */
  push(chunk: Uint8Array): FluxMessage[] {
    if (chunk.length === 0) return [];
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.length;
    const out: FluxMessage[] = [];
    if (this.needAuth) {
      const first = this.take(1);
      this.auth = first[0]!;
      this.needAuth = false;
      if (this.auth !== 0) return out;
    }
    while (this.buffered >= 8) {
      const head = this.peek(8);
      checkMagic(head, 0);
      const len = head.readUInt32BE(4);
      if (len > MAX_MESSAGE_BYTES) throw new FramingError(`message body of ${len} bytes exceeds the limit`);
      if (this.buffered < 8 + len) break;
      const whole = this.take(8 + len);
      out.push(decodeBody(whole.subarray(8)));
    }
    return out;
  }

  /** The first `n` buffered bytes without consuming them (n <= buffered). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const whole = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [whole];
    return whole.subarray(0, n);
  }

  /** Removes and returns the first `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
