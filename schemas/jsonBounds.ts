/**
 * Bounds on a log message value, checked on the raw text before anything parses it. A record
 * nested thousands of levels deep parses, but every recursive walk after that (JSON.stringify,
 * canonical JSON for signatures, zod) overflows the stack — a RangeError nothing retries, on
 * every restart, since the record is never committed past. So depth and size are bounded at
 * decode: a record past them is refused with the reason (a dead letter in the projector, a
 * rejected command in the scribe) and the stream goes on. Pure, one pass, no allocation.
 */

/** Deeper than any envelope or command (a Flux jobspec / R nests about 8 levels). */
export const MAX_JSON_DEPTH = 64;
/** 4 MiB: above Kafka's default message.max.bytes (1 MiB), room for big Flux jobspecs on the embedded log. */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;

export interface JsonBounds {
  maxDepth?: number;
  maxBytes?: number;
}

/** Why `text` is out of bounds (too large, or nesting too deep), or undefined when it is within them. */
export function jsonBoundsProblem(text: string, bounds: JsonBounds = {}): string | undefined {
  const maxBytes = bounds.maxBytes ?? MAX_RECORD_BYTES;
  const maxDepth = bounds.maxDepth ?? MAX_JSON_DEPTH;
  // UTF-8 takes at least one byte per UTF-16 unit: a text this long is too large whatever it holds.
  // ...and at most three: a text of at most maxBytes / 3 units needs no byte count.
  if (text.length > maxBytes || (text.length * 3 > maxBytes && Buffer.byteLength(text, 'utf8') > maxBytes)) {
    return `too large: ${Buffer.byteLength(text, 'utf8')} bytes (at most ${maxBytes})`;
  }
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return `nested too deep: more than ${maxDepth} levels of objects / arrays`;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return undefined;
}
