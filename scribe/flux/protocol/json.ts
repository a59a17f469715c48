/**
 * Payload text for Flux messages: a JSON object + NUL on the way out (job ids as bigint are
 * written as plain JSON integers, exact to 64 bits), and payload bytes → text on the way in.
 * Pure. Parsing journal entries (BigInt-safe) is scribe/flux/journal.ts's job.
 */

/** JSON.stringify with bigint values written as integers (flux wants `"id":123…` unquoted). */
export function stringifyJson(value: unknown): string {
  if (!containsBigInt(value)) return JSON.stringify(value);
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') {
      marks.push(v.toString());
      return `\u0000big${marks.length - 1}\u0000`;
    }
    return v;
  });
  return text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!);
}

function containsBigInt(v: unknown): boolean {
  if (typeof v === 'bigint') return true;
  if (v === null || typeof v !== 'object') return false;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (containsBigInt(x)) return true;
  return false;
}

/** A JSON payload frame: the object's text and a terminating NUL. */
export function encodeJsonPayload(obj: Record<string, unknown>): Buffer {
  return Buffer.from(stringifyJson(obj) + '\0', 'utf8');
}

/** Payload bytes → text, without the terminating NUL (if any). */
export function payloadText(payload: Uint8Array | undefined): string | undefined {
  if (!payload) return undefined;
  let end = payload.length;
  if (end > 0 && payload[end - 1] === 0) end--;
  return Buffer.from(payload.buffer, payload.byteOffset, end).toString('utf8');
}

/** Parses a payload that holds a JSON object (plain JSON.parse: for payloads without big ids). */
export function payloadObject(payload: Uint8Array | undefined): Record<string, unknown> | undefined {
  const text = payloadText(payload);
  if (text === undefined || text === '') return undefined;
  const v: unknown = JSON.parse(text);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SyntaxError('flux payload is not a JSON object');
  return v as Record<string, unknown>;
}

/** Reads an integer member exactly (as a decimal string) from JSON text, e.g. a job id > 2^53. */
export function exactIntegerMember(text: string, key: string): string | undefined {
  const m = new RegExp(`"${key}"\\s*:\\s*(-?\\d+)(?![\\d.eE])`).exec(text);
  return m?.[1];
}
