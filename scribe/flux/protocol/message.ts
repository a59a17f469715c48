/**
 * Flux messages on the local connector (flux-core 0.88, verified byte for byte against the live
 * broker and the captures in fixtures/flux/wire). Pure: bytes in, values out, no I/O.
 *
 * Owns the framing grammar; the topics' payloads live in the per-topic folders beside this file.
 *
 *   stream   := auth-byte message*            (auth byte 0x00 = accepted, else an errno; once,
 *                                              broker → client, before any message)
 *   message  := magic length body
 *   magic    := 12 00 ee ff                    (0xffee0012 in little-endian host order)
 *   length   := u32 big-endian                 (bytes of body, not counting magic and length)
 *   body     := [route* delimiter] [topic] [payload] proto
 *                                              (routes + empty delimiter iff flags & ROUTE,
 *                                               topic iff TOPIC, payload iff PAYLOAD)
 *   frame    := size bytes
 *   size     := u8 (< 255) | ff u32-big-endian (255 and above)
 *   topic    := the topic string, no NUL
 *   payload  := JSON object text + NUL, or an error message + NUL (error responses)
 *   proto    := 8e 01 type flags userid rolemask aux1 aux2     (20 bytes, u32 big-endian)
 *   type     := 01 request | 02 response | 04 event | 08 control
 *   flags    := 01 TOPIC | 02 PAYLOAD | 04 NORESPONSE | 08 ROUTE | 10 UPSTREAM | 20 PRIVATE
 *               | 40 STREAMING
 *   request  : userid ffffffff, rolemask 0, aux1 = nodeid (ffffffff = any), aux2 = matchtag
 *   response : aux1 = errnum (0 = success), aux2 = matchtag
 */

export const MAGIC = Buffer.from([0x12, 0x00, 0xee, 0xff]);
export const PROTO_SIZE = 20;
const PROTO_MAGIC = 0x8e;
const PROTO_VERSION = 0x01;

export const MsgType = { REQUEST: 1, RESPONSE: 2, EVENT: 4, CONTROL: 8 } as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

export const MsgFlag = {
  TOPIC: 0x01,
  PAYLOAD: 0x02,
  NORESPONSE: 0x04,
  ROUTE: 0x08,
  UPSTREAM: 0x10,
  PRIVATE: 0x20,
  STREAMING: 0x40,
} as const;

export const NODEID_ANY = 0xffffffff;
export const USERID_UNKNOWN = 0xffffffff;

export interface FluxMessage {
  type: MsgType;
  /** Proto flags; TOPIC / PAYLOAD / ROUTE are derived from the fields when encoding. */
  flags: number;
  userid: number;
  rolemask: number;
  /** Request: nodeid. Response: errnum. Event: sequence. */
  aux1: number;
  /** Request / response: matchtag. */
  aux2: number;
  /** Route stack; `undefined` = no ROUTE flag, `[]` = ROUTE flag with only the delimiter. */
  routes?: Uint8Array[];
  topic?: string;
  payload?: Uint8Array;
}

/** Thrown only for bytes that cannot be a Flux message (a protocol violation, not an errnum). */
export class FramingError extends Error {}

function frameHeaderSize(len: number): number {
  return len < 255 ? 1 : 5;
}

function writeFrame(out: Buffer, at: number, data: Uint8Array): number {
  if (data.length < 255) {
    out[at++] = data.length;
  } else {
    out[at++] = 0xff;
    out.writeUInt32BE(data.length, at);
    at += 4;
  }
  out.set(data, at);
  return at + data.length;
}

/** Encodes one message: magic, length, body. */
export function encodeMessage(msg: FluxMessage): Buffer {
  const frames: Uint8Array[] = [];
  let flags = msg.flags & ~(MsgFlag.TOPIC | MsgFlag.PAYLOAD | MsgFlag.ROUTE);
  if (msg.routes) {
    flags |= MsgFlag.ROUTE;
    for (const r of msg.routes) frames.push(r);
    frames.push(new Uint8Array(0));
  }
  if (msg.topic !== undefined) {
    flags |= MsgFlag.TOPIC;
    frames.push(Buffer.from(msg.topic, 'utf8'));
  }
  if (msg.payload !== undefined) {
    flags |= MsgFlag.PAYLOAD;
    frames.push(msg.payload);
  }
  const proto = Buffer.alloc(PROTO_SIZE);
  proto[0] = PROTO_MAGIC;
  proto[1] = PROTO_VERSION;
  proto[2] = msg.type;
  proto[3] = flags;
  proto.writeUInt32BE(msg.userid >>> 0, 4);
  proto.writeUInt32BE(msg.rolemask >>> 0, 8);
  proto.writeUInt32BE(msg.aux1 >>> 0, 12);
  proto.writeUInt32BE(msg.aux2 >>> 0, 16);
  frames.push(proto);

  let bodyLen = 0;
  for (const f of frames) bodyLen += frameHeaderSize(f.length) + f.length;
  const out = Buffer.allocUnsafe(8 + bodyLen);
  MAGIC.copy(out, 0);
  out.writeUInt32BE(bodyLen, 4);
  let at = 8;
  for (const f of frames) at = writeFrame(out, at, f);
  return out;
}

/** Splits a body into its frames (views into `body`, no copies). */
export function splitFrames(body: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at < body.length) {
    let size = body[at++]!;
    if (size === 0xff) {
      if (at + 4 > body.length) throw new FramingError('truncated long frame size');
      size = view.getUint32(at);
      at += 4;
    }
    if (at + size > body.length) throw new FramingError(`frame of ${size} bytes overruns the message body`);
    frames.push(body.subarray(at, at + size));
    at += size;
  }
  return frames;
}

/** Decodes a message body (the bytes after magic and length). */
export function decodeBody(body: Uint8Array): FluxMessage {
  const frames = splitFrames(body);
  const proto = frames.pop();
  if (!proto || proto.length !== PROTO_SIZE) throw new FramingError('missing or short proto frame');
  if (proto[0] !== PROTO_MAGIC || proto[1] !== PROTO_VERSION) {
    throw new FramingError(`bad proto frame magic/version ${proto[0]}/${proto[1]}`);
  }
  const pv = new DataView(proto.buffer, proto.byteOffset, PROTO_SIZE);
  const type = proto[2]! as MsgType;
  const flags = proto[3]!;
  const msg: FluxMessage = {
    type,
    flags,
    userid: pv.getUint32(4),
    rolemask: pv.getUint32(8),
    aux1: pv.getUint32(12),
    aux2: pv.getUint32(16),
  };
  let i = 0;
  if (flags & MsgFlag.ROUTE) {
    const routes: Uint8Array[] = [];
    for (;;) {
      const f = frames[i++];
      if (f === undefined) throw new FramingError('route stack without delimiter');
      if (f.length === 0) break;
      routes.push(f);
    }
    msg.routes = routes;
  }
  if (flags & MsgFlag.TOPIC) {
    const f = frames[i++];
    if (f === undefined) throw new FramingError('TOPIC flag without a topic frame');
    msg.topic = Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('utf8');
  }
  if (flags & MsgFlag.PAYLOAD) {
    const f = frames[i++];
    if (f === undefined) throw new FramingError('PAYLOAD flag without a payload frame');
    msg.payload = f;
  }
  if (i !== frames.length) throw new FramingError(`${frames.length - i} unexpected frame(s) in message`);
  return msg;
}

/** Decodes exactly one whole message (magic, length, body). */
export function decodeMessage(bytes: Uint8Array): FluxMessage {
  if (bytes.length < 8) throw new FramingError('message shorter than its header');
  checkMagic(bytes, 0);
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  if (bytes.length !== 8 + len) throw new FramingError(`message length ${len} does not match ${bytes.length - 8} body bytes`);
  return decodeBody(bytes.subarray(8));
}

export function checkMagic(bytes: Uint8Array, at: number): void {
  if (bytes[at] !== 0x12 || bytes[at + 1] !== 0x00 || bytes[at + 2] !== 0xee || bytes[at + 3] !== 0xff) {
    throw new FramingError('bad message magic (expected 12 00 ee ff)');
  }
}

/** `true` when a response ends its RPC: any non-streaming response, or an error response. */
export function isFinalResponse(msg: FluxMessage): boolean {
  return !(msg.flags & MsgFlag.STREAMING) || msg.aux1 !== 0;
}
