/**
 * Identifier contracts shared by every component.
 *
 * Job ids are decimal strings, never JS numbers: Flux ids are 64-bit and exceed 2^53 after a few
 * days of instance uptime. Flux also shows ids in "f58" form (ƒRcvRGc7); `parseJobId` accepts both.
 */
import { z } from 'zod';

export const ClusterIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a cluster name is 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit');
export type ClusterId = z.infer<typeof ClusterIdSchema>;

const U64_MAX = (1n << 64n) - 1n;
export const JobIdSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,19})$/, 'a job id is a decimal string')
  // Guarded: zod runs a refine even when the regex failed, and BigInt() throws on non-digits.
  .refine((s) => !/^\d+$/.test(s) || BigInt(s) <= U64_MAX, 'a job id fits in 64 bits');
export type JobId = z.infer<typeof JobIdSchema>;

export const SchedulerSchema = z.enum(['flux', 'slurm']);
export type Scheduler = z.infer<typeof SchedulerSchema>;

// Flux's FLUID "f58" encoding: base58 with the Bitcoin alphabet, most significant digit first,
// prefixed by "ƒ" (U+0192) or, in ASCII contexts, "f".
const F58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export function toF58(id: JobId | bigint): string {
  let n = typeof id === 'bigint' ? id : BigInt(id);
  if (n === 0n) return 'ƒ1';
  let out = '';
  while (n > 0n) {
    out = F58_ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  return 'ƒ' + out;
}

export function fromF58(s: string): JobId | undefined {
  const body = s.startsWith('ƒ') ? s.slice(1) : s.startsWith('f') ? s.slice(1) : undefined;
  if (!body) return undefined;
  let n = 0n;
  for (const ch of body) {
    const d = F58_ALPHABET.indexOf(ch);
    if (d < 0) return undefined;
    n = n * 58n + BigInt(d);
  }
  return n <= U64_MAX ? n.toString() : undefined;
}

/** Accepts a decimal id, a Flux f58 id (ƒ… or f…), or a 0x hex id; returns the decimal string. */
export function parseJobId(input: string): JobId | undefined {
  const s = input.trim();
  if (/^(0|[1-9][0-9]{0,19})$/.test(s)) return BigInt(s) <= U64_MAX ? s : undefined;
  if (/^0x[0-9a-f]{1,16}$/i.test(s)) return BigInt(s).toString();
  return fromF58(s);
}
